"""Does the embedded story corpus rank training configs as real text does, with similar effects?

Trains the same configs (learning rate, width, depth) at equal small budgets on the embedded
corpus and on the TinyStories slice (../shared/data/tinystories, or --tinystories DIR), each
through the project's train script, and reports per config the final validation bits per byte,
the Spearman rank correlation of the two orderings, and each config's effect (relative change
against the base config) on both corpora with their ratio. The synthetic corpus is sized to the
same number of training bytes as the slice. Writes benchmarks/results/synthetic_corpus.json.

    python benchmarks/bench_synthetic_corpus.py                  # 1 seed, 200 steps
    python benchmarks/bench_synthetic_corpus.py --seeds 2
    python benchmarks/bench_synthetic_corpus.py --real-from OLD.json   # retrain only synthetic

``--real-from`` takes the TinyStories figures of an earlier result with the same steps, settings
and configs (they do not depend on the generator), so a generator change costs half the time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS: dict[str, list[str]] = {
    "base": [],
    "lr_3e-3": ["training.lr=3e-3", "training.min_lr=3e-4"],
    "lr_3e-4": ["training.lr=3e-4", "training.min_lr=3e-5"],
    "width_128": ["model.d_model=128"],
    "depth_4": ["model.n_layers=4"],
}
COMMON = [
    "model.context_length=128", "model.d_model=64", "model.n_layers=2", "model.n_heads=4",
    "training.batch_size=16", "training.lr=1e-3", "training.min_lr=1e-4",
    "training.warmup_steps=20", "training.eval_batches=8", "training.checkpoint_interval=100000",
    "data.vocab_size=2048", "logging.progress_bar=false", "logging.sample_tokens=1",
]  # fmt: skip
_BPB = re.compile(r"val loss [0-9.]+ \(best [^)]*\), perplexity [0-9.]+, bits per byte ([0-9.]+)")


def corpus_settings(name: str, tinystories: Path, synthetic_stories: int) -> list[str]:
    if name == "synthetic":
        val = max(1, synthetic_stories * 15 // 85)
        return [
            "data.source=synthetic",
            f"data.synthetic_train_stories={synthetic_stories}",
            f"data.synthetic_val_stories={val}",
        ]
    return [
        "data.source=text",
        f"data.train_files=[{tinystories / 'train.txt'}]",
        f"data.val_files=[{tinystories / 'val.txt'}]",
    ]


def train(settings: list[str], steps: int, seed: int, name: str) -> float:
    cmd = [sys.executable, "-m", "projects.custom_transformer.train",
           "--config", "projects/custom_transformer/configs/tiny.yaml", "--name", name,
           "--max-steps", str(steps), "--set", f"training.eval_interval={steps}",
           "--set", f"training.seed={seed}"]  # fmt: skip
    for item in settings:
        cmd += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread: fair on a shared machine
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    match = _BPB.search(out.stdout)
    if out.returncode != 0 or match is None:
        raise SystemExit(f"training failed ({name}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return float(match.group(1))


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(x: list[float]) -> list[float]:
        order = sorted(range(len(x)), key=lambda i: x[i])
        r = [0.0] * len(x)
        for rank, i in enumerate(order):
            r[i] = float(rank)
        return r

    ra, rb = ranks(a), ranks(b)
    n = len(a)
    return 1 - 6 * sum((x - y) ** 2 for x, y in zip(ra, rb)) / (n * (n * n - 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=1)
    slices = [up / "shared/data/tinystories" for up in (ROOT.parent, ROOT.parent.parent)]
    default = next((p for p in slices if p.is_dir()), slices[0])
    parser.add_argument("--tinystories", type=Path, default=default)
    parser.add_argument("--real-from", type=Path, default=None, metavar="JSON")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/synthetic_corpus.json"
    )
    args = parser.parse_args()
    if not (args.tinystories / "train.txt").is_file():
        raise SystemExit(f"no TinyStories slice at {args.tinystories} (give --tinystories DIR)")

    import random

    from common.data.synthetic import DEFAULT_DIFFICULTY, corpus_floor_bits_per_byte, write_story

    train_bytes = (args.tinystories / "train.txt").stat().st_size
    rng = random.Random(0)
    sample = [write_story(rng) for _ in range(200)]
    per_story = sum(len(s.text.encode()) for s in sample) / len(sample)
    stories = int(train_bytes / per_story)
    results: dict[str, dict[str, list[float]]] = {"synthetic": {}, "tinystories": {}}
    reused = _reused_real(args.real_from, args.steps, args.seeds)
    floor = corpus_floor_bits_per_byte(sample)
    start = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report: dict = {}
    for seed in range(args.seeds):  # seed outermost: each finished seed is a complete comparison
        for cfg, overrides in CONFIGS.items():
            for corpus in results:
                if corpus == "tinystories" and reused is not None:
                    results[corpus].setdefault(cfg, []).append(reused[cfg][seed])
                    continue
                settings = COMMON + corpus_settings(corpus, args.tinystories, stories) + overrides
                bpb = train(
                    settings, args.steps, 1337 + seed, f"bench-corpus-{stamp}-{corpus}-{cfg}-{seed}"
                )
                results[corpus].setdefault(cfg, []).append(bpb)
                print(f"{corpus:12s} {cfg:10s} seed {seed}: {bpb:.4f} bits/byte "
                      f"({time.time() - start:.0f}s)", flush=True)  # fmt: skip
        report = summarize(results, seed + 1)
        report.update({
            "command": "python benchmarks/bench_synthetic_corpus.py " + " ".join(sys.argv[1:]),
            "steps": args.steps, "seeds_requested": args.seeds, "synthetic_train_stories": stories,
            "synthetic_difficulty": DEFAULT_DIFFICULTY, "synthetic_floor_bits_per_byte": floor,
            "common_settings": COMMON, "configs": CONFIGS, "wall_s": time.time() - start,
            "tinystories_from": str(args.real_from) if reused is not None else None,
        })  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    mean, effects = report["mean_bits_per_byte"], report["effects"]
    print(f"\n{'config':10s} {'synthetic':>10s} {'tinystories':>12s} {'effect syn':>11s} "
          f"{'effect real':>12s} {'ratio':>6s}")  # fmt: skip
    for n in CONFIGS:
        e = effects.get(n)
        tail = (f" {e['synthetic']:+11.1%} {e['tinystories']:+12.1%} {e['ratio']:6.1f}"
                if e and e["ratio"] is not None else "")  # fmt: skip
        print(f"{n:10s} {mean['synthetic'][n]:10.4f} {mean['tinystories'][n]:12.4f}{tail}")
    print(f"Spearman {report['spearman']:.2f}; synthetic floor {floor:.3f} bits/byte; "
          f"wrote {args.out}")  # fmt: skip


def _reused_real(path: Path | None, steps: int, seeds: int) -> dict[str, list[float]] | None:
    """The TinyStories figures of an earlier result run with the same steps, settings, configs."""
    if path is None:
        return None
    old = json.loads(path.read_text())
    same = (old.get("steps"), old.get("common_settings"), old.get("configs")) == (
        steps, COMMON, CONFIGS,
    )  # fmt: skip
    real = old.get("bits_per_byte", {}).get("tinystories", {})
    if not same or any(len(real.get(cfg, [])) < seeds for cfg in CONFIGS):
        raise SystemExit(f"{path} was not run with these steps, settings, configs and seeds")
    return {cfg: list(real[cfg]) for cfg in CONFIGS}


def summarize(results: dict[str, dict[str, list[float]]], seeds_done: int) -> dict:
    """Means over seeds, the Spearman correlation of the two orderings, effects and ratios."""
    mean = {c: {k: sum(v) / len(v) for k, v in r.items()} for c, r in results.items()}
    names = list(CONFIGS)
    rho = spearman([mean["synthetic"][n] for n in names], [mean["tinystories"][n] for n in names])
    effects = {}
    for n in names[1:]:
        syn = mean["synthetic"][n] / mean["synthetic"]["base"] - 1
        real = mean["tinystories"][n] / mean["tinystories"]["base"] - 1
        effects[n] = {"synthetic": syn, "tinystories": real, "ratio": syn / real if real else None}
    return {"seeds_done": seeds_done, "bits_per_byte": results, "mean_bits_per_byte": mean,
            "spearman": rho, "effects": effects}  # fmt: skip


if __name__ == "__main__":
    main()
