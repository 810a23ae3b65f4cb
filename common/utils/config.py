"""Typed run configuration: YAML files parsed into dataclasses, with command-line overrides.

A config file has up to four sections, ``model``, ``data``, ``training`` and ``logging``, each
parsed into its dataclass. An unknown key is an error naming it and the valid keys; a value of the
wrong type is an error naming the field. ``--set training.lr=3e-4`` style overrides (values parsed
as YAML scalars) apply on top. Projects with their own model hyper-parameters pass their own
``ModelConfig`` subclass as ``model_cls``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message says which key and why."""


@dataclass
class ModelConfig:
    """Hyper-parameters common to decoder-only language models.

    ``vocab_size`` of ``None`` means: take it from the tokenizer.
    """

    vocab_size: int | None = None
    context_length: int = 256
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 8
    d_ff: int | None = None
    dropout: float = 0.0


@dataclass
class DataConfig:
    """Where the text comes from and how it is tokenized.

    ``source``: ``"synthetic"`` (the embedded story generator), ``"dataset"`` (a data set saved by
    ``download_dataset`` under ``assets/datasets/<dataset>``) or ``"text"`` (plain text files).
    ``tokenizer``: ``"bpe"`` (byte-level BPE trained on the training text, ``vocab_size`` tokens),
    ``"gpt2"``, or a path / repo id of a Hugging Face tokenizer.
    """

    source: str = "synthetic"
    dataset: str | None = None
    text_column: str = "text"
    train_split: str = "train"
    val_split: str = "validation"
    train_files: list[str] = field(default_factory=list)
    val_files: list[str] = field(default_factory=list)
    max_train_documents: int | None = None
    max_val_documents: int | None = None
    synthetic_train_stories: int = 20000
    synthetic_val_stories: int = 500
    synthetic_seed: int = 1234
    tokenizer: str = "bpe"
    vocab_size: int = 4096
    num_workers: int = 0


@dataclass
class TrainingConfig:
    """Optimization, evaluation and checkpointing schedule.

    ``batch_size`` is per process and per micro-step; the global batch is
    ``batch_size * grad_accum_steps * world_size`` sequences. ``schedule`` is one of ``cosine``,
    ``linear``, ``constant``, ``wsd`` (warmup-stable-decay; ``decay_fraction`` of the steps decay).
    ``dtype``: ``float32``, ``bf16`` or ``fp16`` (autocast, CUDA only). ``device``: ``auto``,
    ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    """

    seed: int = 1337
    max_steps: int = 1000
    batch_size: int = 16
    grad_accum_steps: int = 1
    lr: float = 3e-4
    min_lr: float = 3e-5
    warmup_steps: int = 100
    schedule: str = "cosine"
    decay_fraction: float = 0.2
    weight_decay: float = 0.1
    decay_embeddings: bool = False
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    grad_clip: float | None = 1.0
    eval_interval: int = 100
    eval_batches: int | None = 50
    checkpoint_interval: int = 500
    keep_checkpoints: int = 2
    device: str = "auto"
    dtype: str = "float32"
    compile: bool = False


@dataclass
class LoggingConfig:
    """Naming and output of a run.

    ``experiment_name`` names the experiment rows and the checkpoint folder
    (``assets/outputs/checkpoints/<experiment_name>``); ``None`` derives one from the project, the
    config file and the start time.
    """

    project: str | None = None
    experiment_name: str | None = None
    log_interval: int = 10
    progress_bar: bool = True
    sample_prompts: list[str] = field(default_factory=lambda: ["Once upon a time"])
    sample_tokens: int = 40
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Config:
    """A whole run: model, data, training and logging sections."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


T = TypeVar("T")
SECTIONS = ("model", "data", "training", "logging")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; int is accepted where float is expected."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp) or (Any, Any)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {
            _coerce(k, key_tp, where): _coerce(v, val_tp, f"{where}.{k}") for k, v in value.items()
        }
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return parse_dataclass(tp, value, where)
    return value


def parse_dataclass(cls: type[T], data: Any, where: str = "") -> T:
    """Build ``cls`` from a mapping, rejecting unknown keys and wrongly typed values."""
    label = where or cls.__name__
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{label}: expected a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{label}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}"
            f"; valid keys: {', '.join(fields)}"
        )
    kwargs = {
        name: _coerce(value, hints[name], f"{where}.{name}" if where else name)
        for name, value in data.items()
    }
    return cls(**kwargs)


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as plain nested dicts (JSON/YAML-serializable)."""
    return dataclasses.asdict(config)


def _parse_override(text: str) -> tuple[list[str], Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected SECTION.KEY=VALUE, e.g. training.lr=3e-4")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: cannot parse value: {exc}") from None
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``SECTION.KEY=VALUE`` overrides to a raw config mapping (in place; also returned)."""
    for text in overrides:
        path, value = _parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return data


def load_config(
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    *,
    model_cls: type[ModelConfig] = ModelConfig,
) -> Config:
    """Read a YAML config (or start from defaults when ``path`` is None) and apply overrides.

    Args:
        path: a YAML file with ``model``/``data``/``training``/``logging`` sections.
        overrides: ``SECTION.KEY=VALUE`` strings, applied in order after the file.
        model_cls: the project's model hyper-parameter dataclass for the ``model`` section.

    Returns:
        The resolved ``Config``.

    Raises:
        ConfigError: unreadable file, unknown section or key, or a value of the wrong type.
    """
    raw: Any = {}
    if path is not None:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping with sections {', '.join(SECTIONS)}")
    raw = apply_overrides(raw, overrides)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"unknown config section {', '.join(map(repr, unknown))}; valid: {', '.join(SECTIONS)}"
        )
    return Config(
        model=parse_dataclass(model_cls, raw.get("model"), "model"),
        data=parse_dataclass(DataConfig, raw.get("data"), "data"),
        training=parse_dataclass(TrainingConfig, raw.get("training"), "training"),
        logging=parse_dataclass(LoggingConfig, raw.get("logging"), "logging"),
    )
