"""``Evaluator``: token-weighted loss, bits per byte, mode handling, DDP, samples and helpers."""

from __future__ import annotations

import gc
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from common.models import BaseLanguageModel
from common.training import Evaluator, compute_perplexity

REPO_ROOT = Path(__file__).resolve().parent.parent
VOCAB = 13


class TinyLM(BaseLanguageModel):
    """Embedding -> linear -> tied head, with dropout; records the mode each forward ran in."""

    def __init__(self, vocab_size: int = VOCAB, d_model: int = 8, dropout: float = 0.5) -> None:
        super().__init__(vocab_size, d_model=d_model, dropout=dropout)
        self.emb = nn.Embedding(vocab_size, d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.emb.weight
        self.calls: list[tuple[bool, bool]] = []

    def forward(
        self, input_ids: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        self.calls.append((self.training, torch.is_grad_enabled()))
        logits = self.head(self.drop(torch.tanh(self.proj(self.emb(input_ids)))))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = self.loss_from_logits(logits, labels)
        return out


class ListLoader:
    """A re-iterable list of batches with optional byte counts, like ``SequentialLoader``."""

    def __init__(
        self,
        batches: list,
        batch_num_bytes: list[int] | None = None,
        num_bytes: int | None = None,
    ) -> None:
        self.batches = batches
        self.draws = 0
        if batch_num_bytes is not None:
            self.batch_num_bytes = batch_num_bytes
        if num_bytes is not None:
            self.num_bytes = num_bytes

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            self.draws += 1
            yield batch


def _model(seed: int = 0) -> TinyLM:
    torch.manual_seed(seed)
    return TinyLM()


def _batch(seed: int, batch: int, length: int, ignore_from: int | None = None):
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, VOCAB, (batch, length + 1), generator=gen)
    x, y = tokens[:, :-1].clone(), tokens[:, 1:].clone()
    if ignore_from is not None:
        y[:, ignore_from:] = -100
    return x, y


def _pooled_nats(model: nn.Module, batches: list) -> tuple[float, int]:
    """Reference: sum of per-token losses over all valid tokens, and their count."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for x, y in batches:
            logits = model(x)["logits"]
            total += F.cross_entropy(
                logits.reshape(-1, VOCAB), y.reshape(-1), ignore_index=-100, reduction="sum"
            ).item()
            count += int((y != -100).sum())
    return total, count


def test_loss_is_weighted_by_tokens_not_a_mean_of_batch_means() -> None:
    model = _model()
    small = _batch(1, batch=1, length=8, ignore_from=1)  # one valid token
    large = _batch(2, batch=4, length=16)  # 64 valid tokens
    batches = [small, large]
    metrics = Evaluator(model, device="cpu").evaluate(ListLoader(batches))

    total, count = _pooled_nats(model, batches)
    assert metrics["num_tokens"] == count == 65
    assert metrics["num_batches"] == 2
    assert metrics["loss"] == pytest.approx(total / count, rel=1e-6)
    with torch.no_grad():
        batch_means = [model(x, y)["loss"].item() for x, y in batches]
    assert abs(metrics["loss"] - sum(batch_means) / 2) > 1e-3
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["loss"]))
    assert isinstance(metrics["loss"], float) and isinstance(metrics["num_tokens"], int)


def test_ignored_labels_are_excluded() -> None:
    model = _model()
    x, y = _batch(3, batch=2, length=10)
    y_masked = y.clone()
    y_masked[0, 4:] = -100
    y_masked[1, :2] = -100
    metrics = Evaluator(model, device="cpu").evaluate([(x, y_masked)])
    assert metrics["num_tokens"] == 4 + 8
    total, count = _pooled_nats(model, [(x, y_masked)])
    assert metrics["loss"] == pytest.approx(total / count, rel=1e-6)
    # The model is position-wise, so dropping the ignored positions altogether gives the same.
    trimmed = [(x[:1, :4], y[:1, :4]), (x[1:, 2:], y[1:, 2:])]
    same = Evaluator(model, device="cpu").evaluate(trimmed)
    assert same["num_tokens"] == metrics["num_tokens"]
    assert same["loss"] == pytest.approx(metrics["loss"], rel=1e-6)


def test_dict_batches_are_accepted() -> None:
    model = _model()
    x, y = _batch(4, batch=2, length=5)
    evaluator = Evaluator(model, device="cpu")
    from_tuple = evaluator.evaluate([(x, y)])
    from_dict = evaluator.evaluate([{"input_ids": x, "labels": y}])
    assert from_tuple == from_dict
    with pytest.raises(ValueError, match="labels"):
        evaluator.evaluate([{"input_ids": x}])


def test_max_batches_limits_batches_drawn() -> None:
    model = _model()
    batches = [_batch(i, batch=2, length=4) for i in range(5)]
    loader = ListLoader(batches)
    metrics = Evaluator(model, device="cpu").evaluate(loader, max_batches=2)
    assert metrics["num_batches"] == 2 and metrics["num_tokens"] == 16
    assert loader.draws == 2  # no extra batch was pulled from the loader
    total, count = _pooled_nats(model, batches[:2])
    assert metrics["loss"] == pytest.approx(total / count, rel=1e-6)
    assert Evaluator(model, device="cpu").evaluate(loader, max_batches=50)["num_batches"] == 5
    with pytest.raises(ValueError, match="max_batches"):
        Evaluator(model, device="cpu").evaluate(loader, max_batches=0)


def test_bits_per_byte_from_batch_num_bytes() -> None:
    model = _model()
    batches = [_batch(i, batch=2, length=4) for i in range(3)]
    loader = ListLoader(batches, batch_num_bytes=[30, 41, 25], num_bytes=96)
    evaluator = Evaluator(model, device="cpu")

    metrics = evaluator.evaluate(loader, max_batches=2)
    total, _ = _pooled_nats(model, batches[:2])
    assert metrics["bits_per_byte"] == pytest.approx(total / (math.log(2) * 71), rel=1e-6)

    full = evaluator.evaluate(loader)
    total, _ = _pooled_nats(model, batches)
    assert full["bits_per_byte"] == pytest.approx(total / (math.log(2) * 96), rel=1e-6)


def test_bits_per_byte_from_num_bytes_only_for_the_whole_loader() -> None:
    model = _model()
    batches = [_batch(i, batch=2, length=4) for i in range(3)]
    loader = ListLoader(batches, num_bytes=200)
    evaluator = Evaluator(model, device="cpu")
    full = evaluator.evaluate(loader)
    total, _ = _pooled_nats(model, batches)
    assert full["bits_per_byte"] == pytest.approx(total / (math.log(2) * 200), rel=1e-6)
    assert evaluator.evaluate(loader, max_batches=3)["bits_per_byte"] == full["bits_per_byte"]
    assert "bits_per_byte" not in evaluator.evaluate(loader, max_batches=2)
    assert "bits_per_byte" not in evaluator.evaluate(ListLoader(batches))


def test_mode_is_restored_and_no_gradients_are_created() -> None:
    model = _model()
    batches = [_batch(i, batch=2, length=4) for i in range(2)]
    evaluator = Evaluator(model, device="cpu")

    model.train()
    first = evaluator.evaluate(batches)
    assert model.training
    assert model.calls == [(False, False), (False, False)]  # eval mode (no dropout), no grad
    assert all(p.grad is None for p in model.parameters())
    assert evaluator.evaluate(batches) == first  # dropout really was off

    model.eval()
    evaluator.evaluate(batches)
    assert not model.training

    # The previous mode is restored even when evaluation fails.
    model.train()
    with pytest.raises(ValueError):
        evaluator.evaluate([_batch(0, batch=1, length=3), 42])
    assert model.training


def test_no_labelled_tokens_is_an_error() -> None:
    evaluator = Evaluator(_model(), device="cpu")
    with pytest.raises(ValueError, match="no labelled tokens"):
        evaluator.evaluate([])
    x, _ = _batch(0, batch=1, length=3)
    with pytest.raises(ValueError, match="no labelled tokens"):
        evaluator.evaluate([(x, torch.full_like(x, -100))])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_device_fallback_and_auto() -> None:
    model = _model()
    with pytest.warns(UserWarning, match="CUDA is unavailable"):
        assert Evaluator(model).device == torch.device("cpu")
    with pytest.warns(UserWarning, match="CUDA is unavailable"):
        assert Evaluator(model, device="cuda:1").device == torch.device("cpu")
    assert Evaluator(model, device="auto").device.type in ("cpu", "mps")
    with pytest.raises(ValueError, match="amp_dtype"):
        Evaluator(model, device="cpu", amp_dtype="fp8")


def test_ddp_wrapped_model_in_a_single_process_group(tmp_path: Path) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    model = _model()
    batches = [_batch(i, batch=2, length=4) for i in range(3)]
    expected = Evaluator(model, device="cpu").evaluate(ListLoader(batches, num_bytes=100))
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    evaluator = None
    try:
        evaluator = Evaluator(DistributedDataParallel(model), device="cpu")
        assert evaluator.model is model
        assert evaluator.evaluate(ListLoader(batches, num_bytes=100)) == expected
    finally:
        evaluator = None  # holds the DDP wrapper, which must not outlive the process group
        gc.collect()
        dist.destroy_process_group()


_DDP_SCRIPT = textwrap.dedent("""
    import gc, json, sys
    import torch
    import torch.distributed as dist
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel
    from common.models import BaseLanguageModel
    from common.training import Evaluator

    class Tiny(BaseLanguageModel):
        def __init__(self, vocab_size=13, d_model=8):
            super().__init__(vocab_size, d_model=d_model)
            self.emb = nn.Embedding(vocab_size, d_model)
            self.head = nn.Linear(d_model, vocab_size)

        def forward(self, input_ids, labels=None):
            return {"logits": self.head(self.emb(input_ids))}

    class Loader(list):
        pass

    rank, world, store = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Tiny()
    gen = torch.Generator().manual_seed(1)
    batches, nbytes = [], []
    for i in range(4):
        tokens = torch.randint(0, 13, (2, 7), generator=gen)
        y = tokens[:, 1:].clone()
        y[:, i + 1 :] = -100  # very different numbers of valid tokens per batch
        batches.append((tokens[:, :-1], y))
        nbytes.append(10 * (i + 1))
    full = Loader(batches)
    full.batch_num_bytes = nbytes
    reference = Evaluator(model, device="cpu").evaluate(full)
    shard = Loader(batches[rank::world])
    shard.batch_num_bytes = nbytes[rank::world]
    dist.init_process_group("gloo", init_method="file://" + store, rank=rank, world_size=world)
    ddp = DistributedDataParallel(model)
    metrics = Evaluator(ddp, device="cpu").evaluate(shard)
    del ddp  # a DDP wrapper alive after destroy_process_group can abort the process at exit
    gc.collect()  # (DDP sits in reference cycles)
    dist.destroy_process_group()
    print(json.dumps({"reference": reference, "metrics": metrics}))
    """)


@pytest.mark.slow
def test_distributed_evaluation_all_reduces_shards(tmp_path: Path) -> None:
    script = tmp_path / "ddp_eval.py"
    script.write_text(_DDP_SCRIPT)
    store = tmp_path / "store"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(rank), "2", str(store)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    for result in outputs:
        ref, got = result["reference"], result["metrics"]
        assert got["num_tokens"] == ref["num_tokens"] == 2 * (1 + 2 + 3 + 4)
        assert got["num_batches"] == ref["num_batches"] == 4
        assert got["loss"] == pytest.approx(ref["loss"], rel=1e-9)
        assert got["bits_per_byte"] == pytest.approx(ref["bits_per_byte"], rel=1e-9)
    assert outputs[0]["metrics"] == outputs[1]["metrics"]


class CharTokenizer:
    """A real (tiny) character tokenizer with the CONTRACTS interface."""

    def __init__(self, alphabet: str = "abcdefghijkl") -> None:
        self.alphabet = alphabet
        self.eot_token_id = len(alphabet)
        self.vocab_size = len(alphabet) + 1

    def encode(self, text: str) -> list[int]:
        return [self.alphabet.index(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join("<|endoftext|>" if i == self.eot_token_id else self.alphabet[i] for i in ids)


class SuccessorLM(BaseLanguageModel):
    """Deterministic: the next token after ``t`` is ``(t + 1) % vocab_size``."""

    def __init__(self, vocab_size: int = VOCAB) -> None:
        super().__init__(vocab_size)
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(
        self, input_ids: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        logits = F.one_hot((input_ids + 1) % self.vocab_size, self.vocab_size).float() * 10
        return {"logits": logits + self.dummy}


def test_generate_samples_returns_prompt_plus_continuation() -> None:
    tokenizer = CharTokenizer()  # eot = 12 = VOCAB - 1
    evaluator = Evaluator(SuccessorLM(), device="cpu")
    samples = evaluator.generate_samples(["ij", "a", ""], tokenizer, max_length=4, do_sample=False)
    # "ij" -> k, l, then eot stops it (not included); "" starts from eot: a, b, c, d.
    assert samples == ["ijkl", "abcde", "abcd"]
    assert evaluator.generate_samples(["ij"], tokenizer, max_length=5, eos_token_id=None, top_k=1)[
        0
    ].startswith("ijkl<|endoftext|>a")
    sampled = Evaluator(_model(), device="cpu").generate_samples(["abc"], tokenizer, max_length=3)
    assert len(sampled) == 1 and sampled[0].startswith("abc")


def test_compute_perplexity_is_overflow_safe() -> None:
    assert compute_perplexity(0.0) == 1.0
    assert compute_perplexity(math.log(7.0)) == pytest.approx(7.0)
    assert compute_perplexity(torch.tensor(2.0)) == pytest.approx(math.exp(2.0))
    assert compute_perplexity(torch.tensor(1.5, dtype=torch.bfloat16)) == pytest.approx(
        math.exp(1.5)
    )
    assert compute_perplexity(1000.0) == math.inf
    assert compute_perplexity(torch.tensor(1e30)) == math.inf
    assert compute_perplexity(math.inf) == math.inf
    assert math.isnan(compute_perplexity(math.nan))


def test_create_metrics_dataframe_has_one_row_with_all_columns() -> None:
    metrics = {"loss": 2.5, "perplexity": math.exp(2.5), "num_tokens": torch.tensor(40)}
    evaluator = Evaluator(nn.Linear(2, 2), device="cpu")
    frame = evaluator.create_metrics_dataframe(metrics, epoch=5, split="val", step=100, lr=3e-4)
    assert list(frame.columns) == [
        "epoch",
        "split",
        "loss",
        "perplexity",
        "num_tokens",
        "step",
        "lr",
    ]
    assert len(frame) == 1
    row = frame.iloc[0]
    assert row["split"] == "val" and row["epoch"] == 5 and row["step"] == 100
    assert row["num_tokens"] == 40 and row["loss"] == 2.5
    train = evaluator.create_metrics_dataframe({"loss": 1.0}, 0.5, split="train").iloc[0]
    assert train["split"] == "train" and train["perplexity"] == pytest.approx(math.e)
    with pytest.raises(ValueError, match="loss"):
        evaluator.create_metrics_dataframe(metrics, 1, loss=1.0)
