"""Evaluate a trained custom transformer: validation loss, perplexity, bits per byte, samples.

By default it loads the latest checkpoint of the most recent run of this project; --run NAME picks
a run, --checkpoint PATH a checkpoint folder (or a run folder: its latest checkpoint). The
validation data is rebuilt from the config saved in the checkpoint (cached token files are
reused). The metrics are stored as a row with split "val" (the validation data, as during
training; the row also has eval_tokens, eval_batches and checkpoint columns) in the run's
experiment, next to the rows written during training. The command is the shared one,
common.training.evaluate.

Examples:
    python -m projects.custom_transformer.evaluate
    python -m projects.custom_transformer.evaluate --run custom_transformer-tiny-20250101-120000
    python -m projects.custom_transformer.evaluate --prompt "Once upon a time" --temperature 0.5
    cd projects/custom_transformer && python evaluate.py --eval-batches 20 --no-save
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from common.training.evaluate import main as evaluate_main

PROJECT = "custom_transformer"
TRAIN_COMMAND = "python -m projects.custom_transformer.train"
EXTRA_PROMPTS = ("One day, a little girl named Lily", "The dog was very")
"""Prompts sampled after the run's own ``logging.sample_prompts``."""


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and evaluate; returns the exit status (0 on success)."""
    from projects.custom_transformer.model import CustomTransformer, TransformerConfig

    return evaluate_main(
        CustomTransformer,
        project=PROJECT,
        description=__doc__,
        model_cls=TransformerConfig,
        train_command=TRAIN_COMMAND,
        extra_prompts=EXTRA_PROMPTS,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
