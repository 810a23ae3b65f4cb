"""The manifest (``.download.json``) of an asset folder, and the rules that compare a request
with what a folder holds: same asset (reuse), another one (conflict), not ours (never touched)."""

from __future__ import annotations

import fnmatch
import json
import time
from pathlib import Path
from typing import Any

from common.hub.errors import AssetConflictError
from common.hub.names import MANIFEST_NAME, TYPE_LABEL
from common.hub.summary import display_path
from common.utils.atomic import atomic_write_text

_IDENTITY = ("kind", "repo_type", "repo_id", "config", "split")
_SAVED_DATASET_FILES = ("dataset_dict.json", "state.json", "dataset_info.json", "*.arrow")


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of ``folder``, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``folder``'s manifest atomically."""
    atomic_write_text(folder / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def now() -> str:
    """The current UTC time as the manifest records it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def list_files(folder: Path) -> dict[str, int]:
    """The regular files below ``folder`` (manifest left out) and their sizes."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }


def is_empty_dir(path: Path) -> bool:
    """Whether ``path`` is a real, empty folder."""
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _revision_matches(manifest: dict[str, Any], revision: str | None) -> bool:
    if revision is None:
        return True
    commit = str(manifest.get("commit") or "")
    return revision in (manifest.get("revision"), commit) or (
        len(revision) >= 7 and commit.startswith(revision)
    )


def _identity(record: dict[str, Any], key: str) -> Any:
    value = record.get(key)
    if key == "kind":
        return "dataset" if value == "dataset" else "files"  # "model": manifests before 2026-12
    if key == "repo_type" and value is None:
        return "dataset" if record.get("kind") == "dataset" else "model"
    return value


def same_asset(manifest: dict[str, Any], asked: dict[str, Any]) -> bool:
    """Whether the folder's ``manifest`` holds the asset a request (``asked``) names."""
    return all(_identity(manifest, k) == _identity(asked, k) for k in _IDENTITY) and (
        _revision_matches(manifest, asked.get("revision"))
    )


def describe(record: dict[str, Any]) -> str:
    """``data set 'wmt/wmt14' config 'de-en' split 'train' at revision 'main' (commit 1a2b3c4)``."""
    if _identity(record, "kind") == "dataset":
        text = f"data set '{record.get('repo_id')}'"
        config, split = record.get("config"), record.get("split")
        text += f" config '{config}'" if config else " (default config)"
        text += f" split '{split}'" if split else " (all splits)"
    else:
        text = f"{TYPE_LABEL.get(_identity(record, 'repo_type'), 'repo')} '{record.get('repo_id')}'"
    if record.get("revision"):
        text += f" at revision '{record['revision']}'"
        if record.get("commit"):
            text += f" (commit {str(record['commit'])[:7]})"
    return text


def foreign_files(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Files in ``folder`` that the manifest does not list: someone else put them there."""
    listed = manifest.get("files")
    found = [
        p.relative_to(folder).as_posix()
        for p in sorted(folder.rglob("*"))
        if (p.is_file() or p.is_symlink()) and p.name != MANIFEST_NAME
    ]
    if isinstance(listed, dict):
        return [rel for rel in found if rel not in listed]
    # Data set manifests written before they listed files: save_to_disk's names are ours.
    return [
        rel
        for rel in found
        if not any(fnmatch.fnmatch(rel.rsplit("/", 1)[-1], pat) for pat in _SAVED_DATASET_FILES)
    ]


def refuse_foreign(target: Path, manifest: dict[str, Any], state: str = "") -> None:
    """Raise :class:`AssetConflictError` when ``target`` holds files its manifest does not list
    (such a folder is never replaced or emptied); ``state`` follows the asset in the message."""
    foreign = foreign_files(target, manifest)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise AssetConflictError(
            f"{display_path(target)} holds {describe(manifest)}{state} and files this tool did not "
            f"download ({shown}); it is never replaced or emptied. Move those files away, or "
            "choose another --output-dir."
        )


def check_existing(
    target: Path, asked: dict[str, Any], force: bool, hint: str = ""
) -> dict[str, Any] | None:
    """The manifest of the asset at ``target`` (to reuse, or to replace when ``force``), else None.

    Raises:
        AssetConflictError: ``target`` holds something else (and ``force`` is off), is not a
            download of this tool, or holds files its manifest does not list.
    """
    if not (target.exists() or target.is_symlink()) or is_empty_dir(target):
        return None
    where = display_path(target)
    manifest = read_manifest(target) if target.is_dir() and not target.is_symlink() else None
    if manifest is None:
        kind = "folder" if target.is_dir() else "file"
        raise AssetConflictError(
            f"{where} is a {kind} this tool did not download (no {MANIFEST_NAME}); it is never "
            "replaced or emptied, --force or not. Choose another --output-dir, or move it away."
        )
    if not same_asset(manifest, asked) and not force:
        raise AssetConflictError(
            f"{where} holds {describe(manifest)}; asked for {describe(asked)}. Pass --force "
            f"(force=True) to replace it, or --output-dir for a separate copy{hint}."
        )
    if force:
        refuse_foreign(target, manifest)
    return manifest
