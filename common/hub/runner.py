"""How the download commands run a download: in a forked child that the parent kills at once on
Ctrl-C or SIGTERM (so no transfer thread writes after the cleanup), then the partial folder is
removed. Exit statuses follow :mod:`common.utils.cli`: 0, 2 for the user's mistakes, 1 for
network, disk and internal failures, 130 after Ctrl-C (143 after SIGTERM)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from common import settings
from common.hub.errors import HFAssetError
from common.hub.staging import (
    cleanup_partial_downloads,
    missing_ancestors,
    remove_created_folders,
    remove_stale_partials,
)
from common.utils import cli

Action = Callable[[], int]
"""The command's work: prints its answer, returns the exit status."""

EXIT_DAMAGED = 3
"""``--verify`` answered, and found files that differ from the download."""

_INTERRUPTED = "Interrupted. The partial download was removed; nothing was saved."


def scrub(text: str, secrets: list[str | None]) -> str:
    """``text`` with every token in ``secrets`` replaced by ``hf_***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "hf_***")
    return text


def verify(folder: Path, token: str | None = None) -> int:
    """``--verify``: print what :func:`~common.hub.integrity.verify_download` finds in ``folder``;
    the exit status is 0 when every file is intact, else :data:`EXIT_DAMAGED`."""
    from common.hub.integrity import verify_download

    report = verify_download(folder, token=token)
    print(report.summary(), flush=True)
    return cli.EXIT_OK if report.ok else EXIT_DAMAGED


def run_command(
    args: argparse.Namespace,
    tool: str,
    default_folder: Callable[[], Path],
    download: Callable[[str | None, Callable[[], Path]], str],
) -> int:
    """Run a download command (options of :mod:`common.hub.options`): ``--verify`` checks the
    asset folder; otherwise ``download(token, target)`` does the work and returns the summary,
    printed with the token scrubbed.

    Args:
        args: the parsed command line (``output_dir``, ``verify``, ``token``, ...).
        tool: the command's name, printed before each error line.
        default_folder: the asset folder when there is no ``--output-dir``.
        download: performs the download; ``target()`` gives the asset folder.

    Returns:
        The exit status.
    """
    token = args.token or None

    def target() -> Path:
        if args.output_dir:
            return Path(args.output_dir).expanduser().resolve()
        return default_folder()

    if args.verify:
        return run_download(lambda: verify(target(), token), tool, token)

    def action() -> int:
        print(scrub(download(token, target), [token]), flush=True)
        return cli.EXIT_OK

    return run_download(action, tool, token, target)


def run_download(
    action: Action, tool: str, token: str | None, target: Callable[[], Path | None] | None = None
) -> int:
    """Run a download command's ``action`` with clear errors, exit statuses and Ctrl-C cleanup.

    Where ``os.fork`` exists the action runs in a child process; elsewhere in-process, cleaned up
    as well as threads allow.

    Args:
        action: performs the download and prints its summary; returns the exit status.
        tool: the command's name, printed before each error line.
        token: the token in use, so that it is never echoed.
        target: gives the asset folder the action writes (for the cleanup after Ctrl-C).

    Returns:
        The exit status.
    """
    if not hasattr(os, "fork"):
        return _run_in_process(action, tool, token)
    folder: Path | None = None
    with contextlib.suppress(Exception):
        folder = target() if target else None
    created = missing_ancestors(folder) if folder is not None else []
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: the parent handles interruptions
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        code = cli.EXIT_INTERNAL
        try:
            code = _run_action(action, tool, token)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def on_signal(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        if folder is not None:
            remove_stale_partials(folder)
            remove_created_folders(folder, created)
        sys.stderr.write(f"\n{_INTERRUPTED}\n")
        sys.stderr.flush()
        os._exit(128 + signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _run_in_process(action: Action, tool: str, token: str | None) -> int:
    def on_interrupt(signum: int, frame: object) -> None:
        # Worker threads may be blocked mid-transfer: clean up and leave now instead of waiting.
        cleanup_partial_downloads()
        sys.stderr.write(f"\n{_INTERRUPTED}\n")
        sys.stderr.flush()
        os._exit(cli.EXIT_INTERRUPTED)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        return _run_action(action, tool, token)
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_action(action: Action, tool: str, token: str | None) -> int:
    secrets = [token, settings.hf_token()]

    def body() -> int:
        try:
            return action()
        except HFAssetError as exc:
            cli.error(tool, scrub(str(exc), secrets))
            return cli.EXIT_USAGE if exc.user_error else cli.EXIT_INTERNAL
        except KeyboardInterrupt:
            cleanup_partial_downloads()
            raise

    return cli.run_cli(body, tool=tool, describe=lambda exc: scrub(str(exc), secrets))
