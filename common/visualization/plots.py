"""Plots of stored experiments: training curves and a best-value comparison.

Figures are built as ``matplotlib.figure.Figure`` objects with an Agg canvas, never through
``pyplot``, so they work headless (CI, SSH, worker processes) and leave pyplot's global state
alone. In a notebook run ``%matplotlib inline`` once and a returned Figure displays itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Colour-blind-friendly palette (Okabe-Ito, then Tol's muted) so up to 16 experiments stay apart.
_COLORS = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#000000",
    "#332288",
    "#88CCEE",
    "#44AA99",
    "#117733",
    "#999933",
    "#DDCC77",
    "#CC6677",
    "#882255",
    "#F0E442",  # yellow last: the hardest to see on white
)
_SPLIT_STYLES: tuple[Any, ...] = ("-", "--", ":", "-.")
_PREFERRED_SPLIT_ORDER = ("train", "val", "validation", "test")
_SUBPLOT_SIZE = (6.4, 4.0)
_MAX_INLINE_LEGEND_ENTRIES = 8

Rows = list[dict[str, Any]]


def plot_training_curves(
    experiments: str | Sequence[str] | Any,
    metrics: str | Sequence[str] = ("loss",),
    *,
    x: str = "step",
    log_scale: bool | str = False,
    split: str | None = None,
    storage_dir: str | Path | None = None,
    data: Any = None,
    save_path: str | Path | None = None,
    title: str | None = None,
) -> Figure:
    """Plot metric histories of one or more experiments, one subplot per metric.

    Each experiment gets one colour; when the rows carry a ``split`` column with several values
    (``train`` / ``val``), each split gets its own line style, unless ``split`` selects one.

    Args:
        experiments: An experiment name or several names; or the rows themselves (a pandas
            DataFrame, e.g. from ``query_experiments``), as ``data`` with every experiment in it.
        metrics: A metric column or several (e.g. ``("loss", "perplexity")``).
        x: The column on the x axis, ``"step"`` or ``"epoch"`` (any numeric column works).
        log_scale: Use a logarithmic y axis: ``True``, ``False``, or ``"auto"`` (per subplot,
            when all values are positive and span more than a factor of 20).
        split: Only plot rows whose ``split`` column equals this value (e.g. ``"val"``).
        storage_dir: The experiment store to read (default: ``assets/outputs/experiments``).
        data: Rows to plot instead of reading the store: a pandas DataFrame, a list of row dicts
            or a dict of columns, with an ``experiment_name`` column (optional for a single
            experiment).
        save_path: Write the figure there (format from the suffix, PNG by default).
        title: Figure title (default: names the metrics and, for one experiment, the experiment).

    Returns:
        The matplotlib Figure.

    Raises:
        ExperimentStoreError: An unknown experiment or metric (the message lists what exists).
        ValueError: Bad arguments, or nothing to plot.
    """
    if _is_table(experiments):
        if data is not None:
            raise ValueError(
                "plot_training_curves got rows twice: pass experiment names first and the rows "
                "as data=, or the rows alone"
            )
        data, experiments = experiments, _names_in(experiments)
    names = [experiments] if isinstance(experiments, str) else list(experiments)
    metric_list = [metrics] if isinstance(metrics, str) else list(metrics)
    if not names:
        raise ValueError("plot_training_curves needs at least one experiment name")
    if not metric_list:
        raise ValueError("plot_training_curves needs at least one metric")
    if log_scale not in (True, False, "auto"):
        raise ValueError(f"log_scale must be True, False or 'auto', not {log_scale!r}")

    if data is None:
        rows = _rows_from_store(names, metric_list, x, split is not None, storage_dir)
    else:
        rows = _rows_from_data(data, names, metric_list, x)
    if split is not None:
        rows = [r for r in rows if r.get("split") == split]
        if not rows:
            raise ValueError(f"no rows with split = {split!r} for {', '.join(names)}")

    splits = _split_values(rows)
    style_of_split: dict[str, Any] = {
        s: _SPLIT_STYLES[i % len(_SPLIT_STYLES)] for i, s in enumerate(splits)
    }
    color_of = {name: _COLORS[i % len(_COLORS)] for i, name in enumerate(names)}

    from matplotlib.ticker import MaxNLocator

    xs_all = [v for v in (_as_float(r.get(x)) for r in rows) if v is not None]
    integer_x = bool(xs_all) and all(v.is_integer() for v in xs_all)
    fig, axes = _new_figure(len(metric_list))
    plotted_names: list[str] = []
    for ax, metric in zip(axes, metric_list):
        plotted = False
        low, high = math.inf, -math.inf
        for name in names:
            split_choices: list[str | None] = list(splits) if splits else [None]
            for sp in split_choices:
                xs, ys = _series(rows, name, sp, x, metric)
                if not xs:
                    continue
                low, high = min(low, *ys), max(high, *ys)
                ax.plot(
                    xs,
                    ys,
                    color=color_of[name],
                    linestyle=style_of_split[sp] if sp is not None else "-",
                    linewidth=1.8,
                    marker="o" if len(xs) <= 25 else None,
                    markersize=3,
                )
                if name not in plotted_names:
                    plotted_names.append(name)
                plotted = True
        if len(metric_list) > 1:
            ax.set_title(_pretty(metric), fontsize=12)
        ax.set_xlabel(_pretty(x))
        if integer_x:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(_pretty(metric))
        ax.grid(True, which="major", alpha=0.35)
        auto_log = log_scale == "auto" and plotted and low > 0 and high / low > 20
        if plotted and (log_scale is True or auto_log):
            _log_y(ax)
        if not plotted:
            ax.text(
                0.5,
                0.5,
                f"no {metric} values",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="0.4",
            )
    spare = axes[len(metric_list) :]
    for ax in spare:
        ax.axis("off")

    if not plotted_names:
        raise ValueError(
            f"nothing to plot: {', '.join(names)} have no values of {', '.join(metric_list)} "
            f"against {x}"
        )

    if title is None:
        what = _join_words([_pretty(m) for m in metric_list])
        scope = f" ({split})" if split else ""
        who = names[0] if len(names) == 1 else f"{len(names)} experiments"
        title = f"{who}: {what}{scope} by {_pretty(x)}"
    shown_splits = splits if len(splits) > 1 else []
    _add_legend(
        fig,
        spare[0] if spare else axes[0],
        plotted_names,
        color_of,
        shown_splits,
        style_of_split,
        in_axes=bool(spare) or len(axes) == 1,
    )
    fig.suptitle(title, fontsize=14, fontweight="bold")
    _save(fig, save_path)
    return fig


def plot_best_comparison(
    metric: str,
    experiments: Sequence[str] | None = None,
    *,
    mode: str | None = None,
    top: int | None = None,
    split: str | None = None,
    storage_dir: str | Path | None = None,
    save_path: str | Path | None = None,
) -> Figure:
    """Bar chart of each experiment's best value of a metric, best first.

    Best is the minimum over the experiment's history for loss-like metrics and the maximum for
    accuracy-like ones (the store's rule); ``mode`` overrides it.

    Args:
        metric: The metric column (e.g. ``"perplexity"``).
        experiments: Only these experiments (default: all in the store).
        mode: ``"min"`` or ``"max"``; ``None`` picks by the metric's name.
        top: Only the ``top`` best experiments.
        split: Rows of this split (default: the validation rows, as ``best_experiments``;
            ``"all"``: every row).
        storage_dir: The experiment store to read (default: ``assets/outputs/experiments``).
        save_path: Write the figure there (format from the suffix, PNG by default).

    Returns:
        The matplotlib Figure.

    Raises:
        ExperimentStoreError: An unknown metric or experiment.
        ValueError: Bad ``mode`` or ``top``, or no experiment has a value of ``metric``.
    """
    if mode not in (None, "min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
    if top is not None and top < 1:
        raise ValueError(f"top must be at least 1, not {top}")
    names, values, used_mode, metric = _best_values(
        metric, experiments, mode, top, split, storage_dir
    )
    if not names:
        raise ValueError(f"no experiment has a value of {metric!r}")

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height = max(2.6, 0.42 * len(names) + 1.6)
    fig = Figure(figsize=(8.0, height), layout="constrained", dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    positions = list(range(len(names)))
    colors = ["#0072B2" if i == 0 else "#9BB7D4" for i in positions]
    bars = ax.barh(positions, values, height=0.65, color=colors, edgecolor="0.3", linewidth=0.6)
    ax.set_yticks(positions, labels=names)
    ax.invert_yaxis()
    direction = "lower is better" if used_mode == "min" else "higher is better"
    ax.set_xlabel(f"best {_pretty(metric)} ({used_mode} over history; {direction})")
    ax.set_title(f"Best {_pretty(metric)} per experiment", fontsize=13, fontweight="bold")
    ax.grid(True, axis="x", alpha=0.35)
    ax.set_axisbelow(True)
    ax.bar_label(bars, labels=[_fmt_value(v) for v in values], padding=3, fontsize=9)
    finite = [v for v in values if math.isfinite(v)]
    if finite:
        lo, hi = min(0.0, min(finite)), max(0.0, max(finite))
        span = (hi - lo) or 1.0
        ax.set_xlim(lo - (0.02 * span if lo < 0 else 0), hi + 0.16 * span)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    _save(fig, save_path)
    return fig


def plot_group_curves(
    metric: str,
    group_by: str | Sequence[str],
    *,
    sweep: str | None = None,
    split: str | None = "val",
    x: str = "step",
    storage_dir: str | Path | None = None,
    save_path: str | Path | None = None,
    title: str | None = None,
) -> Figure:
    """One curve per group of experiments (e.g. per ``training__lr`` across seeds): the mean of
    ``metric`` at each ``x`` with a band from the group's min to its max.

    Args:
        metric: the metric column to plot.
        group_by: the column(s) whose values define the groups.
        sweep: only the experiments of this sweep (the ``sweep`` column).
        split: only rows of this split (``None``: every row).
        x: the x-axis column.
        storage_dir: the experiment store (default: ``assets/outputs/experiments``).
        save_path: write the figure there.
        title: figure title (default: the metric and the grouping).

    Raises:
        ExperimentStoreError: an unknown metric, column or sweep.
        ValueError: nothing to plot.
    """
    from common.experiments import (
        Store,
        UnknownMetricError,
        quote_ident,
        split_filter,
        sweep_filter,
    )

    keys = [group_by] if isinstance(group_by, str) else list(group_by)
    with Store(storage_dir) as store:
        present = {n.lower(): n for n, _, _ in store.columns()}
        for col in [metric, x, *keys]:
            if col.lower() not in present:
                raise UnknownMetricError(f"unknown column {col!r} in the store")
        where, _ = split_filter(store, split)
        in_sweep, _ = sweep_filter(store, sweep)
        cols = [quote_ident(present[c.lower()]) for c in (*keys, x, metric)]
        raw = store.execute(
            f"SELECT experiment_name, {', '.join(cols)} FROM experiments WHERE {cols[-1]} IS NOT "
            f"NULL AND {cols[-2]} IS NOT NULL AND {where} AND {in_sweep}"
        ).rows
    if not raw:
        raise ValueError(f"nothing to plot: no {metric} values for these experiments")
    points: dict[tuple[Any, ...], dict[float, dict[str, float]]] = {}
    for name, *values in raw:
        group, xv, yv = tuple(values[: len(keys)]), float(values[-2]), float(values[-1])
        points.setdefault(group, {}).setdefault(xv, {})[name] = yv
    fig, axes = _new_figure(1)
    ax = axes[0]
    for i, (group, by_x) in enumerate(sorted(points.items(), key=lambda kv: repr(kv[0]))):
        xs = sorted(by_x)
        ys = [list(by_x[v].values()) for v in xs]
        color = _COLORS[i % len(_COLORS)]
        label = ", ".join(f"{k}={v}" for k, v in zip(keys, group))
        runs = len({n for v in by_x.values() for n in v})
        ax.plot(xs, [sum(y) / len(y) for y in ys], color=color, label=f"{label} ({runs} runs)")
        ax.fill_between(xs, [min(y) for y in ys], [max(y) for y in ys], color=color, alpha=0.2)
    ax.set_xlabel(_pretty(x))
    ax.set_ylabel(_pretty(metric))
    ax.grid(True, which="major", alpha=0.35)
    ax.legend(fontsize=8)
    scope = f" ({split})" if split else ""
    fig.suptitle(
        title or f"{_pretty(metric)}{scope} by {', '.join(keys)}: mean and min-max band",
        fontsize=12,
        fontweight="bold",
    )
    _save(fig, save_path)
    return fig


# --------------------------------------------------------------------------- data access


def _rows_from_store(
    names: list[str],
    metrics: list[str],
    x: str,
    need_split: bool,
    storage_dir: str | Path | None,
) -> Rows:
    from common.experiments import Store, curve_rows, split_column

    with Store(storage_dir) as store:
        result = curve_rows(store, names, [x, *metrics], x=x)
        has_split = split_column(store) is not None
    if need_split and not has_split:
        raise ValueError("split was given but the stored rows have no 'split' column")
    keys = result.columns if has_split else [c for c in result.columns if c != "split"]
    return [
        dict(zip(result.columns, r)) if has_split else dict(zip(keys, (r[0], *r[2:])))
        for r in result.rows
    ]


def _is_table(value: Any) -> bool:
    return hasattr(value, "to_dict") and hasattr(value, "columns")


def _names_in(table: Any) -> list[str] | str:
    """The experiment names in a DataFrame, in order of appearance (one label without them)."""
    if "experiment_name" not in table.columns:
        return "data"
    return [str(n) for n in dict.fromkeys(table["experiment_name"]) if n is not None]


def _rows_from_data(data: Any, names: list[str], metrics: list[str], x: str) -> Rows:
    if _is_table(data):
        rows: Rows = data.to_dict("records")
    elif isinstance(data, Mapping):
        cols = {k: list(v) for k, v in data.items()}
        length = len(next(iter(cols.values()))) if cols else 0
        rows = [{k: v[i] for k, v in cols.items()} for i in range(length)]
    else:
        rows = [dict(r) for r in data]
    if rows and not any("experiment_name" in r for r in rows):
        if len(names) != 1:
            raise ValueError("data needs an 'experiment_name' column to plot several experiments")
        rows = [{**r, "experiment_name": names[0]} for r in rows]
    present = set().union(*(r.keys() for r in rows)) if rows else set()
    for col in [x, *metrics]:
        if col not in present:
            raise ValueError(f"data has no column {col!r}; it has: {', '.join(sorted(present))}")
    rows = [r for r in rows if r.get("experiment_name") in set(names)]
    if not rows:
        raise ValueError(f"data has no rows of {', '.join(names)}")
    return rows


def _best_values(
    metric: str,
    experiments: Sequence[str] | None,
    mode: str | None,
    top: int | None,
    split: str | None,
    storage_dir: str | Path | None,
) -> tuple[list[str], list[float], str, str]:
    from common.experiments import (
        Store,
        best_experiments,
        check_experiments,
        metric_direction,
    )

    with Store(storage_dir) as store:
        known = store.experiment_names()
        if experiments is not None:
            check_experiments(store, experiments)
        limit = top if experiments is None and top is not None else max(1, len(known))
        result = best_experiments(metric, limit, mode, split=split, store=store)
    value_i = result.columns.index("experiment_name") + 1
    column = result.columns[value_i]
    used_mode = mode or metric_direction(column)
    pairs = [(r[value_i - 1], float(r[value_i])) for r in result.rows if r[value_i] is not None]
    if experiments is not None:
        chosen = set(experiments)
        pairs = [p for p in pairs if p[0] in chosen][:top]
    return [p[0] for p in pairs], [p[1] for p in pairs], used_mode, column


# --------------------------------------------------------------------------- drawing helpers


def _new_figure(n_panels: int) -> tuple[Figure, list[Axes]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ncols = 1 if n_panels == 1 else 2
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(
        figsize=(_SUBPLOT_SIZE[0] * ncols, _SUBPLOT_SIZE[1] * nrows + 0.9),
        layout="constrained",
        dpi=110,
    )
    FigureCanvasAgg(fig)
    grid = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in grid for ax in row]


def _add_legend(
    fig: Figure,
    ax: Axes,
    names: list[str],
    color_of: dict[str, str],
    splits: list[str],
    style_of_split: dict[str, Any],
    *,
    in_axes: bool,
) -> None:
    """One legend: a coloured line per experiment, then a grey line per split style.

    Placed inside ``ax`` when ``in_axes`` (a single panel, or an empty grid cell) and there are
    few entries, otherwise below the panels.
    """
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=color_of[n], linewidth=2.2) for n in names]
    labels = list(names)
    for sp in splits:
        handles.append(Line2D([], [], color="0.35", linestyle=style_of_split[sp], linewidth=1.8))
        labels.append(f"split: {sp}")
    if in_axes and len(labels) <= _MAX_INLINE_LEGEND_ENTRIES * (2 if not ax.axison else 1):
        if ax.axison:
            ax.legend(handles, labels, fontsize=9, framealpha=0.9)
        else:
            ax.legend(handles, labels, fontsize=10, loc="center", frameon=False)
        return
    # as many columns as fit the figure's width (about 0.07 in per character at 9 pt), balanced
    entry_w = max(len(label) for label in labels) * 0.07 + 0.8
    max_cols = max(1, int(fig.get_figwidth() / entry_w))
    n_rows = math.ceil(len(labels) / max_cols)
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncol=math.ceil(len(labels) / n_rows),
        fontsize=9,
        frameon=False,
    )


def _log_y(ax: Axes) -> None:
    """Log y axis with plain-number tick labels (``3``, ``100``), not ``3x10^0``."""
    from matplotlib.ticker import FuncFormatter

    ax.set_yscale("log")
    low, high = ax.get_ylim()
    decades = math.log10(high / low) if low > 0 else math.inf
    # label minor ticks too when there are few decades: all of them below ~1.3, else 2x and 5x
    labelled = None if decades < 1.3 else ((2, 5) if decades <= 3 else ())

    def minor(v: float, _pos: int) -> str:
        if labelled is None:
            return f"{v:g}"
        mantissa = round(v / 10 ** math.floor(math.log10(v) + 1e-9))
        return f"{v:g}" if mantissa in labelled else ""

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor))
    ax.tick_params(axis="y", which="minor", labelsize=8, labelcolor="0.3")
    ax.grid(True, which="minor", alpha=0.12)


def _series(
    rows: Rows, name: str, split: str | None, x: str, metric: str
) -> tuple[list[float], list[float]]:
    points = []
    for r in rows:
        if r.get("experiment_name") != name:
            continue
        if split is not None and r.get("split") != split:
            continue
        xv, yv = _as_float(r.get(x)), _as_float(r.get(metric))
        if xv is None or yv is None:
            continue
        points.append((xv, yv))
    points.sort(key=lambda p: p[0])
    return [p[0] for p in points], [p[1] for p in points]


def _split_values(rows: Rows) -> list[str]:
    found = {r["split"] for r in rows if r.get("split") is not None}
    order = {s: i for i, s in enumerate(_PREFERRED_SPLIT_ORDER)}
    return sorted(found, key=lambda s: (order.get(s, len(order)), str(s)))


def _as_float(value: Any) -> float | None:
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _pretty(column: str) -> str:
    special = {"lr": "learning rate", "bits_per_byte": "bits per byte"}
    return special.get(column, column.replace("__", " / ").replace("_", " "))


def _join_words(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _fmt_value(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.3e}"
    return f"{v:.4g}" if abs(v) >= 1 else f"{v:.4f}"


def _save(fig: Figure, save_path: str | Path | None) -> None:
    if save_path is None:
        return
    path = Path(save_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=path.suffix[1:].lower() if path.suffix else "png")
