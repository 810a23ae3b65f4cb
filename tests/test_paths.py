"""Asset folders: created on demand and relocatable with RESEARCH_ASSETS_DIR."""

from __future__ import annotations

from pathlib import Path

import pytest

from common import paths


def test_assets_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    target = tmp_path / "elsewhere"
    monkeypatch.setenv(paths.ASSETS_ENV_VAR, str(target))
    assert paths.get_assets_dir() == target.resolve()
    for name, getter in paths.ASSET_DIR_GETTERS.items():
        folder = getter()
        assert folder.is_dir(), name
        assert target.resolve() in (folder, *folder.parents)
    assert paths.get_experiments_dir() == target.resolve() / "outputs" / "experiments"
    assert paths.get_checkpoints_dir() == target.resolve() / "outputs" / "checkpoints"


def test_default_is_inside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(paths.ASSETS_ENV_VAR, raising=False)
    assert paths.get_assets_dir() == paths.repo_root() / "assets"
    assert (paths.repo_root() / "common" / "paths.py").is_file()
