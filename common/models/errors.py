"""The errors of checkpoints: unreadable or unfitting, and not written."""

from __future__ import annotations


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, damaged or malformed, or does not fit its target."""


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written (disk full, permissions); nothing was replaced."""
