"""Training health: a collapse is ``training.collapse_steps`` steps in a row with an exactly zero
gradient norm or an unchanged loss. It is reported once, naming the last good checkpoint;
checkpoints written while collapsed are not "good" ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from common.training.state import TrainState


def watch_collapse(
    state: TrainState,
    loss: float,
    grad_norm: float,
    lr: float,
    *,
    limit: int,
    last_good: Path | None,
    log: Callable[[str], None],
) -> None:
    """Count a step with an exactly zero gradient norm or an unchanged loss; warn once."""
    flat = grad_norm == 0.0 or loss == state.previous_loss
    state.previous_loss = loss
    state.flat_steps = state.flat_steps + 1 if flat else 0
    if limit <= 0 or state.flat_steps != limit or state.collapsed_at is not None:
        return
    state.collapsed_at = state.step
    what = "gradient norm exactly 0" if grad_norm == 0.0 else f"loss stuck at {loss:.6g}"
    kept = (
        f"the last good checkpoint is {last_good}"
        if last_good
        else "no good checkpoint was written"
    )
    log(
        f"warning: training collapsed at step {state.step}: {what} for {limit} steps "
        f"(lr {lr:.3g}); {kept}. Try a lower learning rate (training.lr)."
    )


def is_healthy(state: TrainState, limit: int) -> bool:
    """Whether training is not collapsed now."""
    return limit <= 0 or state.flat_steps < limit
