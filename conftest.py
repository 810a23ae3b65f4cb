"""Repository-wide pytest set-up: every test gets its own assets folder, never the real one."""

from __future__ import annotations

import os

import pytest

# Keep torch (where a test imports it) from oversubscribing the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def isolated_assets(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Point ``RESEARCH_ASSETS_DIR`` at a fresh folder for each test (subprocesses inherit it)."""
    assets = tmp_path_factory.mktemp("assets")
    monkeypatch.setenv("RESEARCH_ASSETS_DIR", str(assets))
    return assets
