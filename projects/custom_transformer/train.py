"""Train the custom transformer (hand-written backpropagation) with the shared training loop.

    python -m projects.custom_transformer.train --config configs/tiny.yaml   # from the repo root
    cd projects/custom_transformer && python train.py --config configs/tiny.yaml

Without --config it trains on TinyStories (configs/tinystories.yaml) when that data set has been
downloaded (python tools/download_hf_dataset.py --name tinystories) and on the embedded synthetic
story corpus (configs/tiny.yaml) otherwise, and says which.

Examples:
    python -m projects.custom_transformer.train --set training.max_steps=200
    python -m projects.custom_transformer.train --resume                # continue the latest run
    python -m projects.custom_transformer.train --resume NAME --set training.max_steps=2000
    torchrun --nproc_per_node 2 -m projects.custom_transformer.train --config configs/tiny.yaml

Checkpoints go to assets/outputs/checkpoints/<run name>, evaluation rows to the experiment store
(query them with tools/query_experiments.py); evaluate a checkpoint with evaluate.py.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from common.training.cli import main as train_main

if TYPE_CHECKING:
    from projects.custom_transformer.model import CustomTransformer, TransformerConfig

PROJECT = "custom_transformer"
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
TINY_CONFIG = CONFIG_DIR / "tiny.yaml"
TINYSTORIES_CONFIG = CONFIG_DIR / "tinystories.yaml"
DOWNLOAD_COMMAND = "python tools/download_hf_dataset.py --name tinystories"


def build_model(model_cfg: TransformerConfig, vocab_size: int) -> CustomTransformer:
    """A fresh ``CustomTransformer`` from the config's ``model`` section."""
    from projects.custom_transformer.model import CustomTransformer

    return CustomTransformer.from_config(model_cfg, vocab_size)


def choose_default_config() -> tuple[Path, str]:
    """``configs/tinystories.yaml`` when TinyStories is downloaded, else ``configs/tiny.yaml``;
    and a line saying why."""
    from common.data.hf_utils import dataset_path, resolve_dataset_name

    for name in ("tinystories", resolve_dataset_name("tinystories")):
        if dataset_path(name).is_dir():
            return TINYSTORIES_CONFIG, (
                f"TinyStories found in {dataset_path(name)}: training with configs/tinystories.yaml"
                " (sized for a 16 GB GPU; pass --config configs/tiny.yaml for the quick CPU run)"
            )
    return TINY_CONFIG, (
        "TinyStories is not downloaded: training on the embedded synthetic story corpus with "
        f"configs/tiny.yaml (for TinyStories run: {DOWNLOAD_COMMAND})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and train; returns the exit status (0 on success)."""
    from projects.custom_transformer.model import TransformerConfig

    return train_main(
        build_model,
        project=PROJECT,
        description=__doc__,
        model_cls=TransformerConfig,
        default_config=choose_default_config,
        config_dir=CONFIG_DIR.parent,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
