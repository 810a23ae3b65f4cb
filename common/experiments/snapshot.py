"""Which file serves each save: one consistent, verified view of the store folder.

A snapshot lists ``saves/`` and then ``merged/`` (in that order: a compaction that finishes
between the two listings has already published the merged file holding what it deletes), reads
and verifies every file, and decides:

- ``dead``: saves superseded by an overwrite, delete, rename, rewind or repair (the union of the
  ``dead`` lists of all files); their rows are never shown;
- for every other save, exactly one file that serves it: merged files first (more saves first,
  then by name), then single saves. A file none of whose saves it must serve is not read, and a
  file that serves only some of its saves is read with a filter on the hidden ``_rx_save``.

No clock takes part: visibility follows only from which saves each file names.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

from common.experiments import layout
from common.experiments.errors import ExperimentStoreError, StoreNotFoundError
from common.experiments.layout import Damaged, FileInfo


@dataclasses.dataclass(frozen=True)
class Part:
    """A file queries read, and the saves in it they must skip."""

    info: FileInfo
    exclude: frozenset[str]


@dataclasses.dataclass
class Snapshot:
    """The store's files at one moment, verified."""

    root: Path
    files: list[FileInfo]  # every verified file, merged first
    parts: list[Part]  # the files queries read
    dead: frozenset[str]
    damaged: list[Damaged]
    legacy: list[str]  # files of the previous format at the top of the folder

    @property
    def covered(self) -> list[FileInfo]:
        """Verified files that serve no save (all held by higher-ranked files, or dead)."""
        read = {p.info.path for p in self.parts}
        return [f for f in self.files if f.path not in read]

    @property
    def pending(self) -> list[FileInfo]:
        """Single-save files (not merged yet)."""
        return [f for f in self.files if f.kind != "merged"]

    def columns(self) -> dict[str, tuple[str, str]]:
        """Lower-case column name -> (spelling, "result" | "metadata") over the read files."""
        out: dict[str, tuple[str, str]] = {}
        for part in self.parts:
            for col in part.info.result_cols:
                out.setdefault(col.lower(), (col, "result"))
        for part in self.parts:
            for col in part.info.meta_cols:
                out.setdefault(col.lower(), (col, "metadata"))
        return out

    def experiments(self) -> set[str]:
        """Names that may have visible rows (from footers; a rewrite may have emptied some)."""
        return {e for p in self.parts for e in p.info.exps}


# Files are immutable and named by their checksum; a changed size or mtime (damage after the
# file was verified) makes it verified again.
_CACHE: dict[tuple[str, int, int], FileInfo] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_LIMIT = 20000


class _Vanished(Exception):
    pass


def _load(folder: str, path: str) -> FileInfo | Damaged:
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise _Vanished(path) from exc
    key = (path, st.st_size, st.st_mtime_ns)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    try:
        info = layout.read_file(folder, path)
    except FileNotFoundError as exc:
        raise _Vanished(path) from exc
    except layout.BadFile as exc:
        return Damaged(path, str(exc), layout.describe_holdings(folder, path))
    with _CACHE_LOCK:
        if len(_CACHE) > _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[key] = info
    return info


def _list(root: Path, folder: str) -> list[str]:
    try:
        return sorted(os.listdir(root / folder))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StoreNotFoundError(f"cannot read the experiment store {root}: {exc}") from exc


def take_snapshot(root: Path) -> Snapshot:
    """List and verify the store; retried when a concurrent compaction deletes a listed file.

    Raises:
        StoreNotFoundError: the folder cannot be read.
        ExperimentStoreError: the folder kept changing for 50 attempts.
    """
    if not root.is_dir():
        raise StoreNotFoundError(f"no experiment store at {root}: the folder does not exist")
    for _ in range(50):
        try:
            return _snapshot_once(root)
        except _Vanished:
            continue
    raise ExperimentStoreError(f"the experiment store {root} kept changing while being read")


def _snapshot_once(root: Path) -> Snapshot:
    names = {layout.SAVES: _list(root, layout.SAVES)}
    names[layout.MERGED] = _list(root, layout.MERGED)
    try:
        top = os.listdir(root)
    except OSError as exc:
        raise StoreNotFoundError(f"cannot read the experiment store {root}: {exc}") from exc
    legacy = sorted(n for n in top if layout.is_legacy_name(n))

    merged: list[tuple[int, str, FileInfo]] = []
    singles: list[FileInfo] = []
    damaged: list[Damaged] = []
    for folder in (layout.MERGED, layout.SAVES):
        for name in names[folder]:
            if name.startswith("."):
                continue
            path = str(root / folder / name)
            got = _load(folder, path)
            if isinstance(got, Damaged):
                damaged.append(got)
            elif got.kind == "merged":
                merged.append((-len(got.saves), name, got))
            else:
                singles.append(got)
    merged.sort(key=lambda t: (t[0], t[1]))
    files = [m[2] for m in merged] + singles
    dead, parts = _serve(files)
    return Snapshot(root, files, parts, dead, damaged, legacy)


def _serve(files: list[FileInfo]) -> tuple[frozenset[str], list[Part]]:
    """The superseded saves, and the parts that serve every other save once (``files`` ranked:
    merged first, more saves first, then single saves)."""
    dead: set[str] = set()
    for info in files:
        dead |= info.dead
    taken: set[str] = set()
    parts: list[Part] = []
    for info in files:
        mine = info.saves - taken - dead
        if mine:
            parts.append(Part(info, frozenset(info.saves - mine)))
        taken |= info.saves
    return frozenset(dead), parts


_FOOTERS: dict[tuple[str, int, int], FileInfo] = {}


def footer_parts(root: Path) -> list[Part]:
    """The parts a snapshot would read, decided from the files' footers alone (no checksum is
    verified and no data is read): what the stored files say, e.g. each column's type.

    Files that vanish meanwhile, or whose footer cannot be read, are left out.
    """
    ranked: list[tuple[int, int, str, FileInfo]] = []
    for folder in (layout.MERGED, layout.SAVES):
        for name in _list(root, folder):
            path = str(root / folder / name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            key = (path, st.st_size, st.st_mtime_ns)
            with _CACHE_LOCK:
                info = _CACHE.get(key) or _FOOTERS.get(key)
            if info is None:
                try:
                    info = layout.read_footer(folder, path)
                except (OSError, layout.BadFile):
                    continue
                with _CACHE_LOCK:
                    if len(_FOOTERS) > _CACHE_LIMIT:
                        _FOOTERS.clear()
                    _FOOTERS[key] = info
            merged = info.kind == "merged"
            ranked.append((0 if merged else 1, -len(info.saves) if merged else 0, name, info))
    ranked.sort(key=lambda t: t[:3])
    return _serve([t[3] for t in ranked])[1]
