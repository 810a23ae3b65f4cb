"""A run's checkpoints: where they live, the newest intact one, pruning, per-rank RNG states.

``newest_intact_checkpoint`` is the one rule training (resume), evaluation and run resolution use
to pick a checkpoint: the newest ``step_XXXXXXX`` folder that passes a check, skipping damaged
ones with a note.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from common.models.checkpoint import CheckpointError
    from common.training.state import TrainState
    from common.training.trainer import Trainer

# Imports nothing heavy at module level: run resolution (the train CLI) uses it before torch.


def run_dir(name: str) -> Path:
    """The folder of run ``name``: ``assets/outputs/checkpoints/<name>``."""
    from common.paths import get_checkpoints_dir

    return get_checkpoints_dir() / name


def newest_intact_checkpoint(
    folder: str | Path,
    load: Callable[[Path], Any] | None = None,
    on_skip: Callable[[Path, CheckpointError], None] | None = None,
) -> tuple[Path, Any] | None:
    """The newest checkpoint of ``folder`` that ``load`` accepts, and what ``load`` returned.

    Args:
        folder: a run folder holding ``step_XXXXXXX`` checkpoints.
        load: reads (and checks) one checkpoint; raises ``CheckpointError`` for one to skip.
            Default: verify its files against their checksums and return its metadata.
        on_skip: told about each skipped checkpoint and why.

    Returns:
        ``(path, load(path))``, or None when no checkpoint passes.
    """
    from common.models.checkpoint import CheckpointError, list_checkpoints, read_verified_metadata

    for path in reversed(list_checkpoints(folder)):
        try:
            return path, (load or read_verified_metadata)(path)
        except CheckpointError as exc:
            if on_skip is not None:
                on_skip(path, exc)
    return None


def prune_checkpoints(folder: Path, keep: int, protected: Iterable[Path | None] = ()) -> None:
    """Delete all but the newest ``keep`` checkpoints of ``folder`` (``keep <= 0``: keep all),
    never one in ``protected``."""
    from common.models.checkpoint import list_checkpoints

    if keep <= 0:
        return
    kept = set(protected)
    for old in list_checkpoints(folder)[:-keep]:
        if old not in kept:
            shutil.rmtree(old, ignore_errors=True)


def pack_rng_states(
    states: list[dict[str, Any]],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every rank's ``rng_state()`` as checkpoint tensors and JSON (``TrainState.rng``)."""
    tensors: dict[str, torch.Tensor] = {}
    rng_json: dict[str, Any] = {}
    for rank, state in enumerate(states):
        tensors[f"rng_torch_cpu_rank{rank}"] = state["torch_cpu"]
        if state.get("torch_cuda") is not None:
            tensors[f"rng_torch_cuda_rank{rank}"] = state["torch_cuda"]
        for index, cuda in enumerate(state.get("torch_cuda_all") or []):
            tensors[f"rng_torch_cuda{index}_rank{rank}"] = cuda
        rng_json[str(rank)] = {"python": state["python"], "numpy": state["numpy"]}
    return tensors, rng_json


def unpack_rng_state(
    tensors: Mapping[str, torch.Tensor], rng_json: Mapping[str, Any], rank: int, cuda: bool
) -> dict[str, Any]:
    """Rank ``rank``'s ``rng_state()`` back from a checkpoint (CUDA entries only when ``cuda``;
    checkpoints from before every CUDA generator was saved restore the current device's)."""
    own = rng_json.get(str(rank), {})
    every_cuda: list[torch.Tensor] = []
    while cuda and f"rng_torch_cuda{len(every_cuda)}_rank{rank}" in tensors:
        every_cuda.append(tensors[f"rng_torch_cuda{len(every_cuda)}_rank{rank}"])
    return {
        "torch_cpu": tensors.get(f"rng_torch_cpu_rank{rank}"),
        "torch_cuda": tensors.get(f"rng_torch_cuda_rank{rank}") if cuda else None,
        "torch_cuda_all": every_cuda or None,
        "python": own.get("python"),
        "numpy": own.get("numpy"),
    }


# ---------------------------------------------------------------------- the Trainer's checkpoints


def save(trainer: Trainer) -> Path | None:
    """``Trainer.save_checkpoint``: every rank calls it, rank 0 writes."""
    import math

    import torch

    from common.models.checkpoint import CheckpointWriteError, rng_state
    from common.training.distributed import all_gather_object, broadcast_object
    from common.training.errors import TrainingDivergedError

    trainer.dist.mark(f"the checkpoint of step {trainer.step}")
    states = all_gather_object(rng_state())
    if not all(bool(torch.isfinite(p).all()) for p in trainer.model.parameters()):
        raise TrainingDivergedError(
            trainer.step,
            math.nan,
            None,
            trainer.last_good_checkpoint,
            lr=trainer.config.training.lr,
            grad_clip=trainer.config.training.grad_clip,
        )
    path: Path | None = None
    failure: str | None = None
    if trainer.dist.is_main:
        try:
            path = write_checkpoint(trainer, states)
        except CheckpointWriteError as exc:
            kept = (
                f"the previous checkpoint {trainer.last_checkpoint} is intact"
                if trainer.last_checkpoint
                else "no earlier checkpoint exists"
            )
            failure = f"{exc}; {kept}; free space, then continue with --resume"
    state = trainer.state
    trainer.last_checkpoint, state.last_good_checkpoint, failure = broadcast_object(
        (trainer.last_checkpoint, state.last_good_checkpoint, failure)
    )
    if failure is not None:
        raise CheckpointWriteError(failure)
    trainer.dist.barrier()
    return path


def write_checkpoint(trainer: Trainer, states: list[dict[str, Any]]) -> Path:
    """Write the trainer's checkpoint of this step (rank 0), ``states`` every rank's RNG state,
    and prune the old ones."""
    from common.models.checkpoint import checkpoint_path
    from common.utils.config import config_to_dict

    extra_tensors, rng_json = pack_rng_states(states)
    loader = trainer.train_loader
    healthy = trainer.healthy
    path = checkpoint_path(trainer.checkpoint_dir, trainer.step)
    snapshot = dataclasses.replace(
        trainer.state,
        elapsed_s=trainer.elapsed(),
        last_good_checkpoint=str(path if healthy else trainer.last_good_checkpoint or "") or None,
        config=config_to_dict(trainer.config),
        experiment_name=trainer.experiment_name,
        data_state=loader.state_dict() if hasattr(loader, "state_dict") else None,
        world_size=trainer.dist.world_size,
        scaler=trainer.scaler.state_dict() if trainer.scaler is not None else None,
        rng=rng_json,
        healthy=healthy,
    )
    metrics = {k: v for k, v in trainer.last_metrics.items() if isinstance(v, (int, float))}
    written = trainer.model.save_checkpoint(  # type: ignore[operator]
        path,
        optimizer=trainer.optimizer,
        scheduler=trainer.scheduler,
        step=trainer.step,
        extra=snapshot.to_extra(),
        metrics=metrics,
        extra_tensors=extra_tensors,
    )
    trainer.last_checkpoint = Path(written)
    if healthy:
        trainer.state.last_good_checkpoint = str(trainer.last_checkpoint)
    keep = trainer.config.training.keep_checkpoints
    prune_checkpoints(trainer.checkpoint_dir, keep, protected=[trainer.last_good_checkpoint])
    return trainer.last_checkpoint


def resume(trainer: Trainer) -> None:
    """Load the trainer's newest intact checkpoint, or restart from step 0 when there is none."""
    from common.models.checkpoint import list_checkpoints, seed_everything

    candidates = list_checkpoints(trainer.checkpoint_dir)

    def skip(path: Path, exc: CheckpointError) -> None:
        trainer.progress.log(f"cannot resume from {path}: {exc}; trying the checkpoint before it")

    found = newest_intact_checkpoint(trainer.checkpoint_dir, partial(_restore, trainer), skip)
    if found is not None:
        if found[0] != candidates[-1]:
            trainer.progress.log(f"resuming from {found[0].name}, the newest intact checkpoint")
        return
    what = "no intact checkpoint" if candidates else "no checkpoint"
    trainer.progress.log(
        f"{what} in {trainer.checkpoint_dir}; restarting run {trainer.experiment_name} from step 0"
    )
    seed_everything(trainer.config.training.seed + trainer.dist.rank)
    trainer.state.store_rewind_to = -1


def _restore(trainer: Trainer, path: Path) -> TrainState:
    """Restore everything from checkpoint ``path``.

    Raises:
        CheckpointError: the checkpoint is damaged or does not fit this run (nothing of the
            trainer's state is changed then, the model's weights may be).
    """
    from common.models.checkpoint import CheckpointError, seed_everything, set_rng_state
    from common.training.state import TrainState

    state = TrainState.read(path)
    loader = trainer.train_loader
    if state.data_state is not None and hasattr(loader, "load_state_dict"):
        before = loader.state_dict()
        try:
            loader.load_state_dict(state.data_state)
        except (KeyError, TypeError, ValueError) as exc:
            loader.load_state_dict(before)
            raise CheckpointError(
                f"{path}: data_state {state.data_state!r:.80} does not fit the training "
                f"loader ({type(exc).__name__}: {exc})"
            ) from None
    elif not hasattr(loader, "load_state_dict"):
        trainer.progress.log("the training loader has no load_state_dict: data order restarts")
    meta = trainer.model.load_checkpoint(  # type: ignore[operator]
        path, optimizer=trainer.optimizer, scheduler=trainer.scheduler, map_location=trainer.device
    )
    rewind = state.store_rewind_to
    state.store_rewind_to = min(state.step, rewind if rewind is not None else state.step)
    trainer.state = state
    trainer.last_checkpoint = path
    if state.scaler and trainer.scaler is not None:
        trainer.scaler.load_state_dict(state.scaler)
    trainer._iterator = None
    if state.world_size != trainer.dist.world_size:
        trainer.progress.log(
            f"checkpoint written by {state.world_size} process(es), resuming with "
            f"{trainer.dist.world_size}: RNG streams are re-seeded, the run is not bitwise exact"
        )
        seed_everything(trainer.config.training.seed + trainer.dist.rank + trainer.step)
    else:
        tensors = meta.get("extra_tensors") or {}
        on_cuda = trainer.device.type == "cuda"
        set_rng_state(unpack_rng_state(tensors, state.rng, trainer.dist.rank, on_cuda))
    _apply_schedule_changes(trainer, state.config)
    trainer.progress.log(f"resumed from {path} (step {trainer.step})")
    return state


def _apply_schedule_changes(trainer: Trainer, saved: Mapping[str, Any] | None) -> None:
    """Log config changes since the checkpoint; a changed schedule applies from this step."""
    from common.training.schedules import create_scheduler
    from common.utils.config import SCHEDULE_KEYS, config_differences

    if not saved:
        return
    changed = config_differences(saved, trainer.config)
    if changed:
        trainer.progress.log(
            "config differs from the checkpoint's: "
            + "; ".join(f"{s}.{k}: {old!r} -> {new!r}" for s, k, old, new in changed)
        )
    if any(s == "training" and k in SCHEDULE_KEYS for s, k, *_ in changed):
        trainer.scheduler = create_scheduler(
            trainer.optimizer, trainer.config.training, start_step=trainer.step
        )
        trainer._last_lr = float(trainer.optimizer.param_groups[0]["lr"])
        trainer.extra_metadata["schedule_changed_at_step"] = trainer.step
        trainer._metadata = None
        trainer.progress.log(
            f"new learning-rate schedule from step {trainer.step}: lr {trainer._last_lr:.3g} now"
        )
