"""The dashboard's views over many runs: parallel coordinates, a hyperparameter-vs-metric
scatter and parameter importance, each one DuckDB query on the runs table (``Dashboard``'s
temporary table for the split), so they stay fast at 10,000 runs.

Importance, for any set of runs, is eta squared: the share of the metric's variance across runs
that grouping the runs by one parameter explains (between-group sum of squares over the total);
a parameter with more than ``MAX_GROUPS`` values is cut into ``MAX_GROUPS`` equal-count bins
first. It reads each parameter alone (no interactions) and is biased upwards when groups hold
few runs. When the runs' sweep folder holds an Optuna study (``sweeps/<sweep>/study.journal``),
Optuna's own ``get_param_importances`` (fANOVA) can be asked for instead.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.experiments.sql import is_finite_sql, is_numeric, quote_ident
from common.visualization.dashboard.queries import (
    ENVIRONMENT_KEYS,
    NAME,
    Dashboard,
    DashboardError,
    cell,
)

MAX_PARAMS = 12
"""Columns a parallel-coordinates view shows when none are chosen."""
MAX_TEXT_VALUES = 30
"""A text column with more distinct values is not a hyperparameter (a path, a name)."""
MAX_GROUPS = 10
"""Bins a numeric parameter is cut into for importance when it has more values."""
LOG_DECADES = 2.0
"""A positive column spanning this many decades is drawn on a log axis."""
STUDY_FILE = "study.journal"
NOT_PARAMS = {"trial", "trial_number", "sweep", "sweep_name", "run_name", "name", "output_dir"}
"""Metadata keys (last segment) that label a run rather than configure it."""
IMPORTANCE_METHOD = (
    "eta squared: the share of the metric's variance across runs explained by grouping the "
    f"runs by the parameter alone (numeric parameters with more than {MAX_GROUPS} values in "
    f"{MAX_GROUPS} equal-count bins); no interactions, biased upwards when groups are small"
)


def is_lr_like(column: str) -> bool:
    """Whether a column holds learning rates (drawn on a log axis, written as 3e-4)."""
    last = column.lower().rsplit("__", 1)[-1]
    return last in ("lr", "learning_rate") or last.endswith("_lr")


def _profile(dash: Dashboard, split: str | None) -> dict[str, Any]:
    """Per runs-table column: type, runs with a value, distinct values, min and max (one query,
    cached per snapshot), and the columns that are parameters and metrics."""
    table, columns, _ = dash.runs_table(split)
    if table in dash.profiles:
        return dash.profiles[table]
    types = {r[0]: r[1] for r in dash.store.execute(f"DESCRIBE {quote_ident(table)}").rows}
    meta = dash.meta()
    candidates = [
        c
        for c in meta["metadata"]
        if c in types
        and c not in ENVIRONMENT_KEYS
        and c.lower().rsplit("__", 1)[-1] not in NOT_PARAMS
        and (is_numeric(types[c]) or types[c] in ("VARCHAR", "BOOLEAN"))
    ]
    parts = ["count(*)"]
    for c in candidates:
        q = quote_ident(c)
        parts.append(f"count({q}), count(DISTINCT {q})")
        if is_numeric(types[c]):
            finite = is_finite_sql(q)
            parts.append(
                f"min(CAST({q} AS DOUBLE)) FILTER (WHERE {finite}), "
                f"max(CAST({q} AS DOUBLE)) FILTER (WHERE {finite})"
            )
        else:
            parts.append("NULL, NULL")
    row = dash.store.execute(f"SELECT {', '.join(parts)} FROM {quote_ident(table)}").rows[0]
    runs = int(row[0])
    stats: dict[str, dict[str, Any]] = {}
    for i, c in enumerate(candidates):
        present, distinct, low, high = row[1 + 4 * i : 5 + 4 * i]
        numeric = is_numeric(types[c])
        log = bool(
            numeric
            and low is not None
            and low > 0
            and (is_lr_like(c) or math.log10(high / low) >= LOG_DECADES)
        )
        stats[c] = {
            "kind": "numeric" if numeric else "text",
            "present": int(present),
            "distinct": int(distinct),
            "min": low,
            "max": high,
            "log": log,
        }
    swept = [
        c
        for c in candidates
        if stats[c]["distinct"] > 1
        and (
            stats[c]["kind"] == "numeric"
            or (
                stats[c]["distinct"] <= MAX_TEXT_VALUES
                and not (stats[c]["distinct"] == stats[c]["present"] and runs > 3)
            )
        )
    ]
    metrics = [
        c for c in columns if c.startswith(("best_", "last_")) and is_numeric(types.get(c, ""))
    ]
    profile = {"runs": runs, "stats": stats, "params": candidates, "swept": swept}
    profile["metrics"] = metrics
    dash.profiles[table] = profile
    return profile


def _metric_column(profile: dict[str, Any], metric: str | None, stat: str) -> str:
    """The runs-table column for ``metric`` (``best_loss``, or ``loss`` with ``stat``); by
    default the validation loss's best, else the first metric with a best value."""
    metrics: list[str] = profile["metrics"]
    if stat not in ("best", "last"):
        raise DashboardError(f"stat must be best or last, got {stat!r}")
    if not metric:
        for wanted in (f"{stat}_loss", "best_loss", "last_loss"):
            if wanted in metrics:
                return wanted
        best = [m for m in metrics if m.startswith(stat + "_")] or metrics
        if not best:
            raise DashboardError("the runs have no numeric metric to show")
        return best[0]
    for candidate in (metric, f"{stat}_{metric}"):
        if candidate in metrics:
            return candidate
    raise DashboardError(
        f"no metric {metric!r} in the runs table; metrics: {', '.join(metrics) or '(none)'}"
    )


def _params(profile: dict[str, Any], columns: Sequence[str] | None) -> list[str]:
    if not columns:
        return list(profile["swept"][:MAX_PARAMS])
    stats = profile["stats"]
    unknown = [c for c in columns if c not in stats]
    if unknown:
        raise DashboardError(
            f"no parameter column {unknown[0]!r}; parameters: "
            + (", ".join(profile["params"]) or "(none)")
        )
    return list(dict.fromkeys(columns))


def _where(where: str | None) -> str:
    return f"({where})" if where and where.strip() else "true"


def parallel_coordinates(
    dash: Dashboard,
    *,
    split: str | None = None,
    columns: Sequence[str] | None = None,
    metric: str | None = None,
    stat: str = "best",
    where: str | None = None,
) -> dict[str, Any]:
    """One line per run with a finite metric: the parameter columns (default: those the runs
    differ in) and the metric, in one query.

    Args:
        split: the split the metric's best/last value is taken on (default validation).
        columns: parameter columns (runs-table names, e.g. ``training__lr``).
        metric: a metric (``loss``) or runs-table column (``last_loss``); default the
            validation loss.
        stat: ``best`` or ``last`` (with a bare metric name).
        where: the runs table's filter (SQL on its columns).

    Raises:
        DashboardError: unknown column or metric, bad filter.
    """
    with dash._lock:
        profile = _profile(dash, split)
        params = _params(profile, columns)
        target = _metric_column(profile, metric, stat)
        table, available, _ = dash.runs_table(split)
        picked = [NAME, *params, target]
        sql = (
            f"SELECT {', '.join(quote_ident(c) for c in picked)} FROM {quote_ident(table)} "
            f"WHERE {is_finite_sql(quote_ident(target))} AND {_where(where)} ORDER BY 1"
        )
        result = dash._filter_query(sql, available)
    values = list(zip(*result.rows)) if result.rows else [() for _ in picked]
    stats = profile["stats"]
    return {
        "split": split or dash.meta()["default_split"],
        "metric": target,
        "names": list(values[0]),
        "dimensions": [
            {
                "column": c,
                "kind": stats[c]["kind"],
                "log": stats[c]["log"],
                "values": [cell(v) for v in values[i + 1]],
            }
            for i, c in enumerate(params)
        ],
        "metric_values": [cell(v) for v in values[-1]],
        "params": profile["params"],
        "swept": profile["swept"],
        "metrics": profile["metrics"],
        "runs": profile["runs"],
    }


def scatter(
    dash: Dashboard,
    *,
    x: str | None = None,
    split: str | None = None,
    metric: str | None = None,
    stat: str = "best",
    where: str | None = None,
) -> dict[str, Any]:
    """A parameter (default: the first one the runs differ in) against a metric, one point per
    run with both; ``log_x`` when the parameter is a learning rate or spans two decades.

    Raises:
        DashboardError: unknown column or metric, bad filter, no parameter.
    """
    with dash._lock:
        profile = _profile(dash, split)
        if not x:
            if not profile["swept"]:
                raise DashboardError("the runs do not differ in any parameter")
            x = profile["swept"][0]
        param = _params(profile, [x])[0]
        target = _metric_column(profile, metric, stat)
        table, available, _ = dash.runs_table(split)
        sql = (
            f"SELECT {quote_ident(NAME)}, {quote_ident(param)}, {quote_ident(target)} "
            f"FROM {quote_ident(table)} WHERE {is_finite_sql(quote_ident(target))} "
            f"AND {quote_ident(param)} IS NOT NULL AND {_where(where)} ORDER BY 1"
        )
        result = dash._filter_query(sql, available)
    stat_x = profile["stats"][param]
    return {
        "split": split or dash.meta()["default_split"],
        "x": param,
        "metric": target,
        "kind": stat_x["kind"],
        "log_x": stat_x["log"],
        "names": [r[0] for r in result.rows],
        "xs": [cell(r[1]) for r in result.rows],
        "ys": [cell(r[2]) for r in result.rows],
        "params": profile["params"],
        "swept": profile["swept"],
        "metrics": profile["metrics"],
    }


def importance(
    dash: Dashboard,
    *,
    split: str | None = None,
    columns: Sequence[str] | None = None,
    metric: str | None = None,
    stat: str = "best",
    where: str | None = None,
    study: str | None = None,
) -> dict[str, Any]:
    """How much each parameter explains the metric across the runs (eta squared, one query),
    or, with ``study`` (a sweep folder's name), Optuna's importance for that study.

    Raises:
        DashboardError: unknown column, metric or study; bad filter; a study Optuna cannot read.
    """
    if study:
        return optuna_importance(dash.root, study)
    with dash._lock:
        profile = _profile(dash, split)
        params = _params(profile, columns)
        target = _metric_column(profile, metric, stat)
        table, available, _ = dash.runs_table(split)
        out: dict[str, Any] = {
            "method": IMPORTANCE_METHOD,
            "source": "runs",
            "metric": target,
            "split": split or dash.meta()["default_split"],
            "studies": studies(dash.root),
        }
        if not params:
            return {**out, "runs": 0, "importances": []}
        y = quote_ident(target)
        keys = []
        for i, c in enumerate(params):
            q = quote_ident(c)
            if profile["stats"][c]["kind"] == "numeric" and profile["stats"][c]["distinct"] > (
                MAX_GROUPS
            ):
                key = (
                    f"CASE WHEN {q} IS NULL THEN NULL ELSE ntile({MAX_GROUPS}) OVER "
                    f"(PARTITION BY {q} IS NULL ORDER BY {q}) END"
                )
            else:
                key = f"CAST({q} AS VARCHAR)"
            keys.append(f"{key} AS k{i}")
        groups = " UNION ALL ".join(
            f"SELECT {i} AS p, count(*) AS n, avg(y) AS mean FROM base GROUP BY k{i}"
            for i in range(len(params))
        )
        sql = (
            f"WITH base AS (SELECT CAST({y} AS DOUBLE) AS y, {', '.join(keys)} "
            f"FROM {quote_ident(table)} WHERE {is_finite_sql(y)} AND {_where(where)}), "
            "total AS (SELECT avg(y) AS mu, var_pop(y) * count(*) AS ss, count(*) AS n "
            "FROM base), "
            f"g AS ({groups}) "
            "SELECT g.p, sum(g.n * (g.mean - total.mu) ^ 2) / nullif(any_value(total.ss), 0), "
            "count(*), any_value(total.n) FROM g, total GROUP BY g.p ORDER BY g.p"
        )
        result = dash._filter_query(sql, available)
    runs = int(result.rows[0][3]) if result.rows else 0
    ranked = [
        {"param": params[int(p)], "importance": cell(share), "groups": int(k)}
        for p, share, k, _ in result.rows
    ]
    ranked.sort(key=lambda r: -(r["importance"] if isinstance(r["importance"], float) else -1))
    return {**out, "runs": runs, "importances": ranked}


def studies(store_root: Path) -> list[str]:
    """The sweeps beside the store (``../sweeps/<sweep>/``) that hold an Optuna study."""
    folder = store_root.parent / "sweeps"
    if not folder.is_dir():
        return []
    return sorted(p.parent.name for p in folder.glob(f"*/{STUDY_FILE}") if p.is_file())


def optuna_importance(store_root: Path, sweep: str) -> dict[str, Any]:
    """Optuna's ``get_param_importances`` for the study in ``sweeps/<sweep>/``, read from a
    copy of its journal (the dashboard never writes the sweep's folder).

    Raises:
        DashboardError: no such study, Optuna missing, or too few finished trials.
    """
    if sweep not in studies(store_root):
        raise DashboardError(
            f"no Optuna study in sweep {sweep!r}; sweeps with one: "
            + (", ".join(studies(store_root)) or "(none)")
        )
    try:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
    except ImportError:
        raise DashboardError("Optuna is not installed (pip install optuna)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    source = store_root.parent / "sweeps" / sweep / STUDY_FILE
    with tempfile.TemporaryDirectory(prefix="dashboard-study-") as tmp:
        copy = Path(tmp) / STUDY_FILE
        shutil.copyfile(source, copy)
        storage = JournalStorage(JournalFileBackend(str(copy)))
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        if not names:
            raise DashboardError(f"the study file of sweep {sweep!r} holds no study")
        name = sweep if sweep in names else names[0]
        study = optuna.load_study(study_name=name, storage=storage)
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        multi = len(study.directions) > 1
        try:
            scores = optuna.importance.get_param_importances(
                study, target=(lambda t: t.values[0]) if multi else None
            )
        except (ValueError, RuntimeError) as exc:
            raise DashboardError(
                f"Optuna cannot rank the parameters of study {name!r} ({len(done)} finished "
                f"trial(s)): {exc}"
            ) from None
    return {
        "method": "Optuna's get_param_importances (fANOVA) on the study's finished trials"
        + (" (first objective)" if multi else ""),
        "source": "optuna",
        "study": name,
        "sweep": sweep,
        "trials": len(done),
        "importances": [{"param": k, "importance": float(v)} for k, v in scores.items()],
        "studies": studies(store_root),
    }


__all__ = [
    "IMPORTANCE_METHOD",
    "importance",
    "is_lr_like",
    "optuna_importance",
    "parallel_coordinates",
    "scatter",
    "studies",
]
