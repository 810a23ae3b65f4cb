"""Whether a downloaded folder still holds what its manifest lists: every file a regular file
inside the folder, of the recorded size (checked on every repeat request, which fetches again
what fails), and, on request, of the recorded content (SHA-256 from the manifest, or the Hub's:
an LFS file's SHA-256, a small file's git blob id)."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.hub.errors import AssetConflictError, HFAssetError
from common.hub.manifest import read_manifest
from common.hub.names import MANIFEST_NAME
from common.hub.summary import display_path
from common.utils.atomic import fsync_dir, fsync_file

_CHUNK = 1 << 20


def file_problems(folder: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """The files the manifest lists that are not a regular file inside ``folder`` of the recorded
    size, each with what is wrong (``"missing"``, ``"size 0, expected 3,256 B"``, ...)."""
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        return {}  # manifests before files were listed: nothing to compare with
    root = os.path.realpath(folder)
    problems = {}
    for rel, size in listed.items():
        problem = _problem(folder / rel, root, size)
        if problem is not None:
            problems[rel] = problem
    return problems


def _problem(path: Path, root: str, size: Any) -> str | None:
    if os.path.commonpath([root, os.path.realpath(path.parent)]) != root:
        return "outside the folder (a symlinked folder)"
    try:
        info = path.lstat()
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    if stat.S_ISLNK(info.st_mode):
        return f"a symlink to {os.readlink(path)}"
    if stat.S_ISDIR(info.st_mode):
        return "a folder"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if isinstance(size, int) and info.st_size != size:
        return f"size {info.st_size:,}, expected {size:,} B"
    return None


def refuse_unrepairable(folder: Path, problems: dict[str, str]) -> None:
    """Raise :class:`AssetConflictError` when a damaged entry cannot be replaced without touching
    what the tool did not write: a folder with files in it, or a path through a symlinked folder.
    """
    bad = []
    for rel, problem in problems.items():
        path = folder / rel
        if problem.startswith("outside"):
            bad.append(f"{rel} ({problem})")
        elif problem == "a folder" and any(path.iterdir()):
            bad.append(f"{rel} (a folder with files in it)")
    if bad:
        raise AssetConflictError(
            f"{display_path(folder)} holds {', '.join(bad)} where the download has a file; it is "
            "never emptied or followed. Move it away, or choose another --output-dir."
        )


def replace_damaged(new: Path, dest: Path) -> None:
    """Put the freshly fetched ``new`` at ``dest`` in place of a damaged entry: a file, a symlink
    (removed itself, never what it points to) or an empty folder."""
    if dest.is_dir() and not dest.is_symlink():
        dest.rmdir()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fsync_file(new)
    os.replace(new, dest)
    fsync_dir(dest.parent)


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's content, hex."""
    return _hash_file(path, hashlib.sha256())


def _git_blob_id(path: Path) -> str:
    header = b"blob %d\0" % path.stat().st_size
    return _hash_file(path, hashlib.sha1(header))  # noqa: S324 - git's own id


def _hash_file(path: Path, digest: Any) -> str:
    """``digest`` (a hashlib object) updated with the file's content, hex."""
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return str(digest.hexdigest())


@dataclass
class Verification:
    """What :func:`verify_download` found."""

    folder: Path
    repo_id: str
    checked: list[str]
    """The files whose content was compared with a checksum."""
    problems: dict[str, str]
    """Files that differ (or are missing, of another type or size): path -> what is wrong."""
    unchecked: list[str] = field(default_factory=list)
    """Files with no checksum to compare with (neither in the manifest nor on the Hub)."""
    note: str = ""

    @property
    def ok(self) -> bool:
        """Whether every file is as downloaded."""
        return not self.problems

    def summary(self) -> str:
        """One line (a line per differing file first)."""
        where = display_path(self.folder)
        extra = f"; {len(self.unchecked)} without a checksum" if self.unchecked else ""
        extra += f" ({self.note})" if self.note else ""
        if self.ok:
            n = len(self.checked)
            files = f"{n} file{'s' if n != 1 else ''}"
            return f"Verified {where} ({self.repo_id}): {files} intact{extra}."
        lines = [f"  {rel}: {why}" for rel, why in self.problems.items()]
        n = len(self.problems)
        files = f"{n} file{'s' if n != 1 else ''} of {where} ({self.repo_id})"
        lines.append(
            f"{files} {'differ' if n != 1 else 'differs'} from the download: "
            f"{', '.join(self.problems)}{extra}. Run the command with --force to download again."
        )
        return "\n".join(lines)


def verify_download(
    folder: str | Path, *, hub: bool = True, token: str | None = None
) -> Verification:
    """Check a downloaded folder: every file the manifest lists is a regular file inside it with
    the recorded size and SHA-256 (and, for a repo's files, the Hub's checksum). Writes nothing.

    Args:
        folder: the asset folder (``model_path("org/name")``, ``dataset_path("wmt14")``, ...).
        hub: also ask the Hub for its checksums of the recorded commit (skipped offline, or when
            the Hub cannot be reached; the manifest's are used then).
        token: Hugging Face token; None uses ``HF_TOKEN`` or the stored login.

    Returns:
        What was found (:class:`Verification`; ``.ok``, ``.summary()``).

    Raises:
        HFAssetError: ``folder`` is not a download of this tool (no manifest).
    """
    folder = Path(folder).expanduser().resolve()
    manifest = read_manifest(folder) if folder.is_dir() else None
    if manifest is None:
        what = "does not exist" if not folder.exists() else f"has no {MANIFEST_NAME}"
        raise HFAssetError(f"{display_path(folder)} {what}: it is not a download of this tool.")
    problems = file_problems(folder, manifest)
    expected: dict[str, list[tuple[str, str, str]]] = {}  # rel -> (algorithm, hex, whose)
    for rel, digest in (manifest.get("sha256") or {}).items():
        expected.setdefault(rel, []).append(("sha256", digest, "the manifest's"))
    note = ""
    if hub and manifest.get("kind") != "dataset":
        try:
            for rel, check in _hub_checksums(manifest, token).items():
                expected.setdefault(rel, []).append((*check, "the Hub's"))
        except HFAssetError as exc:
            note = f"the Hub's checksums were not read: {str(exc).split('. ')[0]}"
    checked, unchecked = [], []
    for rel in manifest.get("files") or {}:
        if rel in problems:
            continue
        if rel not in expected:
            unchecked.append(rel)
            continue
        checked.append(rel)
        for algorithm, digest, whose in expected[rel]:
            digest_of = sha256_file if algorithm == "sha256" else _git_blob_id
            actual = digest_of(folder / rel)
            if actual != digest:
                name = "SHA-256" if algorithm == "sha256" else "git blob id"
                problems[rel] = f"{name} {actual[:12]}, expected {digest[:12]} ({whose})"
                break
    return Verification(folder, str(manifest.get("repo_id")), checked, problems, unchecked, note)


def _hub_checksums(manifest: dict[str, Any], token: str | None) -> dict[str, tuple[str, str]]:
    """The Hub's checksum of each file at the manifest's commit: LFS SHA-256, else git blob id."""
    from common import settings
    from common.hub.translate import Context, offline_error, offline_mode, run_translated

    repo_id, repo_type = str(manifest.get("repo_id")), str(manifest.get("repo_type") or "model")
    revision = manifest.get("commit") or manifest.get("revision")
    ctx = Context("files", repo_id, repo_id, revision, Path("."), repo_type=repo_type)
    if offline_mode():
        raise offline_error(ctx)
    from huggingface_hub import HfApi

    api = HfApi(token=token or settings.hf_token())
    info = run_translated(
        ctx,
        lambda: api.repo_info(repo_id, repo_type=repo_type, revision=revision, files_metadata=True),
    )
    out = {}
    for sibling in info.siblings or []:
        if sibling.lfs is not None:
            out[sibling.rfilename] = ("sha256", sibling.lfs.sha256)
        elif sibling.blob_id:
            out[sibling.rfilename] = ("git", sibling.blob_id)
    return out
