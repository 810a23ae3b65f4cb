"""Export a pretrained_lm checkpoint as a folder ``AutoModelForCausalLM.from_pretrained`` loads.

    python -m projects.pretrained_lm.export RUN_OR_CHECKPOINT OUT_DIR

A LoRA checkpoint's adapter is merged into the weights; the base model's tokenizer files are
copied. RUN_OR_CHECKPOINT is a checkpoint folder, a run folder (its newest intact checkpoint) or a
run name. OUT_DIR must not exist.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from common.utils.argtypes import OneLineParser
from common.utils.cli import run_cli


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and export; returns the exit status (0 on success)."""
    parser = OneLineParser(description=__doc__)
    parser.add_argument("checkpoint", help="checkpoint folder, run folder or run name")
    parser.add_argument("out_dir", type=Path, help="the new folder")
    args = parser.parse_args(argv)

    def body() -> int:
        from common.training.evaluate import find_checkpoint
        from projects.pretrained_lm.model import export_pretrained

        if args.out_dir.exists():
            raise FileExistsError(f"{args.out_dir} exists; choose a new folder")
        path = Path(args.checkpoint)
        if path.exists():
            checkpoint = find_checkpoint("pretrained_lm", checkpoint=path)
        else:
            checkpoint = find_checkpoint("pretrained_lm", run=args.checkpoint)
        out = export_pretrained(checkpoint, args.out_dir)
        print(f"exported {checkpoint} to {out} (AutoModelForCausalLM.from_pretrained loads it)")
        return 0

    from common.models.checkpoint import CheckpointError
    from common.training.evaluate import EvaluationError
    from common.utils.config import ConfigError

    errors = (CheckpointError, EvaluationError, ConfigError, FileExistsError)
    return run_cli(body, tool="export", user_errors=errors)


if __name__ == "__main__":
    sys.exit(main())
