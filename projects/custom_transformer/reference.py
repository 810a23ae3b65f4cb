"""``ReferenceTransformer``: the autograd twin of :class:`~projects.custom_transformer.model.
CustomTransformer`.

The same architecture written the way one normally writes PyTorch (``nn.RMSNorm``,
``F.scaled_dot_product_attention``, ``F.silu``, ``F.cross_entropy``), with autograd computing
every derivative. It has the same constructor, parameter names and initialisation, so state
dicts load both ways; the tests compare the two and the benchmark measures the hand-written
backward against it (and against it under ``torch.compile``).

Dropout draws its keep-masks with the same helper and in the same order as the hand-written
model (attention branch, then feed-forward branch, per block), so under the same seed both drop
the same elements.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from projects.custom_transformer.model import LlamaBase
from projects.custom_transformer.ops import make_dropout_mask

__all__ = ["ReferenceTransformer"]


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """``cat(-x2, x1)`` over the halves of the last dimension (Hugging Face convention)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if not training or p == 0.0:
        return x
    return x * make_dropout_mask(x.shape, p, x.device) / (1.0 - p)


class Attention(nn.Module):
    """Causal multi-head self-attention with RoPE (fused q/k/v projection)."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.wqkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.wo = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.wqkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).unbind(2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, T, hd]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.wo(y.transpose(1, 2).reshape(b, t, d))


class FeedForward(nn.Module):
    """SwiGLU: ``w_down(silu(gate) * up)`` with ``[gate; up] = w_gate_up(x)``."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.w_gate_up = nn.Linear(d_model, 2 * d_ff, bias=False)
        self.w_down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w_gate_up(x).chunk(2, dim=-1)
        return self.w_down(F.silu(gate) * up)


class Block(nn.Module):
    """Pre-norm residual block: attention then feed-forward."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, norm_eps: float, dropout: float):
        super().__init__()
        self.dropout = dropout
        self.attn_norm = nn.RMSNorm(d_model, eps=norm_eps)
        self.attn = Attention(d_model, n_heads)
        self.ffn_norm = nn.RMSNorm(d_model, eps=norm_eps)
        self.ffn = FeedForward(d_model, d_ff)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + _dropout(self.attn(self.attn_norm(x), cos, sin), self.dropout, self.training)
        return x + _dropout(self.ffn(self.ffn_norm(x)), self.dropout, self.training)


class ReferenceTransformer(LlamaBase):
    """Plain-autograd twin of ``CustomTransformer``; same arguments (see ``LlamaBase``)."""

    def _build_block(
        self, d_model: int, n_heads: int, d_ff: int, norm_eps: float, dropout: float
    ) -> nn.Module:
        return Block(d_model, n_heads, d_ff, norm_eps, dropout)

    def forward(
        self, input_ids: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, Any]:
        """Logits ``[B, T, V]`` and, with (already shifted) ``labels``, the mean loss."""
        t = input_ids.size(1)
        if self.context_length is not None and t > self.context_length:
            raise ValueError(f"sequence length {t} exceeds context_length {self.context_length}")
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        x = self.embed(input_ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        x = self.norm(x)
        logits = F.linear(x, self.output_weight)
        out: dict[str, Any] = {"logits": logits}
        if labels is not None:
            out["loss"] = self.loss_from_logits(logits, labels)  # F.cross_entropy, -100 ignored
        return out
