"""End-to-end tests of ``train.py`` and ``evaluate.py``: real subprocesses, real data, tiny sizes.

Each run trains a 1-layer, 32-wide model on a few hundred synthetic stories for a handful of steps
(a few seconds); the assertions are on what a user sees: exit status, messages, checkpoint
folders and the rows queried back from the experiment store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from projects.custom_transformer import evaluate, train

REPO_ROOT = Path(__file__).resolve().parents[3]
PROJECT_DIR = REPO_ROOT / "projects" / "custom_transformer"

TINY = [
    "model.d_model=32",
    "model.n_layers=1",
    "model.n_heads=2",
    "model.context_length=32",
    "data.synthetic_train_stories=200",
    "data.synthetic_val_stories=10",
    "data.vocab_size=320",
    "data.num_workers=1",
    "training.batch_size=4",
    "training.max_steps=4",
    "training.warmup_steps=1",
    "training.eval_interval=2",
    "training.eval_batches=2",
    "training.checkpoint_interval=2",
    "training.keep_checkpoints=3",
    "training.device=cpu",
    "logging.sample_tokens=4",
]
TINY_ARGS = [arg for item in TINY for arg in ("--set", item)]


def run(args: list[str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` in ``cwd`` (inheriting the test's assets folder)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


def check_ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc.stdout


def store_rows(name: str) -> list[tuple]:
    from common.utils import query_experiments

    frame = query_experiments(
        "SELECT step, split, loss, bits_per_byte, eval_batches IS NOT NULL AS by_evaluate "
        f"FROM experiments WHERE experiment_name = '{name}' ORDER BY step, split, by_evaluate"
    )
    return [tuple(row) for row in frame.itertuples(index=False)]


def steps_on_disk(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir() if p.name.startswith("step_"))


@pytest.mark.slow
def test_train_resume_evaluate_end_to_end(
    isolated_assets: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoints = isolated_assets / "outputs" / "checkpoints"

    # 1. As a script from the project folder, with an explicit config.
    out = check_ok(
        run(
            ["train.py", "--config", "configs/tiny.yaml", "--name", "scripted", *TINY_ARGS],
            cwd=PROJECT_DIR,
        )
    )
    assert "data: synthetic stories" in out
    assert "finished scripted: step 4" in out
    assert steps_on_disk(checkpoints / "scripted") == ["step_0000002", "step_0000004"]

    # 2. As a module from the repository root without --config: says it falls back to tiny.yaml.
    out = check_ok(run(["-m", "projects.custom_transformer.train", *TINY_ARGS]))
    assert "TinyStories is not downloaded" in out
    assert "python tools/download_hf_dataset.py --name tinystories" in out
    module_runs = [p.name for p in checkpoints.iterdir() if p.name != "scripted"]
    assert len(module_runs) == 1 and module_runs[0].startswith("custom_transformer-tiny-")
    module_run = module_runs[0]
    assert f"finished {module_run}: step 4" in out

    # 3. Resume the first run for two more steps with its saved config.
    out = check_ok(
        run(["-m", "projects.custom_transformer.train", "--resume", "scripted", "--max-steps", "6"])
    )
    assert "resumed from" in out and "step_0000004" in out
    assert "finished scripted: step 6" in out
    assert steps_on_disk(checkpoints / "scripted")[-1] == "step_0000006"

    # 4. Evaluate, as a script, the default: the latest checkpoint of the most recent run of the
    # project (the resumed one, although its --name lacks the project prefix).
    out = check_ok(
        run(
            ["evaluate.py", "--max-new-tokens", "5", "--prompt", "Once upon a time"],
            cwd=PROJECT_DIR,
        )
    )
    assert "run scripted, step 6" in out
    for needle in ("validation (", "perplexity", "bits per byte", "unigram baseline"):
        assert needle in out
    assert "[Once upon a time] 'Once upon a time" in out

    rows = store_rows("scripted")
    keys = [(step, split) for step, split, *_, by_evaluate in rows if not by_evaluate]
    assert len(keys) == len(set(keys)), f"duplicate rows after resume: {keys}"
    assert [s for s, split in keys if split == "val"] == [2, 4, 6]
    evals = [r for r in rows if r[-1]]  # evaluate.py's row: split 'val' on the whole split
    assert len(evals) == 1 and evals[0][:2] == (6, "val")
    assert evals[0][2] > 0 and evals[0][3] > 0

    # 5. Evaluate a named run (in this process), default prompts, without storing a row.
    assert evaluate.main(["--run", module_run, "--no-save", "--max-new-tokens", "3"]) == 0
    out = capsys.readouterr().out
    assert f"run {module_run}, step 4" in out
    assert "[Once upon a time]" in out and "[One day, a little girl named Lily]" in out
    assert [r for r in store_rows(module_run) if r[-1]] == []

    # 6. From the repository root, --config may name the project's config relative to the project.
    monkeypatch.chdir(REPO_ROOT)
    assert train.main(["--config", "configs/tiny.yaml", "--name", "relative", *TINY_ARGS]) == 0
    assert "finished relative: step 4" in capsys.readouterr().out


@pytest.mark.slow
def test_user_errors_are_one_line_messages(capsys: pytest.CaptureFixture[str]) -> None:
    # TinyStories is not in the (empty) test assets folder: the message gives the download command.
    assert train.main(["--config", str(train.TINYSTORIES_CONFIG)]) == 2
    assert "python tools/download_hf_dataset.py --name tinystories" in capsys.readouterr().err

    assert train.main(["--set", "model.bogus=1"]) == 2
    assert "unknown key 'bogus'" in capsys.readouterr().err

    # An impossible architecture is reported as a config problem, not a traceback.
    assert train.main([*TINY_ARGS, "--set", "model.n_heads=3"]) == 2
    assert "model.n_heads: must be a divisor of model.d_model (32)" in capsys.readouterr().err

    assert train.main(["--resume"]) == 2
    assert "no runs of project 'custom_transformer'" in capsys.readouterr().err

    assert evaluate.main([]) == 2
    assert "train one first: python -m projects.custom_transformer.train" in capsys.readouterr().err

    assert evaluate.main(["--run", "missing-run"]) == 2
    assert "no checkpoint of run 'missing-run'" in capsys.readouterr().err

    assert evaluate.main(["--checkpoint", "/nonexistent/step_0000001"]) == 2
    assert "no checkpoint found" in capsys.readouterr().err


def test_default_config_follows_the_tinystories_download(isolated_assets: Path) -> None:
    config, note = train.choose_default_config()
    assert config == train.TINY_CONFIG and "not downloaded" in note
    (isolated_assets / "datasets" / "tinystories").mkdir(parents=True)
    config, note = train.choose_default_config()
    assert config == train.TINYSTORIES_CONFIG and "TinyStories found" in note


def test_configs_parse_with_the_model_config() -> None:
    from common.utils.config import load_config
    from projects.custom_transformer.model import TransformerConfig

    tiny = load_config(train.TINY_CONFIG, model_cls=TransformerConfig)
    assert tiny.data.source == "synthetic"
    stories = load_config(train.TINYSTORIES_CONFIG, model_cls=TransformerConfig)
    assert (stories.data.source, stories.data.dataset) == ("dataset", "tinystories")
    assert (stories.model.d_model, stories.model.context_length) == (512, 512)
    assert stories.training.dtype == "bf16"
