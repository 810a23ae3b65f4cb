"""Experiment store under concurrent writers, readers, compaction, SIGKILL and damaged files.

Every writer save carries ``writer``, ``seq``, ``row`` and the metadata ``nrows``, so a reader can
check that each save it sees is complete (``nrows`` distinct rows) and not doubled.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from common.utils import experiment_storage as store

REPO = Path(__file__).resolve().parent.parent

WRITER = """
import os, random, sys
from common.utils import experiment_storage as s
s.AUTO_COMPACT_PROBABILITY = float(os.environ.get("STORE_AUTO_P", "0.5"))
root, wid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(wid)
seq = 0
while n < 0 or seq < n:
    name = f"shared-{seq % 3}" if seq % 2 == 0 else f"w{wid}"
    rows = 1 + rng.randrange(int(os.environ.get("STORE_ROWS", "20")))
    results = {"writer": [wid] * rows, "seq": [seq] * rows, "row": list(range(rows)),
               "loss": [rng.random() for _ in range(rows)]}
    s.save_experiment(name, results, {"nrows": rows}, storage_dir=root)
    print(seq, name, rows, flush=True)
    seq += 1
"""

READER = """
import json, os, sys, warnings
from common.utils import experiment_storage as s
warnings.simplefilter("error")  # a skipped (damaged) file counts as a failure
root, stop = sys.argv[1], sys.argv[2]
queries, failures, seen = 0, [], 0
CHECK = ("SELECT writer, seq, count(*), count(DISTINCT row), any_value(nrows), "
         "count(DISTINCT nrows) FROM experiments GROUP BY 1, 2")
while not os.path.exists(stop) or queries < 3:
    try:
        with s.connect(root, read_only=True) as con:
            if not s.experiment_names(con):  # nothing saved yet: no `writer` column to query
                continue
            for writer, seq, n, distinct, nrows, k in s.run_readonly_sql(con, CHECK).rows:
                if not (n == distinct == nrows and k == 1):
                    failures.append(f"partial or doubled save {writer}/{seq}: {n} {nrows}")
            seen = max(seen, s.fetch_list(con).rows and len(s.fetch_list(con).rows) or 0)
            s.fetch_best(con, "loss", 3)
            s.experiment_names(con)
        queries += 1
    except Exception as exc:
        failures.append(f"{type(exc).__name__}: {exc}")
print(json.dumps({"queries": queries, "failures": failures[:20], "seen": seen}))
"""

COMPACTOR = """
import os, sys, warnings
from common.utils import experiment_storage as s
warnings.simplefilter("error")
root, stop = sys.argv[1], sys.argv[2]
runs = 0
while not os.path.exists(stop):
    s.compact_store(root, grace_s=float(os.environ.get("GRACE", "1.0")))
    runs += 1
print(runs)
"""


def spawn(code: str, *args: object, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


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
    """Every visible file has a valid footer and DuckDB reads all of it."""
    con = duckdb.connect()
    for path in root.iterdir():
        if path.name.startswith("."):
            continue
        info = store._parse_footer(str(path), path.name)
        count = con.execute(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()
        assert info.saves and count is not None


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("grace", ["1.0", "0.2"])
def test_concurrent_writers_readers_and_compaction(tmp_path: Path, grace: str) -> None:
    """8 writers (appending to shared names too), 2 readers, a compactor looping compact_store.

    With ``grace_s=0.2`` files vanish under the readers' feet while queries run (a query on this
    loaded machine takes longer than that): they must still never fail (they re-list and retry).
    The store's guarantee holds for a grace period longer than a query (the default is 300 s);
    at zero grace a reader could in principle lose the race on every retry.
    """
    root = tmp_path / "store"
    root.mkdir()
    stop = tmp_path / "stop"
    n_writers, n_saves = 8, 12
    writers = [spawn(WRITER, root, w, n_saves) for w in range(n_writers)]
    readers = [spawn(READER, root, stop) for _ in range(2)]
    compactor = spawn(COMPACTOR, root, stop, env={"GRACE": grace})
    results = [w.communicate(timeout=150) for w in writers]
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
    with store.connect(root) as con:
        names = store.experiment_names(con)
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
    env = {"STORE_AUTO_P": "1.0", "STORE_ROWS": "400"}  # compaction after every save
    for round_ in range(8):
        writer = spawn(WRITER, root, round_, -1, env=env)
        # wait for the first acknowledged save, then kill at a random moment
        first = writer.stdout.readline() if writer.stdout else ""
        assert first, writer.stderr.read() if writer.stderr else ""
        time.sleep(rng.uniform(0.0, 0.25))
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
    assert_store_files_sound(root)
    # what crashed writers left behind is harmless: a full compaction still sees every save
    store.compact_store(root, grace_s=0)
    after = stored_saves(root)
    assert all(key in after for key in acknowledged)


@pytest.fixture
def no_auto_compaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "AUTO_COMPACT_EVERY", 10**9)
    monkeypatch.setattr(store, "AUTO_COMPACT_PROBABILITY", 0.0)


@pytest.mark.usefixtures("no_auto_compaction")
def test_truncated_and_foreign_files_are_skipped_with_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    for i in range(4):
        store.save_experiment(f"e{i}", {"step": [1, 2], "loss": [1.0, 0.5]}, storage_dir=root)
    victims = sorted(root.glob("s-*.parquet"))
    truncated = victims[0]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    (root / "garbage.parquet").write_bytes(os.urandom(500))
    (root / "c-00000002-0123-bad.parquet").write_bytes(b"PAR1" + os.urandom(300) + b"PAR1")
    duckdb.connect().execute(f"COPY (SELECT 1 AS loss) TO '{root / 'foreign.parquet'}'")
    (root / "notes.txt").write_text("hello")
    bad = ["garbage.parquet", "c-00000002-0123-bad.parquet", "foreign.parquet", "notes.txt"]
    bad.append(truncated.name)

    with pytest.warns(UserWarning) as caught:
        rows = store.run_sql(
            "SELECT experiment_name, count(*) FROM experiments GROUP BY 1 ORDER BY 1",
            storage_dir=root,
        ).rows
    assert len(rows) == 3 and all(n == 2 for _, n in rows)
    messages = " ".join(str(w.message) for w in caught)
    for name in bad:
        assert name in messages
    with pytest.warns(UserWarning) as caught:
        best = store.best_experiments("loss", storage_dir=root)
    assert len(best) == 3
    assert "foreign.parquet: not written by save_experiment" in str(caught[0].message) + " ".join(
        str(w.message) for w in caught
    )
    # compaction leaves foreign and damaged files alone
    with pytest.warns(UserWarning):
        store.compact_store(root, grace_s=0)
    assert all((root / name).exists() for name in bad)


@pytest.mark.usefixtures("no_auto_compaction")
def test_file_damaged_inside_is_skipped_after_duckdb_fails(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    for i in range(3):
        store.save_experiment(f"e{i}", {"loss": [float(i)] * 50}, storage_dir=root)
    victim = sorted(root.glob("s-*.parquet"))[1]
    data = bytearray(victim.read_bytes())
    data[4:64] = b"\xff" * 60  # the first page header: footer intact, data unreadable
    victim.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match=victim.name):
        names = store.experiment_names(storage_dir=root)
    assert len(names) == 2
