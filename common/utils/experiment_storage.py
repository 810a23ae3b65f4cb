"""Experiment store: every run's results as immutable Parquet files, queried in SQL with DuckDB.

Writing
    ``save_experiment(name, results, metadata)`` writes one Parquet file per call. Each stored row
    holds ``experiment_name``, the result columns, the metadata (nested dicts flattened with
    ``FLATTEN_SEPARATOR``: ``{"training": {"lr": 1e-3}}`` becomes the column ``training__lr``;
    top-level keys are plain columns) and the provenance columns ``saved_at`` (UTC, naive
    ``TIMESTAMP``), ``git_commit``, ``git_dirty`` and ``host``. NaN values are stored as NULL.

Querying
    ``connect()`` returns an in-memory DuckDB connection with the views ``experiments`` (every row
    of every experiment, columns unioned by name), ``experiment_summary`` (one row per experiment:
    ``experiment_name``, ``rows``, ``first_saved_at``, ``last_saved_at``, then the latest
    provenance and metadata values) and ``experiment_columns`` (``column_name``, ``kind`` in
    ``name | result | metadata | provenance``, ``column_type``). An empty store gives the same
    views with no rows; ``experiment_names(con) == []`` is the signal. The ``fetch_*`` functions
    and ``run_readonly_sql`` return ``QueryResult(columns, rows)`` without pandas; the
    ``*_experiments`` functions and ``query_experiments`` return pandas DataFrames built from the
    same SQL.

Layout (the store folder, flat)
    ``s-<id>.parquet``: one save, immutable. ``c-<saves:08d>-<id>.parquet``: a compacted file,
    immutable, holding the rows of many saves; its Parquet key-value metadata lists the save ids
    it holds and the compacted files it replaces (``inputs``). Every row has a hidden
    ``_rx_save`` column naming its save. ``.tmp-*``: files being written. Each file is written
    under a temporary name in the same folder, fsynced and renamed into place (``os.rename`` is
    atomic), so nobody ever sees a partial file under a final name. No file locks are used:
    several processes and machines may share the folder.

Reading
    A reader lists the folder and takes each save from exactly one file, the highest-ranked one
    holding it (compacted files rank above single saves; among compacted files more saves rank
    higher, then the name). It reads the small footers of compacted files from the top rank down;
    files named in the ``inputs`` of a file already read, and single-save files whose save is
    already held, are skipped unopened, so a query opens about as many files as the store has
    live ones. If two compactions raced and wrote overlapping files, the lower-ranked one is read
    with a filter on ``_rx_save``: no row is lost or doubled. ``mode="overwrite"`` records a
    marker (experiment, time) in the new file's metadata; rows of that experiment saved earlier
    are filtered out, and dropped by later compactions.

Compaction
    A process checks after every ``AUTO_COMPACT_EVERY`` of its saves (and at random after others)
    whether ``COMPACTION_FANIN`` files of one size tier exist, and merges them into one file of
    the next tier (an LSM-like tiered scheme: O(log N) live files, each row rewritten O(log N)
    times). ``compact_store()`` merges everything into one file. A file is deleted only when all
    its saves are in a strictly higher-ranked file that has existed for ``DELETE_GRACE_S``
    seconds: readers that listed the folder earlier still find their files, and because every
    deletion points to a higher rank, the top-ranked holder of a save is never deleted, whatever
    cleaners on other machines do at the same time. Readers re-list and retry when a file
    vanished anyway. A crash (even SIGKILL) at any point leaves at worst a stale ``.tmp-*`` file
    (removed after ``TMP_MAX_AGE_S``) or a redundant copy of some saves (ignored by rank, deleted
    later): stored data is never hidden, doubled or corrupted. An advisory ``.compacting`` file
    (``O_EXCL``) keeps two processes from usually doing the same merge; correctness never depends
    on it.

Damaged files
    A file that is truncated, foreign (not written here) or unreadable is skipped with a
    ``warnings.warn`` naming it; queries answer from the rest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import difflib
import enum
import functools
import json
import math
import os
import random
import re
import secrets
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import duckdb

from common.paths import get_experiments_dir
from common.utils.provenance import git_info, hostname

if TYPE_CHECKING:
    import pandas as pd

FLATTEN_SEPARATOR = "__"
"""Separator joining nested metadata keys into one column name (``training__lr``)."""

PROVENANCE_COLUMNS = ("saved_at", "git_commit", "git_dirty", "host")
"""Columns every stored row carries besides ``experiment_name``, results and metadata."""

COMPACTION_FANIN = 4
"""Files of one size tier merged together by automatic compaction."""

DELETE_GRACE_S = 300.0
"""Seconds a file superseded by compaction stays on disk for readers that listed it earlier."""

AUTO_COMPACT_EVERY = 4
"""A process checks whether the store needs compacting (a folder listing) after this many of its
own saves, and after any save with probability ``AUTO_COMPACT_PROBABILITY`` (so that many
processes saving a few times each still trigger it, without coordinating)."""

AUTO_COMPACT_PROBABILITY = 0.1

TMP_MAX_AGE_S = 3600.0
"""Unfinished temporary files older than this are left-overs of crashed writers and removed."""

FSYNC_DIRECTORY = False
"""Also fsync the folder after each rename. Files are always fsynced before they get their final
name, so no crash or power loss exposes a partial file; without this, a power loss (not a process
crash) may forget the newest saves. Costs one more disk flush per save."""

_FORMAT = "research-experiments/1"
_KV_KEY = "research_experiments"
_META_PREFIX = b'{"format":"' + _FORMAT.encode() + b'"'
_SAVE_COL = "_rx_save"
_NAME_COL = "experiment_name"
_RESERVED = {_NAME_COL, *PROVENANCE_COLUMNS, _SAVE_COL}
_MAGIC = b"PAR1"
_FOOTER_PROBE = 64 * 1024
_CLAIM_NAME = ".compacting"
_CLAIM_MAX_AGE_S = 600.0
_MAX_NAME_LENGTH = 200
_NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
)
_INDEX_COLUMNS = ("step", "epoch")

# Metric direction by name: whole names and name tokens (split on anything not a letter or digit).
_LOWER_IS_BETTER = {
    "loss", "nll", "perplexity", "ppl", "bpb", "bpc", "bits_per_byte", "bits_per_char", "error",
    "err", "grad_norm", "gradnorm", "mse", "mae", "rmse", "wer", "cer", "ter", "latency",
    "elapsed", "elapsed_s", "time", "seconds", "regret", "kl", "divergence", "ece",
}  # fmt: skip
_HIGHER_IS_BETTER = {
    "acc", "accuracy", "f1", "bleu", "rouge", "rouge1", "rouge2", "rougel", "score", "precision",
    "recall", "auc", "auroc", "auprc", "map", "mrr", "ndcg", "reward", "return", "exact_match",
    "em", "r2", "throughput", "tokens_per_s", "tokens_per_sec", "samples_per_s", "win_rate",
    "pass", "top1", "top5", "iou", "dice", "psnr", "ssim",
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# errors and results


class ExperimentStoreError(Exception):
    """Any failure of the experiment store; the message says what went wrong and what exists."""


class InvalidExperimentNameError(ExperimentStoreError, ValueError):
    """An experiment name that is empty, too long or not a safe identifier."""


class InvalidResultsError(ExperimentStoreError, ValueError):
    """Results or metadata that cannot be stored (no rows, clashing or reserved column names)."""


class StoreNotFoundError(ExperimentStoreError):
    """The store folder does not exist or cannot be read."""


class UnknownMetricError(ExperimentStoreError, KeyError):
    """A metric that is not a numeric column of the store; the message lists the metrics."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownExperimentError(ExperimentStoreError, KeyError):
    """An experiment name that is not in the store; the message suggests close names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MetricDirectionError(ExperimentStoreError, ValueError):
    """Whether lower or higher is better cannot be told from a metric's name."""


class ReadOnlyViolation(ExperimentStoreError):
    """A statement given to the read-only SQL entry points would change or write something."""


class QueryError(ExperimentStoreError):
    """DuckDB refused a query; the message has DuckDB's text plus the tables and columns."""


class QueryResult(NamedTuple):
    """A query's answer without pandas: column names and rows (tuples)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


# --------------------------------------------------------------------------------------------
# small helpers


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def validate_experiment_name(name: object) -> str:
    """Check that ``name`` is a safe experiment name and return it.

    Args:
        name: the proposed name.

    Returns:
        The name, unchanged.

    Raises:
        InvalidExperimentNameError: empty, longer than 200 characters, with surrounding
            whitespace, a path separator, ``..`` or a control character.
    """
    if not isinstance(name, str):
        raise InvalidExperimentNameError(
            f"experiment name must be a string, got {type(name).__name__}"
        )
    problem = None
    if not name:
        problem = "it is empty"
    elif len(name) > _MAX_NAME_LENGTH:
        problem = f"it is longer than {_MAX_NAME_LENGTH} characters"
    elif name != name.strip():
        problem = "it starts or ends with whitespace"
    elif "/" in name or "\\" in name:
        problem = "it contains a path separator"
    elif ".." in name:
        problem = "it contains '..'"
    elif _CONTROL_RE.search(name):
        problem = "it contains a control character"
    if problem:
        raise InvalidExperimentNameError(
            f"invalid experiment name {name!r}: {problem}; use letters, digits and "
            "characters like '-', '_', '.', ':' (e.g. 'llm-tiny_lr3e-4')"
        )
    return name


def flatten_metadata(
    metadata: Mapping[str, Any] | Any | None, separator: str = FLATTEN_SEPARATOR
) -> dict[str, Any]:
    """Flatten nested metadata into column name -> scalar.

    Nested mappings (and dataclass instances such as a ``Config``) become ``outer__inner`` keys;
    lists and tuples become JSON text; ``None`` values and empty mappings are left out (a missing
    column reads as NULL).

    Args:
        metadata: a mapping or dataclass instance, or None.
        separator: joins nested keys.

    Returns:
        An ordered dict of column name to bool, int, float, str, date or datetime.

    Raises:
        InvalidResultsError: two keys flatten to the same column, or a key is empty.
    """
    out: dict[str, Any] = {}
    if metadata is None:
        return out

    def visit(prefix: str, value: Any) -> None:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        if isinstance(value, Mapping):
            for key, sub in value.items():
                key = str(key.value if isinstance(key, enum.Enum) else key)
                if not key:
                    raise InvalidResultsError(f"metadata has an empty key under {prefix!r}")
                visit(f"{prefix}{separator}{key}" if prefix else key, sub)
            return
        scalar = _metadata_scalar(value)
        if scalar is None:
            return
        if prefix.lower() in {k.lower() for k in out}:
            raise InvalidResultsError(f"metadata key {prefix!r} appears twice after flattening")
        out[prefix] = scalar

    if not (isinstance(metadata, Mapping) or dataclasses.is_dataclass(metadata)):
        raise InvalidResultsError(
            f"metadata must be a mapping or a dataclass, got {type(metadata).__name__}"
        )
    visit("", metadata)
    return out


def _metadata_scalar(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    if hasattr(value, "item") and callable(value.item) and type(value).__module__ == "numpy":
        value = value.item()
    if isinstance(value, bool | int | str | _dt.date):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list | tuple | set | frozenset):
        seq = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        return json.dumps(seq, default=str)
    return str(value)


class _Column(NamedTuple):
    name: str
    sql_type: str
    values: list[Any]


def _clean_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float):
        return None if value != value else value
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return _clean_value(value.item())
    try:
        if value != value:  # NaT, pandas.NA
            return None
    except (TypeError, ValueError):
        return None  # pandas.NA refuses a truth value
    return value


def _typed_column(name: str, values: list[Any]) -> _Column | None:
    """Pick the SQL type for a column of plain Python values (None = missing)."""
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return None
    if kinds == {bool}:
        return _Column(name, "BOOLEAN", values)
    if all(issubclass(k, int) for k in kinds):
        if all(-(2**63) <= v < 2**63 for v in values if v is not None):
            return _Column(name, "BIGINT", [None if v is None else int(v) for v in values])
        return _Column(name, "VARCHAR", [None if v is None else str(v) for v in values])
    if all(issubclass(k, int | float) for k in kinds):
        return _Column(name, "DOUBLE", [None if v is None else float(v) for v in values])
    if all(issubclass(k, str) for k in kinds):
        return _Column(name, "VARCHAR", values)
    if all(issubclass(k, _dt.datetime) for k in kinds):
        fixed = [
            (
                None
                if v is None
                else v.astimezone(_dt.timezone.utc).replace(tzinfo=None) if v.tzinfo else v
            )
            for v in values
        ]
        return _Column(name, "TIMESTAMP", fixed)
    if all(issubclass(k, _dt.date) and not issubclass(k, _dt.datetime) for k in kinds):
        return _Column(name, "DATE", values)
    text = [
        (
            None
            if v is None
            else json.dumps(v, default=str) if isinstance(v, list | tuple | dict) else str(v)
        )
        for v in values
    ]
    return _Column(name, "VARCHAR", text)


def _dataframe_columns(df: Any) -> dict[str, list[Any]]:
    if any(n is not None for n in df.index.names):
        df = df.reset_index()
    out: dict[str, list[Any]] = {}
    for name in df.columns:
        series = df[name]
        kind = getattr(series.dtype, "kind", "O")
        if kind in "iub":
            out[name] = series.tolist()
        elif kind == "f":
            out[name] = [None if v != v else v for v in series.tolist()]
        elif kind == "M":
            out[name] = [None if v != v else v.to_pydatetime() for v in series]
        else:
            out[name] = [_clean_value(v) for v in series.tolist()]
    return out


def _normalize_results(results: Any) -> list[_Column]:
    """Turn a DataFrame, a list of row dicts or a dict of columns into typed columns."""
    if hasattr(results, "columns") and hasattr(results, "dtypes") and hasattr(results, "index"):
        raw = _dataframe_columns(results)
    elif isinstance(results, Mapping):
        values = list(results.values())
        is_seq = [
            isinstance(v, Sequence) and not isinstance(v, str | bytes) or hasattr(v, "tolist")
            for v in values
        ]
        if values and all(is_seq):
            lists = [v.tolist() if hasattr(v, "tolist") else list(v) for v in values]
            lengths = {len(v) for v in lists}
            if len(lengths) > 1:
                raise InvalidResultsError(
                    f"result columns have different lengths: {sorted(lengths)}"
                )
            raw = {k: [_clean_value(x) for x in v] for k, v in zip(results, lists)}
        elif not any(is_seq):
            raw = {k: [_clean_value(v)] for k, v in results.items()}
        else:
            raise InvalidResultsError(
                "a results dict must map every column to a list of values, or every column to a "
                "single value (one row)"
            )
    elif isinstance(results, Iterable) and not isinstance(results, str | bytes):
        rows = list(results)
        if not all(isinstance(r, Mapping) for r in rows):
            raise InvalidResultsError("a results list must hold one dict per row")
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        raw = {k: [_clean_value(r.get(k)) for r in rows] for k in names}
    else:
        raise InvalidResultsError(
            "results must be a pandas DataFrame, a list of row dicts or a dict of columns, "
            f"got {type(results).__name__}"
        )
    n_rows = len(next(iter(raw.values()))) if raw else 0
    if n_rows == 0:
        raise InvalidResultsError("results have no rows; nothing to save")
    columns = []
    seen: set[str] = set()
    for name, values in raw.items():
        if not isinstance(name, str) or not name:
            raise InvalidResultsError(f"result column names must be non-empty strings: {name!r}")
        if name.lower() in seen:
            raise InvalidResultsError(f"result column {name!r} appears twice (case-insensitive)")
        seen.add(name.lower())
        column = _typed_column(name, values)
        if column is not None:
            columns.append(column)
    if not columns:
        raise InvalidResultsError("results have no non-null column; nothing to save")
    return columns


_SAVES_SINCE_CHECK = 0
_CLOCK_LOCK = threading.Lock()
_LAST_TIME_US = 0


def _next_time_us() -> int:
    """UTC microseconds, strictly increasing within this process (orders saves and overwrites)."""
    global _LAST_TIME_US
    with _CLOCK_LOCK:
        now = time.time_ns() // 1000
        _LAST_TIME_US = max(now, _LAST_TIME_US + 1)
        return _LAST_TIME_US


def _new_id(time_us: int) -> str:
    return f"{time_us:014x}-{secrets.token_hex(5)}"


def _save_id_of(name: str) -> str:
    return name[2:-8]


def _time_of_id(save_id: str) -> int:
    return int(save_id.split("-", 1)[0], 16)


_LOCAL = threading.local()


def _local_connection(kind: str, threads: int | None) -> duckdb.DuckDBPyConnection:
    """A private DuckDB connection per thread, process and use (connections do not survive
    fork)."""
    key = (kind, os.getpid())
    con = getattr(_LOCAL, kind, None)
    if con is None or con[0] != key:
        db = duckdb.connect(":memory:")
        if threads:
            db.execute(f"SET threads = {threads}")
        con = (key, db)
        setattr(_LOCAL, kind, con)
    return con[1]


def _writer_connection() -> duckdb.DuckDBPyConnection:
    # one thread: a save is small, and thread hand-offs cost more than they win on a busy host
    return _local_connection("save", 1)


def _compaction_connection() -> duckdb.DuckDBPyConnection:
    return _database(None).cursor()


def _fsync_path(path: Path | str, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories
    finally:
        os.close(fd)


def _resolve_dir(storage_dir: str | os.PathLike[str] | None, *, create: bool) -> Path:
    if storage_dir is None:
        return get_experiments_dir()
    root = Path(storage_dir).expanduser()
    if create:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreNotFoundError(f"cannot create the experiment store {root}: {exc}") from exc
    if not root.exists():
        raise StoreNotFoundError(f"no experiment store at {root}: the folder does not exist")
    if not root.is_dir():
        raise StoreNotFoundError(f"the experiment store {root} is not a folder")
    return root.resolve()


def _write_parquet(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    final_name: str,
    select_sql: str,
    params: list[Any] | None,
    meta: dict[str, Any],
) -> Path:
    """COPY a query into ``root/final_name`` atomically: temp file, fsync, rename."""
    tmp = root / f".tmp-{final_name}"
    kv = json.dumps(meta, separators=(",", ":"), ensure_ascii=True)
    assert kv.startswith(_META_PREFIX.decode())
    sql = (
        f"COPY ({select_sql}) TO {_quote_str(str(tmp))} (FORMAT parquet, COMPRESSION zstd, "
        f"KV_METADATA {{{_KV_KEY}: {_quote_str(kv)}}})"
    )
    try:
        con.execute(sql, params)
        _fsync_path(tmp)
        os.rename(tmp, root / final_name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if FSYNC_DIRECTORY:
        _fsync_path(root, directory=True)
    return root / final_name


# --------------------------------------------------------------------------------------------
# saving


def save_experiment(
    name: str,
    results: Any,
    metadata: Mapping[str, Any] | Any | None = None,
    *,
    storage_dir: str | os.PathLike[str] | None = None,
    mode: str = "append",
) -> Path:
    """Store result rows of experiment ``name`` as one new immutable Parquet file.

    Args:
        name: experiment name: non-empty, no path separators, ``..`` or control characters.
        results: a pandas DataFrame, a list of row dicts, a dict of columns, or a dict of scalars
            (one row). NaN is stored as NULL.
        metadata: run description (config, model name, ...) stored on every row; nested mappings
            and dataclasses are flattened with ``FLATTEN_SEPARATOR``.
        storage_dir: the store folder; default ``get_experiments_dir()``.
        mode: ``"append"`` adds rows to the experiment; ``"overwrite"`` replaces its earlier rows.

    Returns:
        The path of the file written.

    Raises:
        InvalidExperimentNameError: unsafe name.
        InvalidResultsError: no rows, clashing or reserved column names.
        ValueError: unknown mode.
    """
    validate_experiment_name(name)
    if mode not in ("append", "overwrite"):
        raise ValueError(f"mode must be 'append' or 'overwrite', got {mode!r}")
    columns = _normalize_results(results)
    meta = flatten_metadata(metadata)
    result_names = {c.name.lower(): c.name for c in columns}
    for key in list(result_names.values()) + list(meta):
        if key.lower() in _RESERVED or key.lower().startswith("_rx"):
            raise InvalidResultsError(
                f"column {key!r} is reserved by the store (reserved: "
                f"{', '.join(sorted(_RESERVED - {_SAVE_COL}))})"
            )
    clashes = [k for k in meta if k.lower() in result_names]
    if clashes:
        raise InvalidResultsError(
            f"metadata keys {clashes} are also result columns; rename one of them"
        )
    root = _resolve_dir(storage_dir, create=True)

    saved_at = _next_time_us()
    save_id = _new_id(saved_at)
    prov = git_info()
    select: list[str] = [f"CAST($1 AS VARCHAR) AS {_quote_ident(_NAME_COL)}"]
    params: list[Any] = [name]
    for col in columns:
        params.append(col.values)
        select.append(f"CAST(unnest(${len(params)}) AS {col.sql_type}) AS {_quote_ident(col.name)}")
    meta_cols = []
    for key, value in meta.items():
        column = _typed_column(key, [value])
        assert column is not None
        params.append(column.values[0])
        select.append(f"CAST(${len(params)} AS {column.sql_type}) AS {_quote_ident(key)}")
        meta_cols.append(key)
    params += [saved_at, prov.get("git_commit"), prov.get("git_dirty"), hostname(), save_id]
    n = len(params)
    select += [
        f"make_timestamp(CAST(${n - 4} AS BIGINT)) AS saved_at",
        f"CAST(${n - 3} AS VARCHAR) AS git_commit",
        f"CAST(${n - 2} AS BOOLEAN) AS git_dirty",
        f"CAST(${n - 1} AS VARCHAR) AS host",
        f"CAST(${n} AS VARCHAR) AS {_SAVE_COL}",
    ]
    file_meta = {
        "format": _FORMAT,
        "saves": [save_id],
        "exps": [name],
        "marks": {name: saved_at} if mode == "overwrite" else {},
        "t": saved_at,
        "result_cols": [c.name for c in columns],
        "meta_cols": meta_cols,
    }
    path = _write_parquet(
        _writer_connection(), root, f"s-{save_id}.parquet", "SELECT " + ", ".join(select), params,
        file_meta,
    )  # fmt: skip
    global _SAVES_SINCE_CHECK
    _SAVES_SINCE_CHECK += 1
    if _SAVES_SINCE_CHECK >= AUTO_COMPACT_EVERY or random.random() < AUTO_COMPACT_PROBABILITY:
        _SAVES_SINCE_CHECK = 0
        try:
            _auto_compact(root)
        except Exception as exc:  # the save itself succeeded; compaction can wait
            warnings.warn(
                f"automatic compaction of {root} failed (data is safe): {exc}", stacklevel=2
            )
    return path


# --------------------------------------------------------------------------------------------
# reading the folder


@dataclasses.dataclass(frozen=True)
class _FileInfo:
    name: str
    path: str
    size: int
    mtime_ns: int
    saves: frozenset[str]
    exps: tuple[str, ...]
    marks: dict[str, int]
    result_cols: tuple[str, ...]
    meta_cols: tuple[str, ...]
    saved_at: int | None  # single saves: the save's time (us)
    inputs: tuple[str, ...]  # compacted files: compacted files whose saves this one holds

    @property
    def compacted(self) -> bool:
        return self.name.startswith("c-")

    @functools.cached_property
    def exp_set(self) -> frozenset[str]:
        return frozenset(self.exps)


@dataclasses.dataclass
class _Part:
    info: _FileInfo
    keep: frozenset[str] | None  # None: every save in the file
    drop: dict[str, int]  # experiment -> rows saved before this time (us) are overwritten

    @property
    def saves(self) -> frozenset[str]:
        return self.keep if self.keep is not None else self.info.saves


@dataclasses.dataclass
class _Snapshot:
    """Which file provides each save. Rank: compacted files above single saves; among compacted
    files more saves first, then the name."""

    root: Path
    names: set[str]  # every store file listed
    parts: list[_Part]  # files read by queries (with row filters where needed)
    dead: list[_FileInfo]  # single saves entirely replaced by a later overwrite
    read: list[_FileInfo]  # compacted files whose footer was read, highest rank first
    unused: list[_FileInfo]  # compacted files read but all of whose saves rank higher elsewhere
    skipped: dict[str, _FileInfo]  # compacted file -> a read file holding all its saves
    covered: dict[str, str]  # single-save file name -> save id, held by a read compacted file
    markers: dict[str, int]
    bad: list[tuple[str, str]]

    @property
    def result_cols(self) -> list[str]:
        return _union(p.info.result_cols for p in self.parts)

    @property
    def meta_cols(self) -> list[str]:
        return _union(p.info.meta_cols for p in self.parts)


def _union(groups: Iterable[Iterable[str]]) -> list[str]:
    out: dict[str, str] = {}
    for group in groups:
        for name in group:
            out.setdefault(name.lower(), name)
    return list(out.values())


class _BadFile(Exception):
    pass


_INFO_CACHE: dict[str, tuple[int, int, _FileInfo | str]] = {}
_INFO_CACHE_LOCK = threading.Lock()


def _parse_footer(path: str, name: str) -> _FileInfo:
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        size = st.st_size
        if size < 12:
            raise _BadFile("too short to be a Parquet file (truncated?)")
        probe = min(size, _FOOTER_PROBE)
        tail = os.pread(fd, probe, size - probe)
        head = tail[:4] if probe == size else os.pread(fd, 4, 0)
        if head != _MAGIC or tail[-4:] != _MAGIC:
            raise _BadFile("not a complete Parquet file (truncated, or not Parquet)")
        footer_len = int.from_bytes(tail[-8:-4], "little")
        if footer_len + 12 > size:
            raise _BadFile("its Parquet footer is damaged")
        if footer_len + 8 > probe:
            tail = os.pread(fd, footer_len + 8, size - footer_len - 8)
    finally:
        os.close(fd)
    footer = tail[-(footer_len + 8) : -8]
    at = footer.rfind(_META_PREFIX)
    if at < 0:
        raise _BadFile("a Parquet file not written by save_experiment (no store metadata)")
    try:
        meta, _ = json.JSONDecoder().raw_decode(footer[at:].decode("latin-1"))
        saves = frozenset(meta["saves"])
        info = _FileInfo(
            name=name,
            path=path,
            size=size,
            mtime_ns=st.st_mtime_ns,
            saves=saves,
            exps=tuple(meta["exps"]),
            marks={str(k): int(v) for k, v in meta.get("marks", {}).items()},
            result_cols=tuple(meta.get("result_cols", ())),
            meta_cols=tuple(meta.get("meta_cols", ())),
            saved_at=meta.get("t"),
            inputs=tuple(meta.get("inputs", ())),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise _BadFile(f"its store metadata is unreadable ({exc})") from exc
    if not saves or (name.startswith("s-") and saves != {_save_id_of(name)}):
        raise _BadFile("its store metadata does not match its name")
    return info


def _file_info(root: Path, name: str) -> _FileInfo | str:
    """Footer metadata of a store file, or the reason it cannot be used (cached per process)."""
    path = str(root / name)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return _VANISHED
    with _INFO_CACHE_LOCK:
        hit = _INFO_CACHE.get(path)
    if hit is not None and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
        return hit[2]
    result: _FileInfo | str
    try:
        result = _parse_footer(path, name)
    except FileNotFoundError:
        return _VANISHED
    except _BadFile as exc:
        result = str(exc)
    except OSError as exc:
        result = f"cannot be read ({exc})"
    with _INFO_CACHE_LOCK:
        _INFO_CACHE[path] = (st.st_size, st.st_mtime_ns, result)
    return result


_INFO_CACHE_SOFT_LIMIT = 4096


def _prune_info_cache(root: Path, names: set[str]) -> None:
    """Forget cached footers of files of ``root`` that are gone (deleted by compaction)."""
    prefix = str(root) + os.sep
    with _INFO_CACHE_LOCK:
        for path in [p for p in _INFO_CACHE if p.startswith(prefix)]:
            if path[len(prefix) :] not in names:
                del _INFO_CACHE[path]


def _mark_bad(path: str, reason: str) -> None:
    """Remember that DuckDB could not read ``path`` although its footer looked fine."""
    try:
        st = os.stat(path)
    except OSError:
        return
    with _INFO_CACHE_LOCK:
        _INFO_CACHE[path] = (st.st_size, st.st_mtime_ns, reason)


def _compacted_rank(name: str) -> int | None:
    """Number of saves from a compacted file's name ``c-<saves, 8 digits>-<id>.parquet``."""
    digits = name[2:10]
    return int(digits) if len(name) > 11 and name[10] == "-" and digits.isdigit() else None


_VANISHED = "deleted while reading"


class _Vanished(Exception):
    pass


def _snapshot(root: Path, *, warn: bool = True) -> _Snapshot:
    """List the store and decide which file provides each save.

    A file deleted between the listing and reading its footer (a compaction finished meanwhile)
    restarts the listing: skipping it could hide saves that only it held.
    """
    for _ in range(20):
        try:
            snap = _snapshot_once(root)
        except _Vanished:
            continue
        if len(_INFO_CACHE) > _INFO_CACHE_SOFT_LIMIT:
            _prune_info_cache(root, snap.names)
        if warn:
            for name, reason in snap.bad:
                warnings.warn(
                    f"experiment store: skipping {root / name}: {reason}",
                    UserWarning,
                    stacklevel=3,
                )
        return snap
    raise ExperimentStoreError(f"the experiment store {root} kept changing while being listed")


def _snapshot_once(root: Path) -> _Snapshot:
    """One attempt of ``_snapshot``; raises ``_Vanished``.

    Compacted files are visited from the highest rank down; a file listed in the ``inputs`` of a
    file already read is skipped unread (all its saves are there), and so is a single-save file
    whose save a read compacted file holds. Only the files queries need are opened.
    """
    bad: list[tuple[str, str]] = []
    try:
        listing = os.listdir(root)
    except FileNotFoundError as exc:
        raise StoreNotFoundError(f"no experiment store at {root}: {exc.strerror}") from exc
    except OSError as exc:
        raise StoreNotFoundError(f"cannot read the experiment store {root}: {exc}") from exc
    names = set(listing)
    singles_named = [n for n in listing if n.startswith("s-") and n.endswith(".parquet")]
    # zero-padded save counts: name order is rank order
    compacted = sorted((n for n in listing if n.startswith("c-")), reverse=True)
    for name in listing:
        if name.startswith(("s-", "c-", ".")):
            continue
        if os.path.isfile(root / name):
            bad.append((name, "not written by save_experiment"))

    skipped: dict[str, _FileInfo] = {}
    read: list[_FileInfo] = []
    unused: list[_FileInfo] = []
    taken: set[str] = set()
    candidates: list[tuple[_FileInfo, frozenset[str] | None]] = []
    for name in compacted:
        if name in skipped:
            continue
        got = (
            _file_info(root, name)
            if _compacted_rank(name) is not None and name.endswith(".parquet")
            else "not written by save_experiment (unexpected name)"
        )
        if got == _VANISHED:
            raise _Vanished(name)
        if isinstance(got, str):
            bad.append((name, got))
            continue
        read.append(got)
        for child in got.inputs:
            skipped.setdefault(child, got)
        mine = got.saves - taken
        taken |= got.saves
        if not mine:
            unused.append(got)
        else:
            candidates.append((got, None if len(mine) == len(got.saves) else frozenset(mine)))
    covered = {n: n[2:-8] for n in singles_named if n[2:-8] in taken}
    singles: list[_FileInfo] = []
    for name in singles_named:
        if name in covered:
            continue
        got = _file_info(root, name)
        if got == _VANISHED:
            raise _Vanished(name)
        if isinstance(got, str):
            bad.append((name, got))
            continue
        singles.append(got)

    markers: dict[str, int] = {}
    for info in [*read, *singles]:
        for exp, t in info.marks.items():
            if t > markers.get(exp, -1):
                markers[exp] = t

    parts: list[_Part] = []
    for info, keep in candidates:
        drop = {}
        for exp, t in markers.items():
            if info.marks.get(exp, -1) < t and exp in info.exp_set:
                drop[exp] = t
        parts.append(_Part(info, keep, drop))
    dead: list[_FileInfo] = []
    for info in singles:
        exp = info.exps[0]
        if info.saved_at is not None and info.saved_at < markers.get(exp, -1):
            dead.append(info)
        else:
            parts.append(_Part(info, None, {}))

    return _Snapshot(root, names, parts, dead, read, unused, skipped, covered, markers, bad)


def _timestamp_sql(time_us: int) -> str:
    return f"make_timestamp(CAST({int(time_us)} AS BIGINT))"


def _rows_sql(parts: list[_Part]) -> str | None:
    """SQL over the parts' rows (with the hidden save column), or None when there are none."""
    plain = [p.info.path for p in parts if p.keep is None and not p.drop]
    selects = []
    if plain:
        files = ", ".join(_quote_str(p) for p in plain)
        selects.append(f"SELECT * FROM read_parquet([{files}], union_by_name=true)")
    for part in parts:
        if part.keep is None and not part.drop:
            continue
        conds = []
        if part.keep is not None:
            conds.append(f"{_SAVE_COL} IN ({', '.join(_quote_str(s) for s in sorted(part.keep))})")
        for exp, t in sorted(part.drop.items()):
            conds.append(
                f"NOT ({_NAME_COL} = {_quote_str(exp)} AND saved_at < {_timestamp_sql(t)})"
            )
        selects.append(
            f"SELECT * FROM read_parquet({_quote_str(part.info.path)}) WHERE {' AND '.join(conds)}"
        )
    if not selects:
        return None
    return " UNION ALL BY NAME ".join(selects)


def _ordered_columns(result_cols: list[str], meta_cols: list[str]) -> list[str]:
    skip = {c.lower() for c in _RESERVED}
    results = [c for c in result_cols if c.lower() not in skip]
    seen = {c.lower() for c in results}
    meta = [c for c in meta_cols if c.lower() not in skip and c.lower() not in seen]
    return [_NAME_COL, *results, *meta, *PROVENANCE_COLUMNS]


_EMPTY_VIEW = (
    "SELECT CAST(NULL AS VARCHAR) AS experiment_name, CAST(NULL AS TIMESTAMP) AS saved_at, "
    "CAST(NULL AS VARCHAR) AS git_commit, CAST(NULL AS BOOLEAN) AS git_dirty, "
    "CAST(NULL AS VARCHAR) AS host WHERE false"
)


def _install_views(con: duckdb.DuckDBPyConnection, snap: _Snapshot) -> None:
    _COLUMN_CACHE.pop(con, None)
    _SNAPSHOTS[con] = snap
    rows_sql = _rows_sql(snap.parts)
    ordered = _ordered_columns(snap.result_cols, snap.meta_cols)
    results = {c.lower() for c in snap.result_cols}
    result_cols = [c for c in ordered if c.lower() in results]
    meta_cols = [c for c in snap.meta_cols if c.lower() not in results]
    if rows_sql is None:
        body = _EMPTY_VIEW
        result_cols, meta_cols = [], []
    else:
        body = f"SELECT {', '.join(_quote_ident(c) for c in ordered)} FROM ({rows_sql})"
    con.execute(f"CREATE OR REPLACE TEMP VIEW experiments AS {body}")
    latest = [
        f"max_by({_quote_ident(c)}, saved_at) FILTER (WHERE {_quote_ident(c)} IS NOT NULL) "
        f"AS {_quote_ident(c)}"
        for c in [*PROVENANCE_COLUMNS[1:], *meta_cols]
    ]
    con.execute(
        "CREATE OR REPLACE TEMP VIEW experiment_summary AS SELECT experiment_name, "
        "count(*) AS rows, min(saved_at) AS first_saved_at, max(saved_at) AS last_saved_at, "
        + ", ".join(latest)
        + " FROM experiments GROUP BY experiment_name"
    )
    kinds = [(_NAME_COL, "name")] + [(c, "provenance") for c in PROVENANCE_COLUMNS]
    kinds += [(c, "metadata") for c in meta_cols]
    kinds += [(c, "result") for c in result_cols]
    case = " ".join(
        f"WHEN lower(column_name) = {_quote_str(c.lower())} THEN {_quote_str(k)}" for c, k in kinds
    )
    con.execute(
        "CREATE OR REPLACE TEMP VIEW experiment_columns AS SELECT column_name, "
        f"CASE {case} ELSE 'result' END AS kind, column_type FROM (DESCRIBE experiments)"
    )


_COLUMN_CACHE: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, list[tuple[str, str, str]]] = (
    weakref.WeakKeyDictionary()
)
_SNAPSHOTS: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, _Snapshot] = (
    weakref.WeakKeyDictionary()
)
_CONNECTIONS: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, Path] = (
    weakref.WeakKeyDictionary()
)


def connect(
    storage_dir: str | os.PathLike[str] | None = None, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB connection with views over the store.

    Views: ``experiments``, ``experiment_summary``, ``experiment_columns`` (see the module doc).
    The connection is a snapshot of the store when it was opened: reconnect to see later saves.
    Damaged or foreign files are skipped with a warning naming them.

    Args:
        storage_dir: the store folder; default ``get_experiments_dir()``.
        read_only: also lock the connection down: no file access outside the store, no extension
            loading, configuration locked (the SQL guard of ``run_readonly_sql`` applies anyway).

    Returns:
        The connection (pandas is not needed to use it).

    Raises:
        StoreNotFoundError: the folder does not exist or cannot be read.
    """
    root = _resolve_dir(storage_dir, create=False)
    con = _database(root if read_only else None).cursor()
    _CONNECTIONS[con] = root
    for attempt in range(_RETRIES):
        try:
            _install_views(con, _snapshot(root))
            break
        except duckdb.Error as exc:
            if attempt == _RETRIES - 1 or not _recover(con, root, exc):
                raise
            time.sleep(min(0.005 * attempt, 0.05))
    return con


_DATABASES: dict[tuple[int, str | None], duckdb.DuckDBPyConnection] = {}
_DATABASES_LOCK = threading.Lock()


def _database(read_only_root: Path | None) -> duckdb.DuckDBPyConnection:
    """A DuckDB instance shared by the connections of this process (starting one costs tens of
    milliseconds; a cursor on it costs microseconds). Read-only instances, one per store, may
    touch no file outside the store, load no extension and change no setting."""
    key = (os.getpid(), None if read_only_root is None else str(read_only_root))
    with _DATABASES_LOCK:
        db = _DATABASES.get(key)
        if db is None:
            db = duckdb.connect(":memory:")
            if read_only_root is not None:
                db.execute(
                    f"SET allowed_directories = [{_quote_str(str(read_only_root) + os.sep)}]"
                )
                db.execute("SET enable_external_access = false")
                db.execute("SET autoload_known_extensions = false")
                db.execute("SET autoinstall_known_extensions = false")
                db.execute("SET lock_configuration = true")
            _DATABASES[key] = db
        return db


_PATH_IN_ERROR = re.compile(r"""[^"'\s]+\.parquet""")


_NOT_FILE_ERRORS: tuple[type[BaseException], ...] = (
    duckdb.ParserException,
    duckdb.SyntaxException,
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
    duckdb.TypeMismatchException,
    duckdb.InvalidTypeException,
    duckdb.PermissionException,
    duckdb.InterruptException,
    duckdb.OutOfMemoryException,
    duckdb.ConstraintException,
    duckdb.DependencyException,
    duckdb.TransactionException,
    duckdb.SequenceException,
)


def _recover(con: duckdb.DuckDBPyConnection, root: Path, exc: BaseException) -> bool:
    """After a DuckDB error that may come from store files: remember the unreadable ones.

    Returns True when a retry on a fresh listing may succeed: a store file named in the message
    (vanished, or present but unreadable), or a damaged file found by reading each file of the
    connection's snapshot (DuckDB does not always say which file it choked on).
    """
    if isinstance(exc, _NOT_FILE_ERRORS):
        return False
    message = str(exc)
    paths = [m for m in _PATH_IN_ERROR.findall(message) if m.startswith(str(root))]
    for path in paths:
        if os.path.exists(path):  # present but unreadable: skip it from now on (with a warning)
            _mark_bad(path, f"DuckDB cannot read it: {message.splitlines()[0]}")
    if paths:
        return True
    snap = _SNAPSHOTS.get(con)
    if snap is None:
        return False
    probe = _compaction_connection()
    found = False
    for part in snap.parts:
        try:
            probe.execute(
                f"SELECT sum(hash(t)) FROM read_parquet({_quote_str(part.info.path)}) t"
            ).fetchall()
        except duckdb.Error as err:
            if os.path.exists(part.info.path):
                _mark_bad(part.info.path, f"DuckDB cannot read it: {str(err).splitlines()[0]}")
            found = True
    return found


_RETRIES = 30
R = TypeVar("R")


def _fetch_rows(cur: duckdb.DuckDBPyConnection) -> QueryResult:
    return QueryResult([d[0] for d in cur.description or ()], cur.fetchall())


def _execute(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: list[Any] | None,
    consume: Callable[[duckdb.DuckDBPyConnection], R],
) -> R:
    """Run ``sql`` and ``consume`` its result; if a store file vanished or is unreadable, re-list
    the store and retry. DuckDB reads Parquet lazily, while the result is fetched, so the fetch
    must sit inside the retry too."""
    root = _CONNECTIONS.get(con)
    refresh = False
    for attempt in range(_RETRIES):
        try:
            if refresh:
                assert root is not None
                _install_views(con, _snapshot(root))
            return consume(con.execute(sql, params))
        except duckdb.Error as exc:
            if root is None or attempt == _RETRIES - 1 or not _recover(con, root, exc):
                raise
            refresh = True
            time.sleep(min(0.005 * attempt, 0.05))
    raise AssertionError("unreachable")


def _fetch(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> QueryResult:
    return _execute(con, sql, params, _fetch_rows)


def _to_frame(result: QueryResult) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame.from_records(result.rows, columns=result.columns)


# --------------------------------------------------------------------------------------------
# store introspection


def _connection(
    con: duckdb.DuckDBPyConnection | None, storage_dir: str | os.PathLike[str] | None
) -> tuple[duckdb.DuckDBPyConnection, bool]:
    if con is not None:
        return con, False
    return connect(storage_dir, read_only=True), True


def experiment_names(
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    storage_dir: str | os.PathLike[str] | None = None,
) -> list[str]:
    """Names of the experiments in the store, sorted; ``[]`` for an empty store.

    Args:
        con: a connection from ``connect``; if None, ``storage_dir`` is opened for this call.
        storage_dir: the store folder when no ``con`` is given.
    """
    con, own = _connection(con, storage_dir)
    try:
        rows = _fetch(con, "SELECT DISTINCT experiment_name FROM experiments ORDER BY 1").rows
    finally:
        if own:
            con.close()
    return [r[0] for r in rows]


def _columns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """(name, kind, type) of every column of ``experiments``, cached per connection."""
    cached = _COLUMN_CACHE.get(con)
    if cached is None:
        rows = _fetch(con, "SELECT column_name, kind, column_type FROM experiment_columns").rows
        cached = [(r[0], r[1], r[2]) for r in rows]
        _COLUMN_CACHE[con] = cached
    return cached


def _is_numeric(column_type: str) -> bool:
    return column_type in _NUMERIC_TYPES or column_type.startswith("DECIMAL")


def metric_columns(
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    storage_dir: str | os.PathLike[str] | None = None,
) -> list[str]:
    """Numeric result columns of the store (not metadata or provenance), in column order.

    Args:
        con: a connection from ``connect``; if None, ``storage_dir`` is opened for this call.
        storage_dir: the store folder when no ``con`` is given.
    """
    con, own = _connection(con, storage_dir)
    try:
        return [n for n, kind, t in _columns(con) if kind == "result" and _is_numeric(t)]
    finally:
        if own:
            con.close()


def metric_direction(metric: str) -> str:
    """Whether lower (``"min"``) or higher (``"max"``) is better for a metric, by its name.

    Args:
        metric: a column name such as ``val_loss``, ``perplexity`` or ``top1_accuracy``.

    Returns:
        ``"min"`` for loss-like names (loss, perplexity, bpb, error, grad_norm, ...), ``"max"``
        for accuracy-like names (acc, accuracy, f1, bleu, score, ...).

    Raises:
        MetricDirectionError: the name matches neither kind, or both.
    """
    lower = metric.lower()
    tokens = [t for t in re.split(r"[^a-z0-9]+", lower) if t]
    joined = "_" + "_".join(tokens) + "_"

    def hits(words: set[str]) -> bool:
        if lower in words:
            return True
        for word in words:
            if "_" in word and f"_{word}_" in joined:
                return True
        return any(t in words or t.rstrip("0123456789") in words for t in tokens)

    low, high = hits(_LOWER_IS_BETTER), hits(_HIGHER_IS_BETTER)
    if low and not high:
        return "min"
    if high and not low:
        return "max"
    raise MetricDirectionError(
        f"cannot tell from its name whether lower or higher {metric!r} is better; pass "
        "mode='min' or mode='max' (CLI: --mode min|max)"
    )


def _resolve_metric(con: duckdb.DuckDBPyConnection, metric: str) -> str:
    columns = _columns(con)
    by_lower = {n.lower(): (n, kind, t) for n, kind, t in columns}
    metrics = [n for n, kind, t in columns if kind == "result" and _is_numeric(t)]
    hit = by_lower.get(metric.lower())
    if hit is None or not _is_numeric(hit[2]) or hit[1] in ("name", "provenance"):
        if hit is not None:
            why = f"column {hit[0]!r} is not a numeric metric ({hit[1]}, {hit[2]})"
        else:
            why = f"unknown metric {metric!r}"
        close = difflib.get_close_matches(metric, metrics, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(metrics) if metrics else "(none: the store is empty)"
        raise UnknownMetricError(f"{why}.{hint} Metrics in the store: {listing}")
    return hit[0]


def _check_mode(metric: str, mode: str | None) -> str:
    if mode is None:
        return metric_direction(metric)
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    return mode


# --------------------------------------------------------------------------------------------
# the read-only SQL guard

_ALLOWED_STATEMENTS = {"SELECT"}


def check_readonly_sql(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """Refuse anything but one read-only query; return it.

    Allowed: one SELECT-type statement (``SELECT``, ``WITH``, ``FROM ...``, ``VALUES``,
    ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``). Refused: everything else, among it ``COPY``,
    ``EXPORT``, ``ATTACH``, ``INSTALL``/``LOAD``, ``SET``, ``PRAGMA``, ``CALL``, ``CREATE``,
    ``INSERT``/``UPDATE``/``DELETE`` and ``EXPLAIN`` (``EXPLAIN ANALYZE`` runs its statement).

    Raises:
        ReadOnlyViolation: a refused statement, or several statements.
        QueryError: the SQL does not parse, or is empty.
    """
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(_query_error_message(con, exc)) from exc
    if not statements:
        raise QueryError("no SQL statement given")
    if len(statements) > 1:
        raise ReadOnlyViolation(
            f"one statement at a time, please (got {len(statements)}); queries are read-only"
        )
    kind = statements[0].type.name
    if kind not in _ALLOWED_STATEMENTS:
        raise ReadOnlyViolation(
            f"{kind} statements are not allowed: the experiment store is queried read-only "
            "(SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE); nothing can be written, "
            "copied or deleted through SQL"
        )
    return sql


def _query_error_message(con: duckdb.DuckDBPyConnection, exc: BaseException) -> str:
    lines = [str(exc).strip()]
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal "
                "UNION ALL SELECT table_name FROM duckdb_tables() ORDER BY 1"
            ).fetchall()
        ]
        lines.append("Available tables: " + ", ".join(names))
        cols = con.execute("SELECT column_name, column_type FROM (DESCRIBE experiments)")
        lines.append(
            "Columns of experiments: " + ", ".join(f"{n} ({t})" for n, t in cols.fetchall())
        )
    except duckdb.Error:
        pass
    return "\n".join(lines)


def _readonly_execute(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    consume: Callable[[duckdb.DuckDBPyConnection], R],
) -> R:
    check_readonly_sql(con, sql)
    try:
        return _execute(con, sql, None, consume)
    except duckdb.Error as exc:
        raise QueryError(_query_error_message(con, exc)) from exc


def run_readonly_sql(con: duckdb.DuckDBPyConnection, sql: str) -> QueryResult:
    """Run one read-only query on a store connection, without pandas.

    Args:
        con: a connection from ``connect`` (ideally with ``read_only=True``).
        sql: one SELECT-type statement over ``experiments`` / ``experiment_summary`` /
            ``experiment_columns``.

    Returns:
        ``QueryResult(columns, rows)``.

    Raises:
        ReadOnlyViolation: the statement could write or change something.
        QueryError: DuckDB refused the query; the message lists tables and columns.
    """
    return _readonly_execute(con, sql, _fetch_rows)


def query_experiments(
    sql: str, *, storage_dir: str | os.PathLike[str] | None = None
) -> pd.DataFrame:
    """Run one read-only SQL query over the store and return a DataFrame.

    Args:
        sql: a SELECT-type statement over ``experiments``, ``experiment_summary`` and
            ``experiment_columns``.
        storage_dir: the store folder; default ``get_experiments_dir()``.

    Returns:
        The result as a pandas DataFrame.

    Raises:
        ReadOnlyViolation: the statement could write or change something.
        QueryError: DuckDB refused the query.
        StoreNotFoundError: no store at ``storage_dir``.
    """
    con = connect(storage_dir, read_only=True)
    try:
        return _readonly_execute(con, sql, lambda cur: cur.df())
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# list / summary / best / compare (pandas-free builders; DataFrame wrappers below)


def list_sql() -> str:
    """SQL listing one row per experiment: name, rows, first and last save time."""
    return (
        "SELECT experiment_name, count(*) AS rows, min(saved_at) AS first_saved_at, "
        "max(saved_at) AS last_saved_at FROM experiments GROUP BY experiment_name "
        "ORDER BY experiment_name"
    )


def fetch_list(con: duckdb.DuckDBPyConnection) -> QueryResult:
    """One row per experiment: ``experiment_name, rows, first_saved_at, last_saved_at``."""
    return _fetch(con, list_sql())


def _directional_metrics(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    out = []
    for metric in metric_columns(con):
        try:
            out.append((metric, metric_direction(metric)))
        except MetricDirectionError:
            continue
    return out


def summary_sql(con: duckdb.DuckDBPyConnection) -> str:
    """SQL for ``fetch_summary`` on this store (its metric columns decide the columns)."""
    names = {n.lower() for n in metric_columns(con)}
    select = [
        "experiment_name",
        "count(*) AS rows",
        "min(saved_at) AS first_saved_at",
        "max(saved_at) AS last_saved_at",
    ]
    if "step" in names:
        select.append('max("step") AS last_step')
    for metric, direction in _directional_metrics(con):
        q = _quote_ident(metric)
        select.append(f"{direction}({q}) AS {_quote_ident('best_' + metric)}")
    return (
        f"SELECT {', '.join(select)} FROM experiments GROUP BY experiment_name "
        "ORDER BY experiment_name"
    )


def fetch_summary(con: duckdb.DuckDBPyConnection) -> QueryResult:
    """One row per experiment: name, rows, save times, last step and the best value of every
    metric whose direction is known from its name (``best_loss``, ``best_accuracy``, ...)."""
    return _fetch(con, summary_sql(con))


def best_sql(
    con: duckdb.DuckDBPyConnection, metric: str, top: int = 5, mode: str | None = None
) -> str:
    """SQL ranking experiments by the best value of ``metric`` over each one's history.

    Args:
        con: a store connection (to check the metric and find ``step``/``epoch``).
        metric: a numeric result column.
        top: number of experiments to return (>= 1).
        mode: ``"min"`` or ``"max"``; default from the metric's name (``metric_direction``).

    Returns:
        SQL with columns ``rank, experiment_name, <metric>, step, epoch`` (those present),
        ``rows`` (rows with a value).

    Raises:
        UnknownMetricError, MetricDirectionError, ValueError (bad ``top`` or ``mode``).
    """
    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    column = _resolve_metric(con, metric)
    direction = _check_mode(column, mode)
    q = _quote_ident(column)
    present = {n.lower(): n for n, _, _ in _columns(con)}
    extra = [
        present[c] for c in _INDEX_COLUMNS if c in present and present[c].lower() != column.lower()
    ]
    arg = "arg_min" if direction == "min" else "arg_max"
    agg = [f"{direction}({q}) AS best"]
    agg += [f"{arg}({_quote_ident(c)}, {q}) AS {_quote_ident(c)}" for c in extra]
    agg.append(f"count({q}) AS n")
    order = "ASC" if direction == "min" else "DESC"
    outer = ["rank", "experiment_name", f"best AS {q}"] + [_quote_ident(c) for c in extra]
    outer.append("n AS rows")
    return (
        f"SELECT {', '.join(outer)} FROM (SELECT row_number() OVER (ORDER BY best {order}, "
        f"experiment_name) AS rank, * FROM (SELECT experiment_name, {', '.join(agg)} "
        f"FROM experiments WHERE {q} IS NOT NULL GROUP BY experiment_name)) "
        f"WHERE rank <= {top} ORDER BY rank"
    )


def fetch_best(
    con: duckdb.DuckDBPyConnection, metric: str, top: int = 5, mode: str | None = None
) -> QueryResult:
    """The ``top`` experiments by the best value of ``metric`` (see ``best_sql``)."""
    return _fetch(con, best_sql(con, metric, top, mode))


def _check_experiments(con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> list[str]:
    if isinstance(names, str):
        names = [names]
    wanted = list(dict.fromkeys(names))
    if not wanted:
        raise ValueError("give at least one experiment name to compare")
    known = experiment_names(con)
    known_set = set(known)
    for name in wanted:
        if name not in known_set:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            count = f"{len(known)} experiments in the store" if known else "the store is empty"
            raise UnknownExperimentError(f"unknown experiment {name!r}.{hint} ({count})")
    return wanted


def fetch_compare(
    con: duckdb.DuckDBPyConnection, names: Sequence[str], metrics: Sequence[str] | None = None
) -> QueryResult:
    """Named experiments side by side, one row each in the order given.

    Columns: ``experiment_name, rows, last_step`` (if ``step`` exists), then per metric
    ``<metric>_last`` (value at the last step) and ``<metric>_best`` (when its direction is known),
    then the metadata columns whose values differ between the experiments.

    Args:
        con: a store connection.
        names: experiment names.
        metrics: metric columns to show; default every metric these experiments have except
            ``step`` and ``epoch``.

    Raises:
        UnknownExperimentError: a name is not in the store (close names suggested).
        UnknownMetricError: a metric is not in the store.
    """
    wanted = _check_experiments(con, names)
    in_list = ", ".join(_quote_str(n) for n in wanted)
    present = {n.lower(): (n, kind) for n, kind, _ in _columns(con)}
    if metrics is None:
        candidates = [m for m in metric_columns(con) if m.lower() not in _INDEX_COLUMNS]
        if candidates:
            counts = _fetch(
                con,
                "SELECT "
                + ", ".join(f"count({_quote_ident(m)})" for m in candidates)
                + f" FROM experiments WHERE experiment_name IN ({in_list})",
            ).rows[0]
            chosen = [m for m, c in zip(candidates, counts) if c]
        else:
            chosen = []
    else:
        chosen = [_resolve_metric(con, m) for m in dict.fromkeys(metrics)]
    order_col = '"step"' if "step" in present else "saved_at"
    select = ["experiment_name", "count(*) AS rows"]
    if "step" in present:
        select.append('max("step") AS last_step')
    for metric in chosen:
        q = _quote_ident(metric)
        select.append(
            f"arg_max({q}, {order_col}) FILTER (WHERE {q} IS NOT NULL) "
            f"AS {_quote_ident(metric + '_last')}"
        )
        try:
            direction = metric_direction(metric)
        except MetricDirectionError:
            continue
        select.append(f"{direction}({q}) AS {_quote_ident(metric + '_best')}")
    main = _fetch(
        con,
        f"SELECT {', '.join(select)} FROM experiments WHERE experiment_name IN ({in_list}) "
        "GROUP BY experiment_name",
    )
    by_name = {row[0]: row for row in main.rows}
    meta_cols = [n for n, kind in present.values() if kind == "metadata"]
    differing: list[str] = []
    meta_rows: dict[str, tuple[Any, ...]] = {}
    if meta_cols and len(wanted) > 1:
        summary = _fetch(
            con,
            f"SELECT experiment_name, {', '.join(_quote_ident(c) for c in meta_cols)} "
            f"FROM experiment_summary WHERE experiment_name IN ({in_list})",
        )
        meta_rows = {row[0]: row[1:] for row in summary.rows}
        for i, col in enumerate(meta_cols):
            if len({repr(meta_rows[n][i]) for n in wanted}) > 1:
                differing.append(col)
    idx = [meta_cols.index(c) for c in differing]
    rows = [tuple(by_name[n]) + tuple(meta_rows[n][i] for i in idx) for n in wanted]
    return QueryResult(main.columns + differing, rows)


# --------------------------------------------------------------------------------------------
# pandas-free versions that open the store themselves (one call, one snapshot)


def run_sql(sql: str, *, storage_dir: str | os.PathLike[str] | None = None) -> QueryResult:
    """``run_readonly_sql`` on a fresh read-only connection to ``storage_dir``."""
    with connect(storage_dir, read_only=True) as con:
        return run_readonly_sql(con, sql)


def list_experiments_rows(storage_dir: str | os.PathLike[str] | None = None) -> QueryResult:
    """``fetch_list`` on a fresh read-only connection to ``storage_dir``."""
    with connect(storage_dir, read_only=True) as con:
        return fetch_list(con)


def summarize_experiments_rows(storage_dir: str | os.PathLike[str] | None = None) -> QueryResult:
    """``fetch_summary`` on a fresh read-only connection to ``storage_dir``."""
    with connect(storage_dir, read_only=True) as con:
        return fetch_summary(con)


def best_experiments_rows(
    metric: str,
    top: int = 5,
    mode: str | None = None,
    storage_dir: str | os.PathLike[str] | None = None,
) -> QueryResult:
    """``fetch_best`` on a fresh read-only connection to ``storage_dir``."""
    with connect(storage_dir, read_only=True) as con:
        return fetch_best(con, metric, top, mode)


def compare_experiments_rows(
    names: Sequence[str],
    metrics: Sequence[str] | None = None,
    storage_dir: str | os.PathLike[str] | None = None,
) -> QueryResult:
    """``fetch_compare`` on a fresh read-only connection to ``storage_dir``."""
    with connect(storage_dir, read_only=True) as con:
        return fetch_compare(con, names, metrics)


# --------------------------------------------------------------------------------------------
# DataFrame versions


def list_experiments(storage_dir: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """One row per experiment: ``experiment_name, rows, first_saved_at, last_saved_at``."""
    return _to_frame(list_experiments_rows(storage_dir))


def summarize_experiments(storage_dir: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """One row per experiment with save times, last step and best value of each metric whose
    direction is known (see ``fetch_summary``)."""
    return _to_frame(summarize_experiments_rows(storage_dir))


def best_experiments(
    metric: str,
    top: int = 5,
    mode: str | None = None,
    storage_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """The ``top`` experiments by the best value of ``metric`` over each experiment's history.

    Args:
        metric: a numeric result column (``perplexity``, ``val_loss``, ``accuracy``, ...).
        top: how many experiments.
        mode: ``"min"`` or ``"max"``; default: min for loss-like names, max for accuracy-like.
        storage_dir: the store folder; default ``get_experiments_dir()``.

    Returns:
        DataFrame ``rank, experiment_name, <metric>, step, epoch, rows`` (step/epoch at the best
        value, where the store has them).

    Raises:
        UnknownMetricError: the metric is not in the store (the message lists the metrics).
        MetricDirectionError: no ``mode`` and the name does not say which direction is better.
    """
    return _to_frame(best_experiments_rows(metric, top, mode, storage_dir))


def compare_experiments(
    names: Sequence[str],
    metrics: Sequence[str] | None = None,
    storage_dir: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Named experiments side by side (see ``fetch_compare`` for the columns).

    Raises:
        UnknownExperimentError: a name is not in the store (close names suggested).
        UnknownMetricError: a requested metric is not in the store.
    """
    return _to_frame(compare_experiments_rows(names, metrics, storage_dir))


# --------------------------------------------------------------------------------------------
# compaction


@dataclasses.dataclass
class CompactionReport:
    """What ``compact_store`` did."""

    files_merged: int = 0
    files_written: int = 0
    files_deleted: int = 0
    live_files: int = 0
    bytes_live: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict."""
        return dataclasses.asdict(self)


def _tier(n_saves: int) -> int:
    tier = 0
    while n_saves >= COMPACTION_FANIN:
        n_saves //= COMPACTION_FANIN
        tier += 1
    return tier


def _merge(root: Path, snap: _Snapshot, parts: list[_Part], dead: list[_FileInfo]) -> _FileInfo:
    """Write one compacted file holding ``parts`` (and the saves of ``dead``)."""
    saves: set[str] = set()
    inputs: set[str] = set()
    for part in parts:
        saves |= part.saves
        if part.info.compacted and part.keep is None:
            inputs.add(part.info.name)
            inputs.update(n for n in part.info.inputs if n in snap.names)
    for info in dead:
        saves |= info.saves
    exps = _union([p.info.exps for p in parts] + [d.exps for d in dead])
    marks = {e: snap.markers[e] for e in exps if e in snap.markers}
    result_cols = _union(p.info.result_cols for p in parts)
    meta_cols = _union(p.info.meta_cols for p in parts)
    rows_sql = _rows_sql(parts)
    if rows_sql is None:  # only overwritten saves: keep their ids, write no rows
        cols = [_NAME_COL, *PROVENANCE_COLUMNS, _SAVE_COL]
        rows_sql = _EMPTY_VIEW.replace(
            " WHERE false", f", CAST(NULL AS VARCHAR) AS {_SAVE_COL} WHERE false"
        )
    else:
        cols = _ordered_columns(result_cols, meta_cols) + [_SAVE_COL]
    select = f"SELECT {', '.join(_quote_ident(c) for c in cols)} FROM ({rows_sql})"
    file_meta = {
        "format": _FORMAT,
        "saves": sorted(saves),
        "exps": exps,
        "marks": marks,
        "result_cols": result_cols,
        "meta_cols": meta_cols,
        "inputs": sorted(inputs),
    }
    name = f"c-{len(saves):08d}-{_new_id(_next_time_us())}.parquet"
    path = _write_parquet(_compaction_connection(), root, name, select, None, file_meta)
    got = _file_info(root, name)
    if isinstance(got, str):  # never expected: the file was just written and renamed
        raise ExperimentStoreError(f"compaction wrote an unreadable file {path}: {got}")
    return got


def _cleanup(root: Path, snap: _Snapshot, grace_s: float) -> int:
    """Delete files all of whose saves are in a higher-ranked file older than ``grace_s``.

    Every rule points to a strictly higher-ranked file, so the highest-ranked holder of a save
    is never deleted, whatever other cleaners (on other machines) do at the same time.
    """
    limit = time.time_ns() - int(grace_s * 1e9)
    doomed: list[tuple[int, str]] = []
    # single saves held by a read compacted file: find the first (highest-ranked) holder
    pending = dict(snap.covered)
    by_save = {save: name for name, save in pending.items()}
    for info in snap.read:
        if not by_save:
            break
        for save in info.saves & by_save.keys():
            name = by_save.pop(save)
            if info.mtime_ns <= limit:
                doomed.append((0, name))
    # compacted files listed as inputs of a file read: that file holds all their saves
    for name, holder in snap.skipped.items():
        if name in snap.names and holder.mtime_ns <= limit:
            doomed.append((_compacted_rank(name) or 0, name))
    # compacted files read but unused: their saves come from higher-ranked parts
    if snap.unused:
        owner: dict[str, _FileInfo] = {}
        for part in snap.parts:
            owner.update(dict.fromkeys(part.saves, part.info))
        for info in snap.unused:
            holders = [owner.get(s) for s in info.saves]
            if all(h is not None and h.mtime_ns <= limit for h in holders):
                doomed.append((len(info.saves), info.name))
    deleted = 0
    for _, name in sorted(doomed):  # smallest first
        try:
            os.unlink(root / name)
            deleted += 1
        except FileNotFoundError:
            pass
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                if entry.name.startswith(".tmp-"):
                    with contextlib.suppress(FileNotFoundError):
                        if entry.stat().st_mtime < time.time() - TMP_MAX_AGE_S:
                            os.unlink(entry.path)
    except OSError:
        pass
    return deleted


def _claim(root: Path) -> bool:
    """Advisory claim so that two writers rarely compact at once (correct either way).

    A claim is stale when older than ``_CLAIM_MAX_AGE_S`` or left by a dead process of this host.
    """
    path = root / _CLAIM_NAME
    me = f"{hostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not _claim_is_stale(path):
                return False
            with contextlib.suppress(OSError):
                os.unlink(path)
            continue
        except OSError:
            return False
        try:
            os.write(fd, me.encode())
        finally:
            os.close(fd)
        return True
    return False


def _claim_is_stale(path: Path) -> bool:
    try:
        if time.time() - path.stat().st_mtime > _CLAIM_MAX_AGE_S:
            return True
        host, _, pid = path.read_text().partition(" ")
    except (OSError, UnicodeDecodeError):
        return False
    if host != hostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _release(root: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(root / _CLAIM_NAME)


def _plan_merge(snap: _Snapshot) -> tuple[list[_Part], list[_FileInfo]] | None:
    """The files automatic compaction should merge now: a size tier with enough files."""
    tiers: dict[int, list[_Part]] = {}
    for part in snap.parts:
        tiers.setdefault(_tier(len(part.saves)), []).append(part)
    if len(snap.dead) >= COMPACTION_FANIN:
        return tiers.get(0, []), list(snap.dead)
    for tier in sorted(tiers):
        if len(tiers[tier]) >= COMPACTION_FANIN:
            return tiers[tier], list(snap.dead) if tier == 0 else []
    return None


def _auto_compact(root: Path) -> None:
    snap = _snapshot(root, warn=False)
    if _plan_merge(snap) is None or not _claim(root):
        return
    try:
        for _ in range(16):
            plan = _plan_merge(snap)
            if plan is None:
                break
            _merge(root, snap, *plan)
            snap = _snapshot(root, warn=False)
        _cleanup(root, snap, DELETE_GRACE_S)
    finally:
        _release(root)


def compact_store(
    storage_dir: str | os.PathLike[str] | None = None, *, grace_s: float = DELETE_GRACE_S
) -> CompactionReport:
    """Merge every file of the store into one and delete files no longer needed.

    Safe while others read and write: saves that arrive meanwhile stay in their own files;
    superseded files are deleted only ``grace_s`` seconds after the file replacing them appeared
    (a later call deletes what is still too young).

    Args:
        storage_dir: the store folder; default ``get_experiments_dir()``.
        grace_s: how long superseded files stay for readers that listed them earlier; 0 deletes
            them now (only when nobody else is reading).

    Returns:
        A ``CompactionReport``.
    """
    root = _resolve_dir(storage_dir, create=False)
    snap = _snapshot(root)
    report = CompactionReport()
    if len(snap.parts) > 1 or snap.dead or any(p.keep is not None or p.drop for p in snap.parts):
        report.files_merged = len(snap.parts) + len(snap.dead)
        _merge(root, snap, snap.parts, snap.dead)
        report.files_written = 1
        snap = _snapshot(root, warn=False)
    report.files_deleted = _cleanup(root, snap, grace_s)
    if report.files_deleted:
        snap = _snapshot(root, warn=False)
    report.live_files = len(snap.parts)
    report.bytes_live = sum(p.info.size for p in snap.parts)
    return report


def store_stats(storage_dir: str | os.PathLike[str] | None = None) -> dict[str, int]:
    """File counts and sizes of a store.

    Returns:
        ``live_files``/``live_bytes`` (what queries read), ``files``/``bytes`` (everything on
        disk, including superseded copies awaiting deletion), ``saves``, ``bad_files``.
    """
    root = _resolve_dir(storage_dir, create=False)
    snap = _snapshot(root, warn=False)
    total_files = total_bytes = 0
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                total_files += 1
                total_bytes += entry.stat().st_size
    return {
        "live_files": len(snap.parts),
        "live_bytes": sum(p.info.size for p in snap.parts),
        "files": total_files,
        "bytes": total_bytes,
        "saves": sum(len(p.saves) for p in snap.parts) + len(snap.dead),
        "bad_files": len(snap.bad),
    }
