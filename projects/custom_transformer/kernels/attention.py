"""Causal flash attention: forward and backward Triton kernels (the math: the project's CLAUDE.md).

The forward walks the keys a block at a time with an online softmax and keeps only the output
and the log-sum-exp of each row's scores; the backward recomputes the probabilities block by
block from that log-sum-exp (one kernel for ``dk, dv`` per key block, one for ``dq`` per query
block), so no ``[T, T]`` matrix ever exists and the blocks above the diagonal are never visited.
"""

from __future__ import annotations

import math

import torch

from projects.custom_transformer.kernels._triton import INTERPRET, next_power_of_2, tl, triton

__all__ = ["ATTENTION_BLOCKS", "attention_backward", "attention_forward"]

#: ``(query rows, key rows)`` of one block per device type; the first must be a multiple of the
#: second (the forward treats whole key blocks below the diagonal without a mask).
ATTENTION_BLOCKS = {"cuda": (64, 64), "cpu": (16, 16)}
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453


@triton.jit
def _dot(a, b, UPCAST: tl.constexpr):
    # float32 operands multiply in full precision (not TF32); the interpreter multiplies
    # half-precision operands wrongly, so it gets them as float32 (bf16 values are exact there)
    if UPCAST:
        c = tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    else:
        c = tl.dot(a, b)
    return c


@triton.jit
def _fwd_block(
    q, acc, m_i, l_i, K, V, sk_t, sv_t, offs_m, offs_d, d_ok, n0, T, qk_scale,
    BLOCK_N: tl.constexpr, CAUSAL_MASK: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    cols = n0 + tl.arange(0, BLOCK_N)
    n_ok = cols < T
    kv_mask = n_ok[:, None] & d_ok[None, :]
    k = tl.load(K + cols[:, None] * sk_t + offs_d[None, :], mask=kv_mask, other=0.0)
    v = tl.load(V + cols[:, None] * sv_t + offs_d[None, :], mask=kv_mask, other=0.0)
    s = _dot(q, tl.trans(k), UPCAST) * qk_scale
    if CAUSAL_MASK:
        s = tl.where((offs_m[:, None] >= cols[None, :]) & n_ok[None, :], s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, 1))
    alpha = tl.exp2(m_i - m_new)
    p = tl.exp2(s - m_new[:, None])
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None] + _dot(p.to(v.dtype), v, UPCAST)
    return acc, m_new, l_i


@triton.jit
def _attention_fwd_kernel(
    Q, K, V, OUT, LSE,
    sq_b, sq_h, sq_t, sk_b, sk_h, sk_t, sv_b, sv_h, sv_t, so_b, so_h, so_t,
    H, T, HD, qk_scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    Q += b * sq_b + h * sq_h
    K += b * sk_b + h * sk_h
    V += b * sv_b + h * sv_h
    OUT += b * so_b + h * so_h
    start_m = pid_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_ok = offs_m < T
    d_ok = offs_d < HD
    q_mask = m_ok[:, None] & d_ok[None, :]
    q = tl.load(Q + offs_m[:, None] * sq_t + offs_d[None, :], mask=q_mask, other=0.0)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for n0 in range(0, start_m, BLOCK_N):  # wholly below the diagonal: no mask
        acc, m_i, l_i = _fwd_block(
            q, acc, m_i, l_i, K, V, sk_t, sv_t, offs_m, offs_d, d_ok, n0, T, qk_scale,
            BLOCK_N, False, UPCAST,
        )  # fmt: skip
    for n0 in range(start_m, tl.minimum(start_m + BLOCK_M, T), BLOCK_N):  # on the diagonal
        acc, m_i, l_i = _fwd_block(
            q, acc, m_i, l_i, K, V, sk_t, sv_t, offs_m, offs_d, d_ok, n0, T, qk_scale,
            BLOCK_N, True, UPCAST,
        )  # fmt: skip
    acc = acc / l_i[:, None]
    tl.store(
        OUT + offs_m[:, None] * so_t + offs_d[None, :], acc.to(OUT.dtype.element_ty), mask=q_mask
    )
    tl.store(LSE + pid_bh * T + offs_m, (m_i + tl.log2(l_i)) * 0.6931471805599453, mask=m_ok)


@triton.jit
def _attention_delta_kernel(
    OUT, DO, DELTA, so_b, so_h, so_t, sd_b, sd_h, sd_t, H, T, HD,
    BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    mask = (offs_m < T)[:, None] & (offs_d < HD)[None, :]
    o = tl.load(OUT + b * so_b + h * so_h + offs_m[:, None] * so_t + offs_d[None, :], mask=mask)
    do = tl.load(DO + b * sd_b + h * sd_h + offs_m[:, None] * sd_t + offs_d[None, :], mask=mask)
    delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), 1)
    tl.store(DELTA + pid_bh * T + offs_m, delta, mask=offs_m < T)


@triton.jit
def _attention_dkdv_kernel(
    Q, K, V, DO, LSE, DELTA, DK, DV,
    sq_b, sq_h, sq_t, sk_b, sk_h, sk_t, sv_b, sv_h, sv_t, sd_b, sd_h, sd_t, sg_b, sg_h, sg_t,
    H, T, HD, sm_scale, qk_scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    Q += b * sq_b + h * sq_h
    K += b * sk_b + h * sk_h
    V += b * sv_b + h * sv_h
    DO += b * sd_b + h * sd_h
    LSE += pid_bh * T
    DELTA += pid_bh * T
    start_n = pid_n * BLOCK_N
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    n_ok = offs_n < T
    d_ok = offs_d < HD
    kv_mask = n_ok[:, None] & d_ok[None, :]
    k = tl.load(K + offs_n[:, None] * sk_t + offs_d[None, :], mask=kv_mask, other=0.0)
    v = tl.load(V + offs_n[:, None] * sv_t + offs_d[None, :], mask=kv_mask, other=0.0)
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    for m0 in range((start_n // BLOCK_M) * BLOCK_M, T, BLOCK_M):  # queries that see these keys
        rows = m0 + tl.arange(0, BLOCK_M)
        m_ok = rows < T
        q_mask = m_ok[:, None] & d_ok[None, :]
        q = tl.load(Q + rows[:, None] * sq_t + offs_d[None, :], mask=q_mask, other=0.0)
        do = tl.load(DO + rows[:, None] * sd_t + offs_d[None, :], mask=q_mask, other=0.0)
        lse2 = tl.load(LSE + rows, mask=m_ok, other=0.0) * 1.4426950408889634
        delta = tl.load(DELTA + rows, mask=m_ok, other=0.0)
        p_t = tl.exp2(_dot(k, tl.trans(q), UPCAST) * qk_scale - lse2[None, :])  # [keys, queries]
        keep = (rows[None, :] >= offs_n[:, None]) & m_ok[None, :] & n_ok[:, None]
        p_t = tl.where(keep, p_t, 0.0)
        dv += _dot(p_t.to(do.dtype), do, UPCAST)
        dp_t = _dot(v, tl.trans(do), UPCAST)
        ds_t = p_t * (dp_t - delta[None, :])
        dk += _dot(ds_t.to(q.dtype), q, UPCAST)
    dk *= sm_scale
    DK += b * sg_b + h * sg_h
    DV += b * sg_b + h * sg_h
    g_off = offs_n[:, None] * sg_t + offs_d[None, :]
    tl.store(DK + g_off, dk.to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(DV + g_off, dv.to(DV.dtype.element_ty), mask=kv_mask)


@triton.jit
def _attention_dq_kernel(
    Q, K, V, DO, LSE, DELTA, DQ,
    sq_b, sq_h, sq_t, sk_b, sk_h, sk_t, sv_b, sv_h, sv_t, sd_b, sd_h, sd_t, sg_b, sg_h, sg_t,
    H, T, HD, sm_scale, qk_scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, UPCAST: tl.constexpr,
):  # fmt: skip
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // H
    h = pid_bh % H
    Q += b * sq_b + h * sq_h
    K += b * sk_b + h * sk_h
    V += b * sv_b + h * sv_h
    DO += b * sd_b + h * sd_h
    start_m = pid_m * BLOCK_M
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    m_ok = offs_m < T
    d_ok = offs_d < HD
    q_mask = m_ok[:, None] & d_ok[None, :]
    q = tl.load(Q + offs_m[:, None] * sq_t + offs_d[None, :], mask=q_mask, other=0.0)
    do = tl.load(DO + offs_m[:, None] * sd_t + offs_d[None, :], mask=q_mask, other=0.0)
    lse2 = tl.load(LSE + pid_bh * T + offs_m, mask=m_ok, other=0.0) * 1.4426950408889634
    delta = tl.load(DELTA + pid_bh * T + offs_m, mask=m_ok, other=0.0)
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for n0 in range(0, tl.minimum(start_m + BLOCK_M, T), BLOCK_N):  # keys these queries see
        cols = n0 + tl.arange(0, BLOCK_N)
        n_ok = cols < T
        kv_mask = n_ok[:, None] & d_ok[None, :]
        k = tl.load(K + cols[:, None] * sk_t + offs_d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(V + cols[:, None] * sv_t + offs_d[None, :], mask=kv_mask, other=0.0)
        p = tl.exp2(_dot(q, tl.trans(k), UPCAST) * qk_scale - lse2[:, None])
        p = tl.where((offs_m[:, None] >= cols[None, :]) & n_ok[None, :], p, 0.0)
        dp = _dot(do, tl.trans(v), UPCAST)
        ds = p * (dp - delta[:, None])
        dq += _dot(ds.to(k.dtype), k, UPCAST)
    dq *= sm_scale
    DQ += b * sg_b + h * sg_h
    tl.store(DQ + offs_m[:, None] * sg_t + offs_d[None, :], dq.to(DQ.dtype.element_ty), mask=q_mask)


def _as_4d(x: torch.Tensor) -> torch.Tensor:
    """``[..., T, hd]`` as ``[B, H, T, hd]`` with a unit stride on the last dimension."""
    if x.stride(-1) != 1:
        x = x.contiguous()
    if x.dim() == 4:
        return x
    if x.dim() < 4:
        return x.reshape((1,) * (4 - x.dim()) + tuple(x.shape))
    return x.reshape(-1, x.size(-3), x.size(-2), x.size(-1))


def _strides(x: torch.Tensor) -> tuple[int, int, int]:
    return x.stride(0), x.stride(1), x.stride(2)


def _settings(q: torch.Tensor) -> dict:
    block_m, block_n = ATTENTION_BLOCKS.get(q.device.type, ATTENTION_BLOCKS["cuda"])
    settings = dict(
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_D=max(16, next_power_of_2(q.size(-1))),
        UPCAST=INTERPRET or q.dtype == torch.float32,
    )
    if not INTERPRET:
        settings.update(num_warps=4, num_stages=2)
    return settings


def attention_forward(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal scaled dot-product attention: ``y = softmax(q k^T / sqrt(hd) + mask) v``.

    Args:
        q, k, v: ``[..., T, hd]`` of the same shape and dtype (float32, bfloat16 or float16).
        out: Optional tensor like ``q`` (any strides) to write ``y`` into.

    Returns:
        ``(y, lse)``: ``y`` shaped like ``q``; ``lse`` ``[..., T]`` float32, the natural
        log-sum-exp of each row of scaled, masked scores, kept for the backward.
    """
    t, hd = q.shape[-2:]
    if out is None:
        out = torch.empty_like(q)
    q4, k4, v4, o4 = _as_4d(q), _as_4d(k), _as_4d(v), _as_4d(out)
    b, h = q4.shape[:2]
    lse = torch.empty(b, h, t, dtype=torch.float32, device=q.device)
    cfg = _settings(q)
    sm_scale = 1.0 / math.sqrt(hd)
    grid = (triton.cdiv(t, cfg["BLOCK_M"]), b * h)
    _attention_fwd_kernel[grid](
        q4, k4, v4, o4, lse, *_strides(q4), *_strides(k4), *_strides(v4), *_strides(o4),
        h, t, hd, sm_scale * _LOG2E, **cfg,
    )  # fmt: skip
    if o4.data_ptr() != out.data_ptr() or o4.stride() != out.stride()[-4:]:
        out.copy_(o4.view(out.shape))
    return out, lse.view(q.shape[:-1])


def attention_backward(
    dout: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    lse: torch.Tensor,
    grads: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of :func:`attention_forward`, the probabilities recomputed from ``lse``.

    Args:
        dout: Gradient of ``y`` (any strides).
        q, k, v: The forward's arguments.
        out: The forward's ``y`` (any strides).
        lse: The forward's log-sum-exp.
        grads: Optional contiguous ``[3, *q.shape]`` tensor to write ``dq, dk, dv`` into.

    Returns:
        ``(dq, dk, dv)`` shaped like ``q`` (views of ``grads`` when given).
    """
    t, hd = q.shape[-2:]
    if grads is None:
        grads = torch.empty((3, *q.shape), dtype=q.dtype, device=q.device)
    q4, k4, v4 = _as_4d(q), _as_4d(k), _as_4d(v)
    do4, o4 = _as_4d(dout.to(q.dtype)), _as_4d(out)
    dq4, dk4, dv4 = (_as_4d(g) for g in grads.unbind(0))
    b, h = q4.shape[:2]
    lse = lse.reshape(b, h, t).contiguous()
    cfg = _settings(q)
    sm_scale = 1.0 / math.sqrt(hd)
    delta = torch.empty(b, h, t, dtype=torch.float32, device=q.device)
    _attention_delta_kernel[(triton.cdiv(t, cfg["BLOCK_M"]), b * h)](
        o4, do4, delta, *_strides(o4), *_strides(do4), h, t, hd,
        BLOCK_M=cfg["BLOCK_M"], BLOCK_D=cfg["BLOCK_D"],
    )  # fmt: skip
    common = (*_strides(q4), *_strides(k4), *_strides(v4), *_strides(do4), *_strides(dq4))
    _attention_dkdv_kernel[(triton.cdiv(t, cfg["BLOCK_N"]), b * h)](
        q4, k4, v4, do4, lse, delta, dk4, dv4, *common, h, t, hd, sm_scale, sm_scale * _LOG2E,
        **cfg,
    )  # fmt: skip
    _attention_dq_kernel[(triton.cdiv(t, cfg["BLOCK_M"]), b * h)](
        q4, k4, v4, do4, lse, delta, dq4, *common, h, t, hd, sm_scale, sm_scale * _LOG2E, **cfg
    )
    dq, dk, dv = grads.unbind(0)
    return dq, dk, dv
