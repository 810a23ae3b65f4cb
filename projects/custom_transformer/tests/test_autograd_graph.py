"""The loss's autograd graph holds only the project's Functions and the parameters' accumulators.

Walking ``loss.grad_fn`` through ``next_functions`` must meet nothing but
``EmbeddingFunction``/``TransformerBlockFunction``/``LMHeadFunction`` backward nodes and
``AccumulateGrad`` (one per parameter, every parameter reached): PyTorch's automatic
derivatives compute nothing inside the model.
"""

from __future__ import annotations

import pytest
import torch

from projects.custom_transformer.model import (
    CustomTransformer,
    EmbeddingFunction,
    LMHeadFunction,
    TransformerBlockFunction,
)
from projects.custom_transformer.reference import ReferenceTransformer
from projects.custom_transformer.tests.helpers import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

OURS = {EmbeddingFunction, TransformerBlockFunction, LMHeadFunction}


def walk(root: torch.autograd.graph.Node) -> tuple[list[str], set[int], dict[str, int]]:
    """``(foreign node names, ids of accumulated tensors, count of our nodes by Function)``."""
    foreign: list[str] = []
    accumulated: set[int] = set()
    counts: dict[str, int] = {}
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        forward_cls = getattr(node, "_forward_cls", None)
        if type(node).__name__ == "AccumulateGrad":
            accumulated.add(id(node.variable))
        elif forward_cls in OURS:
            counts[forward_cls.__name__] = counts.get(forward_cls.__name__, 0) + 1
        else:
            foreign.append(type(node).__name__)
        stack.extend(fn for fn, _ in node.next_functions)
    return foreign, accumulated, counts


@pytest.mark.parametrize("tied,dropout", [(True, 0.0), (False, 0.0), (True, 0.1)])
def test_loss_graph_is_pure(tied: bool, dropout: float) -> None:
    torch.manual_seed(0)
    model = CustomTransformer(
        vocab_size=50, context_length=16, d_model=16, n_layers=3, n_heads=2,
        tie_embeddings=tied, dropout=dropout,
    )  # fmt: skip
    model.train()
    ids = torch.randint(0, 50, (2, 16))
    out = model(ids, ids.roll(-1, dims=1))
    foreign, accumulated, counts = walk(out["loss"].grad_fn)
    assert foreign == []
    assert counts == {"EmbeddingFunction": 1, "TransformerBlockFunction": 3, "LMHeadFunction": 1}
    assert accumulated == {id(p) for p in model.parameters()}
    # the logits hang off the same head node: using them adds nothing foreign either
    assert walk(out["logits"].grad_fn)[0] == []
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())


def test_bf16_autocast_graph_is_pure() -> None:
    model = CustomTransformer(vocab_size=50, context_length=16, d_model=16, n_layers=2, n_heads=2)
    ids = torch.randint(0, 50, (2, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(ids, ids)["loss"]
    assert walk(loss.grad_fn)[0] == []


def test_walker_detects_autograd_ops() -> None:
    """Sanity check of the walker itself: the plain-autograd twin is full of foreign nodes."""
    twin = ReferenceTransformer(vocab_size=50, context_length=16, d_model=16, n_layers=1, n_heads=2)
    ids = torch.randint(0, 50, (2, 16))
    foreign, _, counts = walk(twin(ids, ids)["loss"].grad_fn)
    assert counts == {} and "MmBackward0" in foreign
