"""Model files (and the raw files of data set and Space repos): fetched one by one with
``hf_hub_download`` into ``assets/models/<org>/<name>`` (or ``assets/repos/...``)."""

from __future__ import annotations

import functools
import os
import shutil
import time
from pathlib import Path
from typing import Any

from common import settings
from common.hub.errors import AssetConflictError, DownloadFailedError, HFAssetError
from common.hub.integrity import file_problems, refuse_unrepairable, replace_damaged, sha256_file
from common.hub.manifest import check_existing, list_files, now, write_manifest
from common.hub.names import repo_files_path, strip_hub_url
from common.hub.selection import (
    announce,
    as_list,
    select_files,
    selection,
    selection_covered,
    selections,
)
from common.hub.staging import drop_partial, new_partial, place
from common.hub.summary import AssetDownload, display_path, dry_run_result, manifest_result
from common.hub.translate import Context, endpoint, offline_error, offline_mode, run_translated
from common.utils.atomic import atomic_move


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
    """Make sure the repo's files (what loading needs, one file, or by patterns) are in the asset
    folder; download only what is missing. The one implementation of a model download.

    Files are plain files in ``assets/models/<org>/<name>/`` at their repo paths. Without
    ``filename``/``include``/``exclude`` only what ``transformers``/PyTorch load is fetched
    (:func:`~common.hub.selection.select_model_files`); ``all_files`` fetches every file. What is
    already there is returned without network access (unless ``force``); a folder holding another
    repo or revision is refused. A new folder is downloaded to a hidden partial folder and moved
    into place when complete; Ctrl-C stops the transfer and removes it.

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
        token: Hugging Face token; None uses ``HF_TOKEN`` or the stored login.
        dry_run: only say which files would be fetched and their size; write nothing.

    Returns:
        What was done (:class:`AssetDownload`; ``.path`` is the file with ``filename``, else the
        folder).

    Raises:
        HFAssetError: a subclass saying what went wrong (unknown repo, revision or file, gated
            repo, offline, disk full, broken transfer, conflict).
    """
    start = time.monotonic()
    token = token or settings.hf_token()
    repo_id = strip_hub_url(repo_id.strip())
    default_target = repo_files_path(repo_id, repo_type)  # validates the id and the type
    include_l, exclude_l = as_list(include), as_list(exclude)
    if filename is not None and (include_l or exclude_l or all_files):
        raise HFAssetError("Pass either a filename, include/exclude patterns or all_files.")
    if all_files and (include_l or exclude_l):
        raise HFAssetError("all_files fetches every file; it cannot be combined with patterns.")
    if filename is not None and (
        filename.startswith("/") or ".." in filename.split("/") or not filename.strip()
    ):
        raise HFAssetError(f"'{filename}' is not a file path inside a repo (e.g. 'config.json').")
    target = Path(output_dir).expanduser().resolve() if output_dir else default_target
    ctx = Context(
        "files",
        repo_id,
        repo_id,
        revision,
        target,
        filename=filename,
        repo_type=repo_type,
        token=token,
    )
    rule = selection(filename, include_l, exclude_l, all_files, repo_type)
    asked = {"kind": "files", "repo_type": repo_type, "repo_id": repo_id, "revision": revision}

    manifest = check_existing(target, asked, force)
    existing = manifest if not force else None
    damaged: dict[str, str] = {}  # listed files that are missing, of another type or size
    if existing is not None:
        damaged = file_problems(target, existing)
        refuse_unrepairable(target, damaged)
        if not damaged and selection_covered(existing, rule):
            path = target / filename if filename is not None else target
            return manifest_result(target, existing, downloaded=False, start=start, path=path)
        # Add to the folder what it lacks, from the commit it already holds.
        revision = str(existing.get("commit") or revision or "main")

    if offline_mode():
        raise offline_error(ctx)

    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi(token=token)
    info = run_translated(
        ctx,
        lambda: api.repo_info(repo_id, repo_type=repo_type, revision=revision, files_metadata=True),
    )
    commit = info.sha
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    siblings = list(sizes)
    wanted = select_files(ctx, siblings, rule)
    left_out = [f for f in siblings if f not in wanted] if rule["rule"] == "default" else []
    if existing is not None:
        held = existing.get("files") or {}
        wanted = [f for f in wanted if f not in held or f in damaged]
        wanted += [f for f in damaged if f not in wanted and f in sizes]
        foreign = [f for f in wanted if f not in held and os.path.lexists(target / f)]
        if foreign:
            raise AssetConflictError(
                f"{display_path(target)} holds files this tool did not download where "
                f"{ctx.what} has files of the same name ({', '.join(foreign[:5])}); they are "
                "never overwritten. Move them away, or choose another --output-dir."
            )
    if dry_run:
        return dry_run_result(
            target, repo_id, revision, commit, {f: sizes[f] for f in wanted}, start
        )
    announce(ctx, wanted, sizes, left_out)

    partial = new_partial(target)
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
            run_translated(ctx, fetch)
        shutil.rmtree(staged / ".cache", ignore_errors=True)
        files = list_files(staged)
        hashes = {rel: sha256_file(staged / rel) for rel in files}
        _check_lfs_hashes(ctx, info.siblings or [], hashes)
        held_files = (existing or {}).get("files") or {}
        rules = selections(existing) if existing else []
        if rule not in rules:
            rules.append(rule)
        new_manifest = {
            "kind": "files",
            "repo_type": repo_type,
            "repo_id": repo_id,
            "revision": (existing or {}).get("revision") or ctx.revision or "main",
            "commit": commit,
            "files": {**held_files, **files},
            "sha256": {**((existing or {}).get("sha256") or {}), **hashes},
            "selections": rules,
            "downloaded_at": now(),
            "endpoint": endpoint(),
        }
        if existing is None:
            write_manifest(staged, new_manifest)
            place(staged, target, asked, replace=manifest is not None)
        else:
            # The manifest first: after a crash mid-way, the files it lists but lacks are
            # fetched by the next run, and no file is left unlisted.
            write_manifest(target, new_manifest)
            for rel in files:
                dest = target / rel
                if rel in damaged:
                    replace_damaged(staged / rel, dest)
                else:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    atomic_move(staged / rel, dest)
    finally:
        drop_partial(partial, target)
    path = target / filename if filename is not None else target
    result = manifest_result(target, new_manifest, downloaded=True, start=start, path=path)
    result.repaired = {rel: why for rel, why in damaged.items() if rel in files}
    if filename is None:
        result.num_files, result.num_bytes = len(files), sum(files.values())
    return result


def _check_lfs_hashes(ctx: Context, siblings: list[Any], hashes: dict[str, str]) -> None:
    """Raise :class:`DownloadFailedError` when a fetched LFS file's SHA-256 is not the Hub's."""
    for sibling in siblings:
        lfs = getattr(sibling, "lfs", None)
        got = hashes.get(sibling.rfilename)
        if lfs is not None and got is not None and got != lfs.sha256:
            raise DownloadFailedError(
                f"The transfer of {ctx.what} gave {sibling.rfilename} with another SHA-256 than "
                "the Hub's. Nothing was kept; run the command again to retry."
            )


def download_model(repo_id: str, filename: str | None = None, **options: Any) -> Path:
    """Download a Hub model's files into ``assets/models/<org>/<name>/`` (once; later calls reuse
    them) and return the downloaded file (with ``filename``) or the folder.

    The seed's name for :func:`ensure_model`, which documents ``options`` (``revision``,
    ``include``, ``exclude``, ``all_files``, ``repo_type``, ``output_dir``, ``force``, ``token``).

    Raises:
        HFAssetError: as :func:`ensure_model`.
    """
    return ensure_model(repo_id, filename, **options).path
