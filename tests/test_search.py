"""Searches on Optuna end to end: real studies in journal files, real runs of
``tests/run_worker.py`` in subprocesses, real pruning and a real SIGKILL of a search."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from test_sweep import config, rows, train, worker  # noqa: F401 - the fixture

from common.training.search import parse_objective
from common.utils.config import ConfigError

TPE = ["--max-steps", "4", "--search", "tpe", "--sweep", "training.lr=loguniform(1e-3,2e-2)",
       "--sweep", "model.d_model=choice(16,32)"]  # fmt: skip


def study(isolated_assets: Path, name: str):  # noqa: ANN201 - an optuna.Study
    import optuna

    from common.training.search import open_storage

    path = isolated_assets / "outputs" / "sweeps" / name / "study.journal"
    return optuna.load_study(study_name=name, storage=open_storage(path))


def sweep_record(isolated_assets: Path, name: str) -> dict:
    path = isolated_assets / "outputs" / "sweeps" / name / "sweep.json"
    return json.loads(path.read_text())["runs"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("loss", ("loss", "minimize")), ("bits_per_byte", ("bits_per_byte", "minimize")),
     ("max:accuracy", ("accuracy", "maximize")), ("min:score", ("score", "minimize"))],
)  # fmt: skip
def test_objective_direction_comes_from_the_metric(text: str, expected: tuple) -> None:
    assert parse_objective(text) == expected


@pytest.mark.parametrize("text", ["accuracy", "up:loss", "lo ss", ""])
def test_an_objective_without_a_direction_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="--objective"):
        parse_objective(text)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--search", "tpe", "--sweep", "training.lr=1e-3,1e-2"], "needs --trials"),
        (["--search", "grid", "--sweep", "training.lr=uniform(0.1,1)"], "needs a list of values"),
        (["--search", "tpe", "--trials", "2", "--sweep", "training.lr=1e-2",
          "--objective", "accuracy"], "max:accuracy"),  # fmt: skip
        (["--search", "random", "--trials", "2", "--sweep", "model.n_heads=int(2,3)"],
         "model.n_heads=3"),  # fmt: skip
    ],
)
def test_bad_searches_exit_2_with_one_line(
    args: list[str], message: str, config: Path, isolated_assets: Path, capsys  # noqa: F811
) -> None:
    import run_worker

    from common.training.cli import EXIT_USER_ERROR, main

    code = main(run_worker.build_model, project="runs", argv=["--config", str(config), *args])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR, err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not list((isolated_assets / "outputs" / "checkpoints").glob("*"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tpe_search_rows_carry_the_trial_and_a_rerun_continues_the_study(
    config: Path, isolated_assets: Path  # noqa: F811
) -> None:
    from common.experiments.reports import group_experiments
    from common.utils import query_experiments

    search = ["--config", str(config), *TPE, "--jobs", "2", "--sweep-name", "ts"]
    code, out, err = train(*search, "--trials", "3")
    assert code == 0 and "search ts: 3 finished, 3 trials" in out, out + err
    frame = query_experiments("SELECT * FROM experiments WHERE sweep = 'ts'")
    assert sorted(frame.groupby("experiment_name")["trial"].first()) == [0, 1, 2]
    assert (frame.groupby("experiment_name")["trial"].nunique() == 1).all()
    assert set(frame["sweep_keys"]) == {"training__lr,model__d_model"}
    assert frame["training__lr"].between(1e-3, 2e-2).all()
    record = sweep_record(isolated_assets, "ts")
    assert sorted(e["trial"] for e in record.values()) == [0, 1, 2]
    assert {e["status"] for e in record.values()} == {"finished"}
    best = {t.user_attrs["run"]: t.value for t in study(isolated_assets, "ts").trials}
    val = frame[frame["split"] == "val"].groupby("experiment_name")["loss"].min()
    assert best == pytest.approx(val.to_dict(), rel=1e-12)
    grouped = group_experiments("loss", ["model__d_model"], sweep="ts")
    assert sum(r[1] for r in grouped.rows) == 3

    code, out, err = train(*search, "--trials", "4")  # continues: one new trial
    assert code == 0 and "3 trial(s) in the study" in out and "4 finished" in out, out + err
    trials = study(isolated_assets, "ts").trials
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert len({t.user_attrs["run"] for t in trials}) == 4
    again = query_experiments("SELECT * FROM experiments WHERE sweep = 'ts' AND trial < 3")
    assert len(again) == len(frame)  # the first three runs were not touched


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_median_pruning_stops_a_hopeless_run_with_its_checkpoint_and_rows(
    config: Path, isolated_assets: Path  # noqa: F811
) -> None:
    from common.utils import query_experiments

    # seed 1340: the grid sampler tries 1e-2, 2e-2, then 1e-8 (median pruning needs two
    # finished trials to compare with)
    search = ["--config", str(config), "--set", "training.min_lr=0", "--set",
              "training.seed=1340", "--search", "grid", "--sweep", "training.lr=1e-2,2e-2,1e-8",
              "--prune", "median", "--sweep-name", "pm"]  # fmt: skip
    code, out, err = train(*search)
    assert code == 0, out + err
    record = sweep_record(isolated_assets, "pm")
    statuses = {name.split("lr=")[1]: e["status"] for name, e in record.items()}
    assert statuses == {"1e-2": "finished", "2e-2": "finished", "1e-8": "pruned"}, out
    pruned = next(n for n, e in record.items() if e["status"] == "pruned")
    assert record[pruned]["exit_code"] == 7
    states = {t.user_attrs["run"]: t.state.name for t in study(isolated_assets, "pm").trials}
    assert states[pruned] == "PRUNED"
    stored = rows(pruned)
    last = max(r[0] for r in stored)
    assert 4 <= last < 12 and len(stored) == last  # an evaluation every 2 steps, 2 rows each
    flags = query_experiments(
        f"SELECT step, pruned FROM experiments WHERE experiment_name = '{pruned}' ORDER BY step"
    )
    assert flags["pruned"].fillna(False).tolist() == [False] * (last - 2) + [True, True]
    folder = isolated_assets / "outputs" / "checkpoints" / pruned
    assert (folder / f"step_{last:07d}").is_dir()

    code, out, err = train(*search)  # a pruned run is never resumed
    assert code == 0 and "resuming 0" in out and "left" not in out, out + err
    assert rows(pruned) == stored


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_sigkilled_search_rerun_loses_and_repeats_no_trial(
    config: Path, isolated_assets: Path  # noqa: F811
) -> None:
    import psutil

    search = ["--config", str(config), "--search", "random", "--trials", "3",
              "--sweep", "training.lr=loguniform(3e-3,2e-2)", "--sweep-name", "kr"]  # fmt: skip
    runs = isolated_assets / "outputs" / "checkpoints"
    proc = worker(*search, session=True)
    deadline = time.monotonic() + 240
    while not list(runs.glob("kr-t1-*/step_0000005")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    for process in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]:
        process.kill()  # the search and its training process, as a power loss would
    proc.communicate()
    killed = next(runs.glob("kr-t1-*")).name
    assert not (runs / killed / "step_0000012").exists()

    code, out, err = train(*search)
    assert code == 0 and "resuming 1" in out and "3 finished, 3 trials" in out, out + err
    trials = study(isolated_assets, "kr").trials
    assert [(t.number, t.state.name) for t in trials] == [(i, "COMPLETE") for i in range(3)]
    assert trials[1].user_attrs["run"] == killed  # resumed as the same run, not asked again
    for trial in trials:
        stored = rows(trial.user_attrs["run"])
        assert len(stored) == 12 and len({(r[0], r[1]) for r in stored}) == 12
    log = isolated_assets / "outputs" / "sweeps" / "kr" / "logs" / f"{killed}.log"
    assert "resum" in log.read_text()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigterm_stops_a_search_and_the_rerun_resumes_its_trials(
    config: Path, isolated_assets: Path  # noqa: F811
) -> None:
    import psutil

    search = ["--config", str(config), "--max-steps", "40", "--search", "tpe", "--trials", "2",
              "--jobs", "2", "--sweep", "training.lr=loguniform(3e-3,2e-2)",
              "--sweep-name", "st"]  # fmt: skip
    runs = isolated_assets / "outputs" / "checkpoints"
    proc = worker(*search, session=True)
    deadline = time.monotonic() + 240
    while len(list(runs.glob("st-t*/step_0000005"))) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.terminate()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "2 left: rerun the same command" in out, out + err
    assert not psutil.wait_procs(children, timeout=5)[1]  # no run outlives the search
    record = sweep_record(isolated_assets, "st")
    assert {e["status"] for e in record.values()} == {"interrupted"}
    assert [t.state.name for t in study(isolated_assets, "st").trials] == ["RUNNING"] * 2

    code, out, err = train(*search)
    assert code == 0 and "resuming 2" in out and "2 finished, 2 trials" in out, out + err
    trials = study(isolated_assets, "st").trials
    assert sorted(t.user_attrs["run"] for t in trials) == sorted(record)
    for name in record:
        stored = rows(name)
        assert len(stored) == 40 and len({(r[0], r[1]) for r in stored}) == 40
