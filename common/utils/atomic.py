"""Atomic writes: a file or a folder appears complete under its final name, or not at all.

Every writer in ``common`` uses these: the content goes to a temporary sibling, is fsynced, and is
renamed into place; the parent folder is fsynced after the rename so the new name survives a
power cut. A failure mid-way removes the temporary sibling and leaves the previous content intact.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

TMP_MARKER = ".tmp-"


def tmp_sibling(path: str | os.PathLike[str]) -> Path:
    """A unique hidden temporary name beside ``path`` (``.<name>.tmp-<pid>-<random>``)."""
    path = Path(path)
    return path.with_name(f".{path.name}{TMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a file's content to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (new, renamed and removed names) to disk, where the OS allows."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            fsync_file(os.path.join(dirpath, name))
        fsync_dir(dirpath)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> None:
    """Create or replace ``path`` with what ``write(fh)`` writes (a binary file), atomically."""
    path = Path(path)
    tmp = tmp_sibling(path)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Create or replace ``path`` with ``data``, atomically and durably."""
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Create or replace ``path`` with UTF-8 ``text``, atomically and durably."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_move(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Rename ``src`` (a complete file or folder in the same file system) to a new name ``dst``.

    Raises ``FileExistsError`` when ``dst`` exists, so nothing is ever replaced by accident.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() or dst.is_symlink():
        raise FileExistsError(f"{dst} already exists")
    if src.is_dir():
        _fsync_tree(src)
    else:
        fsync_file(src)
    os.rename(src, dst)
    fsync_dir(dst.parent)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it becomes ``path``.

    Everything written into the yielded folder is fsynced before the rename. With ``replace`` an
    existing ``path`` is swapped out and removed after the new one is in place; without it an
    existing ``path`` raises ``FileExistsError``. On any exception the temporary folder is removed
    and ``path`` is untouched.
    """
    path = Path(path)
    if not replace and (path.exists() or path.is_symlink()):
        raise FileExistsError(f"{path} already exists")
    tmp = tmp_sibling(path)
    tmp.mkdir(parents=False)
    try:
        yield tmp
        _fsync_tree(tmp)
        if path.exists() or path.is_symlink():
            old = path.with_name(f".{path.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            os.rename(path, old)
            os.rename(tmp, path)
            fsync_dir(path.parent)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
