"""The store's folder layout, file names, ids, footers and the one way a file is published.

Layout of a store folder::

    saves/<id>.<crc>.parquet        one save (immutable)
    saves/<id>.<crc>.op.parquet     a save that supersedes named earlier saves (overwrite, delete,
                                    rename, rewind, repair); it may hold no rows
    merged/<n>-<id>.<crc>.parquet   many saves merged by compaction (immutable); n = saves held
    schema/<column>.json            each column's type, a cache of the files' (see ``schema``)
    names/<name>-<hash>.json        which experiment owns each name (see ``claims``)
    annotations/<identity>/         tags and notes of an experiment (see ``annotations``)
    tmp/                            files being written, named after their host and process
    damaged/                        files moved aside by ``repair_store`` (never deleted)

``<crc>`` is the CRC-32 of the whole file: a reader verifies every file against its name before
using it. Each file's Parquet footer carries a JSON document (key ``research_experiments``)
listing the saves it holds, the saves it supersedes (``dead``), its experiments and its column
types. A file is written under ``tmp/``, fsynced, renamed into place and the folder fsynced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import re
import secrets
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from common.experiments.errors import ExperimentStoreError, StoreNotFoundError, StoreWriteError
from common.experiments.schema import SCHEMA_FOLDER, TMP_FOLDER
from common.paths import get_experiments_dir
from common.utils.atomic import fsync_dir
from common.utils.provenance import hostname

FORMAT = "research-experiments/2"
KV_KEY = "research_experiments"
META_PREFIX = b'{"format":"' + FORMAT.encode() + b'"'
SAVES, MERGED, DAMAGED = "saves", "merged", "damaged"
SCHEMA, TMP = SCHEMA_FOLDER, TMP_FOLDER

_SAVE_RE = re.compile(r"^([0-9a-f]{16})\.([0-9a-f]{8})(\.op)?\.parquet$")
_MERGED_RE = re.compile(r"^(\d{9})-([0-9a-f]{16})\.([0-9a-f]{8})\.parquet$")
_LEGACY_RE = re.compile(r"^[sc]-.*\.parquet$")
_MAGIC = b"PAR1"


def new_id() -> str:
    """A random save or file id (64 bits): never derived from a clock."""
    return secrets.token_hex(8)


def resolve_dir(storage_dir: str | os.PathLike[str] | None, *, create: bool) -> Path:
    """The store folder (default ``get_experiments_dir()``), created when ``create``.

    Raises:
        StoreNotFoundError: it does not exist (and ``create`` is false) or is not a folder.
        StoreWriteError: it cannot be created.
    """
    root = get_experiments_dir() if storage_dir is None else Path(storage_dir).expanduser()
    if create:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreWriteError(
                f"cannot create the experiment store {root}: {exc.strerror or exc}"
            ) from exc
    if not root.exists():
        raise StoreNotFoundError(f"no experiment store at {root}: the folder does not exist")
    if not root.is_dir():
        raise StoreNotFoundError(f"the experiment store {root} is not a folder")
    return root.resolve()


@dataclasses.dataclass(frozen=True)
class FileInfo:
    """A verified store file and what its footer says."""

    path: str
    kind: str  # "save", "op" or "merged"
    size: int
    saves: frozenset[str]
    dead: frozenset[str]
    exps: tuple[str, ...]
    types: dict[str, str]  # column -> storage kind
    result_cols: tuple[str, ...]
    meta_cols: tuple[str, ...]
    rows: int
    mixed: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    """Columns whose rows came from files that disagreed on the column's type (so the column
    is stored as text here): logical type -> rows of that type among the inputs."""

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


@dataclasses.dataclass(frozen=True)
class Damaged:
    """A store file that cannot be used, why, and what it holds as far as can be told."""

    path: str
    reason: str
    holds: str

    def describe(self) -> str:
        return f"{self.path}: {self.reason}; it holds {self.holds}"


def parse_name(folder: str, name: str) -> tuple[str, str, int] | None:
    """``(kind, crc, n_saves)`` of a store file name, or None for a foreign name."""
    if folder == SAVES:
        m = _SAVE_RE.match(name)
        if m:
            return ("op" if m.group(3) else "save", m.group(2), 1)
    elif folder == MERGED:
        m = _MERGED_RE.match(name)
        if m:
            return ("merged", m.group(3), int(m.group(1)))
    return None


def is_legacy_name(name: str) -> bool:
    """A file of the store's previous format (``s-*.parquet``/``c-*.parquet`` at the top)."""
    return bool(_LEGACY_RE.match(name))


class BadFile(Exception):
    """A store file that fails verification; the message says why."""


def footer_meta(data: bytes) -> dict[str, Any]:
    """The store's JSON document from a Parquet file's footer.

    Raises:
        BadFile: not a complete Parquet file, or no readable store document.
    """
    if len(data) < 12 or data[:4] != _MAGIC or data[-4:] != _MAGIC:
        raise BadFile("not a complete Parquet file (truncated?)")
    footer_len = int.from_bytes(data[-8:-4], "little")
    if footer_len + 12 > len(data):
        raise BadFile("its Parquet footer is damaged")
    footer = data[-(footer_len + 8) : -8]
    at = footer.rfind(META_PREFIX)
    if at < 0:
        raise BadFile("a Parquet file without the store's metadata")
    try:
        meta, _ = json.JSONDecoder().raw_decode(footer[at:].decode("latin-1"))
    except ValueError as exc:
        raise BadFile(f"its store metadata is unreadable ({exc})") from exc
    if not isinstance(meta, dict):
        raise BadFile("its store metadata is unreadable")
    return meta


def read_file(folder: str, path: str) -> FileInfo:
    """Read and verify a store file (CRC against its name, footer against its kind).

    Raises:
        FileNotFoundError: it vanished (a compaction deleted it).
        BadFile: damaged or foreign.
    """
    name = os.path.basename(path)
    parsed = parse_name(folder, name)
    if parsed is None:
        raise BadFile("not a store file name")
    kind, crc, n_saves = parsed
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise BadFile(f"cannot be read ({exc.strerror or exc})") from exc
    if f"{zlib.crc32(data):08x}" != crc:
        raise BadFile("its content does not match its checksum (damaged)")
    info = _info(path, kind, len(data), footer_meta(data))
    if len(info.saves) != n_saves and kind == "merged":
        raise BadFile("its metadata does not match its name")
    if kind != "merged" and info.saves != {name[:16]}:
        raise BadFile("its metadata does not match its name")
    return info


def read_footer(folder: str, path: str) -> FileInfo:
    """What a store file's footer says, reading only the footer (its checksum is not checked:
    this serves questions the footers answer, such as each column's stored type).

    Raises:
        FileNotFoundError: it vanished (a compaction deleted it).
        BadFile: a foreign name, or no readable footer.
    """
    parsed = parse_name(folder, os.path.basename(path))
    if parsed is None:
        raise BadFile("not a store file name")
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size < 12:
                raise BadFile("not a complete Parquet file (truncated?)")
            fh.seek(size - 8)
            footer_len = int.from_bytes(fh.read(4), "little")
            if footer_len + 12 > size:
                raise BadFile("its Parquet footer is damaged")
            fh.seek(size - footer_len - 8)
            tail = fh.read(footer_len + 8)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise BadFile(f"cannot be read ({exc.strerror or exc})") from exc
    return _info(path, parsed[0], size, footer_meta(_MAGIC + tail))


def _info(path: str, kind: str, size: int, meta: dict[str, Any]) -> FileInfo:
    try:
        return FileInfo(
            path=path,
            kind=kind,
            size=size,
            saves=frozenset(meta["saves"]),
            dead=frozenset(meta.get("dead", ())),
            exps=tuple(meta["exps"]),
            types=dict(meta["types"]),
            result_cols=tuple(meta.get("result_cols", ())),
            meta_cols=tuple(meta.get("meta_cols", ())),
            rows=int(meta["rows"]),
            mixed={str(k): dict(v) for k, v in meta.get("mixed", {}).items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadFile(f"its store metadata is incomplete ({exc})") from exc


def describe_holdings(folder: str, path: str) -> str:
    """What a (damaged) file holds, from whatever can still be read: footer, else its name."""
    parsed = parse_name(folder, os.path.basename(path))
    count = parsed[2] if parsed else None
    try:
        with open(path, "rb") as fh:
            meta = footer_meta(fh.read())
        exps = [str(e) for e in meta.get("exps", ())][:10]
        count = len(meta.get("saves", ())) or count
        if exps:
            more = "" if len(meta["exps"]) <= 10 else f" and {len(meta['exps']) - 10} more"
            return f"{count} save(s) of experiment(s) {', '.join(repr(e) for e in exps)}{more}"
    except (OSError, BadFile, TypeError, KeyError):
        pass
    return f"{count} save(s)" if count is not None else "an unknown number of saves"


def kv_json(meta: dict[str, Any]) -> str:
    """The footer document as compact ASCII JSON (starts with ``META_PREFIX``)."""
    text = json.dumps({"format": FORMAT, **meta}, separators=(",", ":"), ensure_ascii=True)
    assert text.encode().startswith(META_PREFIX)
    return text


def tmp_path(root: Path, suffix: str) -> Path:
    """A new temporary file name under ``tmp/``, naming this host and process."""
    return root / TMP / f"{safe_host()}.{os.getpid()}.{secrets.token_hex(4)}{suffix}"


def safe_host() -> str:
    """This host's name as it appears in temporary file names."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", hostname())[:64] or "host"


def tmp_owner(name: str) -> tuple[str, int] | None:
    """``(host, pid)`` of a temporary file's writer, from its name."""
    parts = name.removeprefix("tmp_").split(".")  # tmp_: a database's own temporary copy
    if len(parts) >= 3 and parts[1].isdigit():
        return parts[0], int(parts[1])
    return None


def write_error(root: Path, exc: OSError) -> StoreWriteError:
    """One store error naming the folder and the cause."""
    if exc.errno == errno.ENOSPC:
        cause = "the disk is full"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        cause = f"permission denied ({exc.strerror})"
    elif exc.errno == errno.ENOENT:
        cause = "the folder vanished"
    else:
        cause = exc.strerror or str(exc)
    err = StoreWriteError(
        f"cannot write to the experiment store {root}: {cause}; nothing stored was changed"
    )
    err.errno = exc.errno
    return err


def _publish(
    root: Path, folder: str, stem: str, tmp: Path, crc: int, suffix: str, sync_dir: bool
) -> Path:
    """Rename a complete, fsynced temporary file to ``folder/<stem>.<crc32>{suffix}``."""
    final = root / folder / f"{stem}.{crc:08x}{suffix}"
    try:
        os.rename(tmp, final)
    except FileNotFoundError:  # first file of this kind in the store
        (root / folder).mkdir(exist_ok=True)
        os.rename(tmp, final)
    if sync_dir:
        fsync_dir(final.parent)
    return final


@contextlib.contextmanager
def _cleanup_on_error(root: Path, tmp: Path) -> Iterator[None]:
    """Remove ``tmp`` on any failure; an OSError becomes one ``StoreWriteError``."""
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise write_error(root, exc) from exc
        raise


def _new_tmp(root: Path) -> tuple[Path, int]:
    tmp = tmp_path(root, ".parquet")
    try:
        return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileNotFoundError:  # first write to this store: create tmp/
        (root / TMP).mkdir(exist_ok=True)
        return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)


def write_bytes(
    root: Path, folder: str, stem: str, data: bytes, suffix: str = ".parquet", *, sync_dir: bool
) -> Path:
    """Publish ``data`` as ``folder/<stem>.<crc32>{suffix}``: temp file, fsync, rename.

    ``sync_dir`` also fsyncs the folder after the rename, so that a power cut cannot forget the
    new name. Single saves skip it (it doubles a save's latency); a power cut may then lose the
    newest saves, never expose a partial one: a torn file fails its checksum and is reported.

    Raises:
        StoreWriteError: disk full, permissions, a vanished folder; no temporary file is left.
    """
    try:
        tmp, fd = _new_tmp(root)
    except OSError as exc:
        raise write_error(root, exc) from exc
    with _cleanup_on_error(root, tmp):
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        return _publish(root, folder, stem, tmp, zlib.crc32(data), suffix, sync_dir)


def write_query(
    root: Path,
    folder: str,
    stem: str,
    con: Any,
    select_sql: str,
    footer: dict[str, Any],
    *,
    params: Sequence[Any] = (),
    suffix: str = ".parquet",
) -> Path:
    """Publish the rows of a DuckDB query as one Parquet file (zstd) with ``footer``, read back
    and checked (row count) before it gets its final name.

    Raises:
        StoreWriteError: the file cannot be written (disk full, ...); no temporary file is left.
        ExperimentStoreError: the file read back does not hold ``footer["rows"]`` rows.
    """
    tmp = tmp_path(root, ".parquet")
    try:
        (root / TMP).mkdir(exist_ok=True)
    except OSError as exc:
        raise write_error(root, exc) from exc
    path = "'" + str(tmp).replace("'", "''") + "'"
    kv = "'" + kv_json(footer).replace("'", "''") + "'"
    with _cleanup_on_error(root, tmp):
        try:
            con.execute(
                f"COPY ({select_sql}) TO {path} (FORMAT parquet, COMPRESSION zstd, "
                f"ROW_GROUP_SIZE 100000, USE_TMP_FILE false, KV_METADATA {{{KV_KEY}: {kv}}})",
                list(params) or None,
            )
            row = con.execute(f"SELECT count(*) FROM read_parquet({path})").fetchone()
            count = row[0] if row else -1
        except Exception as exc:  # DuckDB reports OS errors as its own IOException
            for code in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT):
                if os.strerror(code) in str(exc):
                    raise OSError(code, os.strerror(code)) from exc
            raise
        if count != footer["rows"]:
            raise ExperimentStoreError(f"{tmp} read back {count} rows, not {footer['rows']}")
        crc = 0
        with open(tmp, "rb") as fh:
            while chunk := fh.read(1 << 22):
                crc = zlib.crc32(chunk, crc)
            os.fsync(fh.fileno())
        return _publish(root, folder, stem, tmp, crc, suffix, sync_dir=True)


def fs_now_ns(root: Path) -> int:
    """The file system's own clock (a probe file's mtime), never this host's ``time.time``:
    ages of files written by other hosts are measured against it."""
    probe = root / TMP / f"clock.{safe_host()}.{os.getpid()}.{secrets.token_hex(4)}"
    probe.parent.mkdir(exist_ok=True)
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)  # stamped by the kernel
    os.close(fd)
    try:
        return os.stat(probe).st_mtime_ns
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)
