"""Shared test fixtures of the custom transformer tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run torch single-threaded: these tests do many tiny ops, and on a busy 2-core machine each
    two-thread parallel region can wait milliseconds for the second core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
