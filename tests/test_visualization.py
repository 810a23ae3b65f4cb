"""Plots of stored experiments: what the figures contain, saving, errors, headless use."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from common.utils import UnknownExperimentError, UnknownMetricError, save_experiment
from common.visualization import plot_best_comparison, plot_training_curves


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("viz_store")
    for k, name in enumerate(["run-a", "run-b", "run-c"]):
        rows = []
        for step in range(0, 100, 10):
            loss = 3.0 * math.exp(-step / (30 + 20 * k)) + 1.0 + 0.3 * k
            rows.append({"step": step, "epoch": step // 50, "split": "train", "loss": loss,
                         "perplexity": math.exp(loss), "accuracy": 1 / loss})  # fmt: skip
            if step % 50 == 40:
                rows.append({"step": step, "epoch": step // 50, "split": "val",
                             "loss": loss + 0.2, "perplexity": math.exp(loss + 0.2)})  # fmt: skip
        save_experiment(name, rows, {"model": f"m{k}"}, storage_dir=root)
    return root


def _visible_axes(fig):
    return [ax for ax in fig.axes if ax.axison]


def _legend_texts(fig) -> list[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [t.get_text() for leg in legends for t in leg.get_texts()]


def test_curves_one_panel_per_metric_with_named_legend(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "curves.png"
    fig = plot_training_curves(
        ["run-a", "run-b"], ["loss", "perplexity"], storage_dir=store, save_path=out
    )
    axes = _visible_axes(fig)
    assert [ax.get_title() for ax in axes] == ["loss", "perplexity"]
    assert all(ax.get_xlabel() == "step" for ax in axes)
    assert [ax.get_ylabel() for ax in axes] == ["loss", "perplexity"]
    # 2 experiments x 2 splits per panel
    assert all(len(ax.get_lines()) == 4 for ax in axes)
    texts = _legend_texts(fig)
    assert {"run-a", "run-b", "split: train", "split: val"} <= set(texts)
    assert "run-a" in fig.get_suptitle() or "2 experiments" in fig.get_suptitle()
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_curves_plot_the_stored_values_in_step_order(store: Path) -> None:
    fig = plot_training_curves("run-a", "loss", split="train", storage_dir=store)
    (ax,) = _visible_axes(fig)
    (line,) = ax.get_lines()
    xs, ys = list(line.get_xdata()), list(line.get_ydata())
    assert xs == list(range(0, 100, 10))
    assert ys[0] == pytest.approx(4.0)
    assert ys == sorted(ys, reverse=True)
    assert "run-a" in fig.get_suptitle() and "train" in fig.get_suptitle()
    assert _legend_texts(fig) == ["run-a"]  # a single split: no split entries


def test_curves_by_epoch_log_scale_and_custom_title(store: Path) -> None:
    fig = plot_training_curves(
        ["run-a", "run-b", "run-c"],
        ["perplexity"],
        x="epoch",
        log_scale=True,
        split="val",
        storage_dir=store,
        title="Validation perplexity",
    )
    (ax,) = _visible_axes(fig)
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "epoch"
    assert fig.get_suptitle() == "Validation perplexity"
    assert len(ax.get_lines()) == 3


def test_auto_log_scale_only_when_values_span_a_wide_range() -> None:
    rows = [
        {"step": s, "loss": 3.0 - 0.1 * s, "perplexity": 1000.0 / (s + 1) ** 2} for s in range(10)
    ]
    fig = plot_training_curves("r", ["loss", "perplexity"], log_scale="auto", data=rows)
    loss_ax, ppl_ax = _visible_axes(fig)
    assert loss_ax.get_yscale() == "linear"  # 3.0 .. 2.1
    assert ppl_ax.get_yscale() == "log"  # 1000 .. 10: a factor of 100
    rows = [{"step": s, "perplexity": 100.0 - 9 * s} for s in range(10)]  # 100 .. 19
    (ax,) = _visible_axes(plot_training_curves("r", "perplexity", log_scale="auto", data=rows))
    assert ax.get_yscale() == "linear"


def test_curves_from_given_rows_instead_of_the_store() -> None:
    import pandas as pd

    rows = [{"experiment_name": "x", "step": s, "loss": 1.0 / (s + 1)} for s in range(5)]
    columns = {"step": [0, 1, 2], "loss": [3.0, 2.0, 1.0]}
    for data, names in ((rows, "x"), (pd.DataFrame(rows), ["x"]), (columns, "only")):
        fig = plot_training_curves(names, "loss", data=data)
        (ax,) = _visible_axes(fig)
        assert len(ax.get_lines()) == 1
    with pytest.raises(ValueError, match="no column 'perplexity'"):
        plot_training_curves("x", "perplexity", data=rows)


def test_unknown_experiment_and_metric_are_store_errors(store: Path) -> None:
    with pytest.raises(UnknownExperimentError, match="run-d.*Did you mean"):
        plot_training_curves(["run-a", "run-d"], storage_dir=store)
    with pytest.raises(UnknownMetricError, match="perplexity"):
        plot_training_curves("run-a", "perplexty", storage_dir=store)
    with pytest.raises(ValueError, match="split"):
        plot_training_curves("run-a", split="test", storage_dir=store)


def test_best_comparison_bars_best_first(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "best.png"
    fig = plot_best_comparison("loss", storage_dir=store, save_path=out)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["run-a", "run-b", "run-c"]  # lowest best loss on top
    widths = [p.get_width() for p in ax.patches]
    assert widths == sorted(widths)
    # validation rows by default (the store's rule): the val loss at step 90 is the best
    assert widths[0] == pytest.approx(3.0 * math.exp(-90 / 30) + 1.0 + 0.2)
    assert "loss" in ax.get_title() and "lower is better" in ax.get_xlabel()
    assert out.stat().st_size > 10_000


def test_best_comparison_direction_subset_and_top(store: Path) -> None:
    with pytest.raises(ValueError, match="no experiment has a value"):
        plot_best_comparison("accuracy", storage_dir=store)  # only train rows have accuracy
    fig = plot_best_comparison("accuracy", split="train", storage_dir=store)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_yticklabels()][0] == "run-a"
    assert "higher is better" in ax.get_xlabel()

    fig = plot_best_comparison("loss", ["run-c", "run-b"], storage_dir=store)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["run-b", "run-c"]

    fig = plot_best_comparison("loss", mode="max", top=1, storage_dir=store)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["run-c"]

    with pytest.raises(ValueError, match="mode"):
        plot_best_comparison("loss", mode="lowest", storage_dir=store)


@pytest.mark.slow
def test_plots_work_headless_without_touching_pyplot(store: Path, tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "from common.visualization import plot_training_curves, plot_best_comparison\n"
        f"plot_training_curves('run-a', storage_dir={str(store)!r}, save_path={str(tmp_path)!r} "
        "+ '/a.png')\n"
        f"plot_best_comparison('loss', storage_dir={str(store)!r})\n"
        "print('pyplot' if 'matplotlib.pyplot' in sys.modules else 'clean')\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "clean"
    assert (tmp_path / "a.png").stat().st_size > 10_000
