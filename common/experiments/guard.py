"""The read-only SQL guard and stoppable queries: what a query typed by a user may be, the one
message a refused query gives, and how a running query is stopped (a time limit, Ctrl-C)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import duckdb

from common.experiments.errors import QueryError, QueryTimeoutError, ReadOnlyViolation
from common.experiments.sql import quote_str

R = TypeVar("R")
ROWS_TABLE = "_rx_rows"
"""The in-memory copy of a snapshot's rows (``Store.keep_in_memory``); not listed to users."""
ANNOTATIONS_TABLE = "_rx_annotations"
"""The snapshot's tags and notes (``Store``'s ``experiment_summary`` joins it); not listed."""


_ALLOWED_STATEMENTS = {"SELECT"}


def check_readonly_sql(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """Refuse anything but one read-only query; return it.

    Allowed: one SELECT-type statement (``SELECT``, ``WITH``, ``FROM ...``, ``VALUES``,
    ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``). Everything else is refused, among it ``COPY``,
    ``ATTACH``, ``INSTALL``/``LOAD``, ``SET``, ``PRAGMA``, ``CREATE``, ``INSERT``/``UPDATE``/
    ``DELETE`` and ``EXPLAIN``.

    Raises:
        ReadOnlyViolation: a refused statement, or several statements.
        QueryError: the SQL does not parse, or is empty.
    """
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(query_error_message(con, exc)) from exc
    if not statements:
        raise QueryError("no SQL statement given")
    if len(statements) > 1:
        raise ReadOnlyViolation(
            f"one statement at a time, please (got {len(statements)}); queries are read-only"
        )
    kind = statements[0].type.name
    if kind not in _ALLOWED_STATEMENTS:
        raise ReadOnlyViolation(
            f"{kind} statements are not allowed: the experiment store is queried read-only "
            "(SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE); nothing can be written, "
            "copied or deleted through SQL"
        )
    return sql


def query_error_message(con: duckdb.DuckDBPyConnection, exc: BaseException) -> str:
    lines = [str(exc).strip()]
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal "
                "UNION ALL SELECT table_name FROM duckdb_tables() WHERE table_name NOT IN "
                f"({quote_str(ROWS_TABLE)}, {quote_str(ANNOTATIONS_TABLE)}) ORDER BY 1"
            ).fetchall()
        ]
        lines.append("Available tables: " + ", ".join(names))
        cols = con.execute("SELECT column_name, column_type FROM (DESCRIBE experiments)")
        lines.append(
            "Columns of experiments: " + ", ".join(f"{n} ({t})" for n, t in cols.fetchall())
        )
    except duckdb.Error:
        pass
    return "\n".join(lines)


def run_stoppable(con: duckdb.DuckDBPyConnection, run: Callable[[], R], timeout: float | None) -> R:
    """``run()`` (queries on ``con``) on a worker thread, so that it can be stopped: after
    ``timeout`` seconds (None: never) by interrupting ``con``, and by Ctrl-C (DuckDB itself does
    not notice signals while it computes). In the main thread Ctrl-C interrupts the query and
    raises ``KeyboardInterrupt`` within a second.

    Raises:
        QueryTimeoutError: the time limit stopped it.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["value"] = run()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="store-query", daemon=True).start()
    try:
        stopped = not done.wait(timeout)
        if stopped:
            con.interrupt()
            done.wait()
    except KeyboardInterrupt:
        con.interrupt()
        done.wait(1.0)
        raise
    if "error" in box:
        if stopped and isinstance(box["error"], duckdb.Error):
            raise QueryTimeoutError(
                f"the query was stopped after {timeout:g} s, its time limit"
            ) from None
        raise box["error"]
    return box["value"]
