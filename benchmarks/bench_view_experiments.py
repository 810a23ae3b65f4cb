#!/usr/bin/env python
"""Benchmark the experiments dashboard (tools/view_experiments.py) at N experiments of 100 rows.

For each N: fill a temporary store with ``save_experiment`` (one save per run of 50 steps x
train/val rows, the trainer's columns and 14 config keys), then, through a real
``DashboardServer`` on 127.0.0.1 and real HTTP requests:

- ``first_page_s``: server start (store snapshot, views) to the first runs-table page answered
  (the runs table is built on that request), in a fresh process;
- ``sort_ms`` / ``filter_ms``: one more page sorted by another column / with a ``WHERE``
  filter (median over several columns and filters);
- ``curves_20_ms``: the curves of 20 runs (median);
- ``parcoords``, ``compare_20``: paired rounds (``benchmarks/_paired.py``, wall and process CPU
  time) of the parallel-coordinates view (``/api/parcoords``: the swept config columns and the
  best validation loss of every run) against the same aggregate straight in DuckDB on the store
  (``GROUP BY experiment_name``), and of the curves of 20 runs in one request (``POST
  /api/curves``) against the same rows straight in DuckDB; ``scatter_ms`` / ``importance_ms``
  (median) and ``parcoords_first_ms`` (the first view after a new snapshot: runs table and
  column profile built);
- ``live_update_s``: after one more save, the server's next snapshot plus the rebuilt table's
  first page (what an open page waits for beyond its 1 s poll);
- ``export_s`` / ``export_mb``: ``--export`` of the whole store and of ``--best loss --top 20``.

Usage::

    python benchmarks/bench_view_experiments.py --n 1000 10000

Prints a table and writes ``benchmarks/results/view_experiments.json``.
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
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from _paired import Timing, paired_ratios, run_paired, timed  # noqa: E402

from common.experiments import Store, save_experiment  # noqa: E402
from common.experiments.compaction import wait_for_compaction  # noqa: E402

STEPS = 50  # x 2 splits = 100 rows per experiment
TARGETS = {
    "first_page_s": 1.0,
    "sort_ms": 200.0,
    "filter_ms": 200.0,
    "curves_20_ms": 300.0,
    "parcoords_ms": 1000.0,
    "compare_20_ms": 1000.0,
}
ROUNDS = 7
# Published reports on MLflow's UI, for context (user measurements, not a like-for-like run).
MLFLOW_CONTEXT = [
    "mlflow/mlflow#1517 (2019): the experiment page took about 3 minutes to load 500 runs from a "
    "file store, about 1 minute from a database",
    "mlflow/mlflow#627 (2018, MLflow 0.7): the tracking UI broke past 1,700 runs in one "
    "experiment",
    "mlflow/mlflow#5653 (2022): loading more runs in the experiment table becomes very slow with "
    "a large number of rows",
    "mlflow/mlflow#21841 (2026, MLflow 3.9.0): comparing runs gets very slow past about 100 runs",
]
SORTS = ["best_loss", "training__lr", "last_saved_at", "best_bits_per_byte", "host"]
FILTERS = [
    "training__lr >= 1e-3",
    "best_loss < 2.0 AND model__n_layers = 4",
    "experiment_name LIKE 'run-00%'",
    "last_step = 500 AND training__seed % 7 = 0",
]


def make_run(i: int, rng: random.Random) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One run's rows (the trainer's columns) and config."""
    lr = rng.choice([1e-4, 3e-4, 1e-3, 3e-3])
    floor = rng.uniform(1.2, 2.5)
    rows = []
    for s in range(1, STEPS + 1):
        step = s * 10
        for split in ("train", "val"):
            loss = floor + 4.0 * math.exp(-step * lr * 5) + rng.gauss(0, 0.02)
            rows.append(
                {
                    "step": step,
                    "epoch": step / 500,
                    "split": split,
                    "loss": loss,
                    "perplexity": math.exp(loss),
                    "bits_per_byte": loss / math.log(2) / 4,
                    "lr": lr,
                    "tokens_seen": step * 2048,
                    "elapsed_s": step * 0.05,
                }
            )
    config = {
        "model": {"d_model": rng.choice([64, 128, 256]), "n_layers": rng.choice([2, 4]),
                  "n_heads": 4, "context_length": 128},
        "data": {"source": "synthetic", "vocab_size": 4096},
        "training": {"lr": lr, "seed": i, "batch_size": rng.choice([16, 32]),
                     "max_steps": STEPS * 10, "schedule": "cosine"},
        "torch_version": "2.13.0",
        "device": "cpu",
        "project": "bench",
    }  # fmt: skip
    return rows, config


def fill(root: Path, n: int) -> float:
    rng = random.Random(n)
    started = time.perf_counter()
    for i in range(n):
        rows, config = make_run(i, rng)
        save_experiment(f"run-{i:05d}", rows, config, storage_dir=root)
    wait_for_compaction()
    return time.perf_counter() - started


def get(url: str) -> tuple[float, Any]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        body = json.loads(response.read())
    return time.perf_counter() - started, body


def api(base: str, path: str, **params: Any) -> str:
    return f"{base}api/{path}?{urllib.parse.urlencode(params, doseq=True)}"


FIRST_PAGE = """
import json, sys, threading, time, urllib.request
started = time.perf_counter()
from common.visualization.dashboard.server import DashboardServer
server = DashboardServer(sys.argv[1], "127.0.0.1", 0)
threading.Thread(target=server.serve_forever, daemon=True).start()
with urllib.request.urlopen(server.url + "api/runs?limit=50", timeout=120) as r:
    page = json.loads(r.read())
print(json.dumps({"s": time.perf_counter() - started, "total": page["total"]}))
server.shutdown()
server.server_close()
"""


def first_page(root: Path, repeats: int = 3) -> float:
    """Median seconds from server start to the first runs page, each in a fresh process."""
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", FIRST_PAGE, str(root)],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        times.append(json.loads(out.stdout.strip().splitlines()[-1])["s"])
    return statistics.median(times)


def post(url: str, body: Any) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


PARAMS = [
    "model__d_model",
    "model__n_layers",
    "training__lr",
    "training__seed",
    "training__batch_size",
]


def views(base: str, root: Path, n: int) -> dict[str, Any]:
    """The parallel-coordinates view and the 20-run compare, each paired with its baseline
    straight in DuckDB (a connection of this process, like the server's)."""
    out: dict[str, Any] = {}
    started = time.perf_counter()
    _, pc = get(api(base, "parcoords"))
    out["parcoords_first_ms"] = 1000 * (time.perf_counter() - started)
    assert len(pc["names"]) == n and sorted(d["column"] for d in pc["dimensions"]) == sorted(
        PARAMS
    ), [d["column"] for d in pc["dimensions"]]
    store = Store(root, warn=False)
    try:
        latest = ", ".join(f"max_by({c}, saved_at) AS {c}" for c in PARAMS)
        aggregate = (
            f"SELECT experiment_name, {latest}, min(loss) FILTER (WHERE split = 'val' AND "
            "isfinite(loss)) AS best_loss FROM experiments GROUP BY 1 ORDER BY 1"
        )

        def view() -> Timing:
            return timed(lambda: get(api(base, "parcoords")))

        def direct_view() -> Timing:
            return timed(lambda: store.execute(aggregate))

        pairs = run_paired(view, direct_view, ROUNDS)
        out["parcoords_ms"] = 1000 * statistics.median(a.wall_s for a, _ in pairs)
        out["parcoords_cpu_ms"] = 1000 * statistics.median(a.cpu_s for a, _ in pairs)
        out["parcoords_duckdb_ms"] = 1000 * statistics.median(b.wall_s for _, b in pairs)
        out["parcoords_vs_duckdb"] = paired_ratios(pairs)

        rng = random.Random(2)
        samples = [[f"run-{i:05d}" for i in rng.sample(range(n), 20)] for _ in range(ROUNDS)]
        turn = iter(range(2 * ROUNDS))
        columns = "experiment_name, split, step, tokens_seen, elapsed_s, epoch, loss, " + (
            "perplexity, bits_per_byte, lr"
        )

        def compare() -> Timing:
            names = samples[next(turn) // 2]
            return timed(lambda: post(base + "api/curves", {"names": names}))

        def direct_compare() -> Timing:
            names = samples[next(turn) // 2]
            return timed(
                lambda: store.execute(
                    f"SELECT {columns} FROM experiments WHERE experiment_name IN "
                    "(SELECT unnest(?)) ORDER BY experiment_name, split, step",
                    [names],
                )
            )

        pairs = run_paired(compare, direct_compare, ROUNDS)
        out["compare_20_ms"] = 1000 * statistics.median(a.wall_s for a, _ in pairs)
        out["compare_20_cpu_ms"] = 1000 * statistics.median(a.cpu_s for a, _ in pairs)
        out["compare_20_duckdb_ms"] = 1000 * statistics.median(b.wall_s for _, b in pairs)
        out["compare_20_vs_duckdb"] = paired_ratios(pairs)
    finally:
        store.close()
    scatter = [get(api(base, "scatter", x="training__lr"))[0] for _ in range(5)]
    out["scatter_ms"] = 1000 * statistics.median(scatter)
    importance = [get(api(base, "importance"))[0] for _ in range(5)]
    out["importance_ms"] = 1000 * statistics.median(importance)
    return out


def measure(root: Path, n: int) -> dict[str, Any]:
    import threading

    from common.visualization.dashboard.export import export_report
    from common.visualization.dashboard.server import DashboardServer

    result: dict[str, Any] = {"first_page_s": first_page(root)}
    server = DashboardServer(root, "127.0.0.1", 0, refresh_s=3600)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = server.url
    try:
        _, page = get(api(base, "runs", limit=50))
        assert page["total"] == n, page["total"]
        sorts = []
        for col in SORTS:
            for desc in ("0", "1"):
                seconds, page = get(api(base, "runs", sort=col, desc=desc, limit=50))
                sorts.append(seconds)
        result["sort_ms"] = 1000 * statistics.median(sorts)
        filters = []
        for where in FILTERS:
            seconds, page = get(api(base, "runs", where=where, limit=50))
            filters.append(seconds)
        result["filter_ms"] = 1000 * statistics.median(filters)
        rng = random.Random(1)
        curves = []
        for _ in range(7):
            names = [f"run-{i:05d}" for i in rng.sample(range(n), 20)]
            seconds, body = get(api(base, "curves", name=names))
            assert len(body["runs"]) == 20
            curves.append(seconds)
        result["curves_20_ms"] = 1000 * statistics.median(curves)
        result.update(views(base, root, n))

        rows, config = make_run(n, random.Random(0))
        save_experiment(f"run-{n:05d}", rows[:2], config, storage_dir=root)
        started = time.perf_counter()
        changed = server.data.poll()
        _, page = get(api(base, "runs", limit=50))
        result["live_update_s"] = time.perf_counter() - started
        assert changed and page["total"] == n + 1
    finally:
        server.shutdown()
        server.server_close()
    with tempfile.TemporaryDirectory() as tmp:
        for label, kwargs in (("all", {}), ("best20", {"best": "loss", "top": 20})):
            started = time.perf_counter()
            summary = export_report(Path(tmp) / f"{label}.html", root, **kwargs)
            result[f"export_{label}_s"] = time.perf_counter() - started
            result[f"export_{label}_mb"] = summary.bytes / 1e6
            result[f"export_{label}_curves"] = summary.curves
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/view_experiments.json"))
    args = parser.parse_args()
    results = []
    for n in args.n:
        root = Path(tempfile.mkdtemp(prefix=f"bench-view-{n}-"))
        try:
            fill_s = fill(root, n)
            print(f"n={n}: filled in {fill_s:.1f} s", flush=True)
            row = {"experiments": n, "rows_per_experiment": 2 * STEPS, "fill_s": fill_s}
            row.update(measure(root, n))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        row["meets_targets"] = {k: row[k] <= v for k, v in TARGETS.items()}
        results.append(row)
        print(json.dumps(row, indent=1), flush=True)
    keys = ["first_page_s", "sort_ms", "filter_ms", "curves_20_ms", "live_update_s"]
    keys += ["parcoords_first_ms", "parcoords_ms", "parcoords_duckdb_ms", "compare_20_ms"]
    keys += ["compare_20_duckdb_ms", "scatter_ms", "importance_ms"]
    keys += ["export_all_s", "export_all_mb", "export_best20_s", "export_best20_mb"]
    for row in results:
        for view in ("parcoords_vs_duckdb", "compare_20_vs_duckdb"):
            r = row[view]
            print(
                f"n={row['experiments']} {view}: median paired ratio wall "
                f"{r['wall_ratio_median']}, CPU {r['cpu_ratio_median']} ({r['rounds']} rounds)"
            )
    print("\n| experiments | " + " | ".join(keys) + " |")
    print("|---:|" + "---:|" * len(keys))
    for row in results:
        print(f"| {row['experiments']} | " + " | ".join(f"{row[k]:.3g}" for k in keys) + " |")
    payload = {
        "benchmark": "bench_view_experiments.py",
        "command": "python benchmarks/bench_view_experiments.py --n " + " ".join(map(str, args.n)),
        "targets": TARGETS,
        "mlflow_context": MLFLOW_CONTEXT,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "results": results,
    }
    Path(args.out).write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
