"""Token files (build, cache, atomicity, dtype) and the training / validation loaders."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from common.data.synthetic import generate_stories
from common.data.token_dataset import (
    RandomWindowLoader,
    SequentialLoader,
    TokenFile,
    build_token_file,
    token_dtype,
)
from common.data.tokenizers import EOT, DataError, Tokenizer, train_bpe_tokenizer
from common.data.unigram import unigram_baseline

DOCS = [*generate_stories(30, seed=5), "Ünïcödé døc: 日本語 🙂 and a tab\there.", "", "end"]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return train_bpe_tokenizer(generate_stories(30, seed=0), vocab_size=320)


@pytest.fixture(scope="module")
def tok_other() -> Tokenizer:
    return train_bpe_tokenizer(generate_stories(30, seed=0), vocab_size=300)


def build(tok: Tokenizer, path: Path, docs: list[str] = DOCS, **kwargs) -> TokenFile:
    kwargs.setdefault("num_workers", 1)
    kwargs.setdefault("progress", False)
    return build_token_file(docs, tok, path, **kwargs)


def test_token_file_holds_documents_each_followed_by_eot(tmp_path: Path, tok: Tokenizer) -> None:
    tf = build(tok, tmp_path / "t" / "train.bin", metadata={"split": "train"})
    kept = [d for d in DOCS if d]
    assert tok.decode(tf.tokens) == "".join(d + EOT for d in kept)
    assert tf.num_documents == len(kept)
    assert tf.num_tokens == len(tf.tokens) == sum(len(tok.encode(d)) + 1 for d in kept)
    assert tf.num_bytes == sum(len(d.encode("utf-8")) + len(EOT) for d in kept)
    assert int((tf.tokens == tok.eot_token_id).sum()) == len(kept)
    assert tf.dtype == np.uint16
    assert tf.meta["exact_bytes"] is True
    assert int(tf.token_bytes[np.asarray(tf.tokens)].sum()) == tf.num_bytes
    assert tf.meta["source"] == {"split": "train"}
    assert (tmp_path / "t" / "tokenizer.json").is_file()  # the tokenizer is saved beside it
    sidecar = json.loads((tmp_path / "t" / "train.json").read_text())
    assert sidecar["tokenizer_fingerprint"] == tok.fingerprint


def test_dtype_is_uint16_when_the_vocabulary_fits_else_uint32() -> None:
    assert token_dtype(50257) == np.uint16
    assert token_dtype(65536) == np.uint16
    assert token_dtype(65537) == np.uint32
    assert token_dtype(151_936) == np.uint32


def test_worker_pool_gives_the_same_file_as_one_process(tmp_path: Path, tok: Tokenizer) -> None:
    one = build(tok, tmp_path / "a.bin")
    pool = build(tok, tmp_path / "b.bin", num_workers=2, chunk_size=3)
    assert np.array_equal(np.asarray(one.tokens), np.asarray(pool.tokens))
    assert one.num_bytes == pool.num_bytes and one.num_documents == pool.num_documents


def _must_not_be_read() -> Iterator[str]:
    raise AssertionError("a cache hit must not read the documents")
    yield ""  # pragma: no cover


def test_cache_hit_reuses_the_file_and_a_new_tokenizer_rebuilds_it(
    tmp_path: Path, tok: Tokenizer, tok_other: Tokenizer
) -> None:
    path = tmp_path / "train.bin"
    first = build(tok, path)
    mtime = path.stat().st_mtime_ns
    again = build_token_file(_must_not_be_read(), tok, path, progress=False)
    assert path.stat().st_mtime_ns == mtime
    assert np.array_equal(np.asarray(first.tokens), np.asarray(again.tokens))
    rebuilt = build(tok_other, path)
    assert rebuilt.meta["tokenizer_fingerprint"] == tok_other.fingerprint
    assert tok_other.decode(rebuilt.tokens) == tok.decode(first.tokens)
    assert rebuilt.num_tokens != first.num_tokens
    assert TokenFile.open_if_valid(path, tok.fingerprint) is None
    assert TokenFile.open_if_valid(path, tok_other.fingerprint) is not None


def test_a_crash_mid_build_never_leaves_a_file_that_looks_complete(
    tmp_path: Path, tok: Tokenizer, tok_other: Tokenizer
) -> None:
    path = tmp_path / "train.bin"
    build(tok, path)

    def crashing() -> Iterator[str]:
        yield from DOCS[:10]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_token_file(crashing(), tok_other, path, num_workers=1, chunk_size=2, progress=False)
    assert TokenFile.open_if_valid(path, tok_other.fingerprint) is None
    assert TokenFile.open_if_valid(path, tok.fingerprint) is None  # the old one is invalidated
    with pytest.raises(DataError, match="incomplete"):
        TokenFile(path)
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert build(tok_other, path).num_documents == len([d for d in DOCS if d])


def test_no_documents_is_a_data_error(tmp_path: Path, tok: Tokenizer) -> None:
    with pytest.raises(DataError, match="no documents"):
        build(tok, tmp_path / "x.bin", docs=["", ""])
    assert not (tmp_path / "x.json").exists()


# --------------------------------------------------------------------------------- loaders
TOKENS = np.arange(1000, dtype=np.uint16)


def test_random_windows_are_shifted_contiguous_slices_and_deterministic() -> None:
    loader = RandomWindowLoader(TOKENS, batch_size=4, context_length=16, seed=3)
    x, y = next(loader)
    assert x.shape == y.shape == (4, 16) and x.dtype == y.dtype == torch.int64
    assert torch.equal(y, x + 1)  # labels are the next tokens
    assert torch.equal(x, x[:, :1] + torch.arange(16))  # windows are contiguous
    assert int(x.max()) + 1 <= 999
    same = RandomWindowLoader(TOKENS, batch_size=4, context_length=16, seed=3)
    other = RandomWindowLoader(TOKENS, batch_size=4, context_length=16, seed=4)
    assert torch.equal(next(same)[0], x)
    assert not torch.equal(next(other)[0], x)
    assert not torch.equal(next(loader)[0], x)  # steps differ


def test_every_window_start_is_reachable_including_the_last() -> None:
    loader = RandomWindowLoader(np.arange(12), batch_size=64, context_length=8, seed=0)
    starts = {int(next(loader)[0][i, 0]) for _ in range(5) for i in range(64)}
    assert starts == set(range(4))  # 12 tokens, windows of 9: starts 0..3


def test_resume_from_state_dict_continues_exactly() -> None:
    run = RandomWindowLoader(TOKENS, batch_size=4, context_length=16, seed=1)
    batches = [next(run) for _ in range(6)]
    interrupted = RandomWindowLoader(TOKENS, batch_size=4, context_length=16, seed=1)
    for _ in range(3):
        next(interrupted)
    state = interrupted.state_dict()
    assert state == {"step": 3}
    resumed = RandomWindowLoader(TOKENS, batch_size=4, context_length=16, seed=1)
    resumed.load_state_dict(json.loads(json.dumps(state)))
    for expected in batches[3:]:
        x, y = next(resumed)
        assert torch.equal(x, expected[0]) and torch.equal(y, expected[1])


def test_ranks_see_slices_of_the_single_process_global_batch() -> None:
    single = RandomWindowLoader(TOKENS, batch_size=6, context_length=8, seed=7)
    ranks = [RandomWindowLoader(TOKENS, 3, 8, seed=7, rank=r, world_size=2) for r in (0, 1)]
    for _ in range(4):
        x, y = next(single)
        parts = [next(r) for r in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), x)
        assert torch.equal(torch.cat([p[1] for p in parts]), y)


def test_too_few_tokens_is_a_data_error() -> None:
    with pytest.raises(DataError, match="context_length"):
        RandomWindowLoader(np.arange(8), batch_size=1, context_length=8, seed=0)
    with pytest.raises(DataError, match="context_length"):
        SequentialLoader(np.arange(8), batch_size=1, context_length=8)


def test_sequential_windows_cover_every_label_once_in_order() -> None:
    loader = SequentialLoader(np.arange(103), batch_size=4, context_length=10)
    batches = list(loader)
    assert len(loader) == len(batches) == 3  # 10 windows: 4 + 4 + 2
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    labels = torch.cat([b[1] for b in batches]).flatten()
    assert torch.equal(labels, torch.arange(1, 101))
    assert torch.equal(torch.cat([b[0] for b in batches]).flatten(), torch.arange(100))
    assert loader.num_tokens == 100
    assert [len(b[0]) for b in loader] == [4, 4, 2]  # iterable again
    assert len(SequentialLoader(np.arange(103), 4, 10, max_batches=2)) == 2


def test_sequential_batches_are_sharded_round_robin_across_ranks() -> None:
    single = list(SequentialLoader(np.arange(200), batch_size=3, context_length=7, max_batches=7))
    shards = [
        list(SequentialLoader(np.arange(200), 3, 7, max_batches=7, rank=r, world_size=2))
        for r in (0, 1)
    ]
    assert [len(s) for s in shards] == [4, 3]
    interleaved = [shards[j % 2][j // 2] for j in range(7)]
    for (a, b), (c, d) in zip(single, interleaved):
        assert torch.equal(a, c) and torch.equal(b, d)


def test_sequential_bytes_are_exact(tmp_path: Path, tok: Tokenizer) -> None:
    tf = build(tok, tmp_path / "val.bin")
    loader = SequentialLoader(tf, batch_size=2, context_length=32)
    per_batch = loader.batch_num_bytes
    assert per_batch is not None and len(per_batch) == len(loader)
    labels = [y for _, y in loader]
    # The labels of all batches are one contiguous token run: its bytes are exact, and so is
    # decoding it unless the run ends inside a multi-byte character.
    all_labels = torch.cat(labels).flatten().tolist()
    exact = int(tok.token_byte_lengths()[all_labels].sum())
    assert sum(per_batch) == loader.num_bytes == exact
    whole = tok.decode(all_labels)
    if "\ufffd" not in whole:
        assert exact == len(whole.encode("utf-8"))
    for y, nbytes in zip(labels, per_batch):  # per batch: exact where no character is split
        text = tok.decode(y.flatten().tolist())
        if "\ufffd" not in text:
            assert nbytes == len(text.encode("utf-8"))
    assert loader.num_bytes <= tf.num_bytes
    ranks = [SequentialLoader(tf, 2, 32, rank=r, world_size=2) for r in (0, 1)]
    assert sum(r.num_bytes for r in ranks) == loader.num_bytes  # type: ignore[misc]
    approx = SequentialLoader(tf, 2, 32, bytes_per_token=2.0)
    assert approx.batch_num_bytes == [2 * 32 * len(x) for x, _ in approx]
    assert SequentialLoader(np.arange(100), 2, 8).batch_num_bytes is None


def test_unigram_baseline_matches_the_closed_form(tmp_path: Path, tok: Tokenizer) -> None:
    result = unigram_baseline(np.array([0, 0, 1, 1]), np.array([0, 1, 1]), 2, num_bytes=6)
    assert result["loss"] == pytest.approx(math.log(2))
    assert result["bits_per_byte"] == pytest.approx(3 * 1.0 / 6)
    skewed = unigram_baseline(np.array([0] * 8), np.array([1]), 2)  # add-one smoothing: 1/10
    assert skewed["loss"] == pytest.approx(math.log(10))
    assert skewed["bits_per_byte"] is None
    tf = build(tok, tmp_path / "v.bin")
    on_file = unigram_baseline(tf, tf, tok.vocab_size)
    assert on_file["bits_per_byte"] == pytest.approx(
        on_file["loss"] * tf.num_tokens / math.log(2) / tf.num_bytes
    )
    assert 0 < on_file["loss"] < math.log(tok.vocab_size)
