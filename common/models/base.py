"""``BaseLanguageModel``: the base class of every language model, with generation and checkpoints.

Checkpoint layout (a directory, written atomically)::

    <path>/
        checkpoint.json        format version, class ("module:QualName"), config, step, metrics,
                               extra, created_at, versions, tensor aliases, file sizes
        model.safetensors      weights (tied/shared tensors stored once, aliases in the JSON)
        optimizer.safetensors  optimizer state tensors, flattened      (only with an optimizer)
        optimizer.json         param_groups and non-tensor state       (only with an optimizer)
        scheduler.json         scheduler.state_dict()                  (only with a scheduler)
        state.safetensors      ``extra_tensors`` such as RNG states    (only when given)

Nothing is ever pickled: loading reads only safetensors and JSON.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import math
import os
import platform
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BaseLanguageModel", "CheckpointError", "load_model_from_checkpoint"]

CHECKPOINT_FORMAT = "research-lm-checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
IGNORE_INDEX = -100

METADATA_FILE = "checkpoint.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_TENSORS_FILE = "optimizer.safetensors"
OPTIMIZER_JSON_FILE = "optimizer.json"
SCHEDULER_FILE = "scheduler.json"
STATE_TENSORS_FILE = "state.safetensors"

_TMP_TAG = ".tmp-"
_OLD_TAG = ".old-"

M = TypeVar("M", bound="BaseLanguageModel")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or malformed, or does not fit what it is loaded into."""


class BaseLanguageModel(nn.Module):
    """Base class of every language model in the monorepo.

    Subclasses call ``super().__init__(vocab_size, **all_other_constructor_args)`` first, so that
    ``type(model)(**model.config)`` rebuilds the same architecture (that is how
    :meth:`from_checkpoint` works), and implement :meth:`forward`.

    Forward convention (nanoGPT style, *not* Hugging Face style):
        ``forward(input_ids, labels=None) -> {"logits": [B, T, V], "loss": scalar}``.
        ``labels`` are ALREADY SHIFTED by the data loader: ``labels[:, t]`` is the target for
        the prediction made at position ``t`` (the token following ``input_ids[:, t]``). Models
        must not shift again. Positions whose label is ``-100`` are ignored. ``"loss"`` (present
        only when labels are given) is the mean cross-entropy over the non-ignored positions;
        :meth:`loss_from_logits` computes exactly that.

    Args:
        vocab_size: Size of the vocabulary.
        **kwargs: Every other constructor argument of the subclass (``context_length``,
            ``d_model``, ...). Values must be JSON-serializable.

    Raises:
        TypeError: If the configuration is not JSON-serializable.
    """

    config: dict[str, Any]

    def __init__(self, vocab_size: int, **kwargs: Any) -> None:
        super().__init__()
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
            raise TypeError(f"vocab_size must be a positive int, got {vocab_size!r}")
        config = {"vocab_size": vocab_size, **kwargs}
        try:
            text = json.dumps(config, allow_nan=False)
        except (TypeError, ValueError) as exc:
            bad = [k for k, v in config.items() if not _is_json_value(v)]
            raise TypeError(
                f"{type(self).__name__} config must be JSON-serializable (it is saved in "
                f"checkpoints and rebuilt with cls(**config)); offending keys: {bad or '?'} "
                f"({exc})"
            ) from None
        # Stored as its JSON round trip so the in-memory config equals what a checkpoint rebuilds.
        self.config = json.loads(text)

    # ------------------------------------------------------------------ basic properties
    @property
    def vocab_size(self) -> int:
        """Size of the vocabulary."""
        return int(self.config["vocab_size"])

    @property
    def context_length(self) -> int | None:
        """Maximum sequence length the model accepts (``None``: unlimited)."""
        value = self.config.get("context_length")
        return None if value is None else int(value)

    def forward(
        self, input_ids: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Compute logits (and the loss when ``labels`` are given); see the class docstring.

        Args:
            input_ids: Token ids ``[B, T]`` (int64).
            labels: Already-shifted targets ``[B, T]``; ``-100`` marks ignored positions.

        Returns:
            ``{"logits": [B, T, V]}`` plus ``"loss"`` (scalar) when labels are given.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    @staticmethod
    def loss_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over non-ignored positions (labels already shifted, ``-100`` ignored).

        Half-precision logits are upcast to float32 first. A batch whose labels are all ``-100``
        gives ``nan`` (0/0), as :func:`torch.nn.functional.cross_entropy` does.

        Args:
            logits: ``[..., V]`` scores.
            labels: ``[...]`` int64 targets, same leading shape as ``logits``.

        Returns:
            Scalar loss tensor.
        """
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        return F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE_INDEX
        )

    # ------------------------------------------------------------------ parameters
    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Number of parameters, each shared (tied) parameter counted once.

        Args:
            exclude_embeddings: Leave out the weights of every ``nn.Embedding`` module (an output
                head tied to an embedding shares its weight and is left out with it).

        Returns:
            The parameter count.
        """
        excluded: set[int] = set()
        if exclude_embeddings:
            for module in self.modules():
                if isinstance(module, nn.Embedding):
                    excluded.add(id(module.weight))
        seen: set[int] = set()
        total = 0
        for param in self.parameters():  # parameters() already de-duplicates by identity
            if id(param) in seen or id(param) in excluded:
                continue
            seen.add(id(param))
            total += param.numel()
        return total

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        eos_token_id: int | None = None,
        do_sample: bool = True,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Autoregressively extend ``input_ids`` by up to ``max_new_tokens`` tokens.

        The context fed to the model is cropped to its last ``context_length`` tokens. Decoding is
        greedy when ``do_sample`` is false or ``temperature`` is 0; otherwise tokens are sampled
        from the temperature-scaled distribution after top-k and then nucleus (top-p) filtering.
        A row that produced ``eos_token_id`` is finished: it is padded with ``eos_token_id`` and
        generation stops early once every row is finished. Runs without gradients in eval mode
        and restores the previous train/eval mode.

        Args:
            input_ids: Prompt ids ``[B, T]`` (or ``[T]``, returned as ``[T']``), ``T >= 1``.
            max_new_tokens: Maximum number of tokens to append (>= 0).
            temperature: Softmax temperature (>= 0; 0 means greedy).
            top_k: Keep only the ``top_k`` most likely tokens (>= 1).
            top_p: Keep the smallest set of tokens whose probability mass reaches ``top_p``
                (0 < top_p <= 1).
            eos_token_id: Token that finishes a row.
            do_sample: Sample (True) or take the argmax (False).
            generator: Optional random generator for reproducible sampling.

        Returns:
            ``[B, T + n]`` int64 ids, prompt included, with ``n <= max_new_tokens``.
        """
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        if temperature < 0 or math.isnan(temperature):
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        squeeze = input_ids.dim() == 1
        ids = input_ids.unsqueeze(0) if squeeze else input_ids
        if ids.dim() != 2 or ids.size(1) == 0:
            raise ValueError(f"input_ids must be [B, T] with T >= 1, got shape {tuple(ids.shape)}")
        ids = ids.long()
        greedy = not do_sample or temperature == 0
        limit = self.context_length
        finished = torch.zeros(ids.size(0), dtype=torch.bool, device=ids.device)

        was_training = self.training
        self.eval()
        try:
            for _ in range(max_new_tokens):
                context = ids if limit is None or ids.size(1) <= limit else ids[:, -limit:]
                out = self(context)
                logits = out["logits"] if isinstance(out, Mapping) else out
                logits = logits[:, -1, :].float()
                if greedy:
                    next_ids = logits.argmax(dim=-1)
                else:
                    logits = _filter_logits(logits / temperature, top_k, top_p)
                    probs = torch.softmax(logits, dim=-1)
                    next_ids = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
                if eos_token_id is not None:
                    next_ids = torch.where(
                        finished, torch.full_like(next_ids, eos_token_id), next_ids
                    )
                    finished |= next_ids == eos_token_id
                ids = torch.cat([ids, next_ids.unsqueeze(-1)], dim=1)
                if eos_token_id is not None and bool(finished.all()):
                    break
        finally:
            self.train(was_training)
        return ids.squeeze(0) if squeeze else ids

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(
        self,
        path: str | os.PathLike[str],
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any | None = None,
        step: int | None = None,
        extra: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        extra_tensors: Mapping[str, torch.Tensor] | None = None,
    ) -> Path:
        """Write a checkpoint directory atomically (see the module docstring for the layout).

        The files are written into a temporary directory beside ``path``, flushed to disk and then
        renamed into place, so a crash at any moment leaves either the previous or the new
        checkpoint complete (loading finds whichever is complete).

        Args:
            path: Checkpoint directory to create or replace.
            optimizer: Optimizer whose state to save.
            scheduler: LR scheduler whose ``state_dict()`` (JSON-serializable) to save.
            step: Training step.
            extra: JSON-serializable metadata (data-loader position, resolved config, ...).
            metrics: JSON-serializable metrics (numbers; 0-dim tensors are converted).
            extra_tensors: Named tensors saved in ``state.safetensors`` (e.g. RNG states).

        Returns:
            The checkpoint directory.

        Raises:
            TypeError: If ``extra``, ``metrics``, ``extra_tensors`` or the scheduler state cannot
                be stored without pickling.
        """
        from safetensors.torch import save_file

        target = Path(path)
        # Everything is encoded before touching the disk: a bad argument leaves no debris.
        model_tensors, aliases = _dedupe_shared(self.state_dict())
        files: dict[str, tuple[str, Any]] = {MODEL_FILE: ("safetensors", model_tensors)}
        if optimizer is not None:
            opt_tensors: dict[str, torch.Tensor] = {}
            opt_json = _encode(optimizer.state_dict(), "optimizer", opt_tensors)
            opt_unique, opt_aliases = _dedupe_shared(opt_tensors)
            files[OPTIMIZER_TENSORS_FILE] = ("safetensors", opt_unique)
            files[OPTIMIZER_JSON_FILE] = ("json", opt_json)
        else:
            opt_aliases = {}
        if scheduler is not None:
            files[SCHEDULER_FILE] = ("json", _encode(scheduler.state_dict(), "scheduler", None))
        if extra_tensors:
            bad = [k for k, v in extra_tensors.items() if not isinstance(v, torch.Tensor)]
            if bad or not all(isinstance(k, str) for k in extra_tensors):
                raise TypeError(f"extra_tensors must map str to torch.Tensor; bad entries: {bad}")
            state_tensors, state_aliases = _dedupe_shared(dict(extra_tensors))
            files[STATE_TENSORS_FILE] = ("safetensors", state_tensors)
        else:
            state_aliases = {}

        metadata: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "class": f"{type(self).__module__}:{type(self).__qualname__}",
            "config": self.config,
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

        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}{_TMP_TAG}{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        try:
            for name, (kind, payload) in files.items():
                file_path = tmp / name
                if kind == "safetensors":
                    save_file(payload, str(file_path))
                    _fsync_file(file_path)
                else:
                    _write_json(file_path, payload)
                metadata["files"][name] = file_path.stat().st_size
            # checkpoint.json is written last: its presence marks a complete directory.
            _write_json(tmp / METADATA_FILE, metadata)
            _fsync_dir(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _swap_into_place(tmp, target)
        _remove_leftovers(target)
        return target

    def load_checkpoint(
        self,
        path: str | os.PathLike[str],
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any | None = None,
        map_location: str | torch.device = "cpu",
    ) -> dict[str, Any]:
        """Load weights (and optionally optimizer/scheduler state) from a checkpoint directory.

        Args:
            path: Checkpoint directory written by :meth:`save_checkpoint`.
            optimizer: Optimizer to restore (the checkpoint must contain optimizer state).
            scheduler: Scheduler to restore (the checkpoint must contain scheduler state).
            map_location: Device the stored tensors are read onto.

        Returns:
            The checkpoint metadata (``class``, ``config``, ``step``, ``metrics``, ``extra``,
            ``created_at``, ...) plus ``"extra_tensors"`` (dict, empty when none were saved).

        Raises:
            CheckpointError: Missing/incomplete checkpoint, or a model/optimizer/scheduler that
                does not match it (the message names missing, unexpected and mismatched keys).
        """
        directory = resolve_checkpoint_dir(path)
        metadata = _read_metadata(directory)
        device = str(map_location)
        aliases = metadata.get("aliases", {})

        state = _load_tensors(directory / MODEL_FILE, device, aliases.get(MODEL_FILE, {}))
        _check_state_dict(self, state, directory)

        opt_state: dict[str, Any] | None = None
        if optimizer is not None:
            if not (directory / OPTIMIZER_JSON_FILE).exists():
                raise CheckpointError(f"checkpoint {directory} has no optimizer state")
            opt_tensors = _load_tensors(
                directory / OPTIMIZER_TENSORS_FILE,
                device,
                aliases.get(OPTIMIZER_TENSORS_FILE, {}),
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

        self.load_state_dict(state, strict=True)
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

    @classmethod
    def from_checkpoint(
        cls: type[M], path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
    ) -> M:
        """Rebuild the model class recorded in a checkpoint and load its weights.

        The recorded class is imported by module path; it must be a subclass of the class this is
        called on (and of :class:`BaseLanguageModel`). The model is returned on ``map_location``
        in eval mode.

        Args:
            path: Checkpoint directory.
            map_location: Device to place the model on.

        Returns:
            The rebuilt model.

        Raises:
            CheckpointError: If the class cannot be imported, is not a suitable subclass, cannot be
                built from the stored config, or the weights do not fit.
        """
        directory = resolve_checkpoint_dir(path)
        metadata = _read_metadata(directory)
        model_cls = _import_class(str(metadata.get("class", "")))
        if not issubclass(model_cls, cls):
            raise CheckpointError(
                f"checkpoint {directory} holds a {model_cls.__module__}.{model_cls.__qualname__},"
                f" which is not a subclass of {cls.__qualname__}"
            )
        config = metadata.get("config")
        if not isinstance(config, dict):
            raise CheckpointError(f"checkpoint {directory} has no config object")
        try:
            model = model_cls(**config)
        except TypeError as exc:
            raise CheckpointError(
                f"cannot build {model_cls.__qualname__} from the config in {directory}: {exc}"
            ) from exc
        model.to(torch.device(map_location))
        model.load_checkpoint(directory, map_location=map_location)
        model.eval()
        return model


def load_model_from_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> BaseLanguageModel:
    """Rebuild whichever model class a checkpoint records and load its weights (eval mode).

    Args:
        path: Checkpoint directory.
        map_location: Device to place the model on.

    Returns:
        The model.
    """
    return BaseLanguageModel.from_checkpoint(path, map_location=map_location)


def read_checkpoint_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``checkpoint.json`` of a checkpoint directory (step, metrics, extra, class, config).

    Args:
        path: Checkpoint directory.

    Returns:
        The metadata dict.
    """
    return _read_metadata(resolve_checkpoint_dir(path))


def resolve_checkpoint_dir(path: str | os.PathLike[str]) -> Path:
    """The complete checkpoint directory for ``path``.

    Normally ``path`` itself. If a save was interrupted between moving the previous checkpoint
    aside and moving the new one in, ``path`` is missing and the newest complete sibling left by
    that save is returned instead.

    Args:
        path: Checkpoint directory (or a file inside one).

    Returns:
        The directory to read.

    Raises:
        CheckpointError: If no complete checkpoint exists there.
    """
    target = Path(path)
    if target.is_file() and target.name in (METADATA_FILE, MODEL_FILE):
        target = target.parent
    if _is_complete(target):
        return target
    candidates = []
    if target.parent.is_dir():
        prefix = f".{target.name}"
        for sibling in target.parent.iterdir():
            rest = sibling.name[len(prefix) :]
            leftover = sibling.name.startswith(prefix) and rest.startswith((_TMP_TAG, _OLD_TAG))
            if leftover and _is_complete(sibling):
                created = str(_read_json(sibling / METADATA_FILE).get("created_at", ""))
                candidates.append((created, sibling))
    if candidates:
        return max(candidates)[1]
    if target.exists():
        raise CheckpointError(
            f"{target} is not a complete checkpoint (no valid {METADATA_FILE} or files missing)"
        )
    raise CheckpointError(f"no checkpoint found at {target}")


# ---------------------------------------------------------------------- helpers: generation
def _filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Set logits outside the top-k / nucleus sets to -inf (always keeping the best token)."""
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs
        remove_sorted = mass_before >= top_p
        remove_sorted[..., 0] = False
        remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
        logits = logits.masked_fill(remove, float("-inf"))
    return logits


# ---------------------------------------------------------------------- helpers: JSON encoding
def _is_json_value(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


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
        fh.flush()
        os.fsync(fh.fileno())


def _read_json(file: Path) -> Any:
    try:
        with open(file, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {file}: {exc}") from exc


def _fsync_file(file: Path) -> None:
    fd = os.open(file, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``, moving an existing ``target`` aside first and deleting it."""
    if target.exists() or target.is_symlink():
        old = target.parent / f".{target.name}{_OLD_TAG}{uuid.uuid4().hex[:12]}"
        os.rename(target, old)
        os.rename(tmp, target)
        _fsync_dir(target.parent)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, target)
    _fsync_dir(target.parent)


def _remove_leftovers(target: Path) -> None:
    """Delete temp/old siblings left by interrupted saves of ``target`` (now complete)."""
    prefix = f".{target.name}"
    for sibling in target.parent.iterdir():
        rest = sibling.name[len(prefix) :]
        if sibling.name.startswith(prefix) and rest.startswith((_TMP_TAG, _OLD_TAG)):
            shutil.rmtree(sibling, ignore_errors=True)


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
    for name, size in (metadata.get("files") or {}).items():
        file = directory / name
        if not file.is_file() or file.stat().st_size != size:
            return False
    return (directory / MODEL_FILE).is_file()


def _read_metadata(directory: Path) -> dict[str, Any]:
    metadata = _read_json(directory / METADATA_FILE)
    if not isinstance(metadata, dict) or metadata.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{directory / METADATA_FILE} is not a {CHECKPOINT_FORMAT} file")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{directory} has checkpoint format version {version!r}; this code reads up to "
            f"{CHECKPOINT_FORMAT_VERSION}"
        )
    return metadata


def _import_class(spec: str) -> type:
    module_name, sep, qualname = spec.partition(":")
    if not sep or not module_name or not qualname:
        raise CheckpointError(f"checkpoint class {spec!r} is not of the form 'module:QualName'")
    if "<locals>" in qualname:
        raise CheckpointError(
            f"checkpoint class {spec!r} was defined inside a function and cannot be imported; "
            "build the model yourself and call model.load_checkpoint(path)"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise CheckpointError(f"cannot import module {module_name!r} of {spec!r}: {exc}") from exc
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CheckpointError(f"module {module_name!r} has no class {qualname!r}") from None
    if not (isinstance(obj, type) and issubclass(obj, BaseLanguageModel)):
        raise CheckpointError(
            f"checkpoint class {spec!r} is not a BaseLanguageModel subclass; refusing to build it"
        )
    return obj
