"""Typed run configuration: YAML files parsed into dataclasses, with command-line overrides.

A config file has up to four sections, ``model``, ``data``, ``training`` and ``logging``, each
parsed into its dataclass. An unknown key is an error naming it and the valid keys; a value of the
wrong type is an error naming the field. ``--set training.lr=3e-4`` style overrides (values parsed
as YAML scalars) apply on top. Projects with their own model hyper-parameters pass their own
``ModelConfig`` subclass as ``model_cls``.
"""

from __future__ import annotations

import dataclasses
import json
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

    def tokenizer_source(self) -> str | None:
        """What ``data.tokenizer: model`` stands for: a model that brings its own tokenizer
        returns its folder or repo id (a pretrained model); None for models without one."""
        return None


@dataclass
class DataConfig:
    """Where the text comes from and how it is tokenized.

    ``source``: ``"synthetic"`` (the embedded story generator), ``"dataset"`` (a data set saved by
    ``download_dataset`` under ``assets/datasets/<dataset>``) or ``"text"`` (plain text files).
    ``tokenizer``: ``"bpe"`` (byte-level BPE trained on the training text, ``vocab_size`` tokens),
    ``"gpt2"``, a path / repo id of a Hugging Face tokenizer, or ``"model"``: the model's own
    (``ModelConfig.tokenizer_source()``, e.g. a pretrained model's folder).
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
    synthetic_difficulty: float = 1.0
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
    ``cpu``, ``cuda``, ``cuda:N`` or ``mps``. ``eval_batches`` counts global batches (the same
    windows whatever the number of processes; ``None``: the whole validation split).
    ``collapse_steps``: after this many consecutive steps with an exactly zero gradient norm or
    an unchanged loss the run is reported as collapsed (0: never). ``dist_timeout_s``: how long a
    rank waits for the others under ``torchrun`` before every rank stops with an error naming
    the missing one.
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
    collapse_steps: int = 20
    dist_timeout_s: float = 300.0


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
MODEL_TOKENIZER = "model"
"""The ``data.tokenizer`` value for the model's own tokenizer (``ModelConfig.tokenizer_source``)."""
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


SCHEDULES = ("cosine", "linear", "constant", "wsd")
DTYPES = ("float32", "bf16", "fp16")

SCHEDULE_KEYS = frozenset(
    {"lr", "min_lr", "warmup_steps", "schedule", "decay_fraction", "max_steps"}
)
"""``training`` keys that shape the learning-rate schedule (changed on resume: a new schedule from
the resume step on)."""

RESUMABLE_KEYS: dict[str, frozenset[str]] = {
    "training": SCHEDULE_KEYS
    | {
        "eval_interval",
        "eval_batches",
        "checkpoint_interval",
        "keep_checkpoints",
        "device",
        "dtype",
        "compile",
        "grad_clip",
        "collapse_steps",
        "dist_timeout_s",
    },
    "data": frozenset({"num_workers"}),
    "logging": frozenset(
        {"log_interval", "progress_bar", "sample_prompts", "sample_tokens", "tags"}
    ),
}
"""Config keys an override may change when a run is resumed."""


def config_differences(saved: Mapping[str, Any], config: Any) -> list[tuple[str, str, Any, Any]]:
    """``(section, key, saved value, current value)`` for every key ``config`` changes from the
    ``saved`` config dict (values compared as JSON)."""
    current = config_to_dict(config)
    return [
        (section, key, saved[section].get(key), value)
        for section, values in current.items()
        if isinstance(values, dict) and isinstance(saved.get(section), dict)
        for key, value in values.items()
        if json.dumps(saved[section].get(key), default=str) != json.dumps(value, default=str)
    ]


def _check(ok: bool, field_name: str, requirement: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{field_name}: must be {requirement}, got {value!r}")


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))


def validate_schedule(cfg: TrainingConfig) -> None:
    """Check the learning-rate schedule fields of ``cfg``.

    Raises:
        ConfigError: unknown schedule name or impossible numbers, naming the field.
    """
    if cfg.schedule not in SCHEDULES:
        raise ConfigError(
            f"training.schedule: unknown schedule {cfg.schedule!r}; valid: {', '.join(SCHEDULES)}"
        )
    _check(cfg.max_steps >= 1, "training.max_steps", ">= 1", cfg.max_steps)
    _check(cfg.warmup_steps >= 0, "training.warmup_steps", ">= 0", cfg.warmup_steps)
    _check(cfg.lr > 0 and _finite(cfg.lr), "training.lr", "a finite number > 0", cfg.lr)
    _check(
        0 <= cfg.min_lr <= cfg.lr,
        "training.min_lr",
        f"between 0 and training.lr ({cfg.lr})",
        cfg.min_lr,
    )
    _check(
        0.0 <= cfg.decay_fraction <= 1.0, "training.decay_fraction", "between 0 and 1",
        cfg.decay_fraction,
    )  # fmt: skip


def validate_config(config: Config) -> Config:
    """Check that every value of ``config`` is possible; returns ``config``.

    Raises:
        ConfigError: the first impossible value, naming its field (``training.batch_size``,
            ``model.n_heads``, ...).
    """
    m, d, t, log = config.model, config.data, config.training, config.logging
    _check(m.vocab_size is None or m.vocab_size >= 1, "model.vocab_size", ">= 1", m.vocab_size)
    for name in ("context_length", "d_model", "n_layers", "n_heads"):
        _check(getattr(m, name) >= 1, f"model.{name}", ">= 1", getattr(m, name))
    _check(
        m.d_model % m.n_heads == 0,
        "model.n_heads",
        f"a divisor of model.d_model ({m.d_model})",
        m.n_heads,
    )
    _check(m.d_ff is None or m.d_ff >= 1, "model.d_ff", ">= 1 or null", m.d_ff)
    _check(0.0 <= m.dropout < 1.0, "model.dropout", "in [0, 1)", m.dropout)

    _check(d.vocab_size >= 1, "data.vocab_size", ">= 1", d.vocab_size)
    _check(d.num_workers >= 0, "data.num_workers", ">= 0", d.num_workers)
    _check(
        0.0 <= d.synthetic_difficulty <= 1.0,
        "data.synthetic_difficulty",
        "between 0 and 1",
        d.synthetic_difficulty,
    )
    for name in ("synthetic_train_stories", "synthetic_val_stories"):
        _check(getattr(d, name) >= 1, f"data.{name}", ">= 1", getattr(d, name))
    for name in ("max_train_documents", "max_val_documents"):
        value = getattr(d, name)
        _check(value is None or value >= 1, f"data.{name}", ">= 1 or null", value)

    validate_schedule(t)
    for name in ("batch_size", "grad_accum_steps"):
        _check(getattr(t, name) >= 1, f"training.{name}", ">= 1", getattr(t, name))
    for name in ("eval_interval", "checkpoint_interval", "keep_checkpoints", "collapse_steps"):
        _check(getattr(t, name) >= 0, f"training.{name}", ">= 0 (0: never)", getattr(t, name))
    _check(
        t.eval_batches is None or t.eval_batches >= 1,
        "training.eval_batches",
        ">= 1 or null (the whole split)",
        t.eval_batches,
    )
    _check(
        t.grad_clip is None or t.grad_clip >= 0, "training.grad_clip", ">= 0 or null", t.grad_clip
    )
    _check(t.weight_decay >= 0, "training.weight_decay", ">= 0", t.weight_decay)
    _check(
        len(t.betas) == 2 and all(0 <= b < 1 for b in t.betas),
        "training.betas",
        "two numbers in [0, 1)",
        t.betas,
    )
    _check(t.eps > 0, "training.eps", "> 0", t.eps)
    _check(t.dtype in DTYPES, "training.dtype", f"one of {', '.join(DTYPES)}", t.dtype)
    _check(t.dist_timeout_s > 0, "training.dist_timeout_s", "> 0 seconds", t.dist_timeout_s)

    _check(log.log_interval >= 0, "logging.log_interval", ">= 0 (0: never)", log.log_interval)
    _check(log.sample_tokens >= 0, "logging.sample_tokens", ">= 0", log.sample_tokens)
    return config


def config_from_dict(
    raw: Mapping[str, Any],
    overrides: Iterable[str] = (),
    *,
    model_cls: type[ModelConfig] = ModelConfig,
) -> Config:
    """A validated ``Config`` from a nested mapping (a YAML file's, a run's stored one) and
    ``SECTION.KEY=VALUE`` overrides.

    Raises:
        ConfigError: unknown section or key, a value of the wrong type or an impossible value.
    """
    data = apply_overrides({k: dict(v or {}) for k, v in raw.items()}, overrides)
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"unknown config section {', '.join(map(repr, unknown))}; valid: {', '.join(SECTIONS)}"
        )
    config = Config(
        model=parse_dataclass(model_cls, data.get("model"), "model"),
        data=parse_dataclass(DataConfig, data.get("data"), "data"),
        training=parse_dataclass(TrainingConfig, data.get("training"), "training"),
        logging=parse_dataclass(LoggingConfig, data.get("logging"), "logging"),
    )
    if config.data.tokenizer == MODEL_TOKENIZER:
        source = config.model.tokenizer_source()
        if source is None:
            raise ConfigError(
                f'data.tokenizer: "{MODEL_TOKENIZER}" needs a model with its own tokenizer '
                "(model.pretrained); this model has none"
            )
        config.data.tokenizer = source
    return validate_config(config)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The raw sections of a YAML config file.

    Raises:
        ConfigError: missing file, a folder, unreadable, invalid YAML, or not a mapping.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"--config {path} is a folder; name a YAML file inside it")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(raw, dict) or not all(
        isinstance(v, (dict, type(None))) for v in raw.values()
    ):
        raise ConfigError(f"{path}: expected a mapping with sections {', '.join(SECTIONS)}")
    return raw


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
        The resolved, validated ``Config``.

    Raises:
        ConfigError: unreadable file or folder, unknown section or key, a value of the wrong type
            or an impossible value.
    """
    raw = read_config_file(path) if path is not None else {}
    return config_from_dict(raw, overrides, model_cls=model_cls)


def config_dict_from_metadata(
    metadata: Mapping[str, Any], *, model_cls: type[ModelConfig] = ModelConfig
) -> dict[str, Any]:
    """The raw config dict inside a run's stored metadata (``unflatten_metadata`` of a row),
    typed by the config's dataclasses: the store keeps every config key of every row, so a key
    it lacks was None (or an empty mapping); whole floats become ints where a field is an int."""
    classes = {"model": model_cls, "data": DataConfig, "training": TrainingConfig}
    classes["logging"] = LoggingConfig
    config: dict[str, Any] = {}
    for section, cls in classes.items():
        stored = metadata.get(section)
        stored = stored if isinstance(stored, Mapping) else {}
        hints = typing.get_type_hints(cls)
        values = config.setdefault(section, {})
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            kinds = {typing.get_origin(t) or t for t in (hint, *typing.get_args(hint))}
            value = stored.get(f.name)
            if dict in kinds:
                value = value if isinstance(value, dict) else {}
            elif value is None:
                if type(None) in kinds:
                    values[f.name] = None
                continue
            elif list not in kinds and isinstance(value, list):
                value = json.dumps(value)  # text that looked like a list
            elif int in kinds and float not in kinds and isinstance(value, float):
                value = int(value)
            values[f.name] = value
    return config
