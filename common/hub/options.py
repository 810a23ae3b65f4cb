"""The options every download command shares (``tools/download_hf_*.py``): where to write, and
whether to replace, only list, or check. Imports only argparse, so that ``--help`` stays instant."""

from __future__ import annotations

import argparse
from pathlib import Path

REVISION_HELP = "branch, tag or commit (default: main)"
TOKEN_HELP = "Hugging Face token (prefer the HF_TOKEN variable)"
DRY_RUN_HELP = "list the files and size to fetch; write nothing"


def add_download_options(
    parser: argparse.ArgumentParser, *, output_dir_help: str, force_help: str, verify_help: str
) -> None:
    """Add ``--output-dir``, ``--force``, ``--dry-run`` and ``--verify`` (the texts that differ
    between the commands are the arguments)."""
    parser.add_argument("--output-dir", type=Path, help=output_dir_help)
    for flag, text in (
        ("--force", force_help),
        ("--dry-run", DRY_RUN_HELP),
        ("--verify", verify_help),
    ):
        parser.add_argument(flag, action="store_true", help=text)


def parse_download_args(
    parser: argparse.ArgumentParser, argv: list[str] | None
) -> argparse.Namespace:
    """Parse ``argv``; refuse ``--verify`` (which only reads) with ``--force`` or ``--dry-run``."""
    args = parser.parse_args(argv)
    if args.verify and (args.force or args.dry_run):
        parser.error("--verify only reads the folder; it cannot be combined with --force/--dry-run")
    return args
