"""The hand-written model against its autograd twin, plus the BaseLanguageModel contract.

Tolerances (float32, vocab 61, d_model 32, 2 layers, 4 heads, T=80 so that attention runs over
several query blocks): logits within ``atol=2e-5``, loss within ``1e-5``; every parameter's
gradient within ``5e-5 * max|grad|`` of that parameter (observed: logits 2e-7, loss 1e-6,
gradients 6e-7 relative; only the order of float32 operations differs). In float64 logits,
loss and gradients agree to ``1e-10`` relative. Ten AdamW steps (lr 3e-3, grad clipping) give
losses within ``1e-5``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import projects.custom_transformer.model as model_module
import projects.custom_transformer.ops as ops
from common.models.base import load_model_from_checkpoint
from common.utils.config import load_config
from projects.custom_transformer.model import CustomTransformer, TransformerConfig, resolve_d_ff
from projects.custom_transformer.reference import ReferenceTransformer
from projects.custom_transformer.tests.helpers import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

VOCAB, CTX = 61, 96
KW: dict[str, Any] = dict(
    vocab_size=VOCAB, context_length=CTX, d_model=32, n_layers=2, n_heads=4, rope_theta=1000.0
)


def _pair(**overrides: Any) -> tuple[CustomTransformer, ReferenceTransformer]:
    torch.manual_seed(0)
    model = CustomTransformer(**{**KW, **overrides})
    with torch.no_grad():  # non-trivial norm gains, so that their gradients are checked too
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.add_(0.1 * torch.randn_like(param))
    twin = ReferenceTransformer(**{**KW, **overrides})
    twin.load_state_dict(model.state_dict())
    return model, twin


def _batch(b: int = 3, t: int = 80, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (b, t), generator=g)
    labels = torch.randint(0, VOCAB, (b, t), generator=g)
    labels[0, :7] = -100
    labels[-1, -3:] = -100
    return ids, labels


def _compare_grads(model: torch.nn.Module, twin: torch.nn.Module, rel: float) -> None:
    twin_params = dict(twin.named_parameters())
    names = [n for n, _ in model.named_parameters()]
    assert names == list(twin_params)
    for name, param in model.named_parameters():
        ref = twin_params[name].grad
        assert param.grad is not None and ref is not None, name
        err = (param.grad - ref).abs().max().item()
        assert err <= rel * ref.abs().max().item(), f"{name}: max error {err}"


@pytest.mark.parametrize("tied", [True, False])
def test_float32_matches_twin(tied: bool) -> None:
    model, twin = _pair(tie_embeddings=tied)
    ids, labels = _batch()
    out, ref = model(ids, labels), twin(ids, labels)
    assert out["logits"].shape == (3, 80, VOCAB)
    torch.testing.assert_close(out["logits"], ref["logits"], atol=2e-5, rtol=0)
    torch.testing.assert_close(out["loss"], ref["loss"], atol=1e-5, rtol=0)
    out["loss"].backward()
    ref["loss"].backward()
    _compare_grads(model, twin, rel=5e-5)


@pytest.mark.parametrize("tied,chunked", [(True, False), (False, True)])
def test_float64_matches_twin(tied: bool, chunked: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if chunked:  # one sequence per block chunk, 3-head attention tiles, 16-row head blocks
        monkeypatch.setitem(model_module.BLOCK_CHUNK_ROWS, "cpu", 40)
        monkeypatch.setitem(ops.ATTENTION_CHUNK_BYTES, "cpu", 3 * 16 * 40 * 4)
        monkeypatch.setitem(ops.ATTENTION_QUERY_ROWS, "cpu", 16)
        monkeypatch.setitem(ops.CHUNK_BYTES, "cpu", 7 * VOCAB * 8)
    model, twin = _pair(tie_embeddings=tied)
    model.double()
    twin.double()
    ids, labels = _batch(t=40)
    out, ref = model(ids, labels), twin(ids, labels)
    torch.testing.assert_close(out["logits"], ref["logits"], atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(out["loss"], ref["loss"], atol=1e-12, rtol=1e-12)
    (out["loss"] * 3 + out["logits"].square().mean()).backward()  # a loss using the logits too
    (ref["loss"] * 3 + ref["logits"].square().mean()).backward()
    _compare_grads(model, twin, rel=1e-10)


def test_dropout_matches_twin_under_same_seed() -> None:
    model, twin = _pair(dropout=0.2)
    model.train()
    twin.train()
    ids, labels = _batch(t=40)
    torch.manual_seed(7)
    out = model(ids, labels)
    torch.manual_seed(7)
    ref = twin(ids, labels)
    torch.testing.assert_close(out["loss"], ref["loss"], atol=1e-5, rtol=0)
    out["loss"].backward()
    ref["loss"].backward()
    _compare_grads(model, twin, rel=5e-5)
    torch.manual_seed(8)  # a different draw drops different units
    assert not torch.allclose(model(ids, labels)["loss"], out["loss"])
    model.eval()  # no dropout in eval mode: deterministic
    assert torch.equal(model(ids)["logits"], model(ids)["logits"])


def test_ten_adamw_steps_match() -> None:
    model, twin = _pair(tie_embeddings=False)
    losses = []
    for net in (model, twin):
        opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=0.1)
        trace = []
        for step in range(10):
            ids, _ = _batch(b=2, t=48, seed=step)
            labels = (ids * 5 + 1) % VOCAB  # learnable: the target is a function of the token
            loss = net(ids, labels)["loss"]
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            trace.append(loss.item())
        losses.append(trace)
    assert losses[0][-1] < losses[0][0]  # it learns
    assert losses[0] == pytest.approx(losses[1], abs=1e-5)


def test_bf16_autocast_runs_close_to_float32() -> None:
    model, twin = _pair()
    ids, labels = _batch(t=40)
    full = model(ids, labels)["loss"].item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids, labels)
        ref = twin(ids, labels)
    assert out["logits"].dtype == torch.bfloat16
    assert out["loss"].dtype == torch.float32
    assert abs(out["loss"].item() - full) < 0.05
    assert abs(out["loss"].item() - ref["loss"].item()) < 0.05
    out["loss"].backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.dtype == torch.float32, name
        assert torch.isfinite(param.grad).all(), name


def test_state_dicts_load_both_ways_and_generate() -> None:
    model, _ = _pair()
    twin = ReferenceTransformer(**KW)
    twin.load_state_dict(model.state_dict())
    back = CustomTransformer(**KW)
    back.load_state_dict(twin.state_dict())
    prompt = torch.randint(0, VOCAB, (2, 5))
    greedy = model.generate(prompt, max_new_tokens=6, do_sample=False)
    assert greedy.shape == (2, 11) and torch.equal(greedy[:, :5], prompt)
    assert torch.equal(greedy, twin.generate(prompt, max_new_tokens=6, do_sample=False))
    assert torch.equal(greedy, back.generate(prompt, max_new_tokens=6, do_sample=False))
    long = model.generate(prompt, max_new_tokens=CTX + 4, do_sample=True, top_k=5)
    assert long.shape == (2, CTX + 9)  # the context is cropped to context_length


def test_checkpoint_round_trip(tmp_path: Any) -> None:
    model, _ = _pair(tie_embeddings=True, dropout=0.1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids, labels = _batch(t=20)
    model(ids, labels)["loss"].backward()
    opt.step()
    path = model.save_checkpoint(tmp_path / "ckpt", optimizer=opt, step=1)
    loaded = load_model_from_checkpoint(path)
    assert type(loaded) is CustomTransformer and loaded.config == model.config
    assert loaded.config["d_ff"] == resolve_d_ff(32, None) == 128
    model.eval()
    assert torch.equal(loaded(ids)["logits"], model(ids)["logits"])
    assert loaded.num_parameters() == model.num_parameters()


def test_from_config_and_validation(tmp_path: Any) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("model:\n  d_model: 48\n  n_heads: 3\n  tie_embeddings: false\n")
    cfg = load_config(cfg_file, model_cls=TransformerConfig)
    model = CustomTransformer.from_config(cfg.model, vocab_size=50)
    assert model.config["d_ff"] == 128 and model.lm_head is not None
    assert resolve_d_ff(256, None) == 704 and resolve_d_ff(768, None) == 2048
    with pytest.raises(ValueError, match="vocab_size"):
        CustomTransformer.from_config(cfg.model)
    with pytest.raises(ValueError, match="divisible"):
        CustomTransformer(vocab_size=10, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="even"):
        CustomTransformer(vocab_size=10, d_model=12, n_heads=4)
    with pytest.raises(ValueError, match="dropout"):
        CustomTransformer(vocab_size=10, d_model=16, n_heads=2, dropout=1.0)
    small = CustomTransformer(vocab_size=10, context_length=8, d_model=16, n_heads=2)
    with pytest.raises(ValueError, match="context_length"):
        small(torch.zeros(1, 9, dtype=torch.long))
