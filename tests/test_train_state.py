"""``TrainState``: one list of checkpoint fields, checked by type; RNG states packed per rank."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from common.models.checkpoint import CheckpointError
from common.training.checkpointing import pack_rng_states, unpack_rng_state
from common.training.state import TrainState


def test_every_field_round_trips_through_a_checkpoint_extra() -> None:
    state = TrainState(
        step=7,
        tokens_seen=896,
        elapsed_s=1.5,
        best_val_loss=2.25,
        best_val_step=6,
        last_metrics={"val_loss": 2.25},
        unstored_rows=[{"step": 6, "split": "val"}],
        store_rewind_to=4,
        world_size=2,
        rng={"0": {"python": None}},
        healthy=False,
    )
    extra = state.to_extra()
    assert "step" not in extra
    assert set(extra) == {f.name for f in dataclasses.fields(TrainState)} - {"step"}
    back = TrainState.from_metadata(Path("ckpt"), {"step": 7, "extra": extra})
    assert back == state


def test_an_old_checkpoint_without_the_newer_fields_gets_the_defaults() -> None:
    back = TrainState.from_metadata(Path("ckpt"), {"step": 3, "extra": {"tokens_seen": 12}})
    assert back.step == 3 and back.tokens_seen == 12 and back.unstored_rows == []
    assert back.best_loss == float("inf") and back.healthy is True
    # an int where a float is declared is a float (JSON writes 2.0 as 2 in some tools)
    back = TrainState.from_metadata(Path("c"), {"step": 1, "extra": {"elapsed_s": 2}})
    assert back.elapsed_s == 2.0 and isinstance(back.elapsed_s, float)


@pytest.mark.parametrize(
    ("field", "value"),
    [("tokens_seen", "12"), ("world_size", True), ("last_metrics", []), ("tokens_seen", -1)],
)
def test_a_malformed_field_is_refused_naming_it(field: str, value: object) -> None:
    with pytest.raises(CheckpointError, match=field):
        TrainState.from_metadata(Path("ckpt"), {"step": 1, "extra": {field: value}})


def test_rng_states_of_every_cuda_generator_and_of_old_checkpoints() -> None:
    cpu = torch.get_rng_state()
    cuda = [torch.arange(16, dtype=torch.uint8), torch.arange(16, 32, dtype=torch.uint8)]
    states = [
        {"torch_cpu": cpu, "torch_cuda_all": cuda, "python": [3], "numpy": ["MT"]},
        {"torch_cpu": cpu, "python": [3], "numpy": ["MT"]},
    ]
    tensors, rng_json = pack_rng_states(states)
    assert sorted(tensors) == [
        "rng_torch_cpu_rank0",
        "rng_torch_cpu_rank1",
        "rng_torch_cuda0_rank0",
        "rng_torch_cuda1_rank0",
    ]
    rank0 = unpack_rng_state(tensors, rng_json, 0, cuda=True)
    assert [t.tolist() for t in rank0["torch_cuda_all"]] == [t.tolist() for t in cuda]
    assert rank0["python"] == [3] and torch.equal(rank0["torch_cpu"], cpu)
    assert unpack_rng_state(tensors, rng_json, 0, cuda=False)["torch_cuda_all"] is None
    # a checkpoint from before every generator was saved: the current device's one state
    old = {"rng_torch_cpu_rank0": cpu, "rng_torch_cuda_rank0": cuda[0]}
    restored = unpack_rng_state(old, rng_json, 0, cuda=True)
    assert restored["torch_cuda_all"] is None and torch.equal(restored["torch_cuda"], cuda[0])
