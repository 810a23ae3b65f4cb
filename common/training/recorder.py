"""The rows a run writes to the experiment store, kept until the store takes them.

Rows the store refuses (disk full, permissions) stay in ``TrainState.unstored_rows``, travel in
checkpoints and are retried at each evaluation. A resume from step k first supersedes the run's
stored rows after k (``TrainState.store_rewind_to``), so no row is stored twice or lost. A new
run first claims its experiment name (``claim_run_name``) and gets its tags and note.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common.training.records import metrics_row
from common.training.state import TrainState
from common.utils.config import ConfigError


def evaluation_rows(
    state: TrainState,
    val_metrics: dict[str, Any] | None,
    *,
    epoch: float | None,
    floor_bits_per_byte: float | None = None,
    **columns: Any,
) -> tuple[list[dict[str, Any]], str | None]:
    """The rows of an evaluation and its log line (None without validation metrics).

    A ``train`` row holds the mean training loss since the previous evaluation (when a step ran
    since), a ``val`` row ``val_metrics`` (with the floor and gap given ``floor_bits_per_byte``,
    the validation data's entropy); ``state`` takes the new ``last_metrics`` and best
    validation loss, and its training-loss sums restart.
    """
    rows: list[dict[str, Any]] = []
    train_note = ""
    step = columns.get("step")
    if state.train_loss_count:
        train_loss = state.train_loss_sum / state.train_loss_count
        train = {"loss": train_loss, "bits_per_byte": None}
        rows.append(metrics_row(train, split="train", epoch=epoch, **columns))
        state.last_metrics["train_loss"] = train_loss
        state.train_loss_sum, state.train_loss_count = 0.0, 0
        train_note = f" | train loss {train_loss:.4f}"
    if val_metrics is None:
        return rows, None
    row = metrics_row(
        {
            "loss": float(val_metrics["loss"]),
            "perplexity": float(val_metrics["perplexity"]),
            "bits_per_byte": val_metrics.get("bits_per_byte"),
        },
        split="val",
        epoch=epoch,
        floor_bits_per_byte=floor_bits_per_byte,
        **columns,
    )
    rows.append(row)
    state.last_metrics.update(
        {
            "val_loss": row["loss"],
            "val_perplexity": row["perplexity"],
            "val_bits_per_byte": row["bits_per_byte"],
            "val_floor_bits_per_byte": row.get("floor_bits_per_byte"),
            "val_gap_bits_per_byte": row.get("gap_bits_per_byte"),
            "val_step": step,
        }
    )
    if row["loss"] < state.best_loss:
        state.best_val_loss, state.best_val_step = row["loss"], step
    bpb = row["bits_per_byte"]
    line = (
        f"eval step {step}: val loss {row['loss']:.4f} | perplexity {row['perplexity']:.2f}"
        + (f" | bits/byte {bpb:.4f}" if bpb is not None else "")
        + (f" (gap {gap:.4f})" if (gap := row.get("gap_bits_per_byte")) is not None else "")
        + train_note
    )
    return rows, line


class Recorder:
    """Stores a run's rows (rank 0 with ``enabled``; a no-op elsewhere).

    Args:
        experiment_name: the experiment the rows belong to.
        metadata: returns the run metadata stored with every row.
        log: prints one line.
        storage_dir: the store (default ``get_experiments_dir()``).
        enabled: whether this process writes rows.
    """

    def __init__(
        self,
        experiment_name: str,
        metadata: Callable[[], dict[str, Any]],
        log: Callable[[str], None],
        *,
        storage_dir: str | Path | None = None,
        enabled: bool = True,
    ) -> None:
        self.experiment_name = experiment_name
        self.metadata = metadata
        self.log = log
        self.storage_dir = storage_dir
        self.enabled = enabled
        self.error: str | None = None

    def record(self, state: TrainState, rows: list[dict[str, Any]]) -> None:
        """Keep ``rows`` and try to store everything kept."""
        if self.enabled:
            state.unstored_rows.extend(rows)
            self.flush(state)

    def flush(self, state: TrainState) -> bool:
        """Apply a pending rewind and store the kept rows; False (rows kept) if the store fails."""
        if not self.enabled or (not state.unstored_rows and state.store_rewind_to is None):
            return True
        from common.utils import ExperimentStoreError, rewind_experiment, save_experiment

        name = self.experiment_name
        try:
            if state.store_rewind_to is not None:
                superseded = rewind_experiment(
                    name, state.store_rewind_to, storage_dir=self.storage_dir
                )
                if superseded:
                    self.log(
                        f"superseded {superseded} stored row(s) of {name} after "
                        f"step {max(state.store_rewind_to, 0)} (they are re-logged from here)"
                    )
                state.store_rewind_to = None
            if state.unstored_rows:
                save_experiment(
                    name,
                    state.unstored_rows,
                    self.metadata(),
                    storage_dir=self.storage_dir,
                    mode="append",
                )
                state.unstored_rows = []
        except ExperimentStoreError as exc:
            if self.error is None:
                self.log(
                    f"warning: the experiment store refused {len(state.unstored_rows)} row(s): "
                    f"{exc}; they are kept (and saved in checkpoints) and retried at each "
                    "evaluation"
                )
            self.error = str(exc)
            return False
        if self.error is not None:
            self.log("the experiment store accepts rows again; the kept rows are stored")
            self.error = None
        return True


def claim_run_name(name: str, folder: Path, storage_dir: str | Path | None) -> None:
    """Make a new run (its folder) the owner of its experiment name, so that it never adds its
    rows to another experiment's (one winner among runs, renames and first saves that want it).
    """
    from common.experiments import ExperimentExistsError, claim_experiment, experiment_names
    from common.experiments.errors import StoreNotFoundError

    try:
        claim_experiment(name, str(folder.resolve()), storage_dir=storage_dir)
    except ExperimentExistsError as exc:
        try:
            stored = name in experiment_names(storage_dir=storage_dir)
        except StoreNotFoundError:
            stored = False
        if not stored:
            raise ConfigError(f"run name: {exc}") from None
        raise ConfigError(
            f"the experiment store already has rows named {name!r} (from a run whose folder "
            f"is gone, or saved from Python); choose another --name, or delete them first: "
            f"python tools/query_experiments.py --delete {name}"
        ) from None


def annotate_run(
    name: str,
    folder: Path,
    tags: Sequence[str],
    note: str | None,
    storage_dir: str | Path | None,
) -> None:
    """Give the run's experiment the tags and note asked for (before its first save too)."""
    if not tags and note is None:
        return
    from common.experiments import (
        ExperimentExistsError,
        UnknownExperimentError,
        claim_experiment,
        set_note,
        tag_experiment,
    )

    def apply() -> None:
        if tags:
            tag_experiment(name, *tags, storage_dir=storage_dir)
        if note is not None:
            set_note(name, note, storage_dir=storage_dir)

    try:
        apply()
    except UnknownExperimentError:  # a resumed run that never stored a row nor claimed its name
        with contextlib.suppress(ExperimentExistsError):  # claimed meanwhile: tag its holder
            claim_experiment(name, str(folder.resolve()), storage_dir=storage_dir)
        apply()
