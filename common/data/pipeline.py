"""From a ``DataConfig`` to a tokenizer and ready-to-use training and validation loaders.

Sources (``data.source``):

- ``"synthetic"``: the embedded story generator (:mod:`common.data.synthetic`) at
  ``synthetic_difficulty``; ``synthetic_train_stories`` from seed ``synthetic_seed`` and
  ``synthetic_val_stories`` from a separate seed stream derived from it (any validation story
  that also occurs in the training stories is dropped, so the splits are disjoint). The
  generator knows each story's probability, so each token file's sidecar records the split's
  entropy (``source.entropy_bits``, ``source.floor_bits_per_byte``: what a perfect model scores)
  and :attr:`PreparedData.floor_bits_per_byte` is the validation split's.
- ``"dataset"``: a data set saved by ``download_dataset`` under ``assets/datasets/<dataset>``
  (``datasets.load_from_disk``), ``text_column`` of ``train_split`` / ``val_split``. Without a
  validation split the last 1% of the training documents (at most 10,000, or
  ``max_val_documents``) are held out.
- ``"text"``: plain text files ``train_files`` / ``val_files``. A file containing
  ``<|endoftext|>`` is split into documents on it; otherwise documents are separated by blank
  lines. Without ``val_files`` the last 1% of the training documents are held out.

Tokenizer (``data.tokenizer``): ``"bpe"`` trains a byte-level BPE of ``vocab_size`` tokens on the
training text (at most :data:`BPE_SAMPLE_CHARS` characters of it) and caches it under
``get_cache_dir()/tokenizers``; anything else goes to :func:`load_tokenizer` (``"gpt2"``, a
folder, a repo id).

Token files are cached under ``get_cache_dir()/tokens/<source>-<split>-<params>-<tokenizer>/``:
a repeated run opens them in milliseconds and a changed tokenizer or source gets new files. In
multi-process runs only rank 0 trains and tokenizes; the other ranks wait for the finished files
(files are renamed into place when complete, so their presence is the signal).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.data.synthetic import WrittenStory, write_story
from common.data.token_dataset import (
    RandomWindowLoader,
    SequentialLoader,
    TokenFile,
    build_token_file,
    wait_for_token_file,
)
from common.data.tokenizers import (
    EOT,
    TOKENIZER_FILE,
    DataError,
    Tokenizer,
    load_tokenizer,
    train_bpe_tokenizer,
)
from common.data.unigram import unigram_baseline
from common.paths import get_cache_dir, get_datasets_dir
from common.utils.config import DataConfig

__all__ = ["DataError", "PreparedData", "prepare_data", "BPE_SAMPLE_CHARS"]

BPE_SAMPLE_CHARS = 10_000_000
"""At most this many characters of training text are used to train the BPE tokenizer."""

WAIT_TIMEOUT_S = 6 * 3600.0
"""How long ranks other than 0 wait for rank 0 to build the caches."""

_HOLDOUT_FRACTION = 0.01
_HOLDOUT_MAX = 10_000
_SAMPLE_CHARS = 2000


@dataclass
class PreparedData:
    """Everything a training script needs from the data side.

    Attributes:
        tokenizer: the tokenizer (``vocab_size``, ``eot_token_id``, ``encode``, ``decode``).
        train_loader: infinite random-window training batches (resumable).
        val_loader: deterministic validation batches reporting the bytes they cover.
        description: one line saying what data was used.
        train_tokens: number of tokens in the training split.
        val_tokens: number of tokens in the validation split.
        val_text_sample: the text of the first validation document (for prompts and logs).
        train_file: the training token file.
        val_file: the validation token file.
        floor_bits_per_byte: the validation split's entropy in bits per byte (the score of a
            perfect model) for the synthetic source; None for other sources.
    """

    tokenizer: Tokenizer
    train_loader: RandomWindowLoader
    val_loader: SequentialLoader
    description: str
    train_tokens: int
    val_tokens: int
    val_text_sample: str
    train_file: TokenFile | None = None
    val_file: TokenFile | None = None
    floor_bits_per_byte: float | None = None

    def unigram_baseline(self) -> dict[str, float | None]:
        """Validation loss (nats/token) and bits per byte of a unigram model of the train split."""
        if self.train_file is None or self.val_file is None:
            raise DataError("no token files to compute the baseline from")
        return unigram_baseline(self.train_file, self.val_file, self.tokenizer.vocab_size)


# ----------------------------------------------------------------------------- sources
@dataclass
class _Split:
    """One split of a source: a cache key, facts for the sidecar and a document iterator."""

    slug: str
    params: dict[str, Any]
    documents: Callable[[], Iterable[str]]
    num_documents: int | None
    label: str
    facts: dict[str, Any] = field(default_factory=dict)  # filled while documents are read

    @property
    def key(self) -> str:
        blob = json.dumps(self.params, sort_keys=True, default=str)
        return f"{self.slug}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def _digest(*parts: Any) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


def _generator_version() -> str:
    """Hash of the story generator's sources: editing the generator invalidates the caches."""
    import common.data.synthetic as synthetic

    folder = Path(synthetic.__file__).parent
    return _digest(*(p.read_bytes() for p in sorted(folder.glob("*.py"))))[:12]


def _record_entropy(facts: dict[str, Any], stories: list[WrittenStory]) -> None:
    """Store a split's entropy (total bits, bits per byte with one EOT after each story)."""
    bits = sum(story.bits for story in stories)
    num_bytes = sum(len(story.text.encode("utf-8")) + len(EOT.encode("utf-8")) for story in stories)
    facts["entropy_bits"] = bits
    facts["floor_bits_per_byte"] = bits / num_bytes


def _val_seed(seed: int) -> int:
    return int(_digest("synthetic-validation", seed)[:16], 16)


def _synthetic_splits(cfg: DataConfig) -> tuple[_Split, _Split, str]:
    seed, n_train, n_val, difficulty = (
        cfg.synthetic_seed,
        cfg.synthetic_train_stories,
        cfg.synthetic_val_stories,
        cfg.synthetic_difficulty,
    )
    if n_train < 1 or n_val < 1:
        raise DataError("data.synthetic_train_stories and data.synthetic_val_stories must be >= 1")
    if not 0.0 <= difficulty <= 1.0:
        raise DataError(f"data.synthetic_difficulty must be between 0 and 1, got {difficulty}")
    version = _generator_version()
    generated: list[WrittenStory] = []  # the training stories, generated once per call

    def train_docs() -> list[str]:
        if not generated:
            rng = random.Random(seed)
            generated.extend(write_story(rng, difficulty) for _ in range(n_train))
            _record_entropy(train.facts, generated)
        return [story.text for story in generated]

    def val_docs() -> Iterator[str]:
        seen = set(train_docs())
        rng, kept = random.Random(_val_seed(seed)), list[WrittenStory]()
        while len(kept) < n_val:
            story = write_story(rng, difficulty)
            if story.text not in seen:
                kept.append(story)
                yield story.text
        _record_entropy(val.facts, kept)

    common = {"generator": version, "seed": seed, "difficulty": difficulty}
    train = _Split("synthetic-train", {**common, "stories": n_train}, train_docs, n_train, "train")
    val = _Split("synthetic-val", {**common, "stories": n_val}, val_docs, n_val, "val")
    what = (
        f"synthetic stories (seed {seed}, difficulty {difficulty:g}, {n_train} train / {n_val} val)"
    )
    return train, val, what


def _dataset_folder(name: str) -> Path:
    """The folder ``download_dataset(name)`` saved ``name`` to (an alias or its repo id)."""
    root = get_datasets_dir()
    names = [name, name.lower()]
    try:
        from common.data.hf_utils import DATASET_ALIASES, resolve_dataset_name

        repo_id = resolve_dataset_name(name)
        names += [repo_id] + [alias for alias, repo in DATASET_ALIASES.items() if repo == repo_id]
    except Exception:  # not an alias or repo id: the plain folder name may still exist
        pass
    for candidate in dict.fromkeys(names):
        if (root / candidate).is_dir():
            return root / candidate
    raise DataError(
        f"data set {name!r} not found under {root}.\n"
        f"Download it first: python tools/download_hf_dataset.py --name {name}"
    )


def _iter_column(ds: Any, column: str, batch_size: int = 1000) -> Iterator[str]:
    for batch in ds.select_columns([column]).iter(batch_size=batch_size):
        yield from batch[column]


def _dataset_splits(cfg: DataConfig) -> tuple[_Split, _Split, str]:
    if not cfg.dataset:
        raise DataError('data.source is "dataset" but data.dataset is not set')
    folder = _dataset_folder(cfg.dataset)
    import datasets

    try:
        loaded = datasets.load_from_disk(str(folder))
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(
            f"cannot read data set {cfg.dataset!r} from {folder}: {exc}\n"
            f"Download it again: python tools/download_hf_dataset.py --name {cfg.dataset}"
        ) from None
    splits = dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}
    if cfg.train_split not in splits:
        raise DataError(
            f"data set {cfg.dataset!r} has no split {cfg.train_split!r}; "
            f"available: {', '.join(splits)}"
        )
    train_ds = splits[cfg.train_split]
    if cfg.text_column not in train_ds.column_names:
        raise DataError(
            f"data set {cfg.dataset!r} has no column {cfg.text_column!r}; "
            f"columns: {', '.join(train_ds.column_names)}"
        )
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", cfg.dataset)
    if cfg.val_split in splits:
        val_ds = splits[cfg.val_split]
        val_note = cfg.val_split
    else:
        n = len(train_ds)
        held = cfg.max_val_documents or min(max(1, int(n * _HOLDOUT_FRACTION)), _HOLDOUT_MAX)
        if n <= held:
            raise DataError(f"data set {cfg.dataset!r} is too small to hold out {held} documents")
        val_ds = train_ds.select(range(n - held, n))
        train_ds = train_ds.select(range(n - held))
        val_note = f"last {held} of {cfg.train_split} (no {cfg.val_split!r} split)"
    if cfg.max_train_documents is not None:
        train_ds = train_ds.select(range(min(cfg.max_train_documents, len(train_ds))))
    if cfg.max_val_documents is not None and len(val_ds) > cfg.max_val_documents:
        val_ds = val_ds.select(range(cfg.max_val_documents))

    def make(ds: Any, split: str, note: str) -> _Split:
        params = {
            "folder": str(folder),
            "fingerprint": getattr(ds, "_fingerprint", None),
            "column": cfg.text_column,
            "split": note,
            "documents": len(ds),
        }
        return _Split(
            f"{slug}-{split}", params, lambda: _iter_column(ds, cfg.text_column), len(ds), note
        )

    train = make(train_ds, "train", cfg.train_split)
    val = make(val_ds, "val", val_note)
    return train, val, f"data set {cfg.dataset} ({len(train_ds)} train / {len(val_ds)} val docs)"


def split_text_documents(text: str) -> list[str]:
    """Documents of a plain text: split on ``<|endoftext|>`` if present, else on blank lines.

    Args:
        text: the file's content.

    Returns:
        The non-empty documents, stripped of surrounding whitespace.
    """
    parts = text.split(EOT) if EOT in text else re.split(r"\n[ \t]*\n", text)
    return [p.strip() for p in parts if p.strip()]


def _resolve_file(name: str) -> Path:
    from common.paths import repo_root

    path = Path(name).expanduser()
    for candidate in (path, repo_root() / path):
        if candidate.is_file():
            return candidate.resolve()
    raise DataError(f"text file not found: {name}")


def _text_splits(cfg: DataConfig) -> tuple[_Split, _Split, str]:
    if not cfg.train_files:
        raise DataError('data.source is "text" but data.train_files is empty')
    train_paths = [_resolve_file(f) for f in cfg.train_files]
    val_paths = [_resolve_file(f) for f in cfg.val_files]

    def read(paths: list[Path]) -> list[str]:
        return [doc for p in paths for doc in split_text_documents(p.read_text(encoding="utf-8"))]

    def stat(paths: list[Path]) -> list[Any]:
        return [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]

    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", train_paths[0].stem)
    train_docs = read(train_paths)
    if val_paths:
        val_docs = read(val_paths)
        val_note = "val files"
    else:
        held = cfg.max_val_documents or min(
            max(1, int(len(train_docs) * _HOLDOUT_FRACTION)), _HOLDOUT_MAX
        )
        if len(train_docs) <= held:
            raise DataError(
                f"{len(train_docs)} document(s) in {cfg.train_files}: too few to hold out "
                f"{held} for validation; give data.val_files"
            )
        train_docs, val_docs = train_docs[:-held], train_docs[-held:]
        val_note = f"last {held} train documents"
    if cfg.max_train_documents is not None:
        train_docs = train_docs[: cfg.max_train_documents]
    if cfg.max_val_documents is not None:
        val_docs = val_docs[: cfg.max_val_documents]
    common = {"train_files": stat(train_paths), "val_files": stat(val_paths)}
    train = _Split(
        f"text-{slug}-train",
        {**common, "documents": len(train_docs)},
        lambda: train_docs,
        len(train_docs),
        "train",
    )
    val = _Split(
        f"text-{slug}-val",
        {**common, "documents": len(val_docs), "note": val_note},
        lambda: val_docs,
        len(val_docs),
        val_note,
    )
    names = ", ".join(p.name for p in train_paths)
    return train, val, f"text files {names} ({len(train_docs)} train / {len(val_docs)} val docs)"


# --------------------------------------------------------------------------- tokenizers
def _sample_texts(documents: Iterable[str], max_chars: int) -> Iterator[str]:
    total = 0
    for doc in documents:
        yield doc
        total += len(doc)
        if total >= max_chars:
            return


def _wait_for(path: Path, what: str) -> None:
    start = time.monotonic()
    while not path.is_file():
        if time.monotonic() - start > WAIT_TIMEOUT_S:
            raise DataError(f"timed out waiting for rank 0 to write {what} ({path})")
        time.sleep(0.5)


def _get_tokenizer(cfg: DataConfig, train: _Split, rank: int) -> Tokenizer:
    if cfg.tokenizer != "bpe":
        return load_tokenizer(cfg.tokenizer)
    key = f"bpe{cfg.vocab_size}-{train.key}-{BPE_SAMPLE_CHARS}"
    folder = get_cache_dir() / "tokenizers" / key
    path = folder / TOKENIZER_FILE
    if not path.is_file():
        if rank == 0:
            train_bpe_tokenizer(
                _sample_texts(train.documents(), BPE_SAMPLE_CHARS), cfg.vocab_size, folder
            )
        else:
            _wait_for(path, "the BPE tokenizer")
    return load_tokenizer(folder)


# ------------------------------------------------------------------------------ prepare
def _token_file(
    split: _Split, tokenizer: Tokenizer, cfg: DataConfig, rank: int, description: str
) -> TokenFile:
    folder = get_cache_dir() / "tokens" / f"{split.key}-{tokenizer.fingerprint[:12]}"
    path = folder / "tokens.bin"
    split.facts.update({"split": split.label, **split.params})
    found = TokenFile.open_if_valid(path, tokenizer.fingerprint)
    if found is not None:
        return found
    if rank != 0:
        return wait_for_token_file(path, tokenizer.fingerprint, timeout=WAIT_TIMEOUT_S)
    return build_token_file(
        split.documents(),
        tokenizer,
        path,
        num_documents=split.num_documents,
        num_workers=cfg.num_workers or None,
        description=description,
        metadata=split.facts,
    )


def _first_document(tokens: TokenFile, tokenizer: Tokenizer, max_chars: int) -> str:
    head = [int(t) for t in tokens.tokens[: 4 * max_chars]]
    if tokenizer.eot_token_id in head:
        head = head[: head.index(tokenizer.eot_token_id)]
    return tokenizer.decode(head)[:max_chars]


def prepare_data(
    data_cfg: DataConfig,
    context_length: int,
    batch_size: int,
    *,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    eval_batch_size: int | None = None,
) -> PreparedData:
    """Build (or reuse) the tokenizer and token files of ``data_cfg`` and make the loaders.

    Args:
        data_cfg: the ``data`` section of the config.
        context_length: tokens per training/validation window.
        batch_size: training sequences per step on this process.
        seed: seed of the training batch order.
        rank: this process's rank (only rank 0 writes caches).
        world_size: number of processes; training batches and validation batches are sharded.
        eval_batch_size: validation sequences per batch (default ``batch_size``).

    Returns:
        The :class:`PreparedData`.

    Raises:
        DataError: unknown source, missing data set or files (the message says how to get them),
            or too little text for one window.
    """
    sources = {"synthetic": _synthetic_splits, "dataset": _dataset_splits, "text": _text_splits}
    if data_cfg.source not in sources:
        raise DataError(
            f"unknown data.source {data_cfg.source!r}; choose one of {', '.join(sources)}"
        )
    train, val, what = sources[data_cfg.source](data_cfg)
    tokenizer = _get_tokenizer(data_cfg, train, rank)
    train_file = _token_file(train, tokenizer, data_cfg, rank, "tokenizing train")
    val_file = _token_file(val, tokenizer, data_cfg, rank, "tokenizing val")
    for name, file in (("training", train_file), ("validation", val_file)):
        if file.num_tokens < context_length + 1:
            raise DataError(
                f"the {name} split has {file.num_tokens} tokens, fewer than context_length + 1 "
                f"= {context_length + 1}; use more data or a shorter context"
            )
    train_loader = RandomWindowLoader(
        train_file, batch_size, context_length, seed, rank=rank, world_size=world_size
    )
    val_loader = SequentialLoader(
        val_file, eval_batch_size or batch_size, context_length, rank=rank, world_size=world_size
    )
    description = (
        f"{what}; tokenizer {tokenizer.name} ({tokenizer.vocab_size} tokens); "
        f"{train_file.num_tokens:,} train / {val_file.num_tokens:,} val tokens"
    )
    return PreparedData(
        tokenizer=tokenizer,
        train_loader=train_loader,
        val_loader=val_loader,
        description=description,
        train_tokens=train_file.num_tokens,
        val_tokens=val_file.num_tokens,
        val_text_sample=_first_document(val_file, tokenizer, _SAMPLE_CHARS),
        train_file=train_file,
        val_file=val_file,
        floor_bits_per_byte=val_file.floor_bits_per_byte,
    )
