"""``BaseLanguageModel``: config, loss convention, parameter counts and generation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from common.models import BaseLanguageModel


class TinyLM(BaseLanguageModel):
    """Embedding -> linear -> head (tied to the embedding unless ``tie=False``)."""

    def __init__(
        self, vocab_size: int = 11, d_model: int = 8, context_length: int = 6, tie: bool = True
    ) -> None:
        super().__init__(vocab_size, d_model=d_model, context_length=context_length, tie=tie)
        self.emb = nn.Embedding(vocab_size, d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        if tie:
            self.head.weight = self.emb.weight
        self.seen_lengths: list[int] = []

    def forward(
        self, input_ids: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        assert self.context_length is not None
        assert input_ids.size(1) <= self.context_length, "context not cropped"
        self.seen_lengths.append(input_ids.size(1))
        # Position-mixing (cumulative mean) so the prediction depends on the whole context.
        h = torch.tanh(self.proj(self.emb(input_ids)))
        h = h.cumsum(1) / torch.arange(1, h.size(1) + 1).view(1, -1, 1)
        logits = self.head(h)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = self.loss_from_logits(logits, labels)
        return out


class SuccessorLM(BaseLanguageModel):
    """Deterministic: the next token after ``t`` is ``(t + 1) % vocab_size``."""

    def __init__(self, vocab_size: int = 10, context_length: int | None = None) -> None:
        super().__init__(vocab_size, context_length=context_length)
        self.dummy = nn.Parameter(torch.zeros(1))
        self.last_inputs: list[torch.Tensor] = []

    def forward(
        self, input_ids: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        self.last_inputs.append(input_ids.clone())
        target = (input_ids + 1) % self.vocab_size
        logits = torch.nn.functional.one_hot(target, self.vocab_size).float() * 10 + self.dummy
        return {"logits": logits}


class FixedLM(BaseLanguageModel):
    """Same next-token distribution everywhere: ``softmax(log(probs))``."""

    def __init__(self, probs: list[float]) -> None:
        super().__init__(len(probs), probs=probs)
        self.logits = nn.Parameter(torch.tensor(probs).log())

    def forward(
        self, input_ids: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        return {"logits": self.logits.expand(*input_ids.shape, -1)}


def test_config_is_recorded_and_json_checked() -> None:
    model = TinyLM(vocab_size=11, d_model=8, context_length=6)
    assert model.config == {"vocab_size": 11, "d_model": 8, "context_length": 6, "tie": True}
    assert model.context_length == 6 and model.vocab_size == 11
    assert type(model)(**model.config).config == model.config
    assert SuccessorLM().context_length is None
    assert FixedLM([0.5, 0.5]).config == {"vocab_size": 2, "probs": [0.5, 0.5]}

    class Bad(BaseLanguageModel):
        def __init__(self, vocab_size: int, device: object) -> None:
            super().__init__(vocab_size, device=device)

    with pytest.raises(TypeError, match=r"JSON-serializable.*\['device'\]"):
        Bad(5, torch.device("cpu"))
    with pytest.raises(TypeError, match="vocab_size"):
        TinyLM(vocab_size=0)


def test_forward_must_be_implemented() -> None:
    with pytest.raises(NotImplementedError, match="forward"):
        BaseLanguageModel(3)(torch.zeros(1, 1, dtype=torch.long))


def test_loss_uses_shifted_labels_and_ignores_minus_100() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.randint(0, 7, (2, 5))
    labels[0, :3] = -100
    loss = BaseLanguageModel.loss_from_logits(logits, labels)
    keep = labels != -100
    manual = -torch.log_softmax(logits, -1)[keep].gather(-1, labels[keep].unsqueeze(-1)).mean()
    torch.testing.assert_close(loss, manual)
    # No internal shift: position t is scored against labels[:, t].
    half = BaseLanguageModel.loss_from_logits(logits.bfloat16(), labels)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, manual, atol=0.05, rtol=0.02)


def test_num_parameters_counts_tied_weights_once() -> None:
    tied, untied = TinyLM(tie=True), TinyLM(tie=False)
    emb, proj = 11 * 8, 8 * 8 + 8
    assert tied.num_parameters() == emb + proj
    assert untied.num_parameters() == 2 * emb + proj
    assert sum(p.numel() for p in tied.state_dict().values()) == 2 * emb + proj
    # Excluding embeddings drops the embedding and the head tied to it, but not an untied head.
    assert tied.num_parameters(exclude_embeddings=True) == proj
    assert untied.num_parameters(exclude_embeddings=True) == proj + emb


def test_generate_crops_context_to_context_length() -> None:
    torch.manual_seed(0)
    model = TinyLM(context_length=6)
    prompt = torch.randint(0, 11, (2, 4))
    out = model.generate(prompt, max_new_tokens=10, do_sample=False)
    assert out.shape == (2, 14)
    assert torch.equal(out[:, :4], prompt)
    assert max(model.seen_lengths) == 6 and model.seen_lengths[:3] == [4, 5, 6]

    successor = SuccessorLM(context_length=3)
    successor.generate(torch.tensor([[1, 2, 3, 4, 5]]), max_new_tokens=2, do_sample=False)
    assert [x.tolist() for x in successor.last_inputs] == [[[3, 4, 5]], [[4, 5, 6]]]
    # A prompt longer than the context is cropped too (the last tokens are kept).
    long_prompt = torch.randint(0, 11, (1, 20))
    assert model.generate(long_prompt, max_new_tokens=1).shape == (1, 21)


def test_generate_stops_rows_at_eos_and_pads_finished_rows() -> None:
    model = SuccessorLM(vocab_size=10)
    out = model.generate(
        torch.tensor([[0], [2]]), max_new_tokens=8, eos_token_id=3, do_sample=False
    )
    # Row 0: 1, 2, 3 (eos). Row 1 hit eos at once and is padded; all finished after 3 steps.
    assert out.tolist() == [[0, 1, 2, 3], [2, 3, 3, 3]]
    assert len(model.last_inputs) == 3
    no_eos = model.generate(torch.tensor([[0]]), max_new_tokens=5, do_sample=False)
    assert no_eos.tolist() == [[0, 1, 2, 3, 4, 5]]
    assert model.generate(torch.tensor([5, 6]), max_new_tokens=2).tolist() == [5, 6, 7, 8]
    assert model.generate(torch.tensor([[5]]), max_new_tokens=0).tolist() == [[5]]


def test_greedy_is_deterministic_and_matches_top_k_1_and_zero_temperature() -> None:
    torch.manual_seed(0)
    model = TinyLM(context_length=8)
    prompt = torch.randint(0, 11, (3, 2))
    greedy = model.generate(prompt, max_new_tokens=8, do_sample=False)
    assert torch.equal(greedy, model.generate(prompt, max_new_tokens=8, do_sample=False))
    assert torch.equal(greedy, model.generate(prompt, max_new_tokens=8, temperature=0.0))
    for seed in range(3):
        torch.manual_seed(seed)
        assert torch.equal(greedy, model.generate(prompt, max_new_tokens=8, top_k=1))
        assert torch.equal(greedy, model.generate(prompt, max_new_tokens=8, top_p=1e-6))


def test_sampling_respects_top_k_top_p_and_generator() -> None:
    model = FixedLM([0.5, 0.3, 0.15, 0.05])
    prompt = torch.zeros(64, 1, dtype=torch.long)

    def sample(**kwargs: object) -> set[int]:
        gen = torch.Generator().manual_seed(0)
        out = model.generate(prompt, max_new_tokens=8, generator=gen, **kwargs)  # type: ignore[arg-type]
        return set(out[:, 1:].flatten().tolist())

    assert sample() == {0, 1, 2, 3}
    assert sample(top_k=2) == {0, 1}
    assert sample(top_p=0.45) == {0}  # the top token alone reaches the mass
    assert sample(top_p=0.7) == {0, 1}
    assert sample(top_p=0.85) == {0, 1, 2}
    assert sample(top_k=3, top_p=0.99) == {0, 1, 2}
    gen_a, gen_b = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a = model.generate(prompt, max_new_tokens=4, generator=gen_a, temperature=2.0)
    b = model.generate(prompt, max_new_tokens=4, generator=gen_b, temperature=2.0)
    assert torch.equal(a, b)


def test_generate_restores_mode_and_records_no_gradients() -> None:
    model = TinyLM()
    model.train()
    out = model.generate(torch.zeros(1, 1, dtype=torch.long), max_new_tokens=3)
    assert model.training and not out.requires_grad
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    model.generate(torch.zeros(1, 1, dtype=torch.long), max_new_tokens=3)
    assert not model.training


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_new_tokens": -1}, "max_new_tokens"),
        ({"max_new_tokens": 1, "temperature": -1.0}, "temperature"),
        ({"max_new_tokens": 1, "top_k": 0}, "top_k"),
        ({"max_new_tokens": 1, "top_p": 0.0}, "top_p"),
        ({"max_new_tokens": 1, "top_p": 1.5}, "top_p"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TinyLM().generate(torch.zeros(1, 1, dtype=torch.long), **kwargs)
    with pytest.raises(ValueError, match="input_ids"):
        TinyLM().generate(torch.zeros(1, 0, dtype=torch.long), max_new_tokens=1)
