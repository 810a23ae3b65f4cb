"""The unigram baseline: the validation loss of a model that ignores context entirely.

A language model should score far below it; ``evaluate.py`` prints the two side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from common.data.token_dataset import TokenFile, as_token_array


@dataclass
class _Counts:
    counts: np.ndarray
    total: int


def _bincount(tokens: Any, vocab_size: int, chunk: int = 1 << 24) -> _Counts:
    array = as_token_array(tokens)
    counts = np.zeros(vocab_size, dtype=np.int64)
    for start in range(0, len(array), chunk):
        counts += np.bincount(np.asarray(array[start : start + chunk]), minlength=vocab_size)[
            :vocab_size
        ]
    return _Counts(counts, int(len(array)))


def unigram_baseline(
    train_tokens: TokenFile | np.ndarray | Any,
    val_tokens: TokenFile | np.ndarray | Any,
    vocab_size: int,
    *,
    num_bytes: int | None = None,
) -> dict[str, float | None]:
    """Cross-entropy of a unigram model fit on the training tokens, on the validation tokens.

    Probabilities are token frequencies in ``train_tokens`` with add-one smoothing. This is the
    loss of a model that ignores context entirely; a language model should be far below it.

    Args:
        train_tokens: training ids (:class:`TokenFile`, array or tensor).
        val_tokens: validation ids.
        vocab_size: the vocabulary size.
        num_bytes: UTF-8 bytes of the validation text (taken from a :class:`TokenFile`).

    Returns:
        ``{"loss": nats per token, "perplexity", "bits_per_byte" (None if bytes unknown),
        "num_tokens": validation tokens}``.
    """
    train = _bincount(train_tokens, vocab_size)
    val = _bincount(val_tokens, vocab_size)
    log_p = np.log(train.counts + 1.0) - math.log(train.total + vocab_size)
    loss = float(-(val.counts * log_p).sum() / max(val.total, 1))
    if num_bytes is None and isinstance(val_tokens, TokenFile):
        num_bytes = val_tokens.num_bytes
    bpb = loss * val.total / math.log(2) / num_bytes if num_bytes else None
    return {
        "loss": loss,
        "perplexity": math.exp(loss),
        "bits_per_byte": bpb,
        "num_tokens": float(val.total),
    }
