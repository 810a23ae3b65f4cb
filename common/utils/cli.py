"""The one convention of every command line (tools and train scripts).

Exit statuses: 0 success, 2 a user error (one line on stderr), 1 an internal error (one line, the
traceback with ``RESEARCH_DEBUG=1``), 130 Ctrl-C. Commands may add their own statuses above 2
(3 "answered, but damage found", ...). Parsing uses :class:`OneLineParser`. Imports nothing heavy.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Callable

from common import settings
from common.utils.argtypes import OneLineParser

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

__all__ = [
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "OneLineParser",
    "doc_parser",
    "error",
    "run_cli",
]


def error(tool: str, message: str) -> None:
    """Print ``<tool>: error: <message>`` on stderr."""
    print(f"{tool}: error: {message}", file=sys.stderr, flush=True)


def doc_parser(prog: str, doc: str) -> OneLineParser:
    """A parser whose ``--help`` is a script's docstring: the first paragraph as the description,
    the rest as the epilog, line breaks kept."""
    description, _, epilog = doc.partition("\n\n")
    return OneLineParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def run_cli(
    body: Callable[[], int],
    *,
    tool: str,
    user_errors: tuple[type[BaseException], ...] = (),
    describe: Callable[[BaseException], str] = str,
) -> int:
    """Run ``body`` and turn what it raises into the convention's exit status.

    Args:
        body: the command's work; returns its exit status.
        tool: the name printed before each error line.
        user_errors: exception classes that are the user's mistake (exit 2, one line).
        describe: the text of a user error's line (``str`` by default; e.g. to scrub secrets).
    """
    try:
        return body()
    except user_errors as exc:
        error(tool, describe(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(file=sys.stderr)
        error(tool, "interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `| head`: the reader left, nothing more to say
        _silence_stdout()
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - last resort: one line, the traceback on request
        if settings.debug():
            traceback.print_exc()
        else:
            first = (describe(exc).splitlines() or [""])[0]
            error(
                tool,
                f"unexpected {type(exc).__name__}: {first} "
                f"(set {settings.DEBUG_ENV_VAR}=1 to see the traceback and report it)",
            )
        return EXIT_INTERNAL
