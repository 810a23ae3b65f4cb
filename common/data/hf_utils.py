"""The seed's entry point to Hugging Face downloads; the code lives in :mod:`common.hub`.

Every name the seed and its notebooks import from here keeps working
(``from common.data.hf_utils import download_model``); the design is in ``common/hub/__init__.py``.

- :func:`download_dataset` / :func:`download_model`: download once into ``assets/`` and return the
  loaded data / the path; :func:`ensure_dataset` / :func:`ensure_model` do the same and return an
  :class:`AssetDownload` (what was done).
- :func:`verify_download`: check a downloaded folder's files against the manifest and the Hub.
- :func:`link_dataset`: link ``projects/<p>/data`` to a downloaded data set.
- :func:`dataset_path`, :func:`model_path`, :func:`repo_files_path`, :func:`resolve_dataset_name`,
  :data:`DATASET_ALIASES`: names and places.
- The errors, all subclasses of :class:`HFAssetError`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from common.hub.datasets import download_dataset, ensure_dataset
from common.hub.errors import (
    AssetConflictError,
    AuthenticationError,
    ConfigNotFoundError,
    DiskFullError,
    DownloadFailedError,
    EntryNotFoundError,
    GatedRepoError,
    HFAssetError,
    HubUnreachableError,
    LoadingScriptUnsupportedError,
    OfflineError,
    RepoNotFoundError,
    RevisionNotFoundError,
    SplitNotFoundError,
)
from common.hub.integrity import Verification, verify_download
from common.hub.links import check_link, link_dataset, project_dir
from common.hub.models import download_model, ensure_model
from common.hub.names import (
    DATASET_ALIASES,
    MANIFEST_NAME,
    PARTIAL_MARKER,
    REPO_TYPES,
    dataset_path,
    model_path,
    repo_files_path,
    resolve_dataset_name,
)
from common.hub.runner import run_download, scrub
from common.hub.selection import select_model_files
from common.hub.staging import cleanup_partial_downloads
from common.hub.summary import AssetDownload
from common.paths import get_assets_dir, get_datasets_dir, get_models_dir

__all__ = [
    "DATASET_ALIASES",
    "MANIFEST_NAME",
    "PARTIAL_MARKER",
    "REPO_TYPES",
    "AssetConflictError",
    "AssetDownload",
    "AuthenticationError",
    "ConfigNotFoundError",
    "DiskFullError",
    "DownloadFailedError",
    "EntryNotFoundError",
    "GatedRepoError",
    "HFAssetError",
    "HubUnreachableError",
    "LoadingScriptUnsupportedError",
    "OfflineError",
    "RepoNotFoundError",
    "RevisionNotFoundError",
    "SplitNotFoundError",
    "Verification",
    "check_link",
    "cleanup_partial_downloads",
    "dataset_path",
    "download_dataset",
    "download_model",
    "ensure_dataset",
    "ensure_model",
    "get_assets_dir",
    "get_datasets_dir",
    "get_models_dir",
    "link_dataset",
    "model_path",
    "project_dir",
    "repo_files_path",
    "resolve_dataset_name",
    "run_cli",
    "select_model_files",
    "verify_download",
]


def run_cli(
    action: Callable[[], AssetDownload],
    token: str | None,
    target: Callable[[], Path | None] | None = None,
) -> int:
    """Run a download for a command line: its summary line, clear errors, exit statuses (0; 2 for
    the user's mistakes; 1 for network, disk and internal failures; 130 after Ctrl-C), cleanup.

    Args:
        action: performs the download.
        token: the token in use, so that it is never echoed.
        target: gives the asset folder the action writes (for the cleanup after Ctrl-C).
    """

    def report() -> int:
        print(scrub(action().summary(), [token]), flush=True)
        return 0

    return run_download(report, "hf_utils", token, target)
