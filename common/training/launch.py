"""Starting a sweep's runs and stopping them: local processes or submitit jobs.

Every run is a process in its own session (``run_command``), so a terminal's Ctrl-C reaches
the sweep alone; while a sweep runs, ``forwarding_stops`` turns SIGINT and SIGTERM into a SIGINT
for every child it started (``Children``: local processes, submitit-local jobs through their
controller, Slurm jobs through ``scancel``), which checkpoint and stop; a second signal stops them
at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.utils.config import ConfigError

if TYPE_CHECKING:
    from common.training.sweep import SweepOptions


def run_command(argv: list[str], env: dict[str, str], log_path: str, on_start: Any = None) -> int:
    """Run one sweep run's command with ``env`` added, output appended to ``log_path``;
    returns its exit status (what every launcher executes).

    The command runs in its own session (a terminal's Ctrl-C reaches the sweep only, which
    forwards it once). ``on_start(process)`` is called once it runs. In a process's main thread
    (a submitit job) SIGINT and SIGTERM are forwarded to the command as SIGINT, so a cancelled
    job lets its run checkpoint and stop.
    """
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    if on_start is not None:
        on_start(proc)
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: interrupt_process(proc))
    try:
        return proc.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def interrupt_process(proc: subprocess.Popen[bytes]) -> None:
    """Send SIGINT to a process started by ``run_command`` and its process group (a run
    checkpoints and stops; a second one stops it at once)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGINT)


class Children:
    """The processes and jobs a sweep started, so that a stop reaches every one of them."""

    def __init__(self, launcher: str) -> None:
        self.launcher = launcher
        self.stopping = False
        self._lock = threading.Lock()
        self._running: dict[int, Any] = {}

    def started(self, key: int, child: Any) -> None:
        """Track a started process or submitit job (stopped at once if a stop came first)."""
        with self._lock:
            self._running[key] = child
            stop = self.stopping
        if stop:
            self._stop_one(child)

    def ended(self, key: int) -> None:
        """Stop tracking a process or job that has ended."""
        with self._lock:
            self._running.pop(key, None)

    def stop(self) -> int:
        """Ask every running child to checkpoint and stop; returns how many were asked."""
        with self._lock:
            self.stopping = True
            running = list(self._running.values())
        for child in running:
            self._stop_one(child)
        return len(running)

    def _stop_one(self, child: Any) -> None:
        if isinstance(child, subprocess.Popen):
            interrupt_process(child)
        elif self.launcher == "submitit-local":
            # SIGTERM: submitit's local controller forwards it to the job, whose run_command
            # forwards SIGINT to the run (its cancel() would SIGKILL the job after 1 s).
            process = getattr(child, "_process", None)
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        else:  # Slurm: scancel sends SIGTERM to the job, forwarded to the run as SIGINT
            with contextlib.suppress(Exception):
                child.cancel(check=False)


def launch_child(
    children: Children, executor: Any, argv: list[str], env: dict[str, str], log: str, key: int
) -> tuple[int, str | None]:
    """Run one run's command locally or as a submitit job, tracked in ``children``; returns its
    exit status and, when the job itself failed, why."""
    try:
        if executor is None:
            return run_command(argv, env, log, lambda proc: children.started(key, proc)), None
        try:
            job = executor.submit(run_command, argv, env, log)
            children.started(key, job)
            return int(job.result()), None
        except Exception as exc:  # the job itself failed (killed, timed out)
            lines = str(exc).strip().splitlines()
            return (130 if children.stopping else 1), (lines[-1] if lines else repr(exc))
    finally:
        children.ended(key)


@contextlib.contextmanager
def forwarding_stops(children: Children, sweep: str) -> Iterator[None]:
    """While the sweep runs, SIGINT and SIGTERM stop it: every running child is asked to
    checkpoint and stop (a second signal stops them at once), and no new run starts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: Any) -> None:
        again = children.stopping
        asked = children.stop()
        what = "stopping them at once" if again else "asking them to checkpoint and stop"
        print(
            f"\nsweep {sweep}: {signal.Signals(signum).name}: {asked} running run(s), {what}; "
            "no new run starts" + ("" if again else " (again to stop at once)"),
            file=sys.stderr,
            flush=True,
        )

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def script_command() -> list[str]:
    """How to start this process's train script again (``python -m MODULE`` or the file)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return [sys.executable, "-m", spec.name]
    path = getattr(main, "__file__", None)
    if not path or not str(path).endswith(".py"):
        raise ConfigError("--sweep runs a project's train script; start it as one")
    return [sys.executable, str(Path(path).resolve())]


def child_env(slot: int, jobs: int, gpus: int) -> dict[str, str]:
    env = {"PYTHONUNBUFFERED": "1"}
    if "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
    return env


def gpu_count() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def submitit_executor(options: SweepOptions, folder: Path) -> Any:
    try:
        import submitit
    except ImportError:
        raise ConfigError(
            f"--launcher {options.launcher} needs submitit: uv pip install submitit "
            "(or bash scripts/setup.sh)"
        ) from None
    cluster = "local" if options.launcher == "submitit-local" else "slurm"
    try:
        executor = submitit.AutoExecutor(folder=folder / "submitit", cluster=cluster)
    except RuntimeError as exc:  # e.g. no srun: not on a Slurm cluster
        raise ConfigError(f"--launcher {options.launcher}: {exc}") from None
    params: dict[str, Any] = {"timeout_min": options.slurm_time, "name": options.name}
    if cluster == "slurm":
        params.update(
            slurm_partition=options.slurm_partition,
            gpus_per_node=options.slurm_gpus_per_job or None,
        )
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return executor
