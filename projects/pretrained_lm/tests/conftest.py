"""Fixtures: the tiny GPT-2 and Llama served by the Hub stand-in, downloaded once per session
with the real ``tools/download_hf_model.py``, and copied into each test's assets folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from projects.pretrained_lm.tests.tiny_models import GPT2_REPO, LLAMA_REPO, repo_files
from tests.hub_server import HubServer

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def downloaded_models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An assets folder holding both tiny models, as the download CLI left them."""
    assets = tmp_path_factory.mktemp("pretrained-assets")
    with HubServer() as hub:
        for repo, kind in ((GPT2_REPO, "gpt2"), (LLAMA_REPO, "llama")):
            hub.create_repo(repo)
            hub.commit(repo, repo_files(kind), title=f"tiny {kind}")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
        env.update(hub.client_env(str(assets / "hf_home")), RESEARCH_ASSETS_DIR=str(assets))
        tool = str(REPO_ROOT / "tools" / "download_hf_model.py")
        for repo in (GPT2_REPO, LLAMA_REPO):
            proc = subprocess.run(
                [sys.executable, tool, "--repo-id", repo],
                env=env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stdout + proc.stderr
    yield assets


@pytest.fixture
def models(downloaded_models: Path, isolated_assets: Path) -> Path:
    """This test's ``assets/models`` with both tiny models (the download's manifests included)."""
    target = isolated_assets / "models"
    shutil.copytree(downloaded_models / "models", target, dirs_exist_ok=True)
    return target
