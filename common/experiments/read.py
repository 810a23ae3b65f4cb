"""Reading: a ``Store`` holds one snapshot of the store, its DuckDB views, retry and the
read-only SQL guard.

Views on every store connection:

- ``experiments``: every visible row (``experiment_name``, results, flattened metadata, then the
  provenance columns ``saved_at``, ``git_commit``, ``git_dirty``, ``host``), columns unioned by
  name, each column read as its type in the store's schema (a value stored with another type,
  which only a damaged or hand-made file can hold, reads as NULL, with a warning);
- ``experiment_summary``: one row per experiment: ``rows``, first/last save, ``tags`` (a list of
  text, empty when none) and ``note`` (NULL when none) as ``experiment_annotations`` gives them
  when the snapshot is taken, then the latest provenance and metadata (a metadata column named
  ``tags`` or ``note`` shows there as ``tags_1`` / ``note_1``);
- ``experiment_columns``: ``column_name``, ``kind`` (name, result, metadata, provenance),
  ``column_type``.
"""

from __future__ import annotations

import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import duckdb

from common.experiments import layout
from common.experiments.annotations import experiment_annotations
from common.experiments.column_types import registry
from common.experiments.errors import (
    DamagedStoreWarning,
    ExperimentStoreError,
    QueryError,
    QueryTimeoutError,
)
from common.experiments.guard import (
    ANNOTATIONS_TABLE,
    ROWS_TABLE,
    check_readonly_sql,
    query_error_message,
    run_stoppable,
)
from common.experiments.schema import (
    FIXED_TYPES,
    NAME_COLUMN,
    PROVENANCE_COLUMNS,
    SAVE_COLUMN,
    SQL_TYPES,
    logical_of_kind,
)
from common.experiments.snapshot import Snapshot, take_snapshot
from common.experiments.sql import is_numeric, quote_ident, quote_str

if TYPE_CHECKING:
    import pandas as pd

R = TypeVar("R")


class QueryResult(NamedTuple):
    """A query's or report's answer: column names, rows (tuples) and notes on how it was made
    (e.g. which split a ranking used). ``.df()`` gives a pandas DataFrame."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    notes: tuple[str, ...] = ()

    def df(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame.from_records(self.rows, columns=self.columns)

    def _repr_html_(self) -> str:  # shown as a table in notebooks
        notes = "".join(f"<p>{n}</p>" for n in self.notes)
        return str(self.df()._repr_html_()) + notes


def count(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> int:
    """The single integer a ``SELECT count(*) ...`` query returns."""
    row = con.execute(sql, list(params) or None).fetchone()
    assert row is not None
    return int(row[0])


def rows_relation(snap: Snapshot, experiments: Sequence[str] | None = None) -> str | None:
    """SQL (a parenthesized subquery) over the visible rows, with the hidden save column;
    None when no file has rows. With ``experiments``, only files that hold them are read."""
    parts = snap.parts
    if experiments is not None:
        wanted = set(experiments)
        parts = [p for p in parts if wanted & set(p.info.exps)]
    plain = [p.info.path for p in parts if not p.exclude]
    selects = []
    if plain:
        files = ", ".join(quote_str(p) for p in plain)
        selects.append(f"SELECT * FROM read_parquet([{files}], union_by_name=true)")
    for part in parts:
        if part.exclude:
            skip = ", ".join(quote_str(s) for s in sorted(part.exclude))
            selects.append(
                f"SELECT * FROM read_parquet({quote_str(part.info.path)}) "
                f"WHERE {SAVE_COLUMN} NOT IN ({skip})"
            )
    if not selects:
        return None
    return "(" + " UNION ALL BY NAME ".join(selects) + ")"


_DATABASES: dict[tuple[int, str | None, str | None], duckdb.DuckDBPyConnection] = {}
_DATABASES_LOCK = threading.Lock()


def database(
    read_only_root: Path | None, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB instance shared by this process's connections (a cursor costs microseconds).

    A read-only instance, one per store, may touch no file outside the store, load no extension
    and change no setting. ``memory_limit`` (DuckDB's, e.g. ``"2GB"``) bounds what its queries
    may hold; a query that needs more fails with an out-of-memory error.
    """
    key = (os.getpid(), None if read_only_root is None else str(read_only_root), memory_limit)
    with _DATABASES_LOCK:
        db = _DATABASES.get(key)
        if db is None:
            db = duckdb.connect(":memory:")
            db.execute("SET parquet_metadata_cache = true")  # files are immutable
            if memory_limit is not None:
                db.execute(f"SET memory_limit = {quote_str(memory_limit)}")
            if read_only_root is not None:
                db.execute(f"SET allowed_directories = [{quote_str(str(read_only_root) + os.sep)}]")
                db.execute("SET enable_external_access = false")
                db.execute("SET autoload_known_extensions = false")
                db.execute("SET autoinstall_known_extensions = false")
                db.execute("SET lock_configuration = true")
            _DATABASES[key] = db
        return db


_EMPTY_VIEW = (
    "SELECT CAST(NULL AS VARCHAR) AS experiment_name, CAST(NULL AS TIMESTAMP) AS saved_at, "
    "CAST(NULL AS VARCHAR) AS git_commit, CAST(NULL AS BOOLEAN) AS git_dirty, "
    "CAST(NULL AS VARCHAR) AS host WHERE false"
)
_RETRIES = 30
IN_MEMORY_LIMIT = 10_000_000
"""At most this many values (rows x columns) are copied into memory by ``Store.keep_in_memory``."""


class Store:
    """One consistent view of an experiment store, queried through DuckDB.

    Args:
        storage_dir: the store folder; default ``get_experiments_dir()``.
        read_only: lock the connection down (no file access outside the store, no extensions,
            configuration locked).
        warn: emit a ``DamagedStoreWarning`` per damaged file and per column holding values of
            the wrong type.
        memory_limit: bound the memory of the queries (DuckDB's ``memory_limit``, e.g. "2GB").

    Raises:
        StoreNotFoundError: the folder does not exist or cannot be read.
    """

    def __init__(
        self,
        storage_dir: str | os.PathLike[str] | None = None,
        *,
        read_only: bool = True,
        warn: bool = True,
        memory_limit: str | None = None,
    ) -> None:
        self.root = layout.resolve_dir(storage_dir, create=False)
        self.con = database(self.root if read_only else None, memory_limit).cursor()
        self.warn = warn
        self.problems: list[str] = []
        self.wrong_types: dict[str, tuple[str, list[str]]] = {}
        self._columns: list[tuple[str, str, str]] | None = None
        self._names: list[str] | None = None
        self.in_memory = False
        self.snapshot: Snapshot
        self._load()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    def refresh(self) -> None:
        """Take a new snapshot (to see saves made since) and rebuild the views."""
        self._load()

    def _load(self) -> None:
        """Snapshot and views; again when a compaction removes a file while the views are built
        (building them reads the files' schemas)."""
        for attempt in range(_RETRIES):
            self.snapshot = take_snapshot(self.root)
            try:
                self._install()
                return
            except duckdb.Error as exc:
                if attempt == _RETRIES - 1 or not self._vanished(exc):
                    raise
                time.sleep(min(0.005 * attempt, 0.05))

    @property
    def damaged(self) -> list[layout.Damaged]:
        """Files that cannot be read, with what they hold."""
        return self.snapshot.damaged

    # ------------------------------------------------------------------ views

    def keep_in_memory(self) -> bool:
        """Copy the snapshot's rows into an in-memory table that ``experiments`` then reads, so
        later queries read no file; only when they hold at most ``IN_MEMORY_LIMIT`` values.
        Returns whether the rows are in memory. ``refresh`` reads the files again."""
        if not self.in_memory:
            rows = sum(p.info.rows for p in self.snapshot.parts)
            if rows * max(1, len(self.snapshot.columns())) > IN_MEMORY_LIMIT:
                return False
            self.execute(f"CREATE OR REPLACE TEMP TABLE {ROWS_TABLE} AS FROM experiments")
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW experiments AS FROM {ROWS_TABLE}")
            self.in_memory = True
        return True

    def _install(self) -> None:
        snap = self.snapshot
        self._columns = self._names = None
        if self.in_memory:
            self.con.execute(f"DROP TABLE IF EXISTS {ROWS_TABLE}")
            self.in_memory = False
        self.problems = [f"cannot read {d.describe()}" for d in snap.damaged]
        self.wrong_types = {}
        if snap.legacy:
            shown = ", ".join(snap.legacy[:5]) + (", ..." if len(snap.legacy) > 5 else "")
            self.problems.append(
                f"{len(snap.legacy)} file(s) in {snap.root} are in the store's previous format "
                f"and are not read ({shown}); convert them with: "
                "python tools/query_experiments.py --repair"
            )
        relation = rows_relation(snap)
        if relation is None:
            body, result_cols, meta_cols = _EMPTY_VIEW, [], []
        else:
            cols = snap.columns()
            targets = self._column_types(cols)
            select = [quote_ident(NAME_COLUMN)]
            result_cols = [c for c, kind in cols.values() if kind == "result"]
            meta_cols = [c for c, kind in cols.values() if kind == "metadata"]
            for col in [*result_cols, *meta_cols]:
                select.append(self._read_column(relation, col, targets.get(col.lower())))
            present = {k.lower() for p in snap.parts for k in p.info.types}
            for col in PROVENANCE_COLUMNS:  # absent only from hand-made files
                sql_type = SQL_TYPES[FIXED_TYPES[col]]
                q = quote_ident(col)
                select.append(q if col in present else f"CAST(NULL AS {sql_type}) AS {q}")
            body = f"SELECT {', '.join(select)} FROM {relation}"
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW experiments AS {body}")
        latest = [
            f"max_by({quote_ident(c)}, saved_at) FILTER (WHERE {quote_ident(c)} IS NOT NULL) "
            f"AS {quote_ident(c)}"
            for c in [*PROVENANCE_COLUMNS[1:], *meta_cols]
        ]
        self._install_annotations()
        self.con.execute(
            "CREATE OR REPLACE TEMP VIEW experiment_summary AS SELECT s.experiment_name, s.rows, "
            "s.first_saved_at, s.last_saved_at, coalesce(a.tags, []::VARCHAR[]) AS tags, a.note, "
            "s.* EXCLUDE (experiment_name, rows, first_saved_at, last_saved_at) FROM (SELECT "
            "experiment_name, count(*) AS rows, min(saved_at) AS first_saved_at, max(saved_at) "
            "AS last_saved_at, "
            + ", ".join(latest)
            + f" FROM experiments GROUP BY experiment_name) s LEFT JOIN {ANNOTATIONS_TABLE} a "
            "ON a.experiment_name = s.experiment_name"
        )
        kinds = [(NAME_COLUMN, "name")] + [(c, "provenance") for c in PROVENANCE_COLUMNS]
        kinds += [(c, "metadata") for c in meta_cols] + [(c, "result") for c in result_cols]
        case = " ".join(
            f"WHEN lower(column_name) = {quote_str(c.lower())} THEN {quote_str(k)}"
            for c, k in kinds
        )
        self.con.execute(
            "CREATE OR REPLACE TEMP VIEW experiment_columns AS SELECT column_name, "
            f"CASE {case} ELSE 'result' END AS kind, column_type FROM (DESCRIBE experiments)"
        )
        if self.warn:
            for problem in self.problems:
                warnings.warn(f"experiment store: {problem}", DamagedStoreWarning, stacklevel=3)

    def _install_annotations(self) -> None:
        """The tags and notes of this snapshot's time as a temporary table."""
        try:
            found = experiment_annotations(self.root)
        except ExperimentStoreError as exc:
            self.problems.append(f"cannot read the tags and notes: {exc}")
            found = {}
        self.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {ANNOTATIONS_TABLE} "
            "(experiment_name VARCHAR, tags VARCHAR[], note VARCHAR)"
        )
        if found:
            names = sorted(found)
            self.con.execute(
                f"INSERT INTO {ANNOTATIONS_TABLE} SELECT unnest(?), unnest(?), unnest(?)",
                [names, [found[n].tags for n in names], [found[n].note for n in names]],
            )

    def _column_types(self, cols: dict[str, tuple[str, str]]) -> dict[str, str]:
        """Lower-case column -> logical type in the store (the schema's, else the first file's)."""

        registered = registry(self.root).all()
        out: dict[str, str] = {}
        for key in cols:
            entry = registered.get(key)
            if entry is not None:
                out[key] = entry.logical
                continue
            for part in self.snapshot.parts:
                kind = _kind_of(part.info.types, key)
                if kind is not None:
                    out[key] = logical_of_kind(kind)
                    break
        return out

    def _read_column(self, relation: str, col: str, target: str | None) -> str:
        q = quote_ident(col)
        if target is None:
            return q
        wrong = [
            p.info
            for p in self.snapshot.parts
            if (k := _kind_of(p.info.types, col.lower())) is not None
            and logical_of_kind(k) != target
        ]
        if not wrong:
            return q
        sql_type = SQL_TYPES[target]
        if target == "text":
            exps = sorted({e for info in wrong for e in info.exps})
        else:
            rows = self.con.execute(
                f"SELECT DISTINCT {NAME_COLUMN} FROM {relation} WHERE {q} IS NOT NULL AND "
                f"TRY_CAST({q} AS {sql_type}) IS NULL ORDER BY 1"
            ).fetchall()
            exps = [r[0] for r in rows]
        if exps:
            self.wrong_types[col] = (target, exps)
            shown = ", ".join(repr(e) for e in exps[:10])
            more = f" and {len(exps) - 10} more" if len(exps) > 10 else ""
            self.problems.append(
                f"column {col!r} holds {target} values, but experiment(s) {shown}{more} stored "
                f"values of another type there; those read as NULL. Repair the store with: "
                "python tools/query_experiments.py --repair"
            )
        return f"TRY_CAST({q} AS {sql_type}) AS {q}"

    # ------------------------------------------------------------------ queries

    def execute(
        self,
        sql: str,
        params: Sequence[Any] | None = None,
        consume: Callable[[duckdb.DuckDBPyConnection], R] | None = None,
    ) -> Any:
        """Run ``sql`` and ``consume`` its result (default: a ``QueryResult``); when a file
        vanished under the query (a compaction), take a new snapshot and run it again."""
        fetch: Callable[[duckdb.DuckDBPyConnection], Any] = consume or _fetch_rows
        for attempt in range(_RETRIES):
            try:
                return fetch(self.con.execute(sql, list(params) if params else None))
            except duckdb.Error as exc:
                if attempt == _RETRIES - 1 or not self._vanished(exc):
                    raise
                time.sleep(min(0.005 * attempt, 0.05))
                warn, self.warn = self.warn, False
                try:
                    self._load()
                finally:
                    self.warn = warn
        raise AssertionError("unreachable")

    def _vanished(self, exc: BaseException) -> bool:
        return vanished(self.snapshot, exc)

    def sql(
        self, sql: str, *, timeout: float | None = None, max_rows: int | None = None
    ) -> QueryResult:
        """Run one read-only query (see ``check_readonly_sql``).

        Args:
            sql: the query.
            timeout: stop it after this many seconds.
            max_rows: fetch at most ``max_rows + 1`` rows (the one more tells that there are
                more); the rest of the answer is never computed in full.

        Raises:
            ReadOnlyViolation: the statement could write or change something.
            QueryError: DuckDB refused the query; the message lists tables and columns.
            QueryTimeoutError: the query ran past ``timeout``.
        """
        if max_rows is None:
            return self._readonly(sql, _fetch_rows, timeout)
        limit = max_rows + 1
        return self._readonly(
            sql,
            lambda cur: QueryResult([d[0] for d in cur.description or ()], cur.fetchmany(limit)),
            timeout,
        )

    def sql_df(self, sql: str, *, timeout: float | None = None) -> pd.DataFrame:
        """``sql`` as a pandas DataFrame."""
        return self._readonly(sql, lambda cur: cur.df(), timeout)

    def _readonly(
        self,
        sql: str,
        consume: Callable[[duckdb.DuckDBPyConnection], R],
        timeout: float | None = None,
    ) -> R:
        check_readonly_sql(self.con, sql)
        try:
            return run_stoppable(self.con, lambda: self.execute(sql, None, consume), timeout)
        except QueryTimeoutError:
            raise
        except duckdb.Error as exc:
            raise QueryError(query_error_message(self.con, exc)) from exc

    def interrupt(self) -> None:
        """Stop the query running on this store's connection (from any thread)."""
        self.con.interrupt()

    def columns(self) -> list[tuple[str, str, str]]:
        """``(name, kind, type)`` of every column of ``experiments``."""
        if self._columns is None:
            rows = self.execute("SELECT column_name, kind, column_type FROM experiment_columns")
            self._columns = [(r[0], r[1], r[2]) for r in rows.rows]
        return self._columns

    def experiment_names(self) -> list[str]:
        """Names of the experiments with visible rows, sorted."""
        if self._names is None:
            sql = "SELECT DISTINCT experiment_name FROM experiments ORDER BY 1"
            self._names = [r[0] for r in self.execute(sql).rows]
        return list(self._names)

    def metric_columns(self) -> list[str]:
        """Numeric result columns, in column order."""
        return [n for n, kind, t in self.columns() if kind == "result" and is_numeric(t)]


def vanished(snap: Snapshot, exc: BaseException) -> bool:
    """Whether a DuckDB error came from a store file that a compaction deleted meanwhile (then
    a new snapshot has its rows elsewhere)."""
    message = str(exc)
    paths = [
        m for m in re.findall(r"""[^"'\s]+\.parquet""", message) if m.startswith(str(snap.root))
    ]
    if paths:
        return any(not os.path.exists(p) for p in paths)
    return any(not os.path.exists(p.info.path) for p in snap.parts)


def on_fresh_snapshot(root: Path, fn: Callable[[Snapshot], R]) -> R:
    """``fn(take_snapshot(root))``, again on a new snapshot when a file it read vanished."""
    for attempt in range(_RETRIES):
        snap = take_snapshot(root)
        try:
            return fn(snap)
        except duckdb.Error as exc:
            if attempt == _RETRIES - 1 or not vanished(snap, exc):
                raise
            time.sleep(min(0.005 * attempt, 0.05))
    raise AssertionError("unreachable")


def _kind_of(types: dict[str, str], key: str) -> str | None:
    for name, kind in types.items():
        if name.lower() == key:
            return kind
    return None


def _fetch_rows(cur: duckdb.DuckDBPyConnection) -> QueryResult:
    return QueryResult([d[0] for d in cur.description or ()], cur.fetchall())


# --------------------------------------------------------------------------------------------
# module-level entry points


def connect(
    storage_dir: str | os.PathLike[str] | None = None, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the store's views (a snapshot: reconnect to see
    later saves). Damaged files are left out with a ``DamagedStoreWarning`` naming them.

    Raises:
        StoreNotFoundError: the folder does not exist or cannot be read.
    """
    return Store(storage_dir, read_only=read_only).con
