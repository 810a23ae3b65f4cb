"""Project links: ``projects/<project>/data`` as a relative symlink to a downloaded data set."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from common.hub.errors import AssetConflictError, HFAssetError
from common.hub.summary import display_path
from common.paths import get_datasets_dir, repo_root


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
            f"{display_path(dest)} does not exist: download it first, e.g. "
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
            f"{display_path(link)} is a real {kind}, not a symlink; refusing to replace it. "
            "Move it away first."
        )
    if link.is_symlink() and not force and Path(os.path.realpath(link)) != dest.resolve():
        raise AssetConflictError(
            f"{display_path(link)} already links to {os.readlink(link)}, not to "
            f"{display_path(dest)}; pass --force (force=True) to point it there."
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
            f"No project folder {display_path(folder)}. Projects: {', '.join(known) or 'none'}."
        )
    return folder
