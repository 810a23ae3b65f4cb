"""A column's type comes from the stored data, not from ``schema/`` (a cache that can vanish or
be edited): real Parquet stores, saves in fresh processes, the real CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import common.experiments as store
from common.experiments import column_types

REPO = Path(__file__).resolve().parent.parent

SAVE = """
import json, sys
import common.experiments as s
root, name, rows = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
try:
    s.save_experiment(name, rows, storage_dir=root)
    print("saved")
except s.SchemaError as exc:
    print("refused:", exc)
"""


def save_in_new_process(root: Path, name: str, rows: object) -> str:
    """Save from a fresh process (nothing cached from earlier saves); its one output line."""
    done = subprocess.run(
        [sys.executable, "-c", SAVE, str(root), name, json.dumps(rows)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "tools/query_experiments.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def loss_types(root: Path) -> dict[str, str]:
    """experiment -> the SQL type of its stored ``loss`` values, read from the files."""
    frame = store.query_experiments(
        "SELECT experiment_name, typeof(loss) AS t, count(*) AS n FROM experiments "
        "WHERE loss IS NOT NULL GROUP BY ALL ORDER BY 1",
        storage_dir=root,
    )
    return dict(zip(frame["experiment_name"], frame["t"]))


def numeric_store(root: Path) -> None:
    for i, losses in enumerate([[2.0, 1.5], [3.0, 0.9], [2.5, 1.2]]):
        store.save_experiment(
            f"e{i}", {"step": [1, 2], "loss": losses}, {"model": "tiny"}, storage_dir=root
        )


def test_text_into_a_numeric_column_is_refused_after_the_schema_folder_vanished(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    numeric_store(root)
    shutil.rmtree(root / "schema")
    answer = save_in_new_process(root, "late", {"step": 1, "loss": "n/a"})
    assert answer.startswith("refused:"), answer
    assert "'loss'" in answer and "number" in answer and "text" in answer
    assert "late" not in store.experiment_names(storage_dir=root)
    assert loss_types(root) == {"e0": "DOUBLE", "e1": "DOUBLE", "e2": "DOUBLE"}
    best = cli("--best", "loss", "--dir", str(root))
    assert best.returncode == 0, best.stderr
    assert best.stdout.splitlines()[2].split()[1] == "e1"  # 0.9 is the lowest loss
    # the missing entries were rebuilt from the files, and a numeric save is accepted
    assert json.loads((root / "schema" / "loss.json").read_text())["type"] == "number"
    assert save_in_new_process(root, "late", {"step": 1, "loss": 0.5}) == "saved"
    assert store.check_store(root).ok


def test_a_hand_edited_entry_is_overruled_reported_and_restored_never_followed(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    numeric_store(root)
    entry = root / "schema" / "loss.json"
    doc = json.loads(entry.read_text())
    entry.write_text(json.dumps({**doc, "type": "text"}))

    assert save_in_new_process(root, "e3", {"step": 1, "loss": 0.7}) == "saved"
    refused = save_in_new_process(root, "e4", {"step": 1, "loss": "n/a"})
    assert refused.startswith("refused:") and "number" in refused, refused

    check = store.check_store(root)
    assert not check.ok
    assert any("loss.json" in p and "text" in p and "number" in p for p in check.problems)

    report = store.repair_store(root)
    assert report.retyped == {}
    assert report.schema_restored == ["loss (text -> number)"]
    assert report.remaining == []
    assert json.loads(entry.read_text())["type"] == "number"
    assert set(loss_types(root).values()) == {"DOUBLE"}
    assert len(loss_types(root)) == 4
    assert store.check_store(root).ok
    assert cli("--best", "loss", "--dir", str(root)).returncode == 0


def test_a_garbled_entry_counts_as_missing(tmp_path: Path) -> None:
    root = tmp_path / "store"
    numeric_store(root)
    (root / "schema" / "model.json").write_text("{not json")
    answer = save_in_new_process(root, "x", {"step": [1], "model": [3]})
    assert answer.startswith("refused:") and "'model'" in answer, answer
    report = store.repair_store(root)
    assert report.schema_restored == ["model (missing -> text)"]
    assert json.loads((root / "schema" / "model.json").read_text())["type"] == "text"


def test_compaction_keeps_a_number_column_numeric_whatever_the_entry_says(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    numeric_store(root)
    entry = root / "schema" / "loss.json"
    entry.write_text(json.dumps({"column": "loss", "type": "text", "experiment": "e0"}))
    column_types._REGISTRIES.clear()  # as a new process would start
    store.compact_store(root)
    assert set(loss_types(root).values()) == {"DOUBLE"}
    assert [p.name for p in (root / "merged").iterdir()]  # the rows were rewritten


def test_an_entry_whose_rows_were_all_deleted_still_decides(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store.save_experiment("only", {"step": [1], "acc": [0.5]}, storage_dir=root)
    store.delete_experiment("only", storage_dir=root)
    assert save_in_new_process(root, "t", {"step": 1, "acc": "high"}).startswith("refused:")
    assert save_in_new_process(root, "n", {"step": 1, "acc": 0.7}) == "saved"


@pytest.mark.parametrize("rows", [[1.0, 2.0], [1, 2]])
def test_int_and_float_saves_agree_after_the_schema_is_gone(tmp_path: Path, rows: list) -> None:
    root = tmp_path / "store"
    store.save_experiment("a", {"step": [1, 2], "loss": [0.5, 0.25]}, storage_dir=root)
    shutil.rmtree(root / "schema")
    assert save_in_new_process(root, "b", {"step": [1, 2], "loss": rows}) == "saved"


def poison(root: Path, name: str, value: str) -> None:
    """A save holding text in ``loss`` that bypasses the type check, as an older version of the
    store (or a hand-made file) would leave it."""
    from common.experiments import layout
    from common.experiments.schema import Column
    from common.experiments.write import _encode

    save_id = layout.new_id()
    cols = [
        Column("experiment_name", "text", "text", [name]),
        Column("step", "number", "int", [1]),
        Column("loss", "text", "text", [value]),
        Column("_rx_save", "text", "text", [save_id]),
    ]
    footer = {
        "saves": [save_id],
        "exps": [name],
        "types": {c.name: c.kind for c in cols},
        "result_cols": ["step", "loss"],
        "meta_cols": [],
        "rows": 1,
    }
    layout.write_bytes(root, "saves", save_id, _encode(cols, layout.kv_json(footer)), sync_dir=True)


def test_a_merge_of_mixed_types_still_counts_as_the_majority_type(tmp_path: Path) -> None:
    root = tmp_path / "store"
    numeric_store(root)
    poison(root, "bad", "n/a")
    store.compact_store(root)  # one merged file: loss stored as text, holding mostly numbers
    shutil.rmtree(root / "schema")
    column_types._REGISTRIES.clear()
    assert save_in_new_process(root, "late", {"step": 1, "loss": "high"}).startswith("refused:")
    assert save_in_new_process(root, "late", {"step": 1, "loss": 0.1}) == "saved"
    report = store.repair_store(root)
    assert report.retyped == {"bad": ["loss"]}
    store.compact_store(root)
    assert set(loss_types(root).values()) == {"DOUBLE"}
    assert store.check_store(root).ok


def test_the_cli_check_reports_an_edited_entry_and_repair_restores_it(tmp_path: Path) -> None:
    root = tmp_path / "store"
    numeric_store(root)
    entry = root / "schema" / "loss.json"
    entry.write_text(json.dumps({**json.loads(entry.read_text()), "type": "text"}))

    check = cli("--check", "--dir", str(root))
    assert check.returncode == 3, check.stdout + check.stderr
    problems = [line for line in check.stdout.splitlines() if line.startswith("PROBLEM")]
    assert len(problems) == 1
    assert "schema/loss.json" in problems[0] and "text" in problems[0]
    assert "number" in problems[0] and "--repair" in problems[0]

    repair = cli("--repair", "--dir", str(root))
    assert repair.returncode == 0, repair.stdout + repair.stderr
    assert "restored the schema entry of loss (text -> number)" in repair.stdout
    assert "nothing to repair" not in repair.stdout
    assert json.loads(entry.read_text())["type"] == "number"
    assert set(loss_types(root).values()) == {"DOUBLE"}  # the data was not converted

    again = cli("--check", "--dir", str(root))
    assert again.returncode == 0 and "OK" in again.stdout, again.stdout
    assert "nothing to repair" in cli("--repair", "--dir", str(root)).stdout
