"""One trainer per run: an exclusive lease on the run folder, taken before training writes there.

``<run folder>/lease.json`` names the holder (host, pid, the process's start time, when it took
the lease, a random token). It is created atomically (written aside, then ``os.link``ed into
place, which fails if a lease exists, on a local disk as on NFS), so of two trainers that start
together exactly one gets it; the other is refused with ``RunLeasedError`` naming the holder.

A lease outlives its holder only when the holder could not release it (SIGKILL, power loss):

- same host, holder process gone (or its pid reused by another process): taken over, with a note;
- another host: the holder renews the lease (touches the file) every ``timeout / 4`` seconds from a
  background thread; a lease not renewed for ``RESEARCH_LEASE_TIMEOUT_S`` seconds (default 600)
  is taken over, with a warning.

A takeover first renames the old lease aside and checks that it moved the lease it judged, so two
trainers taking over the same dead lease cannot both win. Within one process the lease is
re-entrant (``train_run`` and the ``Trainer`` both hold it); under ``torchrun`` rank 0 holds it
for every rank.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from common import settings

LEASE_FILE = "lease.json"


class RunLeasedError(RuntimeError):
    """Another process is training this run (a user error: exit 2)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease."""

    host: str
    pid: int
    process_start: float | None
    started_at: str
    token: str

    def describe(self) -> str:
        """``pid 123 on host h (since 2026-01-01T00:00:00Z)``."""
        return f"pid {self.pid} on host {self.host} (since {self.started_at})"


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (None when unknown or gone)."""
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:  # noqa: BLE001 - psutil missing, no such process, no access
        return None


def _zombie(pid: int) -> bool:
    """Whether process ``pid`` has ended but is not yet reaped (it trains nothing any more)."""
    try:
        import psutil

        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except Exception:  # noqa: BLE001 - psutil missing, no such process, no access
        return False


def _alive(holder: Holder) -> bool:
    """Whether the holder process (on this host) still runs: its pid exists, has not ended
    (a killed trainer whose parent died too stays a zombie until it is reaped) and, when
    recorded, started when the holder did (a reused pid is another process)."""
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if _zombie(holder.pid):
        return False
    if holder.process_start is None:
        return True
    started = _process_start(holder.pid)
    return started is None or abs(started - holder.process_start) < 1.0


def _read(path: Path) -> Holder | None:
    """The holder a lease file names (None when it is gone or unreadable)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Holder(
            host=str(raw["host"]),
            pid=int(raw["pid"]),
            process_start=None if raw.get("process_start") is None else float(raw["process_start"]),
            started_at=str(raw.get("started_at", "?")),
            token=str(raw["token"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Lease:
    """A held lease on a run folder (see the module docstring); ``release()`` gives it back.

    Use ``acquire_lease`` to get one.
    """

    def __init__(self, folder: Path, holder: Holder, timeout_s: float) -> None:
        self.folder = folder
        self.path = folder / LEASE_FILE
        self.holder = holder
        self.timeout_s = timeout_s
        self.depth = 1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def held(self) -> bool:
        """Whether the lease file still names this holder."""
        current = _read(self.path)
        return current is not None and current.token == self.holder.token

    def renew(self) -> None:
        """Mark the lease as alive now (its file's modification time).

        Raises:
            RunLeasedError: another process took the lease over.
        """
        current = _read(self.path)
        if current is None or current.token != self.holder.token:
            who = current.describe() if current else "nobody (the lease file is gone)"
            raise RunLeasedError(f"the lease of run folder {self.folder} is now held by {who}")
        with contextlib.suppress(OSError):
            os.utime(self.path)

    def _heartbeat(self) -> None:
        interval = max(self.timeout_s / 4.0, 0.05)
        while not self._stop.wait(interval):
            try:
                self.renew()
            except (RunLeasedError, OSError):
                return

    def start_heartbeat(self) -> None:
        """Renew the lease from a background thread until ``release``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._heartbeat, daemon=True, name="lease")
            self._thread.start()

    def release(self) -> None:
        """Give the lease back (the outermost release of this process removes the file)."""
        self.depth -= 1
        if self.depth > 0:
            return
        _HELD.pop(self.path.resolve(), None)
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self.held():
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


_HELD: dict[Path, Lease] = {}
_HELD_LOCK = threading.Lock()


def _create(path: Path, holder: Holder) -> bool:
    """Create the lease file atomically with ``holder``'s content; False if one exists."""
    aside = path.with_name(f".{LEASE_FILE}.{holder.token}.tmp")
    aside.write_text(json.dumps(asdict(holder), indent=2) + "\n", encoding="utf-8")
    try:
        os.link(aside, path)
    except FileExistsError:
        return False
    finally:
        aside.unlink(missing_ok=True)
    return True


def _take_over(path: Path, judged: Holder) -> bool:
    """Move the lease ``judged`` dead out of the way; False if the file is no longer that one."""
    aside = path.with_name(f".{LEASE_FILE}.{judged.token}.{secrets.token_hex(4)}.stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    moved = _read(aside)
    if moved is None or moved.token != judged.token:  # someone else's fresh lease: put it back
        with contextlib.suppress(FileExistsError, FileNotFoundError):
            os.link(aside, path)
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True


def acquire_lease(
    folder: str | Path,
    *,
    run: str | None = None,
    timeout_s: float | None = None,
    log: Callable[[str], None] = print,
    heartbeat: bool = True,
) -> Lease:
    """Take the exclusive lease of run folder ``folder`` (created if missing) for this process.

    Args:
        folder: the run folder.
        run: the run's name, for messages (default: the folder's name).
        timeout_s: how long another host's lease may go unrenewed before it is taken over
            (default ``RESEARCH_LEASE_TIMEOUT_S``, else 600 s).
        log: prints the note or warning of a takeover.
        heartbeat: renew the lease from a background thread while it is held.

    Returns:
        The lease; release it with ``release()`` (or use it as a context manager).

    Raises:
        RunLeasedError: a live process holds the lease; the message names it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LEASE_FILE
    name = run or folder.name
    timeout = settings.lease_timeout_s() if timeout_s is None else float(timeout_s)
    with _HELD_LOCK:
        mine = _HELD.get(path.resolve())
        if mine is not None and mine.held():
            mine.depth += 1
            return mine
        pid = os.getpid()
        holder = Holder(
            host=socket.gethostname(),
            pid=pid,
            process_start=_process_start(pid),
            started_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            token=secrets.token_hex(16),
        )
        for _ in range(5):
            if _create(path, holder):
                lease = Lease(folder, holder, timeout)
                _HELD[path.resolve()] = lease
                if heartbeat:
                    lease.start_heartbeat()
                return lease
            current = _read(path)
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                continue  # released meanwhile: try again
            if current is None:  # unreadable: judge it by its age alone
                if age <= timeout:
                    raise RunLeasedError(
                        f"run {name} is locked by an unreadable lease {path} "
                        f"(renewed {age:.0f} s ago); if no trainer runs, delete that file"
                    )
                path.unlink(missing_ok=True)
                continue
            if current.host == holder.host:
                if _alive(current):
                    raise RunLeasedError(
                        f"run {name} is being trained by {current.describe()}; "
                        f"wait for it to finish or stop it (lease {path})"
                    )
                if _take_over(path, current):
                    log(
                        f"note: taking over the lease of run {name} from {current.describe()}, "
                        "which is no longer running"
                    )
                continue
            if age <= timeout:
                raise RunLeasedError(
                    f"run {name} is being trained by {current.describe()} (lease renewed "
                    f"{age:.0f} s ago; it is taken over after {timeout:.0f} s without renewal, "
                    f"{settings.LEASE_TIMEOUT_ENV_VAR}); stop that trainer or wait (lease {path})"
                )
            if _take_over(path, current):
                log(
                    f"warning: taking over the lease of run {name} from {current.describe()}: "
                    f"not renewed for {age:.0f} s (more than {timeout:.0f} s); if that trainer "
                    "still runs, stop it, or two processes train this run"
                )
        raise RunLeasedError(f"run {name}: could not take the lease {path}; try again")


def acquire_run_lease(
    folder: str | Path, *, is_main: bool, run: str | None = None, log: Callable[[str], None] = print
) -> Lease | None:
    """The lease for every rank of a (possibly data-parallel) trainer: rank 0 takes it, the
    others share it (None on them); every rank raises when rank 0 was refused.

    Raises:
        RunLeasedError: on every rank, when another process holds the lease.
    """
    from common.training.distributed import broadcast_object

    lease, refusal = None, None
    if is_main:
        try:
            lease = acquire_lease(folder, run=run, log=log)
        except RunLeasedError as exc:
            refusal = str(exc)
    refusal = broadcast_object(refusal)
    if refusal is not None:
        if lease is not None:
            lease.release()
        raise RunLeasedError(refusal)
    return lease
