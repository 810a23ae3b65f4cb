"""The training loop: learning, accumulation, divergence, checkpoints, logging, stored rows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from training_utils import (
    VOCAB,
    checkpoint_names,
    loaders,
    tiny_config,
    tiny_model,
)

from common.models.base import load_model_from_checkpoint
from common.models.checkpoint import latest_checkpoint
from common.models.examples import TinyTransformerLM
from common.training.trainer import (
    Trainer,
    TrainingDivergedError,
)
from common.utils.config import ConfigError


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _trainer(tmp_path: Path, config, model=None, **kwargs) -> Trainer:
    train, val = loaders(config)
    kwargs.setdefault("save_experiments", False)
    return Trainer(
        model if model is not None else tiny_model(),
        config,
        train,
        val,
        experiment_name="unit",
        checkpoint_dir=tmp_path / "ckpt",
        storage_dir=tmp_path / "store",
        **kwargs,
    )


def test_loss_falls_and_checkpoints_rotate(tmp_path: Path) -> None:
    config = tiny_config(
        max_steps=40, lr=2e-2, eval_interval=10, checkpoint_interval=10, keep_checkpoints=2
    )
    trainer = _trainer(tmp_path, config)
    result = trainer.train()
    first_train = trainer.history[0]
    assert result["finished"] and result["step"] == 40
    assert result["tokens_seen"] == 40 * 4 * 16
    # Random guessing costs ln(32) = 3.47 nats; the Markov stream is far more predictable.
    assert result["val_loss"] < 0.5 * math.log(VOCAB), result
    assert result["val_loss"] < first_train["loss"]
    assert result["best_val_loss"] <= result["val_loss"]
    assert result["val_bits_per_byte"] == pytest.approx(result["val_loss"] / math.log(2))
    assert [r["step"] for r in trainer.history] == [10, 10, 20, 20, 30, 30, 40, 40]
    assert checkpoint_names(tmp_path / "ckpt") == ["step_0000030", "step_0000040"]
    meta = json.loads((tmp_path / "ckpt" / "step_0000040" / "checkpoint.json").read_text())
    assert meta["step"] == 40
    assert meta["extra"]["data_state"] == {"step": 40}
    assert meta["extra"]["config"]["training"]["max_steps"] == 40
    assert meta["metrics"]["val_loss"] == pytest.approx(result["val_loss"])
    rebuilt = load_model_from_checkpoint(tmp_path / "ckpt" / "step_0000040")
    assert isinstance(rebuilt, TinyTransformerLM)
    assert all(torch.equal(a, b) for a, b in zip(rebuilt.parameters(), trainer.model.parameters()))


def test_gradient_accumulation_matches_one_big_batch(tmp_path: Path) -> None:
    config = tiny_config(max_steps=6, batch_size=8, eval_interval=0, checkpoint_interval=0)
    big, _ = loaders(config)
    batches = [next(big) for _ in range(6)]

    class Halves:  # the same samples, split into two micro-batches per step
        def __iter__(self):
            for x, y in batches:
                yield x[:4], y[:4]
                yield x[4:], y[4:]

    losses: dict[str, list[float]] = {"big": [], "accum": []}
    grads: dict[str, list[torch.Tensor]] = {}

    def recorder(key: str):
        def record(trainer: Trainer, stats: dict) -> None:
            losses[key].append(stats["loss"])
            if stats["step"] == 1:  # gradients of the first step, before any update differs
                grads[key] = [p.grad.clone() for p in trainer.model.parameters()]

        return record

    one = _trainer(tmp_path / "a", config, callbacks=[recorder("big")])
    one.train_loader, one.val_loader = iter(batches), None
    one.train()
    config2 = tiny_config(
        max_steps=6, batch_size=4, grad_accum_steps=2, eval_interval=0, checkpoint_interval=0
    )
    two = _trainer(tmp_path / "b", config2, callbacks=[recorder("accum")])
    two.train_loader, two.val_loader = Halves(), None
    two.train()
    assert losses["big"] == pytest.approx(losses["accum"], abs=1e-5)
    for a, b in zip(grads["big"], grads["accum"]):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert two.tokens_seen == one.tokens_seen == 6 * 8 * 16


class PoisonedLM(TinyTransformerLM):
    """Returns a NaN loss from the ``poison_at``-th forward call on."""

    poison_at = 10**9
    calls = 0

    def forward(self, input_ids, labels=None):
        out = super().forward(input_ids, labels)
        if labels is not None:
            type(self).calls += 1
            if type(self).calls >= self.poison_at:
                out["loss"] = out["loss"] * float("nan")
        return out


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    PoisonedLM.calls, PoisonedLM.poison_at = 0, 6  # steps 1-5 fine, step 6 diverges
    torch.manual_seed(0)
    model = PoisonedLM(VOCAB, context_length=16, d_model=32, n_layers=1, n_heads=2)
    config = tiny_config(max_steps=20, checkpoint_interval=2, eval_interval=0, keep_checkpoints=5)
    trainer = _trainer(tmp_path, config, model=model)
    with pytest.raises(TrainingDivergedError) as info:
        trainer.train()
    message = str(info.value)
    assert "step 6" in message and "loss = nan" in message
    assert "training.lr" in message and "step_0000004" in message
    assert info.value.step == 6
    assert checkpoint_names(tmp_path / "ckpt") == ["step_0000002", "step_0000004"]
    assert trainer.step == 5  # the poisoned step never updated the weights
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    for path in (tmp_path / "ckpt").glob("step_*"):
        state = load_model_from_checkpoint(path).state_dict()
        assert all(bool(torch.isfinite(t).all()) for t in state.values())


def test_fresh_run_refuses_a_folder_with_checkpoints(tmp_path: Path) -> None:
    config = tiny_config(max_steps=2, eval_interval=0)
    _trainer(tmp_path, config).train()
    with pytest.raises(ConfigError, match="already has checkpoints"):
        _trainer(tmp_path, config).train()


def test_plain_log_lines_without_a_terminal(tmp_path: Path, capsys) -> None:
    config = tiny_config(max_steps=4, eval_interval=4)
    config.logging.log_interval = 2
    config.logging.progress_bar = True  # stderr is not a tty under pytest: plain lines instead
    _trainer(tmp_path, config).train()
    out = capsys.readouterr().out
    assert "step 2/4 | loss" in out and "step 4/4 | loss" in out and "tok/s" in out
    assert "eval step 4: val loss" in out


def test_half_precision_request_on_cpu_trains_in_float32(tmp_path: Path, capsys) -> None:
    trainer = _trainer(tmp_path, tiny_config(max_steps=2, eval_interval=0, dtype="bf16"))
    assert trainer.amp_dtype is None and trainer.scaler is None
    trainer.train()
    assert "autocast applies on CUDA only" in capsys.readouterr().out
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def test_invalid_training_settings_raise_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="training.dtype"):
        _trainer(tmp_path, tiny_config(dtype="float8"))
    with pytest.raises(ConfigError, match="training.schedule"):
        _trainer(tmp_path, tiny_config(schedule="step"))
    with pytest.raises(ConfigError, match="grad_accum_steps"):
        _trainer(tmp_path, tiny_config(grad_accum_steps=0))
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        _trainer(tmp_path, tiny_config(device="tpu"))
    with pytest.raises(ConfigError, match="git_commit"):
        _trainer(tmp_path, tiny_config(), metadata={"git_commit": "abc"})


def test_latest_checkpoint_ignores_incomplete_folders(tmp_path: Path) -> None:
    config = tiny_config(max_steps=4, eval_interval=0, checkpoint_interval=2, keep_checkpoints=0)
    _trainer(tmp_path, config).train()
    root = tmp_path / "ckpt"
    (root / "step_0000009").mkdir()  # e.g. a folder without checkpoint.json
    (root / ".step_0000010.tmp-abc").mkdir()
    assert latest_checkpoint(root) == root / "step_0000004"
    assert checkpoint_names(root)[:2] == ["step_0000002", "step_0000004"]


def test_a_collapsed_run_is_reported_and_its_checkpoints_are_not_good(
    tmp_path: Path, capsys
) -> None:
    def kill_the_model(trainer: Trainer, stats: dict) -> None:
        if stats["step"] == 6:  # every weight 0: the gradients are exactly 0 from here on
            with torch.no_grad():
                for p in trainer.model.parameters():
                    p.zero_()
            trainer.optimizer.state.clear()  # and no momentum to revive it

    config = tiny_config(
        max_steps=15, eval_interval=0, checkpoint_interval=5, keep_checkpoints=1, collapse_steps=3
    )
    trainer = _trainer(tmp_path, config, callbacks=[kill_the_model])
    result = trainer.train()
    out = capsys.readouterr().out
    assert "training collapsed at step 9: gradient norm exactly 0 for 3 steps" in out
    assert "the last good checkpoint is" in out and "step_0000005" in out
    assert result["collapsed_at"] == 9
    assert trainer.last_good_checkpoint == tmp_path / "ckpt" / "step_0000005"
    # the last good checkpoint outlives keep_checkpoints=1
    assert checkpoint_names(tmp_path / "ckpt") == ["step_0000005", "step_0000015"]
    meta = json.loads((tmp_path / "ckpt" / "step_0000015" / "checkpoint.json").read_text())
    assert meta["extra"]["healthy"] is False
    assert meta["extra"]["last_good_checkpoint"].endswith("step_0000005")


def test_ctrl_c_during_a_long_step_is_acknowledged_at_once(tmp_path: Path, capsys) -> None:
    import os
    import signal
    import threading
    import time

    class SlowModel(type(tiny_model())):  # type: ignore[misc]
        def forward(self, input_ids, labels=None):  # type: ignore[no-untyped-def]
            time.sleep(1.0)  # a long step
            return super().forward(input_ids, labels)

    torch.manual_seed(0)
    model = SlowModel(VOCAB, context_length=16, d_model=32, n_layers=1, n_heads=2)
    config = tiny_config(max_steps=5, eval_interval=0, checkpoint_interval=0)
    trainer = _trainer(tmp_path, config, model=model)
    pressed: list[float] = []

    def press() -> None:
        time.sleep(0.3)
        pressed.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press).start()
    with pytest.raises(KeyboardInterrupt, match="interrupted at step 1"):
        trainer.train()
    assert trainer._interrupt_time is not None
    assert trainer._interrupt_time - pressed[0] < 0.5  # said at once, not when the step ended
    assert "Ctrl-C: finishing the current step" in capsys.readouterr().err
    assert checkpoint_names(tmp_path / "ckpt") == ["step_0000001"]
