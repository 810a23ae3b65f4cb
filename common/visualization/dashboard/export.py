"""A self-contained HTML report of the dashboard: the page with its script, style, plotly.js and
data inlined, so it opens from ``file://`` with no network and no server.

The report holds the runs table of the chosen experiments (sorted and filtered in the page) and
the curves of up to ``MAX_CURVE_RUNS`` of them; the SQL box shows the query the report was
restricted with, if any.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.utils.atomic import atomic_write_text
from common.visualization.dashboard.queries import (
    MAX_CURVE_RUNS,
    NAME,
    Dashboard,
    DashboardError,
)
from common.visualization.dashboard.run_page import run_page
from common.visualization.dashboard.server import static_text


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: the file, its size, the experiments in its table and in its
    curves."""

    path: Path
    bytes: int
    experiments: int
    curves: int


def _script(text: str) -> str:
    # "</" would end the inline <script> element early; "<\/" means the same in JavaScript.
    return text.replace("</", "<\\/")


_JSON_IN_SCRIPT = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def json_in_script(value: Any) -> str:
    """``value`` as JSON that can sit inside an HTML <script> element whatever its strings hold
    (no ``<``, ``>``, ``&`` or line separators: the HTML parser sees no tag or comment)."""
    text = json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_JSON_IN_SCRIPT)


def export_report(
    path: str | os.PathLike[str],
    storage_dir: str | os.PathLike[str] | None = None,
    *,
    sql: str | None = None,
    best: str | None = None,
    top: int = 5,
    mode: str | None = None,
    split: str | None = None,
) -> ExportSummary:
    """Write the report to ``path``: every experiment, or those a query names.

    Args:
        path: the HTML file to write.
        storage_dir: the store folder (default: the assets' store).
        sql: a read-only query; the experiments in its ``experiment_name`` column are exported
            and its answer is shown in the report's SQL tab.
        best: a metric: export the ``top`` best experiments by it (like ``--best``).
        top: with ``best``.
        mode: with ``best``: ``"min"`` or ``"max"`` (default from the metric's name).
        split: the split the table's best/last values (and ``best``) use.

    Raises:
        DashboardError: nothing to export, a query without ``experiment_name``, bad SQL.
        StoreNotFoundError: no store there.
        OSError: the file cannot be written.
    """
    from common.experiments import ExperimentStoreError, best_experiments

    data = Dashboard(storage_dir)
    try:
        meta = data.meta()
        sql_answer = None
        if sql is not None:
            sql_answer = data.sql(sql)
            if NAME not in sql_answer["columns"]:
                raise DashboardError(
                    f"--sql must return an {NAME} column naming the experiments to export; "
                    f"it returned: {', '.join(sql_answer['columns']) or '(no columns)'}"
                )
            index = sql_answer["columns"].index(NAME)
            names: list[str] | None = list(
                dict.fromkeys(str(r[index]) for r in sql_answer["rows"] if r[index] is not None)
            )
        elif best is not None:
            try:
                ranked = best_experiments(best, top, mode, split=split, store=data.store)
            except (ExperimentStoreError, ValueError) as exc:
                raise DashboardError(str(exc)) from None
            names = [row[ranked.columns.index(NAME)] for row in ranked.rows]
        else:
            names = None
        if names is not None and not names:
            raise DashboardError("the query selected no experiments: nothing to export")
        if names is None and not meta["experiments"]:
            raise DashboardError(f"the store {data.root} holds no experiments: nothing to export")
        table = data.all_runs(split, names)
        rows = table["rows"]
        if names is not None:  # in the order of the query or ranking
            order = {n: i for i, n in enumerate(names)}
            rows.sort(key=lambda r: order[r[0]])
        curve_names = [r[0] for r in rows[:MAX_CURVE_RUNS]]
        curves = data.curves(curve_names)
        runs = {name: run_page(data, name) for name in curve_names}
        bundle: dict[str, Any] = {
            "meta": {**meta, "experiments": len(rows)},
            "table": table,
            "curves": curves,
            "runs": runs,
            "sql": {"query": sql, **sql_answer} if sql_answer is not None else None,
            "restriction": (
                f"--sql {sql}"
                if sql is not None
                else f"--best {best} --top {top}" if best else None
            ),
        }
    finally:
        data.close()
    html = static_text("index.html")
    head = (
        f"<style>\n{static_text('app.css')}\n</style>\n"
        f"<script>{_script(static_text('plotly.min.js'))}</script>"
    )
    tail = (
        f"<script>window.DASHBOARD_STATIC = {json_in_script(bundle)};</script>\n"
        f"<script>{_script(static_text('app.js'))}</script>"
    )
    html = html.replace("<!--HEAD-->", head).replace("<!--SCRIPTS-->", tail)
    out = Path(path)
    atomic_write_text(out, html)
    return ExportSummary(out, out.stat().st_size, len(rows), len(curve_names))
