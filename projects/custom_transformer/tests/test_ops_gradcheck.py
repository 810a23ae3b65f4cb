"""``torch.autograd.gradcheck`` in float64 on every hand-written forward/backward pair.

Each pair is wrapped in a throw-away ``torch.autograd.Function`` whose backward calls the
hand-written ``*_backward``; gradcheck compares it with finite differences of ``*_forward``.
Tolerances: gradcheck's defaults (finite differences with eps 1e-6; atol 1e-5, rtol 1e-3).
Inputs are random and asymmetric: RoPE at positions 3..7 (not 0..4), causal attention with
T=5 and query/head blocks forced down to 2 rows/1 head (so partial blocks and the accumulation
across blocks are exercised), labels with ignored (-100) positions, dropout with a fixed mask.
The block pair and the model's three autograd Functions are checked the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import projects.custom_transformer.model as model
import projects.custom_transformer.ops as ops
from projects.custom_transformer.model import (
    EmbeddingFunction,
    LMHeadFunction,
    TransformerBlockFunction,
    transformer_block_backward,
    transformer_block_forward,
)
from projects.custom_transformer.tests.helpers import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

DT = torch.float64


class _Pair(torch.autograd.Function):
    """Autograd wrapper: ``fwd(*inputs) -> (outputs, stats)``, ``bwd(grads, inputs, stats)``."""

    @staticmethod
    def forward(ctx: Any, fwd: Callable, bwd: Callable, *inputs: Any) -> Any:
        outputs, stats = fwd(*inputs)
        ctx.bwd, ctx.stats, ctx.inputs = bwd, stats, inputs
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> Any:
        return (None, None, *ctx.bwd(grads, ctx.inputs, ctx.stats))


def check(fwd: Callable, bwd: Callable, *inputs: Any) -> None:
    assert torch.autograd.gradcheck(lambda *xs: _Pair.apply(fwd, bwd, *xs), inputs)


def rand(*shape: int, grad: bool = True, std: float = 1.0) -> torch.Tensor:
    return (std * torch.randn(*shape, dtype=DT)).requires_grad_(grad)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(1234)


@pytest.fixture(params=["default-blocks", "tiny-blocks"])
def blocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with the default block sizes and with 1 row / 1 head / 2 queries / 1 sequence blocks."""
    if request.param == "tiny-blocks":
        for table in (ops.CHUNK_BYTES, ops.ATTENTION_CHUNK_BYTES):
            monkeypatch.setitem(table, "cpu", 1)
        monkeypatch.setitem(model.BLOCK_CHUNK_ROWS, "cpu", 1)  # one sequence per chunk
        monkeypatch.setitem(ops.ATTENTION_QUERY_ROWS, "cpu", 2)
    return str(request.param)


def test_embedding() -> None:
    ids = torch.tensor([[0, 3, 3], [5, 0, 3]])  # repeated ids must accumulate
    check(
        lambda i, w: ((ops.embedding_forward(i, w),), None),
        lambda g, inp, _: (None, ops.embedding_backward(g[0], *inp)),
        ids,
        rand(6, 4),
    )
    w = rand(6, 4, grad=False)
    assert torch.equal(ops.embedding_forward(ids, w), F.embedding(ids, w))


def test_rmsnorm(blocks: str) -> None:
    eps = 1e-5

    def fwd(x: torch.Tensor, w: torch.Tensor) -> Any:
        y, rstd = ops.rmsnorm_forward(x, w, eps)
        return (y,), rstd

    check(
        fwd,
        lambda g, inp, rstd: ops.rmsnorm_backward(g[0], *inp, eps, rstd),
        rand(3, 4, 6),
        rand(6),
    )
    x, w = rand(3, 4, 6, grad=False), rand(6, grad=False)
    assert torch.allclose(ops.rmsnorm_forward(x, w, eps)[0], F.rms_norm(x, (6,), w, eps))


def test_rmsnorm_without_gain() -> None:
    eps = 1e-5

    def fwd(x: torch.Tensor) -> Any:
        y, rstd = ops.rmsnorm_forward(x, None, eps)
        return (y,), rstd

    def bwd(g: tuple, inp: tuple, rstd: torch.Tensor) -> Any:
        dx, dw = ops.rmsnorm_backward(g[0], inp[0], None, eps, rstd)
        assert dw is None
        return (dx,)

    check(fwd, bwd, rand(3, 4, 6))
    x = rand(3, 4, 6, grad=False)
    assert torch.allclose(ops.rmsnorm_forward(x, None, eps)[0], F.rms_norm(x, (6,), None, eps))


def test_fold_gain() -> None:
    check(
        lambda w, gain: ((ops.fold_gain_forward(w, gain),), None),
        lambda g, inp, _: ops.fold_gain_backward(g[0], *inp),
        rand(5, 4),
        rand(4),
    )
    # a linear layer on a norm with gain == the gainless norm times the folded matrix
    x, w, gain = rand(3, 4, grad=False), rand(5, 4, grad=False), rand(4, grad=False)
    normed, _ = ops.rmsnorm_forward(x, gain, 1e-5)
    xhat, _ = ops.rmsnorm_forward(x, None, 1e-5)
    assert torch.allclose(normed @ w.T, xhat @ ops.fold_gain_forward(w, gain).T)


def test_linear() -> None:
    check(
        lambda x, w: ((ops.linear_forward(x, w),), None),
        lambda g, inp, _: ops.linear_backward(g[0], *inp),
        rand(2, 3, 4),
        rand(5, 4),
    )


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def test_rope_positions_offset() -> None:
    cos, sin = ops.rope_cache(torch.arange(3, 8), 6, theta=100.0)  # T=5 at positions 3..7
    cos, sin = cos.to(DT)[:, None, :], sin.to(DT)[:, None, :]  # [T, 1, hd] for [B, T, H, hd]
    check(
        lambda x: ((ops.rope_forward(x, cos, sin),), None),
        lambda g, inp, _: (ops.rope_backward(g[0], inp[0], cos, sin),),
        rand(2, 5, 3, 6),
    )
    x = rand(2, 5, 3, 6, grad=False)
    expected = x * cos + _rotate_half(x) * sin  # the Hugging Face Llama formula
    assert torch.allclose(ops.rope_forward(x, cos, sin), expected)
    # positions enter through the angle: position 3 is not position 0
    cos0, _ = ops.rope_cache(torch.arange(0, 5), 6, theta=100.0)
    assert not torch.allclose(cos0.to(DT), cos[:, 0])


def test_softmax() -> None:
    check(
        lambda x: ((ops.softmax_forward(x),), None),
        lambda g, inp, _: (ops.softmax_backward(g[0], inp[0], ops.softmax_forward(inp[0])),),
        rand(3, 5),
    )


def test_causal_attention(blocks: str) -> None:
    q, k, v = rand(2, 3, 5, 4), rand(2, 3, 5, 4), rand(2, 3, 5, 4)

    def fwd(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> Any:
        return (ops.attention_forward(q, k, v),), None

    def bwd(g: tuple, inp: tuple, _: Any) -> Any:
        return ops.attention_backward(g[0], *inp, ops.attention_forward(*inp))

    check(fwd, bwd, q, k, v)
    qd, kd, vd = q.detach(), k.detach(), v.detach()
    expected = F.scaled_dot_product_attention(qd, kd, vd, is_causal=True)
    assert torch.allclose(ops.attention_forward(qd, kd, vd), expected)
    # causality: changing the last key/value leaves every earlier output unchanged
    k2, v2 = kd.clone(), vd.clone()
    k2[..., -1, :] += 1.0
    v2[..., -1, :] -= 1.0
    out1, out2 = ops.attention_forward(qd, kd, vd), ops.attention_forward(qd, k2, v2)
    assert torch.equal(out1[..., :-1, :], out2[..., :-1, :])
    assert not torch.allclose(out1[..., -1, :], out2[..., -1, :])


def test_swiglu() -> None:
    def fwd(gu: torch.Tensor) -> Any:
        y, stats = ops.swiglu_forward(gu)
        return (y,), stats

    check(fwd, lambda g, inp, stats: (ops.swiglu_backward(g[0], inp[0], stats),), rand(3, 4, 10))
    gu = rand(3, 4, 10, grad=False)
    y, stats = ops.swiglu_forward(gu)
    assert torch.allclose(y, F.silu(gu[..., :5]) * gu[..., 5:])
    assert torch.allclose(stats[..., :5], F.silu(gu[..., :5]))


def test_residual() -> None:
    check(
        lambda x, y: ((ops.residual_forward(x, y),), None),
        lambda g, inp, _: ops.residual_backward(g[0], *inp),
        rand(3, 4),
        rand(3, 4),
    )


def test_dropout_fixed_mask() -> None:
    p = 0.3
    mask = ops.make_dropout_mask((4, 5), p)
    assert mask.dtype == torch.bool and 0 < int(mask.sum()) < mask.numel()
    check(
        lambda x: ((ops.dropout_forward(x, mask, p),), None),
        lambda g, inp, _: (ops.dropout_backward(g[0], inp[0], mask, p),),
        rand(4, 5),
    )
    x = rand(4, 5, grad=False)
    assert torch.allclose(ops.dropout_forward(x, mask, p), torch.where(mask, x / (1 - p), 0.0))


LABELS = torch.tensor([2, -100, 6, 0, 2, -100])


def test_cross_entropy(blocks: str) -> None:
    check(
        lambda logits, labels: ((ops.cross_entropy_forward(logits, labels),), None),
        lambda g, inp, _: (ops.cross_entropy_backward(g[0], *inp), None),
        rand(6, 7),
        LABELS,
    )
    logits = rand(6, 7, grad=False)
    loss = ops.cross_entropy_forward(logits, LABELS)
    assert torch.allclose(loss, F.cross_entropy(logits, LABELS, ignore_index=-100))


def test_cross_entropy_all_ignored() -> None:
    logits, labels = rand(3, 4, grad=False), torch.full((3,), -100)
    assert torch.isnan(ops.cross_entropy_forward(logits, labels))  # 0/0, as F.cross_entropy
    grad = ops.cross_entropy_backward(torch.tensor(1.0, dtype=DT), logits, labels)
    assert torch.equal(grad, torch.zeros_like(logits))


def test_lm_head_cross_entropy(blocks: str) -> None:
    def fwd(x: torch.Tensor, w: torch.Tensor, labels: torch.Tensor) -> Any:
        logits, loss = ops.lm_head_cross_entropy_forward(x, w, labels)
        return (logits, loss), logits

    def bwd(g: tuple, inp: tuple, logits: torch.Tensor) -> Any:
        dx, dw = ops.lm_head_cross_entropy_backward(g[0], g[1], *inp, logits)
        return dx, dw, None

    # both outputs are differentiated: the fused path adds the logits' own gradient
    check(fwd, bwd, rand(6, 4), rand(7, 4), LABELS)
    # the loss alone: the path that folds the row scale into the small operands
    check(lambda *a: (fwd(*a)[0][1:], fwd(*a)[1]), lambda g, i, s: bwd((None, g[0]), i, s),
          rand(6, 4), rand(7, 4), LABELS)  # fmt: skip
    x, w = rand(6, 4, grad=False), rand(7, 4, grad=False)
    logits, loss = ops.lm_head_cross_entropy_forward(x, w, LABELS)
    assert torch.allclose(loss, F.cross_entropy(x @ w.T, LABELS))


def test_lm_head_logits_only() -> None:
    def fwd(x: torch.Tensor, w: torch.Tensor) -> Any:
        logits, loss = ops.lm_head_cross_entropy_forward(x, w, None)
        assert loss is None
        return (logits,), logits

    def bwd(g: tuple, inp: tuple, logits: torch.Tensor) -> Any:
        return ops.lm_head_cross_entropy_backward(g[0], None, *inp, None, logits)

    check(fwd, bwd, rand(6, 4), rand(7, 4))


# ----------------------------------------------------------------------------- a whole block
B, T, D, H, FF = 2, 5, 8, 2, 12


def _block_inputs() -> tuple[torch.Tensor, ...]:
    x = rand(B, T, D)
    weights = (
        (1 + 0.1 * torch.randn(D, dtype=DT)).requires_grad_(),
        rand(3 * D, D, std=0.4),
        rand(D, D, std=0.4),
        (1 + 0.1 * torch.randn(D, dtype=DT)).requires_grad_(),
        rand(2 * FF, D, std=0.4),
        rand(D, FF, std=0.4),
    )
    cos, sin = ops.rope_cache(torch.arange(T), D // H, theta=10.0)
    return (x, *weights, cos.to(DT), sin.to(DT))


@pytest.mark.parametrize("dropout", [0.0, 0.25])
def test_transformer_block(dropout: float, blocks: str) -> None:
    masks = (None, None)
    if dropout:
        masks = (
            ops.make_dropout_mask((B, T, D), dropout),
            ops.make_dropout_mask((B, T, D), dropout),
        )
    static = (H, 1e-5, dropout, DT)

    def fwd(*inputs: torch.Tensor) -> Any:
        out, saved = transformer_block_forward(*inputs, *masks, *static)
        return (out,), saved

    def bwd(g: tuple, inp: tuple, saved: Any) -> Any:
        grads = transformer_block_backward(g[0], *inp, *masks, *static, saved)
        return (*grads, None, None)  # no gradients for the RoPE tables

    check(fwd, bwd, *_block_inputs())


# ----------------------------------------------------------------------------- the Functions
def test_model_functions_gradcheck() -> None:
    """The three autograd Functions the model is made of, called exactly as the model calls them."""
    ids = torch.tensor([[1, 4, 4, 0, 2], [3, 3, 0, 1, 4]])
    assert torch.autograd.gradcheck(lambda w: EmbeddingFunction.apply(ids, w), (rand(5, D),))
    inputs = _block_inputs()
    assert torch.autograd.gradcheck(
        lambda *xs: TransformerBlockFunction.apply(*xs, None, None, H, 1e-5, 0.0, DT), inputs
    )
    labels = torch.tensor([[1, 4, -100, 0, 2], [3, -100, 0, 1, 4]])
    norm_w = (1 + 0.1 * torch.randn(D, dtype=DT)).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x, nw, hw: LMHeadFunction.apply(x, nw, hw, labels, 1e-5, DT),
        (rand(B, T, D), norm_w, rand(7, D)),
    )
