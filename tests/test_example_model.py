"""The minimal example model learns the embedded corpus; the shared train CLI end to end."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from run_worker import build_model

from common.data.pipeline import prepare_data
from common.models.examples import TinyTransformerLM
from common.training.cli import main
from common.training.trainer import Trainer
from common.utils.config import Config, DataConfig, LoggingConfig, TrainingConfig


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.mark.slow
def test_tiny_transformer_learns_the_embedded_corpus(tmp_path: Path) -> None:
    data_cfg = DataConfig(synthetic_train_stories=1500, synthetic_val_stories=50, vocab_size=512)
    data = prepare_data(data_cfg, context_length=64, batch_size=8, seed=1)
    baseline = data.unigram_baseline()["loss"]
    config = Config(
        data=data_cfg,
        training=TrainingConfig(
            max_steps=200,
            batch_size=8,
            lr=1e-2,
            min_lr=1e-3,
            warmup_steps=10,
            eval_interval=50,
            eval_batches=8,
            checkpoint_interval=0,
            device="cpu",
        ),
        logging=LoggingConfig(progress_bar=False, log_interval=0, sample_tokens=20),
    )
    torch.manual_seed(0)
    model = TinyTransformerLM(
        data.tokenizer.vocab_size, context_length=64, d_model=64, n_layers=1, n_heads=4
    )
    trainer = Trainer.from_prepared(model, config, data, checkpoint_dir=tmp_path / "ckpt")
    result = trainer.train()
    val = [row["loss"] for row in trainer.history if row["split"] == "val"]
    assert val == sorted(val, reverse=True) and len(val) == 4
    # Uniform guessing costs ln(512) = 6.2 nats; the unigram model about 5.2; the transformer
    # learns real structure and goes well below both.
    assert result["val_loss"] < baseline - 0.7, (result["val_loss"], baseline)
    assert result["val_loss"] < math.log(512) - 1.5
    assert 0 < result["val_bits_per_byte"] < 3.0
    assert result["samples"][0].startswith("Once upon a time")


CONFIG = """
model: {context_length: 32, d_model: 32, n_layers: 1, n_heads: 2}
data: {synthetic_train_stories: 300, synthetic_val_stories: 20, vocab_size: 300}
training:
  max_steps: 8
  batch_size: 4
  lr: 1.0e-2
  warmup_steps: 2
  eval_interval: 4
  eval_batches: 2
  checkpoint_interval: 4
  device: cpu
logging: {progress_bar: false, log_interval: 4, sample_tokens: 5}
"""


@pytest.mark.slow
def test_train_cli_runs_resumes_and_reports(tmp_path: Path, isolated_assets: Path, capsys) -> None:
    from common.utils import query_experiments

    config = tmp_path / "tiny.yaml"
    config.write_text(CONFIG)
    assert main(build_model, project="example", argv=["--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "data: synthetic stories" in out and "finished example-tiny-" in out
    assert "query: python tools/query_experiments.py" in out
    runs = list((isolated_assets / "outputs" / "checkpoints").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("example-tiny-")
    name = runs[0].name

    # --resume alone continues the project's latest run, with the config saved in it.
    argv = ["--resume", "--set", "training.max_steps=12", "--device", "cpu"]
    assert main(build_model, project="example", argv=argv) == 0
    out = capsys.readouterr().out
    assert f"resumed from {runs[0] / 'step_0000008'}" in out and "step 12" in out
    assert "training.max_steps: 8 -> 12" in out

    rows = query_experiments(
        f"SELECT step, split, training__lr, model__d_model, project, world_size, seed, "
        f"git_commit, torch_version, device, num_parameters FROM experiments "
        f"WHERE experiment_name = '{name}' ORDER BY step, split"
    )
    assert [tuple(r) for r in rows[["step", "split"]].itertuples(index=False)] == [
        (4, "train"), (4, "val"), (8, "train"), (8, "val"), (12, "train"), (12, "val")
    ]  # fmt: skip
    first = rows.iloc[0]
    assert first["training__lr"] == 1e-2 and first["model__d_model"] == 32
    assert first["project"] == "example" and first["world_size"] == 1 and first["seed"] == 1337
    assert first["torch_version"] == torch.__version__ and first["device"] == "cpu"
    assert first["num_parameters"] > 0


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--set", "training.learning_rate=1"], "unknown key 'learning_rate'"),
        (["--set", "training.max_steps=many"], "training.max_steps: expected an integer"),
        (["--set", "data.source=dataset", "--set", "data.dataset=nope"], "download_hf_dataset"),
        (["--resume"], "there are no runs of project 'example' yet"),
        (["--resume", "missing-run"], "no run named 'missing-run'"),
        (["--config", "does-not-exist.yaml"], "config file not found"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--set", "training.batch_size=0"], "training.batch_size: must be >= 1, got 0"),
        (["--set", "model.n_heads=3"], "model.n_heads: must be a divisor of model.d_model"),
        (["--set", "training.eval_interval=-1"], "training.eval_interval: must be >= 0"),
        (["--set", "training.lr=-1"], "training.lr: must be a finite number > 0"),
        (["--config", "."], "is a folder"),
        (["--name", "../escape"], "contains a path separator"),
        (["--name", "group/run"], "contains a path separator"),
        (["--name", "a..b"], "contains '..'"),
    ],
)
def test_train_cli_user_errors_are_one_clear_line(
    argv: list[str], expected: str, capsys, isolated_assets: Path
) -> None:
    assert main(build_model, project="example", argv=argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.startswith("error: ") and "Traceback" not in err
    assert not list((isolated_assets / "outputs").glob("checkpoints/*"))  # no work done
    assert "Traceback" not in err
