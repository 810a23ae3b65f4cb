#!/usr/bin/env python
"""Benchmark what tags and notes add to opening a store and to the reuse check.

A store of N runs (100 rows each, one save per run, compacted as in real use) gets tags and a
note on K of them. Each round times, back to back in alternating order, the same work with the
store's ``annotations/`` folder in place (A) and moved aside (B):

- ``load``: ``Store(root)``: a snapshot and its views, ``experiment_summary`` joining the tags
  and notes (``experiment_annotations``) into a temporary table;
- ``state``: ``shared.store_state(root)``: the listing ``query_experiments`` takes before each
  call to tell whether the store changed (it now lists the tag and note changes too).

The figures are medians of the per-round ratios A / B (wall and process CPU time) and the median
absolute times. The script also checks that ``SELECT tags, note FROM experiment_summary`` answers
what was written, and that an untag is seen by the next ``query_experiments`` call.

Usage::

    python benchmarks/bench_store_annotations.py --n 3000 --annotated 300 --rounds 30

Prints a table and writes ``benchmarks/results/store_annotations.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from _paired import Timing, paired_ratios, run_paired, timed  # noqa: E402
from bench_experiment_store import make_run  # noqa: E402

import common.experiments as store  # noqa: E402
from common.experiments.compaction import wait_for_compaction  # noqa: E402
from common.experiments.shared import store_state  # noqa: E402


def fill(root: Path, n: int, annotated: int) -> None:
    rng = random.Random(0)
    for i in range(n):
        rows, meta = make_run(i, rng)
        store.save_experiment(f"run-{i:05d}", rows, meta, storage_dir=root)
    wait_for_compaction()
    for i in range(annotated):
        name = f"run-{i * (n // annotated):05d}"
        store.tag_experiment(name, "baseline", f"group-{i % 7}", storage_dir=root)
        if i % 3 == 0:
            store.set_note(name, f"note on {name}: diverged at step {i}", storage_dir=root)


def check(root: Path, n: int, annotated: int) -> dict[str, bool]:
    sql = "SELECT experiment_name, tags, note FROM experiment_summary WHERE len(tags) > 0"
    found = store.query_experiments(sql, storage_dir=root)
    first = f"run-{0:05d}"
    store.untag_experiment(first, "baseline", storage_dir=root)
    after = store.query_experiments(
        f"SELECT tags FROM experiment_summary WHERE experiment_name = '{first}'",
        storage_dir=root,
    )
    store.tag_experiment(first, "baseline", storage_dir=root)
    return {
        "annotated_rows_seen": len(found) == annotated,
        "untag_seen_next_call": list(after["tags"][0]) == ["group-0"],
    }


def aside(root: Path, on: bool) -> Callable[[Callable[[], Any]], Timing]:
    """Time ``fn`` with ``annotations/`` in place (``on``) or moved aside."""
    folder, moved = root / "annotations", root.parent / "annotations.aside"

    def run(fn: Callable[[], Any]) -> Timing:
        if not on:
            os.rename(folder, moved)
        try:
            return timed(fn)
        finally:
            if not on:
                os.rename(moved, folder)

    return run


def summarize(pairs: list[tuple[Timing, Timing]]) -> dict[str, Any]:
    out = paired_ratios(pairs)
    out["with_ms_median"] = round(statistics.median(a.wall_s for a, _ in pairs) * 1e3, 2)
    out["without_ms_median"] = round(statistics.median(b.wall_s for _, b in pairs) * 1e3, 2)
    out["added_ms_median"] = round(
        statistics.median((a.wall_s - b.wall_s) for a, b in pairs) * 1e3, 2
    )
    del out["wall_ratios"], out["cpu_ratios"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--annotated", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        fill(root, args.n, args.annotated)
        checks = check(root, args.n, args.annotated)

        def load() -> None:
            store.Store(root, warn=False).close()

        results = {}
        for label, fn in (("load", load), ("state", lambda: store_state(root))):
            fn()  # warm: files verified once per process, as in real use
            pairs = run_paired(
                lambda fn=fn: aside(root, True)(fn),  # type: ignore[misc]
                lambda fn=fn: aside(root, False)(fn),  # type: ignore[misc]
                args.rounds,
            )
            results[label] = summarize(pairs)
    doc = {
        "n_runs": args.n,
        "annotated": args.annotated,
        "rounds": args.rounds,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "checks": checks,
        "results": results,
    }
    print(f"{args.n} runs, {args.annotated} with tags (a third with a note), {args.rounds} rounds")
    print(f"{'':6} {'with ms':>9} {'without ms':>11} {'added ms':>9} {'wall x':>7} {'cpu x':>7}")
    for label, r in results.items():
        print(
            f"{label:6} {r['with_ms_median']:9.2f} {r['without_ms_median']:11.2f} "
            f"{r['added_ms_median']:9.2f} {r['wall_ratio_median']:7.3f} "
            f"{r['cpu_ratio_median']:7.3f}"
        )
    print("checks:", checks)
    out = REPO / "benchmarks" / "results" / "store_annotations.json"
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO)}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
