#!/usr/bin/env python
"""Benchmark the experiment store at N experiments (issue 3 targets).

For each N: fill a temporary store with N experiments (100 rows each: step, epoch, loss,
perplexity, accuracy, grad_norm, lr; 8 metadata keys), one ``save_experiment`` call each, then
measure:

- ``save_experiment`` time per experiment (median, p90, max; automatic compaction included),
- bytes stored per metric value (7 per row): live files (what queries read), everything on disk
  (including superseded copies still inside their deletion grace period), and after
  ``compact_store(grace_s=0)``,
- ``tools/query_experiments.py --best perplexity --top 5`` and ``--list`` end to end in fresh
  processes (median of 5; falls back to an equivalent ``python -c`` through the store API if the
  CLI is missing),
- the same ``--best`` query in-process on a warm connection, and with a fresh ``connect()``,
- the floor: the same rows in one Parquet file, same SQL, DuckDB warm.

Usage::

    python benchmarks/bench_experiment_store.py --n 1000 10000

Prints a table and writes ``benchmarks/results/experiment_store.json``.
"""

from __future__ import annotations

import argparse
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

from common.utils import experiment_storage as store  # noqa: E402

CLI = REPO / "tools" / "query_experiments.py"
METRIC_COLUMNS = 7
ROWS = 100
TARGETS = {
    1000: {
        "cli_best_s": 0.35,
        "save_median_ms": 5.0,
        "bytes_per_value_live": 15.0,
        "warm_vs_floor": 2.0,
    },
    10000: {"cli_best_s": 0.6},
}


def make_experiment(i: int, rng: random.Random) -> tuple[Any, dict[str, Any]]:
    """One experiment's rows (a pandas DataFrame) and its 8 metadata keys."""
    import pandas as pd

    lr_max = rng.choice([1e-4, 3e-4, 1e-3, 3e-3])
    floor = rng.uniform(1.2, 2.5)
    steps = [s * 10 for s in range(ROWS)]
    loss = [floor + 4.0 * math.exp(-s / 250.0) + rng.gauss(0, 0.02) for s in steps]
    frame = pd.DataFrame(
        {
            "step": steps,
            "epoch": [s // 100 for s in steps],
            "loss": loss,
            "perplexity": [math.exp(v) for v in loss],
            "accuracy": [min(1.0, 0.9 - 0.15 * v + rng.gauss(0, 0.01)) for v in loss],
            "grad_norm": [abs(rng.gauss(1.0, 0.3)) for _ in steps],
            "lr": [lr_max * min(1.0, (s + 10) / 100) for s in steps],
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
    return frame, metadata


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


def cli_commands(root: Path) -> tuple[list[str], list[str], str]:
    if CLI.exists():
        base = [sys.executable, str(CLI), "--dir", str(root)]
        return base + ["--best", "perplexity", "--top", "5"], base + ["--list"], "cli"
    code = (
        "import sys; sys.path.insert(0, {repo!r}); "
        "from common.utils import experiment_storage as s; "
        "c = s.connect({root!r}, read_only=True); r = s.{fn}; "
        "print(r.columns); [print(x) for x in r.rows]"
    )
    best = code.format(repo=str(REPO), root=str(root), fn="fetch_best(c, 'perplexity', 5)")
    listing = code.format(repo=str(REPO), root=str(root), fn="fetch_list(c)")
    return [sys.executable, "-c", best], [sys.executable, "-c", listing], "python -c (API)"


def warm_median(fn: Any, repeats: int = 30) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(n: int, workdir: Path, seed: int = 0) -> dict[str, Any]:
    import duckdb

    root = workdir / f"store-{n}"
    root.mkdir()
    rng = random.Random(seed)
    data = [make_experiment(i, rng) for i in range(n)]
    save_times, save_cpu = [], []
    t_fill = time.perf_counter()
    for i, (frame, metadata) in enumerate(data):
        t0, c0 = time.perf_counter(), time.process_time()
        store.save_experiment(f"exp-{i:05d}", frame, metadata, storage_dir=root)
        save_times.append(time.perf_counter() - t0)
        save_cpu.append(time.process_time() - c0)
    fill_s = time.perf_counter() - t_fill
    values = n * ROWS * METRIC_COLUMNS
    stats = store.store_stats(root)

    best_cmd, list_cmd, how = cli_commands(root)
    cli_best, cli_best_all, best_out = timed_runs(best_cmd)
    cli_list, cli_list_all, _ = timed_runs(list_cmd)

    con = store.connect(root, read_only=True)
    best_sql = store.best_sql(con, "perplexity", 5)
    warm = warm_median(lambda: store.fetch_best(con, "perplexity", 5))
    warm_sql_only = warm_median(lambda: con.execute(best_sql).fetchall())

    def fresh() -> None:
        with store.connect(root, read_only=True) as c:
            store.fetch_best(c, "perplexity", 5)

    fresh_connect = warm_median(fresh, repeats=10)

    one_file = workdir / f"floor-{n}.parquet"
    with store.connect(root) as writer:
        writer.execute(
            f"COPY (SELECT * FROM experiments) TO '{one_file}' (FORMAT parquet, COMPRESSION zstd)"
        )
    floor_con = duckdb.connect()
    floor_con.execute(f"CREATE VIEW experiments AS SELECT * FROM read_parquet('{one_file}')")
    floor = warm_median(lambda: floor_con.execute(best_sql).fetchall())
    expected = floor_con.execute(best_sql).fetchall()
    got = con.execute(best_sql).fetchall()
    if expected != got:
        raise AssertionError(f"store and floor disagree: {got} != {expected}")
    con.close()

    t0 = time.perf_counter()
    store.compact_store(root, grace_s=0)
    compact_s = time.perf_counter() - t0
    after = store.store_stats(root)
    cli_best_compacted, _, _ = timed_runs(best_cmd)
    with store.connect(root, read_only=True) as c:
        warm_compacted = warm_median(lambda: store.fetch_best(c, "perplexity", 5))

    ordered = sorted(save_times)
    return {
        "n": n,
        "rows": n * ROWS,
        "metric_values": values,
        "query_via": how,
        "fill_s": fill_s,
        "save_median_ms": statistics.median(save_times) * 1e3,
        "save_cpu_median_ms": statistics.median(save_cpu) * 1e3,
        "save_p90_ms": ordered[int(0.9 * (n - 1))] * 1e3,
        "save_max_ms": ordered[-1] * 1e3,
        "live_files": stats["live_files"],
        "files_on_disk": stats["files"],
        "bytes_per_value_live": stats["live_bytes"] / values,
        "bytes_per_value_disk": stats["bytes"] / values,
        "bytes_per_value_compacted": after["live_bytes"] / values,
        "cli_best_s": cli_best,
        "cli_best_runs_s": cli_best_all,
        "cli_list_s": cli_list,
        "cli_list_runs_s": cli_list_all,
        "warm_query_ms": warm * 1e3,
        "warm_sql_only_ms": warm_sql_only * 1e3,
        "connect_and_query_ms": fresh_connect * 1e3,
        "floor_ms": floor * 1e3,
        "warm_vs_floor": warm / floor,
        "compact_store_s": compact_s,
        "cli_best_after_compact_s": cli_best_compacted,
        "warm_query_after_compact_ms": warm_compacted * 1e3,
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


def print_table(results: list[dict[str, Any]], base: dict[str, float]) -> None:
    rows = [
        ("save_experiment median (ms)", "save_median_ms", "{:.2f}"),
        ("save_experiment CPU median (ms)", "save_cpu_median_ms", "{:.2f}"),
        ("save_experiment p90 / max (ms)", None, None),
        ("bytes per metric value: live", "bytes_per_value_live", "{:.2f}"),
        ("bytes per metric value: on disk", "bytes_per_value_disk", "{:.2f}"),
        ("bytes per metric value: compacted", "bytes_per_value_compacted", "{:.2f}"),
        ("live files / files on disk", None, None),
        ("CLI --best perplexity --top 5 (s)", "cli_best_s", "{:.3f}"),
        ("CLI --list (s)", "cli_list_s", "{:.3f}"),
        ("in-process warm --best (ms)", "warm_query_ms", "{:.2f}"),
        ("one-file floor, same SQL (ms)", "floor_ms", "{:.2f}"),
        ("warm / floor", "warm_vs_floor", "{:.2f}x"),
        ("connect() + --best (ms)", "connect_and_query_ms", "{:.2f}"),
        ("compact_store() (s)", "compact_store_s", "{:.2f}"),
        ("CLI --best after compact_store (s)", "cli_best_after_compact_s", "{:.3f}"),
        ("warm --best after compact_store (ms)", "warm_query_after_compact_ms", "{:.2f}"),
        ("fill time (s)", "fill_s", "{:.1f}"),
    ]
    header = f"{'metric':<40}" + "".join(f"{'N=' + str(r['n']):>16}" for r in results)
    print(header)
    print("-" * len(header))
    for label, key, fmt in rows:
        cells = []
        for r in results:
            if label.startswith("save_experiment p90"):
                cells.append(f"{r['save_p90_ms']:.1f} / {r['save_max_ms']:.0f}")
            elif label.startswith("live files"):
                cells.append(f"{r['live_files']} / {r['files_on_disk']}")
            else:
                assert key is not None and fmt is not None
                cells.append(fmt.format(r[key]))
        print(f"{label:<40}" + "".join(f"{c:>16}" for c in cells))
    print(
        f"\nfloors: python {base['python_start_s']:.3f} s, python + import duckdb "
        f"{base['python_import_duckdb_s']:.3f} s, fsync of 8 KB {base['fsync_ms']:.2f} ms; "
        f"load average {base['loadavg_1min']:.1f} on {os.cpu_count()} CPUs; "
        f"queries via {results[0]['query_via']}"
    )
    for r in results:
        for key, limit in TARGETS.get(r["n"], {}).items():
            verdict = "ok" if r[key] <= limit else "MISSED"
            print(f"target N={r['n']}: {key} <= {limit}: {r[key]:.3f} {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000], help="store sizes")
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
        for n in args.n:
            print(f"N={n}: filling and measuring ...", file=sys.stderr, flush=True)
            results.append(bench(n, workdir))
        print_table(results, base)
        payload = {
            "benchmark": "experiment_store",
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "duckdb": __import__("duckdb").__version__,
            "git": store.git_info(),
            "baseline": base,
            "targets": {str(k): v for k, v in TARGETS.items()},
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
