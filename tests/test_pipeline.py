"""prepare_data: synthetic, saved data set and text sources; caching; ranks; errors."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from common.data.pipeline import PreparedData, prepare_data, split_text_documents
from common.data.synthetic import generate_stories
from common.data.token_dataset import RandomWindowLoader, SequentialLoader
from common.data.tokenizers import EOT, DataError
from common.utils.config import DataConfig


def small_synthetic(**kwargs) -> DataConfig:
    base = {"synthetic_train_stories": 60, "synthetic_val_stories": 8, "vocab_size": 300}
    return DataConfig(**{**base, **kwargs})


def test_synthetic_source_gives_a_tokenizer_loaders_and_a_description() -> None:
    data = prepare_data(small_synthetic(), context_length=32, batch_size=4, seed=0)
    assert isinstance(data, PreparedData)
    assert data.tokenizer.vocab_size == 300
    assert isinstance(data.train_loader, RandomWindowLoader)
    assert isinstance(data.val_loader, SequentialLoader)
    x, y = next(data.train_loader)
    assert x.shape == y.shape == (4, 32)
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert data.train_tokens == data.train_file.num_tokens > data.val_tokens > 0  # type: ignore
    assert data.train_file.num_documents == 60 and data.val_file.num_documents == 8  # type: ignore
    assert "synthetic" in data.description and "300" in data.description
    train_text = data.tokenizer.decode(data.train_file.tokens)  # type: ignore[union-attr]
    assert train_text.split(EOT)[:60] == generate_stories(60, seed=1234)
    val_docs = data.tokenizer.decode(data.val_file.tokens).split(EOT)[:-1]  # type: ignore
    assert data.val_text_sample == val_docs[0]
    assert not set(val_docs) & set(train_text.split(EOT))  # disjoint splits
    assert data.val_loader.num_bytes and data.val_loader.batch_num_bytes
    baseline = data.unigram_baseline()
    assert baseline["loss"] > 0 and baseline["bits_per_byte"] > 0  # type: ignore[operator]


def test_second_call_hits_the_cache_and_a_new_vocab_size_rebuilds(
    isolated_assets: Path,
) -> None:
    first = prepare_data(small_synthetic(), 32, 4, seed=0)
    bin_path = first.train_file.path  # type: ignore[union-attr]
    mtime = bin_path.stat().st_mtime_ns
    start = time.perf_counter()
    again = prepare_data(small_synthetic(), 32, 4, seed=0)
    assert time.perf_counter() - start < 1.0
    assert bin_path.stat().st_mtime_ns == mtime
    assert again.tokenizer.fingerprint == first.tokenizer.fingerprint
    assert again.train_file.path == bin_path  # type: ignore[union-attr]
    assert bin_path.is_relative_to(isolated_assets / "cache" / "tokens")
    assert (bin_path.parent / "tokenizer.json").is_file()
    other = prepare_data(small_synthetic(vocab_size=280), 32, 4, seed=0)
    assert other.tokenizer.fingerprint != first.tokenizer.fingerprint
    assert other.train_file.path != bin_path  # type: ignore[union-attr]
    reseeded = prepare_data(small_synthetic(synthetic_seed=9), 32, 4, seed=0)
    assert reseeded.train_file.path.parent != bin_path.parent  # type: ignore[union-attr]


def test_other_ranks_wait_for_rank_zero_and_slice_the_same_batches() -> None:
    cfg = small_synthetic()
    results: dict[int, PreparedData] = {}
    waiter = threading.Thread(
        target=lambda: results.setdefault(1, prepare_data(cfg, 16, 2, seed=5, rank=1, world_size=2))
    )
    waiter.start()
    time.sleep(0.3)
    assert 1 not in results  # nothing built yet: rank 1 waits
    results[0] = prepare_data(cfg, 16, 2, seed=5, rank=0, world_size=2)
    waiter.join(timeout=30)
    assert 1 in results
    single = prepare_data(cfg, 16, 4, seed=5)
    x, y = next(single.train_loader)
    parts = [next(results[r].train_loader) for r in (0, 1)]
    assert torch.equal(torch.cat([p[0] for p in parts]), x)
    assert torch.equal(torch.cat([p[1] for p in parts]), y)
    per_rank = [results[r].val_loader.num_bytes for r in (0, 1)]
    assert sum(per_rank) == single.val_loader.num_bytes  # type: ignore[arg-type]


def save_tiny_dataset(root: Path, name: str, splits: dict[str, list[str]]) -> Path:
    import datasets

    folder = root / "datasets" / name
    datasets.DatasetDict(
        {
            k: datasets.Dataset.from_dict({"text": v, "id": list(range(len(v)))})
            for k, v in splits.items()
        }
    ).save_to_disk(str(folder))
    return folder


@pytest.mark.slow
def test_saved_dataset_source_with_and_without_a_validation_split(isolated_assets: Path) -> None:
    stories = generate_stories(50, seed=3)
    save_tiny_dataset(isolated_assets, "tiny", {"train": stories[:40], "validation": stories[40:]})
    cfg = DataConfig(source="dataset", dataset="tiny", vocab_size=300, max_train_documents=30)
    data = prepare_data(cfg, 32, 2, seed=0)
    assert data.train_file.num_documents == 30 and data.val_file.num_documents == 10  # type: ignore
    assert data.val_text_sample == stories[40]
    assert "tiny" in data.description
    assert next(data.train_loader)[0].shape == (2, 32)

    save_tiny_dataset(isolated_assets, "trainonly", {"train": stories})
    carved = prepare_data(
        DataConfig(source="dataset", dataset="trainonly", vocab_size=300, max_val_documents=5),
        32, 2, seed=0,
    )  # fmt: skip
    assert carved.train_file.num_documents == 45 and carved.val_file.num_documents == 5  # type: ignore
    assert carved.val_text_sample == stories[45]  # the last documents are held out

    save_tiny_dataset(isolated_assets, "roneneldan/TinyStories", {"train": stories[:20]})
    by_alias = prepare_data(
        DataConfig(source="dataset", dataset="tinystories", vocab_size=300), 32, 2, seed=0
    )  # the alias finds the folder download_dataset("roneneldan/TinyStories") wrote
    assert by_alias.train_file.num_documents == 19  # type: ignore[union-attr]

    with pytest.raises(DataError, match="no column 'story'"):
        prepare_data(
            DataConfig(source="dataset", dataset="tiny", text_column="story"), 32, 2, seed=0
        )


def test_a_tokenizer_folder_or_name_is_loaded_instead_of_training_bpe(
    tmp_path: Path, isolated_assets: Path
) -> None:
    from test_tokenizers import write_tiny_gpt2

    folder = write_tiny_gpt2(tmp_path / "gpt2tiny")
    data = prepare_data(small_synthetic(tokenizer=str(folder)), 16, 2, seed=0)
    assert data.tokenizer.vocab_size == 261 and data.tokenizer.eot_token_id == 260
    assert not (isolated_assets / "cache" / "tokenizers").exists()
    assert data.train_file.meta["vocab_size"] == 261  # type: ignore[union-attr]
    write_tiny_gpt2(isolated_assets / "models" / "gpt2")
    by_name = prepare_data(small_synthetic(tokenizer="gpt2"), 16, 2, seed=0)
    assert by_name.tokenizer.fingerprint == data.tokenizer.fingerprint
    assert by_name.train_file.path == data.train_file.path  # type: ignore[union-attr]


def test_missing_dataset_says_how_to_download_it() -> None:
    cfg = DataConfig(source="dataset", dataset="tinystories")
    with pytest.raises(DataError) as info:
        prepare_data(cfg, 32, 2, seed=0)
    assert "python tools/download_hf_dataset.py --name tinystories" in str(info.value)
    with pytest.raises(DataError, match="data.dataset"):
        prepare_data(DataConfig(source="dataset"), 32, 2, seed=0)
    with pytest.raises(DataError, match="unknown data.source"):
        prepare_data(DataConfig(source="nope"), 32, 2, seed=0)


def test_text_files_split_on_eot_or_blank_lines(tmp_path: Path) -> None:
    assert split_text_documents(f"a b\n\nc{EOT} d \n\n e{EOT}") == ["a b\n\nc", "d \n\n e"]
    assert split_text_documents("one\ntwo\n\n  \nthree\n\n\n") == ["one\ntwo", "three"]
    stories = generate_stories(30, seed=8)
    train = tmp_path / "train.txt"
    train.write_text("\n\n\n".join(s.replace("\n\n", "\n") for s in stories[:25]))
    val = tmp_path / "val.txt"
    val.write_text(EOT.join(stories[25:]))
    cfg = DataConfig(source="text", train_files=[str(train)], val_files=[str(val)], vocab_size=300)
    data = prepare_data(cfg, 32, 2, seed=0)
    assert data.train_file.num_documents == 25 and data.val_file.num_documents == 5  # type: ignore
    assert data.val_text_sample == stories[25]
    held = prepare_data(
        DataConfig(source="text", train_files=[str(train)], vocab_size=300), 32, 2, seed=0
    )
    assert held.val_file.num_documents == 1 and held.train_file.num_documents == 24  # type: ignore
    with pytest.raises(DataError, match="not found"):
        prepare_data(DataConfig(source="text", train_files=["nope.txt"]), 32, 2, seed=0)


def test_context_longer_than_the_validation_text_is_a_data_error() -> None:
    cfg = small_synthetic(synthetic_val_stories=1)
    with pytest.raises(DataError, match="validation split has"):
        prepare_data(cfg, context_length=4096, batch_size=1, seed=0)


def test_synthetic_data_carries_its_floor_in_the_sidecar_and_on_the_prepared_data(
    isolated_assets: Path,
) -> None:
    import random

    from common.data.pipeline import _val_seed
    from common.data.synthetic import corpus_floor_bits_per_byte, write_story

    cfg = small_synthetic(synthetic_difficulty=0.5)
    data = prepare_data(cfg, 32, 4, seed=0)
    assert data.floor_bits_per_byte is not None
    # recomputed from the generator: the validation stories are the first 8 of their seed stream
    # that are not training stories (at this size none collide)
    rng = random.Random(_val_seed(1234))
    val = [write_story(rng, 0.5) for _ in range(8)]
    expected = corpus_floor_bits_per_byte(val)
    assert data.floor_bits_per_byte == pytest.approx(expected, rel=1e-9)
    source = data.val_file.meta["source"]  # type: ignore[union-attr]
    assert source["floor_bits_per_byte"] == pytest.approx(expected, rel=1e-9)
    assert source["difficulty"] == 0.5
    train_floor = data.train_file.floor_bits_per_byte  # type: ignore[union-attr]
    assert train_floor is not None and abs(train_floor - expected) < 0.3 * expected
    reopened = prepare_data(cfg, 32, 4, seed=0)  # from the cache: the same facts
    assert reopened.floor_bits_per_byte == data.floor_bits_per_byte
    harder = prepare_data(small_synthetic(synthetic_difficulty=1.0), 32, 4, seed=0)
    assert harder.floor_bits_per_byte > data.floor_bits_per_byte  # type: ignore[operator]
    assert harder.val_file.path != data.val_file.path  # type: ignore[union-attr]


def test_text_sources_have_no_floor_and_a_bad_difficulty_is_a_data_error(tmp_path: Path) -> None:
    docs = generate_stories(40, seed=3)
    (tmp_path / "a.txt").write_text(EOT.join(docs))
    data = prepare_data(
        DataConfig(source="text", train_files=[str(tmp_path / "a.txt")], vocab_size=300),
        16,
        2,
        seed=0,
    )
    assert data.floor_bits_per_byte is None and data.val_file.floor_bits_per_byte is None  # type: ignore
    with pytest.raises(DataError, match="synthetic_difficulty"):
        prepare_data(small_synthetic(synthetic_difficulty=1.5), 16, 2, seed=0)
