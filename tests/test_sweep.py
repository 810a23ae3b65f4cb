"""Sweeps and reproduction end to end: real runs of ``tests/run_worker.py`` (the shared CLI)
in subprocesses, a real SIGKILL of a sweep, real submitit ``LocalExecutor`` jobs; the stored
rows are checked against each other, against straight runs and against pandas."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_worker import CONFIG

from common.training.sweep import Axis, expand, parse_axis
from common.utils.config import ConfigError

WORKER = Path(__file__).resolve().parent / "run_worker.py"
ROWS = (
    "SELECT step, split, loss, perplexity, coalesce(bits_per_byte, -1), lr, tokens_seen, epoch "
    "FROM experiments WHERE experiment_name = '{name}' ORDER BY step, split"
)
GRID = [
    "--max-steps",
    "4",
    "--sweep",
    "training.lr=1e-2,3e-3",
    "--sweep",
    "model.d_model=16,32",
    "--seeds",
    "2",
]


def worker(*args: str, session: bool = False) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=session,
    )


def train(*args: str) -> tuple[int, str, str]:
    proc = worker(*args)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def rows(name: str) -> list[tuple]:
    from common.utils import query_experiments

    return [tuple(r) for r in query_experiments(ROWS.format(name=name)).itertuples(index=False)]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG)
    return path


def test_grid_expansion_names_and_seeds() -> None:
    runs = expand("g", [parse_axis("training.lr=1e-2,3e-3"), parse_axis("model.d_model=16,32")],
                  seeds=2, base_seed=7)  # fmt: skip
    assert len(runs) == 8
    assert runs[0].name == "g-lr=1e-2-d_model=16-s7"
    assert runs[1].overrides == ["training.lr=1e-2", "model.d_model=16", "training.seed=8"]
    assert len({r.name for r in runs}) == 8


def test_random_search_draws_the_same_points_for_the_same_command() -> None:
    axes = [
        parse_axis("training.lr=loguniform(1e-4,1e-2)"),
        parse_axis("model.d_model=choice(16,32)"),
        parse_axis("training.warmup_steps=int(1,3)"),
        parse_axis("training.grad_clip=uniform(0.5,2)"),
    ]
    first = expand("r", axes, trials=20, base_seed=3)
    again = expand("r", [parse_axis(a) for a in (
        "training.lr=loguniform(1e-4,1e-2)", "model.d_model=choice(16,32)",
        "training.warmup_steps=int(1,3)", "training.grad_clip=uniform(0.5,2)")],
        trials=20, base_seed=3)  # fmt: skip
    assert [r.overrides for r in first] == [r.overrides for r in again]
    other_seed = expand("r", axes, trials=20, base_seed=4)
    assert [r.overrides for r in first] != [r.overrides for r in other_seed]
    lrs = [float(r.values["training.lr"]) for r in first]
    assert all(1e-4 <= v <= 1e-2 for v in lrs) and len(set(lrs)) == 20
    assert {r.values["model.d_model"] for r in first} == {"16", "32"}
    assert {int(r.values["training.warmup_steps"]) for r in first} <= {1, 2, 3}
    assert all(0.5 <= float(r.values["training.grad_clip"]) <= 2 for r in first)
    assert first[0].name.startswith("r-t00-lr=") and len({r.name for r in first}) == 20


@pytest.mark.parametrize(
    "text",
    ["training.lr", "lr=1", "training.lr=", "training.lr=1,,2", "training.lr=uniform(2,1)",
     "training.lr=loguniform(0,1)", "training.lr=uniform(a,b)", "model.n_layers=int(1.5,3)"],
)  # fmt: skip
def test_bad_sweep_syntax_is_one_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="--sweep"):
        parse_axis(text)


def test_impossible_combinations_are_refused() -> None:
    with pytest.raises(ConfigError, match="needs --trials"):
        expand("x", [Axis("training.lr", distribution=("uniform", 0.0, 1.0))])
    with pytest.raises(ConfigError, match="both choose seeds"):
        expand("x", [parse_axis("training.seed=1,2")], seeds=2)
    with pytest.raises(ConfigError, match="twice"):
        expand("x", [parse_axis("training.lr=1"), parse_axis("training.lr=2")])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sweep", "training.lr=1e-2,fast"], "training.lr: expected a number"),
        (["--sweep", "model.n_heads=2,3"], "model.n_heads"),
        (["--sweep", "training.nope=1,2"], "nope"),
        (["--sweep", "training.lr=uniform(1,2)"], "needs --trials"),
        (["--seeds", "2", "--name", "x"], "--name names a single run"),
        (["--seeds", "2", "--jobs", "0"], "--jobs must be at least 1"),
        (["--seeds", "2", "--launcher", "slurm"], '--launcher slurm: Could not detect "srun"'),
    ],
)
def test_bad_sweeps_exit_2_with_one_line(
    args: list[str], message: str, config: Path, isolated_assets: Path, capsys
) -> None:
    import run_worker

    from common.training.cli import EXIT_USER_ERROR, main

    code = main(run_worker.build_model, project="runs", argv=["--config", str(config), *args])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not list(isolated_assets.rglob("*.json"))  # no run and no sweep record


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_grid_with_seeds_in_parallel_local_and_submitit(
    config: Path, isolated_assets: Path, tmp_path: Path
) -> None:
    from common.experiments.reports import group_experiments
    from common.utils import query_experiments

    code, out, err = train("--config", str(config), *GRID, "--jobs", "2", "--sweep-name", "g")
    assert code == 0, out + err
    frame = query_experiments("SELECT * FROM experiments WHERE sweep = 'g'")
    assert frame["experiment_name"].nunique() == 8
    assert set(frame["sweep_keys"]) == {"training__lr,model__d_model,training__seed"}
    every = query_experiments("SELECT count(*) AS n, count(sweep) AS tagged FROM experiments")
    assert every["n"][0] == every["tagged"][0] == len(frame)
    points = set(zip(frame["training__lr"], frame["model__d_model"], frame["training__seed"]))
    assert points == {(lr, d, s) for lr in (3e-3, 1e-2) for d in (16, 32) for s in (1337, 1338)}
    assert out.count(" finished ") == 8 and "8/8 finished" in out

    # --group-by against pandas on the same rows: best (min) val loss per run, then per group
    val = frame[frame["split"] == "val"]
    per_run = val.groupby("experiment_name").agg(
        loss=("loss", "min"), lr=("training__lr", "first"), d=("model__d_model", "first")
    )
    expected = per_run.groupby(["lr", "d"])["loss"].agg(["mean", "std", "min", "max", "count"])
    result = group_experiments("loss", ["training__lr", "model__d_model"], sweep="g")
    assert len(result.rows) == 4
    means = [r[3] for r in result.rows]
    assert means == sorted(means)
    for lr, d, runs, mean, std, low, high in result.rows:
        want = expected.loc[(lr, d)]
        assert runs == want["count"] == 2
        for got, ref in ((mean, "mean"), (std, "std"), (low, "min"), (high, "max")):
            assert math.isclose(got, want[ref], rel_tol=1e-12), (lr, d, ref)
    query = [sys.executable, str(WORKER.parent.parent / "tools" / "query_experiments.py")]
    plot = tmp_path / "groups.png"
    shown = subprocess.run(
        [*query, "--best", "loss", "--group-by", "training__lr", "--group-by", "model__d_model",
         "--sweep", "g", "--plot", str(plot), "--format", "csv"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "training__lr,model__d_model,runs,mean_loss,std_loss,min_loss,max_loss"
    assert len(lines) == 5 and plot.stat().st_size > 10_000

    # the same sweep again: every run is skipped, nothing is added
    code, out, err = train("--config", str(config), *GRID, "--sweep-name", "g")
    assert code == 0 and "0 to run, 8 done" in out, out + err
    assert len(query_experiments("SELECT * FROM experiments WHERE sweep = 'g'")) == len(frame)

    # submitit's LocalExecutor runs the same command: the same points give the same rows
    code, out, err = train(
        "--config", str(config), "--max-steps", "4", "--sweep", "training.lr=1e-2,3e-3",
        "--seeds", "2", "--jobs", "2", "--launcher", "submitit-local", "--sweep-name", "sm",
    )  # fmt: skip
    assert code == 0, out + err
    assert any((isolated_assets / "outputs" / "sweeps" / "sm" / "submitit").iterdir())
    for lr in ("1e-2", "3e-3"):
        for seed in (1337, 1338):
            assert rows(f"sm-lr={lr}-s{seed}") == rows(f"g-lr={lr}-d_model=32-s{seed}")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sweep_killed_midway_then_rerun_skips_resumes_and_starts(
    config: Path, isolated_assets: Path
) -> None:
    runs = isolated_assets / "outputs" / "checkpoints"
    sweep = ["--config", str(config), "--seeds", "3", "--sweep-name", "k"]
    proc = worker(*sweep, session=True)
    deadline = time.monotonic() + 240
    while not (runs / "k-s1338" / "step_0000005").is_dir():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    import psutil

    # the sweep and its running training process (in its own session), as a power loss would
    for process in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]:
        process.kill()
    proc.communicate()
    assert (runs / "k-s1337" / "step_0000012").is_dir()
    assert not (runs / "k-s1338" / "step_0000012").exists()

    code, out, err = train(*sweep, "--dry-run")
    assert code == 0, out + err
    would = dict(line.split()[:2] for line in out.splitlines()[1:])
    assert would == {"k-s1337": "skip", "k-s1338": "resume", "k-s1339": "start"}
    finished_rows = rows("k-s1337")
    code, out, err = train(*sweep)
    assert code == 0 and "3/3 finished" in out, out + err
    assert rows("k-s1337") == finished_rows  # skipped: untouched

    code, out, err = train("--config", str(config), "--set", "training.seed=1338", "--name", "ref")
    assert code == 0, out + err
    expected = rows("ref")
    assert len(expected) == 12 and len(set((r[0], r[1]) for r in expected)) == 12
    assert rows("k-s1338") == expected  # resumed bitwise, nothing duplicated
    assert len(rows("k-s1339")) == 12

    from safetensors.torch import load_file

    ref = load_file(str(runs / "ref" / "step_0000012" / "model.safetensors"))
    resumed = load_file(str(runs / "k-s1338" / "step_0000012" / "model.safetensors"))
    assert ref.keys() == resumed.keys()
    assert all((ref[k] == resumed[k]).all() for k in ref)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_diverging_run_is_recorded_and_does_not_stop_the_others(
    config: Path, isolated_assets: Path
) -> None:
    import json

    sweep = ["--config", str(config), "--max-steps", "4", "--sweep", "training.lr=1e6,1e-2,3e-3",
             "--jobs", "2", "--sweep-name", "d"]  # fmt: skip
    code, out, err = train(*sweep)
    assert code == 1, out + err
    status = {
        line.split()[0]: line.split()[1]
        for line in out.splitlines()
        if line.startswith("d-lr") and ":" not in line.split()[0]
    }
    assert status == {"d-lr=1e6-s1337": "diverged", "d-lr=1e-2-s1337": "finished",
                      "d-lr=3e-3-s1337": "finished"}  # fmt: skip
    assert "d-lr=1e6-s1337: error: training diverged at step" in out and "2/3 finished" in out
    record = json.loads((isolated_assets / "outputs" / "sweeps" / "d" / "sweep.json").read_text())
    assert record["runs"]["d-lr=1e6-s1337"]["exit_code"] == 3
    assert len(rows("d-lr=1e-2-s1337")) == 4 and len(rows("d-lr=3e-3-s1337")) == 4

    code, out, err = train(*sweep)  # a diverged run is not tried again; the sweep still fails
    assert code == 1 and "0 to run, 3 done" in out, out + err


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_random_search_runs_the_same_points_twice(config: Path, isolated_assets: Path) -> None:
    sweep = ["--config", str(config), "--max-steps", "2", "--trials", "2", "--jobs", "2",
             "--sweep", "training.lr=loguniform(1e-3,1e-2)",
             "--sweep", "model.d_model=choice(16,32)"]  # fmt: skip
    code, out, err = train(*sweep, "--sweep-name", "r1")
    assert code == 0, out + err
    code, out2, err = train(*sweep, "--sweep-name", "r2")
    assert code == 0, out2 + err
    from common.utils import query_experiments

    points = query_experiments(
        "SELECT sweep, training__lr, model__d_model, loss FROM experiments WHERE split = 'val' "
        "ORDER BY sweep, experiment_name, step"
    )
    first, second = (points[points["sweep"] == s].drop(columns="sweep") for s in ("r1", "r2"))
    assert len(first) == 2 and first.values.tolist() == second.values.tolist()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_reproduce_gives_the_same_rows(config: Path, isolated_assets: Path) -> None:
    code, out, err = train("--config", str(config), "--set", "training.seed=5", "--name", "orig")
    assert code == 0, out + err
    code, out, err = train("--reproduce", "orig", "--set", "training.lr=1")
    assert code == 2 and "only --device" in err and "Traceback" not in err
    code, out, err = train("--reproduce", "orig")
    assert code == 0, out + err
    assert "reproducing orig as orig-repro (seed 5)" in out
    assert "differs" not in out  # same commit and torch version
    assert len(rows("orig")) == 12 and rows("orig-repro") == rows("orig")

    import shutil

    shutil.rmtree(isolated_assets / "outputs" / "checkpoints" / "orig")  # only the rows are left
    code, out, err = train("--reproduce", "orig")
    assert code == 0 and "reproducing orig as orig-repro2" in out, out + err
    assert rows("orig-repro2") == rows("orig")
    code, out, err = train("--reproduce", "nope")
    assert code == 2 and "no stored config for 'nope'" in err


def test_sweep_options_without_a_sweep_are_refused(config: Path, capsys) -> None:
    import run_worker

    from common.training.cli import main

    for flag in (["--dry-run"], ["--jobs", "2"], ["--sweep-name", "x"]):
        with pytest.raises(SystemExit) as exc:
            main(run_worker.build_model, project="runs", argv=["--config", str(config), *flag])
        assert exc.value.code == 2
        assert f"{flag[0]} goes with --sweep, --seeds or --trials" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigterm_to_a_sweep_stops_every_child_with_a_checkpoint_then_rerun_resumes(
    config: Path, isolated_assets: Path
) -> None:
    import json

    import psutil

    runs = isolated_assets / "outputs" / "checkpoints"
    sweep = ["--config", str(config), "--max-steps", "40", "--seeds", "2", "--jobs", "2",
             "--sweep-name", "t"]  # fmt: skip
    names = ("t-s1337", "t-s1338")
    proc = worker(*sweep, session=True)
    deadline = time.monotonic() + 240
    while not all((runs / n / "step_0000005").is_dir() for n in names):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    children = psutil.Process(proc.pid).children(recursive=True)
    holders = {json.loads((runs / n / "lease.json").read_text())["pid"] for n in names}
    assert holders <= {c.pid for c in children} and len(holders) == 2
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "0/2 finished, stopped by a signal; 2 left: rerun the same command" in out, out
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, alive  # no child outlives the sweep
    record = json.loads((isolated_assets / "outputs" / "sweeps" / "t" / "sweep.json").read_text())
    assert {n: record["runs"][n]["status"] for n in names} == dict.fromkeys(names, "interrupted")
    for name in names:
        log = (isolated_assets / "outputs" / "sweeps" / "t" / "logs" / f"{name}.log").read_text()
        assert "interrupted at step" in log, log
        steps = sorted(p.name for p in (runs / name).glob("step_*"))
        assert "step_0000005" < steps[-1] < "step_0000040", steps
        assert not (runs / name / "lease.json").exists()

    code, out, err = train(*sweep)
    assert code == 0 and "2/2 finished" in out and "rerun" not in out, out + err
    for name in names:
        stored = rows(name)
        assert len(stored) == 40 and len({(r[0], r[1]) for r in stored}) == 40
