#!/usr/bin/env python
"""Download a Hugging Face model's files into assets/models/.

Files land as plain files in assets/models/<org>/<name>/ at their paths in the repo, so
`AutoModel.from_pretrained(get_models_dir() / "org/name")` or any file reader can use them. By
default only what transformers/PyTorch load is fetched: configs, tokenizer and generation files
and the weights in one format (safetensors when present, else .bin); TensorFlow, Flax, ONNX,
CoreML, OpenVINO, Rust and GGUF files are left out (--all-files fetches everything). The selection
is printed and kept in the folder's .download.json with each file's size and SHA-256. A second run
reuses what is there without contacting the Hub and fetches again any listed file that is missing,
truncated or not a regular file (--force downloads everything again; --verify compares every
file's SHA-256 with the manifest's and the Hub's, exit 3 naming what differs). A folder holding
another repo or revision is refused (exit 2), and a folder this tool did not write is never
replaced or emptied. Exit 2 for a mistake in the request, 1 for network or disk failures. The
token comes from HF_TOKEN (or --token) and is never printed. HF_ENDPOINT, HF_HOME and
HF_HUB_OFFLINE are honoured.

Examples:
    python tools/download_hf_model.py --repo-id bert-base-uncased
    python tools/download_hf_model.py --repo-id bert-base-uncased --dry-run --all-files
    python tools/download_hf_model.py --repo-id openai-community/gpt2 --filename config.json
    python tools/download_hf_model.py --repo-id org/name --include "*.json" "*.safetensors"
    python tools/download_hf_model.py --repo-id org/name --revision v1.0 --exclude "*.bin"
    python tools/download_hf_model.py --repo-id roneneldan/TinyStories --repo-type dataset
    python tools/download_hf_model.py --repo-id bert-base-uncased --verify
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
    parser = doc_parser("download_hf_model.py", __doc__)
    parser.add_argument("--repo-id", required=True, help="model repo id, org/name")
    parser.add_argument("--filename", help="download only this file of the repo")
    parser.add_argument("--revision", help=options.REVISION_HELP)
    parser.add_argument("--include", nargs="+", metavar="GLOB", help="only files matching these")
    parser.add_argument(
        "--exclude", nargs="+", metavar="GLOB", help="leave out files matching these"
    )
    parser.add_argument(
        "--all-files", action="store_true", help="every file of the repo, all weight formats"
    )
    parser.add_argument(
        "--repo-type",
        choices=("model", "dataset", "space"),
        default="model",
        help="the repo's type (default: model); data set and Space files go to assets/repos/",
    )
    options.add_download_options(
        parser,
        output_dir_help="download here instead of assets/models/...",
        force_help="download again, replacing this tool's copy",
        verify_help="check every file's size and SHA-256 against the manifest and the Hub; write "
        "nothing (exit 3 naming what differs)",
    )
    parser.add_argument("--token", help=options.TOKEN_HELP)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = options.parse_download_args(parser, argv)
    if args.filename and (args.include or args.exclude or args.all_files):
        parser.error(
            "--filename downloads one file; it cannot be combined with "
            "--include/--exclude/--all-files"
        )
    if args.all_files and (args.include or args.exclude):
        parser.error(
            "--all-files fetches every file; it cannot be combined with --include/--exclude"
        )
    from common import hub
    from common.hub import runner

    def download(token: str | None, target: Callable[[], Path]) -> str:
        return hub.ensure_model(
            args.repo_id,
            args.filename,
            revision=args.revision,
            include=args.include,
            exclude=args.exclude,
            all_files=args.all_files,
            repo_type=args.repo_type,
            output_dir=args.output_dir,
            force=args.force,
            token=token,
            dry_run=args.dry_run,
        ).summary()

    return runner.run_command(
        args,
        "download_hf_model",
        lambda: hub.repo_files_path(args.repo_id, args.repo_type),
        download,
    )


if __name__ == "__main__":
    sys.exit(main())
