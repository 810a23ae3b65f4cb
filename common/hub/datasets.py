"""Data sets: loaded with ``datasets`` (only the requested split) and saved with ``save_to_disk``
to ``assets/datasets/<name>``."""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import settings
from common.hub.errors import HFAssetError
from common.hub.integrity import file_problems, sha256_file
from common.hub.manifest import check_existing, list_files, now, refuse_foreign, write_manifest
from common.hub.names import dataset_base_name, dataset_path, resolve_dataset_name, safe_split
from common.hub.staging import drop_partial, new_partial, place
from common.hub.summary import (
    AssetDownload,
    display_path,
    dry_run_result,
    manifest_result,
    repaired_line,
)
from common.hub.translate import (
    Context,
    endpoint,
    offline_error,
    offline_mode,
    run_translated,
    script_error,
)

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict


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
    """Make sure the data set is saved in its asset folder; download it only when needed. The one
    implementation of a data set download.

    It is saved with ``datasets``' ``save_to_disk`` to ``assets/datasets/<name>`` whatever the
    config and split; only the requested split is downloaded and prepared. When the same data set
    is already there nothing is fetched (unless ``force``); when the folder holds another config,
    split, revision or repo the download is refused (pass ``output_dir`` for a second copy). The
    download happens in a hidden partial folder that is moved into place only when complete.

    Args:
        name: alias (``"tinystories"``, see :data:`DATASET_ALIASES`) or repo id ``"org/name"``.
        config: configuration (``datasets``' ``name``); None for the default one.
        split: a split (``"train"``, ``"train[:10%]"``); None for every split.
        revision: branch, tag or commit; None for ``main`` (or whatever is already in place).
        output_dir: the folder to save to instead of the layout's (see :mod:`common.hub`).
        force: download again and replace what is in place (never a folder this tool did not
            write, nor one holding files it did not write).
        token: Hugging Face token; None uses ``HF_TOKEN`` or the stored login.
        dry_run: only say which data files would be fetched and their size; write nothing.

    Returns:
        What was done (:class:`AssetDownload`); the data itself is not loaded.

    Raises:
        HFAssetError: a subclass saying what went wrong (unknown repo, revision, config or split,
            gated repo, offline, loading script, disk full, broken transfer, conflict).
    """
    start = time.monotonic()
    token = token or settings.hf_token()
    repo_id = resolve_dataset_name(name)
    display_name = dataset_base_name(name)
    for label, value in (("config", config), ("split", split)):
        if value is not None and not value.strip():
            raise HFAssetError(f"The {label} name is empty; leave out --{label} for the default.")
    target = Path(output_dir).expanduser().resolve() if output_dir else dataset_path(name)
    ctx = Context(
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
        suffix = "".join(f"--{safe_split(v)}" for v in (config, split) if v)
        hint = f", e.g. --output-dir {display_path(target)}{suffix or '--copy'}"
    manifest = check_existing(target, asked, force, hint)
    damaged: dict[str, str] = {}  # listed files that are missing, of another type or size
    if manifest is not None and not force:
        damaged = file_problems(target, manifest)
        if not damaged:
            return _dataset_result(target, manifest, downloaded=False, start=start)
        damage = repaired_line(damaged).split(": ", 1)[1]
        refuse_foreign(target, manifest, f", damaged ({damage}),")
        # The saved files come from one save_to_disk: the same commit is saved again, whole.
        revision = str(manifest.get("commit") or revision or "main")

    if offline_mode():
        raise offline_error(ctx)

    from huggingface_hub import HfApi

    api = HfApi(token=token)
    info = run_translated(
        ctx, lambda: api.dataset_info(repo_id, revision=revision, files_metadata=dry_run)
    )
    commit = info.sha
    siblings = [s.rfilename for s in info.siblings or []]
    if f"{repo_id.split('/')[-1]}.py" in siblings:
        raise script_error(ctx)

    if dry_run:
        with tempfile.TemporaryDirectory(prefix="hf-dry-run-") as cache:
            builder = run_translated(
                ctx, lambda: _dataset_builder(repo_id, config, split, commit, token, Path(cache))
            )
        sizes = {s.rfilename: s.size for s in info.siblings or []}
        prefix = f"hf://datasets/{repo_id}@{commit}/"
        files = {
            url[len(prefix) :] if url.startswith(prefix) else url: sizes.get(url[len(prefix) :])
            for urls in (builder.config.data_files or {}).values()
            for url in urls
        }
        return dry_run_result(target, repo_id, revision, commit, files, start)

    partial = new_partial(target)
    try:
        staged = partial / "asset"
        num_rows = run_translated(
            ctx,
            lambda: _load_and_save(
                _dataset_builder(repo_id, config, split, commit, token, partial / "cache"),
                split,
                staged,
                force,
            ),
        )
        new_manifest = {
            "kind": "dataset",
            "repo_type": "dataset",
            "name": display_name,
            "repo_id": repo_id,
            "revision": (manifest or {}).get("revision") if damaged else revision or "main",
            "commit": commit,
            "config": config,
            "split": split,
            "num_rows": num_rows,
            "files": list_files(staged),
            "sha256": {rel: sha256_file(staged / rel) for rel in list_files(staged)},
            "downloaded_at": now(),
            "endpoint": endpoint(),
        }
        write_manifest(staged, new_manifest)
        place(staged, target, asked, replace=manifest is not None)
    finally:
        drop_partial(partial, target)
    result = _dataset_result(target, new_manifest, downloaded=True, start=start)
    result.repaired = damaged
    return result


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


def _load_and_save(builder: Any, split: str | None, staged: Path, force: bool) -> dict[str, int]:
    """Download and prepare what ``builder`` (from :func:`_dataset_builder`, which checks the
    split before any data is downloaded) holds, save it to ``staged``; the rows per split."""
    import datasets

    # What datasets.load_dataset does. The Arrow cache is the builder's, in the partial folder:
    # the saved copy is the only one kept.
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
    rows = manifest.get("num_rows") or {}
    details = ""
    if rows:
        parts = ", ".join(f"{name} {count:,}" for name, count in rows.items())
        details = f"{len(rows)} split{'s' if len(rows) != 1 else ''} ({parts} rows)"
    if manifest.get("config"):
        details = f"config {manifest['config']}, " + details
    return manifest_result(target, manifest, downloaded=downloaded, start=start, details=details)


def download_dataset(
    name: str, config: str | None = None, split: str | None = None, **options: Any
) -> Dataset | DatasetDict:
    """Download a Hub data set into ``assets/datasets/<name>`` (once; later calls load the saved
    copy without network access) and return it loaded from disk.

    The seed's name for :func:`ensure_dataset`, which documents ``options`` (``revision``,
    ``output_dir``, ``force``, ``token``).

    Returns:
        A ``DatasetDict`` (every split) or a ``Dataset`` (one ``split``), loaded from the saved
        folder: ``load_from_disk(get_datasets_dir() / name)`` gives the same.

    Raises:
        HFAssetError: as :func:`ensure_dataset`.
    """
    result = ensure_dataset(name, config, split, **options)
    from datasets import load_from_disk

    return load_from_disk(str(result.folder))
