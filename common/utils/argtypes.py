"""``argparse`` types shared by the command lines (``type=positive_int``): a bad value becomes
argparse's one-line usage error, never a traceback. Imports nothing heavy."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

_N = TypeVar("_N", int, float)


def _bounded(text: str, kind: Callable[[str], _N], minimum: _N, what: str) -> _N:
    message = f"expected {what} of at least {minimum:g}, got {text!r}"
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(message) from None
    if not value >= minimum:  # also refuses nan
        raise argparse.ArgumentTypeError(message)
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _bounded(text, int, 1, "an integer")


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return _bounded(text, int, 0, "an integer")


def non_negative_float(text: str) -> float:
    """A number >= 0."""
    return _bounded(text, float, 0.0, "a number")


class OneLineParser(argparse.ArgumentParser):
    """argparse whose mistakes are one line, ``<tool>: error: ... (see --help)``, exit 2."""

    def error(self, message: str) -> NoReturn:
        tool = os.path.splitext(os.path.basename(self.prog))[0]
        print(f"{tool}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)
