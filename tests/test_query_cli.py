"""End-to-end tests of ``tools/query_experiments.py`` against real temporary stores.

The CLI runs in a subprocess (as a user runs it) from a foreign working directory; stores are
filled with ``save_experiment``. A few checks of the table renderer run in-process.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from common.utils import save_experiment

REPO_ROOT = Path(__file__).resolve().parent.parent
CLI = REPO_ROOT / "tools" / "query_experiments.py"
HEAVY_MODULES = (
    "pandas",
    "pyarrow",
    "matplotlib",
    "torch",
    "transformers",
    "datasets",
    "huggingface_hub",
)


# --------------------------------------------------------------------------- fixtures


def _fill(store: Path) -> None:
    """Four experiments whose best loss is NOT their last loss for every one of them."""
    runs = {
        # name: (losses by step, model, lr)
        "baseline": ([4.0, 3.0, 2.5, 2.2, 2.0, 1.9], "llm-tiny", 3e-4),
        "wide-model": ([3.8, 2.4, 1.5, 1.8, 2.6, 3.0], "llm-wide", 3e-4),  # diverged after step 2
        "lr-sweep-1e-3": ([4.2, 3.5, 3.1, 2.9, 2.8, 2.75], "llm-tiny", 1e-3),
        "lr-sweep-3e-3": ([4.4, 4.0, 3.9, 3.8, 3.7, 3.65], "llm-tiny", 3e-3),
    }
    for name, (losses, model, lr) in runs.items():
        meta = {"model": model, "training": {"lr": lr, "batch_size": 8}}
        for epoch in range(2):  # two saves per experiment: appending is the normal use
            rows = []
            for i in range(3):
                step = (epoch * 3 + i) * 100
                loss = losses[epoch * 3 + i]
                rows.append(
                    {
                        "step": step,
                        "epoch": epoch,
                        "split": "train",
                        "loss": loss,
                        "perplexity": 2.718281828459045**loss,
                        "accuracy": 1.0 / loss,
                    }
                )
            rows.append({"step": (epoch * 3 + 2) * 100, "epoch": epoch, "split": "val",
                         "loss": loss + 0.1, "perplexity": 2.718281828459045 ** (loss + 0.1),
                         "accuracy": 1.0 / (loss + 0.1)})  # fmt: skip
            save_experiment(name, rows, meta, storage_dir=store)


@pytest.fixture(scope="module")
def assets_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An assets tree whose store (``outputs/experiments``) holds four experiments."""
    root = tmp_path_factory.mktemp("cli_assets")
    store = root / "outputs" / "experiments"
    store.mkdir(parents=True)
    _fill(store)
    return root


@pytest.fixture(scope="module")
def store(assets_root: Path) -> Path:
    return assets_root / "outputs" / "experiments"


def run_cli(
    *args: str,
    cwd: Path | None = None,
    columns: int = 120,
    lines: int = 50,
    env: dict[str, str] | None = None,
    python_flags: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": str(columns), "LINES": str(lines), **(env or {})}
    full_env.pop("QUERY_EXPERIMENTS_DEBUG", None)
    return subprocess.run(
        [sys.executable, *python_flags, str(CLI), *args],
        capture_output=True,
        text=True,
        cwd=cwd or Path("/"),
        env=full_env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert (
        proc.returncode == 0
    ), f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc.stdout


def user_error(proc: subprocess.CompletedProcess[str]) -> str:
    """Exit status 2, a message on stderr, no traceback, nothing on stdout."""
    assert (
        proc.returncode == 2
    ), f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("query_experiments: error: ")
    assert proc.stdout == ""
    return proc.stderr


def load_cli_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("query_experiments_cli", CLI)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def store_fingerprint(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


# --------------------------------------------------------------------------- each action


def test_help_describes_every_option() -> None:
    out = ok(run_cli("--help"))
    for option in ("--sql", "--list", "--summary", "--best", "--top", "--mode", "--compare",
                   "--dir", "--format", "--plot", "--max-rows", "--metrics"):  # fmt: skip
        assert option in out
    assert "experiment_summary" in out


def test_list_shows_every_experiment_in_aligned_columns(store: Path) -> None:
    out = ok(run_cli("--list", "--dir", str(store)))
    lines = out.splitlines()
    assert lines[0].split() == [
        "experiment_name",
        "rows",
        "first_saved_at",
        "last_saved_at",
        "tags",
        "note",
    ]
    assert set(lines[1]) <= {"-", " "}
    body = lines[2:]
    assert [line.split()[0] for line in body] == [
        "baseline",
        "lr-sweep-1e-3",
        "lr-sweep-3e-3",
        "wide-model",
    ]
    assert all(line.split()[1] == "8" for line in body)  # 2 saves x 4 rows
    # columns are aligned: the 'rows' numbers end where the header's 'rows' ends
    end = lines[0].index("rows") + len("rows")
    assert all(line[end - 1] == "8" for line in body)


def test_default_store_comes_from_research_assets_dir(assets_root: Path) -> None:
    out = ok(run_cli("--list", env={"RESEARCH_ASSETS_DIR": str(assets_root)}))
    assert "wide-model" in out


def test_runs_from_the_repository_root_by_relative_path(store: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "tools/query_experiments.py", "--list", "--dir", str(store)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert "baseline" in ok(proc)


def test_summary_has_best_value_of_each_metric(store: Path) -> None:
    rows = json.loads(
        ok(run_cli("--summary", "--split", "all", "--dir", str(store), "--format", "json"))
    )
    by_name = {r["experiment_name"]: r for r in rows}
    assert set(by_name) == {"baseline", "wide-model", "lr-sweep-1e-3", "lr-sweep-3e-3"}
    assert by_name["wide-model"]["best_loss"] == pytest.approx(1.5)
    assert by_name["wide-model"]["best_accuracy"] == pytest.approx(1 / 1.5)
    assert by_name["baseline"]["last_step"] == 500


def test_best_ranks_by_the_best_value_over_each_history(store: Path) -> None:
    out = ok(
        run_cli(
            "--best",
            "loss",
            "--top",
            "2",
            "--split",
            "all",
            "--dir",
            str(store),
            "--format",
            "json",
        )
    )
    rows = json.loads(out)
    # wide-model's last loss (3.0) is its worst, but its minimum (1.5) is the best of all
    assert [r["experiment_name"] for r in rows] == ["wide-model", "baseline"]
    assert rows[0]["loss"] == pytest.approx(1.5)
    assert rows[0]["step"] == 200
    assert [r["rank"] for r in rows] == [1, 2]


def test_best_accuracy_is_a_maximum_and_mode_overrides(store: Path) -> None:
    auto = json.loads(
        ok(run_cli("--best", "accuracy", "--split", "all", "--dir", str(store), "--format", "json"))
    )
    assert auto[0]["experiment_name"] == "wide-model"
    assert auto[0]["accuracy"] == pytest.approx(1 / 1.5)
    assert len(auto) == 4  # --top defaults to 5; there are 4 experiments
    worst = json.loads(
        ok(run_cli("--best", "loss", "--mode", "max", "--top", "1", "--dir", str(store),
                   "--format", "json", "--split", "all"))  # fmt: skip
    )
    assert [r["experiment_name"] for r in worst] == ["lr-sweep-3e-3"]
    assert worst[0]["loss"] == pytest.approx(4.4)


def test_compare_puts_experiments_side_by_side(store: Path) -> None:
    out = ok(
        run_cli(
            "--compare",
            "baseline",
            "wide-model",
            "--split",
            "all",
            "--dir",
            str(store),
            "--format",
            "csv",
        )
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["experiment_name"] for r in rows] == ["baseline", "wide-model"]
    assert float(rows[1]["loss_best"]) == pytest.approx(1.5)
    # value at the last step (500: train 3.0 and val 3.1 share it)
    assert round(float(rows[1]["loss_last"]), 6) in (3.0, 3.1)
    assert rows[0]["model"] == "llm-tiny" and rows[1]["model"] == "llm-wide"  # differing metadata


def test_compare_table_of_few_wide_rows_is_transposed_to_fit(store: Path) -> None:
    out = ok(run_cli("--compare", "baseline", "wide-model", "--dir", str(store), columns=60))
    lines = out.splitlines()
    assert lines[0].split() == ["experiment_name", "baseline", "wide-model"]
    assert any(line.split()[:1] == ["loss_best"] for line in lines)
    assert all(len(line) <= 60 for line in lines)


# --------------------------------------------------------------------------- formats and fitting


def test_sql_in_every_format(store: Path) -> None:
    sql = (
        "SELECT experiment_name, min(loss) AS best_loss, count(*) AS n FROM experiments "
        "GROUP BY 1 ORDER BY best_loss"
    )
    table = ok(run_cli("--sql", sql, "--dir", str(store)))
    assert table.splitlines()[0].split() == ["experiment_name", "best_loss", "n"]
    assert table.splitlines()[2].split() == ["wide-model", "1.5000", "8"]

    rows = list(csv.reader(io.StringIO(ok(run_cli("--sql", sql, "--dir", str(store),
                                                   "--format", "csv")))))  # fmt: skip
    assert rows[0] == ["experiment_name", "best_loss", "n"]
    assert rows[1] == ["wide-model", "1.5", "8"]
    assert len(rows) == 5

    data = json.loads(ok(run_cli("--sql", sql, "--dir", str(store), "--format", "json")))
    assert data[0] == {"experiment_name": "wide-model", "best_loss": 1.5, "n": 8}

    md = ok(run_cli("--sql", sql, "--dir", str(store), "--format", "markdown")).splitlines()
    assert md[0] == "| experiment_name | best_loss | n |"
    assert md[1] == "|---|---:|---:|"
    assert md[2] == "| wide-model | 1.5000 | 8 |"


def test_json_and_csv_carry_timestamps_and_metadata_columns(store: Path) -> None:
    sql = "SELECT saved_at, training__lr, git_dirty FROM experiments LIMIT 1"
    rec = json.loads(ok(run_cli("--sql", sql, "--dir", str(store), "--format", "json")))[0]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", rec["saved_at"])
    assert rec["training__lr"] in (3e-4, 1e-3, 3e-3)


def test_long_table_is_cut_with_a_note_but_csv_and_json_print_everything(store: Path) -> None:
    sql = "SELECT experiment_name, step, loss FROM experiments ORDER BY experiment_name, step"
    table = ok(run_cli("--sql", sql, "--dir", str(store), "--max-rows", "5"))
    lines = table.splitlines()
    assert len(lines) == 2 + 5 + 1
    assert "27 more rows not shown (32 in all" in lines[-1]

    # without --max-rows the table fits the terminal height
    short = ok(run_cli("--sql", sql, "--dir", str(store), lines=20)).splitlines()
    assert len(short) <= 20
    assert "more rows not shown" in short[-1]

    assert len(ok(run_cli("--sql", sql, "--dir", str(store), "--format", "csv")).splitlines()) == 33
    assert len(json.loads(ok(run_cli("--sql", sql, "--dir", str(store), "--format", "json")))) == 32
    everything = ok(run_cli("--sql", sql, "--dir", str(store), "--max-rows", "0", lines=10))
    assert "not shown" not in everything and len(everything.splitlines()) == 34


def test_wide_table_fits_the_terminal_width_and_names_hidden_columns(store: Path) -> None:
    sql = "SELECT * FROM experiments"
    out = ok(run_cli("--sql", sql, "--dir", str(store), "--max-rows", "12", columns=70))
    lines = out.splitlines()
    assert all(len(line) <= 70 for line in lines), out
    assert lines[0].startswith("experiment_name")
    assert "more columns not shown:" in out
    assert "git_commit" in out  # named among the hidden columns


# --------------------------------------------------------------------------- empty store, errors


def test_empty_store_explains_how_experiments_get_there() -> None:
    # the autouse fixture points RESEARCH_ASSETS_DIR at a fresh, empty assets folder
    proc = run_cli("--list")
    assert proc.returncode == 0
    assert "No experiments in" in proc.stderr
    assert "save_experiment" in proc.stderr and "train" in proc.stderr
    assert proc.stdout == ""
    assert json.loads(ok(run_cli("--best", "loss", "--format", "json"))) == []
    # SQL still runs, and a failing query says why it probably failed
    assert ok(run_cli("--sql", "SELECT 42 AS answer")).split() == ["answer", "------", "42"]
    err = user_error(run_cli("--sql", "SELECT loss FROM experiments"))
    assert "loss" in err and "The store is empty" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--sql", "SELEC experiment_name FROM experiments"],
         ["syntax error", "Available tables", "experiment_summary", "loss (DOUBLE)"]),
        (["--sql", "SELECT no_such_column FROM experiments"],
         ["no_such_column", "Available tables", "experiments", "perplexity (DOUBLE)"]),
        (["--best", "perplexty"], ["unknown metric 'perplexty'", "perplexity", "accuracy"]),
        (["--compare", "baseline", "wide-modle"],
         ["unknown experiment 'wide-modle'", "Did you mean", "'wide-model'"]),
        (["--compare", "baseline", "--metrics", "nope"], ["unknown metric 'nope'", "loss"]),
        (["--best", "model"], ["not a numeric metric", "loss"]),
        (["--best", "step"], ["lower or higher", "--mode"]),
    ],
)  # fmt: skip
def test_user_errors_exit_2_with_one_clear_message(
    store: Path, args: list[str], expected: list[str]
) -> None:
    err = user_error(run_cli(*args, "--dir", str(store)))
    for text in expected:
        assert text in err


def test_unreadable_or_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    err = user_error(run_cli("--list", "--dir", str(tmp_path / "nope")))
    assert "no experiment store" in err and "nope" in err
    a_file = tmp_path / "file.parquet"
    a_file.write_text("x")
    assert "not a folder" in user_error(run_cli("--list", "--dir", str(a_file)))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "one of the arguments"),
        (["--list", "--top", "3"], "--top goes with --best"),
        (["--list", "--plot", "x.png"], "--plot goes with --compare or --best"),
        (["--best", "loss", "--plot", "x.jpg"], "PNG"),
        (["--best", "loss", "--top", "0"], "at least 1"),
        (["--list", "--format", "xml"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_without_usage_dump(
    store: Path, args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = load_cli_module()
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*args, "--dir", str(store)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("query_experiments: error: ") and expected in err
    assert len(err.strip().splitlines()) == 1


def test_bad_arguments_in_a_real_process(store: Path) -> None:
    err = user_error(run_cli("--summary", "--mode", "max", "--dir", str(store)))
    assert "--mode goes with --best" in err and "usage:" not in err


def test_damaged_file_in_store_prints_the_answer_then_exits_3(tmp_path: Path) -> None:
    save_experiment("only", [{"step": 1, "loss": 2.0}], storage_dir=tmp_path)
    (tmp_path / "saves" / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    (tmp_path / "s-old.parquet").write_bytes(b"PAR1 an old-format file PAR1")
    proc = run_cli("--list", "--dir", str(tmp_path))
    assert proc.returncode == 3 and "only" in proc.stdout and "Traceback" not in proc.stderr
    assert "warning" in proc.stderr and "broken.parquet" in proc.stderr
    assert "s-old.parquet" in proc.stderr and "--repair" in proc.stderr


# --------------------------------------------------------------------------- read-only SQL


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM experiments",
        "COPY (SELECT 1 AS x) TO '{store}/saves/evil.parquet' (FORMAT parquet)",
        "COPY (SELECT * FROM experiments) TO '{outside}/leak.csv'",
        "SELECT 1; COPY (SELECT 1) TO '{outside}/two.csv'",
    ],
)
def test_sql_cannot_change_or_write_anything(store: Path, tmp_path: Path, statement: str) -> None:
    before = store_fingerprint(store)
    sql = statement.format(store=store, outside=tmp_path)
    err = user_error(run_cli("--sql", sql, "--dir", str(store)))
    assert "read-only" in err or "not allowed" in err
    assert store_fingerprint(store) == before
    assert list(tmp_path.iterdir()) == []


def test_sql_write_attempts_in_process(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """More statements through the CLI's main() (same code path, without process start-up)."""
    cli = load_cli_module()
    before = store_fingerprint(store)
    statements = [
        "DROP VIEW experiments",
        f"ATTACH '{tmp_path}/new.db' AS x",
        "INSERT INTO experiments VALUES ('x')",
        "UPDATE experiments SET loss = 0",
        "CREATE TABLE t AS SELECT * FROM experiments",
        "CREATE OR REPLACE VIEW experiments AS SELECT 1",
        f"EXPORT DATABASE '{tmp_path}/dump'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "PRAGMA enable_profiling",
        "CALL pragma_version()",
        f"SELECT * FROM read_text('{store}/../../../../etc/passwd')",
        f"SELECT * FROM read_csv('{tmp_path}/x.csv')",
        "EXPLAIN ANALYZE DELETE FROM experiments",
    ]
    for sql in statements:
        code = cli.main(["--sql", sql, "--dir", str(store)])
        captured = capsys.readouterr()
        assert code == 2, sql
        assert captured.err.startswith("query_experiments: error: "), sql
        assert "Traceback" not in captured.err
    assert store_fingerprint(store) == before
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- start-up cost


def _imported_modules(importtime_stderr: str) -> set[str]:
    names = set()
    for line in importtime_stderr.splitlines():
        m = re.match(r"import time:\s+\d+\s+\|\s+\d+\s+\|\s+(\S+)", line)
        if m:
            names.add(m.group(1).split(".")[0])
    return names


@pytest.mark.parametrize(
    "args",
    [["--list"], ["--best", "perplexity", "--top", "3"], ["--sql", "SELECT 1"],
     ["--compare", "baseline", "wide-model", "--format", "json"]],
)  # fmt: skip
def test_query_path_never_imports_pandas_or_ml_libraries(store: Path, args: list[str]) -> None:
    proc = run_cli(*args, "--dir", str(store), python_flags=("-X", "importtime"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = _imported_modules(proc.stderr)
    assert "duckdb" in modules  # the import log was parsed
    assert modules.isdisjoint(HEAVY_MODULES), sorted(modules & set(HEAVY_MODULES))


# --------------------------------------------------------------------------- --plot


@pytest.mark.slow
def test_plot_writes_png_of_compared_and_best_experiments(store: Path, tmp_path: Path) -> None:
    target = tmp_path / "plots" / "compare.png"
    proc = run_cli("--compare", "baseline", "wide-model", "--metrics", "loss", "accuracy",
                   "--plot", str(target), "--dir", str(store), "--format", "csv")  # fmt: skip
    assert "baseline" in ok(proc)
    assert f"wrote {target}" in proc.stderr
    _assert_png(target, min_width=800)

    best = tmp_path / "best"  # no suffix: .png is added
    proc = run_cli("--best", "perplexity", "--top", "3", "--plot", str(best), "--dir", str(store))
    ok(proc)
    _assert_png(best.with_suffix(".png"), min_width=500)


def _assert_png(path: Path, min_width: int) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= min_width and height >= 300
    assert len(data) > 20_000  # real content, not a blank canvas


# --------------------------------------------------------------------------- renderer (in-process)


def test_table_renderer_formats_numbers_per_column() -> None:
    cli = load_cli_module()
    text = cli.render_table(
        ["name", "loss", "lr", "steps", "flag", "note"],
        [
            ("a", 2.345678, 3e-4, 1000, True, None),
            ("bb", 10.5, 1e-5, 20, False, "x" * 100),
            ("c", float("nan"), None, None, None, "ok"),
        ],
        width=200,
    )
    lines = text.splitlines()
    assert lines[2].split()[:5] == ["a", "2.3457", "0.0003", "1000", "true"]
    assert lines[3].split()[:4] == ["bb", "10.5000", "1e-05", "20"]
    assert "nan" in lines[4]
    assert "..." in lines[3] and len(lines[3]) < 120  # long text clipped
    # numbers right-aligned: the loss column ends at the same place on every row
    ends = {line.index(v) + len(v) for line, v in zip(lines[2:], ["2.3457", "10.5000", "nan"])}
    assert len(ends) == 1


def test_table_renderer_empty_result_keeps_header() -> None:
    cli = load_cli_module()
    text = cli.render_table(["experiment_name", "loss"], [], width=80)
    assert text.splitlines()[0].split() == ["experiment_name", "loss"]
    assert "(no rows)" in text


# --------------------------------------------------------------------------- splits and changes


def test_best_and_summary_rank_validation_rows_by_default_and_say_so(store: Path) -> None:
    best = run_cli("--best", "loss", "--top", "4", "--dir", str(store), "--format", "json")
    rows = json.loads(ok(best))
    # val rows only: wide-model's best val loss is 1.6 (its train minimum 1.5 does not count)
    assert rows[0]["experiment_name"] == "wide-model"
    assert rows[0]["loss"] == pytest.approx(1.6)
    assert "split: val (default" in best.stderr
    table = ok(run_cli("--best", "loss", "--dir", str(store)))
    assert "split: val" in table
    train = json.loads(
        ok(run_cli("--best", "loss", "--split", "train", "--dir", str(store), "--format", "json"))
    )
    assert train[0]["loss"] == pytest.approx(1.5)
    summary = json.loads(ok(run_cli("--summary", "--dir", str(store), "--format", "json")))
    by_name = {r["experiment_name"]: r for r in summary}
    assert by_name["wide-model"]["best_loss"] == pytest.approx(1.6)
    assert by_name["wide-model"]["rows"] == 8  # every row is counted, whatever the split
    assert not any(k.startswith("best_") and "elapsed" in k for k in summary[0])
    err = user_error(run_cli("--best", "loss", "--split", "test", "--dir", str(store)))
    assert "no rows with split 'test'" in err and "train, val" in err


def test_summary_leaves_out_bookkeeping_columns(tmp_path: Path) -> None:
    rows = [{"step": 1, "split": "val", "loss": 2.0, "elapsed_s": 3.0, "lr": 1e-3}]
    save_experiment("run", rows, storage_dir=tmp_path)
    summary = json.loads(ok(run_cli("--summary", "--dir", str(tmp_path), "--format", "json")))
    keys = set(summary[0])
    assert "best_loss" in keys and "best_elapsed_s" not in keys and "best_lr" not in keys


def test_delete_asks_on_a_terminal_and_rename_keeps_rows(tmp_path: Path) -> None:
    for name in ("keep", "drop", "old"):
        save_experiment(name, [{"step": 1, "loss": 1.0}], storage_dir=tmp_path)
    err = user_error(run_cli("--delete", "drop", "--dir", str(tmp_path)))
    assert "--yes" in err
    out = ok(run_cli("--delete", "drop", "--yes", "--dir", str(tmp_path)))
    assert "deleted 'drop' (1 rows)" in out
    assert "renamed 'old' to 'new'" in ok(run_cli("--rename", "old", "new", "--dir", str(tmp_path)))
    listing = json.loads(ok(run_cli("--list", "--dir", str(tmp_path), "--format", "json")))
    assert [r["experiment_name"] for r in listing] == ["keep", "new"]
    err = user_error(run_cli("--rename", "keep", "new", "--dir", str(tmp_path)))
    assert "exists" in err
    err = user_error(run_cli("--delete", "nope", "--yes", "--dir", str(tmp_path)))
    assert "unknown experiment 'nope'" in err
    assert "OK" in ok(run_cli("--check", "--dir", str(tmp_path)))
