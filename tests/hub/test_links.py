"""Project links: projects/<p>/data -> assets/datasets/<name>.

End to end against the local Hub stand-in (``tests/hub_server.py``) where a test names ``hub``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.hub_fixtures import (
    DATASET,
    HubCli,
    assert_clean_error,
    fake_asset,
)
from tests.hub_repos import (
    ALIAS_REPO,
)
from tests.hub_server import HubServer


def test_link_dataset_rules(tmp_path: Path, isolated_assets: Path):
    from common.data import AssetConflictError, HFAssetError, dataset_path, link_dataset

    # The repository's layout: <root>/assets and <root>/projects/<p> give ../../assets/...
    root = isolated_assets.parent
    project = root / "projects" / "demo"
    project.mkdir(parents=True)
    fake_asset(dataset_path("tinystories"))
    link = link_dataset(project, "tinystories")
    assert os.readlink(link) == f"../../{isolated_assets.name}/datasets/tinystories"
    assert (link / "dataset_dict.json").is_file()

    assert link_dataset(project, "tinystories") == link  # already there: kept
    fake_asset(dataset_path("wikitext"))
    with pytest.raises(AssetConflictError, match="already links to .*--force"):
        link_dataset(project, "wikitext")  # a link elsewhere is replaced only with force
    assert os.readlink(link).endswith("datasets/tinystories")
    relinked = link_dataset(project, "wikitext", force=True)
    assert os.readlink(relinked).endswith("datasets/wikitext")

    with pytest.raises(HFAssetError, match="does not exist: download it first"):
        link_dataset(project, "imdb")
    with pytest.raises(HFAssetError, match="No project folder"):
        link_dataset(root / "projects" / "missing", "tinystories")
    real = root / "projects" / "real"
    (real / "data").mkdir(parents=True)
    with pytest.raises(HFAssetError, match="real folder"):
        link_dataset(real, "tinystories")
    assert (real / "data").is_dir() and not (real / "data").is_symlink()


@pytest.mark.slow
def test_link_refuses_to_replace_a_link_elsewhere(hub_cli: HubCli, hub: HubServer, tmp_path: Path):
    project = tmp_path / "projects" / "p"
    project.mkdir(parents=True)
    assert hub_cli.run(DATASET, "--name", "squad", "--link", str(project)).returncode == 0
    link = project / "data"
    target = os.readlink(link)
    hub.clear_log()
    refused = hub_cli.run(DATASET, "--name", "tinystories", "--link", str(project))
    assert_clean_error(refused, "already links to", "--force", code=2)
    assert os.readlink(link) == target
    assert hub.requests() == [] and not (hub_cli.assets / "datasets" / "tinystories").exists()

    same = hub_cli.run(DATASET, "--name", "squad", "--link", str(project))
    assert same.returncode == 0 and os.readlink(link) == target

    forced = hub_cli.run(DATASET, "--name", "tinystories", "--link", str(project), "--force")
    assert forced.returncode == 0, forced.output
    assert link.resolve() == (hub_cli.assets / "datasets" / "tinystories").resolve()


@pytest.mark.slow
def test_alias_download_and_project_symlink_workflow(
    hub_cli: HubCli, hub: HubServer, tmp_path: Path
):
    project = tmp_path / "projects" / "my_project"
    project.mkdir(parents=True)
    result = hub_cli.run(DATASET, "--name", "tinystories", "--link", str(project))
    assert result.returncode == 0, result.output
    folder = hub_cli.assets / "datasets" / "tinystories"
    assert json.loads((folder / ".download.json").read_text())["repo_id"] == ALIAS_REPO
    link = project / "data"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    assert link.resolve() == folder.resolve()
    assert f"Linked {link}" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith(f"Downloaded {ALIAS_REPO}@main")

    typo = hub_cli.run(DATASET, "--name", "tinystories", "--link", str(tmp_path / "nope"))
    assert typo.returncode == 2 and "No project folder" in typo.stderr
