"""The training loop's errors: an interrupted, pruned or diverged run, rows the store refused."""

from __future__ import annotations

import math
from pathlib import Path


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run after a step; ``checkpoint`` is the checkpoint then written."""

    def __init__(self, message: str, checkpoint: Path | None = None) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint


class RunPruned(Exception):
    """A search's pruner stopped the run after an evaluation; its checkpoint and rows are kept."""

    def __init__(self, message: str, step: int, checkpoint: Path | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.checkpoint = checkpoint


class RowsNotStoredError(RuntimeError):
    """The run finished (checkpoint written) but some rows could not be stored."""


class TrainingDivergedError(RuntimeError):
    """The loss (or gradient norm) became NaN or infinite; the run was stopped.

    Attributes:
        step: the 1-based optimizer step whose loss diverged.
        loss: the loss value.
        grad_norm: the gradient norm, when it was computed.
        last_checkpoint: the last good checkpoint, if any was written.
    """

    def __init__(
        self,
        step: int,
        loss: float,
        grad_norm: float | None = None,
        last_checkpoint: Path | None = None,
        lr: float | None = None,
        grad_clip: float | None = None,
    ) -> None:
        self.step = step
        self.loss = loss
        self.grad_norm = grad_norm
        self.last_checkpoint = last_checkpoint
        what = f"loss = {loss}" if not math.isfinite(loss) else f"gradient norm = {grad_norm}"
        kept = (
            f"the last good checkpoint is {last_checkpoint}"
            if last_checkpoint is not None
            else "no checkpoint had been written yet"
        )
        clip = (
            "enable gradient clipping (training.grad_clip=1.0)"
            if grad_clip is None
            else f"lower training.grad_clip (now {grad_clip})"
        )
        super().__init__(
            f"training diverged at step {step}: {what}; stopped before updating the weights, "
            f"{kept}. Try a lower learning rate (training.lr, now {lr}), a longer warmup "
            f"(training.warmup_steps) or {clip}."
        )
