"""Any downloaded ``transformers`` causal LM as a ``BaseLanguageModel``: full or LoRA fine-tuning.

``PretrainedLM`` wraps ``AutoModelForCausalLM`` loaded from a local folder only
(``local_files_only=True``): a repo id is looked up under ``assets/models/<org>/<name>`` (where
``tools/download_hf_model.py`` puts it), anything else is a folder path. The framework's
conventions hold: ``forward(input_ids, labels)`` takes labels already shifted by the loader, so the
labels never reach the Hugging Face model (which would shift them again) and the loss is
``BaseLanguageModel.loss_from_logits`` (``-100`` ignored).

Checkpoints use the framework's format. What they hold depends on what trains:

- full fine-tuning (``lora_rank`` 0): every weight;
- LoRA (``lora_rank`` > 0, ``peft``): only the adapter's ``lora_*`` tensors, the base frozen;
- nothing (``train_base=False`` without LoRA, the zero-shot evaluation): no tensors at all.

In every case the checkpoint's config names the base (``pretrained``, the folder it was found
in, the revision its ``.download.json`` records) and the size and SHA-256 of each of its weight,
config and tokenizer files (``base_files``); rebuilding or resuming against a folder whose files
differ raises ``BaseModelChangedError`` naming them. :func:`export_pretrained` writes a folder
``AutoModelForCausalLM.from_pretrained`` loads (the adapter merged, the tokenizer files copied).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from common.models.base import BaseLanguageModel
from common.models.checkpoint import read_checkpoint_metadata
from common.utils.config import ConfigError, ModelConfig

__all__ = [
    "BaseModelChangedError",
    "PretrainedConfig",
    "PretrainedLM",
    "PretrainedNotFoundError",
    "base_fingerprint",
    "export_pretrained",
    "resolve_pretrained",
]

BASE_FILE_PATTERNS = (
    "config.json", "generation_config.json", "*.safetensors", "*.bin", "*.pt", "*.pth",
    "*.safetensors.index.json", "*.bin.index.json", "tokenizer*", "vocab.json", "merges.txt",
    "*.model", "special_tokens_map.json", "added_tokens.json", "chat_template*",
)  # fmt: skip
"""The files of a base model folder that decide its weights and tokenization (fingerprinted)."""
TOKENIZER_PATTERNS = (
    "tokenizer*", "vocab.json", "merges.txt", "*.model", "special_tokens_map.json",
    "added_tokens.json", "chat_template*",
)  # fmt: skip
"""The files an export copies from the base folder."""
DOWNLOAD_TOOL = "python tools/download_hf_model.py --repo-id"


class PretrainedNotFoundError(ConfigError):
    """``model.pretrained`` names no downloaded model; the message says how to download it."""


class BaseModelChangedError(ConfigError):
    """The base model folder's files differ from those a checkpoint was trained on.

    Not a ``CheckpointError`` on purpose: the checkpoints are intact, so a resume must stop
    (exit 2) rather than fall back to an older checkpoint or restart from step 0.
    """


@dataclass
class PretrainedConfig(ModelConfig):
    """The ``model`` section: which pretrained model, and LoRA (``lora_rank`` 0: full tuning).

    ``context_length`` is the training/evaluation window (at most the model's positions);
    ``d_model``, ``n_layers``, ``n_heads``, ``d_ff`` and ``dropout`` are the base model's own and
    ignored here. ``lora_alpha`` null and ``lora_targets`` empty take ``peft``'s defaults (alpha
    8; the attention projections it knows for the architecture: ``c_attn`` for GPT-2,
    ``q_proj``/``v_proj`` for Llama).
    """

    pretrained: str = ""
    lora_rank: int = 0
    lora_alpha: float | None = None
    lora_dropout: float = 0.0
    lora_targets: list[str] = field(default_factory=list)

    def tokenizer_source(self) -> str:
        """The base model's tokenizer for ``data.tokenizer: model``: its repo id (found under
        ``assets/models`` wherever that is) or its folder; raises ``PretrainedNotFoundError``."""
        folder = resolve_pretrained(self.pretrained)
        is_folder = (Path(self.pretrained).expanduser() / "config.json").is_file()
        return str(folder) if is_folder else self.pretrained


def resolve_pretrained(spec: str) -> Path:
    """The local folder of ``spec``: a folder path, or a repo id downloaded to ``assets/models``.

    Raises:
        PretrainedNotFoundError: nothing with a ``config.json`` there; names the download command.
    """
    from common.hub.names import model_path

    if not spec:
        raise PretrainedNotFoundError(
            "model.pretrained is not set: name a downloaded model (--set model.pretrained="
            "openai-community/gpt2) or a folder"
        )
    path = Path(spec).expanduser()
    if (path / "config.json").is_file():
        return path.resolve()
    looks_like_path = spec.startswith((".", "/", "~")) or spec.count("/") > 1
    if not looks_like_path:
        try:
            folder = model_path(spec)
        except ValueError:
            folder = None
        if folder is not None and (folder / "config.json").is_file():
            return folder
        where = f" (looked in {folder})" if folder is not None else ""
        raise PretrainedNotFoundError(
            f"model {spec!r} is not downloaded{where}; download it first: {DOWNLOAD_TOOL} {spec}"
        )
    raise PretrainedNotFoundError(f"model folder {spec} not found (no config.json there)")


_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FINGERPRINTS:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _FINGERPRINTS[key] = digest.hexdigest()
    return _FINGERPRINTS[key]


def base_fingerprint(folder: Path) -> dict[str, dict[str, Any]]:
    """``{file: {"bytes", "sha256"}}`` of the weight, config and tokenizer files of ``folder``."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        hidden = any(part.startswith(".") for part in Path(rel).parts)
        if hidden or not path.is_file():
            continue
        if any(fnmatch.fnmatch(path.name, pattern) for pattern in BASE_FILE_PATTERNS):
            found[rel] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    return found


def _revision(folder: Path) -> str | None:
    from common.hub.manifest import read_manifest

    manifest = read_manifest(folder) or {}
    value = manifest.get("commit") or manifest.get("revision")
    return None if value is None else str(value)


def _base_changed(
    pretrained: str, folder: Path, revision: str | None, recorded: dict, current: dict
) -> BaseModelChangedError:
    names = sorted(set(recorded) | set(current))
    changed = [n for n in names if recorded.get(n) != current.get(n)]
    return BaseModelChangedError(
        f"the base model folder {folder} changed since this checkpoint was trained on it "
        f"(revision {revision or 'unknown'}): {', '.join(changed)} differ; restore it "
        f"({DOWNLOAD_TOOL} {pretrained} --revision {revision or 'main'} --force) or train a new run"
    )


class PretrainedLM(BaseLanguageModel):
    """A ``transformers`` causal LM on the framework (see the module docstring).

    Args:
        vocab_size: the model's vocabulary (checked against the base; None: the base's).
        pretrained: repo id under ``assets/models`` or folder path.
        context_length: the longest window trained or evaluated (None: the model's positions).
        lora_rank: LoRA rank (0: no adapter).
        lora_alpha, lora_dropout, lora_targets: LoRA settings (None/empty: ``peft``'s defaults).
        train_base: train the base weights (ignored with LoRA, which freezes them).
        revision, base_folder, base_files: the base's identity, recorded in checkpoints; when
            ``base_files`` is given the folder must still hold exactly those files.

    Raises:
        PretrainedNotFoundError: the base is not downloaded.
        BaseModelChangedError: ``base_files`` differ from the folder's (``from_checkpoint``
            reports it as a ``CheckpointError`` naming the files).
        ValueError: an impossible ``context_length``, ``vocab_size`` or LoRA setting.
    """

    hf: Any
    """The ``transformers`` model (a ``peft`` model with LoRA)."""

    def __init__(
        self,
        vocab_size: int | None = None,
        pretrained: str = "",
        context_length: int | None = None,
        lora_rank: int = 0,
        lora_alpha: float | None = None,
        lora_dropout: float = 0.0,
        lora_targets: list[str] | None = None,
        train_base: bool = True,
        revision: str | None = None,
        base_folder: str | None = None,
        base_files: dict[str, Any] | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        folder = resolve_pretrained(pretrained)
        current = base_fingerprint(folder)
        if base_files is not None and current != base_files:
            raise _base_changed(pretrained, folder, revision, base_files, current)
        hf = AutoModelForCausalLM.from_pretrained(
            str(folder), local_files_only=True, dtype=torch.float32
        )
        hf.config.use_cache = False
        positions = _max_positions(hf.config)
        if context_length is not None and positions is not None and context_length > positions:
            raise ValueError(
                f"context_length {context_length} exceeds the {positions} positions of {pretrained}"
            )
        base_vocab = int(hf.get_output_embeddings().weight.shape[0])
        if vocab_size is not None and vocab_size != base_vocab:
            raise ValueError(
                f"vocab_size {vocab_size} differs from the {base_vocab} outputs of {pretrained}"
            )
        if lora_rank < 0:
            raise ValueError(f"lora_rank must be >= 0, got {lora_rank}")
        super().__init__(
            base_vocab,
            pretrained=pretrained,
            context_length=context_length or positions,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            lora_targets=list(lora_targets or []),
            train_base=train_base,
            revision=revision or _revision(folder),
            base_folder=str(folder),
            base_files=current,
        )
        self.base_folder = folder
        if lora_rank > 0:
            hf = _with_lora(hf, lora_rank, lora_alpha, lora_dropout, lora_targets)
        elif not train_base:
            hf.requires_grad_(False)
        self.hf = hf

    # ------------------------------------------------------------------ the framework's forward
    def forward(
        self, input_ids: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``{"logits"}`` plus ``"loss"`` for already-shifted ``labels`` (never passed to HF)."""
        logits = self.hf(input_ids=input_ids, use_cache=False).logits
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = self.loss_from_logits(logits, labels)
        return out

    # ------------------------------------------------------------------ what a checkpoint holds
    def _stored(self, key: str) -> bool:
        if self.config["lora_rank"] > 0:
            return "lora_" in key
        return bool(self.config["train_base"])

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        """The tensors a checkpoint holds: all, the adapter's, or none (see the module)."""
        state = super().state_dict(*args, **kwargs)
        return {k: v for k, v in state.items() if self._stored(k)}

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """Load what :meth:`state_dict` returns; the rest stays the base model's."""
        expected = set(self.state_dict())
        if strict and set(state_dict) != expected:
            missing, unexpected = expected - set(state_dict), set(state_dict) - expected
            raise RuntimeError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
        return super().load_state_dict(state_dict, strict=False, assign=assign)

    def load_checkpoint(self, path: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """``BaseLanguageModel.load_checkpoint`` after checking that the checkpoint was trained on
        this base (``BaseModelChangedError``) with these LoRA settings (``ConfigError``)."""
        saved = read_checkpoint_metadata(path).get("config") or {}
        recorded = saved.get("base_files")
        if recorded is not None and recorded != self.config["base_files"]:
            revision = saved.get("revision")
            current = self.config["base_files"]
            raise _base_changed(
                self.config["pretrained"], self.base_folder, revision, recorded, current
            )
        for key in ("pretrained", "lora_rank", "lora_targets", "train_base"):
            if key in saved and saved[key] != self.config[key]:
                raise ConfigError(
                    f"checkpoint {path} has {key}={saved[key]!r}, this model {self.config[key]!r}"
                )
        return super().load_checkpoint(path, *args, **kwargs)

    # ------------------------------------------------------------------ back to transformers
    def to_transformers(self) -> Any:
        """The Hugging Face model with the adapter merged in (this model keeps no adapter)."""
        if self.config["lora_rank"] > 0:
            self.hf = self.hf.merge_and_unload()
            self.config["lora_rank"] = 0
        return self.hf


def _max_positions(config: Any) -> int | None:
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _with_lora(
    hf: Any, rank: int, alpha: float | None, dropout: float, targets: list[str] | None
) -> Any:
    from peft import LoraConfig, get_peft_model

    options: dict[str, Any] = {"r": rank, "lora_dropout": dropout, "task_type": "CAUSAL_LM"}
    if alpha is not None:
        options["lora_alpha"] = alpha
    if targets:
        options["target_modules"] = list(targets)
    if getattr(hf.config, "model_type", None) == "gpt2":
        options["fan_in_fan_out"] = True  # GPT-2's Conv1D stores weights transposed
    try:
        return get_peft_model(hf, LoraConfig(**options))
    except ValueError as exc:
        raise ValueError(f"LoRA: {exc} (set model.lora_targets)") from None


def build_pretrained(cfg: PretrainedConfig, *, train_base: bool = True) -> PretrainedLM:
    """``PretrainedLM`` for the config's ``model`` section."""
    return PretrainedLM(
        pretrained=cfg.pretrained,
        context_length=cfg.context_length,
        lora_rank=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        lora_targets=cfg.lora_targets,
        train_base=train_base,
    )


def export_pretrained(checkpoint: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Write a checkpoint as a folder ``AutoModelForCausalLM.from_pretrained`` loads.

    The adapter (if any) is merged into the weights; the base folder's tokenizer files are
    copied. ``out_dir`` must not exist (nothing is overwritten); it appears complete or not at all.

    Returns:
        ``out_dir``.

    Raises:
        CheckpointError: no usable checkpoint, or its base folder changed.
        FileExistsError: ``out_dir`` exists.
    """
    from common.utils.atomic import atomic_dir

    model = PretrainedLM.from_checkpoint(checkpoint)
    hf = model.to_transformers()
    target = Path(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(target) as tmp:
        hf.save_pretrained(str(tmp), safe_serialization=True)
        for path in sorted(model.base_folder.iterdir()):
            if path.is_file() and any(fnmatch.fnmatch(path.name, p) for p in TOKENIZER_PATTERNS):
                shutil.copy2(path, tmp / path.name)
    return target
