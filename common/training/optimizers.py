"""AdamW with weight decay on weight matrices only.

Decay pulls weights towards zero; that regularizes the matrices of linear layers but only hurts
gains of normalization layers, biases and (by common practice) embeddings. ``create_optimizer``
puts every trainable parameter in exactly one of two groups:

- ``decay``: parameters with ``ndim >= 2`` that are not embeddings (or are, when
  ``cfg.decay_embeddings``);
- ``no_decay``: everything else (norm gains, biases, scalars, embeddings).

Embeddings are the weights of ``nn.Embedding`` modules (an output head tied to one is the same
parameter, so it follows it), parameters whose name contains ``embed`` (models that hold a raw
``nn.Parameter`` table), and whatever a model lists in an optional ``embedding_parameters()``
method. Shared parameters are counted once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from common.utils.config import ConfigError, TrainingConfig


def _named_unique_parameters(model: nn.Module) -> Iterator[tuple[str, nn.Parameter]]:
    seen: set[int] = set()
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen or not param.requires_grad:
            continue
        seen.add(id(param))
        yield name, param


def embedding_parameter_ids(model: nn.Module) -> set[int]:
    """``id()`` of every parameter of ``model`` counted as an embedding table.

    Args:
        model: any module.

    Returns:
        The ids of ``nn.Embedding`` weights, parameters named ``*embed*``, and the parameters
        returned by ``model.embedding_parameters()`` when the model defines it.
    """
    ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    for name, param in model.named_parameters(remove_duplicate=False):
        if "embed" in name.lower():
            ids.add(id(param))
    extra = getattr(model, "embedding_parameters", None)
    if callable(extra):
        ids.update(id(p) for p in extra())
    return ids


def parameter_groups(
    model: nn.Module, weight_decay: float, decay_embeddings: bool = False
) -> list[dict[str, Any]]:
    """Split ``model``'s trainable parameters into a decayed and a non-decayed group.

    Args:
        model: the model to optimize.
        weight_decay: the decay of the ``decay`` group.
        decay_embeddings: also decay embedding tables.

    Returns:
        Two optimizer param-group dicts (``name`` ``"decay"`` and ``"no_decay"``), each with
        ``params`` as ``(name, parameter)`` pairs (the optimizer records the names) and
        ``weight_decay``.
    """
    embeddings = set() if decay_embeddings else embedding_parameter_ids(model)
    decay: list[tuple[str, nn.Parameter]] = []
    no_decay: list[tuple[str, nn.Parameter]] = []
    for name, param in _named_unique_parameters(model):
        if param.ndim >= 2 and id(param) not in embeddings:
            decay.append((name, param))
        else:
            no_decay.append((name, param))
    return [
        {"name": "decay", "params": decay, "weight_decay": weight_decay},
        {"name": "no_decay", "params": no_decay, "weight_decay": 0.0},
    ]


def create_optimizer(model: nn.Module, cfg: TrainingConfig) -> torch.optim.AdamW:
    """AdamW over ``model``'s trainable parameters with decay on matrices only.

    The fused CUDA kernel is used when every parameter lives on a CUDA device; elsewhere PyTorch's
    default implementation.

    Args:
        model: the model (pass the bare model, not a DDP wrapper; the parameters are the same).
        cfg: ``lr``, ``betas``, ``eps``, ``weight_decay`` and ``decay_embeddings`` are read.

    Returns:
        The optimizer, with two param groups (see ``parameter_groups``).

    Raises:
        ConfigError: malformed ``betas`` or a model without trainable parameters.
    """
    if len(cfg.betas) != 2:
        raise ConfigError(f"training.betas: expected two numbers, got {cfg.betas!r}")
    groups = parameter_groups(model, cfg.weight_decay, cfg.decay_embeddings)
    params = [p for g in groups for _, p in g["params"]]
    if not params:
        raise ConfigError("the model has no trainable parameters")
    # A model without biases or norms has an empty no_decay group; leave it out.
    groups = [g for g in groups if g["params"]]
    kwargs: dict[str, Any] = {}
    if all(p.is_cuda for p in params):
        kwargs["fused"] = True
    return torch.optim.AdamW(
        groups,
        lr=cfg.lr,
        betas=(float(cfg.betas[0]), float(cfg.betas[1])),
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
        **kwargs,
    )
