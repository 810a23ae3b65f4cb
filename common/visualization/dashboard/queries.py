"""The dashboard's answers: the runs table, curves, comparisons, run pages and SQL, as JSON-ready
dicts, all read through the experiment store's read API (``Store``) and never written.

The runs table (one row per experiment: provenance, latest metadata, tags and note, best and last
value of each metric on the chosen split) is built once per store snapshot and split as a DuckDB
temporary table on the store's read-only connection; sorting, filtering and paging then query
that table. The views over many runs (parallel coordinates, scatter, importance) are in
``views``.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from common.experiments import (
    ExperimentStoreError,
    QueryResult,
    QueryTimeoutError,
    Store,
    check_readonly_sql,
    compare_experiments,
    curve_rows,
    default_split,
    metric_direction,
    non_finite_notes,
    split_filter,
    split_values,
)
from common.experiments.annotations import ANNOTATIONS, experiment_annotations
from common.experiments.guard import run_stoppable
from common.experiments.sql import is_finite_sql, is_numeric, json_value, quote_ident, quote_str

NAME = "experiment_name"
X_COLUMNS = ("step", "tokens_seen", "elapsed_s", "epoch")
"""Columns a curve can be drawn against, in order of preference."""
# Bookkeeping metrics: a "best" of these means nothing, only their last value is shown.
NO_BEST = {"step", "epoch", "lr", "tokens_seen", "elapsed_s", "grad_norm", "seconds", "time"}
SYSTEM_PREFIX = "sys__"
"""System metrics (memory, CPU, GPU) stored in evaluation rows: drawn on the run page."""
ANNOTATION_COLUMNS = ("tags", "note")
PROVENANCE = ("git_commit", "git_dirty", "host")
ENVIRONMENT_KEYS = (
    "torch_version",
    "python_version",
    "device",
    "device_name",
    "world_size",
    "num_parameters",
    "model_class",
    "project",
    "config_file",
    "data_description",
)
MAX_PAGE = 500
MAX_CURVE_RUNS = 200
MAX_SQL_ROWS = 10_000
QUERY_TIMEOUT_S = 10.0
"""How long a query typed by the user (SQL box, runs filter) may run before it is stopped."""
MEMORY_LIMIT = "2GB"
"""DuckDB's memory limit for the dashboard's queries."""
ALL_SPLITS = "all"


NON_FINITE = ("nan", "inf", "-inf")


def cell(value: Any) -> Any:
    """A value as the page shows it: JSON, times with a space, NaN and infinities as text."""
    return json_value(value, time_sep=" ", non_finite_text=True)


class DashboardError(Exception):
    """A request the dashboard cannot answer (bad SQL, unknown run or column): one message."""


def best_direction(metric: str) -> str | None:
    """``"min"``/``"max"`` when a best value of ``metric`` means something, else None."""
    if metric.lower() in NO_BEST or metric.lower().startswith(SYSTEM_PREFIX):
        return None
    try:
        return metric_direction(metric)
    except Exception:  # MetricDirectionError: direction unknown from the name
        return None


class Dashboard:
    """The dashboard's view of one store folder; thread-safe; ``poll`` follows new saves.

    The runs table, curves, compare and run pages share one connection (``store``, under a
    lock); each SQL-box query gets a connection of its own, so a slow one delays nothing else.
    A query typed by the user (SQL box, runs filter) is stopped after ``query_timeout`` seconds;
    every query's memory is bounded by ``memory_limit``.

    Args:
        storage_dir: the store folder (default: the assets' experiment store).
        query_timeout: seconds a user's query may run (default ``QUERY_TIMEOUT_S``).
        memory_limit: DuckDB's memory limit for the dashboard's queries.

    Raises:
        StoreNotFoundError: no store there.
    """

    def __init__(
        self,
        storage_dir: str | os.PathLike[str] | None = None,
        *,
        query_timeout: float = QUERY_TIMEOUT_S,
        memory_limit: str = MEMORY_LIMIT,
    ) -> None:
        self._lock = threading.RLock()
        self.query_timeout = query_timeout
        self.memory_limit = memory_limit
        self.store = Store(storage_dir, warn=False, memory_limit=memory_limit)
        self.root: Path = self.store.root
        self.version = 1
        self._signature = self._snapshot_signature(self.store, self.root)
        self._tables: dict[str, tuple[str, list[str], tuple[str, ...]]] = {}
        self.profiles: dict[str, Any] = {}  # views.py's column profiles, per runs table
        self._meta: dict[str, Any] | None = None
        self._running: set[Store] = set()  # the SQL box's connections, to stop on close
        self._running_lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        """Stop every running query, wait (a second at most) until they have let go of their
        connections, and close the store's."""
        self._closed = True
        self.interrupt()
        deadline = time.monotonic() + 1.0
        while self._running and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            try:
                self.store.close()
            finally:
                self._lock.release()

    def interrupt(self) -> None:
        """Stop every query running now (from any thread)."""
        self.store.interrupt()
        with self._running_lock:
            for store in self._running:
                store.interrupt()

    # ------------------------------------------------------------------ live updates

    @staticmethod
    def _snapshot_signature(store: Store, root: Path) -> tuple[Any, ...]:
        parts = tuple(sorted((p.info.path, tuple(sorted(p.exclude))) for p in store.snapshot.parts))
        return parts, tuple(store.problems), annotations_signature(root)

    def poll(self, *, force: bool = False) -> bool:
        """Take a new snapshot of the store; True (and a new ``version``) when it changed
        (always with ``force``: after the dashboard wrote a tag or note)."""
        with self._lock:
            self.store.refresh()
            signature = self._snapshot_signature(self.store, self.root)
            if signature == self._signature and not force:
                return False
            self._signature = signature
            self.version += 1
            for table, _, _ in self._tables.values():
                self.store.execute(f"DROP TABLE IF EXISTS {quote_ident(table)}")
            self._tables.clear()
            self.profiles.clear()
            self._meta = None
            return True

    def state(self) -> dict[str, Any]:
        """The store's version (changes with every new snapshot) and its damage warnings."""
        with self._lock:
            return {"version": self.version, "problems": list(self.store.problems)}

    # ------------------------------------------------------------------ columns

    def meta(self) -> dict[str, Any]:
        """Store path, splits (default first), metrics, x columns and metadata keys."""
        with self._lock:
            if self._meta is None:
                self._meta = self._build_meta()
            return {**self._meta, "version": self.version, "problems": list(self.store.problems)}

    def _build_meta(self) -> dict[str, Any]:
        columns = self.store.columns()
        names = {n.lower(): n for n, _, _ in columns}
        splits = [str(s) for s in split_values(self.store)]
        default = default_split(splits) or ALL_SPLITS
        numeric_results = [n for n, kind, t in columns if kind == "result" and is_numeric(t)]
        x_columns = [names[x] for x in X_COLUMNS if x in names and names[x] in numeric_results]
        metrics = [m for m in numeric_results if m not in x_columns]
        metadata = [n for n, kind, _ in columns if kind == "metadata"]
        text_results = [
            n for n, kind, t in columns if kind == "result" and not is_numeric(t) and n != "split"
        ]
        return {
            "store": str(self.root),
            "split_column": names.get("split"),
            "splits": splits,
            "default_split": default,
            "metrics": metrics,
            "x_columns": x_columns,
            "text_columns": text_results,
            "metadata": metadata,
            "annotation_columns": annotation_columns(metadata),
            "experiments": len(self.store.experiment_names()),
        }

    def _split_condition(self, split: str | None) -> str:
        """The store's split rule (``split_filter``): the default split takes rows without a
        split too."""
        meta = self.meta()
        split = split or meta["default_split"]
        try:
            where, _ = split_filter(self.store, None if split == meta["default_split"] else split)
        except ExperimentStoreError as exc:
            raise DashboardError(str(exc)) from None
        return where

    # ------------------------------------------------------------------ runs table

    def runs_table(self, split: str | None = None) -> tuple[str, list[str], tuple[str, ...]]:
        """The temporary table holding the runs table for ``split``, its columns, and notes
        naming the runs whose metrics hold NaN or infinities (best values leave those out)."""
        with self._lock:
            meta = self.meta()
            split = split or meta["default_split"]
            cached = self._tables.get(split)
            if cached is not None:
                return cached
            where = self._split_condition(split)
            names = {n.lower(): n for n, _, _ in self.store.columns()}
            order = quote_ident(names["step"]) if "step" in names else "saved_at"
            select = [
                f"{quote_ident(NAME)}",
                "count(*) AS rows",
                f"max({order}) AS last_step" if "step" in names else None,
            ]
            ranked: list[str] = []
            for metric in meta["metrics"] + meta["x_columns"]:
                if metric.lower() == "step":
                    continue
                m = quote_ident(metric)
                direction = best_direction(metric)
                if direction is not None:
                    best = quote_ident("best_" + metric)
                    finite = f"{where} AND {is_finite_sql(m)}"
                    select.append(f"{direction}({m}) FILTER (WHERE {finite}) AS {best}")
                    ranked.append(metric)
                select.append(
                    f"arg_max({m}, {order}) FILTER (WHERE {m} IS NOT NULL AND {where}) "
                    f"AS {quote_ident('last_' + metric)}"
                )
            select.append("min(saved_at) AS first_saved_at")
            select.append("max(saved_at) AS last_saved_at")
            latest = [
                f"max_by({c}, saved_at) FILTER (WHERE {c} IS NOT NULL) AS {c}"
                for c in map(quote_ident, [*PROVENANCE, *meta["metadata"]])
            ]
            digest = hashlib.sha1(f"{split}/{self.version}".encode()).hexdigest()[:12]
            table = f"dashboard_runs_{digest}"
            notes_table = self._annotations_table()
            tags_col, note_col = map(quote_ident, meta["annotation_columns"])
            self.store.execute(
                f"CREATE OR REPLACE TEMP TABLE {quote_ident(table)} AS SELECT r.*, "
                f"coalesce(a.tags, []::VARCHAR[]) AS {tags_col}, a.note AS {note_col} FROM (SELECT "
                + ", ".join(s for s in [*select, *latest] if s)
                + f" FROM experiments GROUP BY {quote_ident(NAME)}) r "
                f"LEFT JOIN {notes_table} a USING ({quote_ident(NAME)})"
            )
            columns = [r[0] for r in self.store.execute(f"DESCRIBE {quote_ident(table)}").rows]
            notes = non_finite_notes(self.store, ranked, where)
            self._tables[split] = (table, columns, notes)
            return self._tables[split]

    def _annotations_table(self) -> str:
        """A temporary table of every experiment's tags and note, read from the store's
        annotations (``experiment_annotations``) for this snapshot."""
        notes = experiment_annotations(self.root)
        names = sorted(notes)
        self.store.execute(
            "CREATE OR REPLACE TEMP TABLE dashboard_annotations AS SELECT "
            f"unnest(?::VARCHAR[]) AS {quote_ident(NAME)}, unnest(?::VARCHAR[][]) AS tags, "
            "unnest(?::VARCHAR[]) AS note",
            [names, [notes[n].tags for n in names], [notes[n].note for n in names]],
        )
        return "dashboard_annotations"

    def runs(
        self,
        *,
        split: str | None = None,
        where: str | None = None,
        sort: str | None = None,
        descending: bool = False,
        columns: Sequence[str] | None = None,
        offset: int = 0,
        limit: int = 50,
        names: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """One page of the runs table, sorted and filtered in DuckDB.

        Args:
            split: the split the best/last values are taken on (default: validation; "all").
            where: a SQL condition on the table's columns (read-only, checked like ``--sql``).
            sort: the column to sort by (default: the experiment name).
            descending: sort order.
            columns: the columns to return (the name always comes first); default all.
            offset, limit: the page (``limit`` at most ``MAX_PAGE``).
            names: only these experiments.

        Raises:
            DashboardError: unknown column, bad or writing SQL, bad page.
        """
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise DashboardError(f"a page has 1 to {MAX_PAGE} rows from offset >= 0")
        with self._lock:
            table, available, notes = self.runs_table(split)
            shown = self._pick_columns(available, columns)
            sort_col = self._pick_columns(available, [sort])[-1] if sort else NAME
            conditions = []
            if where and where.strip():
                conditions.append(f"(\n{where}\n)")
            if names is not None:
                conditions.append(
                    f"{quote_ident(NAME)} IN ({', '.join(quote_str(n) for n in names)})"
                    if names
                    else "false"
                )
            condition = " AND ".join(conditions) or "true"
            body = f"FROM {quote_ident(table)} WHERE {condition}"
            direction = "DESC" if descending else "ASC"
            order = f"{quote_ident(sort_col)} {direction} NULLS LAST, {quote_ident(NAME)}"
            page_sql = (
                f"SELECT {', '.join(quote_ident(c) for c in shown)} {body} ORDER BY {order} "
                f"LIMIT {int(limit)} OFFSET {int(offset)}"
            )
            count_sql = f"SELECT count(*) {body}"
            page = self._filter_query(page_sql, available)
            total = self._filter_query(count_sql, available).rows[0][0]
            return {
                "columns": page.columns,
                "rows": [[cell(v) for v in row] for row in page.rows],
                "total": int(total),
                "offset": offset,
                "limit": limit,
                "all_columns": available,
                "split": split or self.meta()["default_split"],
                "sort": sort_col,
                "descending": descending,
                "notes": list(notes),
            }

    def all_runs(
        self, split: str | None = None, names: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Every row of the runs table (or the named runs'), by name: the export's table."""
        with self._lock:
            table, columns, notes = self.runs_table(split)
            condition = "true" if names is None else f"{quote_ident(NAME)} IN (SELECT unnest(?))"
            result = self.store.execute(
                f"SELECT * FROM {quote_ident(table)} WHERE {condition} ORDER BY 1",
                None if names is None else [list(names)],
            )
            return {
                "columns": columns,
                "rows": [[cell(v) for v in row] for row in result.rows],
                "split": split or self.meta()["default_split"],
                "notes": list(notes),
            }

    @staticmethod
    def _pick_columns(available: list[str], wanted: Sequence[str] | None) -> list[str]:
        if not wanted:
            return list(available)
        by_lower = {c.lower(): c for c in available}
        out = [NAME]
        for col in wanted:
            hit = by_lower.get(col.lower())
            if hit is None:
                raise DashboardError(
                    f"no column {col!r} in the runs table; columns: {', '.join(available)}"
                )
            if hit not in out:
                out.append(hit)
        return out

    def _filter_query(self, sql: str, columns: Sequence[str]) -> QueryResult:
        """Run a runs-table query holding the user's filter, after the store's read-only
        check; a refusal is one message listing the columns a filter can use."""
        hint = "\nColumns of the runs table: " + ", ".join(columns)
        try:
            check_readonly_sql(self.store.con, sql)
            return run_stoppable(
                self.store.con, lambda: self.store.execute(sql), self.query_timeout
            )
        except QueryTimeoutError:
            raise DashboardError(
                f"the filter was stopped after {self.query_timeout:g} s, the dashboard's time "
                "limit for a query (--query-timeout SECONDS when starting it)"
            ) from None
        except ExperimentStoreError as exc:
            first = str(exc).split("\nAvailable tables:")[0]
            raise DashboardError(f"the filter was refused: {first}{hint}") from None
        except duckdb.Error as exc:
            raise DashboardError(f"the filter failed: {str(exc).strip()}{hint}") from None

    # ------------------------------------------------------------------ curves

    def curves(self, names: Sequence[str]) -> dict[str, Any]:
        """Every row of the named runs, as columns per run and split: the x columns and metrics.

        Raises:
            DashboardError: no names, too many, or an unknown one.
        """
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {"runs": [], "x_columns": [], "metrics": []}
        if len(wanted) > MAX_CURVE_RUNS:
            raise DashboardError(f"curves of at most {MAX_CURVE_RUNS} runs at once")
        with self._lock:
            meta = self.meta()
            self._check_names(wanted)
            cols = [*meta["x_columns"], *meta["metrics"]]
            x = meta["x_columns"][0] if meta["x_columns"] else None
            result = curve_rows(self.store, wanted, cols, x=x)
        runs: dict[str, dict[str, dict[str, list[Any]]]] = {n: {} for n in wanted}
        for row in result.rows:
            split = "" if row[1] is None else str(row[1])
            series = runs[row[0]].setdefault(split, {c: [] for c in cols})
            for c, v in zip(cols, row[2:]):
                series[c].append(json_value(v, time_sep=" "))
        return {
            "runs": [{"name": n, "splits": runs[n]} for n in wanted],
            "x_columns": meta["x_columns"],
            "metrics": meta["metrics"],
        }

    def _check_names(self, names: Sequence[str]) -> None:
        known = set(self.store.experiment_names())
        missing = [n for n in names if n not in known]
        if missing:
            raise DashboardError(f"unknown experiment(s): {', '.join(repr(n) for n in missing)}")

    # ------------------------------------------------------------------ compare

    def compare(self, names: Sequence[str], split: str | None = None) -> dict[str, Any]:
        """The runs side by side: the metadata keys whose values differ, then best and last
        metrics (``compare_experiments``).

        Raises:
            DashboardError: unknown run or split.
        """
        wanted = list(dict.fromkeys(names))
        if len(wanted) < 2:
            raise DashboardError("pick at least two runs to compare")
        with self._lock:
            meta = self.meta()
            choice = split or meta["default_split"]
            try:
                result = compare_experiments(wanted, split=choice, store=self.store)
            except (ExperimentStoreError, ValueError) as exc:
                raise DashboardError(str(exc)) from None
        metadata = set(meta["metadata"])
        differing = [c for c in result.columns if c in metadata]
        return {
            "columns": result.columns,
            "rows": [[cell(v) for v in row] for row in result.rows],
            "differing": differing,
            "notes": list(result.notes),
        }

    # ------------------------------------------------------------------ run page

    # ------------------------------------------------------------------ SQL box

    def sql(self, sql: str) -> dict[str, Any]:
        """A read-only query's answer (at most ``MAX_SQL_ROWS`` rows) and a chart hint: the
        step-like x column and the numeric columns to draw against it, when there are both.

        Raises:
            DashboardError: the query writes, does not parse or fails.
        """
        started = time.perf_counter()
        if self._closed:
            raise DashboardError("the dashboard is shutting down")
        store = Store(self.root, warn=False, memory_limit=self.memory_limit)
        with self._running_lock:
            self._running.add(store)
        try:
            if self._closed:  # closed while the connection was being made
                raise DashboardError("the dashboard is shutting down")
            result = store.sql(sql, timeout=self.query_timeout, max_rows=MAX_SQL_ROWS)
        except QueryTimeoutError:
            raise DashboardError(
                f"the query was stopped after {self.query_timeout:g} s, the dashboard's time "
                "limit for a query (--query-timeout SECONDS when starting it)"
            ) from None
        except ExperimentStoreError as exc:
            raise DashboardError(str(exc)) from None
        finally:
            with self._running_lock:
                self._running.discard(store)
            store.close()
        rows = [[cell(v) for v in row] for row in result.rows[:MAX_SQL_ROWS]]
        return {
            "columns": result.columns,
            "rows": rows,
            "total": len(rows),
            "more": len(result.rows) > MAX_SQL_ROWS,
            "chart": chart_hint(result.columns, rows),
            "seconds": round(time.perf_counter() - started, 4),
        }


def chart_hint(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any] | None:
    """``{"x", "y", "group"}`` when a result has a step-like column and numeric columns."""
    lower = [c.lower() for c in columns]
    x_index = next((lower.index(x) for x in X_COLUMNS if x in lower), None)
    if x_index is None:
        x_index = next((i for i, c in enumerate(lower) if "step" in c), None)
    if x_index is None or not rows:
        return None

    def numeric(i: int) -> bool:
        values = [r[i] for r in rows if r[i] is not None and r[i] not in NON_FINITE]
        return bool(values) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        )

    if not numeric(x_index):
        return None
    ys = [c for i, c in enumerate(columns) if i != x_index and numeric(i)]
    if not ys:
        return None
    group = columns[lower.index(NAME)] if NAME in lower else None
    return {"x": columns[x_index], "y": ys, "group": group}


def annotation_columns(metadata: Sequence[str]) -> tuple[str, str]:
    """The runs table's names for a run's tags and note: ``tags`` and ``note``, or
    ``run_tags``/``run_note`` where a config key already holds the plain name."""
    taken = {m.lower() for m in metadata}
    return tuple(c if c not in taken else f"run_{c}" for c in ANNOTATION_COLUMNS)  # type: ignore[return-value]


def annotations_signature(root: Path) -> tuple[tuple[str, int], ...]:
    """What changes when a tag or note is written: each annotated experiment's folder and its
    modification time (a new change file updates it)."""
    try:
        with os.scandir(root / ANNOTATIONS) as entries:
            return tuple(sorted((e.name, e.stat().st_mtime_ns) for e in entries if e.is_dir()))
    except OSError:
        return ()
