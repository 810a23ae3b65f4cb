"""SwiGLU ``silu(g) * u``: forward and backward Triton kernels, element-wise and fused (the math:
the project's CLAUDE.md). The forward also writes the two derivative factors the backward needs,
``silu(g)`` and ``u * silu'(g)``, laid out as :func:`projects.custom_transformer.ops.swiglu_forward`
does.
"""

from __future__ import annotations

import torch

from projects.custom_transformer.kernels._triton import tl, triton

__all__ = ["swiglu_backward", "swiglu_forward"]

BLOCK = {"cuda": 1024, "cpu": 4096}


@triton.jit
def _swiglu_fwd_kernel(GU, Y, S, s_gu, s_y, s_s, N, F, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    row = offs // F
    col = offs % F
    ok = offs < N * F
    g = tl.load(GU + row * s_gu + col, mask=ok, other=0.0).to(tl.float32)
    u = tl.load(GU + row * s_gu + F + col, mask=ok, other=0.0).to(tl.float32)
    sig = tl.sigmoid(g)
    silu = g * sig
    tl.store(Y + row * s_y + col, (silu * u).to(Y.dtype.element_ty), mask=ok)
    tl.store(S + row * s_s + col, silu.to(S.dtype.element_ty), mask=ok)
    u_dsilu = u * (sig + silu * (1.0 - sig))
    tl.store(S + row * s_s + F + col, u_dsilu.to(S.dtype.element_ty), mask=ok)


@triton.jit
def _swiglu_bwd_kernel(DY, S, DGU, s_dy, s_s, s_dgu, N, F, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    row = offs // F
    col = offs % F
    ok = offs < N * F
    dy = tl.load(DY + row * s_dy + col, mask=ok, other=0.0).to(tl.float32)
    silu = tl.load(S + row * s_s + col, mask=ok, other=0.0).to(tl.float32)
    u_dsilu = tl.load(S + row * s_s + F + col, mask=ok, other=0.0).to(tl.float32)
    tl.store(DGU + row * s_dgu + col, (dy * u_dsilu).to(DGU.dtype.element_ty), mask=ok)
    tl.store(DGU + row * s_dgu + F + col, (dy * silu).to(DGU.dtype.element_ty), mask=ok)


def _rows(x: torch.Tensor) -> torch.Tensor:
    x2 = x.reshape(-1, x.size(-1))
    return x2 if x2.stride(-1) == 1 else x2.contiguous()


def swiglu_forward(
    gate_up: torch.Tensor, out: torch.Tensor | None = None, stats: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``silu(g) * u`` where ``g, u`` are the two halves of the last dimension.

    Args:
        gate_up: ``[..., 2F]`` (gate first, then up).
        out: Optional tensor ``[..., F]`` with rows of unit stride to write ``y`` into.
        stats: Optional tensor ``[..., 2F]`` with rows of unit stride for the statistics.

    Returns:
        ``(y, stats)``: ``y`` ``[..., F]``; ``stats`` ``[..., 2F]``, ``silu(g)`` then
        ``u * silu'(g)`` (computed in float32, stored in ``gate_up``'s dtype).
    """
    f = gate_up.size(-1) // 2
    gu = _rows(gate_up)
    n = gu.size(0)
    y = out if out is not None else gate_up.new_empty(*gate_up.shape[:-1], f)
    s = stats if stats is not None else torch.empty_like(gate_up)
    y2, s2 = y.view(n, f), s.view(n, 2 * f)
    block = BLOCK.get(gate_up.device.type, BLOCK["cuda"])
    _swiglu_fwd_kernel[(triton.cdiv(n * f, block),)](
        gu, y2, s2, gu.stride(0), y2.stride(0), s2.stride(0), n, f, BLOCK=block
    )
    return y, s


def swiglu_backward(
    dout: torch.Tensor, gate_up: torch.Tensor | None, stats: torch.Tensor
) -> torch.Tensor:
    """Gradient of :func:`swiglu_forward`: ``dg = dy u silu'(g)``, ``du = dy silu(g)``.

    Args:
        dout: Gradient of the output ``[..., F]``.
        gate_up: The forward's input (unused; may be None).
        stats: The forward's statistics.

    Returns:
        ``dgate_up`` ``[..., 2F]``.
    """
    f = stats.size(-1) // 2
    dy2, s2 = _rows(dout), _rows(stats)
    n = s2.size(0)
    dgu = torch.empty_like(s2)
    block = BLOCK.get(stats.device.type, BLOCK["cuda"])
    _swiglu_bwd_kernel[(triton.cdiv(n * f, block),)](
        dy2, s2, dgu, dy2.stride(0), s2.stride(0), dgu.stride(0), n, f, BLOCK=block
    )
    return dgu.view(stats.shape)
