"""The seed's entry points keep every name (``common.data.hf_utils``, ``common.data``), the same
objects as in ``common.hub``, and importing any module of the package stays light."""

from __future__ import annotations

import subprocess
import sys

import common.data
import common.data.hf_utils as hf_utils
import common.hub

# What the seed, the tools, the projects and the notebooks imported before the package existed.
SEED_NAMES = [
    "DATASET_ALIASES",
    "AssetConflictError",
    "AssetDownload",
    "AuthenticationError",
    "ConfigNotFoundError",
    "DiskFullError",
    "DownloadFailedError",
    "EntryNotFoundError",
    "GatedRepoError",
    "HFAssetError",
    "LoadingScriptUnsupportedError",
    "OfflineError",
    "RepoNotFoundError",
    "RevisionNotFoundError",
    "SplitNotFoundError",
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
    "repo_files_path",
    "resolve_dataset_name",
    "select_model_files",
    "check_link",
    "cleanup_partial_downloads",
    "project_dir",
    "run_cli",
    "MANIFEST_NAME",
]


def test_the_seed_names_resolve_to_the_package_objects():
    for name in SEED_NAMES:
        assert hasattr(hf_utils, name), name
        if name in common.hub.__all__:
            assert getattr(hf_utils, name) is getattr(common.hub, name), name
    for name in common.data.__all__:
        assert getattr(common.data, name) is not None, name
    assert common.data.download_model is common.hub.download_model
    assert common.data.verify_download is common.hub.verify_download
    assert issubclass(common.hub.HubUnreachableError, common.data.OfflineError)


def test_user_errors_and_failures_are_told_apart():
    assert common.hub.RepoNotFoundError.user_error and common.hub.AssetConflictError.user_error
    assert common.hub.OfflineError.user_error  # offline mode is the user's setting
    for failure in ("DownloadFailedError", "DiskFullError", "HubUnreachableError"):
        assert not getattr(common.hub, failure).user_error, failure


def test_every_module_of_the_package_imports_no_heavy_library():
    modules = [
        "errors", "names", "summary", "manifest", "staging", "integrity", "translate",
        "selection", "datasets", "models", "links", "runner",
    ]  # fmt: skip
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module('common.hub.' + m)\n"
        "import common.data.hf_utils\n"
        "heavy = ('torch', 'datasets', 'huggingface_hub', 'httpx2', 'pandas', 'transformers')\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
