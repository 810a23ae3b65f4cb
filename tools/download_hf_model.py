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
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from common.utils.cli import EXIT_OK, OneLineParser  # noqa: E402 (after the path)

TOOL = "download_hf_model"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="download_hf_model.py",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repo-id", required=True, help="model repo id, org/name")
    parser.add_argument("--filename", help="download only this file of the repo")
    parser.add_argument("--revision", help="branch, tag or commit (default: main)")
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
    parser.add_argument(
        "--output-dir", type=Path, help="download here instead of assets/models/..."
    )
    parser.add_argument(
        "--force", action="store_true", help="download again, replacing this tool's copy"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list the files and size to fetch; write nothing"
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="check every file's size and SHA-256 against the manifest and the Hub; write "
        "nothing (exit 3 naming what differs)",
    )
    parser.add_argument("--token", help="Hugging Face token (prefer the HF_TOKEN variable)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verify and (args.force or args.dry_run):
        parser.error("--verify only reads the folder; it cannot be combined with --force/--dry-run")
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

    token = args.token or None

    def target() -> Path:
        if args.output_dir:
            return args.output_dir.expanduser().resolve()
        return hub.repo_files_path(args.repo_id, args.repo_type)

    if args.verify:
        return runner.run_download(lambda: runner.verify(target(), token), TOOL, token)

    def action() -> int:
        result = hub.ensure_model(
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
        )
        print(runner.scrub(result.summary(), [token]), flush=True)
        return EXIT_OK

    return runner.run_download(action, TOOL, token, target)


if __name__ == "__main__":
    sys.exit(main())
