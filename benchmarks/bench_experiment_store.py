#!/usr/bin/env python
"""Benchmark the experiment store at N runs in two write patterns, side by side with a floor.

Patterns (each run has 7 metric columns per row and 8 metadata keys):

- ``per-eval``: the training loop's pattern, 10 saves of 10 rows per run (one per evaluation);
- ``per-run``: one save of 100 rows per run.

For each pattern and N, in one process: fill a temporary store, timing every
``save_experiment`` (background merging included, as in real use), and sampling the store's
bytes on disk (everything in the folder, superseded copies included) after every 1,000 saves;
then measure ``tools/query_experiments.py --best perplexity --top 5`` and ``--list`` in fresh
processes (median of 5), the same ranking in-process on a warm ``Store``, the floor (the same rows
in one Parquet file, the same SQL, DuckDB warm), and ``compact_store()``.
The store / floor ratio is the median of per-round paired ratios (both queries in each round,
wall and process CPU time; ``benchmarks/_paired.py``).

Usage::

    python benchmarks/bench_experiment_store.py --n 1000 10000

Prints a table and writes ``benchmarks/results/experiment_store.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _paired  # noqa: E402

import common.experiments as store  # noqa: E402
from common.experiments.compaction import wait_for_compaction  # noqa: E402
from common.utils.provenance import git_info  # noqa: E402

CLI = REPO / "tools" / "query_experiments.py"
METRIC_COLUMNS = 7
ROWS_PER_RUN = 100
PATTERNS = {"per-eval": 10, "per-run": 1}  # saves per run
TARGETS = {
    ("per-eval", 1000): {
        "save_median_ms": 5.0,
        "save_p99_ms": 50.0,
        "max_bytes_per_value": 15.0,
        "cli_best_s": 0.35,
    },
    ("per-eval", 10000): {
        "save_median_ms": 5.0,
        "save_p99_ms": 50.0,
        "max_bytes_per_value": 15.0,
        "cli_best_s": 0.6,
    },
    ("per-run", 1000): {"save_median_ms": 5.0, "cli_best_s": 0.35},
    ("per-run", 10000): {"cli_best_s": 0.6},
}
BEST_SQL = (
    "SELECT experiment_name, min(perplexity) AS best FROM experiments "
    "GROUP BY 1 ORDER BY best, experiment_name LIMIT 5"
)


def make_run(i: int, rng: random.Random) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One run's 100 rows (step, epoch, loss, perplexity, accuracy, grad_norm, lr) and its
    8 metadata keys."""
    lr_max = rng.choice([1e-4, 3e-4, 1e-3, 3e-3])
    floor = rng.uniform(1.2, 2.5)
    rows = []
    for s in range(ROWS_PER_RUN):
        step = s * 10
        loss = floor + 4.0 * math.exp(-step / 250.0) + rng.gauss(0, 0.02)
        rows.append(
            {
                "step": step,
                "epoch": step // 100,
                "loss": loss,
                "perplexity": math.exp(loss),
                "accuracy": min(1.0, 0.9 - 0.15 * loss + rng.gauss(0, 0.01)),
                "grad_norm": abs(rng.gauss(1.0, 0.3)),
                "lr": lr_max * min(1.0, (step + 10) / 100),
            }
        )
    metadata = {
        "model": rng.choice(["llm-tiny", "llm-small", "llm-base"]),
        "dataset": rng.choice(["tinystories", "synthetic"]),
        "optimizer": "adamw",
        "seed": i,
        "peak_lr": lr_max,
        "batch_size": rng.choice([16, 32, 64]),
        "training": {"warmup_steps": 100, "weight_decay": 0.1},
    }
    return rows, metadata


def folder_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            with contextlib.suppress(OSError):  # deleted by a merge meanwhile
                total += os.path.getsize(os.path.join(dirpath, name))
    return total


def timed_runs(cmd: list[str], repeats: int = 5) -> tuple[float, list[float], str]:
    """Median wall time of ``cmd`` in fresh processes (after one untimed warm-up run)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if first.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {first.stderr.strip()[-2000:]}")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, first.stdout


def warm_median(fn: Any, repeats: int = 30) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(pattern: str, n: int, workdir: Path, seed: int = 0) -> dict[str, Any]:
    import duckdb

    root = workdir / f"store-{pattern}-{n}"
    root.mkdir()
    rng = random.Random(seed)
    per_run = PATTERNS[pattern]
    chunk = ROWS_PER_RUN // per_run
    save_times: list[float] = []
    samples: list[tuple[int, float]] = []  # (saves so far, bytes per metric value on disk)
    values = 0
    t_fill = time.perf_counter()
    for i in range(n):
        rows, metadata = make_run(i, rng)
        for k in range(per_run):
            part = rows[k * chunk : (k + 1) * chunk]
            t0 = time.perf_counter()
            store.save_experiment(f"run-{i:05d}", part, metadata, storage_dir=root)
            save_times.append(time.perf_counter() - t0)
            values += len(part) * METRIC_COLUMNS
            if len(save_times) % 1000 == 0:
                samples.append((len(save_times), folder_bytes(root) / values))
    wait_for_compaction()
    fill_s = time.perf_counter() - t_fill
    final_bpv = folder_bytes(root) / values
    samples.append((len(save_times), final_bpv))

    base = [sys.executable, str(CLI), "--dir", str(root)]
    cli_best, cli_best_all, best_out = timed_runs(base + ["--best", "perplexity", "--top", "5"])
    cli_list, _, _ = timed_runs(base + ["--list"])

    with store.Store(root) as opened:
        warm = warm_median(lambda: store.best_experiments("perplexity", 5, store=opened))
        warm_sql = warm_median(lambda: opened.execute(BEST_SQL))
        got = opened.execute(BEST_SQL).rows
        one_file = workdir / f"floor-{pattern}-{n}.parquet"
        writer = store.Store(root, read_only=False)
        writer.con.execute(
            f"COPY (SELECT * FROM experiments) TO '{one_file}' (FORMAT parquet, COMPRESSION zstd)"
        )
        writer.close()
        files = len(opened.snapshot.parts)
    floor_con = duckdb.connect()
    floor_con.execute(f"CREATE VIEW experiments AS SELECT * FROM read_parquet('{one_file}')")
    floor = warm_median(lambda: floor_con.execute(BEST_SQL).fetchall())
    with store.Store(root) as opened:  # the comparison: both in each round (benchmarks/_paired)
        pairs = _paired.run_paired(
            lambda: _paired.timed(lambda: opened.execute(BEST_SQL)),
            lambda: _paired.timed(lambda: floor_con.execute(BEST_SQL).fetchall()),
            rounds=31,
        )
    vs_floor = _paired.paired_ratios(pairs)
    expected = floor_con.execute(BEST_SQL).fetchall()
    if expected != got:
        raise AssertionError(f"store and floor disagree: {got} != {expected}")

    t0 = time.perf_counter()
    store.compact_store(root)
    compact_s = time.perf_counter() - t0
    compacted_bpv = folder_bytes(root) / values

    ordered = sorted(save_times)
    saves = len(ordered)
    return {
        "pattern": pattern,
        "n": n,
        "saves": saves,
        "rows": n * ROWS_PER_RUN,
        "metric_values": values,
        "fill_s": fill_s,
        "save_median_ms": statistics.median(save_times) * 1e3,
        "save_p99_ms": ordered[int(0.99 * (saves - 1))] * 1e3,
        "save_max_ms": ordered[-1] * 1e3,
        "save_median_first_10pct_ms": statistics.median(save_times[: saves // 10]) * 1e3,
        "save_median_last_10pct_ms": statistics.median(save_times[-(saves // 10) :]) * 1e3,
        "max_bytes_per_value": max(b for _, b in samples),
        "bytes_per_value_end": final_bpv,
        "bytes_per_value_compacted": compacted_bpv,
        "bytes_samples": samples[:: max(1, len(samples) // 20)],
        "files_read_by_queries": files,
        "cli_best_s": cli_best,
        "cli_best_runs_s": cli_best_all,
        "cli_list_s": cli_list,
        "warm_best_ms": warm * 1e3,
        "warm_sql_ms": warm_sql * 1e3,
        "floor_ms": floor * 1e3,
        "warm_vs_floor": vs_floor["wall_ratio_median"],
        "warm_vs_floor_cpu": vs_floor["cpu_ratio_median"],
        "compact_store_s": compact_s,
        "best_output": best_out.strip().splitlines()[:8],
    }


def fsync_floor(workdir: Path, repeats: int = 30) -> float:
    """Median time to fsync a freshly written 8 KB file: what one durable save costs at least."""
    times = []
    for i in range(repeats):
        path = workdir / f"fsync-{i}"
        path.write_bytes(os.urandom(8192))
        t0 = time.perf_counter()
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        times.append(time.perf_counter() - t0)
        path.unlink()
    return statistics.median(times)


def baseline(workdir: Path) -> dict[str, float]:
    """Floors on this machine: bare Python, Python importing duckdb, one fsync; load average."""
    py, _, _ = timed_runs([sys.executable, "-c", "pass"])
    duck, _, _ = timed_runs([sys.executable, "-c", "import duckdb"])
    return {
        "python_start_s": py,
        "python_import_duckdb_s": duck,
        "fsync_ms": fsync_floor(workdir) * 1e3,
        "loadavg_1min": os.getloadavg()[0],
    }


ROWS = [
    ("saves", "saves", "{:d}"),
    ("save median (ms)", "save_median_ms", "{:.2f}"),
    ("save median, first / last 10% (ms)", None, None),
    ("save p99 / max (ms)", None, None),
    ("max bytes per metric value on disk", "max_bytes_per_value", "{:.2f}"),
    ("bytes per metric value at the end", "bytes_per_value_end", "{:.2f}"),
    ("bytes per value after compact_store", "bytes_per_value_compacted", "{:.2f}"),
    ("files read by a query", "files_read_by_queries", "{:d}"),
    ("CLI --best perplexity --top 5 (s)", "cli_best_s", "{:.3f}"),
    ("CLI --list (s)", "cli_list_s", "{:.3f}"),
    ("warm best_experiments (ms)", "warm_best_ms", "{:.2f}"),
    ("warm SQL on the store (ms)", "warm_sql_ms", "{:.2f}"),
    ("one-file floor, same SQL (ms)", "floor_ms", "{:.2f}"),
    ("store / floor (paired, wall)", "warm_vs_floor", "{:.2f}x"),
    ("store / floor (paired, CPU)", "warm_vs_floor_cpu", "{:.2f}x"),
    ("compact_store() (s)", "compact_store_s", "{:.2f}"),
    ("fill time (s)", "fill_s", "{:.1f}"),
]


def print_table(results: list[dict[str, Any]], base: dict[str, float]) -> None:
    width = 22
    header = f"{'metric':<38}" + "".join(
        f"{r['pattern'] + ' N=' + str(r['n']):>{width}}" for r in results
    )
    print(header)
    print("-" * len(header))
    for label, key, fmt in ROWS:
        cells = []
        for r in results:
            if label.startswith("save median, first"):
                first, last = r["save_median_first_10pct_ms"], r["save_median_last_10pct_ms"]
                cells.append(f"{first:.2f} / {last:.2f}")
            elif label.startswith("save p99"):
                cells.append(f"{r['save_p99_ms']:.1f} / {r['save_max_ms']:.0f}")
            else:
                assert key is not None and fmt is not None
                cells.append(fmt.format(r[key]))
        print(f"{label:<38}" + "".join(f"{c:>{width}}" for c in cells))
    print(
        f"\nfloors: python {base['python_start_s']:.3f} s, python + import duckdb "
        f"{base['python_import_duckdb_s']:.3f} s, fsync of 8 KB {base['fsync_ms']:.2f} ms; "
        f"load average {base['loadavg_1min']:.1f} on {os.cpu_count()} CPUs"
    )
    by_key = {(r["pattern"], r["n"]): r for r in results}
    for (pattern, n), targets in TARGETS.items():
        r = by_key.get((pattern, n))
        if r is None:
            continue
        for key, limit in targets.items():
            verdict = "ok" if r[key] <= limit else "MISSED"
            print(f"target {pattern} N={n}: {key} <= {limit}: {r[key]:.3f} {verdict}")
    for pattern in PATTERNS:
        small, large = by_key.get((pattern, 1000)), by_key.get((pattern, 10000))
        if small and large:
            ratio = large["save_median_ms"] / small["save_median_ms"]
            verdict = "ok" if ratio <= 1.5 else "MISSED"
            print(f"target {pattern}: save median N=10000 / N=1000 <= 1.5: {ratio:.2f} {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000], help="runs per store")
    parser.add_argument(
        "--pattern", nargs="+", choices=list(PATTERNS), default=list(PATTERNS), help="patterns"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "benchmarks" / "results" / "experiment_store.json",
        help="JSON output file",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        base = baseline(workdir)
        results = []
        for pattern in args.pattern:
            for n in args.n:
                print(f"{pattern} N={n}: filling and measuring ...", file=sys.stderr, flush=True)
                results.append(bench(pattern, n, workdir))
        print_table(results, base)
        payload = {
            "benchmark": "experiment_store",
            "command": "python benchmarks/bench_experiment_store.py "
            + " ".join(argv or sys.argv[1:]),
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "duckdb": __import__("duckdb").__version__,
            "git": git_info(),
            "baseline": base,
            "targets": {f"{p} N={n}": v for (p, n), v in TARGETS.items()},
            "results": results,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"wrote {args.out}")
    finally:
        if args.keep:
            print(f"stores kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
