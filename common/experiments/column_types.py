"""Each column's type as the stored files say it, and ``schema/``, the registry that caches it.

A column's type in a store is the logical type that most of its visible rows are stored with,
read from the files' Parquet footers only (no data is read, no checksum verified). A file that
merged rows of disagreeing types (stored as text, so nothing is lost) records in its footer how
many rows of each type went into it (``mixed``), so a merge never turns a number column into a
text one. Ties go to the first of ``LOGICAL_TYPES`` (number first).

The registry (``Registry``, ``registry(root)``) keeps one small file per column under
``schema/``, created with an exclusive link by the first save of the column, so concurrent first
saves agree on one winner before any of them has stored a row. It is a cache: where the stored
files hold a column, their type decides; a missing entry is rebuilt from them and a disagreeing
one is overruled (reported by ``check_store``, restored by ``repair_store``; data is never
converted to follow an entry). A save whose values do not fit a column's type is refused before
anything is written.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from common.experiments.errors import SchemaError, StoreWriteError
from common.experiments.schema import (
    FIXED_TYPES,
    LOGICAL_TYPES,
    SCHEMA_FOLDER,
    TMP_FOLDER,
    Column,
    ColumnType,
    entry_name,
    logical_of_kind,
)
from common.experiments.snapshot import Part, footer_parts


def column_votes(parts: Iterable[Part]) -> dict[str, Counter[str]]:
    """Lower-case column -> logical type -> rows stored with that type, over ``parts``."""
    votes: dict[str, Counter[str]] = {}
    for part in parts:
        info = part.info
        if not info.rows:
            continue
        mixed = {k.lower(): v for k, v in info.mixed.items()}
        for col, kind in info.types.items():
            key = col.lower()
            if key in FIXED_TYPES:
                continue
            counter = votes.setdefault(key, Counter())
            if key in mixed:
                counter.update(mixed[key])
            else:
                counter[logical_of_kind(kind)] += info.rows
    return votes


def mixed_columns(
    parts: Iterable[Part], out_types: dict[str, str], rows: int
) -> dict[str, dict[str, int]]:
    """The footer entry ``mixed`` of a file of ``rows`` rows written from ``parts`` with column
    kinds ``out_types``: each text column whose input rows disagree on their type, with the rows
    of each type (scaled to ``rows``)."""
    parts = list(parts)
    votes = column_votes(parts)
    out = {}
    for col, kind in out_types.items():
        counter = votes.get(col.lower())
        if kind != "text" or counter is None or len(counter) < 2:
            continue
        total = sum(counter.values())
        out[col] = {t: max(1, round(n * rows / total)) for t, n in sorted(counter.items())}
    return out


def winner(counter: Counter[str]) -> str:
    """The logical type held by most rows (ties: the first of ``LOGICAL_TYPES``)."""
    best = max(counter.values())
    return next(t for t in LOGICAL_TYPES if counter.get(t) == best)


def stored_types(root: Path) -> dict[str, ColumnType]:
    """Lower-case column -> its type as the store's visible files hold it, with an experiment
    whose rows have that type (the first by name)."""
    parts = footer_parts(root)
    votes = column_votes(parts)
    spelling: dict[str, str] = {}
    holders: dict[tuple[str, str], set[str]] = {}
    for part in parts:
        if not part.info.rows:
            continue
        for col, kind in part.info.types.items():
            key = col.lower()
            spelling.setdefault(key, col)
            holders.setdefault((key, logical_of_kind(kind)), set()).update(part.info.exps)
    out = {}
    for key, counter in votes.items():
        logical = winner(counter)
        exps = holders.get((key, logical)) or {
            e for (k, _), held in holders.items() if k == key for e in held
        }
        out[key] = ColumnType(spelling[key], logical, min(exps, default="(unknown)"))
    return out


# --------------------------------------------------------------------------------------------
# the registry: one file per column under <store>/schema/, a cache of ``stored_types``


class Registry:
    """The column types of one store: ``schema/`` checked against the stored files.

    An entry is a cache of what the stored files say (``column_types``): where the files hold
    the column, their type wins over the entry (a missing entry is written again; a disagreeing
    one is reported by ``check_store`` and restored by ``repair_store``). An entry decides alone
    only for a column no visible file holds yet (a first save in progress, or all its rows
    deleted). Types this process has checked are kept (a column's type does not change).

    Args:
        folder: ``<store>/schema``.
        tmp_folder: where a new entry is written before it is linked into place.
    """

    def __init__(self, folder: Path, tmp_folder: Path) -> None:
        self.folder = folder
        self.tmp_folder = tmp_folder
        self._known: dict[str, ColumnType] = {}

    def entry(self, column: str) -> ColumnType | None:
        """What ``schema/`` says about ``column`` now (case-insensitive), or None."""
        return _read_entry(self.folder / entry_name(column))

    def entries(self) -> dict[str, ColumnType]:
        """Every readable entry of ``schema/`` now (lower-case name -> type)."""
        try:
            names = sorted(os.listdir(self.folder))
        except OSError:
            return {}
        out: dict[str, ColumnType] = {}
        for name in names:
            if name.endswith(".json"):
                entry = _read_entry(self.folder / name)
                if entry is not None:
                    out.setdefault(entry.column.lower(), entry)
        return out

    def stored(self) -> dict[str, ColumnType]:
        """Each column's type as the stored files hold it (lower-case name -> type)."""
        return stored_types(self.folder.parent)

    def get(self, column: str) -> ColumnType | None:
        """The type of ``column`` (case-insensitive) in this store, or None for a new column."""
        return self._resolve([column]).get(column.lower())

    def all(self) -> dict[str, ColumnType]:
        """Every column's type: the stored files', else the entry's (lower-case name -> type)."""
        out = self.entries()
        stored = self.stored()
        out.update(stored)
        self._known.update(stored)
        return out

    def _resolve(self, columns: Iterable[str]) -> dict[str, ColumnType]:
        keys = {c.lower(): c for c in columns if c.lower() not in FIXED_TYPES}
        unknown = [k for k in keys if k not in self._known]
        if unknown:
            stored = self.stored()
            for key in unknown:
                entry = self.entry(key)
                found = stored.get(key)
                if found is None:
                    found = entry
                elif entry is None:
                    self._link(found)  # rebuilt from the data
                elif entry.logical == found.logical:
                    found = entry  # it names the experiment that set the type
                if found is not None:
                    self._known[key] = found
        return {k: self._known[k] for k in keys if k in self._known}

    def check(self, experiment: str, columns: Sequence[Column]) -> list[Column]:
        """Refuse columns whose type differs from the store's; return the new columns.

        Raises:
            SchemaError: one message per refused save, naming the column, both types and the
                experiment that set (or holds) the column's type.
        """
        known = self._resolve(c.name for c in columns)
        new = []
        for col in columns:
            if col.name.lower() in FIXED_TYPES:
                continue
            have = known.get(col.name.lower())
            if have is None:
                new.append(col)
            elif have.logical != col.logical:
                raise _refusal(experiment, col, have)
        return new

    def register(self, experiment: str, columns: Sequence[Column]) -> None:
        """Record the types of new columns; a concurrent first save of the same column wins
        or loses atomically, and a loser whose type differs is refused.

        Raises:
            SchemaError: another save registered the column with another type meanwhile.
            StoreWriteError: the registry cannot be written.
        """
        for col in columns:
            self._link(ColumnType(col.name, col.logical, experiment))
            winner = self.entry(col.name) or ColumnType(col.name, col.logical, experiment)
            if winner.logical != col.logical:
                raise _refusal(experiment, col, winner)
            self._known[col.name.lower()] = winner

    def disagreements(self) -> list[tuple[ColumnType, ColumnType]]:
        """``(entry, stored)`` for every entry whose type differs from the stored files'."""
        stored = self.stored()
        return [
            (entry, stored[key])
            for key, entry in sorted(self.entries().items())
            if key in stored and stored[key].logical != entry.logical
        ]

    def restore(self) -> list[tuple[ColumnType | None, ColumnType]]:
        """Rewrite every missing or disagreeing entry from the stored files (never the data).

        Returns:
            ``(old entry or None, restored entry)`` per entry written.
        """
        entries = self.entries()
        restored = []
        for key, found in sorted(self.stored().items()):
            old = entries.get(key)
            if old is None or old.logical != found.logical:
                self._write(found, replace=True)
                restored.append((old, found))
            self._known[key] = found if old is None or old.logical != found.logical else old
        return restored

    def _link(self, entry: ColumnType) -> None:
        self._write(entry, replace=False)

    def _write(self, entry: ColumnType, *, replace: bool) -> None:
        """Publish an entry: linked exclusively (the first writer wins), or replacing one."""
        try:
            self.folder.mkdir(exist_ok=True)
            self.tmp_folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise StoreWriteError(
                f"cannot write the store's schema in {self.folder}: {exc.strerror or exc}"
            ) from exc
        doc = {"column": entry.column, "type": entry.logical, "experiment": entry.experiment}
        tmp = self.tmp_folder / f"schema-{os.getpid()}-{os.urandom(6).hex()}.json"
        final = self.folder / entry_name(entry.column)
        try:
            tmp.write_text(json.dumps(doc))
            if replace:
                os.replace(tmp, final)
            else:
                with contextlib.suppress(FileExistsError):  # another save registered it first
                    os.link(tmp, final)
        except OSError as exc:
            raise StoreWriteError(
                f"cannot write the store's schema in {self.folder}: {exc.strerror or exc}"
            ) from exc
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _read_entry(path: Path) -> ColumnType | None:
    try:
        data = json.loads(path.read_bytes())
        if data["type"] not in LOGICAL_TYPES:
            return None
        return ColumnType(data["column"], data["type"], data["experiment"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or unreadable: the stored files decide


def _refusal(experiment: str, col: Column, have: ColumnType) -> SchemaError:
    return SchemaError(
        f"cannot save experiment {experiment!r}: column {col.name!r} holds "
        f"{have.logical} values in this store (set by experiment "
        f"{have.experiment!r}), but this save has {col.logical} values "
        f"(e.g. {_example(col)}); convert them, or use another column name"
    )


_REGISTRIES: dict[tuple[int, Path], Registry] = {}


def registry(root: Path) -> Registry:
    """The column-type registry of the store at ``root`` (one per process and store)."""
    key = (os.getpid(), root)
    reg = _REGISTRIES.get(key)
    if reg is None:
        reg = _REGISTRIES[key] = Registry(root / SCHEMA_FOLDER, root / TMP_FOLDER)
    return reg


def _example(col: Column) -> str:
    value = next((v for v in col.values if v is not None), None)
    return repr(value)
