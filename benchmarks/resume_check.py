"""Bitwise resume through the command line, on any device (made for CUDA: ``gpu_check.sh``).

Trains ``configs/tiny.yaml`` (with dropout, so the RNG streams matter) for ``--steps`` steps
straight, and again stopped at half and resumed with ``--resume``; then compares the two runs'
final checkpoints (every tensor of every ``.safetensors`` file: weights, optimizer state, RNG
states) and their stored metric rows for equality. Writes a JSON verdict; exit status 0 when
bitwise equal, 1 otherwise.

Usage::

    python benchmarks/resume_check.py --device cuda --out resume_cuda.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CONFIG = REPO / "projects" / "custom_transformer" / "configs" / "tiny.yaml"
ROWS = (
    "SELECT step, split, loss, lr, tokens_seen FROM experiments "
    "WHERE experiment_name = '{name}' ORDER BY step, split"
)


def _train(device: str, name: str, steps: int, half: int, resume: bool, env: dict) -> float:
    cmd = [sys.executable, "-m", "projects.custom_transformer.train", "--device", device]
    cmd += ["--resume", name] if resume else ["--config", str(CONFIG), "--name", name]
    cmd += ["--max-steps", str(steps)]
    if not resume:
        for override in (
            f"training.checkpoint_interval={half}",
            f"training.eval_interval={max(1, half // 2)}",
            "model.dropout=0.1",
        ):
            cmd += ["--set", override]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:])}: exit {proc.returncode}: {proc.stderr[-800:]}")
    return time.perf_counter() - start


def _tensors(checkpoint: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    out = {}
    for path in sorted(checkpoint.rglob("*.safetensors")):
        for key, value in load_file(path).items():
            out[f"{path.relative_to(checkpoint)}:{key}"] = value
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--out", type=Path, default=None, help="JSON verdict")
    args = p.parse_args(argv)
    half = args.steps // 2
    with tempfile.TemporaryDirectory(prefix="resume-check-") as tmp:
        env = {**os.environ, "RESEARCH_ASSETS_DIR": tmp, "PYTHONPATH": str(REPO)}
        os.environ["RESEARCH_ASSETS_DIR"] = tmp
        import torch

        from common.device import device_name
        from common.experiments import query_experiments
        from common.models.checkpoint import latest_checkpoint
        from common.training.run import run_dir

        times = {
            "straight_s": _train(args.device, "straight", args.steps, half, False, env),
            "first_half_s": _train(args.device, "split", half, half, False, env),
            "resumed_s": _train(args.device, "split", args.steps, half, True, env),
        }
        finals = {name: latest_checkpoint(run_dir(name)) for name in ("straight", "split")}
        if any(path is None for path in finals.values()):
            raise RuntimeError(f"a run left no checkpoint: {finals}")
        a, b = (_tensors(path) for path in finals.values() if path is not None)
        differing = sorted(
            k
            for k in a.keys() | b.keys()
            if k not in a.keys() & b.keys() or not torch.equal(a[k], b[k])
        )
        rows = {
            name: [tuple(r) for r in query_experiments(ROWS.format(name=name)).itertuples(False)]
            for name in ("straight", "split")
        }
        verdict = {
            "device": args.device,
            "gpu": device_name(),
            "steps": args.steps,
            "resumed_at": half,
            "checkpoints": {k: Path(v).name for k, v in finals.items() if v is not None},
            "tensors_compared": len(a),
            "differing_tensors": differing[:20],
            "rows_equal": rows["straight"] == rows["split"],
            "rows": len(rows["straight"]),
            "bitwise_equal": not differing and rows["straight"] == rows["split"],
            **times,
        }
    text = json.dumps(verdict, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0 if verdict["bitwise_equal"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
