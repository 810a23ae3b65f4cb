"""Experiment store API: real DuckDB over real Parquet files in temporary folders."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import common.experiments as store
from common.experiments import (
    FLATTEN_SEPARATOR,
    ExperimentStoreError,
    InvalidExperimentNameError,
    InvalidResultsError,
    MetricDirectionError,
    QueryError,
    ReadOnlyViolation,
    StoreNotFoundError,
    UnknownExperimentError,
    UnknownMetricError,
)
from common.utils.provenance import git_info, hostname  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def curve(n: int, start: float, slope: float) -> pd.DataFrame:
    steps = list(range(0, n * 10, 10))
    loss = [start - slope * i for i in range(n)]
    return pd.DataFrame(
        {
            "step": steps,
            "epoch": [s // 20 for s in steps],
            "loss": loss,
            "perplexity": [math.exp(v) for v in loss],
            "accuracy": [0.1 + 0.05 * i for i in range(n)],
        }
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    path.mkdir()
    return path


@pytest.fixture
def filled(root: Path) -> Path:
    """Three experiments: 'baseline' (best perplexity), 'wide' (best accuracy), 'small'."""
    meta = {"model": "llm-tiny", "training": {"lr": 1e-3, "batch_size": 8}, "seed": 1}
    store.save_experiment("baseline", curve(5, 3.0, 0.3), meta, storage_dir=root)
    wide = {"model": "llm-wide", "training": {"lr": 3e-4, "batch_size": 8}, "seed": 1}
    frame = curve(5, 3.5, 0.2)
    frame["accuracy"] = [0.2, 0.4, 0.9, 0.5, 0.6]
    store.save_experiment("wide", frame, wide, storage_dir=root)
    store.save_experiment("small", curve(3, 4.0, 0.1), {"model": "llm-tiny"}, storage_dir=root)
    return root


def files(root: Path) -> dict[str, tuple[int, int]]:
    """Every data file of the store (saves and merged files) with its size and mtime."""
    found = [p for d in ("saves", "merged") for p in (root / d).glob("*.parquet")]
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in found}


def run_sql(sql: str, storage_dir: Path) -> store.QueryResult:
    with store.Store(storage_dir) as opened:
        return opened.sql(sql)


# ------------------------------------------------------------------------------------ saving


def test_save_roundtrip_with_metadata_and_provenance(root: Path) -> None:
    path = store.save_experiment(
        "run-1",
        curve(4, 2.0, 0.1),
        {"model": "llm-tiny", "training": {"lr": 1e-3, "schedule": {"warmup": 10}}},
        storage_dir=root,
    )
    assert path.parent.parent == root.resolve() and path.is_file() and path.suffix == ".parquet"
    frame = store.query_experiments(
        "SELECT * FROM experiments WHERE model = 'llm-tiny' ORDER BY step", storage_dir=root
    )
    assert len(frame) == 4
    assert frame["step"].tolist() == [0, 10, 20, 30]
    assert set(frame["experiment_name"]) == {"run-1"}
    assert frame[f"training{FLATTEN_SEPARATOR}lr"].tolist() == [1e-3] * 4
    assert frame["training__schedule__warmup"].tolist() == [10] * 4
    for column in ("saved_at", "git_commit", "git_dirty", "host"):
        assert column in frame.columns
    assert frame["host"].iloc[0] == hostname()
    saved = frame["saved_at"].iloc[0].to_pydatetime()
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert abs((now - saved).total_seconds()) < 120  # stored as UTC
    assert frame["git_commit"].iloc[0] == git_info()["git_commit"]
    with store.connect(root) as con:
        types = dict(
            con.execute("SELECT column_name, column_type FROM experiment_columns").fetchall()
        )
    assert types["saved_at"] == "TIMESTAMP" and types["git_dirty"] == "BOOLEAN"


def test_results_forms_and_nan(root: Path) -> None:
    store.save_experiment(
        "rows", [{"step": 1, "loss": 2.0}, {"step": 2, "acc": 0.5}], storage_dir=root
    )
    store.save_experiment("cols", {"step": [1, 2], "loss": [1.0, float("nan")]}, storage_dir=root)
    store.save_experiment("scalar", {"step": 7, "loss": 0.25}, storage_dir=root)
    with store.connect(root) as con:
        got = con.execute(
            "SELECT experiment_name, step, loss, acc FROM experiments ORDER BY 1, 2"
        ).fetchall()
    assert got == [
        ("cols", 1, 1.0, None),
        ("cols", 2, None, None),  # NaN is stored as NULL
        ("rows", 1, 2.0, None),
        ("rows", 2, None, 0.5),
        ("scalar", 7, 0.25, None),
    ]


def test_append_never_rewrites_and_overwrite_replaces(root: Path) -> None:
    store.save_experiment("exp", curve(2, 2.0, 0.1), storage_dir=root)
    store.save_experiment("other", curve(2, 2.0, 0.1), storage_dir=root)
    before = files(root)
    store.save_experiment("exp", pd.DataFrame({"step": [20], "loss": [1.5]}), storage_dir=root)
    after = files(root)
    assert all(after[name] == stat for name, stat in before.items())  # nothing rewritten
    assert len(after) == len(before) + 1

    def rows(name: str) -> list[tuple]:
        return run_sql(
            f"SELECT step, loss FROM experiments WHERE experiment_name = '{name}' ORDER BY step",
            root,
        ).rows

    assert rows("exp") == [(0, 2.0), (10, 1.9), (20, 1.5)]
    store.save_experiment("exp", {"step": [0], "loss": [9.0]}, storage_dir=root, mode="overwrite")
    assert rows("exp") == [(0, 9.0)]
    store.save_experiment("exp", {"step": [5], "loss": [8.0]}, storage_dir=root)
    assert rows("exp") == [(0, 9.0), (5, 8.0)]
    assert rows("other") == [(0, 2.0), (10, 1.9)]
    store.compact_store(root)
    assert rows("exp") == [(0, 9.0), (5, 8.0)]
    assert rows("other") == [(0, 2.0), (10, 1.9)]
    assert len(files(root)) == 1


def test_overwrite_after_compaction_filters_old_rows(root: Path) -> None:
    for i in range(3):
        store.save_experiment("a", {"step": [i], "loss": [float(i)]}, storage_dir=root)
        store.save_experiment("b", {"step": [i], "loss": [float(i)]}, storage_dir=root)
    store.compact_store(root)
    store.save_experiment("a", {"step": [0], "loss": [5.0]}, storage_dir=root, mode="overwrite")
    query = "SELECT experiment_name, step, loss FROM experiments ORDER BY 1, 2"
    expected = [("a", 0, 5.0), ("b", 0, 0.0), ("b", 1, 1.0), ("b", 2, 2.0)]
    assert run_sql(query, storage_dir=root).rows == expected
    store.compact_store(root)
    assert run_sql(query, storage_dir=root).rows == expected


@pytest.mark.parametrize(
    "name", ["", "a/b", "..", "../etc", "a\\b", "x\x00y", "tab\there", " padded", "a" * 201]
)
def test_unsafe_names_are_refused(root: Path, name: str) -> None:
    with pytest.raises(InvalidExperimentNameError, match="invalid experiment name") as info:
        store.save_experiment(name, {"loss": [1.0]}, storage_dir=root)
    assert isinstance(info.value, ValueError)
    assert list(root.iterdir()) == []


def test_invalid_results_are_refused(root: Path) -> None:
    with pytest.raises(InvalidResultsError, match="no rows"):
        store.save_experiment("x", pd.DataFrame({"loss": []}), storage_dir=root)
    with pytest.raises(InvalidResultsError, match="reserved"):
        store.save_experiment("x", {"saved_at": [1]}, storage_dir=root)
    with pytest.raises(InvalidResultsError, match="reserved"):
        store.save_experiment("x", {"loss": [1.0]}, {"experiment_name": "y"}, storage_dir=root)
    with pytest.raises(InvalidResultsError, match="also result columns"):
        store.save_experiment("x", {"lr": [1.0]}, {"lr": 0.1}, storage_dir=root)
    with pytest.raises(InvalidResultsError, match="twice"):
        store.save_experiment("x", [{"Loss": 1.0, "loss": 2.0}], storage_dir=root)
    with pytest.raises(InvalidResultsError, match="different lengths"):
        store.save_experiment("x", {"a": [1, 2], "b": [1]}, storage_dir=root)
    with pytest.raises(ValueError, match="mode"):
        store.save_experiment("x", {"a": [1]}, storage_dir=root, mode="replace")
    assert list(root.iterdir()) == []


def test_flatten_metadata() -> None:
    @dataclasses.dataclass
    class Training:
        lr: float = 1e-3
        betas: tuple = (0.9, 0.95)
        note: str | None = None

    flat = store.flatten_metadata(
        {"model": "m", "training": Training(), "data": {"name": "ts", "extra": {}}, "x": None}
    )
    assert flat == {
        "model": "m",
        "training__lr": 1e-3,
        "training__betas": "[0.9, 0.95]",
        "data__name": "ts",
    }
    with pytest.raises(InvalidResultsError, match="twice"):
        store.flatten_metadata({"a__b": 1, "a": {"b": 2}})


def test_schema_evolution(root: Path) -> None:
    store.save_experiment(
        "ints", {"step": [1, 2], "loss": [3, 2], "acc": [0.1, 0.2]}, storage_dir=root
    )
    store.save_experiment("floats", {"step": [1], "loss": [2.5], "bleu": [30.0]}, storage_dir=root)
    store.save_experiment(
        "seed-str", {"step": [1], "loss": [1.5]}, {"seed": "abc"}, storage_dir=root
    )
    store.save_experiment("seed-int", {"step": [1], "loss": [1.0]}, {"seed": "3"}, storage_dir=root)
    query = "SELECT experiment_name, step, loss, acc, bleu FROM experiments ORDER BY 1, 2"
    expected = [
        ("floats", 1, 2.5, None, 30.0),
        ("ints", 1, 3.0, 0.1, None),
        ("ints", 2, 2.0, 0.2, None),
        ("seed-int", 1, 1.0, None, None),
        ("seed-str", 1, 1.5, None, None),
    ]
    assert run_sql(query, storage_dir=root).rows == expected
    with store.connect(root) as con:
        types = dict(
            con.execute("SELECT column_name, column_type FROM experiment_columns").fetchall()
        )
        assert types["loss"] == "DOUBLE"  # int and float unified
        assert set(store.metric_columns(con)) == {"step", "loss", "acc", "bleu"}
    best = store.best_experiments("loss", top=10, storage_dir=root).df()
    assert best["experiment_name"].tolist() == ["seed-int", "seed-str", "ints", "floats"]
    store.compact_store(root)
    assert run_sql(query, storage_dir=root).rows == expected


# ------------------------------------------------------------------------------------ queries


def test_list_summary_and_summary_view(filled: Path) -> None:
    listing = store.list_experiments(filled).df()
    assert listing["experiment_name"].tolist() == ["baseline", "small", "wide"]
    assert listing["rows"].tolist() == [5, 3, 5]
    assert (listing["first_saved_at"] <= listing["last_saved_at"]).all()
    summary = store.summarize_experiments(filled).df().set_index("experiment_name")
    assert summary.loc["baseline", "last_step"] == 40
    assert summary.loc["baseline", "best_loss"] == pytest.approx(3.0 - 4 * 0.3)
    assert summary.loc["wide", "best_accuracy"] == pytest.approx(0.9)
    view = store.query_experiments(
        "SELECT * FROM experiment_summary ORDER BY experiment_name", storage_dir=filled
    )
    assert view["rows"].tolist() == [5, 3, 5]
    assert view["model"].tolist() == ["llm-tiny", "llm-tiny", "llm-wide"]
    assert view["training__lr"].tolist()[0] == 1e-3 and pd.isna(view["training__lr"][1])
    for column in ("first_saved_at", "last_saved_at", "git_commit", "host"):
        assert column in view.columns


def test_best_directions_and_mode(filled: Path) -> None:
    best = store.best_experiments("perplexity", top=2, storage_dir=filled).df()
    assert best.columns.tolist() == [
        "rank",
        "experiment_name",
        "perplexity",
        "step",
        "epoch",
        "rows",
    ]
    assert best["experiment_name"].tolist() == ["baseline", "wide"]
    assert best["perplexity"][0] == pytest.approx(math.exp(3.0 - 4 * 0.3))
    assert best["step"][0] == 40
    acc = store.best_experiments("accuracy", storage_dir=filled).df()
    assert acc["experiment_name"].tolist() == ["wide", "baseline", "small"]
    assert acc["step"][0] == 20  # where the maximum was reached
    worst = store.best_experiments("accuracy", mode="min", top=1, storage_dir=filled).df()
    assert worst["experiment_name"].tolist() == ["baseline"]
    with store.Store(filled) as opened:
        result = store.best_experiments("loss", top=1, store=opened)
        assert result.columns[:3] == ["rank", "experiment_name", "loss"]
        assert result.rows[0][:2] == (1, "baseline")


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("loss", "min"), ("val_loss", "min"), ("perplexity", "min"), ("bits_per_byte", "min"),
        ("eval/bpb", "min"), ("grad_norm", "min"), ("error_rate", "min"), ("accuracy", "max"),
        ("top1_acc", "max"), ("f1", "max"), ("bleu", "max"), ("val_score", "max"),
    ],
)  # fmt: skip
def test_metric_direction(metric: str, direction: str) -> None:
    assert store.metric_direction(metric) == direction


def test_metric_direction_unknown(filled: Path) -> None:
    with pytest.raises(MetricDirectionError, match="mode='min' or mode='max'"):
        store.metric_direction("step")
    with pytest.raises(MetricDirectionError):
        store.best_experiments("epoch", storage_dir=filled)
    assert store.best_experiments("epoch", mode="max", top=1, storage_dir=filled).rows[0][2] == 2


def test_unknown_metric_lists_metrics(filled: Path) -> None:
    with pytest.raises(UnknownMetricError) as info:
        store.best_experiments("perplexty", storage_dir=filled)
    message = str(info.value)
    assert "unknown metric 'perplexty'" in message and "Did you mean 'perplexity'" in message
    assert "loss" in message and "accuracy" in message
    with pytest.raises(UnknownMetricError, match="not a numeric metric"):
        store.best_experiments("model", storage_dir=filled)
    assert isinstance(info.value, ExperimentStoreError)


def test_compare(filled: Path) -> None:
    frame = store.compare_experiments(["wide", "baseline"], storage_dir=filled).df()
    assert frame["experiment_name"].tolist() == ["wide", "baseline"]
    row = frame.set_index("experiment_name").loc["baseline"]
    assert row["loss_last"] == pytest.approx(3.0 - 4 * 0.3)
    assert row["accuracy_best"] == pytest.approx(0.3)
    assert row["last_step"] == 40
    assert "model" in frame.columns and "training__lr" in frame.columns  # they differ
    assert "seed" not in frame.columns and "training__batch_size" not in frame.columns  # equal
    only = store.compare_experiments(
        ["baseline", "small"], metrics=["loss"], storage_dir=filled
    ).df()
    assert [c for c in only.columns if c.startswith(("loss", "accuracy"))] == [
        "loss_last",
        "loss_best",
    ]


def test_compare_unknown_experiment_suggests(filled: Path) -> None:
    with pytest.raises(UnknownExperimentError, match="Did you mean 'baseline'"):
        store.compare_experiments(["baselin", "wide"], storage_dir=filled)
    with pytest.raises(UnknownMetricError):
        store.compare_experiments(["wide"], metrics=["nope"], storage_dir=filled)


def test_empty_store(root: Path) -> None:
    with store.connect(root) as con:
        assert store.experiment_names(con) == []

        assert store.metric_columns(con) == []
        assert con.execute("SELECT count(*) FROM experiment_summary").fetchone() == (0,)
    assert store.query_experiments("SELECT * FROM experiments", storage_dir=root).empty
    assert store.list_experiments(root).rows == []
    with pytest.raises(UnknownMetricError, match="store is empty"):
        store.best_experiments("loss", storage_dir=root)


def test_missing_store(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="does not exist"):
        store.connect(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreNotFoundError, match="not a folder"):
        store.list_experiments(tmp_path / "file")


def test_default_store_is_the_assets_folder(isolated_assets: Path) -> None:
    path = store.save_experiment("default", {"loss": [1.0]})
    assert path.parent.parent == (isolated_assets / "outputs" / "experiments").resolve()
    assert store.list_experiments().df()["experiment_name"].tolist() == ["default"]


# ------------------------------------------------------------------------------ read-only SQL

REFUSED = [
    "COPY experiments TO '{out}/copy.csv'",
    "COPY (SELECT * FROM experiments) TO '{root}/saves/evil.parquet' (FORMAT parquet)",
    "CREATE TABLE t AS SELECT * FROM experiments",
    "INSERT INTO experiments VALUES ('x')",
    "DELETE FROM experiments",
    "UPDATE experiments SET loss = 0",
    "DROP VIEW experiments",
    "ATTACH '{out}/x.db' AS x",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "PRAGMA enable_profiling",
    "EXPORT DATABASE '{out}/dump'",
    "CALL checkpoint()",
    "EXPLAIN ANALYZE COPY experiments TO '{out}/e.csv'",
    "SELECT 1; COPY experiments TO '{out}/two.csv'",
]


@pytest.mark.parametrize("template", REFUSED)
def test_readonly_guard_refuses_writes(filled: Path, tmp_path: Path, template: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    sql = template.format(out=out, root=filled)
    before = files(filled)
    with pytest.raises(ReadOnlyViolation, match="not allowed|one statement"):
        store.query_experiments(sql, storage_dir=filled)
    with store.Store(filled) as st, pytest.raises(ReadOnlyViolation):
        st.sql(sql)
    assert files(filled) == before
    assert list(out.iterdir()) == []


def test_readonly_connection_cannot_reach_other_files(filled: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    with pytest.raises(QueryError, match="disabled by configuration"):
        run_sql(f"SELECT * FROM read_csv('{secret}')", storage_dir=filled)
    # query() accepts only SELECT statements
    with pytest.raises(QueryError):
        run_sql(
            f"SELECT * FROM query('COPY experiments TO ''{tmp_path}/q.csv''')", storage_dir=filled
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.csv", "store"]


def test_readonly_allows_reads(filled: Path) -> None:
    for sql in (
        "SELECT count(*) FROM experiments",
        "WITH b AS (SELECT min(loss) m FROM experiments) SELECT * FROM b",
        "FROM experiment_summary",
        "DESCRIBE experiments",
        "SHOW TABLES",
        "SUMMARIZE experiments",
        "VALUES (1)",
    ):
        columns, rows, _ = run_sql(sql, storage_dir=filled)
        assert columns and rows


def test_sql_errors_name_tables_and_columns(filled: Path) -> None:
    with pytest.raises(QueryError) as info:
        store.query_experiments("SELECT nope FROM experiments", storage_dir=filled)
    message = str(info.value)
    assert "nope" in message and "Available tables: " in message
    assert "experiment_summary" in message and "perplexity (DOUBLE)" in message
    with pytest.raises(QueryError, match="syntax error"):
        run_sql("SELEC 1", storage_dir=filled)


# ------------------------------------------------------------------------------------ layout


def test_query_path_needs_no_pandas(filled: Path) -> None:
    code = (
        "import sys\n"
        "import common.experiments as s\n"
        f"con = s.connect({str(filled)!r}, read_only=True)\n"
        f"st = s.Store({str(filled)!r})\n"
        "assert s.best_experiments('perplexity', 2, store=st).rows[0][1] == 'baseline'\n"
        "assert s.list_experiments(store=st).rows and s.summarize_experiments(store=st).rows\n"
        "assert s.compare_experiments(['wide', 'small'], store=st).rows\n"
        "assert con.execute('SELECT count(*) FROM experiments').fetchone()[0] > 0\n"
        "assert st.sql('SELECT 1').rows == [(1,)]\n"
        "bad = [m for m in ('pandas', 'pyarrow', 'numpy', 'torch') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)


def test_auto_compaction_keeps_results(root: Path) -> None:
    from common.experiments.compaction import PENDING_LIMIT, wait_for_compaction

    n = PENDING_LIMIT * 2 + 5
    for i in range(n):
        store.save_experiment(
            f"e{i % 7}", {"step": [i, i + 1000], "loss": [1.0 / (i + 1), 0.0]}, storage_dir=root
        )
    wait_for_compaction()
    assert list((root / "merged").glob("*.parquet"))
    assert len(list((root / "saves").glob("*.parquet"))) < PENDING_LIMIT
    with store.connect(root) as con:
        assert con.execute("SELECT count(*), count(DISTINCT step) FROM experiments").fetchone() == (
            2 * n,
            2 * n,
        )
        assert store.experiment_names(con) == [f"e{i}" for i in range(7)]


def test_reader_retries_when_compaction_removes_its_files(root: Path) -> None:
    for i in range(5):
        store.save_experiment(f"e{i}", {"step": [i]}, storage_dir=root)
    opened = store.Store(root)  # a reader that listed the folder before compaction
    report = store.compact_store(root)
    assert report.files_written == 1 and report.live_files == 1
    assert len(files(root)) == 1
    # the snapshot's files are gone: the Store takes a new snapshot and retries
    assert opened.experiment_names() == [f"e{i}" for i in range(5)]
    assert store.best_experiments("step", mode="max", store=opened).rows[0][1] == "e4"
    opened.close()


def test_connect_is_a_snapshot_and_cheap(filled: Path) -> None:
    con = store.connect(filled)
    store.save_experiment("later", {"loss": [0.1]}, storage_dir=filled)
    assert "later" not in store.experiment_names(con)
    with store.connect(filled) as fresh:
        assert "later" in store.experiment_names(fresh)
    assert isinstance(con, duckdb.DuckDBPyConnection)
    con.close()


def test_store_files_are_plain_parquet(filled: Path) -> None:
    names = sorted(files(filled))
    assert len(names) == 3 and all(n.endswith(".parquet") for n in names)
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT count(*) FROM read_parquet('{filled}/saves/*.parquet', union_by_name=true)"
    )
    assert rows.fetchone() == (13,)
    kv = con.execute(f"SELECT key FROM parquet_kv_metadata('{filled}/saves/{names[0]}')").fetchall()
    assert (b"research_experiments",) in kv
    assert not os.listdir(filled / "tmp")


def test_column_that_is_metadata_here_and_result_there(root: Path) -> None:
    store.save_experiment("a", {"step": [1], "loss": [1.0]}, {"lr": 0.1}, storage_dir=root)
    store.save_experiment("b", {"step": [1], "lr": [0.01]}, storage_dir=root)
    with store.connect(root) as con:
        kinds = dict(con.execute("SELECT column_name, kind FROM experiment_columns").fetchall())
        assert kinds["lr"] == "result" and kinds["experiment_name"] == "name"
        assert kinds["saved_at"] == "provenance"
        assert "lr" in store.metric_columns(con)
        rows = con.execute("SELECT experiment_name, lr FROM experiments ORDER BY 1").fetchall()
    assert rows == [("a", 0.1), ("b", 0.01)]


def test_names_with_quotes_and_unicode(root: Path) -> None:
    name = "bob's run: α=0.1"
    store.save_experiment(
        name, {"step": [1, 2], "loss": [2.0, 1.0]}, {"note": "it's"}, storage_dir=root
    )
    store.save_experiment(
        "other", {"step": [1], "loss": [3.0]}, {"note": "plain"}, storage_dir=root
    )
    store.save_experiment(name, {"step": [1], "loss": [0.5]}, storage_dir=root, mode="overwrite")
    frame = store.compare_experiments([name, "other"], storage_dir=root).df()
    assert frame["experiment_name"].tolist() == [name, "other"]
    assert frame["loss_best"].tolist() == [0.5, 3.0]
    assert store.best_experiments("loss", top=1, storage_dir=root).rows[0][1] == name
    with pytest.raises(QueryError, match="no SQL statement"):
        run_sql("  ", storage_dir=root)
