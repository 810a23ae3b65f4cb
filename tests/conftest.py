"""Fixtures shared by the tests in ``tests/`` (asset isolation lives in the root conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hub_fixtures import hub, hub_cli, hub_server  # noqa: F401 - the Hub stand-in

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo_root() -> Path:
    """The repository root."""
    return REPO_ROOT
