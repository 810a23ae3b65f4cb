"""The experiment store under concurrent writers, readers and compaction, SIGKILL, skewed clocks,
damaged files, a full disk, and values of the wrong type.

Every writer save carries ``writer``, ``seq``, ``row`` and the metadata ``nrows``, so a reader can
check that each save it sees is complete (``nrows`` distinct rows) and not doubled.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import duckdb
import pytest

import common.experiments as store
from common.experiments import layout
from common.experiments.compaction import clean_tmp
from common.experiments.schema import Column

REPO = Path(__file__).resolve().parent.parent
FAKETIME = shutil.which("faketime")
needs_faketime = pytest.mark.skipif(FAKETIME is None, reason="Debian's faketime is not installed")

WRITER = """
import os, random, sys
import common.experiments as s
import common.experiments.compaction as c
c.PENDING_LIMIT = int(os.environ.get("STORE_PENDING", "32"))
root, wid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
prefix = os.environ.get("STORE_PREFIX", "")
rng = random.Random(wid)
seq = 0
while n < 0 or seq < n:
    name = f"{prefix}shared-{seq % 3}" if seq % 2 == 0 else f"{prefix}w{wid}"
    rows = 1 + rng.randrange(int(os.environ.get("STORE_ROWS", "20")))
    results = {"writer": [wid] * rows, "seq": [seq] * rows, "row": list(range(rows)),
               "loss": [rng.random() for _ in range(rows)]}
    s.save_experiment(name, results, {"nrows": rows}, storage_dir=root)
    print(seq, name, rows, flush=True)
    seq += 1
"""

READER = """
import json, os, sys, warnings
import common.experiments as s
warnings.simplefilter("error")  # a damaged file counts as a failure
root, stop = sys.argv[1], sys.argv[2]
queries, failures = 0, []
CHECK = ("SELECT writer, seq, count(*), count(DISTINCT row), any_value(nrows), "
         "count(DISTINCT nrows) FROM experiments GROUP BY 1, 2")
while not os.path.exists(stop) or queries < 3:
    try:
        with s.Store(root) as st:
            if not st.experiment_names():  # nothing saved yet: no `writer` column to query
                continue
            for writer, seq, n, distinct, nrows, k in st.sql(CHECK).rows:
                if not (n == distinct == nrows and k == 1):
                    failures.append(f"partial or doubled save {writer}/{seq}: {n} {nrows}")
            s.list_experiments(store=st)
            s.best_experiments("loss", 3, store=st)
        queries += 1
    except Exception as exc:
        failures.append(f"{type(exc).__name__}: {exc}")
print(json.dumps({"queries": queries, "failures": failures[:20]}))
"""

COMPACTOR = """
import os, sys, warnings
import common.experiments as s
warnings.simplefilter("error")
root, stop = sys.argv[1], sys.argv[2]
runs = 0
while not os.path.exists(stop):
    s.compact_store(root)
    runs += 1
print(runs)
"""


def spawn(
    code: str, *args: object, env: dict[str, str] | None = None, skew: str | None = None
) -> subprocess.Popen:
    """A Python process running ``code``; with ``skew`` (e.g. ``+5s``) under faketime."""
    prefix = [FAKETIME, "-f", skew] if skew else []
    return subprocess.Popen(
        [*prefix, sys.executable, "-c", code, *map(str, args)],  # type: ignore[list-item]
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def run(code: str, *args: object, skew: str | None = None) -> str:
    proc = spawn(code, *args, skew=skew)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out


def acked(lines: str) -> dict[int, int]:
    """seq -> rows, for every save whose call returned (printed by the writer)."""
    out = {}
    for line in lines.splitlines():
        seq, _, rows = line.split()
        out[int(seq)] = int(rows)
    return out


def stored_saves(root: Path) -> dict[tuple[int, int], tuple[int, int, int]]:
    with store.connect(root) as con:
        rows = con.execute(
            "SELECT writer, seq, count(*), count(DISTINCT row), any_value(nrows) "
            "FROM experiments GROUP BY 1, 2"
        ).fetchall()
    return {(w, s): (n, d, r) for w, s, n, d, r in rows}


def assert_store_files_sound(root: Path) -> None:
    """Every file verifies against its checksum, and nothing is left in tmp/."""
    check = store.check_store(root)
    assert check.ok, check.problems
    assert not list((root / "tmp").glob("*")), list((root / "tmp").iterdir())


# ------------------------------------------------------------------------------ concurrency


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_concurrent_writers_readers_and_compaction(tmp_path: Path) -> None:
    """8 writers (appending to shared names too), 2 readers, a compactor looping compact_store,
    and background merges in the writers: no query fails, no save is partial or doubled.
    Files vanish under running queries (nothing waits for readers): they take a new snapshot."""
    root = tmp_path / "store"
    root.mkdir()
    stop = tmp_path / "stop"
    n_writers, n_saves = 8, 12
    env = {"STORE_PENDING": "4"}
    writers = [spawn(WRITER, root, w, n_saves, env=env) for w in range(n_writers)]
    readers = [spawn(READER, root, stop) for _ in range(2)]
    compactor = spawn(COMPACTOR, root, stop)
    results = [w.communicate(timeout=200) for w in writers]
    stop.touch()
    reports = [json.loads(r.communicate(timeout=60)[0]) for r in readers]
    compactor_out, compactor_err = compactor.communicate(timeout=60)

    for w, (_, err) in zip(writers, results):
        assert w.returncode == 0, err
    assert compactor.returncode == 0, compactor_err
    for report in reports:
        assert report["failures"] == [], report
        assert report["queries"] >= 3
    saves = stored_saves(root)
    for wid, (out, _) in enumerate(results):
        done = acked(out)
        assert len(done) == n_saves
        for seq, rows in done.items():
            assert saves[(wid, seq)] == (rows, rows, rows), (wid, seq)
    assert len(saves) == n_writers * n_saves
    names = store.experiment_names(storage_dir=root)
    assert names == sorted([f"shared-{i}" for i in range(3)] + [f"w{i}" for i in range(8)])
    assert_store_files_sound(root)
    assert int(compactor_out) >= 1


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sigkilled_writer_never_leaves_partial_or_lost_saves(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    rng = random.Random(7)
    acknowledged: dict[tuple[int, int], int] = {}
    env = {"STORE_PENDING": "3", "STORE_ROWS": "400"}  # background merges all the time
    for round_ in range(8):
        writer = spawn(WRITER, root, round_, -1, env=env)
        # wait for the first acknowledged save, then kill at a random moment
        first = writer.stdout.readline() if writer.stdout else ""
        assert first, writer.stderr.read() if writer.stderr else ""
        time.sleep(rng.uniform(0.0, 0.4))
        writer.send_signal(signal.SIGKILL)
        rest, _ = writer.communicate(timeout=30)
        assert writer.returncode == -signal.SIGKILL
        for seq, rows in acked(first + rest).items():
            acknowledged[(round_, seq)] = rows
        saves = stored_saves(root)
        for key, (n, distinct, nrows) in saves.items():
            assert n == distinct == nrows, f"partial or doubled save {key}"
        missing = [key for key in acknowledged if key not in saves]
        assert missing == [], f"acknowledged saves lost: {missing}"
    assert len(acknowledged) >= 8
    assert store.check_store(root).ok
    # what killed writers left in tmp/ is removed (their processes are dead), nothing else
    clean_tmp(root)
    assert not list((root / "tmp").glob("*"))
    store.compact_store(root)
    after = stored_saves(root)
    assert all(key in after for key in acknowledged)


DELETER = """
import sys, time
import common.experiments as s
root, action = sys.argv[1], sys.argv[2]
time.sleep(0.3)
if action == "delete":
    print(s.delete_experiment(["x-shared-0", "x-w1"], storage_dir=root))
else:
    print(s.rename_experiment("x-shared-1", "renamed", storage_dir=root))
"""


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("action", ["delete", "rename"])
def test_delete_and_rename_under_concurrent_writers(tmp_path: Path, action: str) -> None:
    """Writers keep appending (also to the names being changed) while a delete or rename runs.
    Every save is either superseded by the change (it existed when the change was made) or
    visible afterwards; nothing is partial, doubled or lost, before and after compaction."""
    root = tmp_path / "store"
    root.mkdir()
    env = {"STORE_PENDING": "4", "STORE_PREFIX": "x-"}
    first = [spawn(WRITER, root, w, 6, env=env) for w in range(3)]
    for w in first:
        assert w.communicate(timeout=120)[0]
    before = stored_saves(root)
    writers = [spawn(WRITER, root, w, 12, env=env) for w in range(3, 6)]
    changer = spawn(DELETER, root, action)
    outs = [w.communicate(timeout=120) for w in writers]
    changed_out, changed_err = changer.communicate(timeout=120)
    assert changer.returncode == 0, changed_err
    for w, (_, err) in zip(writers, outs):
        assert w.returncode == 0, err
    for _ in range(2):  # before and after a full compaction
        with store.connect(root) as con:
            rows = con.execute(
                "SELECT experiment_name, writer, seq, count(*), count(DISTINCT row), "
                "any_value(nrows) FROM experiments GROUP BY 1, 2, 3"
            ).fetchall()
        seen = {(w, s): (name, n, d, r) for name, w, s, n, d, r in rows}
        assert len(seen) == len(rows)  # no save under two names
        for _name, n, d, r in seen.values():
            assert n == d == r
        # the early saves of the changed names are gone (delete) or renamed; others untouched
        for key in before:
            original = f"x-shared-{key[1] % 3}" if key[1] % 2 == 0 else f"x-w{key[0]}"
            if action == "delete" and original in ("x-shared-0", "x-w1"):
                assert key not in seen
            elif action == "rename" and original == "x-shared-1":
                assert seen[key][0] == "renamed"
            else:
                assert seen[key][0] == original
        # every save of the concurrent writers is still there, under the name it was saved as
        # or, for a rename that came after it, under the new name
        for wid, (out, _) in enumerate(outs, start=3):
            for seq in acked(out):
                assert (wid, seq) in seen or action == "delete"
        store.compact_store(root)
    assert int(changed_out) > 0
    assert_store_files_sound(root)


# ------------------------------------------------------------------------------ clocks

SAVE = """
import sys
import common.experiments as s
root, name, mode, value = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
s.save_experiment(name, {"step": [int(value)], "loss": [value]}, storage_dir=root, mode=mode)
"""


def steps(root: Path, name: str) -> list[int]:
    with store.connect(root) as con:
        rows = con.execute(
            "SELECT step FROM experiments WHERE experiment_name = ? ORDER BY step", [name]
        ).fetchall()
    return [r[0] for r in rows]


@needs_faketime
@pytest.mark.slow
def test_order_never_depends_on_the_writers_clocks(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    run(SAVE, root, "exp", "append", 1)
    run(SAVE, root, "exp", "append", 2)
    # another host, 5 s ahead, overwrites; an append made 1 s later by this host stays visible
    run(SAVE, root, "exp", "overwrite", 10, skew="+5s")
    time.sleep(1)
    run(SAVE, root, "exp", "append", 11)
    assert steps(root, "exp") == [10, 11]
    store.compact_store(root)
    assert steps(root, "exp") == [10, 11]
    # an overwrite from a host whose clock is an hour behind replaces everything before it
    run(SAVE, root, "exp", "overwrite", 20, skew="-1h")
    assert steps(root, "exp") == [20]
    run(SAVE, root, "exp", "append", 21, skew="+2h")
    run(SAVE, root, "exp", "append", 22, skew="-2h")
    store.compact_store(root)
    assert steps(root, "exp") == [20, 21, 22]
    # a rewind, a rename and a delete from skewed hosts supersede exactly what existed
    rewind = "import sys, common.experiments as s\n"
    rewind += "s.rewind_experiment('exp', 20, storage_dir=sys.argv[1])"
    run(rewind, root, skew="-3h")
    run(SAVE, root, "exp", "append", 23, skew="+3h")
    assert steps(root, "exp") == [20, 23]
    run(
        "import sys, common.experiments as s; s.delete_experiment('exp', storage_dir=sys.argv[1])",
        root,
        skew="+1h",
    )
    run(SAVE, root, "exp", "append", 30, skew="-1h")
    assert steps(root, "exp") == [30]


HOLD_TMP = """
import os, sys, time
path = sys.argv[1]
with open(path, "wb") as fh:
    fh.write(b"half a file")
    print("ready", flush=True)
    time.sleep(60)
"""


@needs_faketime
@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_cleaner_with_a_fast_clock_never_removes_live_writers_files(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store.save_experiment("seed", {"loss": [1.0]}, storage_dir=root)
    # a live writer of this host, and a file of a writer on another host, both fresh
    holder_path = layout.tmp_path(root, ".parquet")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_TMP, str(holder_path)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    live_name = holder_path.name.replace(f".{os.getpid()}.", f".{holder.pid}.")
    os.rename(holder_path, root / "tmp" / live_name)
    other_host = root / "tmp" / "otherhost.12345.abcd1234.parquet"
    other_host.write_bytes(b"partial")
    dead = root / "tmp" / f"{layout.safe_host()}.999999999.deadbeef.parquet"
    dead.write_bytes(b"left over")
    # writers keep saving while a cleaner 2 hours ahead compacts and cleans
    env = {"STORE_PENDING": "4"}
    writers = [spawn(WRITER, root, w, 19, env=env) for w in range(2)]
    cleaner = "import sys, common.experiments as s\nfor _ in range(5): s.compact_store(sys.argv[1])"
    run(cleaner, root, skew="+2h")
    for w in writers:
        out, err = w.communicate(timeout=90)
        assert w.returncode == 0, err
        assert len(acked(out)) == 19
    run(cleaner, root, skew="+2h")
    assert (root / "tmp" / live_name).exists() and other_host.exists()
    assert not dead.exists()
    holder.kill()
    holder.wait()
    clean_tmp(root)
    assert not (root / "tmp" / live_name).exists() and other_host.exists()


# ------------------------------------------------------------------------------ damage


def merged_store(root: Path, n: int = 30) -> Path:
    """A store whose only copy of ``n`` saves is one compacted file; returns that file."""
    for i in range(n):
        store.save_experiment(
            f"run-{i % 10}", {"step": [i], "loss": [1.0 / (i + 1)]}, storage_dir=root
        )
    store.compact_store(root)
    (merged,) = (root / "merged").glob("*.parquet")
    return merged


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "tools/query_experiments.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bytes_overwritten_inside_a_compacted_file_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "store"
    merged = merged_store(root)
    store.save_experiment("later", {"step": [99], "loss": [0.5]}, storage_dir=root)
    data = bytearray(merged.read_bytes())
    data[100:300] = os.urandom(200)  # the footer stays intact
    merged.write_bytes(bytes(data))
    with pytest.warns(store.DamagedStoreWarning) as caught:
        frame = store.query_experiments(
            "SELECT count(*) AS n, count(DISTINCT experiment_name) AS e FROM experiments",
            storage_dir=root,
        )
    assert (frame["n"][0], frame["e"][0]) == (1, 1)  # consistent: only the intact save
    message = " ".join(str(w.message) for w in caught)
    assert merged.name in message and "checksum" in message and "run-3" in message
    listing = cli("--list", "--dir", str(root))
    assert listing.returncode == 3 and "later" in listing.stdout
    assert merged.name in listing.stderr
    check = cli("--check", "--dir", str(root))
    assert check.returncode == 3 and merged.name in check.stdout and "30 save" in check.stdout


def test_truncated_only_copy_is_never_called_an_empty_store(tmp_path: Path) -> None:
    root = tmp_path / "store"
    merged = merged_store(root)
    merged.write_bytes(merged.read_bytes()[: merged.stat().st_size // 2])
    listing = cli("--list", "--dir", str(root))
    assert listing.returncode == 3
    assert "No experiments" not in listing.stdout + listing.stderr
    assert "30 save" in listing.stderr and "not empty" in listing.stderr
    best = cli("--best", "loss", "--dir", str(root))
    assert best.returncode == 3 and "Traceback" not in best.stderr
    assert "30 save" in best.stderr
    check = store.check_store(root)
    assert not check.ok and check.damaged[0].path == str(merged)
    repaired = store.repair_store(root)
    assert repaired.moved_aside and (root / "damaged" / merged.name).exists()
    assert cli("--check", "--dir", str(root)).returncode == 0


def test_foreign_and_damaged_files_are_left_alone_by_compaction(tmp_path: Path) -> None:
    root = tmp_path / "store"
    for i in range(4):
        store.save_experiment(f"e{i}", {"step": [1, 2], "loss": [1.0, 0.5]}, storage_dir=root)
    victim = sorted((root / "saves").glob("*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:-10])
    (root / "saves" / "garbage.parquet").write_bytes(os.urandom(500))
    (root / "merged").mkdir()
    duckdb.connect().execute(f"COPY (SELECT 1 AS loss) TO '{root / 'merged' / 'x.parquet'}'")
    bad = [victim, root / "saves" / "garbage.parquet", root / "merged" / "x.parquet"]
    with pytest.warns(store.DamagedStoreWarning) as caught:
        result = store.list_experiments(root)
    assert len(result.rows) == 3
    messages = " ".join(str(w.message) for w in caught)
    assert all(p.name in messages for p in bad)
    with pytest.warns(store.DamagedStoreWarning):
        store.compact_store(root)
    assert all(p.exists() for p in bad)


# ------------------------------------------------------------------------------ types


def poison(root: Path, name: str, column: str, value: str) -> None:
    """A save holding ``value`` as text in ``column`` that bypasses the schema check, as a file
    written by an older version of the store (or by hand) would."""
    from common.experiments.write import _encode

    save_id = layout.new_id()
    cols = [
        Column("experiment_name", "text", "text", [name]),
        Column("epoch", "number", "int", [1]),
        Column(column, "text", "text", [value]),
        Column("_rx_save", "text", "text", [save_id]),
    ]
    footer = {
        "saves": [save_id],
        "exps": [name],
        "types": {c.name: c.kind for c in cols},
        "result_cols": ["epoch", column],
        "meta_cols": [],
        "rows": 1,
    }
    layout.write_bytes(root, "saves", save_id, _encode(cols, layout.kv_json(footer)), sync_dir=True)


def test_text_into_a_numeric_metric_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    import pandas as pd

    root = tmp_path / "store"
    store.save_experiment("exp_001", {"epoch": [1], "perplexity": [12.0]}, storage_dir=root)
    before = sorted(os.listdir(root / "saves"))
    with pytest.raises(store.SchemaError) as info:
        store.save_experiment(
            "x", pd.DataFrame({"epoch": [1], "perplexity": ["12.5"]}), storage_dir=root
        )
    message = str(info.value)
    for part in ("'perplexity'", "number", "text", "'exp_001'"):
        assert part in message
    assert sorted(os.listdir(root / "saves")) == before
    with pytest.raises(store.SchemaError, match="text values in this store"):
        store.save_experiment("y", {"epoch": [1]}, {"model": "tiny"}, storage_dir=root)
        store.save_experiment("z", {"epoch": [1]}, {"model": 3}, storage_dir=root)
    # int widens to float; new columns are always allowed
    store.save_experiment("w", {"epoch": [1.5], "new_metric": [1]}, storage_dir=root)
    assert store.query_experiments("SELECT max(epoch) AS m FROM experiments", storage_dir=root)[
        "m"
    ][0] == pytest.approx(1.5)


def test_a_poisoned_store_stays_queryable_and_is_repaired(tmp_path: Path) -> None:
    root = tmp_path / "store"
    for i, ppl in enumerate([1.75, 1021.2, 106.3, 12.0]):
        store.save_experiment(f"run{i}", {"epoch": [1], "perplexity": [ppl]}, storage_dir=root)
    poison(root, "bad", "perplexity", "twelve")
    poison(root, "text-number", "perplexity", "12.5")
    store.compact_store(root)  # the damage survives compaction, it is not spread as text
    with pytest.warns(store.DamagedStoreWarning, match="'bad'") as caught:
        frame = store.query_experiments(
            "SELECT experiment_name, MIN(perplexity) AS p FROM experiments "
            "WHERE perplexity < 20 GROUP BY 1 ORDER BY p",
            storage_dir=root,
        )
    assert frame["experiment_name"].tolist() == ["run0", "run3", "text-number"]
    assert "repair" in str(caught[0].message)
    best = cli("--best", "perplexity", "--dir", str(root))
    assert best.returncode == 3 and "run0" in best.stdout
    fixed = store.repair_store(root)
    assert fixed.retyped == {"bad": ["perplexity"]} and fixed.remaining == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = store.query_experiments(
            "SELECT experiment_name, perplexity FROM experiments ORDER BY 1", storage_dir=root
        )
    assert values["experiment_name"].tolist()[0] == "bad"
    assert values["perplexity"].isna().tolist()[0]
    store.compact_store(root)
    assert store.check_store(root).ok
    (merged,) = (root / "merged").glob("*.parquet")
    kinds = {r[0]: r[1] for r in duckdb.connect().execute(f"DESCRIBE FROM '{merged}'").fetchall()}
    assert kinds["perplexity"] == "DOUBLE"  # the text left by the repair is converted back
    assert cli("--best", "perplexity", "--dir", str(root)).returncode == 0


# ------------------------------------------------------------------------------ full disk


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return done.returncode == 0


def test_a_full_disk_is_one_store_error_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "small"
    mounted = _mount_tmpfs(root, "400k")
    try:
        store.save_experiment("kept", {"step": [1], "loss": [1.0]}, storage_dir=root)
        if not mounted:  # no tmpfs here: inject the error the kernel would give
            real_write = os.write

            def full(fd: int, data: bytes) -> int:
                if len(data) > 100:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return real_write(fd, data)

            monkeypatch.setattr(os, "write", full)
        big = {"step": list(range(20000)), "loss": [random.random() for _ in range(20000)]}
        with pytest.raises(store.StoreWriteError) as info:
            for _ in range(50):
                store.save_experiment("big", big, storage_dir=root)
        monkeypatch.undo()
        assert "disk is full" in str(info.value) and str(root.resolve()) in str(info.value)
        assert not list((root / "tmp").glob("*.parquet"))
        assert store.query_experiments(
            "SELECT loss FROM experiments WHERE experiment_name = 'kept'", storage_dir=root
        )["loss"].tolist() == [1.0]
        assert store.check_store(root).ok
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(root)], check=False)


def test_a_vanished_or_read_only_folder_is_one_store_error(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store.save_experiment("a", {"loss": [1.0]}, storage_dir=root)
    if os.geteuid() != 0:
        os.chmod(root / "saves", 0o500)
        with pytest.raises(store.StoreWriteError, match="permission denied"):
            store.save_experiment("a", {"loss": [2.0]}, storage_dir=root)
        os.chmod(root / "saves", 0o700)
    shutil.rmtree(root / "tmp")
    (root / "tmp").write_text("not a folder")
    with pytest.raises(store.StoreWriteError, match=str(root.resolve())):
        store.save_experiment("a", {"loss": [3.0]}, storage_dir=root)
    (root / "tmp").unlink()
    assert store.query_experiments("SELECT loss FROM experiments", storage_dir=root)[
        "loss"
    ].tolist() == [1.0]


# ------------------------------------------------------------------------------ previous format


def old_format_file(root: Path, name: str, rows_sql: str, meta: dict) -> None:
    """A file as the previous version of the store wrote it (flat folder, clock-ordered)."""
    kv = json.dumps({"format": "research-experiments/1", **meta}, separators=(",", ":"))
    duckdb.connect().execute(
        f"COPY ({rows_sql}) TO '{root / name}' (FORMAT parquet, KV_METADATA "
        f"{{research_experiments: '{kv}'}})"
    )


def test_a_store_in_the_previous_format_is_reported_then_converted(tmp_path: Path) -> None:
    root = tmp_path / "old"
    root.mkdir()
    t0 = 1_700_000_000_000_000

    def rows(exp: str, save: str, dt: int, steps: list[int], ppl: str = "s * 1.0") -> str:
        return (
            f"SELECT '{exp}' AS experiment_name, s AS step, {ppl} AS perplexity, "
            f"make_timestamp(CAST({t0 + dt} AS BIGINT)) AS saved_at, '{save}' AS _rx_save "
            f"FROM unnest({steps}) t(s)"
        )

    def single(save: str, dt: int, steps: list[int], mark: bool = False, **kw: str) -> None:
        exp = save[0]
        meta = {"saves": [save], "exps": [exp], "marks": {exp: t0 + dt} if mark else {}}
        old_format_file(root, f"s-{save}.parquet", rows(exp, save, dt, steps, **kw), meta)

    # a: two saves, also held by a compacted file; b: overwritten by its second save
    single("a1", 0, [1, 2])
    single("a2", 1, [3])
    both = rows("a", "a1", 0, [1, 2]) + " UNION ALL " + rows("a", "a2", 1, [3])
    meta = {"saves": ["a1", "a2"], "exps": ["a"], "marks": {}, "inputs": []}
    old_format_file(root, "c-00000002-x.parquet", both, meta)
    single("b1", 2, [1, 2])
    single("b2", 3, [9], mark=True)
    single("c1", 4, [5], ppl="'12.x'")
    listing = cli("--list", "--dir", str(root))
    assert listing.returncode == 3 and "previous format" in listing.stderr
    assert "No experiments" not in listing.stdout + listing.stderr
    report = store.repair_store(root)
    assert report.converted_rows == 5 and report.unreadable_legacy == []
    assert report.retyped == {"c": ["perplexity"]} and report.remaining == []
    moved = sorted(p.name for p in (root / "legacy").iterdir())
    assert moved == sorted(
        ["c-00000002-x.parquet"] + [f"s-{s}.parquet" for s in ("a1", "a2", "b1", "b2", "c1")]
    )
    got = store.query_experiments(
        "SELECT experiment_name, step, perplexity FROM experiments ORDER BY 1, 2", storage_dir=root
    )
    assert got["experiment_name"].tolist() == ["a", "a", "a", "b", "c"]
    assert got["step"].tolist() == [1, 2, 3, 9, 5]
    assert cli("--check", "--dir", str(root)).returncode == 0
    store.save_experiment("d", {"step": [1], "perplexity": [3.0]}, storage_dir=root)


FIRST_TYPE = """
import sys, time
import common.experiments as s
root, who, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
value = "text" if who % 2 else float(who)
while time.time() < start:
    pass
try:
    s.save_experiment(f"racer-{who}", {"v": [value]}, storage_dir=root)
    print("saved")
except s.SchemaError as exc:
    print("refused", exc)
"""


@pytest.mark.slow
def test_concurrent_first_saves_of_a_column_agree_on_one_type(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    start = time.time() + 2.0
    procs = [spawn(FIRST_TYPE, root, who, start) for who in range(6)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    saved = [who for who, out in enumerate(outs) if out == "saved"]
    refused = [who for who, out in enumerate(outs) if out.startswith("refused")]
    assert sorted(saved + refused) == list(range(6)) and saved
    assert len({who % 2 for who in saved}) == 1  # every winner stored the same type
    assert all("'v'" in outs[who] for who in refused)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no value of the wrong type anywhere
        got = store.query_experiments(
            "SELECT experiment_name, v FROM experiments", storage_dir=root
        )
    assert len(got) == len(saved)


def test_a_read_only_folder_is_one_store_error(tmp_path: Path) -> None:
    root = tmp_path / "ro"
    if not _mount_tmpfs(root, "1m"):
        pytest.skip("mounting a tmpfs needs root")
    try:
        store.save_experiment("kept", {"loss": [1.0]}, storage_dir=root)
        subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
        with pytest.raises(store.StoreWriteError) as info:
            store.save_experiment("kept", {"loss": [2.0]}, storage_dir=root)
        assert "permission denied" in str(info.value) and str(root.resolve()) in str(info.value)
        with pytest.raises(store.StoreWriteError):
            store.delete_experiment("kept", storage_dir=root)
        got = store.query_experiments("SELECT loss FROM experiments", storage_dir=root)
        assert got["loss"].tolist() == [1.0]
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)
