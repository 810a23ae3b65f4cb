"""Ctrl-C during training: the first press asks the loop to stop after the current step (with a
checkpoint), the second aborts at once."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from typing import Any


class InterruptHandler:
    """A SIGINT handler installed for one ``Trainer.train`` call.

    Args:
        distributed: under ``torchrun``, which forwards the terminal's Ctrl-C, one press can
            reach a rank twice; a second SIGINT within 2 s is then the same press.
        announce: print the "finishing the current step" line (rank 0).
    """

    def __init__(self, *, distributed: bool = False, announce: bool = True) -> None:
        self.distributed = distributed
        self.announce = announce
        self.requested = False
        self.time: float | None = None
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        now = time.monotonic()
        if self.time is not None:
            if self.distributed and now - self.time < 2.0:
                return
            raise KeyboardInterrupt
        self.time = now
        self.requested = True
        if self.announce:
            sys.stderr.write(
                "\nCtrl-C: finishing the current step, then writing a checkpoint "
                "(Ctrl-C again to abort without one)\n"
            )
            sys.stderr.flush()

    def install(self) -> None:
        """Handle SIGINT from now on (only possible in the main thread; a no-op elsewhere)."""
        self.requested, self.time, self._previous = False, None, None
        if threading.current_thread() is not threading.main_thread():
            return
        with contextlib.suppress(ValueError):  # not the main interpreter thread
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def restore(self) -> None:
        """Put back the handler that was there before ``install``."""
        if self._previous is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGINT, self._previous)
            self._previous = None
