"""Curves: every stored row of some experiments, for the columns a plot draws.

The plots (``common.visualization.plots``), the dashboard and the CLI's ``--plot`` all read the
rows they draw through ``curve_rows``.
"""

from __future__ import annotations

from collections.abc import Sequence

from common.experiments.errors import UnknownMetricError
from common.experiments.read import QueryResult, Store
from common.experiments.reports import check_experiments
from common.experiments.splits import split_column
from common.experiments.sql import quote_ident, quote_str


def curve_rows(
    store: Store, names: Sequence[str], columns: Sequence[str], *, x: str | None = None
) -> QueryResult:
    """The rows of the named experiments as ``experiment_name, split, <columns...>`` (columns
    as spelled by the caller, matched case-insensitively; ``split`` is NULL without a split
    column), ordered by experiment, split, then ``x`` (one of ``columns``) or save time.

    Raises:
        UnknownExperimentError: a name is not in the store (close names suggested).
        UnknownMetricError: a column is not in the store.
        ValueError: no names.
    """
    wanted = check_experiments(store, names)
    by_lower = {n.lower(): n for n, _, _ in store.columns()}
    stored = []
    for col in columns:
        if col.lower() not in by_lower:
            known = ", ".join(store.metric_columns()) or "(none)"
            raise UnknownMetricError(f"unknown metric {col!r}; metrics in the store: {known}")
        stored.append(quote_ident(by_lower[col.lower()]))
    split = split_column(store)
    split_sql = "NULL" if split is None else quote_ident(split)
    by_x = [stored[list(columns).index(x)]] if x is not None else []
    order = ["experiment_name", "split_ NULLS FIRST", *by_x, "saved_at"]
    result = store.execute(
        f"SELECT experiment_name, {split_sql} AS split_"
        + "".join(f", {c}" for c in stored)
        + " FROM experiments WHERE experiment_name IN ("
        + ", ".join(quote_str(n) for n in wanted)
        + f") ORDER BY {', '.join(order)}"
    )
    return QueryResult(["experiment_name", "split", *columns], result.rows)
