"""Download Hugging Face data sets and models into ``assets/`` once, use them from every project.

Layout (``get_datasets_dir()`` is ``assets/datasets``, ``get_models_dir()`` is ``assets/models``)::

    assets/datasets/<name>/                 download_dataset(name, config, split): saved with
                                            save_to_disk (a DatasetDict, or a Dataset with split)
    assets/models/<org>/<model>/            download_model("org/model"): the files a model needs
    assets/repos/{datasets,spaces}/<org>/<name>/   download_model(..., repo_type=...): raw files

``<name>`` is the name as you pass it: an alias from :data:`DATASET_ALIASES` (``wmt14``) or a repo
id, which becomes nested folders (``roneneldan/TinyStories``). Config and split do not change the
folder: ``load_from_disk(get_datasets_dir() / "wmt14")`` loads what ``download_dataset("wmt14",
"de-en", "train")`` saved. A second config or split of the same data set goes to another folder
(``output_dir``); asking for it in the occupied folder is refused.

Every finished asset folder holds ``.download.json`` (the manifest): repo type and id, requested
revision, resolved commit, config, split or file selection, files and sizes, time. A request is
compared with it: the same asset is returned without network access; another repo, revision,
config or split is refused (:class:`AssetConflictError`) unless ``force``, which replaces it. A
folder without a manifest, or one holding files the manifest does not list, is never replaced or
emptied, ``force`` or not. Downloads go to a hidden ``.<folder>.partial-<pid>@<host>-<id>`` folder
next to the target and are moved into place only when complete (``common.utils.atomic``), so an
interrupted or failed download never leaves a folder that looks finished.

Without ``filename``/``include``, a model download fetches what ``transformers`` and PyTorch load
(:func:`select_model_files`): configs, tokenizer and generation files, and the weights in one
format (safetensors when there are any, else PyTorch ``.bin``/``.pt``); ``all_files`` fetches
everything.

``huggingface_hub`` and ``datasets`` read ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_HUB_OFFLINE`` when
they are first imported; this module imports them only inside the functions that need them. The
token comes from ``token=``, else ``HF_TOKEN``, else the stored ``hf auth login`` token; it is never
printed or logged.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import fnmatch
import functools
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.paths import get_assets_dir, get_datasets_dir, get_models_dir, repo_root
from common.utils.atomic import atomic_move, atomic_write_text

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

__all__ = [
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
]

DATASET_ALIASES: dict[str, str] = {
    "squad": "rajpurkar/squad",
    "squad_v2": "rajpurkar/squad_v2",
    "wmt14": "wmt/wmt14",
    "wmt16": "wmt/wmt16",
    "tinystories": "roneneldan/TinyStories",
    "wikitext": "Salesforce/wikitext",
    "imdb": "stanfordnlp/imdb",
    "glue": "nyu-mll/glue",
    "sst2": "stanfordnlp/sst2",
    "ag_news": "fancyzhx/ag_news",
    "cnn_dailymail": "abisee/cnn_dailymail",
    "gsm8k": "openai/gsm8k",
    "mnist": "ylecun/mnist",
    "cifar10": "uoft-cs/cifar10",
    "c4": "allenai/c4",
    "wikipedia": "wikimedia/wikipedia",
    "fineweb": "HuggingFaceFW/fineweb",
    "fineweb-edu": "HuggingFaceFW/fineweb-edu",
}
"""Bare names of well-known data sets mapped to their current Hub repo ids. Current ``datasets``
and ``huggingface_hub`` refuse bare names (``squad``); any ``org/name`` is accepted as is."""

MANIFEST_NAME = ".download.json"
PARTIAL_MARKER = ".partial-"
REPO_TYPES = ("model", "dataset", "space")
_TYPE_LABEL = {"model": "model", "dataset": "data set", "space": "Space"}

_REPO_ID_RE = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")
_HUB_URL_RE = re.compile(r"^(?:https?://(?:huggingface\.co|hf\.co)/|hf://)(datasets/)?(.+?)/?$")
_SPLIT_SAFE_RE = re.compile(r"[^A-Za-z0-9._+-]+")


# --------------------------------------------------------------------------------------------------
# errors


class HFAssetError(Exception):
    """A download or link could not be done; the message says why and what to do."""


class RepoNotFoundError(HFAssetError):
    """The repository does not exist on the Hub, or is private and the token has no access."""


class RevisionNotFoundError(HFAssetError):
    """The repository has no such branch, tag or commit."""


class EntryNotFoundError(HFAssetError):
    """The repository has no such file (or no file matches the patterns)."""


class ConfigNotFoundError(HFAssetError):
    """The data set has no such configuration, or needs one to be chosen."""


class SplitNotFoundError(HFAssetError):
    """The data set configuration has no such split."""


class AuthenticationError(HFAssetError):
    """The Hub refused the token, or the repository needs one."""


class GatedRepoError(AuthenticationError):
    """The repository is gated: its conditions must be accepted and a token sent."""


class OfflineError(HFAssetError):
    """Offline mode is on, or the Hub endpoint cannot be reached, and the asset is not local."""


class LoadingScriptUnsupportedError(HFAssetError):
    """The data set is defined by a Python loading script, which ``datasets`` no longer runs."""


class DiskFullError(HFAssetError):
    """The disk (or a file size limit) ran out while writing the asset."""


class DownloadFailedError(HFAssetError):
    """The transfer broke off (connection dropped, server error); nothing was kept."""


class AssetConflictError(HFAssetError):
    """The target folder holds something else (another revision, or not a finished download)."""


# --------------------------------------------------------------------------------------------------
# names and paths


def resolve_dataset_name(name: str) -> str:
    """The Hub repo id for a data set name: an alias of :data:`DATASET_ALIASES` or ``org/name``.

    Args:
        name: ``"tinystories"`` (alias, case-insensitive), ``"org/name"``, or a Hub URL of a data
            set (``https://huggingface.co/datasets/org/name``).

    Returns:
        The repo id, e.g. ``"roneneldan/TinyStories"``.

    Raises:
        HFAssetError: a bare name that is not an alias, or a malformed id.
    """
    cleaned = _strip_hub_url(name.strip())
    alias = DATASET_ALIASES.get(cleaned.lower())
    if alias is not None:
        return alias
    if "/" not in cleaned:
        raise HFAssetError(
            f"'{name}' is not a known data set alias and not a repo id of the form 'org/name' "
            f"(the Hub no longer accepts bare names). Known aliases: "
            f"{', '.join(sorted(DATASET_ALIASES))}."
        )
    _validate_repo_id(cleaned, "data set")
    return cleaned


def dataset_path(name: str) -> Path:
    """Where :func:`download_dataset` puts ``name`` (any config or split): see the layout.

    Args:
        name: alias or repo id, as passed to :func:`download_dataset`.

    Returns:
        The folder under ``get_datasets_dir()``; it may not exist yet.
    """
    return get_datasets_dir() / _dataset_base_name(name)


def model_path(repo_id: str) -> Path:
    """Where :func:`download_model` puts ``repo_id``: ``assets/models/<org>/<name>``.

    Args:
        repo_id: ``"org/name"`` (or a legacy single-name id such as ``"gpt2"``).

    Returns:
        The folder under ``get_models_dir()``; it may not exist yet.
    """
    return repo_files_path(repo_id, "model")


def repo_files_path(repo_id: str, repo_type: str = "model") -> Path:
    """Where :func:`download_model` puts the files of a repo of type ``repo_type``.

    Models go to ``assets/models/<org>/<name>``; the raw files of data set and Space repos to
    ``assets/repos/datasets/<org>/<name>`` and ``assets/repos/spaces/<org>/<name>``.

    Raises:
        HFAssetError: a malformed repo id or an unknown repo type.
    """
    if repo_type not in REPO_TYPES:
        raise HFAssetError(f"Unknown repo type '{repo_type}': one of {', '.join(REPO_TYPES)}.")
    repo_id = _strip_hub_url(repo_id.strip())
    _validate_repo_id(repo_id, _TYPE_LABEL[repo_type])
    if repo_type == "model":
        return get_models_dir() / repo_id
    return get_assets_dir() / "repos" / f"{repo_type}s" / repo_id


def _strip_hub_url(name: str) -> str:
    m = _HUB_URL_RE.match(name)
    if m is None:
        return name
    rest = m.group(2)
    if rest.startswith("datasets/"):
        rest = rest[len("datasets/") :]
    return "/".join(rest.split("/")[:2])


def _validate_repo_id(repo_id: str, kind: str) -> None:
    if not _REPO_ID_RE.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise HFAssetError(
            f"'{repo_id}' is not a valid {kind} repo id: expected 'org/name' made of letters, "
            "digits, '-', '_' and '.' (no '--' or '..')."
        )


def _dataset_base_name(name: str) -> str:
    cleaned = _strip_hub_url(name.strip())
    if cleaned.lower() in DATASET_ALIASES:
        return cleaned.lower()
    resolve_dataset_name(cleaned)  # validates
    return cleaned


def _safe_split(split: str) -> str:
    return _SPLIT_SAFE_RE.sub("_", split).strip("_") or "split"


# --------------------------------------------------------------------------------------------------
# results


@dataclass
class AssetDownload:
    """What :func:`ensure_dataset` / :func:`ensure_model` did (or would do), for summaries."""

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

    def summary(self) -> str:
        """Where, how many files, size, time: one line (a dry run lists its files first)."""
        where = _display_path(self.path)
        source = f"{self.repo_id}@{self.revision}"
        if self.commit:
            source += f" (commit {self.commit[:7]})"
        files = f"{self.num_files} file{'s' if self.num_files != 1 else ''}"
        size = f"{files}, {_fmt_bytes(self.num_bytes)}"
        if self.details:
            size += f", {self.details}"
        if self.dry_run:
            lines = [f"  {name}  {_fmt_bytes(n)}" for name, n in (self.files or {}).items()]
            lines.append(
                f"Dry run: would fetch {size} of {source} to {where}; nothing was written."
            )
            return "\n".join(lines)
        if self.downloaded:
            return f"Downloaded {source} to {where}: {size} in {self.seconds:.1f}s"
        return (
            f"Already downloaded: {where} from {source}: {size}; nothing transferred "
            f"({self.seconds:.1f}s). Use --force to download again."
        )


def _fmt_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _display_path(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def _folder_stats(folder: Path) -> tuple[int, int]:
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


# --------------------------------------------------------------------------------------------------
# manifests, temporary folders, atomic placement

# partial folder -> (its target, the target's ancestors this download created)
_ACTIVE_PARTIALS: dict[Path, tuple[Path, list[Path]]] = {}
_PARTIAL_NAME_RE = re.compile(r"(\d+)@(.+)-[0-9a-f]{8}$")
_ACTIVE_LOCK = threading.Lock()


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    atomic_write_text(folder / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_partials(target: Path) -> None:
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


def _missing_ancestors(target: Path) -> list[Path]:
    """The ancestors of ``target`` that do not exist yet, deepest first."""
    missing = []
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_created_folders(target: Path, created: list[Path]) -> None:
    # A failed first download of "org/name" leaves no empty "org" folder behind.
    if target.exists():
        return
    for folder in created:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _new_partial(target: Path) -> Path:
    created = _missing_ancestors(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(target)
    name = f".{target.name}{PARTIAL_MARKER}{os.getpid()}@{socket.gethostname()}"
    partial = target.parent / f"{name}-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    with _ACTIVE_LOCK:
        _ACTIVE_PARTIALS[partial] = (target, created)
    return partial


def _drop_partial(partial: Path, target: Path) -> None:
    shutil.rmtree(partial, ignore_errors=True)
    with _ACTIVE_LOCK:
        _, created = _ACTIVE_PARTIALS.pop(partial, (target, []))
    _remove_created_folders(target, created)


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
        _remove_created_folders(target, created)
    return list(partials)


def _place(staged: Path, target: Path, asked: dict[str, Any], replace: bool) -> None:
    """Move the finished ``staged`` folder to ``target``; ``replace`` moves the old one aside.

    The old folder goes into ``staged``'s partial folder, which is removed afterwards. When another
    process placed the same asset meanwhile (and ``replace`` is off), theirs is kept.
    """
    if replace and (target.exists() or target.is_symlink()):
        atomic_move(target, staged.parent / "previous")
    elif _is_empty_dir(target):
        target.rmdir()
    try:
        atomic_move(staged, target)
    except FileExistsError:
        held = _read_manifest(target)
        if held is not None and _same_asset(held, asked):
            return
        raise AssetConflictError(
            f"{_display_path(target)} appeared while downloading; it was left untouched."
        ) from None


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _revision_matches(manifest: dict[str, Any], revision: str | None) -> bool:
    if revision is None:
        return True
    commit = str(manifest.get("commit") or "")
    return revision in (manifest.get("revision"), commit) or (
        len(revision) >= 7 and commit.startswith(revision)
    )


_IDENTITY = ("kind", "repo_type", "repo_id", "config", "split")


def _identity(record: dict[str, Any], key: str) -> Any:
    value = record.get(key)
    if key == "kind":
        return "dataset" if value == "dataset" else "files"  # "model": manifests before 2026-12
    if key == "repo_type" and value is None:
        return "dataset" if record.get("kind") == "dataset" else "model"
    return value


def _same_asset(manifest: dict[str, Any], asked: dict[str, Any]) -> bool:
    return all(_identity(manifest, k) == _identity(asked, k) for k in _IDENTITY) and (
        _revision_matches(manifest, asked.get("revision"))
    )


def _describe(record: dict[str, Any]) -> str:
    """``data set 'wmt/wmt14' config 'de-en' split 'train' at revision 'main' (commit 1a2b3c4)``."""
    if _identity(record, "kind") == "dataset":
        text = f"data set '{record.get('repo_id')}'"
        config, split = record.get("config"), record.get("split")
        text += f" config '{config}'" if config else " (default config)"
        text += f" split '{split}'" if split else " (all splits)"
    else:
        text = (
            f"{_TYPE_LABEL.get(_identity(record, 'repo_type'), 'repo')} '{record.get('repo_id')}'"
        )
    if record.get("revision"):
        text += f" at revision '{record['revision']}'"
        if record.get("commit"):
            text += f" (commit {str(record['commit'])[:7]})"
    return text


_SAVED_DATASET_FILES = ("dataset_dict.json", "state.json", "dataset_info.json", "*.arrow")


def _foreign_files(folder: Path, manifest: dict[str, Any]) -> list[str]:
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


def _check_existing(
    target: Path, asked: dict[str, Any], force: bool, hint: str = ""
) -> dict[str, Any] | None:
    """The manifest of the asset at ``target`` (to reuse, or to replace when ``force``), else None.

    Raises:
        AssetConflictError: ``target`` holds something else (and ``force`` is off), is not a
            download of this tool, or holds files its manifest does not list.
    """
    if not (target.exists() or target.is_symlink()) or _is_empty_dir(target):
        return None
    where = _display_path(target)
    manifest = _read_manifest(target) if target.is_dir() and not target.is_symlink() else None
    if manifest is None:
        kind = "folder" if target.is_dir() else "file"
        raise AssetConflictError(
            f"{where} is a {kind} this tool did not download (no {MANIFEST_NAME}); it is never "
            "replaced or emptied, --force or not. Choose another --output-dir, or move it away."
        )
    same = _same_asset(manifest, asked)
    if not same and not force:
        raise AssetConflictError(
            f"{where} holds {_describe(manifest)}; asked for {_describe(asked)}. Pass --force "
            f"(force=True) to replace it, or --output-dir for a separate copy{hint}."
        )
    if force:
        foreign = _foreign_files(target, manifest)
        if foreign:
            shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
            raise AssetConflictError(
                f"{where} holds {_describe(manifest)} and files this tool did not download "
                f"({shown}); it is never replaced or emptied. Move those files away, or choose "
                "another --output-dir."
            )
    return manifest


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --------------------------------------------------------------------------------------------------
# translating library errors into clear ones


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _offline_mode() -> bool:
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


def _local_inventory(kind: str) -> str:
    root = get_datasets_dir() if kind == "dataset" else get_models_dir()
    # Asset folders are one or two levels deep ("tinystories", "org/name").
    manifests = [*root.glob(f"*/{MANIFEST_NAME}"), *root.glob(f"*/*/{MANIFEST_NAME}")]
    names = sorted(
        m.parent.relative_to(root).as_posix()
        for m in manifests
        if not any(part.startswith(".") for part in m.parent.relative_to(root).parts)
    )
    where = _display_path(root)
    if not names:
        return f"Nothing has been downloaded to {where} yet."
    return f"Available locally in {where}: {', '.join(names)}."


@dataclass
class _Context:
    kind: str  # "dataset" (saved with datasets) | "files" (a repo's files)
    repo_id: str
    name: str
    revision: str | None
    target: Path
    config: str | None = None
    split: str | None = None
    filename: str | None = None
    repo_type: str = "model"
    token: str | None = None

    @property
    def what(self) -> str:
        if self.kind == "dataset":
            label = f"data set '{self.name}'"
            if self.name != self.repo_id:
                label += f" ({self.repo_id})"
            return label
        return f"{_TYPE_LABEL[self.repo_type]} '{self.repo_id}'"

    @property
    def page(self) -> str:
        prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[self.repo_type]
        return f"{_endpoint()}/{prefix}{self.repo_id}"


def _token_help() -> str:
    return (
        "To authenticate, set HF_TOKEN=<token>, pass --token <token>, or run `hf auth login` "
        f"once (tokens: {_endpoint()}/settings/tokens)."
    )


_OFFLINE_REASON = "Offline mode is on (HF_HUB_OFFLINE=1):"


def _offline_error(ctx: _Context, reason: str = _OFFLINE_REASON) -> OfflineError:
    if reason == _OFFLINE_REASON:
        advice = "Unset HF_HUB_OFFLINE to download it."
    else:
        advice = "Check the network connection and HF_ENDPOINT, then run the command again."
    return OfflineError(
        f"{reason} {ctx.what} is not in {_display_path(ctx.target)}. {_local_inventory(ctx.kind)} "
        + advice
    )


def _translate(exc: BaseException, ctx: _Context) -> HFAssetError | None:
    """A clear :class:`HFAssetError` for a library failure, or None when it is not recognised."""
    import httpx2
    from huggingface_hub import errors as hf_errors

    datasets_exc = sys.modules.get("datasets.exceptions")
    chain = list(_chain(exc))
    for err in chain:
        if isinstance(err, HFAssetError):
            return err
    for err in chain:
        code = _disk_full_errno(err)
        if code is not None:
            where = _existing_parent(ctx.target)
            free = _fmt_bytes(shutil.disk_usage(where).free)
            strerror = os.strerror(code)
            if code == errno.EFBIG:
                head = "The file size limit (ulimit -f) was reached"
            else:
                head = "The disk is full"
            return DiskFullError(
                f"{head} while downloading {ctx.what} to {_display_path(ctx.target)} "
                f"({strerror}; {free} free there). Nothing was kept: free some space, or "
                "pass --output-dir on another disk."
            )
    for err in chain:
        if isinstance(err, RuntimeError) and "scripts are no longer supported" in str(err):
            return _script_error(ctx)
    for err in chain:
        if isinstance(err, hf_errors.GatedRepoError):
            return _gated_error(ctx, err.response.status_code if err.response is not None else 401)
        if isinstance(err, hf_errors.RevisionNotFoundError):
            return RevisionNotFoundError(
                f"{ctx.what} has no revision '{ctx.revision}' (branch, tag or commit). See the "
                f"branches and tags at {ctx.page}/tree/main."
            )
        if isinstance(err, hf_errors.RepositoryNotFoundError):
            return _repo_not_found(ctx)
        if isinstance(err, hf_errors.LocalEntryNotFoundError):
            continue
        if isinstance(err, hf_errors.RemoteEntryNotFoundError):
            return EntryNotFoundError(
                f"{ctx.what} has no file '{ctx.filename or err.response.url}' at revision "
                f"'{ctx.revision or 'main'}'."
            )
        if isinstance(err, hf_errors.HfHubHTTPError) and err.response is not None:
            status = err.response.status_code
            if status == 401:
                return AuthenticationError(
                    f"The Hub rejected the token sent for {ctx.what} (invalid or expired). "
                    + _token_help()
                )
            if status == 403:
                return AuthenticationError(
                    f"The token has no permission to read {ctx.what}. " + _token_help()
                )
            if status >= 500 or status in (408, 429):
                return DownloadFailedError(
                    f"The server answered {status} while downloading {ctx.what}. Nothing was "
                    "kept; run the command again to retry."
                )
    for err in chain:
        if isinstance(err, hf_errors.OfflineModeIsEnabled):
            return _offline_error(ctx)
        if isinstance(err, (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.ProxyError)):
            return _offline_error(
                ctx, f"Cannot reach the Hub at {_endpoint()} ({type(err).__name__}: {err}):"
            )
        if isinstance(err, (httpx2.TransportError, httpx2.TimeoutException)) or (
            isinstance(err, OSError) and "Consistency check failed" in str(err)
        ):
            return DownloadFailedError(
                f"The transfer of {ctx.what} broke off ({type(err).__name__}: {err}). Nothing was "
                "kept; run the command again to retry."
            )
    if datasets_exc is not None:
        for err in chain:
            if isinstance(err, datasets_exc.DatasetNotFoundError):
                text = str(err)
                if "gated" in text:
                    return _gated_error(ctx, 401 if "authenticated" in text else 403)
                if "Revision" in text:
                    return RevisionNotFoundError(f"{ctx.what} has no revision '{ctx.revision}'.")
                return _repo_not_found(ctx)
    for err in chain:
        text = str(err)
        if isinstance(err, ValueError) and (
            "BuilderConfig" in text and "not found" in text or "Config name is missing" in text
        ):
            available = _bracket_list(text)
            if ctx.config:
                head = f"{ctx.what} has no configuration '{ctx.config}'."
            else:
                head = f"{ctx.what} has several configurations and no default: choose one."
            return ConfigNotFoundError(
                f"{head} Available: {available or text}. Pass one with --config (config=...)."
            )
        if isinstance(err, (ValueError, KeyError)) and (
            "Unknown split" in text or "Bad split" in text
        ):
            available = _bracket_list(text)
            return SplitNotFoundError(
                f"{ctx.what} has no split '{ctx.split}'. Available: {available or text}."
            )
        if isinstance(err, ConnectionError):
            if _offline_mode():
                return _offline_error(ctx)
            return _offline_error(ctx, f"Cannot reach the Hub at {_endpoint()} ({err}):")
    return None


def _disk_full_errno(err: BaseException) -> int | None:
    """ENOSPC, EDQUOT or EFBIG when ``err`` says the disk is full (pyarrow's OSErrors carry the
    errno only in their message)."""
    if not isinstance(err, OSError):
        return None
    codes = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    if err.errno in codes:
        return int(err.errno)
    text = str(err)
    for code in codes:
        if f"[Errno {code}]" in text or os.strerror(code) in text:
            return code
    return None


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _bracket_list(text: str) -> str:
    m = re.search(r"\[([^\]]*)\]", text)
    return m.group(1).replace("'", "") if m else ""


def _repo_not_found(ctx: _Context) -> RepoNotFoundError:
    alias = ""
    if ctx.kind == "dataset" and ctx.name != ctx.repo_id:
        alias = f" (the alias '{ctx.name}' maps to '{ctx.repo_id}')"
    return RepoNotFoundError(
        f"No {_TYPE_LABEL[ctx.repo_type]} repository '{ctx.repo_id}' on the Hub ({_endpoint()})"
        f"{alias}.{_other_types_hint(ctx)} Check the id (org/name). If it is private: "
        + _token_help()
    )


def _other_types_hint(ctx: _Context) -> str:
    """Says which other repo types hold a repo of that name (one request per type)."""
    from huggingface_hub import HfApi

    api = HfApi(token=ctx.token)
    hints = []
    for repo_type in REPO_TYPES:
        if repo_type == ctx.repo_type:
            continue
        try:
            exists = api.repo_exists(ctx.repo_id, repo_type=repo_type)
        except Exception:  # noqa: BLE001 - only a hint; the error itself is already known
            exists = False
        if not exists:
            continue
        if repo_type == "dataset":
            hints.append(
                f" A data set repository of that name exists: load it with "
                f"`download_hf_dataset.py --name {ctx.repo_id}`, or fetch its files with "
                f"`download_hf_model.py --repo-id {ctx.repo_id} --repo-type dataset`."
            )
        else:
            hints.append(
                f" A {_TYPE_LABEL[repo_type]} repository of that name exists: fetch its files "
                f"with `download_hf_model.py --repo-id {ctx.repo_id} --repo-type {repo_type}`."
            )
    return "".join(hints)


def _gated_error(ctx: _Context, status: int) -> GatedRepoError:
    if status == 403:
        return GatedRepoError(
            f"{ctx.what} is gated and the token sent has not been granted access. Request access "
            f"at {ctx.page} with the account the token belongs to, then try again."
        )
    return GatedRepoError(
        f"{ctx.what} is gated: accept its conditions at {ctx.page} and send a token of that "
        "account. " + _token_help()
    )


def _script_error(ctx: _Context) -> LoadingScriptUnsupportedError:
    return LoadingScriptUnsupportedError(
        f"{ctx.what} is defined by a Python loading script, and `datasets` (since 4.0) no longer "
        "runs loading scripts. Look for a version of it stored as data files (Parquet, JSON, CSV): "
        "the Hub's automatic conversion lives on the 'refs/convert/parquet' revision "
        f"(--revision refs/convert/parquet), or search {_endpoint()}/datasets for a converted copy."
    )


def _run_translated(ctx: _Context, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except HFAssetError:
        raise
    except Exception as exc:
        translated = _translate(exc, ctx)
        if translated is None:
            raise
        raise translated from exc


# --------------------------------------------------------------------------------------------------
# data sets


def _find_loading_script(repo_id: str, siblings: list[str]) -> str | None:
    script = f"{repo_id.split('/')[-1]}.py"
    return script if script in siblings else None


def ensure_dataset(
    name: str,
    config: str | None = None,
    split: str | None = None,
    *,
    revision: str | None = None,
    output_dir: str | Path | None = None,
    force: bool = False,
    token: str | None = None,
    dry_run: bool = False,
) -> AssetDownload:
    """Make sure the data set is saved in its asset folder; download it only when needed.

    Args:
        name, config, split, revision, output_dir, force: as for :func:`download_dataset`.
        token: Hugging Face token; None uses ``HF_TOKEN`` or the stored login.
        dry_run: only say which data files would be fetched and their size; write nothing.

    Returns:
        What was done (:class:`AssetDownload`); the data itself is not loaded.

    Raises:
        HFAssetError: as :func:`download_dataset`.
    """
    start = time.monotonic()
    repo_id = resolve_dataset_name(name)
    display_name = _dataset_base_name(name)
    for label, value in (("config", config), ("split", split)):
        if value is not None and not value.strip():
            raise HFAssetError(f"The {label} name is empty; leave out --{label} for the default.")
    target = Path(output_dir).expanduser().resolve() if output_dir else dataset_path(name)
    ctx = _Context(
        "dataset",
        repo_id,
        display_name,
        revision,
        target,
        config=config,
        split=split,
        repo_type="dataset",
        token=token,
    )
    asked = {
        "kind": "dataset",
        "repo_type": "dataset",
        "repo_id": repo_id,
        "revision": revision,
        "config": config,
        "split": split,
    }
    hint = ""
    if not output_dir:
        suffix = "".join(f"--{_safe_split(v)}" for v in (config, split) if v)
        hint = f", e.g. --output-dir {_display_path(target)}{suffix or '--copy'}"
    manifest = _check_existing(target, asked, force, hint)
    if manifest is not None and not force:
        return _dataset_result(target, manifest, downloaded=False, start=start)

    if _offline_mode():
        raise _offline_error(ctx)

    from huggingface_hub import HfApi

    api = HfApi(token=token)
    info = _run_translated(
        ctx, lambda: api.dataset_info(repo_id, revision=revision, files_metadata=dry_run)
    )
    commit = info.sha
    siblings = [s.rfilename for s in info.siblings or []]
    if _find_loading_script(repo_id, siblings) is not None:
        raise _script_error(ctx)

    if dry_run:
        with tempfile.TemporaryDirectory(prefix="hf-dry-run-") as cache:
            builder = _run_translated(
                ctx, lambda: _dataset_builder(repo_id, config, split, commit, token, Path(cache))
            )
        sizes = {s.rfilename: s.size for s in info.siblings or []}
        prefix = f"hf://datasets/{repo_id}@{commit}/"
        files = {
            url[len(prefix) :] if url.startswith(prefix) else url: sizes.get(url[len(prefix) :])
            for urls in (builder.config.data_files or {}).values()
            for url in urls
        }
        return _dry_run_result(target, repo_id, revision, commit, files, start)

    partial = _new_partial(target)
    try:
        staged = partial / "asset"
        num_rows = _run_translated(
            ctx,
            lambda: _load_and_save(
                repo_id, config, split, commit, token, partial / "cache", staged, force
            ),
        )
        new_manifest = {
            "kind": "dataset",
            "repo_type": "dataset",
            "name": display_name,
            "repo_id": repo_id,
            "revision": revision or "main",
            "commit": commit,
            "config": config,
            "split": split,
            "num_rows": num_rows,
            "files": _list_files(staged),
            "downloaded_at": _now(),
            "endpoint": _endpoint(),
        }
        _write_manifest(staged, new_manifest)
        _place(staged, target, asked, replace=manifest is not None)
    finally:
        _drop_partial(partial, target)
    return _dataset_result(target, new_manifest, downloaded=True, start=start)


def _list_files(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }


def _split_names(split: str) -> list[str]:
    """The split names of a split expression: ``"train[:10%]+validation"`` -> train, validation."""
    return [re.sub(r"\[.*\]$", "", part).strip() for part in split.split("+")]


def _dataset_builder(
    repo_id: str,
    config: str | None,
    split: str | None,
    commit: str | None,
    token: str | None,
    cache_dir: Path,
) -> Any:
    """``datasets``' builder for the data set, reduced to the data files of ``split``.

    Only the README and metadata are fetched here, never data files.
    """
    import datasets

    builder = datasets.load_dataset_builder(
        repo_id, config, revision=commit, token=token, cache_dir=str(cache_dir)
    )
    known = builder.config.data_files
    if split is not None and isinstance(known, dict) and known:
        wanted = _split_names(split)
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise ValueError(f"Unknown split {unknown[0]!r}. Should be one of {sorted(known)}.")
        # Only the requested splits are downloaded and prepared.
        builder.config.data_files = type(known)({name: known[name] for name in wanted})
        if builder.info.splits:
            from datasets.splits import SplitDict

            kept = SplitDict(dataset_name=builder.info.splits.dataset_name)
            for name in wanted:
                if name in builder.info.splits:
                    kept.add(builder.info.splits[name])
            builder.info.splits = kept
    return builder


def _load_and_save(
    repo_id: str,
    config: str | None,
    split: str | None,
    commit: str | None,
    token: str | None,
    cache_dir: Path,
    staged: Path,
    force: bool,
) -> dict[str, int]:
    import datasets

    # What datasets.load_dataset does, with the split checked before any data is downloaded.
    # The Arrow cache goes into the partial folder: the saved copy is the only one kept.
    builder = _dataset_builder(repo_id, config, split, commit, token, cache_dir)
    # force: fetch the data files again instead of reusing the Hugging Face cache.
    builder.download_and_prepare(download_mode="force_redownload" if force else None)
    loaded = builder.as_dataset(split=split)
    loaded.save_to_disk(str(staged))
    if isinstance(loaded, datasets.DatasetDict):
        return {name: ds.num_rows for name, ds in loaded.items()}
    return {split or "data": loaded.num_rows}


def _dry_run_result(
    target: Path,
    repo_id: str,
    revision: str | None,
    commit: str | None,
    files: dict[str, int | None],
    start: float,
) -> AssetDownload:
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


def _dataset_result(
    target: Path, manifest: dict[str, Any], *, downloaded: bool, start: float
) -> AssetDownload:
    num_files, num_bytes = _folder_stats(target)
    rows = manifest.get("num_rows") or {}
    details = ""
    if rows:
        parts = ", ".join(f"{name} {count:,}" for name, count in rows.items())
        details = f"{len(rows)} split{'s' if len(rows) != 1 else ''} ({parts} rows)"
    if manifest.get("config"):
        details = f"config {manifest['config']}, " + details
    return AssetDownload(
        path=target,
        folder=target,
        repo_id=str(manifest.get("repo_id")),
        revision=str(manifest.get("revision")),
        commit=manifest.get("commit"),
        downloaded=downloaded,
        num_files=num_files,
        num_bytes=num_bytes,
        seconds=time.monotonic() - start,
        details=details,
    )


def download_dataset(
    name: str,
    config: str | None = None,
    split: str | None = None,
    *,
    revision: str | None = None,
    output_dir: str | Path | None = None,
    force: bool = False,
) -> Dataset | DatasetDict:
    """Download a Hub data set with ``datasets`` and save it under ``assets/datasets/``.

    It is saved to ``assets/datasets/<name>`` whatever the config and split; only the requested
    split is downloaded and prepared. When the same data set is already there it is loaded from
    disk without any network access (unless ``force``); when the folder holds another config,
    split, revision or repo the download is refused (pass ``output_dir`` for a second copy). The
    download happens in a hidden partial folder that is moved into place only when complete.

    Args:
        name: alias (``"tinystories"``, see :data:`DATASET_ALIASES`) or repo id ``"org/name"``.
        config: configuration (``datasets``' ``name``); None for the default one.
        split: a split (``"train"``, ``"train[:10%]"``); None for every split.
        revision: branch, tag or commit; None for ``main`` (or whatever is already in place).
        output_dir: the folder to save to instead of the layout's (see the module docstring).
        force: download again and replace what is in place (never a folder this tool did not
            write, nor one holding files it did not write).

    Returns:
        A ``DatasetDict`` (every split) or a ``Dataset`` (one ``split``), loaded from the saved
        folder: ``load_from_disk(get_datasets_dir() / name)`` gives the same.

    Raises:
        HFAssetError: a subclass saying what went wrong (unknown repo, revision, config or split,
            gated repo, offline, loading script, disk full, broken transfer, conflict).
    """
    result = ensure_dataset(
        name, config, split, revision=revision, output_dir=output_dir, force=force
    )
    from datasets import load_from_disk

    return load_from_disk(str(result.folder))


# --------------------------------------------------------------------------------------------------
# models


def _as_list(patterns: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    if patterns is None:
        return None
    return [patterns] if isinstance(patterns, str) else list(patterns)


# Files of other frameworks and runtimes: not read by transformers/PyTorch.
_OTHER_FRAMEWORK_DIRS = {"onnx", "coreml", "openvino", "tflite", "tf", "flax", "jax", "gguf", "mlx"}
_OTHER_FRAMEWORK_FILES = (
    "*.h5",
    "*.msgpack",
    "*.onnx",
    "*.onnx_data",
    "*.onnx.data",
    "*.ot",
    "*.gguf",
    "*.ggml",
    "*.tflite",
    "*.mlmodel",
    "*.pb",
    "*.ckpt.*",
    "*.ckpt",
    "openvino_*",
    "*.npz",
)
_OTHER_FRAMEWORK_SUFFIX_DIRS = (".mlpackage", ".mlmodelc")
_TORCH_WEIGHTS = (".bin", ".pt", ".pth")
_GIT_FILES = {".gitattributes", ".gitignore"}


def _weight_format(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1].removesuffix(".index.json")
    if name.endswith(".safetensors"):
        return "safetensors"
    if name.endswith(_TORCH_WEIGHTS):
        return "pytorch"
    return None


def _other_framework(path: str) -> bool:
    *folders, name = path.split("/")
    if any(
        f.lower() in _OTHER_FRAMEWORK_DIRS or f.endswith(_OTHER_FRAMEWORK_SUFFIX_DIRS)
        for f in folders
    ):
        return True
    return name in _GIT_FILES or any(fnmatch.fnmatch(name, pat) for pat in _OTHER_FRAMEWORK_FILES)


def select_model_files(files: list[str]) -> list[str]:
    """The files of a model repo that loading it with ``transformers``/PyTorch needs.

    Configs, tokenizer and generation files, code and docs, and the weights in one format:
    safetensors (with the shard index) when the repo has any, else PyTorch ``.bin``/``.pt``.
    TensorFlow, Flax, ONNX, CoreML, OpenVINO, TFLite, Rust and GGUF files and folders are left
    out, as are git's own files.

    Args:
        files: the repo's file paths.

    Returns:
        The selected paths, in the order given.
    """
    candidates = [f for f in files if not _other_framework(f)]
    formats = {_weight_format(f) for f in candidates}
    chosen = "safetensors" if "safetensors" in formats else "pytorch"
    return [f for f in candidates if _weight_format(f) in (None, chosen)]


def _selection(
    filename: str | None,
    include: list[str] | None,
    exclude: list[str] | None,
    all_files: bool,
    repo_type: str,
) -> dict[str, Any]:
    if filename is not None:
        return {"rule": "file", "filename": filename}
    if include or exclude:
        return {"rule": "patterns", "include": include, "exclude": exclude}
    return {"rule": "all" if all_files or repo_type != "model" else "default"}


def _describe_selection(selection: dict[str, Any]) -> str:
    rule = selection["rule"]
    if rule == "file":
        return f"the file {selection['filename']}"
    if rule == "patterns":
        return f"include={selection['include']} exclude={selection['exclude']}"
    return "every file" if rule == "all" else "the files transformers/PyTorch load"


def _selections(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    if "selections" in manifest:
        return list(manifest["selections"])
    # Manifests before 2026-12 recorded snapshots; no patterns meant every file.
    out: list[dict[str, Any]] = []
    for snap in manifest.get("snapshots", []):
        if snap.get("include") is None and snap.get("exclude") is None:
            out.append({"rule": "all"})
        else:
            out.append({"rule": "patterns", **snap})
    return out


def _selection_covered(manifest: dict[str, Any], target: Path, selection: dict[str, Any]) -> bool:
    files = manifest.get("files") or {}
    if not all((target / rel).is_file() for rel in files):
        return False  # a file went missing: fetch it again
    if selection["rule"] == "file":
        return selection["filename"] in files
    held = _selections(manifest)
    return {"rule": "all"} in held or selection in held


def _select_files(ctx: _Context, siblings: list[str], selection: dict[str, Any]) -> list[str]:
    listing = f"Files: {', '.join(siblings[:20])}{' ...' if len(siblings) > 20 else ''}"
    rule = selection["rule"]
    if rule == "file":
        filename = selection["filename"]
        if filename not in siblings:
            close = difflib.get_close_matches(filename, siblings, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise EntryNotFoundError(
                f"{ctx.what} has no file '{filename}' at revision '{ctx.revision or 'main'}'."
                f"{hint} {listing}"
            )
        return [filename]
    if rule == "patterns":
        from huggingface_hub.utils import filter_repo_objects

        wanted = list(
            filter_repo_objects(
                siblings,
                allow_patterns=selection["include"],
                ignore_patterns=selection["exclude"],
            )
        )
        if not wanted:
            raise EntryNotFoundError(
                f"No file of {ctx.what} matches include={selection['include']} "
                f"exclude={selection['exclude']}. {listing}"
            )
        return wanted
    return list(siblings) if rule == "all" else select_model_files(siblings)


def _announce(
    ctx: _Context,
    wanted: list[str],
    sizes: dict[str, int | None],
    left_out: list[str],
) -> None:
    """The selection, on stderr, before the transfer starts."""
    total = _fmt_bytes(sum(sizes.get(f) or 0 for f in wanted))
    lines = [
        f"Fetching {len(wanted)} file{'s' if len(wanted) != 1 else ''} ({total}) of "
        f"{ctx.what}: {', '.join(wanted)}"
    ]
    if left_out:
        shown = ", ".join(left_out[:12]) + (" ..." if len(left_out) > 12 else "")
        lines.append(
            f"Left out {len(left_out)} file{'s' if len(left_out) != 1 else ''} that "
            f"transformers/PyTorch do not load ({shown}); --all-files fetches them."
        )
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def ensure_model(
    repo_id: str,
    filename: str | None = None,
    *,
    revision: str | None = None,
    include: str | list[str] | None = None,
    exclude: str | list[str] | None = None,
    all_files: bool = False,
    repo_type: str = "model",
    output_dir: str | Path | None = None,
    force: bool = False,
    token: str | None = None,
    dry_run: bool = False,
) -> AssetDownload:
    """Make sure the repo's files are in the asset folder; download only what is missing.

    Args:
        repo_id, filename, revision, include, exclude, all_files, repo_type, output_dir, force:
            as for :func:`download_model`.
        token: Hugging Face token; None uses ``HF_TOKEN`` or the stored login.
        dry_run: only say which files would be fetched and their size; write nothing.

    Returns:
        What was done (:class:`AssetDownload`).

    Raises:
        HFAssetError: as :func:`download_model`.
    """
    start = time.monotonic()
    repo_id = _strip_hub_url(repo_id.strip())
    default_target = repo_files_path(repo_id, repo_type)  # validates the id and the type
    include_l, exclude_l = _as_list(include), _as_list(exclude)
    if filename is not None and (include_l or exclude_l or all_files):
        raise HFAssetError("Pass either a filename, include/exclude patterns or all_files.")
    if all_files and (include_l or exclude_l):
        raise HFAssetError("all_files fetches every file; it cannot be combined with patterns.")
    if filename is not None and (
        filename.startswith("/") or ".." in filename.split("/") or not filename.strip()
    ):
        raise HFAssetError(f"'{filename}' is not a file path inside a repo (e.g. 'config.json').")
    target = Path(output_dir).expanduser().resolve() if output_dir else default_target
    ctx = _Context(
        "files",
        repo_id,
        repo_id,
        revision,
        target,
        filename=filename,
        repo_type=repo_type,
        token=token,
    )
    selection = _selection(filename, include_l, exclude_l, all_files, repo_type)
    asked = {"kind": "files", "repo_type": repo_type, "repo_id": repo_id, "revision": revision}

    manifest = _check_existing(target, asked, force)
    existing = manifest if not force else None
    if existing is not None:
        if _selection_covered(existing, target, selection):
            path = target / filename if filename is not None else target
            return _model_result(target, path, existing, False, start)
        # Add to the folder what it lacks, from the commit it already holds.
        revision = str(existing.get("commit") or revision or "main")

    if _offline_mode():
        raise _offline_error(ctx)

    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi(token=token)
    info = _run_translated(
        ctx,
        lambda: api.repo_info(repo_id, repo_type=repo_type, revision=revision, files_metadata=True),
    )
    commit = info.sha
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    siblings = list(sizes)
    wanted = _select_files(ctx, siblings, selection)
    left_out = [f for f in siblings if f not in wanted] if selection["rule"] == "default" else []
    if existing is not None:
        held = existing.get("files") or {}
        wanted = [f for f in wanted if f not in held or not (target / f).is_file()]
        foreign = [f for f in wanted if f not in held and (target / f).exists()]
        if foreign:
            raise AssetConflictError(
                f"{_display_path(target)} holds files this tool did not download where "
                f"{ctx.what} has files of the same name ({', '.join(foreign[:5])}); they are "
                "never overwritten. Move them away, or choose another --output-dir."
            )
    if dry_run:
        return _dry_run_result(
            target, repo_id, revision, commit, {f: sizes[f] for f in wanted}, start
        )
    _announce(ctx, wanted, sizes, left_out)

    partial = _new_partial(target)
    try:
        staged = partial / "asset"
        staged.mkdir()
        # One file at a time in this thread: Ctrl-C interrupts the transfer at once.
        for rel in wanted:
            fetch = functools.partial(
                hf_hub_download,
                repo_id,
                rel,
                repo_type=repo_type,
                revision=commit,
                local_dir=staged,
                token=token,
            )
            _run_translated(ctx, fetch)
        shutil.rmtree(staged / ".cache", ignore_errors=True)
        files = _list_files(staged)
        held_files = (existing or {}).get("files") or {}
        selections = _selections(existing) if existing else []
        if selection not in selections:
            selections.append(selection)
        new_manifest = {
            "kind": "files",
            "repo_type": repo_type,
            "repo_id": repo_id,
            "revision": (existing or {}).get("revision") or ctx.revision or "main",
            "commit": commit,
            "files": {**held_files, **files},
            "selections": selections,
            "downloaded_at": _now(),
            "endpoint": _endpoint(),
        }
        if existing is None:
            _write_manifest(staged, new_manifest)
            _place(staged, target, asked, replace=manifest is not None)
        else:
            # The manifest first: after a crash mid-way, the files it lists but lacks are
            # fetched by the next run, and no file is left unlisted.
            _write_manifest(target, new_manifest)
            for rel in files:
                dest = target / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                atomic_move(staged / rel, dest)
    finally:
        _drop_partial(partial, target)
    path = target / filename if filename is not None else target
    result = _model_result(target, path, new_manifest, True, start)
    if filename is None:
        result.num_files, result.num_bytes = len(files), sum(files.values())
    return result


def _model_result(
    target: Path, path: Path, manifest: dict[str, Any], downloaded: bool, start: float
) -> AssetDownload:
    num_files, num_bytes = _folder_stats(path)
    return AssetDownload(
        path=path,
        folder=target,
        repo_id=str(manifest.get("repo_id")),
        revision=str(manifest.get("revision")),
        commit=manifest.get("commit"),
        downloaded=downloaded,
        num_files=num_files,
        num_bytes=num_bytes,
        seconds=time.monotonic() - start,
    )


def download_model(
    repo_id: str,
    filename: str | None = None,
    *,
    revision: str | None = None,
    include: str | list[str] | None = None,
    exclude: str | list[str] | None = None,
    all_files: bool = False,
    repo_type: str = "model",
    output_dir: str | Path | None = None,
    force: bool = False,
) -> Path:
    """Download a Hub model's files (what loading needs, one file, or by patterns).

    Files are plain files in ``assets/models/<org>/<name>/`` at their repo paths. Without
    ``filename``/``include``/``exclude`` only what ``transformers``/PyTorch load is fetched
    (:func:`select_model_files`); ``all_files`` fetches every file. What is already there is
    returned without network access (unless ``force``); a folder holding another repo or revision
    is refused. A new folder is downloaded to a hidden partial folder and moved into place when
    complete; Ctrl-C stops the transfer and removes it.

    Args:
        repo_id: ``"org/name"``.
        filename: one file of the repo (``"config.json"``); None for a selection of files.
        revision: branch, tag or commit; None for ``main`` (or whatever is already in place).
        include: glob patterns (``"*.json"``) the files must match (instead of the default rule).
        exclude: glob patterns of files to leave out.
        all_files: fetch every file of the repo.
        repo_type: ``"model"``, or ``"dataset"``/``"space"`` for the raw files of such a repo
            (every file by default; in ``assets/repos/<type>s/<org>/<name>``).
        output_dir: the folder to download to instead of the layout's.
        force: download again and replace what is in place (never a folder this tool did not
            write, nor one holding files it did not write).

    Returns:
        The downloaded file (with ``filename``) or the folder.

    Raises:
        HFAssetError: a subclass saying what went wrong (unknown repo, revision or file, gated
            repo, offline, disk full, broken transfer, conflict).
    """
    result = ensure_model(
        repo_id,
        filename,
        revision=revision,
        include=include,
        exclude=exclude,
        all_files=all_files,
        repo_type=repo_type,
        output_dir=output_dir,
        force=force,
    )
    return result.path


# --------------------------------------------------------------------------------------------------
# project links


def link_dataset(
    project: str | Path, name: str, *, target: str | Path | None = None, force: bool = False
) -> Path:
    """Link ``projects/<project>/data`` to ``assets/datasets/<name>`` with a relative symlink.

    In the default layout the link reads ``../../assets/datasets/<name>``, as the seed's
    ``ln -s ../../assets/datasets/<name> data`` makes it. A link that already points there is kept;
    one that points elsewhere is replaced only with ``force``; a real file or folder is never
    touched.

    Args:
        project: a project name (a folder under ``projects/``) or the path to a project folder.
        name: the data set folder under ``assets/datasets`` (``"wmt14"``, ``"org/name"``).
        target: link to this folder instead of ``assets/datasets/<name>``.
        force: replace a link that points elsewhere.

    Returns:
        The link's path.

    Raises:
        HFAssetError: the project or the data set folder does not exist, or ``data`` is a real
            file or folder. AssetConflictError: ``data`` links elsewhere and ``force`` is off.
    """
    project_folder = project_dir(project)
    dest = Path(target).expanduser().resolve() if target else get_datasets_dir() / name
    if not dest.is_dir():
        raise HFAssetError(
            f"{_display_path(dest)} does not exist: download it first, e.g. "
            f"python tools/download_hf_dataset.py --name {name}"
        )
    link = project_folder / "data"
    relative = os.path.relpath(dest, project_folder)
    _check_link(link, dest, force)
    if link.is_symlink() and Path(os.path.realpath(link)) == dest.resolve():
        return link
    tmp = project_folder / f".data.{uuid.uuid4().hex[:8]}.tmp"
    os.symlink(relative, tmp, target_is_directory=True)
    os.replace(tmp, link)  # atomic swap of a symlink; atomic_move never replaces
    return link


def _check_link(link: Path, dest: Path, force: bool) -> None:
    """Refuse to replace a real ``link`` file or folder, or a symlink elsewhere without force."""
    if link.exists() and not link.is_symlink():
        kind = "folder" if link.is_dir() else "file"
        raise HFAssetError(
            f"{_display_path(link)} is a real {kind}, not a symlink; refusing to replace it. "
            "Move it away first."
        )
    if link.is_symlink() and not force and Path(os.path.realpath(link)) != dest.resolve():
        raise AssetConflictError(
            f"{_display_path(link)} already links to {os.readlink(link)}, not to "
            f"{_display_path(dest)}; pass --force (force=True) to point it there."
        )


def check_link(project: str | Path, dest: Path, force: bool = False) -> None:
    """Fail before a download when ``--link`` could not be made afterwards (see link_dataset).

    Raises:
        HFAssetError: no such project, ``data`` is a real file or folder, or it links elsewhere.
    """
    _check_link(project_dir(project) / "data", dest, force)


def project_dir(project: str | Path) -> Path:
    """The folder of ``project``: a name under ``projects/`` or a path; it must exist.

    Raises:
        HFAssetError: no such folder (the message lists the projects).
    """
    text = str(project)
    if os.sep in text or "/" in text or Path(text).is_absolute():
        folder = Path(text).expanduser().resolve()
    else:
        folder = repo_root() / "projects" / text
    if not folder.is_dir():
        projects = repo_root() / "projects"
        known = (
            sorted(
                p.name
                for p in projects.iterdir()
                if p.is_dir() and not p.name.startswith((".", "_"))
            )
            if projects.is_dir()
            else []
        )
        raise HFAssetError(
            f"No project folder {_display_path(folder)}. Projects: {', '.join(known) or 'none'}."
        )
    return folder


# --------------------------------------------------------------------------------------------------
# command-line support (tools/download_hf_*.py)


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "hf_***")
    return text


def run_cli(
    action: Callable[[], AssetDownload],
    token: str | None,
    target: Callable[[], Path | None] | None = None,
) -> int:
    """Run a download for a CLI: summary line, clear errors, exit codes, Ctrl-C cleanup.

    Where ``os.fork`` exists the download runs in a child process. On Ctrl-C (or SIGTERM) the
    parent kills it at once, so no download thread can write after the cleanup, then removes its
    partial folder. Elsewhere the download runs in-process and is cleaned up as well as threads
    allow.

    Args:
        action: performs the download.
        token: the token in use, so that it is never echoed.
        target: gives the asset folder the action writes (for the cleanup after Ctrl-C).

    Returns:
        The exit status: 0, 1 for errors, 2 when the target holds something else (a conflict),
        130 after Ctrl-C (143 after SIGTERM).
    """
    if not hasattr(os, "fork"):
        return _run_in_process(action, token)
    folder: Path | None = None
    with contextlib.suppress(Exception):
        folder = target() if target else None
    created = _missing_ancestors(folder) if folder is not None else []
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: the parent handles interruptions
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        code = 1
        try:
            code = _run_action(action, token)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def on_signal(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        if folder is not None:
            _remove_stale_partials(folder)
            _remove_created_folders(folder, created)
        sys.stderr.write("\nInterrupted. The partial download was removed; nothing was saved.\n")
        sys.stderr.flush()
        os._exit(128 + signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _run_in_process(action: Callable[[], AssetDownload], token: str | None) -> int:
    def on_interrupt(signum: int, frame: object) -> None:
        # Worker threads may be blocked mid-transfer: clean up and leave now instead of waiting.
        cleanup_partial_downloads()
        sys.stderr.write("\nInterrupted. The partial download was removed; nothing was saved.\n")
        sys.stderr.flush()
        os._exit(130)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        return _run_action(action, token)
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_action(action: Callable[[], AssetDownload], token: str | None) -> int:
    secrets = [s for s in (token, os.environ.get("HF_TOKEN")) if s]
    try:
        result = action()
    except HFAssetError as exc:
        sys.stderr.write(f"error: {_scrub(str(exc), secrets)}\n")
        return 2 if isinstance(exc, AssetConflictError) else 1
    except KeyboardInterrupt:
        cleanup_partial_downloads()
        sys.stderr.write("\nInterrupted. Nothing was saved.\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - last resort: one line, the traceback on request
        if os.environ.get("RESEARCH_DEBUG"):
            traceback.print_exc()
        message = _scrub(f"{type(exc).__name__}: {exc}", secrets).splitlines()[0]
        sys.stderr.write(
            f"error: unexpected failure: {message} (set RESEARCH_DEBUG=1 for the traceback)\n"
        )
        return 1
    print(_scrub(result.summary(), secrets), flush=True)
    return 0
