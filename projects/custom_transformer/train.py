"""Train the custom transformer (hand-written backpropagation) with the shared training loop.

Runs both ways:

    cd projects/custom_transformer && python train.py --config configs/tiny.yaml
    python -m projects.custom_transformer.train --config configs/tiny.yaml   # from the repo root

Without --config it trains on TinyStories (configs/tinystories.yaml) when that data set has been
downloaded (python tools/download_hf_dataset.py --name tinystories) and on the embedded synthetic
story corpus (configs/tiny.yaml, a few minutes on a laptop CPU) otherwise, and says which.

Examples:
    python -m projects.custom_transformer.train --set training.max_steps=200
    python -m projects.custom_transformer.train --resume                # continue the latest run
    python -m projects.custom_transformer.train --resume NAME --set training.max_steps=2000
    torchrun --nproc_per_node 2 -m projects.custom_transformer.train --config ...

Checkpoints go to assets/outputs/checkpoints/<run name>, evaluation rows to the experiment store
(query them with tools/query_experiments.py); evaluate a checkpoint with evaluate.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from common.training.cli import build_arg_parser, run_training

if TYPE_CHECKING:
    from common.utils.config import ModelConfig
    from projects.custom_transformer.model import CustomTransformer

PROJECT = "custom_transformer"
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
TINY_CONFIG = CONFIG_DIR / "tiny.yaml"
TINYSTORIES_CONFIG = CONFIG_DIR / "tinystories.yaml"
TINYSTORIES = "tinystories"
DOWNLOAD_COMMAND = f"python tools/download_hf_dataset.py --name {TINYSTORIES}"


def build_model(model_cfg: ModelConfig, vocab_size: int) -> CustomTransformer:
    """The model of a run: a ``CustomTransformer`` from the config's ``model`` section.

    Args:
        model_cfg: the ``model`` section (a ``TransformerConfig``).
        vocab_size: the tokenizer's vocabulary size.

    Returns:
        The freshly initialized model.
    """
    from common.utils.config import ConfigError
    from projects.custom_transformer.model import CustomTransformer

    try:
        return CustomTransformer.from_config(model_cfg, vocab_size)
    except ValueError as exc:  # an impossible combination of sizes is a config mistake
        raise ConfigError(str(exc)) from None


def tinystories_folder() -> Path | None:
    """The downloaded TinyStories data set under ``assets/datasets``, or None if absent."""
    from common.data.hf_utils import dataset_path, resolve_dataset_name

    for name in (TINYSTORIES, resolve_dataset_name(TINYSTORIES)):
        folder = dataset_path(name)
        if folder.is_dir():
            return folder
    return None


def choose_default_config() -> tuple[Path, str]:
    """The config used without ``--config`` and a line saying why.

    Returns:
        ``configs/tinystories.yaml`` when TinyStories has been downloaded, else
        ``configs/tiny.yaml``; and the explanation to print.
    """
    folder = tinystories_folder()
    if folder is not None:
        return TINYSTORIES_CONFIG, (
            f"TinyStories found in {folder}: training on it with configs/{TINYSTORIES_CONFIG.name} "
            "(pass --config configs/tiny.yaml for the quick synthetic run)"
        )
    return TINY_CONFIG, (
        f"TinyStories is not downloaded: training on the embedded synthetic story corpus with "
        f"configs/{TINY_CONFIG.name} (for TinyStories run: {DOWNLOAD_COMMAND})"
    )


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and train; returns the exit status (0 on success).

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
    """
    parser = build_arg_parser(__doc__, default_config="TinyStories if downloaded, else tiny.yaml")
    args = parser.parse_args(argv)
    if args.config is not None and not args.config.exists() and not args.config.is_absolute():
        # ``--config configs/tiny.yaml`` also works from the repository root.
        in_project = Path(__file__).resolve().parent / args.config
        if in_project.exists():
            args.config = in_project
    is_main = os.environ.get("RANK", "0") == "0"
    default_config: Path | None = None
    if args.config is None:
        default_config, note = choose_default_config()
        if args.resume is None and is_main:
            print(note, flush=True)
            if default_config == TINYSTORIES_CONFIG and not _has_cuda():
                print(
                    "note: no CUDA GPU found; configs/tinystories.yaml is sized for a 16 GB GPU "
                    "and will be very slow here",
                    flush=True,
                )
    from projects.custom_transformer.model import TransformerConfig

    try:
        run_training(
            build_model,
            args,
            project=PROJECT,
            model_cls=TransformerConfig,
            default_config=default_config,
        )
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
