"""Download Hugging Face data sets and models into ``assets/`` once, use them from every project.

Layout (``get_datasets_dir()`` is ``assets/datasets``, ``get_models_dir()`` is ``assets/models``)::

    assets/datasets/<name>/                       download_dataset(name): all splits, a DatasetDict
    assets/datasets/<name>--<config>/             download_dataset(name, config)
    assets/datasets/<name>[--<config>]--<split>/  download_dataset(name, config, split): a Dataset
    assets/models/<org>/<model>/                  download_model("org/model"): the repo's files

``<name>`` is the name as you pass it: an alias from :data:`DATASET_ALIASES` (``tinystories``) or
a repo id, which becomes nested folders (``roneneldan/TinyStories``). So
``load_from_disk(get_datasets_dir() / name)`` loads what ``download_dataset(name)`` saved, and
``get_models_dir() / repo_id`` is a folder ``transformers``' ``from_pretrained`` can read. ``--``
never occurs in Hub repo names, which keeps the config and split suffixes unambiguous; characters
other than letters, digits and ``._+-`` in a split expression (``train[:10%]``) become ``_``.

Model folders hold the repository's files as plain files (no cache symlinks). Every finished asset
folder holds ``.download.json``: repo id, requested revision, resolved commit, config, split or
file patterns, sizes, time. Downloads go to a hidden ``.<folder>.partial-<pid>-<id>`` folder next to
the target and are renamed into place only when complete, so an interrupted or failed download never
leaves a folder that looks finished. An asset already in place is returned without any network
access (unless ``force``); asking for another revision than the one in place is an error
(:class:`AssetConflictError`): pass ``force`` to replace it or ``output_dir`` to keep both.

``huggingface_hub`` and ``datasets`` read ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_HUB_OFFLINE`` when
they are first imported; this module imports them only inside the functions that need them. The
token comes from ``token=``, else ``HF_TOKEN``, else the stored ``hf auth login`` token; it is never
printed or logged.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.paths import get_assets_dir, get_datasets_dir, get_models_dir, repo_root

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
    "resolve_dataset_name",
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


def dataset_path(name: str, config: str | None = None, split: str | None = None) -> Path:
    """Where :func:`download_dataset` puts ``name`` (with ``config``/``split``): see the layout.

    Args:
        name: alias or repo id, as passed to :func:`download_dataset`.
        config: configuration name, if one was chosen.
        split: split expression, if one was chosen.

    Returns:
        The folder under ``get_datasets_dir()``; it may not exist yet.
    """
    base = _dataset_base_name(name)
    leaf = base.rsplit("/", 1)[-1]
    if config:
        leaf += f"--{config}"
    if split:
        leaf += f"--{_safe_split(split)}"
    parent = base.rsplit("/", 1)[0] if "/" in base else ""
    return get_datasets_dir() / parent / leaf if parent else get_datasets_dir() / leaf


def model_path(repo_id: str) -> Path:
    """Where :func:`download_model` puts ``repo_id``: ``assets/models/<org>/<name>``.

    Args:
        repo_id: ``"org/name"`` (or a legacy single-name id such as ``"gpt2"``).

    Returns:
        The folder under ``get_models_dir()``; it may not exist yet.
    """
    repo_id = _strip_hub_url(repo_id.strip())
    _validate_repo_id(repo_id, "model")
    return get_models_dir() / repo_id


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
    """What :func:`ensure_dataset` / :func:`ensure_model` did, for summaries."""

    path: Path
    """The asset: its folder, or the file for a single-file model download."""
    folder: Path
    repo_id: str
    revision: str
    commit: str | None
    downloaded: bool
    """False when it was already in place and nothing was transferred."""
    num_files: int
    num_bytes: int
    seconds: float
    details: str = ""

    def summary(self) -> str:
        """One line: where, how many files, size, time."""
        where = _display_path(self.path)
        source = f"{self.repo_id}@{self.revision}"
        if self.commit:
            source += f" (commit {self.commit[:7]})"
        files = f"{self.num_files} file{'s' if self.num_files != 1 else ''}"
        size = f"{files}, {_fmt_bytes(self.num_bytes)}"
        if self.details:
            size += f", {self.details}"
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
    tmp = folder / f"{MANIFEST_NAME}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, folder / MANIFEST_NAME)


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


def _place(staged: Path, target: Path, partial: Path, replace: bool) -> None:
    """Rename the finished ``staged`` folder to ``target``; ``replace`` moves an old one aside.

    When another process placed the same asset meanwhile (and ``replace`` is off), keep theirs.
    """
    if target.exists() or target.is_symlink():
        if not replace:
            if _read_manifest(target) is not None:
                return
            raise AssetConflictError(f"{target} appeared while downloading; it was left untouched.")
        os.rename(target, partial / "previous")
    os.rename(staged, target)


def _revision_matches(manifest: dict[str, Any], revision: str | None) -> bool:
    if revision is None:
        return True
    commit = str(manifest.get("commit") or "")
    return revision in (manifest.get("revision"), commit) or (
        len(revision) >= 7 and commit.startswith(revision)
    )


def _check_existing(target: Path, revision: str | None, force: bool, what: str) -> dict | None:
    """The manifest of a finished asset at ``target`` that satisfies ``revision``, else None."""
    if force or not (target.exists() or target.is_symlink()):
        return None
    manifest = _read_manifest(target) if target.is_dir() else None
    if manifest is None:
        raise AssetConflictError(
            f"{target} exists but is not a finished download of {what} (no {MANIFEST_NAME}). "
            "Remove it, pass --force (force=True) to replace it, or choose --output-dir."
        )
    if not _revision_matches(manifest, revision):
        held = manifest.get("revision")
        commit = str(manifest.get("commit") or "")[:7]
        raise AssetConflictError(
            f"{target} holds {what} at revision '{held}' (commit {commit}), not '{revision}'. "
            "Pass --force (force=True) to replace it, or --output-dir for a separate copy."
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
    kind: str  # "dataset" | "model"
    repo_id: str
    name: str
    revision: str | None
    target: Path
    config: str | None = None
    split: str | None = None
    filename: str | None = None

    @property
    def what(self) -> str:
        label = f"data set '{self.name}'" if self.kind == "dataset" else f"model '{self.repo_id}'"
        if self.kind == "dataset" and self.name != self.repo_id:
            label += f" ({self.repo_id})"
        return label

    @property
    def page(self) -> str:
        prefix = "datasets/" if self.kind == "dataset" else ""
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
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            where = _existing_parent(ctx.target)
            free = _fmt_bytes(shutil.disk_usage(where).free)
            if err.errno == errno.EFBIG:
                head = "The file size limit (ulimit -f) was reached"
            else:
                head = "The disk is full"
            return DiskFullError(
                f"{head} while downloading {ctx.what} to {_display_path(ctx.target)} "
                f"({err.strerror}; {free} free there). Nothing was kept: free some space, or "
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
    kind = "data set" if ctx.kind == "dataset" else "model"
    return RepoNotFoundError(
        f"No {kind} repository '{ctx.repo_id}' on the Hub ({_endpoint()}){alias}. Check the id "
        f"(org/name). If it is private: {_token_help()}"
    )


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
) -> AssetDownload:
    """Make sure the data set is saved in its asset folder; download it only when needed.

    Args:
        name, config, split, revision, output_dir, force: as for :func:`download_dataset`.
        token: Hugging Face token; None uses ``HF_TOKEN`` or the stored login.

    Returns:
        What was done (:class:`AssetDownload`); the data itself is not loaded.

    Raises:
        HFAssetError: as :func:`download_dataset`.
    """
    start = time.monotonic()
    repo_id = resolve_dataset_name(name)
    if output_dir:
        target = Path(output_dir).expanduser().resolve()
    else:
        target = dataset_path(name, config, split)
    display_name = _dataset_base_name(name)
    ctx = _Context("dataset", repo_id, display_name, revision, target, config=config, split=split)

    manifest = _check_existing(target, revision, force, ctx.what)
    if manifest is not None:
        return _dataset_result(target, manifest, downloaded=False, start=start)

    if _offline_mode():
        raise _offline_error(ctx)

    from huggingface_hub import HfApi

    api = HfApi(token=token)
    info = _run_translated(ctx, lambda: api.dataset_info(repo_id, revision=revision))
    commit = info.sha
    siblings = [s.rfilename for s in info.siblings or []]
    if _find_loading_script(repo_id, siblings) is not None:
        raise _script_error(ctx)

    partial = _new_partial(target)
    try:
        staged = partial / "asset"
        num_rows = _run_translated(
            ctx,
            lambda: _load_and_save(
                repo_id, config, split, commit, token, partial / "cache", staged, force
            ),
        )
        manifest = {
            "kind": "dataset",
            "name": display_name,
            "repo_id": repo_id,
            "revision": revision or "main",
            "commit": commit,
            "config": config,
            "split": split,
            "num_rows": num_rows,
            "downloaded_at": _now(),
            "endpoint": _endpoint(),
        }
        _write_manifest(staged, manifest)
        _place(staged, target, partial, replace=force)
    finally:
        _drop_partial(partial, target)
    return _dataset_result(target, manifest, downloaded=True, start=start)


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
    builder = datasets.load_dataset_builder(
        repo_id, config, revision=commit, token=token, cache_dir=str(cache_dir)
    )
    known = builder.config.data_files
    if split is not None and isinstance(known, dict) and known:
        wanted = [re.sub(r"\[.*\]$", "", part).strip() for part in split.split("+")]
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise ValueError(f"Unknown split {unknown[0]!r}. Should be one of {sorted(known)}.")
    # force: fetch the data files again instead of reusing the Hugging Face cache.
    builder.download_and_prepare(download_mode="force_redownload" if force else None)
    loaded = builder.as_dataset(split=split)
    loaded.save_to_disk(str(staged))
    if isinstance(loaded, datasets.DatasetDict):
        return {name: ds.num_rows for name, ds in loaded.items()}
    return {split or "data": loaded.num_rows}


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

    When it is already there it is loaded from disk without any network access (unless
    ``force``). The download happens in a hidden partial folder that is renamed into place only
    when complete.

    Args:
        name: alias (``"tinystories"``, see :data:`DATASET_ALIASES`) or repo id ``"org/name"``.
        config: configuration (``datasets``' ``name``); None for the default one.
        split: a split (``"train"``, ``"train[:10%]"``); None for every split.
        revision: branch, tag or commit; None for ``main`` (or whatever is already in place).
        output_dir: the folder to save to instead of the layout's (see the module docstring).
        force: download again and replace what is in place.

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


def _snapshot_covered(
    manifest: dict[str, Any], include: list[str] | None, exclude: list[str] | None
) -> bool:
    for snap in manifest.get("snapshots", []):
        if snap.get("include") is None and snap.get("exclude") is None:
            return True
        if snap.get("include") == include and snap.get("exclude") == exclude:
            return True
    return False


def ensure_model(
    repo_id: str,
    filename: str | None = None,
    *,
    revision: str | None = None,
    include: str | list[str] | None = None,
    exclude: str | list[str] | None = None,
    output_dir: str | Path | None = None,
    force: bool = False,
    token: str | None = None,
) -> AssetDownload:
    """Make sure the model files are in the asset folder; download only what is missing.

    Args:
        repo_id, filename, revision, include, exclude, output_dir, force: as for
            :func:`download_model`.
        token: Hugging Face token; None uses ``HF_TOKEN`` or the stored login.

    Returns:
        What was done (:class:`AssetDownload`).

    Raises:
        HFAssetError: as :func:`download_model`.
    """
    start = time.monotonic()
    repo_id = _strip_hub_url(repo_id.strip())
    _validate_repo_id(repo_id, "model")
    include_l, exclude_l = _as_list(include), _as_list(exclude)
    if filename is not None and (include_l or exclude_l):
        raise HFAssetError("Pass either a filename or include/exclude patterns, not both.")
    if filename is not None and (
        filename.startswith("/") or ".." in filename.split("/") or not filename.strip()
    ):
        raise HFAssetError(f"'{filename}' is not a file path inside a repo (e.g. 'config.json').")
    target = Path(output_dir).expanduser().resolve() if output_dir else model_path(repo_id)
    ctx = _Context("model", repo_id, repo_id, revision, target, filename=filename)

    manifest = _check_existing(target, revision, force, ctx.what)
    if manifest is not None:
        if filename is not None and (target / filename).is_file():
            return _model_result(target, target / filename, manifest, False, start)
        if filename is None and _snapshot_covered(manifest, include_l, exclude_l):
            return _model_result(target, target, manifest, False, start)
        # Add to the folder what it lacks, from the commit it already holds.
        revision = str(manifest.get("commit") or revision or "main")

    if _offline_mode():
        raise _offline_error(ctx)

    from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    from huggingface_hub.utils import filter_repo_objects

    api = HfApi(token=token)
    info = _run_translated(ctx, lambda: api.model_info(repo_id, revision=revision))
    commit = info.sha
    siblings = [s.rfilename for s in info.siblings or []]
    if filename is not None:
        if filename not in siblings:
            close = difflib.get_close_matches(filename, siblings, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise EntryNotFoundError(
                f"{ctx.what} has no file '{filename}' at revision '{revision or 'main'}'.{hint} "
                f"Files: {', '.join(siblings[:20])}{' ...' if len(siblings) > 20 else ''}"
            )
    else:
        wanted = list(
            filter_repo_objects(siblings, allow_patterns=include_l, ignore_patterns=exclude_l)
        )
        if not wanted:
            raise EntryNotFoundError(
                f"No file of {ctx.what} matches include={include_l} exclude={exclude_l}. "
                f"Files: {', '.join(siblings[:20])}{' ...' if len(siblings) > 20 else ''}"
            )

    existing = manifest if manifest is not None and not force else None
    partial = _new_partial(target)
    try:
        staged = partial / "asset"
        staged.mkdir()
        if filename is not None:
            _run_translated(
                ctx,
                lambda: hf_hub_download(
                    repo_id,
                    filename,
                    revision=commit,
                    local_dir=staged,
                    token=token,
                    force_download=force,
                ),
            )
        else:
            _run_translated(
                ctx,
                lambda: snapshot_download(
                    repo_id,
                    revision=commit,
                    local_dir=staged,
                    allow_patterns=include_l,
                    ignore_patterns=exclude_l,
                    token=token,
                    force_download=force,
                ),
            )
        shutil.rmtree(staged / ".cache", ignore_errors=True)
        files = {
            p.relative_to(staged).as_posix(): p.stat().st_size
            for p in sorted(staged.rglob("*"))
            if p.is_file()
        }
        snapshots = list(existing.get("snapshots", [])) if existing else []
        if filename is None:
            snapshots.append({"include": include_l, "exclude": exclude_l})
        new_manifest = {
            "kind": "model",
            "repo_id": repo_id,
            "revision": (existing or {}).get("revision") or ctx.revision or "main",
            "commit": commit,
            "files": {**((existing or {}).get("files") or {}), **files},
            "snapshots": snapshots,
            "downloaded_at": _now(),
            "endpoint": _endpoint(),
        }
        if existing is None:
            _write_manifest(staged, new_manifest)
            _place(staged, target, partial, replace=force)
        else:
            for rel in files:
                dest = target / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged / rel, dest)
            _write_manifest(target, new_manifest)
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
    output_dir: str | Path | None = None,
    force: bool = False,
) -> Path:
    """Download a Hub model (one file, or the repo filtered by patterns) to ``assets/models/``.

    Files are plain files in ``assets/models/<org>/<name>/`` at their repo paths. What is already
    there is returned without network access (unless ``force``); a new folder is downloaded to a
    hidden partial folder and renamed into place when complete.

    Args:
        repo_id: ``"org/name"``.
        filename: one file of the repo (``"config.json"``); None for a snapshot.
        revision: branch, tag or commit; None for ``main`` (or whatever is already in place).
        include: glob patterns (``"*.json"``) a snapshot's files must match.
        exclude: glob patterns of files to leave out of a snapshot.
        output_dir: the folder to download to instead of the layout's.
        force: download again and replace what is in place.

    Returns:
        The downloaded file (with ``filename``) or the model folder.

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
        output_dir=output_dir,
        force=force,
    )
    return result.path


# --------------------------------------------------------------------------------------------------
# project links


def link_dataset(project: str | Path, name: str, *, target: str | Path | None = None) -> Path:
    """Link ``projects/<project>/data`` to ``assets/datasets/<name>`` with a relative symlink.

    In the default layout the link reads ``../../assets/datasets/<name>``. An existing symlink is
    replaced; a real file or folder is never touched.

    Args:
        project: a project name (a folder under ``projects/``) or the path to a project folder.
        name: the data set folder under ``assets/datasets`` (``"tinystories"``,
            ``"org/name--config"``), as :func:`dataset_path` names it.
        target: link to this folder instead of ``assets/datasets/<name>``.

    Returns:
        The link's path.

    Raises:
        HFAssetError: the project or the data set folder does not exist, or ``data`` is a real
            file or folder.
    """
    project_folder = project_dir(project)
    dest = Path(target).expanduser().resolve() if target else get_datasets_dir() / name
    if not dest.is_dir():
        raise HFAssetError(
            f"{_display_path(dest)} does not exist: download it first, e.g. "
            f"python tools/download_hf_dataset.py --name {name}"
        )
    link = project_folder / "data"
    if link.exists() and not link.is_symlink():
        kind = "folder" if link.is_dir() else "file"
        raise HFAssetError(
            f"{_display_path(link)} is a real {kind}, not a symlink; refusing to replace it. "
            "Move it away first."
        )
    relative = os.path.relpath(dest, project_folder)
    tmp = project_folder / f".data.{uuid.uuid4().hex[:8]}.tmp"
    os.symlink(relative, tmp, target_is_directory=True)
    os.replace(tmp, link)
    return link


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
        The exit status: 0, 1 for errors, 130 after Ctrl-C (143 after SIGTERM).
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
        return 1
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
