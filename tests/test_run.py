"""Runs you can trust, end to end: real subprocesses killed with SIGKILL at chosen and random
moments, then resumed; the stored rows and final weights must equal an uninterrupted run's.
Also: restart of a run without a checkpoint, overrides on resume, a full store and a full
checkpoint disk."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from run_worker import CONFIG

from common.training.cli import EXIT_CHECKPOINT_FAILED, EXIT_ROWS_NOT_STORED, EXIT_USER_ERROR
from common.training.schedules import lr_at_step
from common.utils.config import TrainingConfig

WORKER = Path(__file__).resolve().parent / "run_worker.py"
ROWS = (
    "SELECT step, split, loss, perplexity, coalesce(bits_per_byte, -1), lr, tokens_seen, epoch "
    "FROM experiments WHERE experiment_name = '{name}' ORDER BY step, split"
)


def train(*args: str, kill_at: str | None = None, count: int = 1, kill_after: float | None = None):
    """Run the worker; ``kill_at``: SIGKILL at that rename; ``kill_after``: SIGKILL after s."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    if kill_at:
        env.update(KILL_AT_RENAME=kill_at, KILL_AT_COUNT=str(count))
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=180)
    return proc.returncode, out, err


def rows(name: str) -> list[tuple]:
    from common.utils import query_experiments

    frame = query_experiments(ROWS.format(name=name))
    return [tuple(r) for r in frame.itertuples(index=False)]


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "step_0000012" / "model.safetensors"))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG)
    return path


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_at_any_moment_then_resume_equals_an_uninterrupted_run(
    config: Path, isolated_assets: Path
) -> None:
    runs = isolated_assets / "outputs" / "checkpoints"
    code, out, err = train("--config", str(config), "--name", "straight")
    assert code == 0, out + err
    expected = rows("straight")
    assert [r[:2] for r in expected][-2:] == [(12, "train"), (12, "val")] and len(expected) == 12

    seed = int(os.environ.get("RESUME_TEST_SEED", random.randrange(1000)))
    print(f"random kill seed {seed}")
    moments = {
        # during the store write of step 4's rows: step 2's are stored, no checkpoint yet
        "before_checkpoint": {"kill_at": r"\.parquet$", "count": 2},
        # in the middle of the step-10 checkpoint write (step 10's rows already stored)
        "checkpoint_write": {"kill_at": r"step_0000010$"},
        # during the store write of step 8's rows (checkpoint 5 on disk)
        "store_write": {"kill_at": r"\.parquet$", "count": 4},
        # anywhere in the run, data preparation included
        "random": {"kill_after": random.Random(seed).uniform(2.0, 6.0)},
    }
    for name, how in moments.items():
        code, out, err = train("--config", str(config), "--name", name, **how)  # type: ignore[arg-type]
        if "kill_after" not in how:
            assert code == -signal.SIGKILL, (name, code, out, err)
        code, out, err = train("--resume", name)
        assert code == 0, (name, out, err)
        assert "Traceback" not in err
        if name == "before_checkpoint":
            assert "no complete checkpoint" in out and "restarting it from step 0" in out
        assert rows(name) == expected, name
        straight, resumed = final_weights(runs / "straight"), final_weights(runs / name)
        assert straight.keys() == resumed.keys()
        assert all(torch.equal(straight[k], resumed[k]) for k in straight), name


@pytest.mark.slow
def test_resume_keeps_the_stored_config_and_takes_only_changeable_overrides(
    config: Path, isolated_assets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import run_worker

    from common.training.cli import main
    from common.utils import query_experiments

    def cli(*argv: str) -> int:
        return main(run_worker.build_model, project=run_worker.PROJECT, argv=list(argv))

    assert cli("--config", str(config), "--name", "r") == 0
    capsys.readouterr()
    for argv, message in [
        (["--resume", "r", "--set", "model.d_model=64"], "--set model.d_model: cannot be changed"),
        (["--resume", "r", "--set", "training.batch_size=8"], "training.batch_size: cannot be"),
        (["--resume", "r", "--config", str(config)], "drop --config"),
        (["--resume", "nobody"], "runs of project 'runs': r"),
        (["--config", str(config), "--name", "r"], "run 'r' already exists"),
    ]:
        assert cli(*argv) == EXIT_USER_ERROR
        assert message in capsys.readouterr().err

    assert cli("--resume", "r", "--set", "training.lr=0.05", "--max-steps", "16") == 0
    out = capsys.readouterr().out
    assert "new learning-rate schedule from step 12" in out
    frame = query_experiments(
        "SELECT step, split, lr, training__lr, training__max_steps, config_file, "
        "schedule_changed_at_step FROM experiments WHERE experiment_name = 'r' AND split = 'val' "
        "ORDER BY step"
    )
    new = TrainingConfig(max_steps=16, lr=0.05, min_lr=3e-5, warmup_steps=2)
    later = frame[frame.step > 12]
    assert list(later.step) == [14, 16]
    assert list(later.lr) == pytest.approx([lr_at_step(s - 1, new) for s in (14, 16)])
    assert set(later.training__lr) == {0.05} and set(later.schedule_changed_at_step) == {12}
    assert set(frame.config_file) == {str(config)}  # kept across the resume
    assert set(frame[frame.step <= 12].training__lr) == {0.01}
    record = json.loads((isolated_assets / "outputs/checkpoints/r/run.json").read_text())
    assert record["config"]["training"]["lr"] == 0.05 and record["config_file"] == str(config)
    assert record["resumes"][-1]["overrides"] == ["training.lr=0.05", "training.max_steps=16"]


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")


@pytest.mark.slow
def test_a_full_store_keeps_the_rows_and_a_resume_stores_them(
    config: Path, isolated_assets: Path
) -> None:
    store = isolated_assets / "outputs" / "experiments"
    _mount_tmpfs(store, "1m")
    try:
        filler = store / "filler"
        with open(filler, "wb") as fh:  # leave no room for a single Parquet file
            fh.write(b"\0" * (1024 * 1024 - 4096))
        code, out, err = train("--config", str(config), "--name", "full")
        assert code == EXIT_ROWS_NOT_STORED, out + err
        assert "Traceback" not in err and "warning: the experiment store refused" in out
        assert "could not be stored" in err and "--resume full" in err
        filler.unlink()
        code, out, err = train("--resume", "full")
        assert code == 0, out + err
        stored = rows("full")
        assert [(r[0], r[1]) for r in stored] == [
            (s, split) for s in range(2, 13, 2) for split in ("train", "val")
        ]
    finally:
        subprocess.run(["umount", str(store)], check=True)


@pytest.mark.slow
def test_a_full_checkpoint_disk_keeps_the_previous_checkpoint(
    config: Path, isolated_assets: Path
) -> None:
    run = isolated_assets / "outputs" / "checkpoints" / "disk"
    code, out, err = train("--config", str(config), "--name", "probe", "--max-steps", "5")
    assert code == 0, out + err
    probe = isolated_assets / "outputs" / "checkpoints" / "probe" / "step_0000005"
    size = sum(f.stat().st_size for f in probe.iterdir())
    _mount_tmpfs(run, f"{int(size * 1.6) // 4096 * 4096 + 8192}")
    try:
        code, out, err = train("--config", str(config), "--name", "disk")
        assert code == EXIT_CHECKPOINT_FAILED, out + err
        assert "Traceback" not in err
        assert "could not write checkpoint" in err and "No space left" in err
        assert "step_0000005 is intact" in err
        from common.models.checkpoint import list_checkpoints, read_verified_metadata

        assert [p.name for p in list_checkpoints(run)] == ["step_0000005"]
        assert read_verified_metadata(run / "step_0000005")["step"] == 5
        assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no debris
    finally:
        time.sleep(0.1)
        subprocess.run(["umount", str(run)], check=True)


def test_a_new_run_never_adds_rows_to_an_existing_experiment(
    config: Path, isolated_assets: Path
) -> None:
    from common.utils import query_experiments, save_experiment

    save_experiment("taken", [{"step": 1, "split": "val", "loss": 9.0}])
    code, out, err = train("--config", str(config), "--name", "taken")
    assert code == EXIT_USER_ERROR, out + err
    assert "already has rows named 'taken'" in err and "--delete taken" in err
    assert "Traceback" not in err
    stored = query_experiments("SELECT step, split, loss FROM experiments")
    assert stored.values.tolist() == [[1, "val", 9.0]]
    assert not (isolated_assets / "outputs" / "checkpoints" / "taken").exists()


def test_a_name_another_run_claimed_is_refused_before_any_work(
    config: Path, isolated_assets: Path
) -> None:
    from common.utils import claim_experiment

    claim_experiment("held", "another-run", storage_dir=isolated_assets / "outputs" / "experiments")
    code, out, err = train("--config", str(config), "--name", "held")
    assert code == EXIT_USER_ERROR, out + err
    assert "'held' is taken" in err and "--delete held" in err and "Traceback" not in err
    assert not (isolated_assets / "outputs" / "checkpoints" / "held").exists()


def test_an_invalid_tag_is_refused_before_any_work(config: Path, isolated_assets: Path) -> None:
    code, out, err = train("--config", str(config), "--name", "t", "--tag", "ok", "--tag", " x")
    assert code == EXIT_USER_ERROR, out + err
    assert "invalid tag ' x'" in err and "Traceback" not in err
    assert not (isolated_assets / "outputs").exists() or not any(
        (isolated_assets / "outputs").rglob("*.json")
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tags_and_a_note_are_stored_from_the_start_of_a_run(
    config: Path, isolated_assets: Path
) -> None:
    from common.utils import Annotations, experiment_annotations, query_experiments

    # killed at its first store write: the tags and the note are there before any row
    code, out, err = train(
        "--config", str(config), "--name", "tagged", "--tag", "a", "--tag", "b",
        "--note", "lr 1e-2: too high?", kill_at=r"saves/.*\.parquet$",
    )  # fmt: skip
    assert code == -signal.SIGKILL, out + err
    assert experiment_annotations() == {"tagged": Annotations(["a", "b"], "lr 1e-2: too high?")}
    code, out, err = train("--resume", "tagged", "--tag", "c", "--note", "")
    assert code == 0, out + err
    summary = query_experiments(
        "SELECT experiment_name, tags, note, rows FROM experiment_summary"
    ).values.tolist()
    assert len(summary) == 1 and summary[0][0] == "tagged" and summary[0][3] > 0
    assert list(summary[0][1]) == ["a", "b", "c"] and summary[0][2] is None
