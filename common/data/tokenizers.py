"""Tokenizers behind one small interface: GPT-2 and a byte-level BPE trained on the data.

Both are byte-level BPE tokenizers run by the Rust ``tokenizers`` library (GPT-2 through
``transformers.GPT2TokenizerFast``, whose backend is the same library), so encoding is lossless:
``decode(encode(text)) == text`` and every token stands for a fixed sequence of bytes, which is
what makes exact bits-per-byte accounting possible (:meth:`Tokenizer.token_byte_lengths`).

``<|endoftext|>`` is the document separator of both (``eot_token_id``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.utils.atomic import atomic_write_text

if TYPE_CHECKING:
    import numpy as np

EOT = "<|endoftext|>"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "tokenizer_meta.json"


class DataError(ValueError):
    """A data set, text file or tokenizer is missing or invalid; the message says how to fix it."""


class Tokenizer:
    """A tokenizer with the interface the data pipeline and the scripts use.

    Wraps a ``tokenizers.Tokenizer`` (the Rust backend). Build one with :func:`load_tokenizer` or
    :func:`train_bpe_tokenizer` rather than directly.

    Args:
        backend: the ``tokenizers.Tokenizer``.
        name: a short human-readable name (``"gpt2"``, ``"bpe-4096"``, a path).
        eot_token: the end-of-text / document separator token.
    """

    def __init__(self, backend: Any, name: str, eot_token: str = EOT) -> None:
        eot_id = backend.token_to_id(eot_token)
        if eot_id is None:
            raise DataError(f"tokenizer {name!r} has no {eot_token!r} token")
        self.backend = backend
        self.name = name
        self.eot_token = eot_token
        self.eot_token_id: int = int(eot_id)
        self._fingerprint: str | None = None

    @property
    def vocab_size(self) -> int:
        """Number of token ids, including added special tokens."""
        return int(self.backend.get_vocab_size(with_added_tokens=True))

    @property
    def fingerprint(self) -> str:
        """Hex digest of the serialized tokenizer: equal exactly when the tokenizers are equal."""
        if self._fingerprint is None:
            text = self.backend.to_str()
            self._fingerprint = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        return self._fingerprint

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added; ``<|endoftext|>`` in the text is EOT)."""
        return list(self.backend.encode(text, add_special_tokens=False).ids)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (parallel in the Rust backend)."""
        encodings = self.backend.encode_batch(list(texts), add_special_tokens=False)
        return [list(e.ids) for e in encodings]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids`` (special tokens such as ``<|endoftext|>`` are kept)."""
        return str(self.backend.decode([int(i) for i in ids], skip_special_tokens=False))

    def save(self, directory: str | Path) -> Path:
        """Write ``tokenizer.json`` (+ a small metadata file) into ``directory``, atomically.

        Args:
            directory: the folder (created if needed).

        Returns:
            The path of ``tokenizer.json``; :func:`load_tokenizer` of the folder loads it back.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"name": self.name, "eot_token": self.eot_token, "fingerprint": self.fingerprint}
        atomic_write_text(directory / META_FILE, json.dumps(meta, indent=2))
        path = directory / TOKENIZER_FILE
        atomic_write_text(path, self.backend.to_str())
        return path

    def token_byte_lengths(self) -> np.ndarray:
        """UTF-8 length in bytes of every token id (special tokens: the length of their text).

        For byte-level tokenizers the bytes of a token sequence are exactly the sum of these. The
        document separator counts as the bytes of ``<|endoftext|>`` whatever this tokenizer calls
        it (``</s>``, ...), so every tokenizer's bits per byte are over the same bytes.
        """
        import numpy as np

        byte_decoder = {c: b for b, c in _bytes_to_unicode().items()}
        lengths = np.zeros(self.vocab_size, dtype=np.int64)
        special = {t.content for t in self.backend.get_added_tokens_decoder().values()}
        for token, idx in self.backend.get_vocab(with_added_tokens=True).items():
            if token in special or any(ch not in byte_decoder for ch in token):
                lengths[idx] = len(token.encode("utf-8"))
            else:
                lengths[idx] = len(token)
        lengths[self.eot_token_id] = len(EOT.encode("utf-8"))
        return lengths

    @property
    def is_byte_level(self) -> bool:
        """Whether tokens map to fixed byte strings (byte-level pre-tokenizer, no normalizer)."""
        spec = json.loads(self.backend.to_str())
        pre = json.dumps(spec.get("pre_tokenizer"))
        return spec.get("normalizer") is None and '"ByteLevel"' in pre

    def __repr__(self) -> str:
        return (
            f"Tokenizer(name={self.name!r}, vocab_size={self.vocab_size}, "
            f"fingerprint={self.fingerprint!r})"
        )


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table used by byte-level BPE."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def train_bpe_tokenizer(
    texts: Iterable[str], vocab_size: int, save_dir: str | Path | None = None
) -> Tokenizer:
    """Train a byte-level BPE tokenizer (GPT-2 style pre-tokenization) on ``texts``.

    Args:
        texts: training documents (an iterable; consumed once).
        vocab_size: total vocabulary size including the 256 byte tokens and ``<|endoftext|>``.
        save_dir: if given, the tokenizer is saved there (``tokenizer.json``).

    Returns:
        The trained tokenizer (``<|endoftext|>`` has id 0).
    """
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if vocab_size < 257 + 1:
        raise DataError(f"vocab_size must be at least 258 for byte-level BPE, got {vocab_size}")
    backend = HFTokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    tokenizer = Tokenizer(backend, name=f"bpe-{vocab_size}")
    if save_dir is not None:
        tokenizer.save(save_dir)
    return tokenizer


def _from_gpt2_files(folder: Path, name: str) -> Tokenizer:
    """GPT-2's tokenizer from ``vocab.json`` + ``merges.txt``.

    Builds the same Rust pipeline as ``transformers.GPT2TokenizerFast`` (byte-level BPE, GPT-2
    regex pre-tokenization, ``<|endoftext|>`` special) without importing ``transformers``; a test
    checks the two encode identically.
    """
    from tokenizers import AddedToken, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer

    model = models.BPE.from_file(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        continuing_subword_prefix="",
        end_of_word_suffix="",
        fuse_unk=False,
    )
    backend = HFTokenizer(model)
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(
        add_prefix_space=False, trim_offsets=True, use_regex=True
    )
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(EOT, special=True, normalized=False)])
    return Tokenizer(backend, name=name)


def _from_folder(folder: Path, name: str) -> Tokenizer:
    from tokenizers import Tokenizer as HFTokenizer

    meta_path = folder / META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if (folder / TOKENIZER_FILE).is_file():
        backend = HFTokenizer.from_file(str(folder / TOKENIZER_FILE))
        eot = meta.get("eot_token", EOT)
        if backend.token_to_id(eot) is None:
            return _from_transformers(str(folder), name)  # its end-of-text token has another name
        return Tokenizer(backend, name=meta.get("name", name), eot_token=eot)
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return _from_gpt2_files(folder, name)
    return _from_transformers(str(folder), name)


def _from_transformers(spec: str, name: str) -> Tokenizer:
    """A tokenizer through ``transformers`` (GPT-2 format folders, repo ids)."""
    import transformers

    try:
        hf = transformers.AutoTokenizer.from_pretrained(spec)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"cannot load tokenizer {spec!r}: {exc}\n"
            f"Download it first: python tools/download_hf_model.py --repo-id {spec}"
        ) from None
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise DataError(f"tokenizer {spec!r} has no fast (Rust) implementation")
    eot = EOT if backend.token_to_id(EOT) is not None else (hf.eos_token or EOT)
    return Tokenizer(backend, name=name, eot_token=eot)


def _model_folder_candidates(spec: str) -> list[Path]:
    from common.paths import get_models_dir

    models = get_models_dir()
    names = [spec, spec.replace("/", "--"), spec.replace("/", "__"), spec.split("/")[-1]]
    if spec == "gpt2":
        names += ["openai-community--gpt2", "openai-community__gpt2", "openai-community/gpt2"]
    return [models / n for n in dict.fromkeys(names)]


def load_tokenizer(spec: str | Path) -> Tokenizer:
    """Load a tokenizer.

    Args:
        spec: a folder holding ``tokenizer.json`` (saved by :meth:`Tokenizer.save` or Hugging
            Face) or GPT-2 files (``vocab.json`` + ``merges.txt``); ``"gpt2"`` or another repo id,
            looked up first under ``assets/models`` and otherwise loaded by ``transformers``
            (which may download it).

    Returns:
        The tokenizer.

    Raises:
        DataError: the tokenizer cannot be found or loaded.
    """
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        return _from_folder(path, name=text)
    if path.is_file() and path.name.endswith(".json"):
        return _from_folder(path.parent, name=text)
    if text.startswith((".", "/", "~")):
        raise DataError(f"tokenizer folder not found: {text}")
    for folder in _model_folder_candidates(text):
        if folder.is_dir() and any(
            (folder / f).is_file() for f in (TOKENIZER_FILE, "vocab.json", "tokenizer_config.json")
        ):
            return _from_folder(folder, name=text)
    return _from_transformers(text, name=text)
