"""A minimal language model built only from this framework: the pattern every model follows.

``TinyTransformerLM`` is token + position embeddings, a stack of PyTorch's
``nn.TransformerEncoderLayer`` under a causal mask, a final norm and an output head tied to the
token embedding. It exists to show the contract of ``BaseLanguageModel`` in a few lines and to
exercise the shared training loop in tests; real projects live under ``projects/``.
"""

from __future__ import annotations

import torch
from torch import nn

from common.models.base import BaseLanguageModel


class TinyTransformerLM(BaseLanguageModel):
    """A small causal transformer language model.

    Args:
        vocab_size: tokens in the vocabulary.
        context_length: longest input sequence.
        d_model: width of the residual stream.
        n_layers: transformer blocks.
        n_heads: attention heads per block.
        d_ff: feed-forward width (default ``4 * d_model``).
        dropout: dropout probability inside the blocks.
    """

    def __init__(
        self,
        vocab_size: int,
        context_length: int = 64,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        d_ff: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            vocab_size,
            context_length=context_length,
            d_model=d_model,
            n_layers=n_layers,
            n_heads=n_heads,
            d_ff=d_ff,
            dropout=dropout,
        )
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(context_length, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, d_ff or 4 * d_model, dropout, batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.token_embedding.weight
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding.weight, std=0.02)

    def forward(
        self, input_ids: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Logits ``[B, T, V]`` and, with (already shifted) ``labels``, the mean loss."""
        t = input_ids.size(1)
        positions = torch.arange(t, device=input_ids.device)
        h = self.token_embedding(input_ids) + self.position_embedding(positions)
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=input_ids.device)
        h = self.blocks(h, mask=mask, is_causal=True)
        logits = self.head(self.norm(h))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = self.loss_from_logits(logits, labels)
        return out
