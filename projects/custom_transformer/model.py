"""``CustomTransformer``: a Llama-style decoder whose backward pass is written by hand.

Architecture: token embedding; ``n_layers`` blocks of ``x = x + drop(Attn(RMSNorm(x)))``,
``x = x + drop(SwiGLU(RMSNorm(x)))`` with causal multi-head self-attention and rotary position
embeddings (Hugging Face Llama convention); a final RMSNorm; an output projection, tied to the
embedding or not. No biases anywhere.

How autograd is used: only as the wiring. The model is three ``torch.autograd.Function`` s,
``EmbeddingFunction``, ``TransformerBlockFunction`` (one application per block) and
``LMHeadFunction`` (final norm + output projection + cross-entropy). Their ``forward`` runs the
hand-written ``*_forward`` ops of :mod:`projects.custom_transformer.ops` in no-grad mode and their
``backward`` the hand-written ``*_backward`` ops, so the autograd graph of the loss contains only
these three node types and the parameters' ``AccumulateGrad``; optimizers, gradient clipping,
``loss.backward()`` and DDP work as for any module.

Each block's two RMSNorm gains are folded into the matrix that follows them
(:func:`~projects.custom_transformer.ops.fold_gain_forward`): ``(xhat * w) @ W^T = xhat @ (W *
w)^T``, so the norms inside a block have no gain of their own and no ``[N, D]`` product with a
gain is ever formed, forward or backward.

What a block keeps for its backward (everything else is recomputed, element-wise and cheap):
its input ``x``, the mid-block residual ``x1``, q and k after RoPE and v (heads first, as the
attention reads them), the attention output (input of the output projection), SwiGLU's output
(input of ``w_down``) and its two derivative factors ``silu(g)`` and ``u * silu'(g)`` (formed in
the forward, where ``sigmoid(g)`` is at hand, in the memory the gate/up projection would take),
the two ``rstd`` vectors and the dropout masks. Recomputed: both normalized inputs (one product
with ``rstd`` each) and the attention probabilities (block by block; never stored). The head
keeps only the logits it returns; the softmax and the gradient of the logits are formed a block
of rows at a time and never exist in full. On CPU a block runs over chunks of whole sequences
so that temporaries stay small and in cache (:data:`BLOCK_CHUNK_ROWS`).

Parameter names (shared with :class:`~projects.custom_transformer.reference.ReferenceTransformer`
so state dicts load both ways)::

    embed.weight                       [V, D]
    layers.{i}.attn_norm.weight        [D]
    layers.{i}.attn.wqkv.weight        [3D, D]   rows: q heads, then k heads, then v heads
    layers.{i}.attn.wo.weight          [D, D]
    layers.{i}.ffn_norm.weight         [D]
    layers.{i}.ffn.w_gate_up.weight    [2F, D]   rows: gate, then up
    layers.{i}.ffn.w_down.weight       [D, F]
    norm.weight                        [D]
    lm_head.weight                     [V, D]    (only when not tied)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, NamedTuple, TypeVar

import torch
from torch import nn

from common.models.base import BaseLanguageModel
from common.utils.config import ConfigError, ModelConfig
from projects.custom_transformer import kernels as triton_kernels
from projects.custom_transformer import ops
from projects.custom_transformer.ops import (
    HALF_DTYPES,
    dropout_backward,
    dropout_forward,
    embedding_backward,
    embedding_forward,
    fold_gain_backward,
    fold_gain_forward,
    linear_backward,
    linear_forward,
    make_dropout_mask,
    residual_backward,
    residual_forward,
    rope_backward,
    rope_cache,
    rope_forward,
)

__all__ = [
    "KERNEL_CHOICES",
    "TORCH_KERNELS",
    "CustomTransformer",
    "EmbeddingFunction",
    "LMHeadFunction",
    "TransformerBlockFunction",
    "TransformerConfig",
    "resolve_d_ff",
    "select_kernels",
    "transformer_block_backward",
    "transformer_block_forward",
]


# ----------------------------------------------------------------------------- configuration
@dataclass
class TransformerConfig(ModelConfig):
    """Hyper-parameters of the custom transformer (the ``model`` section of a run config).

    Adds to :class:`~common.utils.config.ModelConfig`: ``rope_theta`` (RoPE base),
    ``norm_eps`` (RMSNorm epsilon), ``tie_embeddings`` (output projection shares the
    embedding table) and ``kernels`` (which implementation of the operations runs, see
    :func:`select_kernels`; not part of the architecture, so not stored in checkpoints).
    ``d_ff`` of ``None`` follows the Llama rule, see :func:`resolve_d_ff`.

    Raises:
        ConfigError: ``kernels`` is not one of :data:`KERNEL_CHOICES`, or is ``triton`` where
            Triton is not installed.
    """

    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True
    kernels: str = "auto"

    def __post_init__(self) -> None:
        try:
            check_kernels_choice(self.kernels)
        except (ValueError, ImportError) as exc:
            raise ConfigError(f"model.kernels: {exc}") from None


#: Values of ``model.kernels``: ``auto`` (Triton kernels on CUDA when Triton is importable,
#: ``ops.py`` otherwise), ``torch`` (always ``ops.py``), ``triton`` (always the Triton kernels;
#: on a machine without CUDA they run in Triton's interpreter: slow, for tests).
KERNEL_CHOICES = ("auto", "torch", "triton")

#: The ``ops.py`` implementation under the interface of the Triton kernel set
#: (:func:`projects.custom_transformer.kernels.load`): attention and the head return no
#: log-sum-exp, and their backwards ignore it.
TORCH_KERNELS = SimpleNamespace(
    name="torch",
    rmsnorm_forward=ops.rmsnorm_forward,
    rmsnorm_backward=ops.rmsnorm_backward,
    swiglu_forward=ops.swiglu_forward,
    swiglu_backward=ops.swiglu_backward,
    attention_forward=lambda q, k, v, out: (out.copy_(ops.attention_forward(q, k, v)), None),
    attention_backward=lambda dout, q, k, v, out, lse, grads: ops.attention_backward(
        dout, q, k, v, out, grads=grads
    ),
    lm_head_cross_entropy_forward=lambda x, w, labels: (
        *ops.lm_head_cross_entropy_forward(x, w, labels),
        None,
    ),
    lm_head_cross_entropy_backward=lambda dlogits, dloss, x, w, labels, logits, lse: (
        ops.lm_head_cross_entropy_backward(dlogits, dloss, x, w, labels, logits)
    ),
)


def check_kernels_choice(choice: str) -> None:
    """Raise ValueError for a value outside :data:`KERNEL_CHOICES`, ImportError for ``triton``
    without Triton installed."""
    if choice not in KERNEL_CHOICES:
        raise ValueError(f"must be one of {', '.join(KERNEL_CHOICES)}, got {choice!r}")
    if choice == "triton" and not triton_kernels.triton_available():
        raise ImportError(
            "'triton' requested but the triton package is not installed (CUDA builds of torch "
            "bring it; on CPU: pip install triton, or use kernels: auto / torch)"
        )


def select_kernels(
    choice: str,
    device: torch.device,
    dtype: torch.dtype,
    compute_dtype: torch.dtype | None = None,
) -> tuple[SimpleNamespace, str]:
    """The implementation of the operations for ``model.kernels = choice`` on ``device``.

    On CUDA each Triton kernel is used only after it passed its self-check on this machine in
    ``dtype`` and ``compute_dtype`` (:mod:`projects.custom_transformer.kernels.selfcheck`,
    cached): with ``auto`` a kernel that failed is replaced by its ``ops.py`` pair (logged), with
    ``triton`` the failure is raised. Off CUDA nothing is checked.

    Args:
        choice: One of :data:`KERNEL_CHOICES`.
        device: Where the model's tensors are.
        dtype: The parameters' dtype (the Triton kernels take float32, bfloat16 and float16).
        compute_dtype: The autocast dtype of the matrix operands, if any.

    Returns:
        ``(kernels, description)``: :data:`TORCH_KERNELS` or the Triton kernel set, and a line
        saying which and why (for the training log).

    Raises:
        ValueError: ``triton`` for float64 parameters, or on a CPU where Triton is not in its
            interpreter (CUDA present: the kernels were built for the GPU).
        ImportError: ``triton`` without Triton installed.
        KernelCheckError: ``triton`` on CUDA and a kernel failed its self-check.
    """
    check_kernels_choice(choice)
    if choice == "torch":
        return TORCH_KERNELS, "ops.py (model.kernels=torch)"
    supported = dtype in (torch.float32, *HALF_DTYPES)
    if choice == "auto":
        if device.type != "cuda":
            return TORCH_KERNELS, f"ops.py (model.kernels=auto on {device.type})"
        if not triton_kernels.triton_available():
            return TORCH_KERNELS, "ops.py (model.kernels=auto on cuda: triton is not installed)"
        if not supported:
            return TORCH_KERNELS, f"ops.py (model.kernels=auto on cuda: {dtype} parameters)"
        return _verified(device, dtype, compute_dtype, "auto")
    if not supported:
        raise ValueError(f"model.kernels=triton: the Triton kernels do not take {dtype} tensors")
    if device.type == "cuda":
        return _verified(device, dtype, compute_dtype, "triton")
    if not triton_kernels.interpreting():
        raise ValueError(
            f"model.kernels=triton on {device.type}: Triton's interpreter is off on this CUDA "
            "machine; set TRITON_INTERPRET=1 before starting Python to test on CPU tensors"
        )
    return triton_kernels.load(), (
        f"Triton kernels in Triton's interpreter on {device.type} (model.kernels=triton; "
        "slow, for tests)"
    )


def _verified(
    device: torch.device, dtype: torch.dtype, compute_dtype: torch.dtype | None, choice: str
) -> tuple[SimpleNamespace, str]:
    """The Triton kernels that passed their self-check, ``ops.py`` for the others."""
    from projects.custom_transformer.kernels import selfcheck

    dtypes = [dtype] if compute_dtype is None else [dtype, compute_dtype]
    chosen, failed = selfcheck.verified_kernels(
        triton_kernels.load(), TORCH_KERNELS, device, dtypes, strict=choice == "triton"
    )
    where = f"model.kernels={choice} on cuda, self-checked"
    if not failed:
        return chosen, f"Triton kernels ({where})"
    return chosen, f"Triton kernels, ops.py for {'; '.join(failed)} ({where})"


def resolve_d_ff(d_model: int, d_ff: int | None, multiple_of: int = 64) -> int:
    """Width of the SwiGLU hidden layer.

    ``None`` gives the Llama rule: ``8/3 * d_model`` (same parameter count as a 4x GELU MLP,
    since SwiGLU has three matrices) rounded up to a multiple of ``multiple_of``; e.g. 256 -> 704,
    768 -> 2048.

    Args:
        d_model: Model width.
        d_ff: Explicit width, or None.
        multiple_of: Rounding granularity for the default.

    Returns:
        The width.
    """
    if d_ff is not None:
        return int(d_ff)
    hidden = int(8 * d_model / 3)
    return multiple_of * math.ceil(hidden / multiple_of)


def check_architecture(
    vocab_size: int,
    context_length: int,
    d_model: int,
    n_layers: int,
    n_heads: int,
    d_ff: int,
    dropout: float,
    rope_theta: float,
    norm_eps: float,
) -> None:
    problems = []
    for name, value in (
        ("vocab_size", vocab_size),
        ("context_length", context_length),
        ("d_model", d_model),
        ("n_layers", n_layers),
        ("n_heads", n_heads),
        ("d_ff", d_ff),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{name} must be a positive integer, got {value!r}")
    if not problems and d_model % n_heads:
        problems.append(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
    elif not problems and (d_model // n_heads) % 2:
        problems.append(f"the head size d_model/n_heads ({d_model // n_heads}) must be even (RoPE)")
    if not 0.0 <= dropout < 1.0:
        problems.append(f"dropout must be in [0, 1), got {dropout!r}")
    if not rope_theta > 0:
        problems.append(f"rope_theta must be positive, got {rope_theta!r}")
    if not norm_eps > 0:
        problems.append(f"norm_eps must be positive, got {norm_eps!r}")
    if problems:
        raise ValueError("invalid transformer configuration: " + "; ".join(problems))


def config_kwargs(cfg: ModelConfig, vocab_size: int | None = None) -> dict[str, Any]:
    """Constructor keyword arguments from a config section.

    Args:
        cfg: A :class:`TransformerConfig` (a plain ``ModelConfig`` gets the defaults for the
            extra fields).
        vocab_size: Overrides ``cfg.vocab_size`` (needed when that is None: "from tokenizer").

    Returns:
        Keyword arguments for :class:`CustomTransformer` / ``ReferenceTransformer``.

    Raises:
        ValueError: No vocabulary size known.
    """
    vocab = vocab_size if vocab_size is not None else cfg.vocab_size
    if vocab is None:
        raise ValueError("vocab_size is not set in the config; pass the tokenizer's vocab_size")
    defaults = TransformerConfig()
    return {
        "vocab_size": int(vocab),
        "context_length": cfg.context_length,
        "d_model": cfg.d_model,
        "n_layers": cfg.n_layers,
        "n_heads": cfg.n_heads,
        "d_ff": cfg.d_ff,
        "dropout": cfg.dropout,
        "rope_theta": getattr(cfg, "rope_theta", defaults.rope_theta),
        "norm_eps": getattr(cfg, "norm_eps", defaults.norm_eps),
        "tie_embeddings": getattr(cfg, "tie_embeddings", defaults.tie_embeddings),
    }


# ----------------------------------------------------------------------------- parameters
class _AttentionWeights(nn.Module):
    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.wqkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.wo = nn.Linear(d_model, d_model, bias=False)


class _FeedForwardWeights(nn.Module):
    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.w_gate_up = nn.Linear(d_model, 2 * d_ff, bias=False)
        self.w_down = nn.Linear(d_ff, d_model, bias=False)


class _BlockWeights(nn.Module):
    """The parameters of one block (the math lives in :func:`transformer_block_forward`)."""

    def __init__(self, d_model: int, d_ff: int, norm_eps: float) -> None:
        super().__init__()
        self.attn_norm = nn.RMSNorm(d_model, eps=norm_eps)
        self.attn = _AttentionWeights(d_model)
        self.ffn_norm = nn.RMSNorm(d_model, eps=norm_eps)
        self.ffn = _FeedForwardWeights(d_model, d_ff)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return (
            self.attn_norm.weight,
            self.attn.wqkv.weight,
            self.attn.wo.weight,
            self.ffn_norm.weight,
            self.ffn.w_gate_up.weight,
            self.ffn.w_down.weight,
        )


def init_weights(model: nn.Module, n_layers: int, std: float = 0.02) -> None:
    """GPT-2/Llama-style initialisation shared by the model and its reference twin.

    Normal(0, ``std``) for the embedding and the projections, ``std / sqrt(2 n_layers)`` for the
    two projections that write into the residual stream (``wo``, ``w_down``), ones for the norms.
    """
    for name, param in model.named_parameters():
        if name.endswith("norm.weight"):
            nn.init.ones_(param)
        elif name.endswith(("attn.wo.weight", "ffn.w_down.weight")):
            nn.init.normal_(param, mean=0.0, std=std / math.sqrt(2 * n_layers))
        else:
            nn.init.normal_(param, mean=0.0, std=std)


# ----------------------------------------------------------------------------- one block
class BlockSaved(NamedTuple):
    """What :func:`transformer_block_forward` keeps for :func:`transformer_block_backward`."""

    rstd1: torch.Tensor  # [N, 1] 1/rms of the block input
    qkv: torch.Tensor  # [3, B, H, T, hd] q and k after RoPE, and v, heads first
    attn: torch.Tensor  # [N, D] attention output, heads concatenated (input of wo)
    x1: torch.Tensor  # [N, D] residual stream between the two sub-layers
    rstd2: torch.Tensor  # [N, 1]
    act: torch.Tensor  # [N, F] SwiGLU output (input of w_down)
    swiglu: torch.Tensor  # [N, 2F] SwiGLU statistics: silu(gate), up * silu'(gate)
    lse: torch.Tensor | None  # [B, H, T] attention log-sum-exp (Triton kernels only)


def _rmsnorm_apply(
    x: torch.Tensor, weight: torch.Tensor | None, rstd: torch.Tensor
) -> torch.Tensor:
    """RMSNorm output from a known ``rstd`` (recomputation in the backward)."""
    y = torch.mul(x, rstd).to(x.dtype)
    return y if weight is None else y.mul_(weight.to(x.dtype))


#: Rows (tokens) per chunk of whole sequences processed at a time inside a block, per device
#: type. On CPU a chunk's temporaries stay in cache (and are small); on GPUs one chunk is the
#: whole batch, for large matrix multiplies.
BLOCK_CHUNK_ROWS = {"cpu": 1024, "cuda": 2**62}
_DEFAULT_BLOCK_CHUNK_ROWS = 2**62


def _sequence_chunks(b: int, t: int, device: torch.device) -> list[tuple[int, int]]:
    """``[(first, end), ...]`` sequence ranges covering the batch, ~BLOCK_CHUNK_ROWS rows each."""
    per = max(1, BLOCK_CHUNK_ROWS.get(device.type, _DEFAULT_BLOCK_CHUNK_ROWS) // t)
    return [(s, min(s + per, b)) for s in range(0, b, per)]


def transformer_block_forward(
    x: torch.Tensor,
    attn_norm_w: torch.Tensor,
    wqkv: torch.Tensor,
    wo: torch.Tensor,
    ffn_norm_w: torch.Tensor,
    w_gate_up: torch.Tensor,
    w_down: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    mask_attn: torch.Tensor | None,
    mask_ffn: torch.Tensor | None,
    n_heads: int,
    eps: float,
    dropout: float,
    compute_dtype: torch.dtype,
    kernels: SimpleNamespace = TORCH_KERNELS,
) -> tuple[torch.Tensor, BlockSaved]:
    """One block: ``x1 = x + drop(Attn(norm1(x)))``; ``out = x1 + drop(FFN(norm2(x1)))``.

    Every operation of a block is either per token or per sequence, so the block runs over
    chunks of whole sequences (:data:`BLOCK_CHUNK_ROWS`); only what the backward keeps is
    written for the whole batch.

    Args:
        x: Residual stream ``[B, T, D]``.
        attn_norm_w, wqkv, wo, ffn_norm_w, w_gate_up, w_down: The block's parameters.
        cos, sin: RoPE tables ``[T, hd]`` for positions ``0..T-1``.
        mask_attn, mask_ffn: Dropout keep-masks ``[B, T, D]`` of the two branches, or None.
        n_heads: Number of attention heads.
        eps: RMSNorm epsilon.
        dropout: Drop probability the masks were drawn with.
        compute_dtype: Dtype of the matrix multiplies (the residual stream stays in ``x``'s).
        kernels: :data:`TORCH_KERNELS` or the Triton kernels (:func:`select_kernels`).

    Returns:
        ``(out, saved)``: the new residual stream and what the backward needs.
    """
    b, t, d = x.shape
    n, hd, f = b * t, d // n_heads, w_down.size(1)
    cdt, acc = compute_dtype, (torch.float32 if x.dtype in HALF_DTYPES else x.dtype)
    x2 = x.reshape(n, d)
    cos_t, sin_t = cos.view(t, 1, 1, hd), sin.view(t, 1, 1, hd)
    wqkv_f = fold_gain_forward(wqkv, attn_norm_w).to(cdt)  # the norms' gains, folded in
    w_gate_up_f = fold_gain_forward(w_gate_up, ffn_norm_w).to(cdt)
    wo_c, w_down_c = wo.to(cdt), w_down.to(cdt)
    m_attn = None if mask_attn is None else mask_attn.view(n, d)
    m_ffn = None if mask_ffn is None else mask_ffn.view(n, d)
    out = torch.empty_like(x2)
    saved = BlockSaved(
        rstd1=torch.empty(n, 1, dtype=acc, device=x.device),
        qkv=torch.empty(3, b, n_heads, t, hd, dtype=cdt, device=x.device),
        attn=torch.empty(n, d, dtype=cdt, device=x.device),
        x1=torch.empty_like(x2),
        rstd2=torch.empty(n, 1, dtype=acc, device=x.device),
        act=torch.empty(n, f, dtype=cdt, device=x.device),
        swiglu=torch.empty(n, 2 * f, dtype=cdt, device=x.device),
        lse=(
            None
            if kernels.attention_forward is TORCH_KERNELS.attention_forward
            else torch.empty(b, n_heads, t, dtype=torch.float32, device=x.device)
        ),
    )
    for s0, s1 in _sequence_chunks(b, t, x.device):
        r = slice(s0 * t, s1 * t)
        bc = s1 - s0
        # attention sub-layer
        h, saved.rstd1[r] = kernels.rmsnorm_forward(x2[r], None, eps)
        qkv = linear_forward(h.to(cdt), wqkv_f).view(bc, t, 3, n_heads, hd)
        qkv_h = saved.qkv[:, s0:s1]  # [3, bc, H, T, hd], written in the transposed layout
        rope_forward(qkv[:, :, :2], cos_t, sin_t, out=qkv_h[:2].permute(1, 3, 0, 2, 4))
        qkv_h[2].transpose(1, 2).copy_(qkv[:, :, 2])
        qh, kh, vh = qkv_h
        attn = saved.attn[r]
        _, lse = kernels.attention_forward(
            qh, kh, vh, out=attn.view(bc, t, n_heads, hd).transpose(1, 2)
        )
        if saved.lse is not None:
            saved.lse[s0:s1] = lse
        proj = linear_forward(attn, wo_c)
        if m_attn is not None:
            proj = dropout_forward(proj, m_attn[r], dropout)
        x1 = residual_forward(x2[r], proj, out=saved.x1[r])
        # feed-forward sub-layer
        h2, saved.rstd2[r] = kernels.rmsnorm_forward(x1, None, eps)
        gate_up = linear_forward(h2.to(cdt), w_gate_up_f)
        act, _ = kernels.swiglu_forward(gate_up, out=saved.act[r], stats=saved.swiglu[r])
        del gate_up
        y = linear_forward(act, w_down_c)
        if m_ffn is not None:
            y = dropout_forward(y, m_ffn[r], dropout)
        residual_forward(x1, y, out=out[r])
    return out.view(b, t, d), saved


def transformer_block_backward(
    dout: torch.Tensor,
    x: torch.Tensor,
    attn_norm_w: torch.Tensor,
    wqkv: torch.Tensor,
    wo: torch.Tensor,
    ffn_norm_w: torch.Tensor,
    w_gate_up: torch.Tensor,
    w_down: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    mask_attn: torch.Tensor | None,
    mask_ffn: torch.Tensor | None,
    n_heads: int,
    eps: float,
    dropout: float,
    compute_dtype: torch.dtype,
    saved: BlockSaved,
    kernels: SimpleNamespace = TORCH_KERNELS,
) -> tuple[torch.Tensor, ...]:
    """Gradients of :func:`transformer_block_forward`, in reverse order of its operations.

    Runs over the same chunks of sequences as the forward; weight gradients accumulate over
    the chunks (in float32 for half-precision weights).

    Args:
        dout: Gradient of the block output ``[B, T, D]``.
        x ... compute_dtype: The forward's arguments.
        saved: The forward's :class:`BlockSaved`.
        kernels: The forward's kernels.

    Returns:
        ``(dx, dattn_norm_w, dwqkv, dwo, dffn_norm_w, dw_gate_up, dw_down)``.
    """
    b, t, d = x.shape
    n, hd = b * t, d // n_heads
    cdt = compute_dtype
    x2 = x.reshape(n, d)
    cos_t, sin_t = cos.view(t, 1, 1, hd), sin.view(t, 1, 1, hd)
    wqkv_f = fold_gain_forward(wqkv, attn_norm_w).to(cdt)
    w_gate_up_f = fold_gain_forward(w_gate_up, ffn_norm_w).to(cdt)
    wo_c, w_down_c = wo.to(cdt), w_down.to(cdt)
    # gradient accumulators (float32 for half-precision matrix multiplies); the first and third
    # are the gradients of the folded matrices
    dwqkv_f, dwo, dw_gate_up_f, dw_down = (
        torch.zeros(
            w.shape, dtype=torch.float32 if cdt in HALF_DTYPES else w.dtype, device=w.device
        )
        for w in (wqkv, wo, w_gate_up, w_down)
    )
    m_attn = None if mask_attn is None else mask_attn.view(n, d)
    m_ffn = None if mask_ffn is None else mask_ffn.view(n, d)
    d_out = dout.reshape(n, d)
    dx = torch.empty_like(x2)
    for s0, s1 in _sequence_chunks(b, t, x.device):
        r = slice(s0 * t, s1 * t)
        bc = s1 - s0
        x1, act = saved.x1[r], saved.act[r]

        # out = x1 + drop(w_down(swiglu(w_gate_up(norm2(x1)))))
        dx1, dy = residual_backward(d_out[r], x1, None)
        if m_ffn is not None:
            dy = dropout_backward(dy, None, m_ffn[r], dropout)
        dact, _ = linear_backward(dy.to(cdt), act, w_down_c, dweight=dw_down)
        dgate_up = kernels.swiglu_backward(dact, None, saved.swiglu[r])
        del dact
        h2 = _rmsnorm_apply(x1, None, saved.rstd2[r]).to(cdt)  # recomputed
        dh2, _ = linear_backward(dgate_up, h2, w_gate_up_f, dweight=dw_gate_up_f)
        del dgate_up, h2
        dx1_norm, _ = kernels.rmsnorm_backward(dh2, x1, None, eps, saved.rstd2[r])
        dx1 = dx1_norm.add_(dx1)

        # x1 = x + drop(wo(attention(rope(q), rope(k), v))), qkv = wqkv(norm1(x))
        dx_res, dproj = residual_backward(dx1, x2[r], None)
        if m_attn is not None:
            dproj = dropout_backward(dproj, None, m_attn[r], dropout)
        attn = saved.attn[r]
        dattn, _ = linear_backward(dproj.to(cdt), attn, wo_c, dweight=dwo)
        qh, kh, vh = saved.qkv[:, s0:s1]
        dqkv_h = torch.empty_like(saved.qkv[:, s0:s1])  # [3, bc, H, T, hd]
        kernels.attention_backward(
            dattn.view(bc, t, n_heads, hd).transpose(1, 2),
            qh,
            kh,
            vh,
            attn.view(bc, t, n_heads, hd).transpose(1, 2),
            None if saved.lse is None else saved.lse[s0:s1],
            grads=dqkv_h,
        )
        del dattn
        dqkv = torch.empty(bc * t, 3 * d, dtype=cdt, device=x.device)
        dqkv5 = dqkv.view(bc, t, 3, n_heads, hd)
        rope_backward(dqkv_h[:2].permute(1, 3, 0, 2, 4), None, cos_t, sin_t, out=dqkv5[:, :, :2])
        dqkv5[:, :, 2].copy_(dqkv_h[2].transpose(1, 2))
        del dqkv_h
        h = _rmsnorm_apply(x2[r], None, saved.rstd1[r]).to(cdt)  # recomputed
        dh, _ = linear_backward(dqkv, h, wqkv_f, dweight=dwqkv_f)
        del dqkv, h
        dx_norm, _ = kernels.rmsnorm_backward(dh, x2[r], None, eps, saved.rstd1[r])
        torch.add(dx_norm, dx_res, out=dx[r])
    dwqkv, dattn_norm_w = fold_gain_backward(dwqkv_f, wqkv, attn_norm_w)
    dw_gate_up, dffn_norm_w = fold_gain_backward(dw_gate_up_f, w_gate_up, ffn_norm_w)
    return (
        dx.view(b, t, d),
        dattn_norm_w,
        dwqkv,
        dwo.to(wo.dtype),
        dffn_norm_w,
        dw_gate_up,
        dw_down.to(w_down.dtype),
    )


# ----------------------------------------------------------------------------- autograd wiring
@contextlib.contextmanager
def _no_autocast(device_type: str) -> Iterator[None]:
    """The ops choose their dtypes themselves; ambient autocast must not re-cast them."""
    try:
        ctx = torch.autocast(device_type=device_type, enabled=False)
    except RuntimeError:  # a device type without autocast support
        ctx = contextlib.nullcontext()  # type: ignore[assignment]
    with ctx:
        yield


class EmbeddingFunction(torch.autograd.Function):
    """Token embedding: :func:`~projects.custom_transformer.ops.embedding_forward` / backward."""

    @staticmethod
    def forward(ctx: Any, ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(ids, weight)
        return embedding_forward(ids, weight)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[None, torch.Tensor]:
        ids, weight = ctx.saved_tensors
        with _no_autocast(dout.device.type):
            return None, embedding_backward(dout, ids, weight)


class TransformerBlockFunction(torch.autograd.Function):
    """One block: :func:`transformer_block_forward` and :func:`transformer_block_backward`."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        attn_norm_w: torch.Tensor,
        wqkv: torch.Tensor,
        wo: torch.Tensor,
        ffn_norm_w: torch.Tensor,
        w_gate_up: torch.Tensor,
        w_down: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask_attn: torch.Tensor | None,
        mask_ffn: torch.Tensor | None,
        n_heads: int,
        eps: float,
        dropout: float,
        compute_dtype: torch.dtype,
        kernels: SimpleNamespace = TORCH_KERNELS,
    ) -> torch.Tensor:
        with _no_autocast(x.device.type):
            out, saved = transformer_block_forward(
                x,
                attn_norm_w,
                wqkv,
                wo,
                ffn_norm_w,
                w_gate_up,
                w_down,
                cos,
                sin,
                mask_attn,
                mask_ffn,
                n_heads,
                eps,
                dropout,
                compute_dtype,
                kernels,
            )
        ctx.save_for_backward(
            x,
            attn_norm_w,
            wqkv,
            wo,
            ffn_norm_w,
            w_gate_up,
            w_down,
            cos,
            sin,
            mask_attn,
            mask_ffn,
            *saved,
        )
        ctx.static = (n_heads, eps, dropout, compute_dtype)
        ctx.kernels = kernels
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, dout: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        tensors = ctx.saved_tensors
        inputs, saved = tensors[:11], BlockSaved(*tensors[11:])
        with _no_autocast(dout.device.type):
            grads = transformer_block_backward(dout, *inputs, *ctx.static, saved, ctx.kernels)
        return (*grads, None, None, None, None, None, None, None, None, None)


class LMHeadFunction(torch.autograd.Function):
    """Final RMSNorm + output projection + cross-entropy, fused (see
    :func:`~projects.custom_transformer.ops.lm_head_cross_entropy_forward`)."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        norm_w: torch.Tensor,
        head_w: torch.Tensor,
        labels: torch.Tensor | None,
        eps: float,
        compute_dtype: torch.dtype,
        kernels: SimpleNamespace = TORCH_KERNELS,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        b, t, d = x.shape
        x2 = x.reshape(b * t, d)
        with _no_autocast(x.device.type):
            h, rstd = kernels.rmsnorm_forward(x2, norm_w, eps)
            flat_labels = None if labels is None else labels.reshape(-1)
            logits, loss, lse = kernels.lm_head_cross_entropy_forward(
                h.to(compute_dtype), head_w.to(compute_dtype), flat_labels
            )
        del h
        logits = logits.view(b, t, -1)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, norm_w, head_w, flat_labels, logits, rstd, lse)
        ctx.static = (eps, compute_dtype)
        ctx.kernels = kernels
        return logits, loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: Any, dlogits: torch.Tensor | None, dloss: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        x, norm_w, head_w, labels, logits, rstd, lse = ctx.saved_tensors
        eps, cdt = ctx.static
        kernels = ctx.kernels
        b, t, d = x.shape
        x2 = x.reshape(b * t, d)
        vocab = logits.size(-1)
        with _no_autocast(x.device.type):
            h = _rmsnorm_apply(x2, norm_w, rstd).to(cdt)
            dh, dhead_w = kernels.lm_head_cross_entropy_backward(
                None if dlogits is None else dlogits.reshape(b * t, vocab),
                dloss,
                h,
                head_w.to(cdt),
                labels,
                logits.view(b * t, vocab),
                lse,
            )
            del h
            dx, dnorm_w = kernels.rmsnorm_backward(dh, x2, norm_w, eps, rstd)
        return dx.view(b, t, d), dnorm_w, dhead_w.to(head_w.dtype), None, None, None, None


# ----------------------------------------------------------------------------- the model
def _compute_dtype(device_type: str, param_dtype: torch.dtype) -> torch.dtype:
    try:
        if torch.is_autocast_enabled(device_type):
            return torch.get_autocast_dtype(device_type)
    except RuntimeError:
        pass
    return param_dtype


_M = TypeVar("_M", bound="LlamaBase")


class LlamaBase(BaseLanguageModel):
    """What ``CustomTransformer`` and its autograd twin share: the validated configuration, the
    embedding, the final norm, the output projection and the RoPE tables. Subclasses supply the
    block module (``_build_block``) and ``forward``.

    Args:
        vocab_size: Vocabulary size.
        context_length: Maximum sequence length (RoPE tables are built for it).
        d_model: Residual stream width.
        n_layers: Number of blocks.
        n_heads: Attention heads (``d_model / n_heads`` must be even).
        d_ff: SwiGLU hidden width; None for the Llama rule (:func:`resolve_d_ff`).
        dropout: Drop probability on the output of each sub-layer (attention and feed-forward
            branches, before the residual add) in training mode.
        rope_theta: RoPE base.
        norm_eps: RMSNorm epsilon.
        tie_embeddings: Use the embedding table as the output projection.

    Raises:
        ValueError: An invalid combination of sizes.
    """

    rope_cos: torch.Tensor
    rope_sin: torch.Tensor

    def __init__(
        self,
        vocab_size: int,
        context_length: int = 256,
        d_model: int = 256,
        n_layers: int = 4,
        n_heads: int = 8,
        d_ff: int | None = None,
        dropout: float = 0.0,
        rope_theta: float = 10000.0,
        norm_eps: float = 1e-5,
        tie_embeddings: bool = True,
    ) -> None:
        d_ff = resolve_d_ff(d_model, d_ff)
        check_architecture(
            vocab_size,
            context_length,
            d_model,
            n_layers,
            n_heads,
            d_ff,
            dropout,
            rope_theta,
            norm_eps,
        )
        super().__init__(
            vocab_size,
            context_length=context_length,
            d_model=d_model,
            n_layers=n_layers,
            n_heads=n_heads,
            d_ff=d_ff,
            dropout=float(dropout),
            rope_theta=float(rope_theta),
            norm_eps=float(norm_eps),
            tie_embeddings=bool(tie_embeddings),
        )
        self.n_heads = n_heads
        self.dropout = float(dropout)
        self.norm_eps = float(norm_eps)
        self.tie_embeddings = bool(tie_embeddings)
        self.embed = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList(
            self._build_block(d_model, n_heads, d_ff, float(norm_eps), float(dropout))
            for _ in range(n_layers)
        )
        self.norm = nn.RMSNorm(d_model, eps=norm_eps)
        self.lm_head = None if tie_embeddings else nn.Linear(d_model, vocab_size, bias=False)
        cos, sin = rope_cache(torch.arange(context_length), d_model // n_heads, rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        init_weights(self, n_layers)

    def _build_block(
        self, d_model: int, n_heads: int, d_ff: int, norm_eps: float, dropout: float
    ) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def from_config(cls: type[_M], cfg: ModelConfig, vocab_size: int | None = None) -> _M:
        """Build from a :class:`TransformerConfig` (``vocab_size`` overrides the config's)."""
        return cls(**config_kwargs(cfg, vocab_size))

    @property
    def output_weight(self) -> torch.Tensor:
        """The output projection ``[V, D]`` (the embedding table when tied)."""
        return self.embed.weight if self.lm_head is None else self.lm_head.weight


class CustomTransformer(LlamaBase):
    """Llama-style decoder-only language model with hand-written backpropagation.

    Arguments and errors as :class:`LlamaBase`. Which implementation of the operations runs is
    the ``kernels`` attribute (:data:`KERNEL_CHOICES`, default ``auto``; see
    :func:`select_kernels`), set from the config by :meth:`from_config`; it is a run-time choice,
    not part of the checkpoint.
    """

    _kernels: str = "auto"

    @property
    def kernels(self) -> str:
        """``auto``, ``torch`` or ``triton`` (see :func:`select_kernels`)."""
        return self._kernels

    @kernels.setter
    def kernels(self, choice: str) -> None:
        check_kernels_choice(choice)
        self._kernels = choice

    @classmethod
    def from_config(cls, cfg: ModelConfig, vocab_size: int | None = None) -> CustomTransformer:
        """Build from a :class:`TransformerConfig` (``vocab_size`` overrides the config's); the
        config's ``kernels`` chooses the implementation."""
        model = cls(**config_kwargs(cfg, vocab_size))
        model.kernels = getattr(cfg, "kernels", "auto")
        return model

    def _announce(self, description: str) -> None:
        """Print once per model and path which kernels run (rank 0 only, training only)."""
        announced = self.__dict__.setdefault("_announced", set())
        if description in announced or not torch.is_grad_enabled():
            return
        announced.add(description)
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
            return
        print(f"custom_transformer kernels: {description}", flush=True)

    def _build_block(
        self, d_model: int, n_heads: int, d_ff: int, norm_eps: float, dropout: float
    ) -> nn.Module:
        return _BlockWeights(d_model, d_ff, norm_eps)

    def forward(
        self, input_ids: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Logits ``[B, T, V]`` and, with (already shifted) ``labels``, the mean loss.

        Args:
            input_ids: ``[B, T]`` int64 with ``T <= context_length``.
            labels: ``[B, T]`` targets (``-100`` ignored) or None.

        Returns:
            ``{"logits"}`` plus ``"loss"`` when labels are given.
        """
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [B, T], got shape {tuple(input_ids.shape)}")
        b, t = input_ids.shape
        limit = self.context_length or t
        if t > limit:
            raise ValueError(f"sequence length {t} exceeds context_length {limit}")
        if labels is not None and labels.shape != input_ids.shape:
            raise ValueError(
                f"labels shape {tuple(labels.shape)} != input_ids shape {tuple(input_ids.shape)}"
            )
        device = input_ids.device
        cdt = _compute_dtype(device.type, self.embed.weight.dtype)
        kernels, description = select_kernels(self._kernels, device, self.embed.weight.dtype, cdt)
        self._announce(description)
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        x = EmbeddingFunction.apply(input_ids, self.embed.weight)
        p = self.dropout if self.training else 0.0
        for layer in self.layers:
            assert isinstance(layer, _BlockWeights)
            masks: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
            if p > 0:
                masks = (
                    make_dropout_mask(x.shape, p, device),
                    make_dropout_mask(x.shape, p, device),
                )
            x = TransformerBlockFunction.apply(
                x, *layer.tensors(), cos, sin, *masks, self.n_heads, self.norm_eps, p, cdt, kernels
            )
        logits, loss = LMHeadFunction.apply(
            x, self.norm.weight, self.output_weight, labels, self.norm_eps, cdt, kernels
        )
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = loss
        return out
