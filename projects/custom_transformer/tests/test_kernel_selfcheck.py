"""The kernels' self-check (``kernels/selfcheck.py``), in Triton's interpreter on CPU tensors (the
compiled kernels on a CUDA machine).

The check passes for the real kernels in float32 and bfloat16 and caches its verdict; a kernel
made to raise or to return wrong numbers is replaced by its ``ops.py`` pair with one log line
(``auto``) or stops the run (``triton``); a model on such a mixed set still matches ``ops.py``.
On this machine ``select_kernels`` on a ``cuda`` device runs the real check, which fails for
every kernel (no CUDA): the fallback end to end.
"""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from common.paths import get_cache_dir
from projects.custom_transformer import kernels
from projects.custom_transformer.model import TORCH_KERNELS, CustomTransformer, select_kernels
from projects.custom_transformer.tests.helpers import one_thread  # noqa: F401

if not kernels.triton_available():  # never pytest.importorskip: it would import triton first
    pytest.skip("triton is not installed", allow_module_level=True)

from projects.custom_transformer.kernels import selfcheck  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
#: The compiled kernels on a CUDA machine, the interpreter elsewhere.
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
K = kernels.load()


@pytest.fixture(autouse=True)
def fresh_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without this process's memo of verdicts and log lines."""
    monkeypatch.setattr(selfcheck, "_MEMO", {})
    monkeypatch.setattr(selfcheck, "_LOGGED", set())


def _with(**replaced: Any) -> SimpleNamespace:
    """The Triton kernel set with some functions replaced."""
    return SimpleNamespace(**{**vars(K), **replaced})


def _cache() -> dict[str, Any]:
    return json.loads((get_cache_dir() / selfcheck.CACHE_FILE).read_text())


@pytest.mark.slow
def test_real_kernels_pass_and_the_verdict_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen, failed = selfcheck.verified_kernels(
        K, TORCH_KERNELS, DEVICE, [torch.float32, torch.bfloat16]
    )
    assert chosen is K and failed == []
    cache = _cache()
    assert len(cache) == 2  # one key per dtype
    for key, verdicts in cache.items():
        assert json.loads(key)["dtype"] in ("float32", "bfloat16")
        assert verdicts == {group: None for group in selfcheck.GROUPS}
    # A new process (empty memo) trusts the cache and runs nothing.
    monkeypatch.setattr(selfcheck, "_MEMO", {})
    monkeypatch.setattr(selfcheck, "check_group", lambda *a: pytest.fail("checked again"))
    assert selfcheck.verified_kernels(K, TORCH_KERNELS, DEVICE, [torch.float32])[0] is K


@pytest.mark.slow
def test_kernel_that_raises_falls_back_alone_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("PTX compile failed for sm_120")

    caplog.set_level(logging.WARNING, logger=selfcheck.__name__)
    for _ in range(2):  # the second call is served by the memo: still one log line
        chosen, failed = selfcheck.verified_kernels(
            _with(swiglu_forward=broken), TORCH_KERNELS, DEVICE, [torch.float32]
        )
    assert chosen.swiglu_forward is TORCH_KERNELS.swiglu_forward
    assert chosen.swiglu_backward is TORCH_KERNELS.swiglu_backward
    assert chosen.attention_forward is K.attention_forward
    assert chosen.rmsnorm_backward is K.rmsnorm_backward
    assert chosen.lm_head_cross_entropy_forward is K.lm_head_cross_entropy_forward
    assert failed == ["swiglu (float32: RuntimeError: PTX compile failed for sm_120)"]
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "Triton kernel swiglu failed its self-check, using ops.py: "
        "float32: RuntimeError: PTX compile failed for sm_120"
    ]
    # An exception may be the moment's: it is not cached, the passes are.
    cached = next(iter(_cache().values()))
    assert "swiglu" not in cached and cached["rmsnorm"] is None


@pytest.mark.slow
def test_kernel_with_wrong_numbers_falls_back_and_the_mismatch_is_cached(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def off_by_a_bit(x: torch.Tensor, w: torch.Tensor | None, eps: float) -> Any:
        y, rstd = K.rmsnorm_forward(x, w, eps)
        return y * 1.001, rstd

    caplog.set_level(logging.WARNING, logger=selfcheck.__name__)
    chosen, failed = selfcheck.verified_kernels(
        _with(rmsnorm_forward=off_by_a_bit), TORCH_KERNELS, DEVICE, [torch.float32]
    )
    assert chosen.rmsnorm_forward is TORCH_KERNELS.rmsnorm_forward
    assert chosen.attention_backward is K.attention_backward
    assert len(failed) == 1 and failed[0].startswith("rmsnorm (float32: mismatch: rmsnorm y")
    assert len(caplog.records) == 1 and "rmsnorm" in caplog.records[0].getMessage()
    cached = next(iter(_cache().values()))
    assert cached["rmsnorm"].startswith("mismatch: rmsnorm y: max error")


def test_triton_choice_stops_with_a_clear_error() -> None:
    def nan_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: Any = None) -> Any:
        y, lse = K.attention_forward(q, k, v, out=out)
        return y.fill_(float("nan")), lse

    with pytest.raises(selfcheck.KernelCheckError, match=r"kernels=triton: .*attention \("):
        selfcheck.verified_kernels(
            _with(attention_forward=nan_attention), TORCH_KERNELS, DEVICE, [torch.float32], True
        )


@pytest.mark.slow
def test_model_on_a_mixed_set_matches_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Attention on ``ops.py`` (no log-sum-exp kept), the other kernels on Triton."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    mixed, failed = selfcheck.verified_kernels(
        _with(attention_forward=broken), TORCH_KERNELS, DEVICE, [torch.float32]
    )
    assert [f.split(" ")[0] for f in failed] == ["attention"]
    kw = dict(vocab_size=61, context_length=16, d_model=32, n_layers=2, n_heads=2)
    torch.manual_seed(0)
    model, reference = CustomTransformer(**kw), CustomTransformer(**kw)
    reference.load_state_dict(model.state_dict())
    reference.kernels = "torch"
    import projects.custom_transformer.model as model_module

    monkeypatch.setattr(model_module, "select_kernels", lambda *a: (mixed, "mixed"))
    model.to(DEVICE), reference.to(DEVICE)
    ids = torch.randint(0, 61, (2, 13), generator=torch.Generator().manual_seed(1)).to(DEVICE)
    out, ref = model(ids, ids), reference(ids, ids)
    torch.testing.assert_close(out["loss"], ref["loss"], atol=1e-5, rtol=1e-5)
    out["loss"].backward()
    ref["loss"].backward()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        assert p.grad is not None and q.grad is not None, name
        assert (p.grad - q.grad).abs().max() <= 5e-5 * q.grad.abs().max(), name


@pytest.mark.skipif(torch.cuda.is_available(), reason="exercises a CUDA device that is absent")
def test_select_kernels_on_cuda_checks_and_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    """The real wiring: ``auto`` on a ``cuda`` device runs the check, which raises for every
    kernel here (no CUDA), so every kernel falls back; ``triton`` stops instead."""
    cuda = torch.device("cuda")
    caplog.set_level(logging.WARNING, logger=selfcheck.__name__)
    chosen, description = select_kernels("auto", cuda, torch.float32, torch.bfloat16)
    for names in selfcheck.GROUPS.values():
        for name in names:
            assert getattr(chosen, name, None) is getattr(TORCH_KERNELS, name, None), name
    assert description.startswith("Triton kernels, ops.py for attention (")
    logged = [r.getMessage().split(" ")[2] for r in caplog.records]
    assert logged == list(selfcheck.GROUPS)
    with pytest.raises(selfcheck.KernelCheckError, match="self-check"):
        select_kernels("triton", cuda, torch.bfloat16)
