"""What a run writes to the experiment store: evaluation rows and the run's metadata.

The Trainer, ``evaluate.py`` scripts and ``Evaluator.create_metrics_dataframe`` all build their
rows with ``metrics_row`` and their metadata with ``run_metadata``, so every row of every run has
the same columns (``step``, ``epoch``, ``split``, ``loss``, ``perplexity``, ``bits_per_byte``,
``lr``, ``tokens_seen``, ``elapsed_s`` and the config flattened by the store). Rows of data
with a known entropy (the embedded corpus) also have ``floor_bits_per_byte`` and
``gap_bits_per_byte``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


def compute_perplexity(loss: float | torch.Tensor) -> float:
    """``exp(loss)``, returning ``inf`` instead of overflowing (``nan`` stays ``nan``).

    Args:
        loss: Mean cross-entropy in nats (a number or a one-element tensor).

    Returns:
        The perplexity.
    """
    value = float(loss.detach().float().item()) if isinstance(loss, torch.Tensor) else float(loss)
    if math.isnan(value):
        return math.nan
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf


def count_parameters(model: nn.Module) -> int:
    """The model's parameter count (its ``num_parameters()`` when it has one; shared tensors
    counted once)."""
    counter = getattr(model, "num_parameters", None)
    if callable(counter):
        return int(counter())
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def loader_tokens(loader: Any) -> int | None:
    """The tokens a loader covers, from its ``num_tokens`` or ``tokens`` (None without them)."""
    for attr in ("num_tokens", "tokens"):
        value = getattr(loader, attr, None)
        if isinstance(value, int):
            return value
        if value is not None and hasattr(value, "__len__"):
            return len(value)
    return None


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "numel", lambda: 0)() == 1:
        return item()
    return value


def metrics_row(
    metrics: Mapping[str, Any],
    *,
    split: str,
    epoch: float | None = None,
    floor_bits_per_byte: float | None = None,
    **columns: Any,
) -> dict[str, Any]:
    """One store row: ``epoch``, ``split``, the metrics, then ``columns`` (``step``, ``lr``, ...).

    ``perplexity`` is derived from ``loss`` when the metrics lack it; one-element tensors become
    numbers. With ``floor_bits_per_byte`` (the data's entropy: what a perfect model scores) the
    row also has it and ``gap_bits_per_byte`` (``bits_per_byte`` minus the floor; None without
    ``bits_per_byte``). ``split`` is ``train``, ``val`` (the validation data, whoever evaluates
    it) or another name for other data.

    Raises:
        ValueError: a column is given twice (in ``metrics`` and ``columns``, or as ``epoch`` or
            ``split``).
    """
    derived = {"epoch", "split", "floor_bits_per_byte", "gap_bits_per_byte"}
    clash = sorted(({"epoch", "split"} | set(metrics)) & set(columns))
    clash += sorted(derived & set(metrics))
    if clash:
        raise ValueError(f"column(s) given twice: {clash}")
    row: dict[str, Any] = {"epoch": epoch, "split": split}
    row.update((key, _plain(value)) for key, value in metrics.items())
    if row.get("loss") is not None and "perplexity" not in row:
        row["perplexity"] = compute_perplexity(float(row["loss"]))
    if floor_bits_per_byte is not None:
        bpb = row.get("bits_per_byte")
        row["floor_bits_per_byte"] = float(floor_bits_per_byte)
        row["gap_bits_per_byte"] = None if bpb is None else float(bpb) - float(floor_bits_per_byte)
    row.update((key, _plain(value)) for key, value in columns.items())
    return row


def run_metadata(
    config: Any,
    model: Any,
    *,
    device: Any,
    world_size: int = 1,
    data_description: str | None = None,
    train_tokens: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The metadata stored with every row of a run (the store flattens nested dicts with ``__``).

    The resolved config's sections, seed, torch and Python versions, device, world size,
    parameter count, model class, data description, token count and global batch size, then
    ``extra`` (e.g. ``project``, ``config_file``).

    Raises:
        ValueError: ``extra`` uses a column the store writes itself.
    """
    from common import device as cuda
    from common.experiments.schema import NAME_COLUMN, PROVENANCE_COLUMNS
    from common.utils.config import config_to_dict

    reserved = sorted(set(extra) & {NAME_COLUMN, *PROVENANCE_COLUMNS})
    if reserved:
        raise ValueError(
            f"metadata keys {reserved} are written by the experiment store itself; rename them"
        )
    device = torch.device(device)
    cls = type(model)
    training = config.training
    meta: dict[str, Any] = dict(config_to_dict(config))
    meta.update(
        {
            "seed": training.seed,
            "torch_version": torch.__version__,
            "python_version": sys.version.split()[0],
            "device": str(device),
            "device_name": (cuda.device_name(device) if device.type == "cuda" else device.type),
            "world_size": world_size,
            "num_parameters": count_parameters(model),
            "model_class": f"{cls.__module__}:{cls.__qualname__}",
            "data_description": data_description,
            "train_tokens": train_tokens,
            "global_batch_size": training.batch_size * training.grad_accum_steps * world_size,
        }
    )
    meta.update(extra)
    return meta
