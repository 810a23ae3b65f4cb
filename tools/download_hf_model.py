#!/usr/bin/env python
"""Download a Hugging Face model (one file or a filtered snapshot) into assets/models/.

Files land as plain files in assets/models/<org>/<name>/ at their paths in the repo, so
`AutoModel.from_pretrained(get_models_dir() / "org/name")` or any file reader can use them. A
second run reuses what is there without contacting the Hub (use --force to download again). The
token comes from HF_TOKEN (or --token) and is never printed. HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE
are honoured.

Examples:
    python tools/download_hf_model.py --repo-id openai-community/gpt2
    python tools/download_hf_model.py --repo-id openai-community/gpt2 --filename config.json
    python tools/download_hf_model.py --repo-id org/name --include "*.json" "*.safetensors"
    python tools/download_hf_model.py --repo-id org/name --revision v1.0 --exclude "*.bin"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
        "--output-dir", type=Path, help="download here instead of assets/models/..."
    )
    parser.add_argument("--force", action="store_true", help="download again, replacing the copy")
    parser.add_argument("--token", help="Hugging Face token (prefer the HF_TOKEN variable)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.filename and (args.include or args.exclude):
        parser.error(
            "--filename downloads one file; it cannot be combined with --include/--exclude"
        )
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from common.data import hf_utils

    token = args.token or None
    return hf_utils.run_cli(
        lambda: hf_utils.ensure_model(
            args.repo_id,
            args.filename,
            revision=args.revision,
            include=args.include,
            exclude=args.exclude,
            output_dir=args.output_dir,
            force=args.force,
            token=token,
        ),
        token,
        lambda: (
            args.output_dir.expanduser().resolve()
            if args.output_dir
            else hf_utils.model_path(args.repo_id)
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
