"""Evaluate a fine-tuned checkpoint, or a downloaded model zero-shot, and store the row.

    python -m projects.pretrained_lm.evaluate                      # the latest run's checkpoint
    python -m projects.pretrained_lm.evaluate --run NAME --temperature 0.5
    python -m projects.pretrained_lm.evaluate --model openai-community/gpt2 \\
        --config configs/tinystories.yaml                          # the zero-shot baseline

With --model the model is evaluated as downloaded on the config's validation data: a checkpoint
holding no weights, only the base model's identity, is written to run
``<project>-<model>-<config>-zeroshot`` (or --name) at step 0, then evaluated like any other;
``tools/query_experiments.py --best bits_per_byte`` ranks it beside fine-tuned runs. Every other
option is the shared evaluate command's (common.training.evaluate).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from common.training.evaluate import main as evaluate_main
from common.utils.argtypes import OneLineParser
from common.utils.cli import run_cli

PROJECT = "pretrained_lm"
PROJECT_DIR = Path(__file__).resolve().parent
TRAIN_COMMAND = "python -m projects.pretrained_lm.train"


def zero_shot_checkpoint(
    model: str, config_file: Path, overrides: Sequence[str], name: str
) -> Path:
    """Write the weightless step-0 checkpoint of ``model`` under ``config_file``; return it."""
    from common.models.checkpoint import checkpoint_path
    from common.training.checkpointing import run_dir
    from common.training.run import validate_run_name
    from common.utils.config import config_to_dict, load_config
    from projects.pretrained_lm.model import PretrainedConfig, build_pretrained

    if not config_file.exists() and (PROJECT_DIR / config_file).exists():
        config_file = PROJECT_DIR / config_file
    overrides = [*overrides, f"model.pretrained={model}", "model.lora_rank=0"]
    config = load_config(config_file, overrides, model_cls=PretrainedConfig)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", model.strip("/").split("/")[-1])
    name = validate_run_name(name or f"{PROJECT}-{stem}-{config_file.stem}-zeroshot")
    config.logging.experiment_name = name
    base = build_pretrained(config.model, train_base=False)  # type: ignore[arg-type]
    extra = {"config": config_to_dict(config), "experiment_name": name, "tokens_seen": 0}
    return base.save_checkpoint(checkpoint_path(run_dir(name), 0), step=0, extra=extra)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and evaluate; returns the exit status (0 on success)."""
    from common.data.pipeline import DataError
    from common.models.checkpoint import CheckpointError
    from common.utils.config import ConfigError
    from projects.pretrained_lm.model import PretrainedConfig, PretrainedLM

    parser = OneLineParser(add_help=False)
    parser.add_argument("--model")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--name")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else list(argv))
    if args.model is None and (args.config or args.overrides or args.name):
        parser.error("--config, --set and --name go with --model (a zero-shot evaluation)")
    if args.model is not None and ({"--run", "--checkpoint"} & {a.split("=")[0] for a in rest}):
        parser.error("--model evaluates a downloaded model; --run/--checkpoint a trained one")

    def body() -> int:
        if args.model is not None:
            config = args.config or PROJECT_DIR / "configs" / "tiny.yaml"
            checkpoint = zero_shot_checkpoint(args.model, config, args.overrides, args.name)
            rest.extend(["--checkpoint", str(checkpoint)])
        return evaluate_main(
            PretrainedLM,
            project=PROJECT,
            description=__doc__,
            model_cls=PretrainedConfig,
            train_command=TRAIN_COMMAND,
            argv=rest,
        )

    return run_cli(body, tool="evaluate", user_errors=(ConfigError, DataError, CheckpointError))


if __name__ == "__main__":
    sys.exit(main())
