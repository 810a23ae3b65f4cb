"""Repository-wide pytest set-up: every test gets its own assets folder, never the real one."""

from __future__ import annotations

import os
import signal

import pytest

# Keep torch (where a test imports it) from oversubscribing the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# A test run started in the background (`make test &`, nohup, some CI runners) inherits SIGINT
# ignored, and so would every process the tests start: the Ctrl-C tests need the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def isolated_assets(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Point ``RESEARCH_ASSETS_DIR`` at a fresh folder for each test (subprocesses inherit it)."""
    assets = tmp_path_factory.mktemp("assets")
    monkeypatch.setenv("RESEARCH_ASSETS_DIR", str(assets))
    return assets
