"""Config files: typed parsing, clear errors for unknown keys and wrong types, overrides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from common.utils.config import (
    Config,
    ConfigError,
    ModelConfig,
    config_to_dict,
    load_config,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    config = load_config()
    assert isinstance(config, Config)
    assert config.training.schedule == "cosine"
    assert config.data.source == "synthetic"


def test_file_values_are_typed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "model:\n  d_model: 64\ntraining:\n  lr: 3e-4\n  betas: [0.9, 0.99]\n  grad_clip: null\n",
    )
    config = load_config(path)
    assert config.model.d_model == 64
    assert config.training.lr == pytest.approx(3e-4)  # YAML 1.1 reads 3e-4 as a string
    assert config.training.betas == [0.9, 0.99]
    assert config.training.grad_clip is None


def test_int_accepted_where_float_expected(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "training:\n  lr: 1\n"))
    assert isinstance(config.training.lr, float)


def test_unknown_key_names_it_and_the_valid_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "training:\n  learning_rate: 0.1\n"))
    message = str(err.value)
    assert "'learning_rate'" in message
    assert "lr" in message and "batch_size" in message


def test_unknown_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'optimizer'"):
        load_config(write(tmp_path, "optimizer:\n  lr: 0.1\n"))


@pytest.mark.parametrize(
    "override, field",
    [
        ("training.batch_size=1.5", "training.batch_size"),
        ("training.lr=fast", "training.lr"),
        ("training.compile=maybe", "training.compile"),
        ("model.n_layers=[1, 2]", "model.n_layers"),
    ],
)
def test_wrong_type_names_the_field(override: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(None, [override])


def test_overrides_apply_in_order_after_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "training:\n  lr: 0.1\n  max_steps: 10\n")
    config = load_config(path, ["training.lr=3e-4", "training.lr=1e-3", "logging.tags={a: b}"])
    assert config.training.lr == pytest.approx(1e-3)
    assert config.training.max_steps == 10
    assert config.logging.tags == {"a": "b"}


def test_malformed_override() -> None:
    with pytest.raises(ConfigError, match="SECTION.KEY=VALUE"):
        load_config(None, ["training.lr"])


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(write(tmp_path, "training: [unclosed\n"))


def test_project_model_config_subclass(tmp_path: Path) -> None:
    @dataclass
    class MyModel(ModelConfig):
        rope_theta: float = 10000.0

    config = load_config(write(tmp_path, "model:\n  rope_theta: 500000\n"), model_cls=MyModel)
    assert isinstance(config.model, MyModel)
    assert config.model.rope_theta == 500000.0
    with pytest.raises(ConfigError, match="rope_theta"):
        load_config(write(tmp_path, "model:\n  rope_theta: 1\n"))  # base ModelConfig lacks it


def test_config_to_dict() -> None:
    config = load_config(None, ["training.lr=0.01", "data.train_files=[a.txt]"])
    as_dict = config_to_dict(config)
    assert as_dict["training"]["lr"] == 0.01
    assert as_dict["data"]["train_files"] == ["a.txt"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.batch_size=0", "training.batch_size: must be >= 1, got 0"),
        ("training.grad_accum_steps=0", "training.grad_accum_steps: must be >= 1"),
        ("training.lr=0", "training.lr: must be a finite number > 0"),
        ("training.lr=.inf", "training.lr: must be a finite number > 0"),
        ("training.min_lr=1", "training.min_lr: must be between 0 and training.lr"),
        ("training.max_steps=0", "training.max_steps: must be >= 1"),
        ("training.eval_interval=-5", "training.eval_interval: must be >= 0 (0: never)"),
        ("training.checkpoint_interval=-1", "training.checkpoint_interval: must be >= 0"),
        ("training.eval_batches=0", "training.eval_batches: must be >= 1 or null"),
        ("training.betas=[0.9, 1.5]", "training.betas: must be two numbers in [0, 1)"),
        ("training.dtype=fp8", "training.dtype: must be one of float32, bf16, fp16"),
        ("training.schedule=exp", "training.schedule: unknown schedule 'exp'"),
        ("training.dist_timeout_s=0", "training.dist_timeout_s: must be > 0 seconds"),
        ("model.context_length=0", "model.context_length: must be >= 1"),
        ("model.n_heads=3", "model.n_heads: must be a divisor of model.d_model (256), got 3"),
        ("model.dropout=1", "model.dropout: must be in [0, 1)"),
        ("data.vocab_size=0", "data.vocab_size: must be >= 1"),
        ("logging.log_interval=-1", "logging.log_interval: must be >= 0"),
    ],
)
def test_impossible_values_name_the_field(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert message in str(info.value)


def test_a_folder_or_a_non_mapping_as_config_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder; name a YAML file inside it"):
        load_config(tmp_path)
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping with sections"):
        load_config(bad)
    sections = tmp_path / "sections.yaml"
    sections.write_text("training: 5\n")
    with pytest.raises(ConfigError, match="expected a mapping with sections"):
        load_config(sections)
