"""The Triton kernels against their ``ops.py`` pairs, and the model on the Triton path against the
``ops.py`` path, run in Triton's interpreter on CPU tensors (``TRITON_INTERPRET=1``, set by
:mod:`projects.custom_transformer.kernels._triton` when this module is collected on a machine
without CUDA; on a CUDA machine the same tests run the compiled kernels on the GPU).

Shapes are not multiples of the block sizes (odd sequence lengths, one head, head sizes 16, 32,
64, row counts and widths that leave partial blocks) and the attention also runs with query
blocks twice the key blocks. Tolerances:

* float32, each kernel pair against its ``ops.py`` pair: outputs and gradients within
  ``atol = rtol = 1e-5`` (observed: up to 3e-6; only the order of the float32 operations
  differs, and attention exponentiates in base 2).
* bfloat16: both implementations in bfloat16 against the float32 ``ops.py`` result, the Triton
  kernels within ``2 * (ops.py's own bfloat16 error) + 1e-2 * max|reference|``: no worse than
  rounding to bfloat16 already is.
* The whole model (float32, vocab 97, d_model 32, 2 layers, 2 heads of 16, T = 29): logits
  within ``2e-5``, loss within ``1e-5``, every gradient within ``5e-5 * max|grad|``; five AdamW
  steps with losses within ``1e-5``; under bfloat16 autocast the losses within ``2e-2``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import projects.custom_transformer.ops as ops
from common.utils.config import ConfigError, load_config
from projects.custom_transformer import kernels
from projects.custom_transformer.model import (
    TORCH_KERNELS,
    CustomTransformer,
    TransformerConfig,
    select_kernels,
)
from projects.custom_transformer.tests.helpers import one_thread  # noqa: F401

if not kernels.triton_available():  # never pytest.importorskip: it would import triton first
    pytest.skip("triton is not installed", allow_module_level=True)

from projects.custom_transformer.kernels import attention as attention_kernels  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

K = kernels.load()
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
F32 = dict(atol=1e-5, rtol=1e-5)


def _randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).to(device=DEVICE, dtype=dtype)


def _assert_bf16_close(got: torch.Tensor, ops_bf16: torch.Tensor, ref: torch.Tensor) -> None:
    """``got`` (Triton, bf16) is as close to the float32 ``ref`` as ops.py's bf16 result is."""
    ref = ref.float()
    own = (ops_bf16.float() - ref).abs().max().item()
    err = (got.float() - ref).abs().max().item()
    assert err <= 2 * own + 1e-2 * ref.abs().max().item(), (err, own)


# ----------------------------------------------------------------------------- attention
ATTENTION_SHAPES = [(2, 3, 37, 16), (1, 1, 29, 32), (1, 2, 19, 64), (3, 1, 1, 16)]


@pytest.fixture(params=[(16, 16), (32, 16)], ids=["blocks16x16", "blocks32x16"])
def attention_blocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(attention_kernels.ATTENTION_BLOCKS, DEVICE, request.param)


@pytest.mark.parametrize("shape", ATTENTION_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_attention_float32_matches_ops(shape: tuple[int, ...], attention_blocks: None) -> None:
    q, k, v, dout = (_randn(*shape, seed=i) for i in range(4))
    y, lse = K.attention_forward(q, k, v)
    y_ref = ops.attention_forward(q, k, v)
    torch.testing.assert_close(y, y_ref, **F32)
    scores = q @ k.mT / shape[-1] ** 0.5 + ops.causal_mask(shape[-2], q.dtype, q.device)
    torch.testing.assert_close(lse, scores.logsumexp(-1), **F32)
    grads = K.attention_backward(dout, q, k, v, y, lse)
    for got, ref in zip(grads, ops.attention_backward(dout, q, k, v, y_ref)):
        torch.testing.assert_close(got, ref, **F32)


def test_attention_strided_out_and_grads_buffer() -> None:
    """The model's layouts: ``out`` and ``dout`` as transposed views, gradients into one buffer."""
    b, h, t, hd = 2, 2, 21, 16
    q, k, v = (_randn(b, h, t, hd, seed=i) for i in range(3))
    out_store = torch.empty(b, t, h, hd, device=DEVICE)
    y, lse = K.attention_forward(q, k, v, out=out_store.transpose(1, 2))
    assert y.data_ptr() == out_store.data_ptr()
    torch.testing.assert_close(out_store.transpose(1, 2), ops.attention_forward(q, k, v), **F32)
    dout = _randn(b, t, h, hd, seed=5).transpose(1, 2)
    grads = torch.empty(3, b, h, t, hd, device=DEVICE)
    dq, dk, dv = K.attention_backward(dout, q, k, v, y, lse, grads=grads)
    assert dq.data_ptr() == grads.data_ptr()
    for got, ref in zip(grads.unbind(0), ops.attention_backward(dout, q, k, v, y)):
        torch.testing.assert_close(got, ref, **F32)


@pytest.mark.parametrize("shape", [(2, 3, 37, 16), (1, 1, 29, 64)], ids=["h3d16", "h1d64"])
def test_attention_bfloat16(shape: tuple[int, ...]) -> None:
    q, k, v, dout = (_randn(*shape, seed=i) for i in range(4))
    qb, kb, vb, db = (x.bfloat16() for x in (q, k, v, dout))
    y_ref = ops.attention_forward(q, k, v)
    y, lse = K.attention_forward(qb, kb, vb)
    assert y.dtype == torch.bfloat16
    y_ops = ops.attention_forward(qb, kb, vb)
    _assert_bf16_close(y, y_ops, y_ref)
    grads = K.attention_backward(db, qb, kb, vb, y, lse)
    grads_ops = ops.attention_backward(db, qb, kb, vb, y_ops)
    for got, own, ref in zip(grads, grads_ops, ops.attention_backward(dout, q, k, v, y_ref)):
        _assert_bf16_close(got, own, ref)


# ----------------------------------------------------------------------------- RMSNorm
@pytest.mark.parametrize("shape", [(3, 7, 37), (5, 64), (1, 1, 130)], ids=str)
@pytest.mark.parametrize("gain", [False, True], ids=["folded", "gain"])
def test_rmsnorm_float32_matches_ops(shape: tuple[int, ...], gain: bool) -> None:
    x, dout = _randn(*shape, seed=1), _randn(*shape, seed=2)
    w = 1 + 0.1 * _randn(shape[-1], seed=3) if gain else None
    y, rstd = K.rmsnorm_forward(x, w, 1e-5)
    y_ref, rstd_ref = ops.rmsnorm_forward(x, w, 1e-5)
    torch.testing.assert_close(y, y_ref, **F32)
    torch.testing.assert_close(rstd, rstd_ref, **F32)
    dx, dw = K.rmsnorm_backward(dout, x, w, 1e-5, rstd)
    dx_ref, dw_ref = ops.rmsnorm_backward(dout, x, w, 1e-5, rstd_ref)
    torch.testing.assert_close(dx, dx_ref, **F32)
    if gain:
        torch.testing.assert_close(dw, dw_ref, **F32)
    else:
        assert dw is None


def test_rmsnorm_bfloat16() -> None:
    x, dout, w = _randn(9, 48, seed=1), _randn(9, 48, seed=2), 1 + 0.1 * _randn(48, seed=3)
    xb, db, wb = x.bfloat16(), dout.bfloat16(), w.bfloat16()
    y_ref, rstd_ref = ops.rmsnorm_forward(x, w, 1e-5)
    y, rstd = K.rmsnorm_forward(xb, wb, 1e-5)
    y_ops, rstd_ops = ops.rmsnorm_forward(xb, wb, 1e-5)
    assert y.dtype == torch.bfloat16 and rstd.dtype == torch.float32
    _assert_bf16_close(y, y_ops, y_ref)
    got = K.rmsnorm_backward(db, xb, wb, 1e-5, rstd)
    own = ops.rmsnorm_backward(db, xb, wb, 1e-5, rstd_ops)
    for g, o, r in zip(got, own, ops.rmsnorm_backward(dout, x, w, 1e-5, rstd_ref)):
        _assert_bf16_close(g, o, r)


# ----------------------------------------------------------------------------- SwiGLU
@pytest.mark.parametrize("shape", [(5, 11, 46), (3, 128), (1, 2)], ids=str)
def test_swiglu_float32_matches_ops(shape: tuple[int, ...]) -> None:
    gate_up = _randn(*shape, seed=1)
    dout = _randn(*shape[:-1], shape[-1] // 2, seed=2)
    y, stats = K.swiglu_forward(gate_up)
    y_ref, stats_ref = ops.swiglu_forward(gate_up)
    torch.testing.assert_close(y, y_ref, **F32)
    torch.testing.assert_close(stats, stats_ref, **F32)
    torch.testing.assert_close(
        K.swiglu_backward(dout, gate_up, stats),
        ops.swiglu_backward(dout, gate_up, stats_ref),
        **F32,
    )


def test_swiglu_writes_into_given_buffers_and_bfloat16() -> None:
    gate_up, dout = _randn(13, 2 * 24, seed=1), _randn(13, 24, seed=2)
    out, stats = torch.empty(13, 24, device=DEVICE), torch.empty(13, 48, device=DEVICE)
    y, s = K.swiglu_forward(gate_up, out=out, stats=stats)
    assert y is out and s is stats
    torch.testing.assert_close(out, ops.swiglu_forward(gate_up)[0], **F32)
    gb, db = gate_up.bfloat16(), dout.bfloat16()
    y_ref, s_ref = ops.swiglu_forward(gate_up)
    y_b, s_b = K.swiglu_forward(gb)
    y_ops, s_ops = ops.swiglu_forward(gb)
    _assert_bf16_close(y_b, y_ops, y_ref)
    _assert_bf16_close(
        K.swiglu_backward(db, gb, s_b),
        ops.swiglu_backward(db, gb, s_ops),
        ops.swiglu_backward(dout, gate_up, s_ref),
    )


# ----------------------------------------------------------------------------- cross-entropy
def _labels(n: int, vocab: int, seed: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, vocab, (n,), generator=g)
    labels[::4] = ops.IGNORE_INDEX
    labels[1] = vocab - 1  # the last column, in a partial vocabulary block
    return labels.to(DEVICE)


@pytest.mark.parametrize("vocab", [1500, 97], ids=["v1500", "v97"])
def test_cross_entropy_float32_matches_ops(vocab: int) -> None:
    logits, labels, dloss = _randn(29, vocab, seed=1), _labels(29, vocab), torch.tensor(1.7)
    loss, lse = K.cross_entropy_forward(logits, labels)
    torch.testing.assert_close(loss, ops.cross_entropy_forward(logits, labels), **F32)
    torch.testing.assert_close(lse, logits.logsumexp(-1), **F32)
    torch.testing.assert_close(
        K.cross_entropy_backward(dloss, logits, labels, lse),
        ops.cross_entropy_backward(dloss, logits, labels),
        **F32,
    )


def test_cross_entropy_all_ignored_is_nan_with_zero_gradient() -> None:
    logits = _randn(5, 40, seed=1)
    labels = torch.full((5,), ops.IGNORE_INDEX, device=DEVICE)
    loss, lse = K.cross_entropy_forward(logits, labels)
    assert torch.isnan(loss) and torch.isnan(ops.cross_entropy_forward(logits, labels))
    assert (K.cross_entropy_backward(torch.tensor(1.0), logits, labels, lse) == 0).all()


@pytest.mark.parametrize("which", ["loss", "logits", "both"])
def test_lm_head_float32_matches_ops(which: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ops.CHUNK_BYTES, DEVICE, 7 * 300 * 8)  # blocks of 7 rows: 5 blocks
    x, w, labels = _randn(31, 24, seed=1), 0.3 * _randn(300, 24, seed=2), _labels(31, 300)
    logits, loss, lse = K.lm_head_cross_entropy_forward(x, w, labels)
    logits_ref, loss_ref = ops.lm_head_cross_entropy_forward(x, w, labels)
    torch.testing.assert_close(logits, logits_ref, **F32)
    torch.testing.assert_close(loss, loss_ref, **F32)
    dlogits = 1e-3 * _randn(31, 300, seed=4) if which != "loss" else None
    dloss = torch.tensor(0.8) if which != "logits" else None
    got = K.lm_head_cross_entropy_backward(dlogits, dloss, x, w, labels, logits, lse)
    ref = ops.lm_head_cross_entropy_backward(dlogits, dloss, x, w, labels, logits_ref)
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r, **F32)


def test_lm_head_bfloat16() -> None:
    x, w, labels = _randn(23, 32, seed=1), 0.3 * _randn(200, 32, seed=2), _labels(23, 200)
    xb, wb, dloss = x.bfloat16(), w.bfloat16(), torch.tensor(1.0)
    logits_ref, loss_ref = ops.lm_head_cross_entropy_forward(x, w, labels)
    logits, loss, lse = K.lm_head_cross_entropy_forward(xb, wb, labels)
    logits_ops, loss_ops = ops.lm_head_cross_entropy_forward(xb, wb, labels)
    assert loss.dtype == torch.float32
    _assert_bf16_close(loss, loss_ops, loss_ref)
    got = K.lm_head_cross_entropy_backward(None, dloss, xb, wb, labels, logits, lse)
    own = ops.lm_head_cross_entropy_backward(None, dloss, xb, wb, labels, logits_ops)
    ref = ops.lm_head_cross_entropy_backward(None, dloss, x, w, labels, logits_ref)
    for g, o, r in zip(got, own, ref):
        _assert_bf16_close(g, o, r)


# ----------------------------------------------------------------------------- the model
VOCAB, T = 97, 29
MODEL_KW: dict[str, Any] = dict(
    vocab_size=VOCAB, context_length=32, d_model=32, n_layers=2, n_heads=2, rope_theta=1000.0
)


def _models(**overrides: Any) -> tuple[CustomTransformer, CustomTransformer]:
    """The same weights twice: one model on the Triton kernels, one on ``ops.py``."""
    torch.manual_seed(0)
    triton_model = CustomTransformer(**{**MODEL_KW, **overrides})
    with torch.no_grad():  # non-trivial norm gains, so that their gradients are checked too
        for name, param in triton_model.named_parameters():
            if name.endswith("norm.weight"):
                param.add_(0.1 * torch.randn_like(param))
    torch_model = CustomTransformer(**{**MODEL_KW, **overrides})
    torch_model.load_state_dict(triton_model.state_dict())
    triton_model.kernels, torch_model.kernels = "triton", "torch"
    return triton_model.to(DEVICE), torch_model.to(DEVICE)


def _batch(b: int = 2, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (b, T), generator=g)
    labels = torch.randint(0, VOCAB, (b, T), generator=g)
    labels[0, :5] = -100
    return ids.to(DEVICE), labels.to(DEVICE)


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_model_triton_path_matches_ops_path(tied: bool) -> None:
    triton_model, torch_model = _models(tie_embeddings=tied)
    ids, labels = _batch()
    out, ref = triton_model(ids, labels), torch_model(ids, labels)
    torch.testing.assert_close(out["logits"], ref["logits"], atol=2e-5, rtol=2e-5)
    torch.testing.assert_close(out["loss"], ref["loss"], atol=1e-5, rtol=1e-5)
    out["loss"].backward()
    ref["loss"].backward()
    ref_params = dict(torch_model.named_parameters())
    for name, param in triton_model.named_parameters():
        expected = ref_params[name].grad
        assert param.grad is not None and expected is not None, name
        scale = expected.abs().max().item()
        assert (param.grad - expected).abs().max().item() <= 5e-5 * scale, name


def test_model_triton_path_five_adamw_steps() -> None:
    triton_model, torch_model = _models(dropout=0.1)
    losses: dict[str, list[float]] = {"triton": [], "torch": []}
    ids, labels = _batch()
    for model in (triton_model, torch_model):
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
        torch.manual_seed(7)  # the same dropout masks on both paths
        for _ in range(5):
            loss = model(ids, labels)["loss"]
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses[model.kernels].append(loss.item())
    assert losses["triton"][-1] < losses["triton"][0]
    assert losses["triton"] == pytest.approx(losses["torch"], abs=1e-5, rel=1e-5)


def test_model_triton_path_bfloat16_autocast() -> None:
    triton_model, torch_model = _models()
    ids, labels = _batch()
    losses = []
    for model in (triton_model, torch_model):
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            loss = model(ids, labels)["loss"]
        loss.backward()
        losses.append(loss.item())
        assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters())
    assert losses[0] == pytest.approx(losses[1], abs=2e-2)


# ----------------------------------------------------------------------------- path choice
def test_path_choice_and_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert select_kernels("auto", cpu, torch.float32)[0] is TORCH_KERNELS
    assert select_kernels("torch", cuda, torch.float32)[0] is TORCH_KERNELS
    assert select_kernels("auto", cuda, torch.float64)[0] is TORCH_KERNELS
    if torch.cuda.is_available():  # after the self-check (on CPU: test_kernel_selfcheck.py)
        assert select_kernels("auto", cuda, torch.bfloat16)[0] is K
    with pytest.raises(ValueError, match="float64"):
        select_kernels("triton", cuda, torch.float64)
    if not torch.cuda.is_available():
        chosen, description = select_kernels("triton", cpu, torch.float32)
        assert chosen is K and "interpreter" in description

    triton_model, torch_model = _models()
    ids, labels = _batch()
    triton_model(ids, labels)
    triton_model(ids, labels)
    torch_model(ids, labels)
    lines = capsys.readouterr().out.splitlines()
    assert [ln for ln in lines if "Triton kernels" in ln] == [
        ln for ln in lines if ln.startswith("custom_transformer kernels: Triton kernels")
    ]
    assert sum("Triton kernels" in ln for ln in lines) == 1
    assert "custom_transformer kernels: ops.py (model.kernels=torch)" in lines


def test_kernels_config_field(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  kernels: triton\n")
    cfg = load_config(path, model_cls=TransformerConfig)
    model = CustomTransformer.from_config(cfg.model, vocab_size=50)
    assert model.kernels == "triton"
    assert "kernels" not in model.config  # a run-time choice, not part of the checkpoint
    path.write_text("model:\n  kernels: cuda\n")
    with pytest.raises(ConfigError, match="model.kernels: must be one of auto, torch, triton"):
        load_config(path, model_cls=TransformerConfig)
    monkeypatch.setattr(kernels, "triton_available", lambda: False)
    path.write_text("model:\n  kernels: triton\n")
    with pytest.raises(ConfigError, match="model.kernels: 'triton' requested but the triton"):
        load_config(path, model_cls=TransformerConfig)
    assert TransformerConfig(kernels="auto").kernels == "auto"
    with pytest.raises(ValueError, match="must be one of"):
        model.kernels = "fast"
