"""Reports: list, summary, best, group and compare, one function each, each a ``QueryResult``
(``.columns``, ``.rows``, ``.notes``, ``.df()``).

Rankings are split-aware (``splits``): when the store has a ``split`` column, ``best``,
``summary``, ``group`` and ``compare``'s best values use the validation rows by default,
``split="all"`` every row, ``split=NAME`` that split. The result's notes say which split was
used. A store opened here (no ``store=`` given) is this thread's shared one (``shared``).

NaN and infinite values never rank: best values, groups and summaries use the finite values, and
the notes name the runs with non-finite values, apart: those with no finite value (left out) and
those that diverged after finite values.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from typing import Any

from common.experiments.errors import (
    MetricDirectionError,
    UnknownExperimentError,
    UnknownMetricError,
)
from common.experiments.read import QueryResult, Store
from common.experiments.shared import shared_store
from common.experiments.splits import split_filter, sweep_filter
from common.experiments.sql import is_finite_sql, is_numeric, quote_ident, quote_str

INDEX_COLUMNS = ("step", "epoch")

# Metric direction by name: whole names and name tokens (split on anything not a letter or digit).
_LOWER_IS_BETTER = {
    "loss", "nll", "perplexity", "ppl", "bpb", "bpc", "bits_per_byte", "bits_per_char", "error",
    "err", "grad_norm", "gradnorm", "mse", "mae", "rmse", "wer", "cer", "ter", "latency",
    "elapsed", "elapsed_s", "time", "seconds", "regret", "kl", "divergence", "ece",
}  # fmt: skip
_HIGHER_IS_BETTER = {
    "acc", "accuracy", "f1", "bleu", "rouge", "rouge1", "rouge2", "rougel", "score", "precision",
    "recall", "auc", "auroc", "auprc", "map", "mrr", "ndcg", "reward", "return", "exact_match",
    "em", "r2", "throughput", "tokens_per_s", "tokens_per_sec", "samples_per_s", "win_rate",
    "pass", "top1", "top5", "iou", "dice", "psnr", "ssim",
}  # fmt: skip
# Bookkeeping, not quality: no "best" of these in a summary.
_NOT_QUALITY = {
    "elapsed", "elapsed_s", "time", "seconds", "latency", "throughput", "tokens_per_s",
    "tokens_per_sec", "samples_per_s", "grad_norm", "gradnorm", "lr", "tokens", "seen",
}  # fmt: skip


def metric_direction(metric: str) -> str:
    """``"min"`` when lower is better for a metric (by its name), ``"max"`` when higher is.

    Raises:
        MetricDirectionError: the name matches neither kind, or both.
    """
    lower = metric.lower()
    tokens = [t for t in re.split(r"[^a-z0-9]+", lower) if t]
    joined = "_" + "_".join(tokens) + "_"

    def hits(words: set[str]) -> bool:
        if lower in words:
            return True
        for word in words:
            if "_" in word and f"_{word}_" in joined:
                return True
        return any(t in words or t.rstrip("0123456789") in words for t in tokens)

    low, high = hits(_LOWER_IS_BETTER), hits(_HIGHER_IS_BETTER)
    if low and not high:
        return "min"
    if high and not low:
        return "max"
    raise MetricDirectionError(
        f"cannot tell from its name whether lower or higher {metric!r} is better; pass "
        "mode='min' or mode='max' (CLI: --mode min|max)"
    )


def _is_quality(metric: str) -> bool:
    lower = metric.lower()
    tokens = set(re.split(r"[^a-z0-9]+", lower))
    return lower not in _NOT_QUALITY and not (tokens & _NOT_QUALITY)


def _open(store: Store | None, storage_dir: str | os.PathLike[str] | None) -> Store:
    return store if store is not None else shared_store(storage_dir)


def _resolve_metric(store: Store, metric: str) -> str:
    columns = store.columns()
    by_lower = {n.lower(): (n, kind, t) for n, kind, t in columns}
    metrics = [n for n, kind, t in columns if kind == "result" and is_numeric(t)]
    hit = by_lower.get(metric.lower())
    if hit is None or not is_numeric(hit[2]) or hit[1] in ("name", "provenance"):
        if hit is not None:
            why = f"column {hit[0]!r} is not a numeric metric ({hit[1]}, {hit[2]})"
        else:
            why = f"unknown metric {metric!r}"
        close = difflib.get_close_matches(metric, metrics, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(metrics) if metrics else "(none: the store is empty)"
        raise UnknownMetricError(f"{why}.{hint} Metrics in the store: {listing}")
    return hit[0]


def non_finite_notes(
    store: Store, metrics: str | Sequence[str], where: str = "true"
) -> tuple[str, ...]:
    """Notes naming, per metric, the runs whose values are NaN or infinite on some rows
    (``where``): those with no finite value at all (left out of a ranking) and those that
    diverged after finite values (ranked on their finite values). One scan for all metrics;
    empty when every value is finite."""
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        return ()
    doubles = [f"CAST({quote_ident(m)} AS DOUBLE)" for m in metrics]
    select, bad = [], []
    for q in doubles:
        kind = f"CASE WHEN isnan({q}) THEN 'nan' WHEN {q} > 0 THEN 'inf' ELSE '-inf' END"
        select.append(f"count(*) FILTER (WHERE {is_finite_sql(q)})")
        select.append(
            f"string_agg(DISTINCT {kind}, '/' ORDER BY {kind}) FILTER (WHERE NOT isfinite({q}))"
        )
        bad.append(f"NOT isfinite({q})")
    rows = store.execute(
        f"SELECT experiment_name, {', '.join(select)} FROM experiments "
        f"WHERE {where} GROUP BY 1 HAVING count(*) FILTER (WHERE {' OR '.join(bad)}) > 0 "
        "ORDER BY 1"
    ).rows
    notes = []
    for i, metric in enumerate(metrics):
        for finite, what in ((False, "left out, no finite value"), (True, "diverged")):
            runs = [
                f"{row[0]} ({row[2 + 2 * i]})"
                for row in rows
                if row[2 + 2 * i] is not None and bool(row[1 + 2 * i]) == finite
            ]
            if runs:
                shown = ", ".join(runs[:10]) + (f" and {len(runs) - 10} more" * (len(runs) > 10))
                tail = "; ranked on their finite values" if finite else ""
                notes.append(
                    f"{metric}: {len(runs)} run(s) {what} (NaN/inf values are never ranked"
                    f"{tail}): {shown}"
                )
    return tuple(notes)


def list_experiments(
    storage_dir: str | os.PathLike[str] | None = None, *, store: Store | None = None
) -> QueryResult:
    """One row per experiment: ``experiment_name, rows, first_saved_at, last_saved_at, tags,
    note`` (``tags`` a list, empty when none; ``note`` None when none)."""
    store = _open(store, storage_dir)
    return store.execute(
        "SELECT experiment_name, rows, first_saved_at, last_saved_at, tags, note "
        "FROM experiment_summary ORDER BY experiment_name"
    )


def summarize_experiments(
    storage_dir: str | os.PathLike[str] | None = None,
    *,
    split: str | None = None,
    store: Store | None = None,
) -> QueryResult:
    """One row per experiment: rows, last step, the best value of each quality metric whose
    direction is known from its name (on the chosen split), and the last save time."""
    store = _open(store, storage_dir)
    where, notes = split_filter(store, split)
    names = {n.lower() for n in store.metric_columns()}
    select = ["experiment_name", "count(*) AS rows"]
    if "step" in names:
        select.append('max("step") AS last_step')
    ranked: list[str] = []
    for metric in store.metric_columns():
        if metric.lower() in INDEX_COLUMNS or not _is_quality(metric):
            continue
        try:
            direction = metric_direction(metric)
        except MetricDirectionError:
            continue
        q = quote_ident(metric)
        best = quote_ident("best_" + metric)
        select.append(f"{direction}({q}) FILTER (WHERE {where} AND {is_finite_sql(q)}) AS {best}")
        ranked.append(metric)
    select.append("max(saved_at) AS last_saved_at")
    result = store.execute(
        f"SELECT {', '.join(select)} FROM experiments GROUP BY experiment_name "
        "ORDER BY experiment_name"
    )
    return result._replace(notes=notes + non_finite_notes(store, ranked, where))


def best_experiments(
    metric: str,
    top: int = 5,
    mode: str | None = None,
    storage_dir: str | os.PathLike[str] | None = None,
    *,
    split: str | None = None,
    sweep: str | None = None,
    store: Store | None = None,
) -> QueryResult:
    """The ``top`` experiments by the best value of ``metric`` over each one's history.

    Args:
        metric: a numeric result column (``perplexity``, ``loss``, ``accuracy``, ...).
        top: how many experiments (>= 1).
        mode: ``"min"`` or ``"max"``; default from the metric's name.
        storage_dir: the store folder; default ``get_experiments_dir()``.
        split: which rows rank (default: validation rows; ``"all"``: every row).
        sweep: only the experiments of this sweep (the ``sweep`` column).
        store: an open ``Store`` to use instead of ``storage_dir``.

    Returns:
        Columns ``rank, experiment_name, <metric>, step, epoch`` (those present), ``rows``.

    Raises:
        UnknownMetricError, MetricDirectionError, UnknownSplitError, ValueError (bad top/mode).
    """
    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    if mode is not None and mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    store = _open(store, storage_dir)
    column = _resolve_metric(store, metric)
    direction = mode or metric_direction(column)
    where, notes = split_filter(store, split)
    in_sweep, sweep_notes = sweep_filter(store, sweep)
    where, notes = f"{where} AND {in_sweep}", notes + sweep_notes
    q = quote_ident(column)
    present = {n.lower(): n for n, _, _ in store.columns()}
    extra = [present[c] for c in INDEX_COLUMNS if c in present and c != column.lower()]
    arg = "arg_min" if direction == "min" else "arg_max"
    agg = [f"{direction}({q}) AS best"]
    agg += [f"{arg}({quote_ident(c)}, {q}) AS {quote_ident(c)}" for c in extra]
    agg.append(f"count({q}) AS n")
    order = "ASC" if direction == "min" else "DESC"
    outer = ["rank", "experiment_name", f"best AS {q}"] + [quote_ident(c) for c in extra]
    outer.append("n AS rows")
    result = store.execute(
        f"SELECT {', '.join(outer)} FROM (SELECT row_number() OVER (ORDER BY best {order}, "
        f"experiment_name) AS rank, * FROM (SELECT experiment_name, {', '.join(agg)} "
        f"FROM experiments WHERE {is_finite_sql(q)} AND {where} GROUP BY experiment_name)) "
        f"WHERE rank <= {top} ORDER BY rank"
    )
    return result._replace(notes=notes + non_finite_notes(store, column, where))


def group_experiments(
    metric: str,
    group_by: Sequence[str],
    mode: str | None = None,
    storage_dir: str | os.PathLike[str] | None = None,
    *,
    split: str | None = None,
    sweep: str | None = None,
    store: Store | None = None,
) -> QueryResult:
    """Experiments grouped by columns (e.g. ``training__lr``): each group's mean, standard
    deviation (sample), min, max and count of the experiments' best ``metric`` values.

    Args:
        metric: a numeric result column; each experiment contributes its best value.
        group_by: columns whose values define the groups (config columns of each run).
        mode: ``"min"`` or ``"max"`` (best value and group order); default from the name.
        split: which rows count (default: validation rows; ``"all"``: every row).
        sweep: only the experiments of this sweep (the ``sweep`` column).

    Returns:
        Columns ``<group_by...>, runs, mean_<metric>, std_<metric>, min_<metric>,
        max_<metric>``, best mean first.

    Raises:
        UnknownMetricError (also for an unknown group column), MetricDirectionError,
        UnknownSplitError, UnknownExperimentError (an unknown sweep), ValueError.
    """
    if isinstance(group_by, str):
        group_by = [group_by]
    if not group_by:
        raise ValueError("group_by needs at least one column")
    if mode is not None and mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    store = _open(store, storage_dir)
    column = _resolve_metric(store, metric)
    direction = mode or metric_direction(column)
    present = {n.lower(): n for n, _, _ in store.columns()}
    keys = []
    for key in dict.fromkeys(group_by):
        if key.lower() not in present:
            close = difflib.get_close_matches(key, list(present.values()), n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownMetricError(f"unknown column {key!r} to group by.{hint}")
        keys.append(quote_ident(present[key.lower()]))
    where, notes = split_filter(store, split)
    in_sweep, sweep_notes = sweep_filter(store, sweep)
    q = quote_ident(column)
    m = column
    per_run = ", ".join(f"min({k}) AS {k}" for k in keys)
    order = "ASC" if direction == "min" else "DESC"
    result = store.execute(
        f"SELECT {', '.join(keys)}, count(*) AS runs, "
        f"avg(best) AS {quote_ident('mean_' + m)}, "
        f"stddev_samp(best) AS {quote_ident('std_' + m)}, "
        f"min(best) AS {quote_ident('min_' + m)}, max(best) AS {quote_ident('max_' + m)} "
        f"FROM (SELECT experiment_name, {per_run}, {direction}({q}) AS best "
        f"FROM experiments WHERE {is_finite_sql(q)} AND {where} AND {in_sweep} "
        f"GROUP BY experiment_name) GROUP BY {', '.join(keys)} "
        f"ORDER BY {len(keys) + 2} {order}, {', '.join(keys)}"
    )
    notes += sweep_notes + non_finite_notes(store, column, f"{where} AND {in_sweep}")
    return result._replace(notes=notes)


def check_experiments(store: Store, names: Sequence[str]) -> list[str]:
    """The names, deduplicated, after checking that each has rows.

    Raises:
        UnknownExperimentError: a name is not in the store (close names suggested).
        ValueError: no names.
    """
    wanted = list(dict.fromkeys([names] if isinstance(names, str) else names))
    if not wanted:
        raise ValueError("give at least one experiment name")
    known = store.experiment_names()
    known_set = set(known)
    for name in wanted:
        if name not in known_set:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            count = f"{len(known)} experiments in the store" if known else "the store is empty"
            raise UnknownExperimentError(f"unknown experiment {name!r}.{hint} ({count})")
    return wanted


def compare_experiments(
    names: Sequence[str],
    metrics: Sequence[str] | None = None,
    storage_dir: str | os.PathLike[str] | None = None,
    *,
    split: str | None = None,
    store: Store | None = None,
) -> QueryResult:
    """Named experiments side by side, one row each in the order given.

    Columns: ``experiment_name, rows, last_step``, per metric ``<metric>_last`` (at the last
    step) and ``<metric>_best`` (when its direction is known), both on the chosen split, then
    the metadata columns whose values differ between the experiments.

    Raises:
        UnknownExperimentError, UnknownMetricError, UnknownSplitError.
    """
    store = _open(store, storage_dir)
    wanted = check_experiments(store, names)
    where, notes = split_filter(store, split)
    in_list = ", ".join(quote_str(n) for n in wanted)
    present = {n.lower(): (n, kind) for n, kind, _ in store.columns()}
    if metrics is None:
        candidates = [m for m in store.metric_columns() if m.lower() not in INDEX_COLUMNS]
        chosen = []
        if candidates:
            counts = store.execute(
                "SELECT "
                + ", ".join(f"count({quote_ident(m)})" for m in candidates)
                + f" FROM experiments WHERE experiment_name IN ({in_list})"
            ).rows[0]
            chosen = [m for m, c in zip(candidates, counts) if c]
    else:
        chosen = [_resolve_metric(store, m) for m in dict.fromkeys(metrics)]
    order_col = '"step"' if "step" in present else "saved_at"
    select = ["experiment_name", "count(*) AS rows"]
    if "step" in present:
        select.append('max("step") AS last_step')
    for metric in chosen:
        q = quote_ident(metric)
        select.append(
            f"arg_max({q}, {order_col}) FILTER (WHERE {q} IS NOT NULL AND {where}) "
            f"AS {quote_ident(metric + '_last')}"
        )
        try:
            direction = metric_direction(metric)
        except MetricDirectionError:
            continue
        best = quote_ident(metric + "_best")
        select.append(f"{direction}({q}) FILTER (WHERE {where} AND {is_finite_sql(q)}) AS {best}")
    main = store.execute(
        f"SELECT {', '.join(select)} FROM experiments WHERE experiment_name IN ({in_list}) "
        "GROUP BY experiment_name"
    )
    by_name = {row[0]: row for row in main.rows}
    meta_cols = [n for n, kind in present.values() if kind == "metadata"]
    differing: list[str] = []
    meta_rows: dict[str, tuple[Any, ...]] = {}
    if meta_cols and len(wanted) > 1:
        summary = store.execute(
            f"SELECT experiment_name, {', '.join(quote_ident(c) for c in meta_cols)} "
            f"FROM experiment_summary WHERE experiment_name IN ({in_list})"
        )
        meta_rows = {row[0]: row[1:] for row in summary.rows}
        for i, col in enumerate(meta_cols):
            if len({repr(meta_rows[n][i]) for n in wanted}) > 1:
                differing.append(col)
    idx = [meta_cols.index(c) for c in differing]
    rows = [tuple(by_name[n]) + tuple(meta_rows[n][i] for i in idx) for n in wanted]
    return QueryResult(main.columns + differing, rows, notes)
