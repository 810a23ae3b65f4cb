"""The one way an asset reaches its folder: downloaded into a hidden partial folder beside the
target, then moved into place whole (``common.utils.atomic``). An interrupted or failed download
leaves nothing that looks finished, and the folders it created are removed again."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

from common.hub.errors import AssetConflictError
from common.hub.manifest import is_empty_dir, read_manifest, same_asset
from common.hub.names import PARTIAL_MARKER
from common.hub.summary import display_path
from common.utils.atomic import atomic_move

# partial folder -> (its target, the target's ancestors this download created)
_ACTIVE_PARTIALS: dict[Path, tuple[Path, list[Path]]] = {}
_PARTIAL_NAME_RE = re.compile(r"(\d+)@(.+)-[0-9a-f]{8}$")
_ACTIVE_LOCK = threading.Lock()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(target: Path) -> None:
    """Remove partial folders of ``target`` left by processes of this host that have ended."""
    parent = target.parent
    if not parent.is_dir():
        return
    prefix = f".{target.name}{PARTIAL_MARKER}"
    host = socket.gethostname()
    for entry in parent.iterdir():
        if not entry.name.startswith(prefix):
            continue
        m = _PARTIAL_NAME_RE.match(entry.name[len(prefix) :])
        # Partials of other hosts (a shared assets folder) are never touched.
        if m and m.group(2) == host and not _pid_alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)


def missing_ancestors(target: Path) -> list[Path]:
    """The ancestors of ``target`` that do not exist yet, deepest first."""
    missing = []
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def remove_created_folders(target: Path, created: list[Path]) -> None:
    """Remove the (empty) folders a failed first download of ``target`` created."""
    # A failed first download of "org/name" leaves no empty "org" folder behind.
    if target.exists():
        return
    for folder in created:
        with contextlib.suppress(OSError):
            folder.rmdir()


def new_partial(target: Path) -> Path:
    """A new partial folder for a download of ``target`` (registered for the cleanup)."""
    created = missing_ancestors(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(target)
    name = f".{target.name}{PARTIAL_MARKER}{os.getpid()}@{socket.gethostname()}"
    partial = target.parent / f"{name}-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    with _ACTIVE_LOCK:
        _ACTIVE_PARTIALS[partial] = (target, created)
    return partial


def drop_partial(partial: Path, target: Path) -> None:
    """Remove ``partial`` (and the folders its download created, when nothing was placed)."""
    shutil.rmtree(partial, ignore_errors=True)
    with _ACTIVE_LOCK:
        _, created = _ACTIVE_PARTIALS.pop(partial, (target, []))
    remove_created_folders(target, created)


def cleanup_partial_downloads() -> list[Path]:
    """Remove the partial folders of downloads running in this process (for signal handlers).

    Returns:
        The folders removed.
    """
    with _ACTIVE_LOCK:
        partials = dict(_ACTIVE_PARTIALS)
        _ACTIVE_PARTIALS.clear()
    for partial, (target, created) in partials.items():
        shutil.rmtree(partial, ignore_errors=True)
        remove_created_folders(target, created)
    return list(partials)


def place(staged: Path, target: Path, asked: dict[str, Any], replace: bool) -> None:
    """Move the finished ``staged`` folder to ``target``; ``replace`` moves the old one aside.

    The old folder goes into ``staged``'s partial folder, which is removed afterwards. When another
    process placed the same asset meanwhile (and ``replace`` is off), theirs is kept.
    """
    if replace and (target.exists() or target.is_symlink()):
        atomic_move(target, staged.parent / "previous")
    elif is_empty_dir(target):
        target.rmdir()
    try:
        atomic_move(staged, target)
    except FileExistsError:
        held = read_manifest(target)
        if held is not None and same_asset(held, asked):
            return
        raise AssetConflictError(
            f"{display_path(target)} appeared while downloading; it was left untouched."
        ) from None
