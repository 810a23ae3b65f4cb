"""Checkpoints: the folder format, the step folders of a run, and the model registry.

A checkpoint is a folder, written atomically (``common.utils.atomic.atomic_dir``)::

    <path>/
        checkpoint.json        format version, class ("module:QualName"), config, step, metrics,
                               extra, created_at, versions, tensor aliases, and for every other
                               file its size and SHA-256
        model.safetensors      weights (tied/shared tensors stored once, aliases in the JSON)
        optimizer.safetensors  optimizer state tensors, flattened      (only with an optimizer)
        optimizer.json         param_groups and non-tensor state       (only with an optimizer)
        scheduler.json         scheduler.state_dict()                  (only with a scheduler)
        state.safetensors      ``extra_tensors`` such as RNG states    (only when given)

Loading is inert: only safetensors and JSON are read (nothing is unpickled), every file is checked
against its recorded checksum before use, and the model class a checkpoint names is looked up in a
registry that ``BaseLanguageModel`` subclasses join when they are defined; no module named by a
file is ever imported.

A training run keeps its checkpoints as ``<run folder>/step_XXXXXXX`` (``checkpoint_path``,
``list_checkpoints``, ``latest_checkpoint``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.models.errors import CheckpointError, CheckpointWriteError
from common.models.registry import (  # the registry and RNG names are re-exported here
    class_spec,
    register_model_class,
    registered_model_class,
)
from common.models.rng import rng_state, seed_everything, set_rng_state
from common.utils.atomic import TMP_MARKER, atomic_dir

__all__ = [
    "CheckpointError",
    "CheckpointWriteError",
    "checkpoint_path",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "read_verified_metadata",
    "register_model_class",
    "registered_model_class",
    "resolve_checkpoint_dir",
    "rng_state",
    "save_checkpoint",
    "seed_everything",
    "set_rng_state",
]

CHECKPOINT_FORMAT = "research-lm-checkpoint"
CHECKPOINT_FORMAT_VERSION = 2

METADATA_FILE = "checkpoint.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_TENSORS_FILE = "optimizer.safetensors"
OPTIMIZER_JSON_FILE = "optimizer.json"
SCHEDULER_FILE = "scheduler.json"
STATE_TENSORS_FILE = "state.safetensors"

_OLD_TAG = ".old-"
_STEP_PATTERN = re.compile(r"^step_(\d{7,})$")


# ---------------------------------------------------------------------- writing
def save_checkpoint(
    model: nn.Module,
    path: str | os.PathLike[str],
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    step: int | None = None,
    extra: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    extra_tensors: Mapping[str, torch.Tensor] | None = None,
) -> Path:
    """Write ``model`` as the checkpoint folder ``path`` and return it, atomically: a crash at any
    moment leaves either the previous or the new checkpoint complete. Also
    ``BaseLanguageModel.save_checkpoint``.

    Args:
        optimizer, scheduler, step: Optimizer, LR scheduler (JSON ``state_dict()``) and step.
        extra: JSON-serializable metadata (data-loader position, resolved config, ...).
        metrics: JSON-serializable metrics (numbers; 0-dim tensors are converted).
        extra_tensors: Named tensors saved in ``state.safetensors`` (e.g. RNG states).

    Raises:
        TypeError: ``extra``, ``metrics``, ``extra_tensors`` or the scheduler state cannot be
            stored without pickling (nothing is written then).
        CheckpointWriteError: the disk refused the write (the previous checkpoint is intact).
    """
    from safetensors.torch import save_file

    target = Path(path)
    # Everything is encoded before touching the disk: a bad argument leaves no debris.
    model_tensors, aliases = _dedupe_shared(model.state_dict())
    files: dict[str, tuple[str, Any]] = {MODEL_FILE: ("safetensors", model_tensors)}
    opt_aliases: dict[str, str] = {}
    if optimizer is not None:
        opt_tensors: dict[str, torch.Tensor] = {}
        opt_json = _encode(optimizer.state_dict(), "optimizer", opt_tensors)
        opt_unique, opt_aliases = _dedupe_shared(opt_tensors)
        files[OPTIMIZER_TENSORS_FILE] = ("safetensors", opt_unique)
        files[OPTIMIZER_JSON_FILE] = ("json", opt_json)
    if scheduler is not None:
        files[SCHEDULER_FILE] = ("json", _encode(scheduler.state_dict(), "scheduler", None))
    state_aliases: dict[str, str] = {}
    if extra_tensors:
        bad = [k for k, v in extra_tensors.items() if not isinstance(v, torch.Tensor)]
        if bad or not all(isinstance(k, str) for k in extra_tensors):
            raise TypeError(f"extra_tensors must map str to torch.Tensor; bad entries: {bad}")
        state_tensors, state_aliases = _dedupe_shared(dict(extra_tensors))
        files[STATE_TENSORS_FILE] = ("safetensors", state_tensors)

    metadata: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "class": class_spec(type(model)),
        "config": getattr(model, "config", {}),
        "step": None if step is None else int(step),
        "metrics": _json_checked(_scalars(metrics or {}), "metrics"),
        "extra": _json_checked(extra or {}, "extra"),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "aliases": {
            MODEL_FILE: aliases,
            OPTIMIZER_TENSORS_FILE: opt_aliases,
            STATE_TENSORS_FILE: state_aliases,
        },
        "files": {},
    }
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_dir(target, replace=True) as tmp:
            for name, (kind, payload) in files.items():
                file_path = tmp / name
                if kind == "safetensors":
                    save_file(payload, str(file_path))
                else:
                    _write_json(file_path, payload)
                metadata["files"][name] = {
                    "bytes": file_path.stat().st_size,
                    "sha256": _sha256(file_path),
                }
            # checkpoint.json is written last: its presence marks a complete folder.
            _write_json(tmp / METADATA_FILE, metadata)
    except Exception as exc:
        if not _is_write_failure(exc):
            raise
        raise CheckpointWriteError(f"could not write checkpoint {target}: {exc}") from exc
    _remove_leftovers(target)
    return target


def _is_write_failure(exc: BaseException) -> bool:
    from safetensors import SafetensorError

    return isinstance(exc, (OSError, SafetensorError))


# ---------------------------------------------------------------------- reading
def load_checkpoint(
    model: nn.Module,
    path: str | os.PathLike[str],
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint folder into ``model`` (and optionally optimizer and scheduler), every
    file checked against its SHA-256 and decoded before anything is modified (also a method).

    Args:
        path: Checkpoint folder written by :func:`save_checkpoint`.
        optimizer, scheduler: Optimizer and scheduler to restore (the checkpoint must hold them).
        map_location: Device the stored tensors are read onto.

    Returns:
        The checkpoint metadata (``class``, ``config``, ``step``, ``metrics``, ``extra``,
        ``created_at``, ...) plus ``"path"`` and ``"extra_tensors"`` (dict, maybe empty).

    Raises:
        CheckpointError: missing, damaged or malformed checkpoint, or a model, optimizer or
            scheduler that does not match it (the message names the file or the keys).
    """
    directory = resolve_checkpoint_dir(path)
    metadata = read_verified_metadata(directory)
    device = str(map_location)
    aliases = metadata["aliases"]

    state = _load_tensors(directory / MODEL_FILE, device, aliases.get(MODEL_FILE, {}))
    _check_state_dict(model, state, directory)

    opt_state: dict[str, Any] | None = None
    if optimizer is not None:
        if not (directory / OPTIMIZER_JSON_FILE).exists():
            raise CheckpointError(f"checkpoint {directory} has no optimizer state")
        opt_tensors = _load_tensors(
            directory / OPTIMIZER_TENSORS_FILE, device, aliases.get(OPTIMIZER_TENSORS_FILE, {})
        )
        opt_state = _decode(_read_json(directory / OPTIMIZER_JSON_FILE), opt_tensors)
    sched_state: dict[str, Any] | None = None
    if scheduler is not None:
        if not (directory / SCHEDULER_FILE).exists():
            raise CheckpointError(f"checkpoint {directory} has no scheduler state")
        sched_state = _decode(_read_json(directory / SCHEDULER_FILE), {})
    extra_tensors: dict[str, torch.Tensor] = {}
    if (directory / STATE_TENSORS_FILE).exists():
        extra_tensors = _load_tensors(
            directory / STATE_TENSORS_FILE, device, aliases.get(STATE_TENSORS_FILE, {})
        )

    model.load_state_dict(state, strict=True)
    if optimizer is not None and opt_state is not None:
        try:
            optimizer.load_state_dict(opt_state)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(
                f"optimizer state in {directory} does not fit this optimizer: {exc}"
            ) from exc
    if scheduler is not None and sched_state is not None:
        scheduler.load_state_dict(sched_state)

    result = dict(metadata)
    result["path"] = str(directory)
    result["extra_tensors"] = extra_tensors
    return result


def read_checkpoint_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked ``checkpoint.json`` of a checkpoint folder (step, metrics, extra, class, ...).

    Raises:
        CheckpointError: no complete checkpoint there, or a malformed field (named).
    """
    return _read_metadata(resolve_checkpoint_dir(path))


def read_verified_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``read_checkpoint_metadata`` after checking every file against its recorded checksum.

    Raises:
        CheckpointError: a file is missing, has another size or checksum (named), or a field of
            ``checkpoint.json`` is malformed.
    """
    directory = resolve_checkpoint_dir(path)
    metadata = _read_metadata(directory)
    for name, record in metadata["files"].items():
        file = directory / name
        if not file.is_file():
            raise CheckpointError(f"checkpoint {directory}: {name} is missing")
        expected = record.get("sha256") if isinstance(record, dict) else None
        if expected is not None and _sha256(file) != expected:
            raise CheckpointError(
                f"checkpoint {directory}: {name} does not match its recorded SHA-256 "
                "(the file was changed or damaged)"
            )
    return metadata


def resolve_checkpoint_dir(path: str | os.PathLike[str]) -> Path:
    """The complete checkpoint folder for ``path``.

    Normally ``path`` itself. If a save was interrupted between moving the previous checkpoint
    aside and moving the new one in, ``path`` is missing and the newest complete sibling left by
    that save is returned instead.

    Raises:
        CheckpointError: no complete checkpoint exists there.
    """
    target = Path(path)
    if target.is_file() and target.name in (METADATA_FILE, MODEL_FILE):
        target = target.parent
    if _is_complete(target):
        return target
    candidates = []
    if target.parent.is_dir():
        for sibling in _leftovers(target):
            if _is_complete(sibling):
                created = str(_read_json(sibling / METADATA_FILE).get("created_at", ""))
                candidates.append((created, sibling))
    if candidates:
        return max(candidates)[1]
    if target.exists():
        raise CheckpointError(
            f"{target} is not a complete checkpoint (no valid {METADATA_FILE} or files missing)"
        )
    raise CheckpointError(f"no checkpoint found at {target}")


# ---------------------------------------------------------------------- a run's step folders
def checkpoint_path(run_dir: str | os.PathLike[str], step: int) -> Path:
    """``run_dir/step_XXXXXXX`` for ``step``."""
    return Path(run_dir) / f"step_{step:07d}"


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints (``step_XXXXXXX`` folders with ``checkpoint.json``), oldest first."""
    root = Path(run_dir)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_PATTERN.match(path.name)
        if match and path.is_dir() and (path / METADATA_FILE).is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The complete checkpoint with the highest step in ``run_dir``, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


# ---------------------------------------------------------------------- helpers: JSON encoding
def _json_checked(value: Any, what: str) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"checkpoint {what} must be JSON-serializable: {exc}") from None
    return value


def _scalars(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics with 0-dim tensors / numpy scalars turned into Python numbers."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        is_tensor = isinstance(value, torch.Tensor) and value.numel() == 1
        if is_tensor or (type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0):
            value = value.item()
        out[key] = value
    return out


_MARKERS = ("__tensor__", "__tuple__", "__dict__")


def _encode(obj: Any, where: str, tensors: dict[str, torch.Tensor] | None) -> Any:
    """Encode a state dict as JSON, moving tensors into ``tensors`` (``None``: tensors refused).

    Tuples and dicts with non-string keys are tagged so that decoding restores them exactly.
    """
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj  # json writes nan/inf as NaN/Infinity, which Python's json reads back
    if isinstance(obj, torch.Tensor):
        if tensors is None:
            raise TypeError(
                f"{where} is a tensor; scheduler state must be plain JSON (numbers, strings, "
                "lists, dicts) to be saved without pickle"
            )
        key = f"t{len(tensors)}"
        tensors[key] = obj
        return {"__tensor__": key}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{where}[{i}]", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{where}[{i}]", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) for k in obj) and not (len(obj) == 1 and set(obj) & {*_MARKERS}):
            return {k: _encode(v, f"{where}.{k}", tensors) for k, v in obj.items()}
        pairs = []
        for k, v in obj.items():
            if not (k is None or isinstance(k, (bool, int, float, str))):
                raise TypeError(f"{where} has a key of type {type(k).__name__}; cannot save it")
            pairs.append([k, _encode(v, f"{where}[{k!r}]", tensors)])
        return {"__dict__": pairs}
    raise TypeError(
        f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}, which cannot be saved "
        "without pickle (only numbers, strings, None, lists, tuples, dicts and tensors can)"
    )


def _decode(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if len(obj) == 1:
            ((tag, value),) = obj.items()
            if tag == "__tensor__":
                if value not in tensors:
                    raise CheckpointError(f"checkpoint references a missing tensor {value!r}")
                return tensors[value]
            if tag == "__tuple__":
                return tuple(_decode(v, tensors) for v in value)
            if tag == "__dict__":
                return {k: _decode(v, tensors) for k, v in value}
        return {k: _decode(v, tensors) for k, v in obj.items()}
    return obj


# ---------------------------------------------------------------------- helpers: tensors
def _dedupe_shared(
    state: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors safetensors can store (no shared memory, contiguous, CPU) and alias -> key map.

    Entries that are the very same view of the same memory (tied weights) are stored once and
    recorded as aliases; other overlapping views are copied.
    """
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    views: dict[tuple[Any, ...], str] = {}
    storages: set[int] = set()
    for key, tensor in state.items():
        tensor = tensor.detach()
        ptr = tensor.untyped_storage().data_ptr() if tensor.numel() > 0 else 0
        view = (
            tensor.device,
            ptr,
            tensor.storage_offset(),
            tuple(tensor.shape),
            tensor.stride(),
            tensor.dtype,
        )
        if ptr and view in views:
            aliases[key] = views[view]
            continue
        if ptr:
            views[view] = key
        out = tensor.cpu()
        if ptr and ptr in storages:
            out = out.clone()  # shares memory with an earlier entry: safetensors refuses that
        unique[key] = out.contiguous()
        if ptr:
            storages.add(ptr)
    return unique, aliases


def _load_tensors(file: Path, device: str, aliases: Mapping[str, str]) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not file.exists():
        raise CheckpointError(f"checkpoint file {file} is missing")
    try:
        tensors = load_file(str(file), device=device)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read {file}: {exc}") from exc
    for alias, source in aliases.items():
        if source not in tensors:
            raise CheckpointError(f"{file}: alias {alias!r} points to missing tensor {source!r}")
        tensors[alias] = tensors[source]
    return tensors


def _check_state_dict(
    model: nn.Module, state: Mapping[str, torch.Tensor], directory: Path, limit: int = 20
) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or mismatched):
        return

    def listing(items: list[str]) -> str:
        more = f" ... (+{len(items) - limit} more)" if len(items) > limit else ""
        return ", ".join(items[:limit]) + more

    parts = [f"checkpoint {directory} does not match {type(model).__qualname__}:"]
    if missing:
        parts.append(f"missing keys (in model, not in checkpoint): {listing(missing)}")
    if unexpected:
        parts.append(f"unexpected keys (in checkpoint, not in model): {listing(unexpected)}")
    if mismatched:
        parts.append(f"shape mismatches: {listing(mismatched)}")
    raise CheckpointError("\n  ".join(parts))


# ---------------------------------------------------------------------- helpers: files
def _write_json(file: Path, payload: Any) -> None:
    with open(file, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2, sort_keys=False)
        fh.write("\n")


def _read_json(file: Path) -> Any:
    try:
        with open(file, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {file}: {exc}") from exc


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _leftovers(target: Path) -> list[Path]:
    """Temporary and moved-aside siblings of ``target`` left by interrupted saves."""
    prefix = f".{target.name}"
    return [
        sibling
        for sibling in target.parent.iterdir()
        if sibling.name.startswith(prefix)
        and sibling.name[len(prefix) :].startswith((TMP_MARKER, _OLD_TAG))
    ]


def _remove_leftovers(target: Path) -> None:
    """Delete what interrupted saves of ``target`` (now complete) left beside it."""
    for sibling in _leftovers(target):
        shutil.rmtree(sibling, ignore_errors=True)


def _file_size(record: Any) -> int | None:
    """The recorded size of a file (format 1 stored a bare int, format 2 a dict)."""
    if isinstance(record, dict):
        record = record.get("bytes")
    return record if isinstance(record, int) and not isinstance(record, bool) else None


def _is_complete(directory: Path) -> bool:
    meta_file = directory / METADATA_FILE
    if not meta_file.is_file():
        return False
    try:
        metadata = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(metadata, dict) or metadata.get("format") != CHECKPOINT_FORMAT:
        return False
    files = metadata.get("files")
    if not isinstance(files, dict):
        return False
    for name, record in files.items():
        file = directory / str(name)
        if not file.is_file() or file.stat().st_size != _file_size(record):
            return False
    return (directory / MODEL_FILE).is_file()


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "class": (str,),
    "config": (dict,),
    "metrics": (dict,),
    "extra": (dict,),
    "aliases": (dict,),
    "files": (dict,),
}


def _read_metadata(directory: Path) -> dict[str, Any]:
    where = directory / METADATA_FILE
    metadata = _read_json(where)
    if not isinstance(metadata, dict) or metadata.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{where} is not a {CHECKPOINT_FORMAT} file")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{directory} has checkpoint format version {version!r}; this code reads up to "
            f"{CHECKPOINT_FORMAT_VERSION}"
        )
    metadata.setdefault("metrics", {})
    metadata.setdefault("extra", {})
    metadata.setdefault("aliases", {})
    for name, types in _FIELD_TYPES.items():
        if not isinstance(metadata.get(name), types):
            raise CheckpointError(
                f"{where}: field {name!r} must be a {' or '.join(t.__name__ for t in types)}, "
                f"got {metadata.get(name)!r:.80}"
            )
    step = metadata.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise CheckpointError(f"{where}: field 'step' must be a whole number >= 0, got {step!r}")
    for name, record in metadata["files"].items():
        if _file_size(record) is None:
            raise CheckpointError(f"{where}: malformed record for file {name!r}: {record!r}")
    for file_name, table in metadata["aliases"].items():
        if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in table.items()
        ):
            raise CheckpointError(f"{where}: malformed tensor aliases of {file_name!r}")
    return metadata
