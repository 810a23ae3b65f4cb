"""Hand-written forward and backward passes of every operation of the model (llm.c style).

Each operation is a pair of plain functions with the same stem, the backward right below its
forward, with mirrored argument lists:

    y = <stem>_forward(a, b, ...)                      (some also return statistics, e.g. rstd)
    da, db = <stem>_backward(dy, a, b, ..., [stats])   gradient of the output(s) first, then the
                                                        forward's arguments in the same order,
                                                        then what the forward returned besides y

Optional trailing keyword buffers (``out=`` of a forward, ``out=``/``dweight=`` of a backward)
only say where to write a result (a strided view, or an accumulator when rows are processed in
blocks); they are not part of the mirrored list.

The functions are ordinary tensor code: they never rely on autograd (the model calls them from
``torch.autograd.Function`` s that run in no-grad mode) and they work in any floating dtype, so
the tests check each pair against ``torch.autograd.gradcheck`` in float64. In half precision
(bf16/fp16 matrix multiplies under autocast) the statistics (norms, softmax, log-sum-exp) are
computed in float32.

The attention, softmax-of-the-logits and cross-entropy code works on blocks of rows so that no
``[T, T]`` score matrix for all heads at once and no full ``[N, V]`` probability matrix is ever
materialized; ``CHUNK_BYTES`` sets the size of one such block per device type.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "HALF_DTYPES",
    "IGNORE_INDEX",
    "attention_backward",
    "attention_forward",
    "causal_mask",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "dropout_backward",
    "dropout_forward",
    "embedding_backward",
    "embedding_forward",
    "fold_gain_backward",
    "fold_gain_forward",
    "linear_backward",
    "linear_forward",
    "lm_head_cross_entropy_backward",
    "lm_head_cross_entropy_forward",
    "make_dropout_mask",
    "residual_backward",
    "residual_forward",
    "rmsnorm_backward",
    "rmsnorm_forward",
    "rope_backward",
    "rope_cache",
    "rope_forward",
    "softmax_backward",
    "softmax_forward",
    "swiglu_backward",
    "swiglu_forward",
]

IGNORE_INDEX = -100

#: Bytes of one block of rows of the logits' (log-)softmax in the cross-entropy, per device
#: type. Small on CPU (stays in cache, low peak memory); large on GPUs, where big matrix
#: multiplies pay.
CHUNK_BYTES = {"cpu": 8 * 2**20, "cuda": 512 * 2**20}
_DEFAULT_CHUNK_BYTES = 64 * 2**20
#: Attention works on blocks of ``heads x query rows x keys`` scores of about this size, with
#: at most ``ATTENTION_QUERY_ROWS`` query rows (smaller query blocks skip more of the masked
#: upper triangle; on CPU a block that fits in L2 cache is fastest).
ATTENTION_CHUNK_BYTES = {"cpu": 1 * 2**20, "cuda": 512 * 2**20}
ATTENTION_QUERY_ROWS = {"cpu": 32, "cuda": 256}

HALF_DTYPES = (torch.float16, torch.bfloat16)
_HALF = HALF_DTYPES


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype for statistics: float32 for half-precision inputs, the input dtype otherwise."""
    return torch.float32 if dtype in _HALF else dtype


def _chunk_rows(
    n_rows: int, bytes_per_row: int, device: torch.device, budgets: dict[str, int] | None = None
) -> int:
    budget = (budgets or CHUNK_BYTES).get(device.type, _DEFAULT_CHUNK_BYTES)
    return max(1, min(n_rows, budget // max(1, bytes_per_row)))


# ----------------------------------------------------------------------------- embedding
def embedding_forward(ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Look up rows of ``weight``.

    Args:
        ids: Integer ids ``[...]``.
        weight: Table ``[V, D]``.

    Returns:
        ``[..., D]``: ``out[i] = weight[ids[i]]``.
    """
    return weight.index_select(0, ids.reshape(-1)).view(*ids.shape, weight.size(1))


def embedding_backward(dout: torch.Tensor, ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Gradient of the table: each row's gradient is scatter-added into the row it was read from.

    Args:
        dout: Gradient of the output ``[..., D]``.
        ids: The forward's ids.
        weight: The forward's table (only its shape and dtype are used).

    Returns:
        ``dweight`` ``[V, D]`` (rows never looked up are zero; repeated ids accumulate).
    """
    dweight = torch.zeros_like(weight)
    dweight.index_add_(0, ids.reshape(-1), dout.reshape(-1, weight.size(1)).to(weight.dtype))
    return dweight


# ----------------------------------------------------------------------------- RMSNorm
def rmsnorm_forward(
    x: torch.Tensor, weight: torch.Tensor | None, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``y = x / sqrt(mean(x^2) + eps) * weight`` over the last dimension.

    Args:
        x: Input ``[..., D]``.
        weight: Gain ``[D]``, or None for a norm without gain (``y = xhat``; the block folds its
            norms' gains into the next matrix, see :func:`fold_gain_forward`).
        eps: Added to the mean square.

    Returns:
        ``(y, rstd)``: ``y`` like ``x``; ``rstd = 1/sqrt(mean(x^2) + eps)`` ``[..., 1]`` in the
        statistics dtype, kept for the backward.
    """
    acc = _acc_dtype(x.dtype)
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True, dtype=acc)
    rstd = norm.square_().div_(x.size(-1)).add_(eps).rsqrt_()
    y = torch.mul(x, rstd).to(x.dtype)
    return (y if weight is None else y.mul_(weight.to(x.dtype))), rstd


def rmsnorm_backward(
    dout: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor | None,
    eps: float,
    rstd: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gradients of :func:`rmsnorm_forward`.

    With ``xhat = x * rstd`` and ``g = dout * weight``: ``dweight = sum_rows(dout * xhat)`` and
    ``dx = rstd * (g - xhat * mean(g * xhat))`` (the second term is the path through ``rstd``).

    Args:
        dout: Gradient of ``y``.
        x, weight, eps: The forward's arguments (``eps`` is already folded into ``rstd``).
        rstd: The forward's ``rstd``.

    Returns:
        ``(dx, dweight)`` (``dweight`` None without a gain).
    """
    acc = rstd.dtype
    d = x.size(-1)
    xhat = torch.mul(x, rstd)  # statistics dtype (rstd's)
    dy = dout.to(acc)  # dout itself when the dtypes agree: not modified below
    dweight = None
    g = dy
    if weight is not None:
        dweight = (dy * xhat).reshape(-1, d).sum(0).to(weight.dtype)
        g = dy * weight.to(acc)
    mean_gx = (g * xhat).sum(-1, keepdim=True).div_(d)
    dx = torch.sub(g, xhat.mul_(mean_gx)).mul_(rstd)
    return dx.to(x.dtype), dweight


def fold_gain_forward(weight: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """A matrix with a preceding RMSNorm's gain folded in: ``weight * gain`` (column scaling).

    ``(xhat * gain) @ weight^T = xhat @ (weight * gain)^T``: scaling the ``[M, K]`` matrix once
    replaces scaling every ``[N, K]`` activation in the forward and in the backward.

    Args:
        weight: ``[M, K]``.
        gain: ``[K]``.

    Returns:
        ``[M, K]``.
    """
    return weight * gain.to(weight.dtype)


def fold_gain_backward(
    dout: torch.Tensor, weight: torch.Tensor, gain: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of :func:`fold_gain_forward`: ``dweight = dout * gain``,
    ``dgain = sum_rows(dout * weight)``.

    Args:
        dout: Gradient of the folded matrix ``[M, K]``.
        weight, gain: The forward's arguments.

    Returns:
        ``(dweight, dgain)`` in the dtypes of ``weight`` and ``gain``.
    """
    acc = _acc_dtype(dout.dtype)
    dweight = (dout * gain.to(dout.dtype)).to(weight.dtype)
    dgain = (dout.to(acc) * weight.to(acc)).sum(0).to(gain.dtype)
    return dweight, dgain


# ----------------------------------------------------------------------------- linear
def linear_forward(
    x: torch.Tensor, weight: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``y = x @ weight.T`` (no bias).

    Args:
        x: ``[..., K]``.
        weight: ``[M, K]`` (PyTorch ``nn.Linear`` layout).
        out: Optional tensor ``[..., M]`` to write into.

    Returns:
        ``[..., M]`` (``out`` when given).
    """
    if out is None:
        return torch.matmul(x, weight.t())
    return torch.matmul(x, weight.t(), out=out)


def linear_backward(
    dout: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    dweight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``dx = dout @ weight``, ``dweight = dout^T @ x`` (summed over all leading dimensions).

    Args:
        dout: Gradient of ``y`` ``[..., M]``.
        x, weight: The forward's arguments.
        dweight: Optional ``[M, K]`` accumulator: the weight gradient is added to it (used when
            the rows are processed in blocks).

    Returns:
        ``(dx, dweight)``.
    """
    dx = torch.matmul(dout, weight)
    d2, x2 = dout.reshape(-1, dout.size(-1)), x.reshape(-1, x.size(-1))
    if dweight is None:
        return dx, torch.mm(d2.t(), x2)
    if dweight.dtype == d2.dtype:
        return dx, dweight.addmm_(d2.t(), x2)
    return dx, dweight.add_(torch.mm(d2.t(), x2))


# ----------------------------------------------------------------------------- RoPE
def rope_cache(
    positions: torch.Tensor, head_dim: int, theta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosines and sines of rotary position embeddings (Hugging Face Llama convention).

    ``inv_freq[j] = theta^(-2j/head_dim)``; the angle of position ``p`` and pair ``j`` is
    ``p * inv_freq[j]``; both halves of the head dimension use the same angles (``cat(f, f)``),
    computed in float32 exactly as ``transformers`` does.

    Args:
        positions: Positions ``[T]`` (any integers).
        head_dim: Size of one attention head (even).
        theta: RoPE base.

    Returns:
        ``(cos, sin)``, each ``[T, head_dim]`` float32.
    """
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float) / head_dim))
    freqs = positions.to(torch.float)[:, None] * inv_freq.to(positions.device)[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rope_forward(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Rotate each pair ``(x[j], x[j + hd/2])`` of the last dimension by its angle.

    ``y = x * cos + rotate_half(x) * sin`` with ``rotate_half(x) = cat(-x2, x1)``, i.e.
    ``y1 = x1 cos - x2 sin`` and ``y2 = x2 cos + x1 sin``.

    Args:
        x: ``[..., hd]``.
        cos, sin: Broadcastable to ``x`` (from :func:`rope_cache`; only the first half is read).
        out: Optional tensor to write into (may be a strided view, e.g. a transposed layout).

    Returns:
        The rotated tensor (``out`` when given).
    """
    h = x.size(-1) // 2
    if out is None:
        out = torch.empty_like(x)
    x1, x2 = x[..., :h], x[..., h:]
    c, s = cos[..., :h].to(x.dtype), sin[..., :h].to(x.dtype)
    y1, y2 = out[..., :h], out[..., h:]
    torch.mul(x1, c, out=y1).addcmul_(x2, s, value=-1)
    torch.mul(x2, c, out=y2).addcmul_(x1, s)
    return out


def rope_backward(
    dout: torch.Tensor,
    x: torch.Tensor | None,
    cos: torch.Tensor,
    sin: torch.Tensor,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gradient of :func:`rope_forward`: a rotation's transpose is the rotation by minus the angle.

    ``dx1 = dy1 cos + dy2 sin`` and ``dx2 = dy2 cos - dy1 sin`` (``x`` itself is not needed: the
    operation is linear in ``x``).

    Args:
        dout: Gradient of ``y``.
        x: The forward's input (unused; may be None).
        cos, sin: The forward's tables.
        out: Optional tensor to write ``dx`` into.

    Returns:
        ``dx``.
    """
    return rope_forward(dout, cos, -sin, out=out)


# ----------------------------------------------------------------------------- softmax
def softmax_forward(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """``softmax`` over the last dimension (``-inf`` entries get probability 0).

    Args:
        x: Scores ``[..., n]``.
        inplace: Overwrite ``x`` with the probabilities.

    Returns:
        Probabilities like ``x``.
    """
    if inplace:
        return torch._softmax(x, -1, False, out=x)
    return torch._softmax(x, -1, False)


def softmax_backward(dout: torch.Tensor, x: torch.Tensor | None, out: torch.Tensor) -> torch.Tensor:
    """``dx = p * (dp - sum(dp * p))`` with ``p`` the forward's output (the Jacobian is
    ``diag(p) - p p^T``).

    Args:
        dout: Gradient of the probabilities.
        x: The forward's scores (unused; may be None).
        out: The forward's probabilities.

    Returns:
        ``dx``.
    """
    dot = (dout * out).sum(-1, keepdim=True)
    return (dout - dot).mul_(out)


# ----------------------------------------------------------------------------- attention
_MASKS: dict[tuple[int, torch.dtype, torch.device], torch.Tensor] = {}


def causal_mask(t: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Additive causal mask ``[t, t]``: 0 on and below the diagonal, ``-inf`` above (cached)."""
    key = (t, dtype, device)
    mask = _MASKS.get(key)
    if mask is None:
        mask = torch.full((t, t), float("-inf"), dtype=dtype, device=device).triu_(1)
        if len(_MASKS) > 16:
            _MASKS.clear()
        _MASKS[key] = mask
    return mask


def _as_batched(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.size(-2), x.size(-1))


def _attention_tiles(shape: tuple[int, ...], device: torch.device) -> list[tuple[int, ...]]:
    """``(first head, end head, first query, end query)`` of each block, in processing order.

    ``shape`` is ``[..., T, hd]``; the leading dimensions are flattened into heads.
    """
    t = shape[-2]
    bh = math.prod(shape[:-2])
    rows = min(t, ATTENTION_QUERY_ROWS.get(device.type, 128))
    heads = _chunk_rows(bh, rows * t * 4, device, ATTENTION_CHUNK_BYTES)
    return [
        (i, min(i + heads, bh), q0, min(q0 + rows, t))
        for i in range(0, bh, heads)
        for q0 in range(0, t, rows)
    ]


def attention_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal scaled dot-product attention.

    ``s = q k^T / sqrt(hd) + mask`` (mask: ``-inf`` where key position > query position),
    ``p = softmax(s)``, ``y = p v``. Computed in blocks of (batch x head) pairs and of query rows;
    a block of queries ``[q0, q1)`` only meets the keys ``[0, q1)``, so the blocks above the
    diagonal are never computed. Only one block of probabilities exists at a time and none is
    kept for the backward (keeping them was measured no faster on CPU: the saved products are
    paid back in memory traffic and allocation).

    Args:
        q, k, v: ``[..., T, hd]`` (same leading shape; e.g. ``[B, H, T, hd]``).

    Returns:
        ``y`` ``[..., T, hd]``.
    """
    t, hd = q.shape[-2:]
    qb, kb, vb = _as_batched(q), _as_batched(k), _as_batched(v)
    out = torch.empty_like(qb)
    mask = causal_mask(t, q.dtype, q.device)
    scale = 1.0 / math.sqrt(hd)
    half = q.dtype in _HALF
    for i, j, q0, q1 in _attention_tiles(q.shape, q.device):
        s = torch.baddbmm(mask[q0:q1, :q1], qb[i:j, q0:q1], kb[i:j, :q1].mT, alpha=scale)
        p = softmax_forward(s.float() if half else s, inplace=True)
        p = p.to(q.dtype) if half else p
        out[i:j, q0:q1] = torch.bmm(p, vb[i:j, :q1])  # a strided out= is slower on CPU
    return out.view(q.shape)


def attention_backward(
    dout: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    out: torch.Tensor,
    grads: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of :func:`attention_forward`, recomputing the probabilities block by block.

    ``dv = p^T dy``; ``dp = dy v^T``; softmax backward ``ds = p * (dp - delta)`` where
    ``delta_i = sum_j dp_ij p_ij = sum_d dy_id y_id`` (cheaper: ``[T, hd]`` instead of
    ``[T, T]``); masked entries have ``p = 0`` hence ``ds = 0``; ``dq = ds k / sqrt(hd)``,
    ``dk = ds^T q / sqrt(hd)``. Same blocks as the forward; ``dk`` and ``dv`` accumulate over
    the query blocks (a product into a fresh block, then added: ``baddbmm_`` into a strided
    slice falls back to one small matrix product per head on CPU).

    Args:
        dout: Gradient of ``y``.
        q, k, v: The forward's arguments.
        out: The forward's output ``y`` (any layout viewable as ``q``'s shape).
        grads: Optional contiguous ``[3, *q.shape]`` tensor to write ``dq, dk, dv`` into.

    Returns:
        ``(dq, dk, dv)`` shaped like ``q`` (views of ``grads`` when given).
    """
    t, hd = q.shape[-2:]
    acc = _acc_dtype(q.dtype)
    qb, kb, vb = _as_batched(q), _as_batched(k), _as_batched(v)
    dob = _as_batched(dout.to(q.dtype)).contiguous()
    neg_delta = _as_batched((dout.to(acc) * out.to(acc)).sum(-1, keepdim=True).neg_())
    if grads is None:
        grads = torch.empty((3, *qb.shape), dtype=q.dtype, device=q.device)
    dq, dk, dv = grads.view(3, *qb.shape).unbind(0)
    dk.zero_(), dv.zero_()  # accumulated over the query blocks
    mask = causal_mask(t, q.dtype, q.device)
    scale = 1.0 / math.sqrt(hd)
    half = q.dtype in _HALF
    for i, j, q0, q1 in _attention_tiles(q.shape, q.device):
        q_blk, do_blk, k_blk, v_blk = qb[i:j, q0:q1], dob[i:j, q0:q1], kb[i:j, :q1], vb[i:j, :q1]
        s = torch.baddbmm(mask[q0:q1, :q1], q_blk, k_blk.mT, alpha=scale)
        p = softmax_forward(s.float() if half else s, inplace=True)
        p_c = p.to(q.dtype) if half else p
        dv[i:j, :q1].add_(torch.bmm(p_c.mT, do_blk))
        if half:
            ds = torch.bmm(do_blk, v_blk.mT).float().add_(neg_delta[i:j, q0:q1]).mul_(p)
        else:  # dp - delta in one product: baddbmm's input is -delta, broadcast over keys
            ds = torch.baddbmm(neg_delta[i:j, q0:q1], do_blk, v_blk.mT).mul_(p)
        ds_c = ds.to(q.dtype) if half else ds
        torch.mul(torch.bmm(ds_c, k_blk), scale, out=dq[i:j, q0:q1])
        dk[i:j, :q1].add_(torch.bmm(ds_c.mT, q_blk), alpha=scale)
    return dq.view(q.shape), dk.view(k.shape), dv.view(v.shape)


# ----------------------------------------------------------------------------- SwiGLU
def swiglu_forward(
    gate_up: torch.Tensor, out: torch.Tensor | None = None, stats: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``silu(g) * u`` where ``g, u`` are the two halves of the last dimension.

    The two factors the backward needs are formed here, while ``sigmoid(g)`` is at hand: with
    ``s = sigmoid(g)``, ``silu(g) = g s`` and ``silu'(g) = s (1 + g (1 - s)) = s + silu(g) (1 -
    s)``, the statistics are ``(silu(g), u * silu'(g))``. Keeping them instead of ``gate_up``
    takes the same memory and leaves the backward two products and no transcendental function.

    Args:
        gate_up: ``[..., 2F]`` (gate first, then up).
        out: Optional tensor ``[..., F]`` to write ``y`` into.
        stats: Optional tensor ``[..., 2F]`` to write the statistics into.

    Returns:
        ``(y, stats)``: ``y`` ``[..., F]``; ``stats`` ``[..., 2F]``, ``silu(g)`` then
        ``u * silu'(g)``.
    """
    f = gate_up.size(-1) // 2
    g, u = gate_up[..., :f], gate_up[..., f:]
    if stats is None:
        stats = torch.empty_like(gate_up)
    silu, u_dsilu = stats[..., :f], stats[..., f:]
    sig = torch.sigmoid(g)
    torch.mul(g, sig, out=silu)
    y = torch.mul(silu, u, out=out) if out is not None else silu * u
    torch.mul(sig.lerp_(sig.new_ones(()), silu), u, out=u_dsilu)  # lerp: s + silu (1 - s)
    return y, stats


def swiglu_backward(
    dout: torch.Tensor, gate_up: torch.Tensor | None, stats: torch.Tensor
) -> torch.Tensor:
    """Gradient of :func:`swiglu_forward`: ``du = dy silu(g)``, ``dg = dy u silu'(g)``.

    Args:
        dout: Gradient of the output ``[..., F]``.
        gate_up: The forward's input (unused; may be None).
        stats: The forward's statistics.

    Returns:
        ``dgate_up`` ``[..., 2F]``.
    """
    f = stats.size(-1) // 2
    dgate_up = torch.empty_like(stats)
    torch.mul(dout, stats[..., f:], out=dgate_up[..., :f])
    torch.mul(dout, stats[..., :f], out=dgate_up[..., f:])
    return dgate_up


# ----------------------------------------------------------------------------- residual add
def residual_forward(
    x: torch.Tensor, y: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``x + y`` (the residual stream plus a branch).

    Args:
        x, y: Tensors of the same shape.
        out: Optional tensor to write into.

    Returns:
        The sum.
    """
    return torch.add(x, y) if out is None else torch.add(x, y, out=out)


def residual_backward(
    dout: torch.Tensor, x: torch.Tensor | None, y: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """An addition passes its gradient unchanged to both operands.

    Args:
        dout: Gradient of the sum.
        x, y: The forward's operands (unused; may be None).

    Returns:
        ``(dx, dy)``, both ``dout`` itself (not copies).
    """
    return dout, dout


# ----------------------------------------------------------------------------- dropout
def make_dropout_mask(
    shape: tuple[int, ...] | torch.Size,
    p: float,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Boolean keep-mask: each element kept with probability ``1 - p``.

    Args:
        shape: Mask shape.
        p: Drop probability in ``[0, 1)``.
        device: Where to create it.
        generator: Optional random generator.

    Returns:
        ``bool`` tensor.
    """
    mask = torch.empty(shape, dtype=torch.bool, device=device)
    return mask.bernoulli_(1.0 - p, generator=generator)


def dropout_forward(x: torch.Tensor, mask: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout with a given keep-mask: ``x * mask / (1 - p)``.

    Args:
        x: Input.
        mask: Boolean keep-mask broadcastable to ``x`` (see :func:`make_dropout_mask`).
        p: Drop probability the mask was drawn with.

    Returns:
        The masked, rescaled input.
    """
    return torch.mul(x, mask).mul_(1.0 / (1.0 - p))


def dropout_backward(
    dout: torch.Tensor, x: torch.Tensor | None, mask: torch.Tensor, p: float
) -> torch.Tensor:
    """Dropout is a fixed diagonal scaling: ``dx = dout * mask / (1 - p)``.

    Args:
        dout: Gradient of the output.
        x: The forward's input (unused; may be None).
        mask, p: The forward's mask and probability.

    Returns:
        ``dx``.
    """
    return dropout_forward(dout, mask, p)


# ----------------------------------------------------------------------------- cross-entropy
def _valid_targets(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(valid mask, labels with ignored entries set to 0, number of valid labels)``."""
    valid = labels != IGNORE_INDEX
    safe = labels.masked_fill(~valid, 0)
    return valid, safe, valid.sum()


def cross_entropy_forward(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the labels that are not ``IGNORE_INDEX`` (-100).

    ``loss = mean_valid(-log_softmax(logits_i)[label_i])``, computed a block of rows at a time
    (one block of log-probabilities exists at a time). All labels ignored gives ``nan`` (0/0),
    as in PyTorch.

    Args:
        logits: ``[N, V]``.
        labels: ``[N]`` int64.

    Returns:
        The scalar loss (float32 for half-precision logits).
    """
    n, vocab = logits.shape
    acc = _acc_dtype(logits.dtype)
    valid, safe, n_valid = _valid_targets(labels)
    nll = torch.empty(n, 1, dtype=acc, device=logits.device)
    step = _chunk_rows(n, vocab * 4 * 2, logits.device)
    buf = torch.empty(step, vocab, dtype=acc, device=logits.device)
    for i in range(0, n, step):
        j = min(i + step, n)
        logp = torch._log_softmax(logits[i:j].to(acc), -1, False, out=buf[: j - i])
        torch.gather(logp, 1, safe[i:j, None], out=nll[i:j])
    return -torch.where(valid, nll[:, 0], 0.0).sum() / n_valid


def _ce_row_scale(
    dloss: torch.Tensor, labels: torch.Tensor, acc: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row factor ``dloss / n_valid`` (0 on ignored rows) ``[N, 1]`` and safe labels."""
    valid, safe, n_valid = _valid_targets(labels)
    scale = dloss.to(acc) / n_valid.clamp(min=1)
    return (valid.to(acc) * scale)[:, None], safe


def _softmax_minus_onehot(
    logits: torch.Tensor, safe: torch.Tensor, out: torch.Tensor
) -> torch.Tensor:
    """``softmax(logits) - onehot(safe)`` for a block of rows, written into ``out``."""
    p = torch._softmax(logits.to(out.dtype), -1, False, out=out)
    minus_one = torch.full((p.size(0), 1), -1.0, dtype=p.dtype, device=p.device)
    return p.scatter_add_(1, safe[:, None], minus_one)


def cross_entropy_backward(
    dloss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """``dlogits = dloss * (softmax(logits) - onehot(label)) / n_valid``, zero on ignored rows.

    The softmax is recomputed a block of rows at a time by one fused kernel (its row maximum
    and sum are recomputed in cache, which is cheaper than keeping and re-reading statistics).

    Args:
        dloss: Gradient of the scalar loss.
        logits, labels: The forward's arguments.

    Returns:
        ``dlogits`` ``[N, V]`` (dtype of ``logits``).
    """
    n, vocab = logits.shape
    acc = _acc_dtype(logits.dtype)
    row_scale, safe = _ce_row_scale(dloss, labels, acc)
    dlogits = torch.empty_like(logits)
    step = _chunk_rows(n, vocab * 4 * 2, logits.device)
    buf = torch.empty(step, vocab, dtype=acc, device=logits.device)
    for i in range(0, n, step):
        j = min(i + step, n)
        g = _softmax_minus_onehot(logits[i:j], safe[i:j], buf[: j - i])
        torch.mul(g, row_scale[i:j], out=dlogits[i:j])
    return dlogits


def lm_head_cross_entropy_forward(
    x: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Output projection fused with the cross-entropy: ``logits = x @ weight^T``, then the loss.

    Args:
        x: Final hidden states ``[N, D]``.
        weight: Output projection ``[V, D]``.
        labels: ``[N]`` targets, or None for logits only.

    Returns:
        ``(logits, loss)``; ``loss`` is None without labels.
    """
    logits = linear_forward(x, weight)
    if labels is None:
        return logits, None
    return logits, cross_entropy_forward(logits, labels)


def lm_head_cross_entropy_backward(
    dlogits: torch.Tensor | None,
    dloss: torch.Tensor | None,
    x: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor | None,
    logits: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of :func:`lm_head_cross_entropy_forward`, a block of rows at a time.

    For each block of rows, ``g = softmax(logits) - onehot(labels)`` is formed in a reused
    block buffer and used at once for ``dx[rows] = s * (g @ weight)`` and
    ``dweight += g^T @ (s * x[rows])``, where ``s = dloss / n_valid`` per row (0 on ignored rows)
    is folded into the small ``[rows, D]`` operands instead of scaling ``g``. When the caller
    also differentiated the logits, ``g = s * g + dlogits[rows]``. Neither the full ``[N, V]``
    gradient nor the full softmax ever exists.

    Args:
        dlogits: Gradient of the logits from elsewhere, or None.
        dloss: Gradient of the loss, or None.
        x, weight, labels: The forward's arguments.
        logits: The forward's logits.

    Returns:
        ``(dx, dweight)``.
    """
    n, vocab = logits.shape
    acc = _acc_dtype(logits.dtype)
    use_ce = dloss is not None and labels is not None
    dweight = torch.zeros(weight.shape, dtype=acc, device=weight.device)
    if not use_ce and dlogits is None:
        return torch.zeros_like(x), dweight.to(weight.dtype)
    if use_ce:
        assert dloss is not None and labels is not None
        row_scale, safe = _ce_row_scale(dloss, labels, acc)
    dx = torch.empty_like(x)
    w = weight.to(x.dtype)
    step = _chunk_rows(n, vocab * 4 * 2, logits.device)
    buf = torch.empty(step, vocab, dtype=acc, device=logits.device)
    for i in range(0, n, step):
        j = min(i + step, n)
        xs = x[i:j]
        if not use_ce:
            assert dlogits is not None
            g = dlogits[i:j]
        else:
            g = _softmax_minus_onehot(logits[i:j], safe[i:j], buf[: j - i])
            if dlogits is None:  # fold the row scale into the [rows, D] operands
                xs = xs * row_scale[i:j].to(x.dtype)
            else:
                g = g.mul_(row_scale[i:j]).add_(dlogits[i:j])
        g = g.to(x.dtype)
        dxs = torch.mm(g, w, out=dx[i:j])
        if use_ce and dlogits is None:
            dxs.mul_(row_scale[i:j])
        if g.dtype == acc:
            dweight.addmm_(g.t(), xs)
        else:
            dweight.add_(torch.mm(g.t(), xs))
    return dx, dweight.to(weight.dtype)
