"""Small, fast building blocks for the training tests and the torchrun worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.data.token_dataset import RandomWindowLoader, SequentialLoader
from common.models.examples import TinyTransformerLM
from common.utils.config import Config, LoggingConfig, ModelConfig, TrainingConfig

VOCAB = 32
CONTEXT = 16


def markov_tokens(n: int, vocab: int = VOCAB, seed: int = 0, noise: float = 0.1) -> np.ndarray:
    """A learnable token stream: ``next = (7 * prev + 3) % vocab``, or random with prob. noise."""
    rng = np.random.default_rng(seed)
    out = np.empty(n, dtype=np.uint16)
    prev = 0
    for i in range(n):
        prev = int(rng.integers(vocab)) if rng.random() < noise else (7 * prev + 3) % vocab
        out[i] = prev
    return out


TRAIN_TOKENS = markov_tokens(20_000, seed=0)
VAL_TOKENS = markov_tokens(2_000, seed=1)


def tiny_config(**training: Any) -> Config:
    """A config for a run of a few dozen CPU steps (training fields overridable)."""
    base: dict[str, Any] = {
        "max_steps": 24,
        "batch_size": 4,
        "lr": 3e-3,
        "min_lr": 3e-4,
        "warmup_steps": 3,
        "eval_interval": 8,
        "eval_batches": 4,
        "checkpoint_interval": 8,
        "keep_checkpoints": 2,
        "device": "cpu",
        "seed": 7,
    }
    base.update(training)
    return Config(
        model=ModelConfig(vocab_size=VOCAB, context_length=CONTEXT, d_model=32, n_layers=1),
        training=TrainingConfig(**base),
        logging=LoggingConfig(progress_bar=False, log_interval=0),
    )


def tiny_model(dropout: float = 0.0, seed: int = 0) -> TinyTransformerLM:
    """A 1-layer ``TinyTransformerLM`` over ``VOCAB`` tokens, initialized from ``seed``."""
    torch.manual_seed(seed)
    return TinyTransformerLM(
        VOCAB, context_length=CONTEXT, d_model=32, n_layers=1, n_heads=2, dropout=dropout
    )


def loaders(
    config: Config, rank: int = 0, world_size: int = 1, eval_batch_size: int = 8
) -> tuple[RandomWindowLoader, SequentialLoader]:
    """Training and validation loaders over the Markov streams, sliced for ``rank``."""
    t = config.training
    train = RandomWindowLoader(TRAIN_TOKENS, t.batch_size, CONTEXT, t.seed, rank, world_size)
    val = SequentialLoader(
        VAL_TOKENS, eval_batch_size, CONTEXT, rank=rank, world_size=world_size, bytes_per_token=1.0
    )
    return train, val


def parameters_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Every parameter and buffer bitwise equal."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def checkpoint_names(path: Path) -> list[str]:
    """Names of the ``step_*`` folders under ``path``."""
    return sorted(p.name for p in path.glob("step_*"))
