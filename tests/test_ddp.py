"""Data-parallel training under torchrun (CPU, gloo): same loss curve as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ddp_worker
import pytest
import torch
import torch.distributed

WORKER = Path(ddp_worker.__file__)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_processes_follow_the_one_process_loss_curve(tmp_path: Path) -> None:
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is unavailable")
    # Two ranks x 2 sequences x 2 micro-steps = one process x 4 sequences x 2 micro-steps.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    args = [str(WORKER), "--out", str(tmp_path / "ddp"), "--batch-size", "2"]
    proc = subprocess.run(
        [*launch, *args, "--grad-accum-steps", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    single = ddp_worker.run(tmp_path / "single", batch_size=4, grad_accum_steps=2)
    rank0, rank1 = (json.loads((tmp_path / "ddp" / f"rank{r}.json").read_text()) for r in (0, 1))

    assert rank0["world_size"] == 2 and single["world_size"] == 1
    assert len(rank0["losses"]) == len(single["losses"]) == ddp_worker.MAX_STEPS
    assert rank0["losses"] == rank1["losses"]  # every rank sees the averaged loss
    max_diff = max(abs(a - b) for a, b in zip(rank0["losses"], single["losses"]))
    print(f"max |loss difference| 2 processes vs 1: {max_diff:.3g}")
    assert max_diff < 1e-5, (rank0["losses"], single["losses"])
    assert single["losses"][-1] < single["losses"][0] - 0.5  # it does learn
    val_ddp = [r["loss"] for r in rank0["history"] if r["split"] == "val"]
    val_one = [r["loss"] for r in single["history"] if r["split"] == "val"]
    assert val_ddp == pytest.approx(val_one, abs=1e-5)
    # Weights agree to float noise; Adam's normalized update turns the noise on the few
    # near-zero gradients into differences of at most about the learning rate.
    diffs = torch.cat(
        [
            (torch.tensor(rank0["parameters"][k]) - torch.tensor(v)).abs()
            for k, v in single["parameters"].items()
        ]
    )
    assert float(diffs.quantile(0.99)) < 1e-5 and float(diffs.max()) < 2e-2
    assert rank0["parameters"] == rank1["parameters"]  # the replicas never drift apart

    # Rank 0 alone writes checkpoints, experiment rows and log lines.
    assert rank0["saves"] == [6, 12] and rank1["saves"] == []
    assert rank1["printed"] == "" and "eval step 12" in rank0["printed"]
    names = sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir())
    assert names == ["step_0000006", "step_0000012"]
    from common.utils import query_experiments

    rows = query_experiments(
        "SELECT step, split, world_size FROM experiments ORDER BY step, split",
        storage_dir=tmp_path / "ddp" / "store",
    )
    assert rows.values.tolist() == [
        [6, "train", 2],
        [6, "val", 2],
        [12, "train", 2],
        [12, "val", 2],
    ]


def test_single_process_context_without_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    from common.training.distributed import init_distributed, resolve_device

    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    ctx = init_distributed("cpu")
    assert (ctx.rank, ctx.local_rank, ctx.world_size, ctx.is_main) == (0, 0, 1, True)
    assert ctx.device == torch.device("cpu") and not ctx.is_distributed
    ctx.barrier()  # no-ops in a single process
    ctx.cleanup()
    if not torch.cuda.is_available():
        with pytest.warns(UserWarning, match="CUDA is unavailable"):
            assert resolve_device("cuda:1") == torch.device("cpu")
        assert resolve_device("auto").type in ("cpu", "mps")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
