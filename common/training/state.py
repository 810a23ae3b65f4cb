"""``TrainState``: everything a training checkpoint carries besides tensors, listed once.

The Trainer keeps its progress in one ``TrainState``; a checkpoint's ``extra`` is
``TrainState.to_extra()`` and ``TrainState.read(path)`` checks every field of a checkpoint
against the field's declared type before anything is loaded. A new field is one line here (with a
default, so older checkpoints stay loadable).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.models.checkpoint import CheckpointError, read_verified_metadata


@dataclass
class TrainState:
    """The training state stored in a checkpoint's ``extra`` (the step is the checkpoint's own).

    The first group changes as training runs; the second is filled in when a checkpoint is
    written (``Trainer.save_checkpoint``).
    """

    step: int = 0
    tokens_seen: int = 0
    elapsed_s: float = 0.0
    best_val_loss: float | None = None
    best_val_step: int | None = None
    train_loss_sum: float = 0.0
    train_loss_count: int = 0
    last_metrics: dict[str, Any] = field(default_factory=dict)
    last_good_checkpoint: str | None = None
    flat_steps: int = 0
    previous_loss: float | None = None
    collapsed_at: int | None = None
    unstored_rows: list[Any] = field(default_factory=list)
    store_rewind_to: int | None = None

    config: dict[str, Any] | None = None
    experiment_name: str | None = None
    data_state: dict[str, Any] | None = None
    world_size: int = 1
    scaler: dict[str, Any] | None = None
    rng: dict[str, Any] = field(default_factory=dict)
    healthy: bool = True

    def to_extra(self) -> dict[str, Any]:
        """The checkpoint's ``extra`` dict (every field but ``step``)."""
        extra = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del extra["step"]
        return extra

    @classmethod
    def from_metadata(cls, path: Path, meta: dict[str, Any]) -> TrainState:
        """The state in checkpoint metadata ``meta``, each field checked against its type.

        Raises:
            CheckpointError: a field has the wrong type or an impossible value.
        """
        extra = meta.get("extra") or {}
        where = f"{path}: checkpoint.json extra"
        values: dict[str, Any] = {"step": int(meta.get("step") or 0)}
        for name, hint in _field_types().items():
            if name == "step" or name not in extra:
                continue
            value = extra[name]
            if value is None and type(None) in hint:
                values[name] = None
                continue
            allowed = tuple(t for t in hint if t is not type(None))
            if isinstance(value, bool) and bool not in allowed:
                raise CheckpointError(f"{where}.{name} is malformed: {value!r:.80}")
            if float in allowed and isinstance(value, int):
                value = float(value)
            if not isinstance(value, allowed):
                raise CheckpointError(f"{where}.{name} is malformed: {value!r:.80}")
            values[name] = value
        state = cls(**values)
        if state.tokens_seen < 0 or state.world_size < 1:
            raise CheckpointError(f"{where}: tokens_seen or world_size out of range")
        return state

    @classmethod
    def read(cls, path: Path) -> TrainState:
        """Verify checkpoint ``path`` (checksums, fields) without loading anything."""
        return cls.from_metadata(path, read_verified_metadata(path))

    @property
    def best_loss(self) -> float:
        """``best_val_loss``, ``inf`` before the first evaluation."""
        return math.inf if self.best_val_loss is None else self.best_val_loss


def _field_types() -> dict[str, tuple[type, ...]]:
    """Each field's accepted runtime types, from its annotation."""
    hints = typing.get_type_hints(TrainState)
    result = {}
    for f in dataclasses.fields(TrainState):
        hint = hints[f.name]
        parts = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        result[f.name] = tuple(typing.get_origin(p) or p for p in parts)
    return result
