"""Tags and notes on experiments: real stores, real concurrent processes."""

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
    tag_experiment("a", "u", storage_dir=root)
    set_note("a", "n", storage_dir=root)
    hints = list((root / "annotations").glob(f"{identity.id}.*.name"))
    assert len(hints) == 1  # each change replaces the hints it saw
    hints[0].write_text('{"name": "elsewhere"}')
    assert experiment_annotations(root) == {"a": Annotations(["t", "u"], "n")}


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


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``tools/query_experiments.py ARGS --dir ROOT`` as a real process."""
    return subprocess.run(
        [sys.executable, "tools/query_experiments.py", *args, "--dir", str(root)],
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},  # a table this wide is not transposed
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_tags_untags_and_notes_and_list_and_sql_show_them(tmp_path: Path) -> None:
    root = tmp_path / "store"
    saved(root, "a", "b", "c")
    done = cli(root, "--tag", "a", "baseline", "paper", "--tag", "b", "paper")
    assert done.returncode == 0, done.stderr
    assert "tags of 'a': baseline, paper" in done.stdout
    assert cli(root, "--untag", "a", "paper").returncode == 0
    assert cli(root, "--note", "b", "lr too high; rerun").returncode == 0
    assert cli(root, "--note", "c", "soon gone").returncode == 0
    cleared = cli(root, "--note", "c", "")
    assert cleared.returncode == 0 and "cleared" in cleared.stdout

    listing = cli(root, "--list", "--format", "json")
    assert listing.returncode == 0, listing.stderr
    shown = {r["experiment_name"]: (r["tags"], r["note"]) for r in json.loads(listing.stdout)}
    assert shown == {
        "a": (["baseline"], None),
        "b": (["paper"], "lr too high; rerun"),
        "c": ([], None),
    }
    table = cli(root, "--list").stdout.splitlines()
    assert table[0].split()[-2:] == ["tags", "note"]
    assert any(line.startswith("b ") and "lr too high; rerun" in line for line in table)

    sql = "SELECT experiment_name, tags, note FROM experiment_summary ORDER BY 1"
    rows = json.loads(cli(root, "--sql", sql, "--format", "json").stdout)
    assert [(r["experiment_name"], r["tags"], r["note"]) for r in rows] == [
        ("a", ["baseline"], None),
        ("b", ["paper"], "lr too high; rerun"),
        ("c", [], None),
    ]
    tagged = "SELECT experiment_name FROM experiment_summary WHERE list_contains(tags, 'paper')"
    assert json.loads(cli(root, "--sql", tagged, "--format", "json").stdout) == [
        {"experiment_name": "b"}
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tag", "nope", "x"], "unknown experiment 'nope'"),
        (["--untag", "nope", "x"], "unknown experiment 'nope'"),
        (["--note", "nope", "x"], "unknown experiment 'nope'"),
        (["--tag", "a", " padded"], "invalid tag ' padded'"),
        (["--tag", "a", "x" * 101], "longer than 100 characters"),
        (["--tag", "a"], "--tag takes an experiment and at least one tag"),
    ],
)
def test_cli_mistakes_exit_2_with_one_line_and_change_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    root = tmp_path / "store"
    saved(root, "a")
    done = cli(root, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert experiment_annotations(root) == {}


def test_a_change_from_another_process_is_seen_by_the_next_query(tmp_path: Path) -> None:
    root = tmp_path / "store"
    saved(root, "a", "b")
    sql = "SELECT experiment_name, tags, note FROM experiment_summary ORDER BY 1"

    def summary() -> list[tuple[str, list[str], str | None]]:
        frame = store.query_experiments(sql, storage_dir=root)
        return [(n, list(t), None if v is None or v != v else v) for n, t, v in frame.values]

    assert summary() == [("a", [], None), ("b", [], None)]
    summary()  # asked again: the shared store keeps its snapshot (and rows in memory)
    for args, expected in [
        (["--tag", "a", "x", "y"], [("a", ["x", "y"], None), ("b", [], None)]),
        (["--untag", "a", "x"], [("a", ["y"], None), ("b", [], None)]),
        (["--note", "b", "first"], [("a", ["y"], None), ("b", [], "first")]),
        (["--note", "b", "second"], [("a", ["y"], None), ("b", [], "second")]),
        (["--tag", "a", "z"], [("a", ["y", "z"], None), ("b", [], "second")]),
        (["--note", "b", ""], [("a", ["y", "z"], None), ("b", [], None)]),
    ]:
        assert cli(root, *args).returncode == 0
        assert summary() == expected, args
    store.rename_experiment("a", "renamed", storage_dir=root)
    assert summary() == [("b", [], None), ("renamed", ["y", "z"], None)]


def test_a_metadata_column_named_like_an_annotation_keeps_its_value(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store.save_experiment("a", {"step": [1], "loss": [1.0]}, {"note": "from the config"},
                          storage_dir=root)  # fmt: skip
    set_note("a", "from the user", storage_dir=root)
    row = store.query_experiments(
        "SELECT note, note_1 FROM experiment_summary", storage_dir=root
    ).values.tolist()
    assert row == [["from the user", "from the config"]]
