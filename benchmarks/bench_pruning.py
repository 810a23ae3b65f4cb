#!/usr/bin/env python
"""Benchmark pruning: the same 12-trial search with ``--prune median`` and ``--prune none``.

The search is a grid over 12 learning rates of the custom transformer on a tiny synthetic
corpus: 6 that train (3e-3 to 2e-2) and 6 hopeless ones (1e-8 to 3e-6, the loss barely moves).
Both searches run the same points in the same order (the grid sampler is seeded by the
config's seed), one run at a time, through the real command line
(``python -m projects.custom_transformer.train --search grid ... --prune ...``) into a
temporary assets folder. Reported per search: optimizer steps spent over every trial (each
run's last stored step), the seconds spent training (each run's last ``elapsed_s``), trials
finished and pruned, the best objective (validation loss), and the whole search's wall time and
child processes' CPU time (which include every run's process start and data preparation).

Usage::

    python benchmarks/bench_pruning.py [--steps 24] [--pruner median]

Prints a table and writes ``benchmarks/results/pruning.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GOOD = ["3e-3", "4e-3", "5e-3", "7e-3", "1e-2", "2e-2"]
HOPELESS = ["1e-8", "3e-8", "1e-7", "3e-7", "1e-6", "3e-6"]
CONFIG = """
model: {{context_length: 32, d_model: 32, n_layers: 1, n_heads: 2, dropout: 0.0, kernels: torch}}
data: {{source: synthetic, synthetic_train_stories: 400, synthetic_val_stories: 20,
        tokenizer: bpe, vocab_size: 300, num_workers: 0}}
training:
  seed: 1337
  max_steps: {steps}
  batch_size: 8
  lr: 1.0e-2
  min_lr: 0.0
  warmup_steps: 2
  eval_interval: {eval_interval}
  eval_batches: 2
  checkpoint_interval: {steps}
  keep_checkpoints: 1
  device: cpu
  dtype: float32
logging: {{progress_bar: false, log_interval: 0, sample_tokens: 0}}
"""


def run_search(config: Path, assets: Path, prune: str) -> dict[str, Any]:
    """One search through the command line; its steps, outcomes and best objective."""
    name = f"bench-{prune}"
    argv = [sys.executable, "-m", "projects.custom_transformer.train", "--config", str(config),
            "--search", "grid", "--sweep", f"training.lr={','.join(GOOD + HOPELESS)}",
            "--prune", prune, "--sweep-name", name]  # fmt: skip
    env = {**os.environ, "RESEARCH_ASSETS_DIR": str(assets), "OMP_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"search {name} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    os.environ["RESEARCH_ASSETS_DIR"] = str(assets)
    from common.utils import query_experiments

    per_run = query_experiments(
        "SELECT experiment_name, training__lr AS lr, max(step) AS steps, "
        "max(elapsed_s) AS train_s, "
        "min(loss) FILTER (WHERE split = 'val') AS best FROM experiments "
        f"WHERE sweep = '{name}' GROUP BY ALL ORDER BY lr"
    )
    record = json.loads((assets / "outputs" / "sweeps" / name / "sweep.json").read_text())
    statuses = [e["status"] for e in record["runs"].values()]
    hopeless = per_run[per_run["lr"] < 1e-5]
    return {
        "total_steps": int(per_run["steps"].sum()),
        "hopeless_steps": int(hopeless["steps"].sum()),
        "training_s": round(float(per_run["train_s"].sum()), 1),
        "trials": len(per_run),
        "finished": statuses.count("finished"),
        "pruned": statuses.count("pruned"),
        "best_val_loss": float(per_run["best"].min()),
        "wall_s": round(wall, 1),
        "children_cpu_s": round(
            after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1
        ),
    }


def main() -> None:
    """Run both searches, print a table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=24, help="max steps per trial")
    parser.add_argument("--eval-interval", type=int, default=4)
    parser.add_argument("--pruner", default="median", choices=("median", "hyperband"))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/pruning.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "tiny.yaml"
        config.write_text(CONFIG.format(steps=args.steps, eval_interval=args.eval_interval))
        results = {}
        for prune in (args.pruner, "none"):
            results[prune] = run_search(config, Path(tmp) / f"assets-{prune}", prune)
    with_p, without = results[args.pruner], results["none"]
    print(f"{'search':<12}{'steps':>7}{'hopeless':>10}{'pruned':>8}{'best val':>10}"
          f"{'train s':>9}{'wall s':>8}{'cpu s':>8}")  # fmt: skip
    for label, r in results.items():
        print(f"{label:<12}{r['total_steps']:>7}{r['hopeless_steps']:>10}{r['pruned']:>8}"
              f"{r['best_val_loss']:>10.4f}{r['training_s']:>9}{r['wall_s']:>8}"
              f"{r['children_cpu_s']:>8}")  # fmt: skip
    summary = {
        "benchmark": "pruning",
        "command": f"python benchmarks/bench_pruning.py --steps {args.steps} --eval-interval "
        f"{args.eval_interval} --pruner {args.pruner}",
        "search": "grid over 12 learning rates (6 train, 6 hopeless), one run at a time",
        "learning_rates": {"good": GOOD, "hopeless": HOPELESS},
        "steps_per_trial": args.steps,
        "results": results,
        "steps_saved_fraction": round(1 - with_p["total_steps"] / without["total_steps"], 3),
        "training_time_saved_fraction": round(
            1 - with_p["training_s"] / max(without["training_s"], 1e-9), 3
        ),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"steps saved by pruning: {summary['steps_saved_fraction']:.0%}; wrote {args.out}")


if __name__ == "__main__":
    main()
