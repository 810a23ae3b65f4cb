"""``common/device.py`` on a machine without CUDA: every function answers (None, 0, False, a
no-op) instead of raising, so the code behind it runs on CPU."""

from __future__ import annotations

import sys

import pytest
import torch

from common import device

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="CPU behaviour")


def test_queries_answer_without_cuda() -> None:
    assert device.cuda_available() is False
    assert device.device_count() == 0
    assert device.device_name() is None
    assert device.capability() is None
    assert device.total_memory_mb() is None
    assert device.free_memory_mb() is None
    assert device.bf16_supported() is False
    assert device.device_properties(0) is None
    assert device.device_properties(-1) is None
    for where in ("cpu", torch.device("cpu"), "cuda", "cuda:1", None):
        assert device.max_allocated_mb(where) is None
        assert device.memory_allocated_mb(where) is None
        assert device.reserved_mb(where) is None


def test_is_cuda() -> None:
    assert device.is_cuda("cuda") and device.is_cuda("cuda:3")
    assert device.is_cuda(torch.device("cuda", 0))
    assert not device.is_cuda("cpu") and not device.is_cuda(torch.device("cpu"))
    assert not device.is_cuda(None) and not device.is_cuda("mps")


def test_actions_are_no_ops_without_cuda() -> None:
    for where in ("cpu", "cuda"):
        device.synchronize(where)
        device.reset_peak_memory(where)
    device.set_device("cpu")
    device.empty_cache()
    device.manual_seed_all(3)
    before = torch.get_rng_state()
    device.set_cuda_rng_states(None)
    device.set_cuda_rng_states([torch.zeros(16, dtype=torch.uint8)])
    assert torch.equal(torch.get_rng_state(), before)  # the CPU generator is left alone


def test_rng_states_are_none_without_cuda() -> None:
    assert device.cuda_rng_states() is None


def test_autocast_is_nothing_off_cuda() -> None:
    with device.autocast("cpu", torch.bfloat16):
        assert not torch.is_autocast_enabled("cpu")
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32
    with device.autocast("cuda", None):
        assert not torch.is_autocast_enabled("cuda")


def test_grad_scaler_only_for_float16_on_cuda() -> None:
    assert device.grad_scaler(torch.float16) is None
    assert device.grad_scaler(torch.bfloat16) is None
    assert device.grad_scaler(None) is None


def test_versions_without_a_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    assert device.cuda_version() == torch.version.cuda  # None on a CPU build
    assert device.driver_version() is None  # pynvml installed, no NVIDIA driver here
    monkeypatch.setitem(sys.modules, "pynvml", None)  # and without pynvml at all
    assert device.driver_version() is None


def test_a_driver_that_raises_means_no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> bool:
        raise RuntimeError("CUDA driver initialization failed")

    monkeypatch.setattr(torch.cuda, "is_available", broken)
    assert device.cuda_available() is False
    assert device.device_count() == 0
    assert device.cuda_rng_states() is None
