"""Tags and notes on experiments: real stores, real concurrent processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import common.experiments as store
from common.experiments import (
    Annotations,
    claims,
    experiment_annotations,
    set_note,
    tag_experiment,
    untag_experiment,
)

REPO = Path(__file__).resolve().parent.parent

TAGGER = """
import json, sys, time
from common.experiments import tag_experiment, untag_experiment, set_note
root, start, action, name, items = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], \
    json.loads(sys.argv[5])
while time.time() < start:
    pass
for item in items:
    if action == "tag":
        tag_experiment(name, item, storage_dir=root)
    elif action == "untag":
        untag_experiment(name, item, storage_dir=root)
    else:
        set_note(name, item, storage_dir=root)
print("done")
"""


def run_together(root: Path, jobs: list[tuple[str, str, list[str]]]) -> None:
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TAGGER, str(root), str(start), action, name, json.dumps(items)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for action, name, items in jobs
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and out.strip() == "done", err


def saved(root: Path, *names: str) -> None:
    for i, name in enumerate(names):
        store.save_experiment(name, {"step": [1, 2], "loss": [1.0 + i, 0.5]}, storage_dir=root)


def test_tags_and_a_note_are_stored_and_read(tmp_path: Path) -> None:
    root = tmp_path / "store"
    saved(root, "a", "b")
    assert experiment_annotations(root) == {}
    assert tag_experiment("a", "baseline", "lr-sweep", storage_dir=root) == [
        "baseline",
        "lr-sweep",
    ]
    assert tag_experiment("a", "baseline", storage_dir=root) == ["baseline", "lr-sweep"]
    set_note("a", "diverged at step 400 <b>?</b>\nrerun with warmup", storage_dir=root)
    set_note("b", "first", storage_dir=root)
    set_note("b", "second", storage_dir=root)
    assert untag_experiment("a", "lr-sweep", "never-there", storage_dir=root) == ["baseline"]
    assert experiment_annotations(root) == {
        "a": Annotations(["baseline"], "diverged at step 400 <b>?</b>\nrerun with warmup"),
        "b": Annotations([], "second"),
    }
    set_note("b", None, storage_dir=root)
    assert "b" not in experiment_annotations(root)


@pytest.mark.parametrize(
    "bad", ["", " padded", "x" * 101, "tab\there", 3, None], ids=lambda v: repr(v)[:12]
)
def test_invalid_tags_are_refused_and_nothing_is_written(tmp_path: Path, bad: object) -> None:
    root = tmp_path / "store"
    saved(root, "a")
    with pytest.raises(store.InvalidResultsError, match="tag"):
        tag_experiment("a", "ok", bad, storage_dir=root)  # type: ignore[arg-type]
    assert experiment_annotations(root) == {}


def test_an_unknown_experiment_cannot_be_tagged(tmp_path: Path) -> None:
    root = tmp_path / "store"
    saved(root, "a")
    with pytest.raises(store.UnknownExperimentError):
        tag_experiment("nope", "x", storage_dir=root)
    with pytest.raises(store.UnknownExperimentError):
        set_note("nope", "x", storage_dir=root)
    assert not (root / claims.NAMES / claims.claim_file(root, "nope").name).exists()


def test_a_new_run_that_claimed_its_name_can_be_tagged_before_its_first_save(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    saved(root, "a")
    store.claim_experiment("run-x", "owner-1", storage_dir=root)
    tag_experiment("run-x", "from-cli", storage_dir=root)
    store.save_experiment("run-x", {"step": [1], "loss": [3.0]}, storage_dir=root)
    assert experiment_annotations(root) == {"run-x": Annotations(["from-cli"], None)}


def test_tags_follow_a_rename_and_vanish_with_a_delete(tmp_path: Path) -> None:
    root = tmp_path / "store"
    saved(root, "a", "b")
    tag_experiment("a", "keep", storage_dir=root)
    set_note("a", "the good one", storage_dir=root)
    tag_experiment("b", "doomed", storage_dir=root)
    store.rename_experiment("a", "renamed", storage_dir=root)
    store.rename_experiment("renamed", "again", storage_dir=root)
    assert experiment_annotations(root) == {
        "again": Annotations(["keep"], "the good one"),
        "b": Annotations(["doomed"], None),
    }
    store.delete_experiment("b", storage_dir=root)
    saved(root, "b")  # a new experiment of the same name starts bare
    assert experiment_annotations(root) == {"again": Annotations(["keep"], "the good one")}
    assert tag_experiment("b", "fresh", storage_dir=root) == ["fresh"]


def test_a_stale_name_hint_is_resolved_through_the_claims(tmp_path: Path) -> None:
    root = tmp_path / "store"
    saved(root, "a")
    tag_experiment("a", "t", storage_dir=root)
    identity = claims.claim_of(root, "a")
    assert identity is not None
    (root / "annotations" / identity.id / "name.json").write_text('{"name": "elsewhere"}')
    assert experiment_annotations(root) == {"a": Annotations(["t"], None)}


def test_tags_survive_compaction_and_repair_and_an_older_store_can_be_tagged(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    saved(root, "a", "b")
    shutil.rmtree(root / claims.NAMES)  # a store written before claims existed
    tag_experiment("a", "x", storage_dir=root)
    set_note("b", "n", storage_dir=root)
    before = experiment_annotations(root)
    store.compact_store(root)
    store.repair_store(root)
    assert (
        experiment_annotations(root)
        == before
        == {
            "a": Annotations(["x"], None),
            "b": Annotations([], "n"),
        }
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_concurrent_tags_untags_and_notes_from_many_processes_lose_nothing(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    saved(root, "shared")
    old = [f"old{i}" for i in range(6)]
    tag_experiment("shared", *old, storage_dir=root)
    added = {w: [f"w{w}-t{i}" for i in range(8)] for w in range(3)}
    notes = [f"note {i}" for i in range(5)]
    run_together(
        root,
        [("tag", "shared", added[w]) for w in range(3)]
        + [("untag", "shared", old[:4]), ("note", "shared", notes)],
    )
    got = experiment_annotations(root)["shared"]
    assert got.tags == sorted(old[4:] + [t for tags in added.values() for t in tags])
    assert got.note == notes[-1]  # one writer: its notes replace one another in order


TAG_DURING_RENAME = """
import json, sys, time
import common.experiments as s
from common.experiments import tag_experiment
root, start, who = sys.argv[1], float(sys.argv[2]), sys.argv[3]
while time.time() < start:
    pass
if who == "renamer":
    s.rename_experiment("e0", "X", storage_dir=root)
    print(json.dumps([]))
else:
    landed = []
    for i in range(30):
        try:
            tag_experiment("e0", f"{who}-{i}", storage_dir=root)
            landed.append(f"{who}-{i}")
        except (s.UnknownExperimentError, s.ExperimentStoreError):
            pass
    print(json.dumps(landed))
"""


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tags_written_while_the_experiment_is_renamed_all_follow_it(tmp_path: Path) -> None:
    root = tmp_path / "store"
    saved(root, "e0")
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TAG_DURING_RENAME, str(root), str(start), who],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("renamer", "a", "b")
    ]
    landed: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        landed += json.loads(out)
    found = experiment_annotations(root)
    assert set(found) <= {"X"}
    assert found.get("X", Annotations([], None)).tags == sorted(landed)
