"""System metrics in stored rows: a real training run on CPU, its rows read back from the store."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from training_utils import loaders, tiny_config, tiny_model

from common.training.system_metrics import SystemMetrics
from common.training.trainer import Trainer


def test_cpu_system_metrics_are_in_every_stored_evaluation_row(tmp_path: Path) -> None:
    from common.utils import query_experiments

    torch.set_num_threads(1)
    config = tiny_config(max_steps=30, lr=1e-2, eval_interval=10, checkpoint_interval=30)
    train, val = loaders(config)
    trainer = Trainer(tiny_model(), config, train, val, experiment_name="sysrun",
                      checkpoint_dir=tmp_path / "ckpt", storage_dir=tmp_path / "store")  # fmt: skip
    trainer.train()
    frame = query_experiments(
        "SELECT * FROM experiments ORDER BY step, split", storage_dir=tmp_path / "store"
    )
    assert len(frame) == 6 and set(frame["split"]) == {"train", "val"}
    sys_columns = sorted(c for c in frame.columns if c.startswith("sys__"))
    assert sys_columns == ["sys__cpu_percent", "sys__rss_mb"]  # no CUDA columns on a CPU run
    import psutil

    rss_now = psutil.Process().memory_info().rss / 2**20
    assert frame["sys__rss_mb"].between(50, rss_now * 1.5).all(), frame["sys__rss_mb"]
    cpu = frame["sys__cpu_percent"]
    assert cpu.notna().all() and (cpu >= 0).all() and (cpu <= 100 * (os.cpu_count() or 1)).all()
    assert cpu.max() > 1  # training used the CPU between evaluations


def test_cpu_percent_measures_the_time_since_the_previous_sample() -> None:
    metrics = SystemMetrics("cpu")
    total = 0
    for i in range(3_000_000):  # about a second of one busy core
        total += i
    busy = metrics.sample()["sys__cpu_percent"]
    assert 30 < busy <= 100 * (os.cpu_count() or 1) and total > 0, busy
