"""One open ``Store`` per thread and store folder, reused while the folder is unchanged.

A process that asks the same store again (a notebook's ``query_experiments`` calls, the reports
called without ``store=``) reuses the snapshot, its DuckDB connection and views. Before each use
the folder's state is read again: the names, sizes and modification stamps of the entries of
``saves/``, ``merged/`` and ``schema/``, the names in ``annotations/`` (each tag, untag or note
adds one) and the names at its top. Every change to a store (a save, overwrite, delete,
rename, rewind, compaction or repair, a tag, untag or note, from any process or machine) adds or
removes a file there, and files are never changed in place; a damaged file changes its size or
stamp. (``names/`` is not read: a claim that changes which experiment with rows a name shows
comes with a rename or delete, which writes to ``saves/``.) So an equal state means an equal
snapshot, and any difference takes a new one. The stamps only tell files apart, they never order
anything (the store's design uses no clock).

A store asked again on an unchanged snapshot keeps its rows in memory (``Store.keep_in_memory``,
up to ``read.IN_MEMORY_LIMIT`` values), so repeated queries read no file.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from common.experiments import layout
from common.experiments.annotations import ANNOTATIONS
from common.experiments.errors import DamagedStoreWarning, StoreNotFoundError
from common.experiments.read import Store
from common.experiments.schema import SCHEMA_FOLDER
from common.experiments.sql import is_numeric

if TYPE_CHECKING:
    import pandas as pd

_WATCHED = (layout.SAVES, layout.MERGED, SCHEMA_FOLDER)
_LOCAL = threading.local()


def store_state(root: Path) -> tuple[Any, ...]:
    """What a snapshot of the store at ``root`` depends on, read without opening any file.

    Raises:
        StoreNotFoundError: the folder cannot be read.
    """
    state: list[Any] = []
    for folder in _WATCHED:
        entries = []
        try:
            with os.scandir(root / folder) as it:
                for entry in it:
                    try:
                        st = entry.stat()
                    except FileNotFoundError:  # removed while listed: the state differs anyway
                        continue
                    entries.append((entry.name, st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreNotFoundError(f"cannot read the experiment store {root}: {exc}") from exc
        state.append(tuple(sorted(entries)))
    try:  # every tag, untag or note adds a new name here (``annotations``)
        state.append(tuple(sorted(os.listdir(root / ANNOTATIONS))))
    except OSError:
        state.append(())
    try:
        state.append(tuple(sorted(os.listdir(root))))
    except OSError as exc:
        raise StoreNotFoundError(f"cannot read the experiment store {root}: {exc}") from exc
    return tuple(state)


def shared_store(storage_dir: str | os.PathLike[str] | None = None) -> Store:
    """This thread's read-only ``Store`` over ``storage_dir``, on a snapshot that is current:
    the one it had when the store has not changed since, else a new one. Do not close it.

    Damage warnings are given on every call, as a new ``Store`` would give them.

    Raises:
        StoreNotFoundError: no store there.
    """
    root = layout.resolve_dir(storage_dir, create=False)
    stores: dict[tuple[int, str], tuple[tuple[Any, ...], Store]] = _LOCAL.__dict__.setdefault(
        "stores", {}
    )
    key = (os.getpid(), str(root))
    state = store_state(root)
    cached = stores.get(key)
    if cached is not None:
        old_state, store = cached
        if old_state == state:  # asked again: keep the rows in memory from now on
            store.keep_in_memory()
            for problem in store.problems:
                warnings.warn(f"experiment store: {problem}", DamagedStoreWarning, stacklevel=3)
            return store
        try:
            store.refresh()
        except BaseException:
            stores.pop(key, None)
            raise
    else:
        store = Store(root)
    stores[key] = (state, store)
    return store


def query_experiments(
    sql: str, *, storage_dir: str | os.PathLike[str] | None = None
) -> pd.DataFrame:
    """Run one read-only SQL query over the store and return a DataFrame.

    Raises:
        ReadOnlyViolation: the statement could write or change something.
        QueryError: DuckDB refused the query.
        StoreNotFoundError: no store at ``storage_dir``.
    """
    return shared_store(storage_dir).sql_df(sql)


def experiment_names(
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    storage_dir: str | os.PathLike[str] | None = None,
) -> list[str]:
    """Names of the experiments in the store, sorted; ``[]`` for an empty store."""
    if con is not None:
        rows = con.execute("SELECT DISTINCT experiment_name FROM experiments ORDER BY 1")
        return [r[0] for r in rows.fetchall()]
    return shared_store(storage_dir).experiment_names()


def metric_columns(
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    storage_dir: str | os.PathLike[str] | None = None,
) -> list[str]:
    """Numeric result columns of the store (not metadata or provenance), in column order."""
    if con is not None:
        rows = con.execute("SELECT column_name, kind, column_type FROM experiment_columns")
        return [n for n, kind, t in rows.fetchall() if kind == "result" and is_numeric(t)]
    return shared_store(storage_dir).metric_columns()
