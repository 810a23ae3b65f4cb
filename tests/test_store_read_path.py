"""The store's one read path: the shared snapshot reused while the folder is unchanged (and never
after a change from this or another process), the one copy of the SQL helpers, the split rule and
the curves query, and the one import route (``common.utils`` aliases ``common.experiments``)."""

from __future__ import annotations

import ast
import datetime as dt
import math
import subprocess
import sys
from pathlib import Path

import pytest

import common.experiments as store
import common.utils
from common.experiments.sql import is_numeric, json_value, quote_ident, show_non_finite

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "store"
    folder.mkdir()
    for name, loss in (("a", 2.0), ("b", 1.5)):
        rows = [
            {"step": s, "split": sp, "loss": loss + s / 10}
            for s in range(3)
            for sp in ("train", "val")
        ]
        store.save_experiment(name, rows, {"lr": 1e-3}, storage_dir=folder)
    return folder


def names(root: Path) -> list[str]:
    df = store.query_experiments(
        "SELECT DISTINCT experiment_name FROM experiments ORDER BY 1", storage_dir=root
    )
    return list(df["experiment_name"])


def in_other_process(root: Path, code: str) -> None:
    prog = f"import common.experiments as s\nroot = {str(root)!r}\n{code}\n"
    subprocess.run([sys.executable, "-c", prog], check=True, cwd=REPO, timeout=120)


def test_an_unchanged_store_is_reused_and_kept_in_memory(root: Path) -> None:
    first = store.shared_store(root)
    snapshot = first.snapshot
    assert names(root) == ["a", "b"]
    again = store.shared_store(root)
    assert again is first and again.snapshot is snapshot and again.in_memory
    assert names(root) == ["a", "b"]  # answered from memory


def test_changes_from_this_process_are_seen_by_the_next_call(root: Path) -> None:
    assert names(root) == ["a", "b"]
    assert names(root) == ["a", "b"]  # now in memory
    store.save_experiment("c", [{"step": 0, "loss": 1.0}], storage_dir=root)
    assert names(root) == ["a", "b", "c"]
    store.rename_experiment("c", "d", storage_dir=root)
    assert names(root) == ["a", "b", "d"]
    store.delete_experiment("d", storage_dir=root)
    assert names(root) == ["a", "b"]
    assert store.best_experiments("loss", 1, storage_dir=root).rows[0][1] == "b"


def test_changes_from_another_process_are_seen_by_the_next_call(root: Path) -> None:
    assert names(root) == ["a", "b"] and names(root) == ["a", "b"]
    in_other_process(root, "s.save_experiment('c', [{'step': 0, 'loss': 0.5}], storage_dir=root)")
    assert names(root) == ["a", "b", "c"]
    assert store.best_experiments("loss", 1, split="all", storage_dir=root).rows[0][1] == "c"
    in_other_process(root, "s.rename_experiment('c', 'z', storage_dir=root)")
    assert names(root) == ["a", "b", "z"]
    in_other_process(root, "s.delete_experiment('z', storage_dir=root)")
    assert names(root) == ["a", "b"]


def test_a_file_damaged_in_place_is_noticed(root: Path) -> None:
    assert names(root) == ["a", "b"] and names(root) == ["a", "b"]
    victim = sorted((root / "saves").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:-20])
    with pytest.warns(store.DamagedStoreWarning):
        left = names(root)
    assert len(left) == 1


def test_threads_get_their_own_store(root: Path) -> None:
    import threading

    mine = store.shared_store(root)
    theirs: list[object] = []
    thread = threading.Thread(target=lambda: theirs.append(store.shared_store(root)))
    thread.start()
    thread.join()
    assert theirs and theirs[0] is not mine


def test_sql_helpers_are_the_one_copy() -> None:
    assert quote_ident('a"b') == '"a""b"'
    assert all(is_numeric(t) for t in ("UHUGEINT", "HUGEINT", "DOUBLE", "DECIMAL(18,3)"))
    assert not is_numeric("VARCHAR")
    assert json_value(float("nan")) is None and json_value([1, float("inf")]) == [1, None]
    stamp = dt.datetime(2026, 1, 2, 3, 4, 5)
    assert json_value(stamp) == "2026-01-02T03:04:05"
    assert json_value(stamp, time_sep=" ") == "2026-01-02 03:04:05"
    assert [show_non_finite(v) for v in (math.nan, math.inf, -math.inf)] == ["nan", "inf", "-inf"]
    # nobody else defines these mechanisms
    for path in [*(REPO / "common").rglob("*.py"), *(REPO / "tools").glob("*.py")]:
        if path.name == "sql.py":
            continue
        defined = {
            n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)
        }
        assert not defined & {
            "quote_ident",
            "quote_str",
            "is_numeric",
            "jsonable",
            "_jsonable",
        }, path


def test_the_split_rule_and_curves_are_shared(root: Path) -> None:
    with store.Store(root) as st:
        where, notes = store.split_filter(st, None)
        assert "'val'" in where and "IS NULL" in where and notes[0].startswith("split: val")
        curves = store.curve_rows(st, ["b", "a"], ["STEP", "loss"], x="STEP")
    assert curves.columns == ["experiment_name", "split", "STEP", "loss"]
    assert [r[:3] for r in curves.rows[:3]] == [
        ("a", "train", 0),
        ("a", "train", 1),
        ("a", "train", 2),
    ]
    assert len(curves.rows) == 12


def test_common_utils_is_an_alias_of_every_public_store_name() -> None:
    missing = [n for n in store.__all__ if n not in common.utils.__all__]
    assert not missing
    for name in store.__all__:
        assert getattr(common.utils, name) is getattr(store, name)


def test_no_module_imports_a_private_name_of_another_package() -> None:
    offenders = []
    for path in [*(REPO / "common").rglob("*.py"), *(REPO / "tools").glob("*.py")]:
        package = ".".join(path.relative_to(REPO).parts[:2])
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("common")
            ):
                theirs = ".".join(node.module.split(".")[:2])
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private and theirs != package and node.module != "common._lazy":
                    offenders.append(f"{path.relative_to(REPO)}: {node.module} {private}")
    assert not offenders, offenders
