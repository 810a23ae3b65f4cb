"""Where a result came from: git commit, dirty flag, host, library versions."""

from __future__ import annotations

import functools
import socket
import subprocess
from pathlib import Path

from common.paths import repo_root


@functools.lru_cache(maxsize=8)
def git_info(path: str | Path | None = None) -> dict[str, str | bool | None]:
    """The commit checked out at ``path`` (default: the repo) and whether the tree is dirty.

    Returns ``{"git_commit": sha or None, "git_dirty": bool or None}``; None where git or the
    repository is unavailable. Cached per process: a run records the state it started from.
    """
    cwd = str(path or repo_root())
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return {"git_commit": None, "git_dirty": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return {"git_commit": sha.stdout.strip(), "git_dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def hostname() -> str:
    """This machine's host name."""
    return socket.gethostname()
