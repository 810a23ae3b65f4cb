"""AdamW parameter groups: decay on weight matrices only, embeddings by configuration."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from common.models.examples import TinyTransformerLM
from common.training.optimizers import create_optimizer
from common.utils.config import ConfigError, TrainingConfig


def _groups(optimizer: torch.optim.Optimizer) -> dict[str, dict]:
    return {g["name"]: g for g in optimizer.param_groups}


def test_decay_only_on_matrices_and_tied_embedding_counted_once() -> None:
    model = TinyTransformerLM(50, context_length=8, d_model=16, n_layers=1, n_heads=2)
    opt = create_optimizer(model, TrainingConfig(weight_decay=0.1, lr=1e-3))
    groups = _groups(opt)
    assert groups["decay"]["weight_decay"] == 0.1
    assert groups["no_decay"]["weight_decay"] == 0.0
    decay_names = set(groups["decay"]["param_names"])
    no_decay_names = set(groups["no_decay"]["param_names"])
    # The tied head shares the token embedding: it appears once, undecayed.
    assert "token_embedding.weight" in no_decay_names
    assert "head.weight" not in decay_names | no_decay_names
    assert "position_embedding.weight" in no_decay_names
    assert all(model.get_parameter(n).ndim >= 2 for n in decay_names)
    assert any("bias" in n for n in no_decay_names) and any("norm" in n for n in no_decay_names)
    assert not any("bias" in n or "norm" in n for n in decay_names)
    # Every parameter is optimized exactly once.
    optimized = [p for g in opt.param_groups for p in g["params"]]
    assert len(optimized) == len({id(p) for p in optimized}) == len(list(model.parameters()))


def test_decay_embeddings_option_and_raw_embedding_parameters() -> None:
    class RawEmbeddingLM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok_embed = nn.Parameter(torch.randn(10, 4))  # a table without nn.Embedding
            self.proj = nn.Linear(4, 4)
            self.table = nn.Parameter(torch.randn(3, 4))

        def embedding_parameters(self) -> list[nn.Parameter]:
            return [self.table]

    model = RawEmbeddingLM()
    plain = _groups(create_optimizer(model, TrainingConfig()))
    assert set(plain["decay"]["param_names"]) == {"proj.weight"}
    assert {"tok_embed", "table", "proj.bias"} == set(plain["no_decay"]["param_names"])
    decayed = _groups(create_optimizer(model, TrainingConfig(decay_embeddings=True)))
    assert set(decayed["decay"]["param_names"]) == {"proj.weight", "tok_embed", "table"}


def test_frozen_parameters_are_left_out_and_hyperparameters_applied() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2, bias=False))
    model[0].requires_grad_(False)
    opt = create_optimizer(model, TrainingConfig(lr=0.5, betas=[0.8, 0.9], eps=1e-6))
    assert [g["name"] for g in opt.param_groups] == ["decay"]  # the empty group is dropped
    assert opt.param_groups[0]["params"] == [model[1].weight]
    assert opt.param_groups[0]["betas"] == (0.8, 0.9) and opt.param_groups[0]["eps"] == 1e-6
    with pytest.raises(ConfigError, match="betas"):
        create_optimizer(model, TrainingConfig(betas=[0.9]))
    with pytest.raises(ConfigError, match="no trainable"):
        create_optimizer(model.requires_grad_(False), TrainingConfig())


def test_weight_decay_moves_matrices_but_not_norms() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))
    before = [p.detach().clone() for p in model.parameters()]
    opt = create_optimizer(model, TrainingConfig(lr=0.1, weight_decay=0.5))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # zero gradient: only decay can move a parameter
    opt.step()
    after = list(model.parameters())
    assert not torch.equal(after[0], before[0])  # linear weight decayed
    for b, a in zip(before[1:], after[1:]):  # bias, norm weight, norm bias untouched
        assert torch.equal(a, b)
