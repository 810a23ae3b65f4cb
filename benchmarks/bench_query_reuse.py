#!/usr/bin/env python
"""Benchmark repeated ``query_experiments()`` calls on an unchanged store against a floor.

A store of N runs (100 rows each, one save per run, compacted as in real use) is queried with
the same SQL, round after round, three ways in one process:

- ``reuse``: ``query_experiments(sql)``: this thread's shared ``Store`` (a listing of the folder
  tells that nothing changed, so the snapshot, connection and views are reused);
- ``fresh``: a new ``Store`` per call (what every call cost before the reuse);
- ``floor``: the same rows in one Parquet file, the same SQL, through one kept DuckDB connection.

Each round times the three back to back (wall and process CPU time); the figures are medians of
the per-round ratios. The script also checks that reuse stays correct: a save, a rename and a
delete made by another process are each seen by the next call.

Usage::

    python benchmarks/bench_query_reuse.py --n 1000 --rounds 200

Prints a table and writes ``benchmarks/results/query_reuse.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_experiment_store import make_run  # noqa: E402

import common.experiments as store  # noqa: E402
from common.experiments.compaction import wait_for_compaction  # noqa: E402

SQL = (
    "SELECT experiment_name, min(perplexity) AS best FROM experiments "
    "GROUP BY 1 ORDER BY best, experiment_name LIMIT 5"
)


def timed(fn: Any) -> tuple[float, float, Any]:
    """Wall and process CPU seconds of ``fn()``, and its result."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def fill(root: Path, n: int) -> None:
    rng = random.Random(0)
    for i in range(n):
        rows, meta = make_run(i, rng)
        store.save_experiment(f"run-{i:05d}", rows, meta, storage_dir=root)
    wait_for_compaction()


def other_process(root: Path, code: str) -> None:
    """Change the store from another process (as a second terminal would)."""
    prog = f"import common.experiments as s\nroot = {str(root)!r}\n{code}\n"
    subprocess.run([sys.executable, "-c", prog], check=True, cwd=REPO, timeout=120)


def check_changes_are_seen(root: Path) -> dict[str, bool]:
    """Save, rename and delete from another process; the next call sees each."""
    names = "SELECT DISTINCT experiment_name FROM experiments"

    def seen() -> set[str]:
        return set(store.query_experiments(names, storage_dir=root)["experiment_name"])

    before = seen()
    other_process(root, "s.save_experiment('late-run', [{'step': 1, 'perplexity': 1.01}], "
                  "storage_dir=root)")  # fmt: skip
    saved = "late-run" in seen()
    other_process(root, "s.rename_experiment('late-run', 'renamed-run', storage_dir=root)")
    after_rename = seen()
    renamed = "renamed-run" in after_rename and "late-run" not in after_rename
    other_process(root, "s.delete_experiment('renamed-run', storage_dir=root)")
    deleted = seen() == before
    return {"save_seen": saved, "rename_seen": renamed, "delete_seen": deleted}


def main(argv: list[str] | None = None) -> int:
    import duckdb

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="runs in the store (1000)")
    parser.add_argument("--rounds", type=int, default=200, help="paired rounds (200)")
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/query_reuse.json"))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        root.mkdir()
        t0 = time.perf_counter()
        fill(root, args.n)
        fill_s = time.perf_counter() - t0
        floor_file = Path(tmp) / "floor.parquet"
        with store.Store(root, read_only=False) as st:
            st.con.execute(f"COPY (SELECT * FROM experiments) TO '{floor_file}' (FORMAT parquet)")
            files_read = len(st.snapshot.parts)
        floor_con = duckdb.connect(":memory:")
        floor_con.execute(f"CREATE VIEW experiments AS SELECT * FROM read_parquet('{floor_file}')")

        def reuse() -> Any:
            return store.query_experiments(SQL, storage_dir=root)

        def fresh() -> Any:
            with store.Store(root) as st:
                return st.sql_df(SQL)

        def floor() -> Any:
            return floor_con.execute(SQL).df()

        state_check = lambda: store.shared.store_state(root)  # noqa: E731
        for fn in (reuse, fresh, floor):  # warm up: imports, file cache, DuckDB
            fn()
        expected = floor()["experiment_name"].tolist()
        assert reuse()["experiment_name"].tolist() == expected
        assert fresh()["experiment_name"].tolist() == expected

        samples: dict[str, list[tuple[float, float]]] = {
            "reuse": [],
            "fresh": [],
            "floor": [],
            "state": [],
        }
        for _ in range(args.rounds):
            for name, fn in (("reuse", reuse), ("fresh", fresh), ("floor", floor)):
                wall, cpu, _ = timed(fn)
                samples[name].append((wall, cpu))
            wall, cpu, _ = timed(state_check)
            samples["state"].append((wall, cpu))
        changes = check_changes_are_seen(root)

    def med(name: str, i: int) -> float:
        return statistics.median(s[i] for s in samples[name]) * 1e3

    def ratio(a: str, b: str, i: int) -> float:
        return statistics.median(x[i] / y[i] for x, y in zip(samples[a], samples[b]))

    result = {
        "n_runs": args.n,
        "rows": args.n * 100,
        "rounds": args.rounds,
        "files_read_by_a_query": files_read,
        "fill_s": round(fill_s, 1),
        "median_ms": {
            name: {"wall": round(med(name, 0), 3), "cpu": round(med(name, 1), 3)}
            for name in samples
        },
        "paired_ratio_median": {
            f"{a}_over_{b}": {"wall": ratio(a, b, 0), "cpu": ratio(a, b, 1)}
            for a, b in (("reuse", "floor"), ("fresh", "floor"), ("fresh", "reuse"))
        },
        "target": {"reuse_over_floor_wall_at_most": 2.0},
        "changes_from_another_process_seen": changes,
        "machine": {
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
            "cpus": os.cpu_count(),
            "loadavg_1min": os.getloadavg()[0],
        },
        "command": "python benchmarks/bench_query_reuse.py " + " ".join(argv or sys.argv[1:]),
    }
    print(f"store of {args.n} runs ({args.n * 100} rows, {files_read} files read), "
          f"{args.rounds} paired rounds")  # fmt: skip
    print(f"{'':34}{'wall ms':>10}{'cpu ms':>10}")
    labels = {
        "reuse": "query_experiments() (reused)",
        "fresh": "new Store per call",
        "floor": "floor: one file, kept connection",
        "state": "change check (folder listing)",
    }
    for name, label in labels.items():
        m = result["median_ms"][name]  # type: ignore[index]
        print(f"{label:34}{m['wall']:>10.3f}{m['cpu']:>10.3f}")
    for key, r in result["paired_ratio_median"].items():  # type: ignore[union-attr]
        print(f"{key:34}{r['wall']:>9.2f}x{r['cpu']:>9.2f}x")
    print(f"changes from another process seen: {changes}")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(changes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
