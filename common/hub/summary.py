"""What a download did, as one line a person reads: :class:`AssetDownload` and its helpers."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.hub.names import MANIFEST_NAME


@dataclass
class AssetDownload:
    """What ``ensure_dataset`` / ``ensure_model`` did (or would do), for summaries."""

    path: Path
    """The asset: its folder, or the file for a single-file model download."""
    folder: Path
    repo_id: str
    revision: str
    commit: str | None
    downloaded: bool
    """False when it was already in place (or for a dry run) and nothing was transferred."""
    num_files: int
    num_bytes: int
    seconds: float
    details: str = ""
    dry_run: bool = False
    files: dict[str, int] | None = None
    """A dry run's files to fetch and their sizes (None where the size is not known)."""
    repaired: dict[str, str] = field(default_factory=dict)
    """Files found damaged and fetched again: path -> what was wrong (``"missing"``)."""

    def summary(self) -> str:
        """Where, how many files, size, time: one line (a dry run lists its files first)."""
        where = display_path(self.path)
        source = f"{self.repo_id}@{self.revision}"
        if self.commit:
            source += f" (commit {self.commit[:7]})"
        files = f"{self.num_files} file{'s' if self.num_files != 1 else ''}"
        size = f"{files}, {fmt_bytes(self.num_bytes)}"
        if self.details:
            size += f", {self.details}"
        if self.dry_run:
            lines = [f"  {name}  {fmt_bytes(n)}" for name, n in (self.files or {}).items()]
            lines.append(
                f"Dry run: would fetch {size} of {source} to {where}; nothing was written."
            )
            return "\n".join(lines)
        if self.repaired:
            return f"{repaired_line(self.repaired)}\n" + (
                f"Downloaded {source} to {where}: {size} in {self.seconds:.1f}s"
            )
        if self.downloaded:
            return f"Downloaded {source} to {where}: {size} in {self.seconds:.1f}s"
        return (
            f"Already downloaded: {where} from {source}: {size}; nothing transferred "
            f"({self.seconds:.1f}s). Use --force to download again."
        )


def repaired_line(repaired: dict[str, str]) -> str:
    """``Repaired 2 files: model.safetensors (size 0, expected 3,256 B), config.json (missing)``."""
    n = len(repaired)
    listed = ", ".join(f"{name} ({why})" for name, why in repaired.items())
    return f"Repaired {n} file{'s' if n != 1 else ''}: {listed}"


def fmt_bytes(n: int) -> str:
    """``3 B``, ``1.2 kB``, ``4.5 GB`` (powers of 1000)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def display_path(path: Path) -> str:
    """``path`` relative to the working folder when it lies below it, else absolute."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def folder_stats(folder: Path) -> tuple[int, int]:
    """Number of files and bytes of an asset (its manifest left out)."""
    if folder.is_file():
        return 1, folder.stat().st_size
    count = size = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if name == MANIFEST_NAME:
                continue
            count += 1
            size += os.path.getsize(os.path.join(root, name))
    return count, size


def manifest_result(
    folder: Path,
    manifest: dict[str, Any],
    *,
    downloaded: bool,
    start: float,
    path: Path | None = None,
    details: str = "",
) -> AssetDownload:
    """The :class:`AssetDownload` of the asset ``manifest`` describes (``path``: one file of it)."""
    num_files, num_bytes = folder_stats(path or folder)
    return AssetDownload(
        path=path or folder,
        folder=folder,
        repo_id=str(manifest.get("repo_id")),
        revision=str(manifest.get("revision")),
        commit=manifest.get("commit"),
        downloaded=downloaded,
        num_files=num_files,
        num_bytes=num_bytes,
        seconds=time.monotonic() - start,
        details=details,
    )


def dry_run_result(
    target: Path,
    repo_id: str,
    revision: str | None,
    commit: str | None,
    files: dict[str, int | None],
    start: float,
) -> AssetDownload:
    """The :class:`AssetDownload` of a dry run that would fetch ``files``."""
    known = {name: size for name, size in files.items() if size is not None}
    return AssetDownload(
        path=target,
        folder=target,
        repo_id=repo_id,
        revision=revision or "main",
        commit=commit,
        downloaded=False,
        num_files=len(files),
        num_bytes=sum(known.values()),
        seconds=time.monotonic() - start,
        dry_run=True,
        files={name: size or 0 for name, size in files.items()},
    )
