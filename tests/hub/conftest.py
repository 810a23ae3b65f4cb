"""Fixtures of the Hub tests (``hub``, ``hub_cli`` come from ``tests/hub_fixtures.py``)."""

from __future__ import annotations

import pytest

from tests.hub_repos import build_bert_repo
from tests.hub_server import HubServer


@pytest.fixture
def bert_hub(hub: HubServer) -> HubServer:
    """The stand-in with the tiny BERT in every format (built once per session; needs torch)."""
    build_bert_repo(hub)
    return hub
