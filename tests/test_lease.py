"""One trainer per run: the run folder's lease, with real processes, real SIGKILL and a lease file
written as another host would write it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_worker import CONFIG

from common.training.cli import EXIT_USER_ERROR
from common.training.lease import LEASE_FILE, RunLeasedError, acquire_lease

WORKER = Path(__file__).resolve().parent / "run_worker.py"
ROWS = (
    "SELECT step, split, count(*) AS n FROM experiments WHERE experiment_name = '{name}' "
    "GROUP BY step, split ORDER BY step, split"
)


def _other_host_lease(folder: Path, *, age_s: float) -> None:
    """A lease as a trainer on another machine sharing the folder would have left it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LEASE_FILE
    record = {
        "host": "node-17.cluster.invalid",
        "pid": 4242,
        "process_start": 1.0,
        "started_at": "2026-01-01T00:00:00Z",
        "token": "f" * 32,
    }
    path.write_text(json.dumps(record), encoding="utf-8")
    then = time.time() - age_s
    os.utime(path, (then, then))


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


@pytest.fixture
def config(tmp_path: Path) -> str:
    """The run tests' few-second config (``tests/run_worker.py``)."""
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG)
    return str(path)


def _start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the trainer ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _stored(name: str) -> list[tuple]:
    from common.utils import query_experiments

    return [tuple(r) for r in query_experiments(ROWS.format(name=name)).itertuples(index=False)]


# ---------------------------------------------------------------------------- the lease itself


def test_a_lease_is_exclusive_and_released(tmp_path: Path) -> None:
    child = _sleeper()
    try:
        folder = tmp_path / "run"
        lease = acquire_lease(folder, heartbeat=False)
        record = json.loads((folder / LEASE_FILE).read_text())
        assert record["pid"] == os.getpid() and record["host"]
        # the same process may take it again (train_run, then the Trainer): re-entrant
        again = acquire_lease(folder, heartbeat=False)
        assert again is lease
        again.release()
        assert (folder / LEASE_FILE).exists()
        lease.release()
        assert not (folder / LEASE_FILE).exists()

        # a live process on this host holds it: refused, naming the holder
        path = folder / LEASE_FILE
        import psutil

        held = {
            "host": record["host"],
            "pid": child.pid,
            "process_start": psutil.Process(child.pid).create_time(),
            "started_at": "2026-01-01T00:00:00Z",
            "token": "a" * 32,
        }
        path.write_text(json.dumps(held))
        with pytest.raises(RunLeasedError, match=f"being trained by pid {child.pid} on host"):
            acquire_lease(folder, heartbeat=False)
        assert json.loads(path.read_text())["token"] == "a" * 32  # untouched

        # a reused pid (same number, another start time) is not the holder: taken over
        held["process_start"] = held["process_start"] - 1000.0
        path.write_text(json.dumps(held))
        notes: list[str] = []
        with acquire_lease(folder, heartbeat=False, log=notes.append):
            assert json.loads(path.read_text())["pid"] == os.getpid()
        assert "no longer running" in notes[0]
    finally:
        child.kill()
        child.wait()


def test_another_hosts_lease_waits_for_the_timeout(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    _other_host_lease(folder, age_s=5.0)
    with pytest.raises(RunLeasedError, match="pid 4242 on host node-17.cluster.invalid"):
        acquire_lease(folder, timeout_s=30.0, heartbeat=False)
    warnings: list[str] = []
    with acquire_lease(folder, timeout_s=2.0, heartbeat=False, log=warnings.append) as lease:
        assert lease.held()
    assert warnings and warnings[0].startswith("warning: taking over the lease")
    assert "not renewed for 5 s" in warnings[0]


def test_the_heartbeat_renews_and_a_lost_lease_is_noticed(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    lease = acquire_lease(folder, timeout_s=0.4)
    try:
        path = folder / LEASE_FILE
        old = time.time() - 100
        os.utime(path, (old, old))
        deadline = time.monotonic() + 10
        while time.time() - path.stat().st_mtime > 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert time.time() - path.stat().st_mtime < 50  # renewed by the heartbeat
        _other_host_lease(folder, age_s=0)  # someone took it over
        with pytest.raises(RunLeasedError, match="now held by pid 4242"):
            lease.renew()
    finally:
        lease.release()
    assert (folder / LEASE_FILE).exists()  # not ours any more: never removed


def test_the_lease_of_an_ended_but_unreaped_holder_is_taken_over(tmp_path: Path) -> None:
    import psutil

    ended = subprocess.Popen([sys.executable, "-c", "pass"])  # never waited for: a zombie
    deadline = time.monotonic() + 30
    while psutil.Process(ended.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    folder = tmp_path / "run"
    folder.mkdir()
    record = {
        "host": __import__("socket").gethostname(),
        "pid": ended.pid,
        "process_start": psutil.Process(ended.pid).create_time(),
        "started_at": "2026-01-01T00:00:00Z",
        "token": "e" * 32,
    }
    (folder / LEASE_FILE).write_text(json.dumps(record), encoding="utf-8")
    notes: list[str] = []
    try:
        with acquire_lease(folder, heartbeat=False, log=notes.append) as lease:
            assert lease.held()
        assert notes and "no longer running" in notes[0]
    finally:
        ended.wait()


# ---------------------------------------------------------------------------- real trainers


@pytest.mark.slow
def test_two_trainers_on_one_run_exactly_one_trains(isolated_assets: Path, config: str) -> None:
    folder = isolated_assets / "outputs" / "checkpoints" / "dup"
    first = _start("--config", config, "--name", "dup", "--max-steps", "400")
    _wait_for(folder / LEASE_FILE, first)
    holder = json.loads((folder / LEASE_FILE).read_text())
    assert holder["pid"] == first.pid
    second = _start("--resume", "dup", "--max-steps", "400")
    out2, err2 = second.communicate(timeout=180)
    _wait_for(folder / "step_0000005", first)  # the first has trained and stored rows
    assert first.poll() is None  # still training
    first.send_signal(signal.SIGINT)  # Ctrl-C: checkpoint, exit 130, the lease released
    out1, err1 = first.communicate(timeout=300)
    assert first.returncode == 130, err1
    assert second.returncode == EXIT_USER_ERROR, (out2, err2)
    assert f"run dup is being trained by pid {first.pid} on host" in err2
    assert "Traceback" not in err2 and "training dup" not in out2
    assert not (folder / LEASE_FILE).exists()
    counts = _stored("dup")
    assert counts and all(n == 1 for *_, n in counts)  # every (step, split) stored once


@pytest.mark.slow
def test_two_new_runs_started_together_exactly_one_trains(
    isolated_assets: Path, config: str
) -> None:
    procs = [_start("--config", config, "--name", "twin", "--max-steps", "6") for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, *_ in results)
    assert codes == [0, EXIT_USER_ERROR], results
    loser = next(err for code, _, err in results if code == EXIT_USER_ERROR)
    assert "Traceback" not in loser and ("being trained by pid" in loser or "twin" in loser)
    assert all(n == 1 for *_, n in _stored("twin"))


@pytest.mark.slow
def test_the_lease_of_a_killed_trainer_is_taken_over(isolated_assets: Path, config: str) -> None:
    folder = isolated_assets / "outputs" / "checkpoints" / "killed"
    first = _start("--config", config, "--name", "killed", "--max-steps", "400")
    _wait_for(folder / "step_0000005", first)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    assert json.loads((folder / LEASE_FILE).read_text())["pid"] == first.pid  # left behind
    second = _start("--resume", "killed", "--max-steps", "12")
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    assert f"taking over the lease of run killed from pid {first.pid}" in out
    assert "which is no longer running" in out
    assert not (folder / LEASE_FILE).exists()


@pytest.mark.slow
def test_a_stale_lease_of_another_host_is_taken_over_with_a_warning(
    isolated_assets: Path, config: str
) -> None:
    folder = isolated_assets / "outputs" / "checkpoints" / "shared"
    first = _start("--config", config, "--name", "shared", "--max-steps", "6")
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    env = {"RESEARCH_LEASE_TIMEOUT_S": "60"}

    _other_host_lease(folder, age_s=10.0)  # renewed 10 s ago: that trainer is alive
    refused = _start("--resume", "shared", "--max-steps", "8", env=env)
    out, err = refused.communicate(timeout=300)
    assert refused.returncode == EXIT_USER_ERROR, (out, err)
    assert "pid 4242 on host node-17.cluster.invalid" in err and "after 60 s" in err

    _other_host_lease(folder, age_s=120.0)  # not renewed for longer than the timeout
    taken = _start("--resume", "shared", "--max-steps", "8", env=env)
    out, err = taken.communicate(timeout=300)
    assert taken.returncode == 0, err
    assert "warning: taking over the lease of run shared from pid 4242" in out
    assert "not renewed for 1" in out and "(more than 60 s)" in out  # about 120 s
