"""RMSNorm: forward and backward Triton kernels over blocks of rows (the math: the project's
CLAUDE.md). Without a gain (``weight=None``) it is the norm inside a block, whose gain is folded
into the next matrix (:func:`projects.custom_transformer.ops.fold_gain_forward`)."""

from __future__ import annotations

import torch

from projects.custom_transformer.kernels._triton import next_power_of_2, tl, triton

__all__ = ["rmsnorm_backward", "rmsnorm_forward"]

#: Elements of one block of rows (rows x padded width) handled by one program.
BLOCK_ELEMENTS = {"cuda": 8192, "cpu": 4096}


@triton.jit
def _rmsnorm_fwd_kernel(
    X, W, Y, RSTD, sx, sy, N, D, eps,
    HAS_WEIGHT: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_D)
    r_ok = rows < N
    mask = r_ok[:, None] & (cols < D)[None, :]
    x = tl.load(X + rows[:, None] * sx + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, 1) / D + eps)
    y = x * rstd[:, None]
    if HAS_WEIGHT:
        w = tl.load(W + cols, mask=cols < D, other=0.0).to(tl.float32)
        y = y * w[None, :]
    tl.store(Y + rows[:, None] * sy + cols[None, :], y.to(Y.dtype.element_ty), mask=mask)
    tl.store(RSTD + rows, rstd, mask=r_ok)


@triton.jit
def _rmsnorm_bwd_kernel(
    DY, X, W, RSTD, DX, DW_PART, sdy, sx, sdx, N, D,
    HAS_WEIGHT: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    rows = pid * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_D)
    mask = (rows < N)[:, None] & (cols < D)[None, :]
    x = tl.load(X + rows[:, None] * sx + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    dy = tl.load(DY + rows[:, None] * sdy + cols[None, :], mask=mask, other=0.0).to(tl.float32)
    rstd = tl.load(RSTD + rows, mask=rows < N, other=0.0)
    xhat = x * rstd[:, None]
    g = dy
    if HAS_WEIGHT:
        w = tl.load(W + cols, mask=cols < D, other=0.0).to(tl.float32)
        g = dy * w[None, :]
        tl.store(DW_PART + pid * BLOCK_D + cols, tl.sum(dy * xhat, 0))
    mean_gx = tl.sum(g * xhat, 1) / D
    dx = (g - xhat * mean_gx[:, None]) * rstd[:, None]
    tl.store(DX + rows[:, None] * sdx + cols[None, :], dx.to(DX.dtype.element_ty), mask=mask)


def _blocks(n: int, d: int, device: torch.device) -> tuple[int, int]:
    block_d = next_power_of_2(d)
    budget = BLOCK_ELEMENTS.get(device.type, BLOCK_ELEMENTS["cuda"])
    block_r = min(next_power_of_2(n), max(1, budget // block_d))
    return block_r, block_d


def _rows(x: torch.Tensor) -> torch.Tensor:
    """``[..., D]`` as ``[N, D]`` with rows of unit stride (a view when possible)."""
    x2 = x.reshape(-1, x.size(-1))
    return x2 if x2.stride(-1) == 1 else x2.contiguous()


def rmsnorm_forward(
    x: torch.Tensor, weight: torch.Tensor | None, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``y = x / sqrt(mean(x^2) + eps) * weight`` over the last dimension.

    Args:
        x: Input ``[..., D]`` (float32, bfloat16 or float16).
        weight: Gain ``[D]``, or None for a norm without gain.
        eps: Added to the mean square.

    Returns:
        ``(y, rstd)``: ``y`` like ``x``; ``rstd`` ``[..., 1]`` float32, kept for the backward.
    """
    x2 = _rows(x)
    n, d = x2.shape
    y = torch.empty(n, d, dtype=x.dtype, device=x.device)
    rstd = torch.empty(n, dtype=torch.float32, device=x.device)
    block_r, block_d = _blocks(n, d, x.device)
    w = x2 if weight is None else weight.contiguous()
    _rmsnorm_fwd_kernel[(triton.cdiv(n, block_r),)](
        x2, w, y, rstd, x2.stride(0), y.stride(0), n, d, eps,
        HAS_WEIGHT=weight is not None, BLOCK_R=block_r, BLOCK_D=block_d,
    )  # fmt: skip
    return y.view(x.shape), rstd.view(*x.shape[:-1], 1)


def rmsnorm_backward(
    dout: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor | None,
    eps: float,
    rstd: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gradients of :func:`rmsnorm_forward`.

    Args:
        dout: Gradient of ``y``.
        x, weight, eps: The forward's arguments (``eps`` is already folded into ``rstd``).
        rstd: The forward's ``rstd``.

    Returns:
        ``(dx, dweight)`` (``dweight`` None without a gain; summed over rows in float32 per block
        of rows, then over the blocks).
    """
    x2, dy2 = _rows(x), _rows(dout)
    n, d = x2.shape
    dx = torch.empty(n, d, dtype=x.dtype, device=x.device)
    block_r, block_d = _blocks(n, d, x.device)
    grid = triton.cdiv(n, block_r)
    has_w = weight is not None
    dw_part = torch.empty(grid if has_w else 1, block_d, dtype=torch.float32, device=x.device)
    _rmsnorm_bwd_kernel[(grid,)](
        dy2, x2, x2 if weight is None else weight.contiguous(), rstd.reshape(-1).contiguous(),
        dx, dw_part, dy2.stride(0), x2.stride(0), dx.stride(0), n, d,
        HAS_WEIGHT=has_w, BLOCK_R=block_r, BLOCK_D=block_d,
    )  # fmt: skip
    dweight = None
    if weight is not None:
        dweight = dw_part[:, :d].sum(0).to(weight.dtype)
    return dx.view(x.shape), dweight
