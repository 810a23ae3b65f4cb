"""Library failures (``huggingface_hub``, ``datasets``, ``httpx2``, the OS) turned into the
specific :mod:`common.hub.errors` classes, with messages that say what to do.

:func:`translate` walks the exception's chain through a table of rule groups, in priority order;
within a group the first rule whose test matches a link of the chain decides (its builder may
answer None: look further down the chain).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import settings
from common.hub import errors
from common.hub.names import MANIFEST_NAME, REPO_TYPES, TYPE_LABEL
from common.hub.summary import display_path, fmt_bytes
from common.paths import get_datasets_dir, get_models_dir


def endpoint() -> str:
    """The Hub's address (``HF_ENDPOINT``, read through :mod:`common.settings`)."""
    return settings.hf_endpoint()


def offline_mode() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids network access."""
    return settings.hf_offline()


@dataclass
class Context:
    """The request a failure happened in, for the messages."""

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
        return f"{TYPE_LABEL[self.repo_type]} '{self.repo_id}'"

    @property
    def page(self) -> str:
        prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[self.repo_type]
        return f"{endpoint()}/{prefix}{self.repo_id}"


# -- messages --------------------------------------------------------------------------------------


def _token_help() -> str:
    return (
        "To authenticate, set HF_TOKEN=<token>, pass --token <token>, or run `hf auth login` "
        f"once (tokens: {endpoint()}/settings/tokens)."
    )


def _local_inventory(kind: str) -> str:
    root = get_datasets_dir() if kind == "dataset" else get_models_dir()
    # Asset folders are one or two levels deep ("tinystories", "org/name").
    manifests = [*root.glob(f"*/{MANIFEST_NAME}"), *root.glob(f"*/*/{MANIFEST_NAME}")]
    names = sorted(
        m.parent.relative_to(root).as_posix()
        for m in manifests
        if not any(part.startswith(".") for part in m.parent.relative_to(root).parts)
    )
    where = display_path(root)
    if not names:
        return f"Nothing has been downloaded to {where} yet."
    return f"Available locally in {where}: {', '.join(names)}."


def offline_error(ctx: Context, unreachable: str | None = None) -> errors.OfflineError:
    """Offline mode is on (or, with ``unreachable`` saying why, the Hub cannot be reached)."""
    local = f"{ctx.what} is not in {display_path(ctx.target)}. {_local_inventory(ctx.kind)}"
    if unreachable is None:
        return errors.OfflineError(
            f"Offline mode is on (HF_HUB_OFFLINE=1): {local} Unset HF_HUB_OFFLINE to download it."
        )
    return errors.HubUnreachableError(
        f"Cannot reach the Hub at {endpoint()} ({unreachable}): {local} Check the network "
        "connection and HF_ENDPOINT, then run the command again."
    )


def script_error(ctx: Context) -> errors.LoadingScriptUnsupportedError:
    """The data set is a loading script, which ``datasets`` no longer runs."""
    return errors.LoadingScriptUnsupportedError(
        f"{ctx.what} is defined by a Python loading script, and `datasets` (since 4.0) no longer "
        "runs loading scripts. Look for a version of it stored as data files (Parquet, JSON, CSV): "
        "the Hub's automatic conversion lives on the 'refs/convert/parquet' revision "
        f"(--revision refs/convert/parquet), or search {endpoint()}/datasets for a converted copy."
    )


def _gated(ctx: Context, status: int) -> errors.GatedRepoError:
    if status == 403:
        return errors.GatedRepoError(
            f"{ctx.what} is gated and the token sent has not been granted access. Request access "
            f"at {ctx.page} with the account the token belongs to, then try again."
        )
    return errors.GatedRepoError(
        f"{ctx.what} is gated: accept its conditions at {ctx.page} and send a token of that "
        "account. " + _token_help()
    )


def _repo_not_found(ctx: Context) -> errors.RepoNotFoundError:
    alias = ""
    if ctx.kind == "dataset" and ctx.name != ctx.repo_id:
        alias = f" (the alias '{ctx.name}' maps to '{ctx.repo_id}')"
    return errors.RepoNotFoundError(
        f"No {TYPE_LABEL[ctx.repo_type]} repository '{ctx.repo_id}' on the Hub ({endpoint()})"
        f"{alias}.{_other_types_hint(ctx)} Check the id (org/name). If it is private: "
        + _token_help()
    )


def _other_types_hint(ctx: Context) -> str:
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
                f" A {TYPE_LABEL[repo_type]} repository of that name exists: fetch its files "
                f"with `download_hf_model.py --repo-id {ctx.repo_id} --repo-type {repo_type}`."
            )
    return "".join(hints)


def _disk_full(err: BaseException, ctx: Context) -> errors.DiskFullError:
    code = _disk_full_errno(err) or errno.ENOSPC
    where = ctx.target
    while not where.exists() and where != where.parent:
        where = where.parent
    head = (
        "The file size limit (ulimit -f) was reached" if code == errno.EFBIG else "The disk is full"
    )
    return errors.DiskFullError(
        f"{head} while downloading {ctx.what} to {display_path(ctx.target)} "
        f"({os.strerror(code)}; {fmt_bytes(shutil.disk_usage(where).free)} free there). Nothing "
        "was kept: free some space, or pass --output-dir on another disk."
    )


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


def _bracket_list(text: str) -> str:
    m = re.search(r"\[([^\]]*)\]", text)
    return m.group(1).replace("'", "") if m else ""


def _http_status(err: Any, ctx: Context) -> errors.HFAssetError | None:
    status = err.response.status_code
    if status == 401:
        return errors.AuthenticationError(
            f"The Hub rejected the token sent for {ctx.what} (invalid or expired). " + _token_help()
        )
    if status == 403:
        return errors.AuthenticationError(
            f"The token has no permission to read {ctx.what}. " + _token_help()
        )
    if status >= 500 or status in (408, 429):
        return errors.DownloadFailedError(
            f"The server answered {status} while downloading {ctx.what}. Nothing was kept; run "
            "the command again to retry."
        )
    return None  # look further down the chain


def _broken_transfer(err: BaseException, ctx: Context) -> errors.DownloadFailedError:
    return errors.DownloadFailedError(
        f"The transfer of {ctx.what} broke off ({type(err).__name__}: {err}). Nothing was kept; "
        "run the command again to retry."
    )


def _dataset_not_found(err: BaseException, ctx: Context) -> errors.HFAssetError:
    text = str(err)
    if "gated" in text:
        return _gated(ctx, 401 if "authenticated" in text else 403)
    if "Revision" in text:
        return errors.RevisionNotFoundError(f"{ctx.what} has no revision '{ctx.revision}'.")
    return _repo_not_found(ctx)


def _no_config(err: BaseException, ctx: Context) -> errors.ConfigNotFoundError:
    text = str(err)
    if ctx.config:
        head = f"{ctx.what} has no configuration '{ctx.config}'."
    else:
        head = f"{ctx.what} has several configurations and no default: choose one."
    return errors.ConfigNotFoundError(
        f"{head} Available: {_bracket_list(text) or text}. Pass one with --config (config=...)."
    )


def _connection(err: BaseException, ctx: Context) -> errors.OfflineError:
    return offline_error(ctx) if offline_mode() else offline_error(ctx, str(err))


# -- the table -------------------------------------------------------------------------------------

Test = Callable[[BaseException], bool]
Build = Callable[[Any, Context], "errors.HFAssetError | None"]


def _is(*types: type[BaseException], text: tuple[str, ...] = (), every: bool = False) -> Test:
    """A test: an instance of ``types`` whose message holds one (or ``every``) of ``text``."""

    def test(err: BaseException) -> bool:
        if not isinstance(err, types):
            return False
        found = [t in str(err) for t in text]
        return not text or (all(found) if every else any(found))

    return test


def _rules() -> list[list[tuple[Test, Build]]]:
    import httpx2
    from huggingface_hub import errors as hub

    def status(err: Any) -> int:
        return err.response.status_code if err.response is not None else 401

    groups: list[list[tuple[Test, Build]]] = [
        [(lambda e: _disk_full_errno(e) is not None, _disk_full)],
        [
            (
                _is(RuntimeError, text=("scripts are no longer supported",)),
                lambda e, c: script_error(c),
            )
        ],
        [
            (_is(hub.GatedRepoError), lambda e, c: _gated(c, status(e))),
            (
                _is(hub.RevisionNotFoundError),
                lambda e, c: errors.RevisionNotFoundError(
                    f"{c.what} has no revision '{c.revision}' (branch, tag or commit). See the "
                    f"branches and tags at {c.page}/tree/main."
                ),
            ),
            (_is(hub.RepositoryNotFoundError), lambda e, c: _repo_not_found(c)),
            (_is(hub.LocalEntryNotFoundError), lambda e, c: None),
            (
                _is(hub.RemoteEntryNotFoundError),
                lambda e, c: errors.EntryNotFoundError(
                    f"{c.what} has no file '{c.filename or e.response.url}' at revision "
                    f"'{c.revision or 'main'}'."
                ),
            ),
            (lambda e: isinstance(e, hub.HfHubHTTPError) and e.response is not None, _http_status),
        ],
        [
            (_is(hub.OfflineModeIsEnabled), lambda e, c: offline_error(c)),
            (
                _is(httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.ProxyError),
                lambda e, c: offline_error(c, f"{type(e).__name__}: {e}"),
            ),
            (_is(httpx2.TransportError, httpx2.TimeoutException), _broken_transfer),
            (_is(OSError, text=("Consistency check failed",)), _broken_transfer),
        ],
    ]
    datasets_exc = sys.modules.get("datasets.exceptions")
    if datasets_exc is not None:
        groups.append([(_is(datasets_exc.DatasetNotFoundError), _dataset_not_found)])
    groups.append(
        [
            (_is(ValueError, text=("BuilderConfig", "not found"), every=True), _no_config),
            (_is(ValueError, text=("Config name is missing",)), _no_config),
            (
                _is(ValueError, KeyError, text=("Unknown split", "Bad split")),
                lambda e, c: errors.SplitNotFoundError(
                    f"{c.what} has no split '{c.split}'. Available: "
                    f"{_bracket_list(str(e)) or str(e)}."
                ),
            ),
            (_is(ConnectionError), _connection),
        ]
    )
    return groups


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def translate(exc: BaseException, ctx: Context) -> errors.HFAssetError | None:
    """A clear :class:`HFAssetError` for a library failure, or None when it is not recognised."""
    chain = list(_chain(exc))
    for err in chain:
        if isinstance(err, errors.HFAssetError):
            return err
    for group in _rules():
        for err in chain:
            rule = next((build for test, build in group if test(err)), None)
            found = rule(err, ctx) if rule is not None else None
            if found is not None:
                return found
    return None


def run_translated(ctx: Context, fn: Callable[[], Any]) -> Any:
    """``fn()``, its library failures raised as the matching :class:`HFAssetError`."""
    try:
        return fn()
    except errors.HFAssetError:
        raise
    except Exception as exc:
        translated = translate(exc, ctx)
        if translated is None:
            raise
        raise translated from exc
