"""Data-parallel training under torchrun (CPU, gloo): same loss curve as one process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ddp_worker
import pytest
import run_worker
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
    # eval_batches counts global batches: 2 processes evaluate the same 3 batches as 1.
    val_ddp = [r["loss"] for r in rank0["history"] if r["split"] == "val"]
    val_one = [r["loss"] for r in single["history"] if r["split"] == "val"]
    val_diff = max(abs(a - b) for a, b in zip(val_ddp, val_one))
    print(f"max |val loss difference| 2 processes vs 1: {val_diff:.3g}")
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


RUN_WORKER = Path(__file__).resolve().parent / "run_worker.py"
LONG_RUN = (
    run_worker.CONFIG.replace("max_steps: 12", "max_steps: 300")
    .replace("batch_size: 4", "batch_size: 2")
    .replace("eval_interval: 2", "eval_interval: 50")
    .replace("checkpoint_interval: 5", "checkpoint_interval: 50")
    .replace("device: cpu", "device: cpu\n  dist_timeout_s: 5")
)


def _torchrun(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.Popen(
        [*launch, str(RUN_WORKER), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal job
    )


@contextlib.contextmanager
def _ended(proc: subprocess.Popen[str]):
    """Yield ``proc``; on the way out make sure its whole process group is gone."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _rank_pid(launcher: int, rank: int) -> int:
    """The pid of the worker of ``rank`` started by the torchrun process ``launcher``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == launcher and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    raise AssertionError(f"no worker of rank {rank} under {launcher}")


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_ctrl_c_under_torchrun_checkpoints_and_resumes_bitwise(
    tmp_path: Path, isolated_assets: Path
) -> None:
    from safetensors.torch import load_file

    config = tmp_path / "long.yaml"
    config.write_text(LONG_RUN)
    runs = isolated_assets / "outputs" / "checkpoints"
    straight = _torchrun("--config", str(config), "--name", "straight")
    out, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, out + err

    with _ended(_torchrun("--config", str(config), "--name", "pressed")) as pressed:
        _wait_for(runs / "pressed" / "step_0000050", pressed)
        os.killpg(pressed.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        out, err = pressed.communicate(timeout=120)
    assert "Ctrl-C: finishing the current step, then writing a checkpoint" in err
    assert "interrupted at step" in err and "--resume pressed" in err
    stopped = [p.name for p in sorted(runs.glob("pressed/step_*"))]
    assert stopped[-1] != "step_0000300" and stopped[-1] != "step_0000050", stopped

    resumed = _torchrun("--resume", "pressed")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out + err
    assert f"resumed from {runs / 'pressed' / stopped[-1]}" in out
    a = load_file(str(runs / "straight" / "step_0000300" / "model.safetensors"))
    b = load_file(str(runs / "pressed" / "step_0000300" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", [signal.SIGSTOP, signal.SIGKILL], ids=["hung", "killed"])
def test_a_hung_or_dead_rank_ends_every_rank_within_the_timeout(
    tmp_path: Path, isolated_assets: Path, sig: signal.Signals
) -> None:
    config = tmp_path / "long.yaml"
    config.write_text(LONG_RUN.replace("max_steps: 300", "max_steps: 100000"))
    with _ended(_torchrun("--config", str(config), "--name", "hung")) as proc:
        _wait_for(isolated_assets / "outputs" / "checkpoints" / "hung" / "step_0000050", proc)
        os.kill(_rank_pid(proc.pid, 1), sig)
        stopped_at = time.monotonic()
        out, err = proc.communicate(timeout=120)
        took = time.monotonic() - stopped_at
    print(f"{sig.name} to rank 1: every process ended {took:.1f} s later (dist_timeout_s 5)")
    print("\n".join(line for line in err.splitlines() if line.startswith("error:")))
    assert proc.returncode != 0 and "common/training" not in err  # no traceback of ours
    if sig == signal.SIGSTOP:
        assert "rank 1 (last at" in err and "never arrived" in err, err[-3000:]
    else:  # rank 0 or torchrun's summary names the dead rank
        assert "rank 1" in err or "rank: 1" in err, err[-3000:]
    assert took < 25
