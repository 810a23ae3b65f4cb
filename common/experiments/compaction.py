"""Compaction: merge small files into larger ones, drop superseded rows, remove what is merged.

Saves land in ``saves/``. When ``PENDING_LIMIT`` of them have gathered, the saving process merges
them in a background thread (the save itself never waits) into one file in ``merged/``; merged
files are merged again, ``FANIN`` of one size tier at a time (tier: saves held, in powers of
``FANIN`` above ``PENDING_LIMIT``), so a store of N saves has O(log N) files and each row is
rewritten O(log N) times. ``compact_store()`` merges everything into one file.

A merge writes the rows that are still visible (superseded saves are dropped for good) and keeps,
in the new file's footer, every superseded save id (so an older copy anywhere stays hidden). The
new file is read back and verified before it is published; only then are its inputs deleted. A
file is deleted only when every save it holds is held by, or superseded in, a verified file that
ranks higher, so no save loses its last copy, whatever other compactions do meanwhile. Readers
that listed a deleted file take a new snapshot and retry.

An advisory claim (``compacting``, created exclusively) keeps two processes from usually doing
the same work; correctness never depends on it. Temporary files under ``tmp/`` are removed only
when their writer is known to be dead (same host, process gone) or when the file system's own
clock says they are older than ``TMP_MAX_AGE_S``: no host's wall clock takes part.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import threading
import warnings
from pathlib import Path
from typing import Any

from common.experiments import layout
from common.experiments.column_types import mixed_columns, registry
from common.experiments.errors import DamagedStoreWarning
from common.experiments.layout import FileInfo
from common.experiments.read import database, quote_ident, rows_relation
from common.experiments.schema import (
    SQL_TYPES,
    kind_of_sql_type,
    logical_of_kind,
    union_names,
)
from common.experiments.snapshot import Snapshot, take_snapshot

PENDING_LIMIT = 32
"""Single saves gathered before they are merged."""
FANIN = 4
"""Merged files of one size tier merged together."""
TMP_MAX_AGE_S = 6 * 3600.0
"""Age (by the file system's clock) after which another host's temporary file is left-over."""
CLAIM_MAX_AGE_S = 900.0
_CLAIM = "compacting"


@dataclasses.dataclass
class CompactionReport:
    """What a compaction did."""

    files_merged: int = 0
    files_written: int = 0
    files_deleted: int = 0
    live_files: int = 0
    bytes_live: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict."""
        return dataclasses.asdict(self)


def _tier(n_saves: int) -> int:
    tier, size = 0, PENDING_LIMIT
    while n_saves >= size * FANIN:
        size *= FANIN
        tier += 1
    return tier


def _merge(root: Path, snap: Snapshot, inputs: list[FileInfo]) -> FileInfo:
    """Write one verified merged file holding the visible rows of ``inputs``."""
    paths = {i.path for i in inputs}
    parts = [p for p in snap.parts if p.info.path in paths]
    saves: set[str] = set()
    for part in parts:  # rows held, and superseded saves (so that their files count as merged)
        saves |= (part.info.saves - part.exclude) | (part.info.saves & snap.dead)
    relation = rows_relation(Snapshot(root, inputs, parts, snap.dead, [], []))
    con = database(None).cursor()
    if relation is None:
        select = (
            "SELECT CAST(NULL AS VARCHAR) AS experiment_name, "
            f"CAST(NULL AS VARCHAR) AS {quote_ident('_rx_save')} WHERE false"
        )
    else:
        select = _typed_select(root, con, relation)
    described = con.execute(f"DESCRIBE {select}").fetchall()
    row = con.execute(f"SELECT count(*) FROM ({select})").fetchone()
    assert row is not None
    types = {r[0]: kind_of_sql_type(r[1]) for r in described}
    footer = {
        "saves": sorted(saves),
        "dead": sorted(snap.dead),
        "exps": sorted({e for p in parts for e in p.info.exps}),
        "types": types,
        "result_cols": union_names([p.info.result_cols for p in parts]),
        "meta_cols": union_names([p.info.meta_cols for p in parts]),
        "rows": int(row[0]),
        "mixed": mixed_columns(parts, types, int(row[0])),
    }
    stem = f"{len(saves):09d}-{layout.new_id()}"
    path = layout.write_query(root, layout.MERGED, stem, con, select, footer)
    info = layout.read_file(layout.MERGED, str(path))  # verified against its checksum
    return info


def _typed_select(root: Path, con: Any, relation: str) -> str:
    """The merged rows, each column converted to its type in the store's schema where every
    value converts (text digits left by a repair); a value that does not convert keeps the
    column as it is, for ``repair_store`` to see."""
    registered = registry(root).all()
    select = []
    for name, typ, *_ in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall():
        entry = registered.get(name.lower())
        q = quote_ident(name)
        if entry is not None and logical_of_kind(kind_of_sql_type(typ)) != entry.logical:
            target = SQL_TYPES[entry.logical]
            bad = con.execute(
                f"SELECT count(*) FROM {relation} WHERE {q} IS NOT NULL "
                f"AND TRY_CAST({q} AS {target}) IS NULL"
            ).fetchone()
            if bad is not None and bad[0] == 0:
                select.append(f"CAST({q} AS {target}) AS {q}")
                continue
        select.append(q)
    return f"SELECT {', '.join(select)} FROM {relation} ORDER BY experiment_name, _rx_save"


def _delete_covered(root: Path) -> int:
    """Delete files whose every save is held by, or superseded in, a higher-ranked file."""
    snap = take_snapshot(root)
    deleted = 0
    for info in snap.covered:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(info.path)
            deleted += 1
    return deleted


def _plan(snap: Snapshot, full: bool) -> list[FileInfo] | None:
    if full:
        return [p.info for p in snap.parts] if _needs_full(snap) else None
    read = {p.info.path for p in snap.parts}
    pending = [f for f in snap.pending if f.path in read]
    if len(pending) >= PENDING_LIMIT:
        return pending
    tiers: dict[int, list[FileInfo]] = {}
    for part in snap.parts:
        if part.info.kind == "merged":
            tiers.setdefault(_tier(len(part.info.saves)), []).append(part.info)
    for tier in sorted(tiers):
        if len(tiers[tier]) >= FANIN:
            return tiers[tier][-FANIN:]
    return None


def _needs_full(snap: Snapshot) -> bool:
    return len(snap.parts) > 1 or any(p.exclude for p in snap.parts) or bool(snap.covered)


def compact(root: Path, *, full: bool = False, stop: threading.Event | None = None) -> int:
    """Merge what is due (everything when ``full``); returns the number of files written."""
    if not _claim(root):
        return 0
    written = 0
    try:
        clean_tmp(root)
        for _ in range(64):
            if stop is not None and stop.is_set():
                break
            snap = take_snapshot(root)
            plan = _plan(snap, full)
            if plan is None:
                break
            _merge(root, snap, plan)
            written += 1
            _delete_covered(root)
            if full:
                break
        _delete_covered(root)
    finally:
        _release(root)
    return written


def compact_store(storage_dir: str | os.PathLike[str] | None = None) -> CompactionReport:
    """Merge every file of the store into one, dropping superseded rows for good.

    Safe while others read and write: saves that arrive meanwhile stay in their own files.

    Args:
        storage_dir: the store folder; default ``get_experiments_dir()``.
    """
    root = layout.resolve_dir(storage_dir, create=False)
    before = take_snapshot(root)
    for bad in before.damaged:
        warnings.warn(
            f"experiment store: left alone, cannot read {bad.describe()}",
            DamagedStoreWarning,
            stacklevel=2,
        )
    report = CompactionReport(files_merged=len(before.parts))
    n_files = len(before.files)
    report.files_written = compact(root, full=True)
    after = take_snapshot(root)
    report.files_deleted = max(0, n_files + report.files_written - len(after.files))
    report.live_files = len(after.parts)
    report.bytes_live = sum(p.info.size for p in after.parts)
    return report


# --------------------------------------------------------------------------------------------
# automatic compaction, off the saving thread

_STATE_LOCK = threading.Lock()
_THREADS: dict[Path, threading.Thread] = {}
_STOP = threading.Event()
_COUNT: dict[Path, int] = {}


def after_save(root: Path) -> None:
    """Called after each save: start a background merge when enough saves are pending."""
    with _STATE_LOCK:
        _COUNT[root] = _COUNT.get(root, 0) + 1
        if _COUNT[root] % 8 != 1:  # a process's first save looks too: many short-lived savers
            return
        thread = _THREADS.get(root)
        if thread is not None and thread.is_alive():
            return
    try:
        pending = len(os.listdir(root / layout.SAVES))
    except OSError:
        return
    if pending < PENDING_LIMIT:
        return
    thread = threading.Thread(target=_background, args=(root,), name="store-compaction")
    thread.daemon = True
    with _STATE_LOCK:
        _THREADS[root] = thread
    thread.start()


def _background(root: Path) -> None:
    try:
        compact(root, stop=_STOP)
    except Exception as exc:  # noqa: BLE001 - the saves are safe; a later merge will retry
        warnings.warn(f"automatic compaction of {root} failed (data is safe): {exc}", stacklevel=1)


@atexit.register
def _finish() -> None:
    _STOP.set()
    for thread in list(_THREADS.values()):
        thread.join()


def wait_for_compaction() -> None:
    """Wait until this process's background merges are done."""
    for thread in list(_THREADS.values()):
        thread.join()


# --------------------------------------------------------------------------------------------
# the claim and temporary files


def _claim(root: Path) -> bool:
    path = root / _CLAIM
    me = layout.tmp_path(root, "").name
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not _is_stale(root, path):
                return False
            with contextlib.suppress(OSError):
                os.unlink(path)
            continue
        except OSError:
            return False
        try:
            os.write(fd, me.encode())
        finally:
            os.close(fd)
        return True
    return False


def _release(root: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(root / _CLAIM)


def _writer_dead(name: str) -> bool | None:
    """True/False when the writer named in ``name`` runs on this host; None for another host."""
    owner = layout.tmp_owner(name)
    if owner is None or owner[0] != layout.safe_host():
        return None
    try:
        os.kill(owner[1], 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _is_stale(root: Path, path: Path) -> bool:
    try:
        owner = path.read_text()
        st = path.stat()
    except (OSError, UnicodeDecodeError):
        return False
    dead = _writer_dead(owner)
    if dead is not None:
        return dead
    return (layout.fs_now_ns(root) - st.st_mtime_ns) / 1e9 > CLAIM_MAX_AGE_S


def clean_tmp(root: Path) -> int:
    """Remove temporary files whose writer is dead; returns how many."""
    folder = root / layout.TMP
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    now = None
    removed = 0
    for entry in entries:
        dead = _writer_dead(entry.name)
        if dead is None:
            if now is None:
                now = layout.fs_now_ns(root)
            with contextlib.suppress(OSError):
                dead = (now - entry.stat().st_mtime_ns) / 1e9 > TMP_MAX_AGE_S
        if dead:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed += 1
    return removed
