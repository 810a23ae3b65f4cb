"""Token files on disk and the loaders that turn them into training and validation batches.

A token file is a flat array of token ids (``uint16`` when the vocabulary fits, else ``uint32``)
with ``<|endoftext|>`` after every document, next to a JSON sidecar::

    train.bin          the tokens (np.memmap)
    train.json         dtype, num_tokens, num_bytes, num_documents, tokenizer fingerprint, ...
    train.bytes.npy    UTF-8 length of each token id (only for byte-level tokenizers)
    tokenizer.json     the tokenizer that produced it

The sidecar is written last and the ``.bin`` is renamed into place before it, so a crash at any
moment never leaves a file that looks complete. ``num_bytes`` counts the UTF-8 bytes of the
documents plus the text of the separators (``len("<|endoftext|>")`` each), which is exactly the
sum of the token byte lengths for byte-level tokenizers: that is how :class:`SequentialLoader`
reports the exact bytes each validation batch covers.

Batches are ``(input_ids, labels)`` int64 tensors ``[B, T]`` with labels already shifted:
``labels[:, t]`` is the token after ``input_ids[:, t]``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import multiprocessing as mp
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common.data.tokenizers import EOT, DataError, Tokenizer
from common.utils.atomic import atomic_write, atomic_write_text

if TYPE_CHECKING:
    import torch

FORMAT_VERSION = 1


def _sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _bytes_table_path(path: Path) -> Path:
    return path.with_suffix(".bytes.npy")


def token_dtype(vocab_size: int) -> np.dtype:
    """``uint16`` when every id fits in 16 bits, else ``uint32``."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


class TokenFile:
    """A memory-mapped token file and its sidecar metadata.

    Attributes:
        path: the ``.bin`` file.
        meta: the sidecar (``dtype``, ``num_tokens``, ``num_bytes``, ``num_documents``,
            ``tokenizer_fingerprint``, ``vocab_size``, ``eot_token_id``, ``exact_bytes``, ...).
        tokens: the ids as a read-only ``np.memmap``.
        token_bytes: UTF-8 length of each token id when exact (byte-level tokenizers), else None.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        sidecar = _sidecar_path(self.path)
        try:
            self.meta: dict[str, Any] = json.loads(sidecar.read_text())
        except FileNotFoundError:
            raise DataError(f"token file is incomplete or missing (no {sidecar})") from None
        dtype = np.dtype(self.meta["dtype"])
        expected = self.meta["num_tokens"] * dtype.itemsize
        if not self.path.is_file() or self.path.stat().st_size != expected:
            raise DataError(f"token file {self.path} does not match its sidecar; delete it")
        self.tokens: np.ndarray = np.memmap(self.path, dtype=dtype, mode="r")
        table = _bytes_table_path(self.path)
        self.token_bytes: np.ndarray | None = (
            np.load(table) if self.meta.get("exact_bytes") and table.is_file() else None
        )

    @classmethod
    def open_if_valid(cls, path: str | Path, fingerprint: str) -> TokenFile | None:
        """The token file at ``path`` if it is complete and built by the tokenizer ``fingerprint``.

        Args:
            path: the ``.bin`` path.
            fingerprint: the expected tokenizer fingerprint.

        Returns:
            The opened file, or None when missing, incomplete or stale.
        """
        try:
            meta = json.loads(_sidecar_path(Path(path)).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if meta.get("format") != FORMAT_VERSION or meta.get("tokenizer_fingerprint") != fingerprint:
            return None
        try:
            return cls(path)
        except DataError:
            return None

    @property
    def num_tokens(self) -> int:
        return int(self.meta["num_tokens"])

    @property
    def num_bytes(self) -> int:
        return int(self.meta["num_bytes"])

    @property
    def floor_bits_per_byte(self) -> float | None:
        """Entropy of the text in bits per byte when its source knows it (the synthetic corpus:
        ``source.entropy_bits`` over ``num_bytes``), else None."""
        bits = self.meta.get("source", {}).get("entropy_bits")
        if bits is None or not self.num_bytes:
            return None
        return float(bits) / self.num_bytes

    @property
    def num_documents(self) -> int:
        return int(self.meta["num_documents"])

    @property
    def dtype(self) -> np.dtype:
        return self.tokens.dtype

    def __len__(self) -> int:
        return self.num_tokens

    def __getitem__(self, index: Any) -> Any:
        return self.tokens[index]

    def __repr__(self) -> str:
        return (
            f"TokenFile({str(self.path)!r}, num_tokens={self.num_tokens}, "
            f"num_documents={self.num_documents}, dtype={self.dtype})"
        )


# -------------------------------------------------------------------------------- building
_WORKER: dict[str, Any] = {}


def _init_worker(
    tokenizer_json: str, eot_id: int, eot_bytes: int, dtype: str, table: np.ndarray | None
) -> None:
    from tokenizers import Tokenizer as HFTokenizer

    _WORKER.update(
        backend=HFTokenizer.from_str(tokenizer_json),
        eot=eot_id,
        eot_bytes=eot_bytes,
        dtype=dtype,
        table=table,
    )


def _encode_chunk(docs: list[str]) -> tuple[bytes, int, int, int, int]:
    """Encode documents, each followed by EOT; returns (raw ids, tokens, docs, bytes, table sum)."""
    backend, eot = _WORKER["backend"], _WORKER["eot"]
    encodings = backend.encode_batch(docs, add_special_tokens=False)
    pieces = []
    for enc in encodings:
        pieces.append(enc.ids)
        pieces.append([eot])
    ids = np.fromiter(
        (i for piece in pieces for i in piece), dtype=np.int64, count=sum(map(len, pieces))
    )
    eot_bytes = _WORKER["eot_bytes"]
    num_bytes = sum(len(d.encode("utf-8")) for d in docs) + eot_bytes * len(docs)
    table = _WORKER["table"]
    table_sum = int(table[ids].sum()) if table is not None else -1
    return ids.astype(_WORKER["dtype"]).tobytes(), len(ids), len(docs), num_bytes, table_sum


def _chunks(documents: Iterable[str], chunk_size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for doc in documents:
        if not doc:
            continue
        chunk.append(doc)
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def default_num_workers() -> int:
    """``min(4, cpu_count)``."""
    return max(1, min(4, os.cpu_count() or 1))


def build_token_file(
    documents: Iterable[str],
    tokenizer: Tokenizer,
    path: str | Path,
    *,
    num_documents: int | None = None,
    num_workers: int | None = None,
    chunk_size: int = 512,
    progress: bool = True,
    description: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> TokenFile:
    """Tokenize ``documents`` into a token file at ``path`` (cached: rebuilt only when stale).

    Each non-empty document is followed by ``tokenizer.eot_token_id``. Work is split into chunks
    of ``chunk_size`` documents encoded by a pool of ``num_workers`` processes, with a progress
    bar; the result is written atomically.

    Args:
        documents: the texts (any iterable; not consumed on a cache hit).
        tokenizer: the tokenizer; its fingerprint is recorded and checked on reuse.
        path: the ``.bin`` path (sidecar ``.json`` and ``tokenizer.json`` go beside it).
        num_documents: number of documents, for the progress bar only.
        num_workers: processes (None or 0: ``min(4, cpu_count)``; 1: in this process).
        chunk_size: documents per task.
        progress: show a tqdm progress bar.
        description: progress bar label.
        metadata: extra JSON-serializable facts stored in the sidecar under ``"source"``.

    Returns:
        The opened :class:`TokenFile`.

    Raises:
        DataError: no non-empty documents.
    """
    from tqdm.auto import tqdm

    path = Path(path)
    cached = TokenFile.open_if_valid(path, tokenizer.fingerprint)
    if cached is not None:
        return cached
    path.parent.mkdir(parents=True, exist_ok=True)
    _sidecar_path(path).unlink(missing_ok=True)  # from here on the old file is not "complete"

    dtype = token_dtype(tokenizer.vocab_size)
    table = tokenizer.token_byte_lengths() if tokenizer.is_byte_level else None
    workers = num_workers or default_num_workers()
    eot_bytes = len(EOT.encode("utf-8"))  # one separator = the same bytes for every tokenizer
    init_args = (tokenizer.backend.to_str(), tokenizer.eot_token_id, eot_bytes, dtype.str, table)
    totals = [0, 0, 0, 0]  # tokens, documents, bytes, table sum
    bar = tqdm(
        total=num_documents, unit="doc", desc=description or f"tokenizing {path.name}",
        disable=not progress, leave=False, dynamic_ncols=True,
    )  # fmt: skip

    def consume(result: tuple[bytes, int, int, int, int], out: Any) -> None:
        raw, n_tok, n_doc, n_bytes, t_sum = result
        out.write(raw)
        totals[0] += n_tok
        totals[1] += n_doc
        totals[2] += n_bytes
        totals[3] += t_sum
        bar.update(n_doc)

    def write_tokens(out: Any) -> None:
        chunks = _chunks(documents, chunk_size)
        if workers <= 1:
            _init_worker(*init_args)
            for chunk in chunks:
                consume(_encode_chunk(chunk), out)
        else:
            _run_pool(chunks, workers, init_args, lambda r: consume(r, out))
        if totals[0] == 0:
            raise DataError(f"no documents to tokenize for {path}")

    try:
        atomic_write(path, write_tokens)
    finally:
        bar.close()
        _WORKER.clear()
    exact = table is not None and totals[3] == totals[2]
    if exact:
        atomic_write(
            _bytes_table_path(path),
            lambda fh: np.save(fh, table.astype(np.int32)),  # type: ignore[union-attr]
        )

    meta = {
        "format": FORMAT_VERSION,
        "dtype": dtype.name,
        "num_tokens": totals[0],
        "num_documents": totals[1],
        "num_bytes": totals[2],
        "exact_bytes": exact,
        "tokenizer_fingerprint": tokenizer.fingerprint,
        "tokenizer_name": tokenizer.name,
        "vocab_size": tokenizer.vocab_size,
        "eot_token_id": tokenizer.eot_token_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": metadata or {},
    }
    tokenizer.save(path.parent)
    atomic_write_text(_sidecar_path(path), json.dumps(meta, indent=2))
    return TokenFile(path)


def _run_pool(
    chunks: Iterator[list[str]],
    workers: int,
    init_args: tuple[Any, ...],
    consume: Any,
) -> None:
    """Encode chunks in ``workers`` processes, in order, a bounded number of chunks at a time."""
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    # A forked child must not use the parent's Rust thread pool; saying so up front also keeps
    # the tokenizers library from printing its fork warning.
    previous = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    try:
        with ctx.Pool(workers, initializer=_init_worker, initargs=init_args) as pool:
            wave: list[list[str]] = []
            for chunk in chunks:
                wave.append(chunk)
                if len(wave) >= 4 * workers:
                    for result in pool.imap(_encode_chunk, wave):
                        consume(result)
                    wave = []
            for result in pool.imap(_encode_chunk, wave):
                consume(result)
    finally:
        if previous is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = previous


def wait_for_token_file(
    path: str | Path, fingerprint: str, *, timeout: float | None = None, poll: float = 0.5
) -> TokenFile:
    """Wait until another process has finished building the token file (its sidecar appears).

    Args:
        path: the ``.bin`` path.
        fingerprint: the tokenizer fingerprint the file must have.
        timeout: seconds before giving up (None: wait indefinitely).
        poll: seconds between checks.

    Returns:
        The opened file.

    Raises:
        DataError: the timeout passed.
    """
    start = time.monotonic()
    while True:
        found = TokenFile.open_if_valid(path, fingerprint)
        if found is not None:
            return found
        if timeout is not None and time.monotonic() - start > timeout:
            raise DataError(f"timed out after {timeout:.0f}s waiting for {path} (built by rank 0)")
        time.sleep(poll)


# --------------------------------------------------------------------------------- loaders
def as_token_array(tokens: TokenFile | np.ndarray | Any) -> np.ndarray:
    """The ids of a :class:`TokenFile`, array or tensor as a numpy array (a memmap stays one)."""
    if isinstance(tokens, TokenFile):
        return tokens.tokens
    if hasattr(tokens, "numpy") and hasattr(tokens, "detach"):  # a torch tensor
        return tokens.detach().cpu().numpy()
    return np.asarray(tokens)


def _step_seed(seed: int, step: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _windows(array: np.ndarray, starts: np.ndarray, length: int) -> torch.Tensor:
    import torch

    index = starts.astype(np.int64)[:, None] + np.arange(length, dtype=np.int64)[None, :]
    return torch.from_numpy(np.asarray(array[index], dtype=np.int64))


class RandomWindowLoader:
    """Infinite training batches of random windows, identical across world sizes.

    At step ``i`` a ``torch.Generator`` seeded from ``(seed, i)`` draws the global batch of
    ``batch_size * world_size`` window offsets; this rank returns its slice
    ``[rank * batch_size, (rank + 1) * batch_size)``. A 2-process run therefore sees exactly the
    windows of a 1-process run with twice the batch, and resuming at step ``i`` only needs ``i``.

    Args:
        tokens: a :class:`TokenFile`, numpy array or 1-D tensor of token ids.
        batch_size: windows per step on this rank.
        context_length: tokens per window ``T`` (each window reads ``T + 1`` tokens).
        seed: the data seed.
        rank: this process's rank.
        world_size: number of processes.
    """

    def __init__(
        self,
        tokens: TokenFile | np.ndarray | Any,
        batch_size: int,
        context_length: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.tokens = as_token_array(tokens)
        if len(self.tokens) < context_length + 1:
            raise DataError(
                f"only {len(self.tokens)} tokens, fewer than context_length + 1 = "
                f"{context_length + 1}"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} out of range for world_size {world_size}")
        self.batch_size = batch_size
        self.context_length = context_length
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.step = 0

    def batch_at(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(input_ids, labels)`` batch of step ``step`` (does not advance the loader)."""
        import torch

        gen = torch.Generator()
        gen.manual_seed(_step_seed(self.seed, step))
        num_starts = len(self.tokens) - self.context_length
        starts = torch.randint(num_starts, (self.batch_size * self.world_size,), generator=gen)
        mine = starts[self.rank * self.batch_size : (self.rank + 1) * self.batch_size].numpy()
        data = _windows(self.tokens, mine, self.context_length + 1)
        return data[:, :-1].contiguous(), data[:, 1:].contiguous()

    def __iter__(self) -> RandomWindowLoader:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.batch_at(self.step)
        self.step += 1
        return batch

    def state_dict(self) -> dict[str, int]:
        """``{"step": i}``: the next batch drawn will be step ``i``'s."""
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict`."""
        self.step = int(state["step"])

    def __repr__(self) -> str:
        return (
            f"RandomWindowLoader(tokens={len(self.tokens)}, batch_size={self.batch_size}, "
            f"context_length={self.context_length}, seed={self.seed}, rank={self.rank}, "
            f"world_size={self.world_size}, step={self.step})"
        )


class SequentialLoader:
    """Deterministic validation batches of consecutive, non-overlapping windows.

    Window ``k`` is ``tokens[kT : kT + T + 1]`` (inputs and shifted labels), so every token
    after the first is predicted exactly once. Global batch ``j`` holds windows
    ``[jB, (j + 1)B)`` (the last one may be smaller); with several processes rank ``r`` gets
    batches ``r, r + world_size, ...``. ``max_batches`` keeps the first global batches only.

    Bytes covered: ``batch_num_bytes[j]`` is the number of UTF-8 bytes of text of the labels of
    this rank's ``j``-th batch. It is exact for token files of byte-level tokenizers (per-token
    byte lengths); otherwise ``bytes_per_token`` (or the file's average) estimates it.

    Args:
        tokens: a :class:`TokenFile`, numpy array or 1-D tensor of token ids.
        batch_size: windows per batch.
        context_length: tokens per window ``T``.
        max_batches: cap on the number of global batches.
        rank: this process's rank.
        world_size: number of processes.
        bytes_per_token: average bytes per token to use instead of the exact count.
    """

    def __init__(
        self,
        tokens: TokenFile | np.ndarray | Any,
        batch_size: int,
        context_length: int,
        *,
        max_batches: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        bytes_per_token: float | None = None,
    ) -> None:
        self.tokens = as_token_array(tokens)
        self.batch_size = batch_size
        self.context_length = context_length
        self.rank = rank
        self.world_size = world_size
        num_windows = (len(self.tokens) - 1) // context_length
        if num_windows < 1:
            raise DataError(
                f"only {len(self.tokens)} tokens, fewer than context_length + 1 = "
                f"{context_length + 1}"
            )
        num_global = math.ceil(num_windows / batch_size)
        if max_batches is not None:
            num_global = min(num_global, max_batches)
        self.num_windows = min(num_windows, num_global * batch_size)
        self._batches = list(range(rank, num_global, world_size))
        window_bytes = self._compute_window_bytes(tokens, bytes_per_token)
        self._batch_bytes: list[int] | None = (
            None
            if window_bytes is None
            else [
                int(round(float(window_bytes[w.start : w.stop].sum())))
                for w in map(self._batch_windows, self._batches)
            ]
        )

    def _compute_window_bytes(
        self, tokens: Any, bytes_per_token: float | None
    ) -> np.ndarray | None:
        T, n = self.context_length, self.num_windows
        if bytes_per_token is None and isinstance(tokens, TokenFile):
            if tokens.token_bytes is not None:
                labels = np.asarray(self.tokens[1 : n * T + 1], dtype=np.int64)
                return tokens.token_bytes[labels].reshape(n, T).sum(axis=1).astype(np.float64)
            bytes_per_token = tokens.num_bytes / tokens.num_tokens
        if bytes_per_token is None:
            return None
        return np.full(n, T * bytes_per_token)

    def _batch_windows(self, j: int) -> range:
        return range(j * self.batch_size, min((j + 1) * self.batch_size, self.num_windows))

    def __len__(self) -> int:
        return len(self._batches)

    def first_batches(self, n: int) -> SequentialLoader:
        """This rank's share of the first ``n`` global batches (the same windows whatever the
        number of processes: ``eval_batches`` counts global batches)."""
        keep = [i for i, j in enumerate(self._batches) if j < n]
        part = copy.copy(self)
        part._batches = [self._batches[i] for i in keep]
        if self._batch_bytes is not None:
            part._batch_bytes = [self._batch_bytes[i] for i in keep]
        return part

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        T = self.context_length
        for j in self._batches:
            windows = self._batch_windows(j)
            starts = np.arange(windows.start, windows.stop, dtype=np.int64) * T
            data = _windows(self.tokens, starts, T + 1)
            yield data[:, :-1].contiguous(), data[:, 1:].contiguous()

    @property
    def batch_num_bytes(self) -> list[int] | None:
        """Bytes of text covered by the labels of each of this rank's batches (None: unknown)."""
        return None if self._batch_bytes is None else list(self._batch_bytes)

    @property
    def num_bytes(self) -> int | None:
        """Bytes of text covered by all of this rank's batches (None: unknown)."""
        per_batch = self.batch_num_bytes
        return None if per_batch is None else sum(per_batch)

    @property
    def num_tokens(self) -> int:
        """Label tokens in this rank's batches."""
        return sum(len(self._batch_windows(j)) for j in self._batches) * self.context_length

    def __repr__(self) -> str:
        return (
            f"SequentialLoader(batches={len(self)}, batch_size={self.batch_size}, "
            f"context_length={self.context_length}, rank={self.rank}, "
            f"world_size={self.world_size})"
        )
