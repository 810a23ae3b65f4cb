"""Changes that claim a name race in real processes: exactly one wins, the others change nothing.

Each racer is a separate Python process that imports the store, waits for a common start time
and then runs one change (the CLI's own ``main`` for ``--rename``), so the changes overlap.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import common.experiments as store
from common.experiments import claims, experiment_annotations, tag_experiment

REPO = Path(__file__).resolve().parent.parent

RACER = """
import json, sys, time
sys.path.insert(0, "tools")
import common.experiments as s
import query_experiments
root, start, action, args = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
while time.time() < start:
    pass
if action == "cli":
    sys.exit(query_experiments.main(args + ["--dir", root]))
try:
    if action == "rename":
        s.rename_experiment(args[0], args[1], storage_dir=root)
    elif action == "delete":
        s.delete_experiment(args[0], storage_dir=root)
    elif action == "new-run":  # what a new run does: claim the name, then save its rows
        s.claim_experiment(args[0], args[1], storage_dir=root)
        s.save_experiment(args[0], {"step": [1, 2], "loss": [9.0, 8.0]}, storage_dir=root)
    print(json.dumps({"ok": True}))
except s.ExperimentStoreError as exc:
    print(json.dumps({"ok": False, "error": type(exc).__name__, "message": str(exc)}))
"""


def race(root: Path, *racers: list[str]) -> list[subprocess.CompletedProcess]:
    """Start one process per racer (``[action, *args]``) at the same moment; their results."""
    start = time.time() + 2.0  # every racer has imported the store by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(root), str(start), *racer],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for racer in racers
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def outcome(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def rows_of(root: Path) -> dict[str, list[tuple]]:
    """experiment -> its (step, loss) rows, sorted."""
    frame = store.query_experiments(
        "SELECT experiment_name, step, loss FROM experiments ORDER BY ALL", storage_dir=root
    )
    out: dict[str, list[tuple]] = {}
    for name, step, loss in frame.itertuples(index=False):
        out.setdefault(name, []).append((int(step), float(loss)))
    return out


def two_experiments(root: Path) -> dict[str, list[tuple]]:
    store.save_experiment("e0", {"step": [1, 2], "loss": [1.0, 0.5]}, storage_dir=root)
    store.save_experiment("e1", {"step": [1, 2, 3], "loss": [2.0, 1.5, 1.2]}, storage_dir=root)
    return rows_of(root)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_cli_renames_onto_one_name_exactly_one_wins(tmp_path: Path) -> None:
    for trial in range(10):
        root = tmp_path / f"store{trial}"
        before = two_experiments(root)
        if trial % 2:  # a store written before claims existed
            shutil.rmtree(root / claims.NAMES)
        first, second = race(root, ["cli", "--rename", "e0", "X"], ["cli", "--rename", "e1", "X"])
        codes = sorted([first.returncode, second.returncode])
        assert codes == [0, 2], (trial, first.stderr, second.stderr)
        winner, loser = ("e0", "e1") if first.returncode == 0 else ("e1", "e0")
        lost = second if first.returncode == 0 else first
        assert "'X'" in lost.stderr and "Traceback" not in lost.stderr
        assert "exists" in lost.stderr or "is taken" in lost.stderr
        after = rows_of(root)
        assert after == {"X": before[winner], loser: before[loser]}, trial
        assert claims.owner_of(root, "X") is not None and claims.owner_of(root, winner) is None


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_many_renames_onto_one_name_leave_exactly_one_winner(tmp_path: Path) -> None:
    root = tmp_path / "store"
    for i in range(4):
        store.save_experiment(f"s{i}", {"step": [1], "loss": [float(i)]}, storage_dir=root)
    before = rows_of(root)
    results = [outcome(p) for p in race(root, *[["rename", f"s{i}", "X"] for i in range(4)])]
    winners = [i for i, r in enumerate(results) if r["ok"]]
    assert len(winners) == 1, results
    assert {r["error"] for r in results if not r["ok"]} == {"ExperimentExistsError"}
    expected = {k: v for k, v in before.items() if k != f"s{winners[0]}"}
    expected["X"] = before[f"s{winners[0]}"]
    assert rows_of(root) == expected


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_one_experiment_renamed_or_deleted_twice_at_once_is_changed_once(
    tmp_path: Path,
) -> None:
    for trial, racers in enumerate(
        [
            (["rename", "e0", "A"], ["rename", "e0", "B"]),
            (["rename", "e0", "A"], ["delete", "e0"]),
        ]
    ):
        root = tmp_path / f"store{trial}"
        before = two_experiments(root)
        results = [outcome(p) for p in race(root, *racers)]
        assert [r["ok"] for r in results].count(True) == 1, results
        loser = next(r for r in results if not r["ok"])
        assert loser["error"] in ("ExperimentBusyError", "UnknownExperimentError"), loser
        after = rows_of(root)
        assert after["e1"] == before["e1"] and "e0" not in after
        copies = [name for name in after if name != "e1"]
        assert len(copies) <= 1  # the rows of e0 are in one place, or deleted: never doubled
        if copies:
            assert after[copies[0]] == before["e0"]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_new_run_racing_a_rename_onto_its_name_exactly_one_owns_it(tmp_path: Path) -> None:
    for trial in range(4):
        root = tmp_path / f"store{trial}"
        before = two_experiments(root)
        run, rename = (
            outcome(p) for p in race(root, ["new-run", "X", "run-42"], ["rename", "e0", "X"])
        )
        assert run["ok"] != rename["ok"], (run, rename)
        after = rows_of(root)
        if run["ok"]:
            assert rename["error"] == "ExperimentExistsError"
            assert after["X"] == [(1, 9.0), (2, 8.0)] and after["e0"] == before["e0"]
            assert claims.owner_of(root, "X") == "run-42"
        else:
            assert run["error"] == "ExperimentExistsError"
            assert after["X"] == before["e0"] and "e0" not in after


def test_a_rename_onto_a_name_that_a_first_save_claimed_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "store"
    two_experiments(root)
    store.claim_experiment("X", "run-7", storage_dir=root)  # a run that has not saved yet
    with pytest.raises(store.ExperimentExistsError, match="is taken"):
        store.rename_experiment("e0", "X", storage_dir=root)
    assert claims.owner_of(root, "e0") is not None  # the refused rename changed nothing
    store.claim_experiment("X", "run-7", storage_dir=root)  # the same owner again: allowed
    with pytest.raises(store.ExperimentExistsError):
        store.claim_experiment("X", "run-8", storage_dir=root)
    with pytest.raises(store.ExperimentExistsError, match="exists"):
        store.claim_experiment("e1", "run-9", storage_dir=root)
    # the stale claim is freed by a delete, then the name can be taken
    assert store.delete_experiment("X", storage_dir=root) == 0
    assert store.rename_experiment("e0", "X", storage_dir=root) == 2


def test_a_store_without_claims_keeps_working(tmp_path: Path) -> None:
    root = tmp_path / "store"
    before = two_experiments(root)
    shutil.rmtree(root / claims.NAMES)
    with pytest.raises(store.ExperimentExistsError):  # e1 has rows, no claim
        store.rename_experiment("e0", "e1", storage_dir=root)
    assert rows_of(root) == before
    with pytest.raises(store.ExperimentExistsError):
        store.claim_experiment("e1", "run-1", storage_dir=root)
    assert store.rename_experiment("e0", "Y", storage_dir=root) == 2
    assert claims.owner_of(root, "Y") is not None and claims.owner_of(root, "e0") is None
    store.delete_experiment("e1", storage_dir=root)
    assert rows_of(root) == {"Y": before["e0"]}
    with pytest.raises(store.UnknownExperimentError):
        store.rename_experiment("e1", "Z", storage_dir=root)


def test_a_rename_whose_taker_died_does_not_block_the_name(tmp_path: Path) -> None:
    root = tmp_path / "store"
    before = two_experiments(root)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    pid = int(dead.stdout)
    held = root / "tmp" / f"{claims.layout.safe_host()}.{pid}.0000{claims._taken_pattern('e0')}"
    tag_experiment("e0", "kept", storage_dir=root)
    os.rename(claims.claim_file(root, "e0"), held)  # as a rename killed mid-way leaves it
    assert store.rename_experiment("e0", "Z", storage_dir=root) == 2
    assert rows_of(root) == {"Z": before["e0"], "e1": before["e1"]}
    assert not held.exists()
    assert experiment_annotations(root)["Z"].tags == ["kept"]  # the claim came back whole


def test_a_rename_that_died_after_publishing_leaves_the_name_free(tmp_path: Path) -> None:
    root = tmp_path / "store"
    before = two_experiments(root)
    store.rename_experiment("e0", "Z", storage_dir=root)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    held = root / "tmp" / f"{claims.layout.safe_host()}.{dead.stdout.strip()}.0000"
    held = held.with_name(held.name + claims._taken_pattern("e0"))
    held.write_text(json.dumps({"name": "e0", "id": "gone"}))
    with pytest.raises(store.UnknownExperimentError):
        store.rename_experiment("e0", "W", storage_dir=root)
    assert claims.claim_of(root, "e0") is None
    store.rename_experiment("e1", "e0", storage_dir=root)
    assert rows_of(root) == {"Z": before["e0"], "e0": before["e1"]}


def test_a_claim_held_by_a_change_on_another_host_makes_the_name_busy(tmp_path: Path) -> None:
    root = tmp_path / "store"
    before = two_experiments(root)
    held = root / "tmp" / ("other-node.4242.0000" + claims._taken_pattern("e0"))
    os.rename(claims.claim_file(root, "e0"), held)  # a rename running on another node
    cli_rename = subprocess.run(
        [sys.executable, "tools/query_experiments.py", "--rename", "e0", "Z", "--dir", str(root)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli_rename.returncode == 2, cli_rename.stderr
    assert "being renamed or deleted by another process" in cli_rename.stderr
    with pytest.raises(store.ExperimentStoreError, match="another process"):
        store.delete_experiment("e0", storage_dir=root)
    assert rows_of(root) == before and held.exists()
