"""Softmax cross-entropy of the logits, and the output projection fused with it: Triton kernels
over rows (the math: the project's CLAUDE.md).

The forward kernel reads each row of logits once (an online maximum and sum over blocks of the
vocabulary) and keeps only the row's log-sum-exp; the backward kernel reads each row once more
and writes ``(softmax - onehot(label)) * dloss / n_valid`` (plus any gradient of the logits from
elsewhere) directly, so the probabilities never exist on their own. The output projection's
backward runs over blocks of rows: one block's logit gradient is formed in a reused buffer and
used at once by the two matrix multiplies (``torch.matmul``).
"""

from __future__ import annotations

import torch

from projects.custom_transformer.kernels._triton import tl, triton
from projects.custom_transformer.ops import CHUNK_BYTES, IGNORE_INDEX, _chunk_rows

__all__ = [
    "cross_entropy_backward",
    "cross_entropy_forward",
    "lm_head_cross_entropy_backward",
    "lm_head_cross_entropy_forward",
]

BLOCK_V = {"cuda": 4096, "cpu": 1024}


@triton.jit
def _ce_fwd_kernel(Z, LABELS, LSE, NLL, sz, V, IGNORE: tl.constexpr, BLOCK_V: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    Z += row * sz
    label = tl.load(LABELS + row)
    m = -float("inf")
    acc = 0.0
    for v0 in range(0, V, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)
        z = tl.load(Z + cols, mask=cols < V, other=-float("inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(z, 0))
        acc = acc * tl.exp(m - m_new) + tl.sum(tl.exp(z - m_new), 0)
        m = m_new
    lse = m + tl.log(acc)
    tl.store(LSE + row, lse)
    valid = label != IGNORE
    target = tl.load(Z + tl.where(valid, label, 0)).to(tl.float32)
    tl.store(NLL + row, tl.where(valid, lse - target, 0.0))


@triton.jit
def _ce_bwd_kernel(
    Z, LABELS, LSE, SCALE, DZ_IN, DZ, sz, sdz_in, sdz, V,
    IGNORE: tl.constexpr, HAS_DZ_IN: tl.constexpr, BLOCK_V: tl.constexpr,
):  # fmt: skip
    row = tl.program_id(0).to(tl.int64)
    label = tl.load(LABELS + row)
    lse = tl.load(LSE + row)
    row_scale = tl.where(label != IGNORE, tl.load(SCALE), 0.0)
    for v0 in range(0, V, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)
        ok = cols < V
        z = tl.load(Z + row * sz + cols, mask=ok, other=0.0).to(tl.float32)
        g = (tl.exp(z - lse) - tl.where(cols == label, 1.0, 0.0)) * row_scale
        if HAS_DZ_IN:
            g += tl.load(DZ_IN + row * sdz_in + cols, mask=ok, other=0.0).to(tl.float32)
        tl.store(DZ + row * sdz + cols, g.to(DZ.dtype.element_ty), mask=ok)


def _block_v(vocab: int, device: torch.device) -> int:
    return min(BLOCK_V.get(device.type, BLOCK_V["cuda"]), triton.next_power_of_2(vocab))


def cross_entropy_forward(
    logits: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy over the labels that are not ``IGNORE_INDEX`` (-100).

    Args:
        logits: ``[N, V]`` with rows of unit stride.
        labels: ``[N]`` int64.

    Returns:
        ``(loss, lse)``: the scalar loss in float32 (``nan`` when every label is ignored, as in
        PyTorch) and each row's log-sum-exp ``[N]`` float32, kept for the backward.
    """
    n, vocab = logits.shape
    z = logits if logits.stride(-1) == 1 else logits.contiguous()
    labels = labels.contiguous()
    lse = torch.empty(n, dtype=torch.float32, device=logits.device)
    nll = torch.empty(n, dtype=torch.float32, device=logits.device)
    _ce_fwd_kernel[(n,)](
        z, labels, lse, nll, z.stride(0), vocab, IGNORE=IGNORE_INDEX,
        BLOCK_V=_block_v(vocab, logits.device),
    )  # fmt: skip
    return nll.sum() / (labels != IGNORE_INDEX).sum(), lse


def cross_entropy_backward(
    dloss: torch.Tensor,
    logits: torch.Tensor,
    labels: torch.Tensor,
    lse: torch.Tensor,
    dlogits: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``dloss * (softmax(logits) - onehot(label)) / n_valid`` (zero on ignored rows), plus
    ``dlogits`` when given.

    Args:
        dloss: Gradient of the scalar loss.
        logits, labels: The forward's arguments.
        lse: The forward's log-sum-exp.
        dlogits: Optional gradient of the logits from elsewhere ``[N, V]``, added.
        out: Optional ``[N, V]`` tensor (rows of unit stride) to write the result into.

    Returns:
        The gradient of the logits ``[N, V]`` (``out`` when given, else ``logits``' dtype).
    """
    return _ce_grad(logits, labels, lse, _grad_scale(dloss, labels), dlogits, out)


def _grad_scale(dloss: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``dloss / n_valid`` as a one-element float32 tensor (stays on the device: no sync)."""
    n_valid = (labels != IGNORE_INDEX).sum().clamp(min=1)
    return (dloss.to(torch.float32) / n_valid).reshape(1)


def _ce_grad(
    logits: torch.Tensor,
    labels: torch.Tensor,
    lse: torch.Tensor,
    scale: torch.Tensor,
    dlogits: torch.Tensor | None,
    out: torch.Tensor | None,
) -> torch.Tensor:
    n, vocab = logits.shape
    z = logits if logits.stride(-1) == 1 else logits.contiguous()
    if out is None:
        out = torch.empty_like(z)
    dz_in = z if dlogits is None else dlogits
    if dz_in.stride(-1) != 1:
        dz_in = dz_in.contiguous()
    _ce_bwd_kernel[(n,)](
        z, labels.contiguous(), lse.contiguous(), scale, dz_in, out, z.stride(0),
        dz_in.stride(0), out.stride(0), vocab, IGNORE=IGNORE_INDEX,
        HAS_DZ_IN=dlogits is not None, BLOCK_V=_block_v(vocab, logits.device),
    )  # fmt: skip
    return out


def lm_head_cross_entropy_forward(
    x: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Output projection and cross-entropy: ``logits = x @ weight^T``, then the loss.

    Args:
        x: Final hidden states ``[N, D]``.
        weight: Output projection ``[V, D]``.
        labels: ``[N]`` targets, or None for logits only.

    Returns:
        ``(logits, loss, lse)``; ``loss`` and ``lse`` are None without labels.
    """
    logits = torch.matmul(x, weight.t())
    if labels is None:
        return logits, None, None
    loss, lse = cross_entropy_forward(logits, labels)
    return logits, loss, lse


def lm_head_cross_entropy_backward(
    dlogits: torch.Tensor | None,
    dloss: torch.Tensor | None,
    x: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor | None,
    logits: torch.Tensor,
    lse: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of :func:`lm_head_cross_entropy_forward`, a block of rows at a time.

    Args:
        dlogits: Gradient of the logits from elsewhere, or None.
        dloss: Gradient of the loss, or None.
        x, weight, labels: The forward's arguments.
        logits, lse: The forward's logits and log-sum-exp.

    Returns:
        ``(dx, dweight)`` (``dweight`` accumulated in float32 for half-precision operands).
    """
    n, vocab = logits.shape
    acc = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    dweight = torch.zeros(weight.shape, dtype=acc, device=weight.device)
    use_ce = dloss is not None and labels is not None and lse is not None
    if not use_ce and dlogits is None:
        return torch.zeros_like(x), dweight.to(weight.dtype)
    dx = torch.empty_like(x)
    w = weight.to(x.dtype)
    step = _chunk_rows(n, vocab * 4 * 2, logits.device, CHUNK_BYTES)
    buf = torch.empty(min(step, n), vocab, dtype=x.dtype, device=x.device)
    if use_ce:
        assert dloss is not None and labels is not None
        scale = _grad_scale(dloss, labels)
    for i in range(0, n, step):
        j = min(i + step, n)
        if use_ce:
            assert labels is not None and lse is not None
            dz_in = None if dlogits is None else dlogits[i:j]
            g = _ce_grad(logits[i:j], labels[i:j], lse[i:j], scale, dz_in, buf[: j - i])
        else:
            assert dlogits is not None
            g = dlogits[i:j].to(x.dtype)
        torch.mm(g, w, out=dx[i:j])
        if g.dtype == acc:
            dweight.addmm_(g.t(), x[i:j])
        else:
            dweight.add_(torch.mm(g.t(), x[i:j]))
    return dx, dweight.to(weight.dtype)
