#!/usr/bin/env python
"""Download a Hugging Face data set into assets/datasets/ (once; later runs reuse it).

The data set is loaded with `datasets` (only the requested split is downloaded and prepared) and
saved with `save_to_disk` to assets/datasets/<name>, whatever the config and split, so that
`load_from_disk(get_datasets_dir() / "<name>")` and `ln -s ../../assets/datasets/<name> data`
find it. A folder that holds another config, split, revision or repo is refused (exit 2): save a
second copy with --output-dir, or replace it with --force. A folder this tool did not write is
never replaced or emptied. A saved copy with a missing, truncated or replaced file is saved again
(unless it holds files of yours); --verify compares every file's SHA-256 with the manifest's
(exit 3 naming what differs). Exit 2 for a mistake in the request, 1 for network or disk failures.

NAME is an alias (tinystories, wikitext, squad, imdb, wmt14, ...) or a repo id "org/name". The token
comes from HF_TOKEN (or --token) and is never printed. HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE are
honoured.

Examples:
    python tools/download_hf_dataset.py --name wmt14 --split train --config de-en
    python tools/download_hf_dataset.py --name squad
    python tools/download_hf_dataset.py --name tinystories --link custom_transformer
    python tools/download_hf_dataset.py --name wmt14 --config fr-en --output-dir /data/wmt14-fr
    python tools/download_hf_dataset.py --name stanfordnlp/imdb --split test --dry-run
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

try:
    import common  # noqa: F401
except ImportError:  # run by a Python without the editable install: use this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.hub import options  # noqa: E402 (after the path)
from common.utils.cli import doc_parser  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = doc_parser("download_hf_dataset.py", __doc__)
    parser.add_argument(
        "--name", required=True, help="alias (tinystories, ...) or repo id org/name"
    )
    parser.add_argument("--config", help="configuration name (default: the data set's default)")
    parser.add_argument("--split", help="one split, e.g. train or 'train[:10%%]' (default: all)")
    parser.add_argument("--revision", help=options.REVISION_HELP)
    options.add_download_options(
        parser,
        output_dir_help="save here instead of assets/datasets/...",
        force_help="download again, replacing this tool's copy (and a --link pointing elsewhere)",
        verify_help="check the saved files' sizes and SHA-256 against the manifest; write "
        "nothing (exit 3 naming what differs)",
    )
    parser.add_argument(
        "--link",
        metavar="PROJECT",
        help="then symlink projects/PROJECT/data to the data set (PROJECT: name or folder path)",
    )
    parser.add_argument("--token", help=options.TOKEN_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = options.parse_download_args(build_parser(), argv)
    from common import hub
    from common.hub import links, runner, summary

    def download(token: str | None, target: Callable[[], Path]) -> str:
        if args.link and not args.dry_run:
            links.check_link(args.link, target(), args.force)  # fail before downloading
        result = hub.ensure_dataset(
            args.name,
            args.config,
            args.split,
            revision=args.revision,
            output_dir=args.output_dir,
            force=args.force,
            token=token,
            dry_run=args.dry_run,
        )
        if args.link and not args.dry_run:
            link = hub.link_dataset(args.link, args.name, target=result.folder, force=args.force)
            print(f"Linked {summary.display_path(link)} -> {link.readlink()}", flush=True)
        return result.summary()

    return runner.run_command(
        args, "download_hf_dataset", lambda: hub.dataset_path(args.name), download
    )


if __name__ == "__main__":
    sys.exit(main())
