"""Exact resume: an interrupted and resumed run ends bitwise equal to an uninterrupted one."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from training_utils import (
    checkpoint_names,
    loaders,
    parameters_equal,
    tiny_config,
    tiny_model,
)

from common.training.trainer import Trainer
from common.utils import query_experiments

# Dropout makes the result depend on the torch RNG stream, so its restoration is tested too.
DROPOUT = 0.2
ROW_QUERY = (
    "SELECT step, split, loss, perplexity, lr, tokens_seen, epoch FROM experiments "
    "WHERE experiment_name = '{name}' ORDER BY step, split"
)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _config():
    return tiny_config(
        max_steps=20, eval_interval=4, checkpoint_interval=5, keep_checkpoints=3, lr=1e-2
    )


def _trainer(tmp_path: Path, name: str, callbacks=()) -> Trainer:
    config = _config()
    train, val = loaders(config)
    return Trainer(
        tiny_model(dropout=DROPOUT),
        config,
        train,
        val,
        experiment_name=name,
        checkpoint_dir=tmp_path / name,
        storage_dir=tmp_path / "store",
        train_tokens=len(train.tokens),
        callbacks=callbacks,
    )


def _rows(tmp_path: Path, name: str) -> list[tuple]:
    frame = query_experiments(ROW_QUERY.format(name=name), storage_dir=tmp_path / "store")
    return [tuple(r) for r in frame.itertuples(index=False)]


def _assert_same_run(a: Trainer, b: Trainer) -> None:
    assert parameters_equal(a.model, b.model)
    sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
    for key in sa:
        for field in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(sa[key][field], sb[key][field])
    assert a.scheduler.get_last_lr() == b.scheduler.get_last_lr()
    assert a.train_loader.state_dict() == b.train_loader.state_dict()
    assert a.tokens_seen == b.tokens_seen


@pytest.fixture
def straight(tmp_path: Path) -> Trainer:
    trainer = _trainer(tmp_path, "straight")
    trainer.train()
    trainer.rng_after = torch.get_rng_state()  # type: ignore[attr-defined]
    return trainer


def test_stop_and_resume_is_bitwise_equal(tmp_path: Path, straight: Trainer) -> None:
    first = _trainer(tmp_path, "split")
    first.train(stop_at_step=7)  # an interruption between checkpoints and evaluations
    assert checkpoint_names(tmp_path / "split")[-1] == "step_0000007"
    second = _trainer(tmp_path, "split")
    result = second.train(resume=True)
    assert result["step"] == 20 and result["finished"]
    _assert_same_run(straight, second)
    assert torch.equal(torch.get_rng_state(), straight.rng_after)  # type: ignore[attr-defined]
    assert _rows(tmp_path, "split") == _rows(tmp_path, "straight")
    assert len(_rows(tmp_path, "straight")) == 10  # train + val rows at steps 4, 8, ..., 20


def test_crash_after_a_checkpoint_resumes_exactly_without_duplicate_rows(
    tmp_path: Path, straight: Trainer
) -> None:
    def crash(trainer: Trainer, stats: dict) -> None:
        if stats["step"] == 9:  # after the step-8 evaluation, past the step-5 checkpoint
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        _trainer(tmp_path, "crashed", callbacks=[crash]).train()
    assert checkpoint_names(tmp_path / "crashed") == ["step_0000005"]
    stored = _rows(tmp_path, "crashed")
    assert {r[0] for r in stored} == {4, 8}  # the rows of the evaluations before the crash
    resumed = _trainer(tmp_path, "crashed")
    resumed.train(resume=True)  # re-runs steps 6-8: their rows are not stored twice
    _assert_same_run(straight, resumed)
    assert _rows(tmp_path, "crashed") == _rows(tmp_path, "straight")


def test_ctrl_c_writes_a_checkpoint_and_the_run_resumes_exactly(
    tmp_path: Path, straight: Trainer
) -> None:
    def press_ctrl_c(trainer: Trainer, stats: dict) -> None:
        if stats["step"] == 11:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        _trainer(tmp_path, "ctrl_c", callbacks=[press_ctrl_c]).train()
    assert checkpoint_names(tmp_path / "ctrl_c")[-1] == "step_0000011"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    resumed = _trainer(tmp_path, "ctrl_c")
    resumed.train(resume=True)
    _assert_same_run(straight, resumed)
    assert _rows(tmp_path, "ctrl_c") == _rows(tmp_path, "straight")


def test_resume_without_checkpoint_starts_fresh_and_finished_run_is_a_no_op(
    tmp_path: Path, straight: Trainer, capsys
) -> None:
    fresh = _trainer(tmp_path, "fresh")
    fresh.train(resume=True)
    assert "restarting run fresh from step 0" in capsys.readouterr().out
    _assert_same_run(straight, fresh)
    again = _trainer(tmp_path, "fresh")
    result = again.train(resume=True)
    assert result["step"] == 20 and parameters_equal(again.model, straight.model)
    assert len(_rows(tmp_path, "fresh")) == 10


def test_a_damaged_latest_checkpoint_falls_back_to_the_newest_intact_one(
    tmp_path: Path, straight: Trainer, capsys
) -> None:
    from safetensors.torch import load_file, save_file

    first = _trainer(tmp_path, "damaged")
    first.train(stop_at_step=12)  # checkpoints at 5, 10 and 12
    weights = tmp_path / "damaged" / "step_0000012" / "model.safetensors"
    tensors = load_file(str(weights))
    next(iter(tensors.values())).view(-1)[:8] = 1.0  # same size, other content
    save_file(tensors, str(weights))
    resumed = _trainer(tmp_path, "damaged")
    resumed.train(resume=True)
    out = capsys.readouterr().out
    assert "does not match its recorded SHA-256" in out
    assert "resuming from step_0000010, the newest intact checkpoint" in out
    _assert_same_run(straight, resumed)
    assert _rows(tmp_path, "damaged") == _rows(tmp_path, "straight")


def test_malformed_resume_fields_fall_back_too(tmp_path: Path, straight: Trainer, capsys) -> None:
    import json

    first = _trainer(tmp_path, "fields")
    first.train(stop_at_step=10)
    meta_file = tmp_path / "fields" / "step_0000010" / "checkpoint.json"
    meta = json.loads(meta_file.read_text())
    meta["extra"]["data_state"] = {}
    meta_file.write_text(json.dumps(meta))  # checkpoint.json itself carries no checksum
    resumed = _trainer(tmp_path, "fields")
    resumed.train(resume=True)
    out = capsys.readouterr().out
    assert "data_state {} does not fit the training loader" in out
    assert "resuming from step_0000005" in out
    _assert_same_run(straight, resumed)
