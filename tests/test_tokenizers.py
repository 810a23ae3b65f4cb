"""Tokenizers: GPT-2 format (built from files written here), trained byte-level BPE, loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.data.synthetic import generate_stories
from common.data.tokenizers import (
    EOT,
    DataError,
    Tokenizer,
    _bytes_to_unicode,
    load_tokenizer,
    train_bpe_tokenizer,
)

TEXT = 'The cat sat on the mat. "Hello there!" said the cat.\nCafé, naïve, 日本, emoji 🙂.'


def write_tiny_gpt2(
    folder: Path, merges: tuple[str, ...] = ("Ġ t", "h e", "Ġt he", "t he")
) -> Path:
    """A GPT-2-format tokenizer (vocab.json + merges.txt): 256 byte symbols, a few merges, EOT."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {ch: i for i, ch in enumerate(_bytes_to_unicode().values())}
    for merge in merges:
        vocab["".join(merge.split())] = len(vocab)
    vocab[EOT] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", "utf-8")
    return folder


@pytest.fixture(scope="module")
def bpe() -> Tokenizer:
    return train_bpe_tokenizer(generate_stories(40, seed=0), vocab_size=400)


def test_gpt2_format_tokenizer_round_trips_and_has_eot(tmp_path: Path) -> None:
    tok = load_tokenizer(write_tiny_gpt2(tmp_path / "gpt2tiny"))
    assert tok.vocab_size == 256 + 4 + 1
    assert tok.eot_token_id == 260
    ids = tok.encode(TEXT)
    assert tok.decode(ids) == TEXT
    assert tok.encode(" the the") == [258, 258]  # the merges apply: "Ġthe" is one token
    assert tok.encode("the") == [259]
    assert tok.encode(f"a{EOT}b") == [tok.encode("a")[0], 260, tok.encode("b")[0]]
    assert tok.encode_batch([TEXT, "the"]) == [ids, tok.encode("the")]
    assert tok.is_byte_level
    assert int(tok.token_byte_lengths()[ids].sum()) == len(TEXT.encode("utf-8"))


@pytest.mark.slow
def test_gpt2_files_encode_exactly_like_transformers_gpt2_tokenizer_fast(tmp_path: Path) -> None:
    import transformers

    folder = write_tiny_gpt2(tmp_path / "g", merges=("Ġ t", "h e", "Ġt he", "t he", "a t", "Ġ c"))
    ours = load_tokenizer(folder)
    theirs = transformers.GPT2TokenizerFast.from_pretrained(str(folder))
    text = TEXT + f" the cat{EOT}at  the   hat\n\n" + generate_stories(2, seed=0)[1]
    assert ours.encode(text) == theirs.encode(text)
    assert ours.vocab_size == len(theirs)
    assert ours.eot_token_id == theirs.eos_token_id


def test_gpt2_by_name_is_found_under_assets_models(isolated_assets: Path) -> None:
    write_tiny_gpt2(isolated_assets / "models" / "gpt2")
    tok = load_tokenizer("gpt2")
    assert tok.eot_token_id == 260
    assert tok.decode(tok.encode(TEXT)) == TEXT


def test_bpe_round_trip_eot_and_exact_byte_lengths(bpe: Tokenizer) -> None:
    assert bpe.vocab_size == 400
    assert bpe.eot_token_id == 0
    assert bpe.encode(EOT) == [0]
    ids = bpe.encode(TEXT)
    assert bpe.decode(ids) == TEXT
    assert int(bpe.token_byte_lengths()[ids].sum()) == len(TEXT.encode("utf-8"))
    story = generate_stories(1, seed=99)[0]
    assert len(bpe.encode(story)) < 0.7 * len(story.encode())  # merges learned from the stories


def test_fingerprint_is_stable_across_save_and_load_and_changes_with_the_tokenizer(
    tmp_path: Path, bpe: Tokenizer
) -> None:
    path = bpe.save(tmp_path / "tok")
    assert path.name == "tokenizer.json"
    loaded = load_tokenizer(tmp_path / "tok")
    assert loaded.fingerprint == bpe.fingerprint
    assert loaded.name == bpe.name
    assert loaded.encode(TEXT) == bpe.encode(TEXT)
    other_size = train_bpe_tokenizer(generate_stories(40, seed=0), vocab_size=350)
    other_text = train_bpe_tokenizer(generate_stories(40, seed=1), vocab_size=400)
    assert len({bpe.fingerprint, other_size.fingerprint, other_text.fingerprint}) == 3
    gpt2 = load_tokenizer(write_tiny_gpt2(tmp_path / "a"))
    gpt2_more = load_tokenizer(write_tiny_gpt2(tmp_path / "b", merges=("h e",)))
    assert gpt2.fingerprint != gpt2_more.fingerprint
    assert load_tokenizer(write_tiny_gpt2(tmp_path / "c")).fingerprint == gpt2.fingerprint


def test_gpt2_saved_as_tokenizer_json_loads_back_identically(tmp_path: Path) -> None:
    gpt2 = load_tokenizer(write_tiny_gpt2(tmp_path / "g"))
    gpt2.save(tmp_path / "saved")
    again = load_tokenizer(tmp_path / "saved" / "tokenizer.json")
    assert again.fingerprint == gpt2.fingerprint
    assert again.eot_token_id == gpt2.eot_token_id


def test_errors_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="at least 258"):
        train_bpe_tokenizer(["abc"], vocab_size=100)
    with pytest.raises(DataError, match="not found"):
        load_tokenizer("./no/such/folder")
