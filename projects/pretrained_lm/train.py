"""Fine-tune a downloaded ``transformers`` causal LM (full or LoRA) with the shared training loop.

    python tools/download_hf_model.py --repo-id openai-community/gpt2        # once
    python -m projects.pretrained_lm.train --config configs/tinystories.yaml
    python -m projects.pretrained_lm.train --config configs/tiny.yaml \\
        --set model.pretrained=openai-community/gpt2 --set model.lora_rank=8

``model.pretrained`` is a repo id downloaded under assets/models or a model folder; it is never
fetched from the network here. ``data.tokenizer: model`` tokenizes with the model's own tokenizer.
Without --config: configs/tinystories.yaml when TinyStories is downloaded, else configs/tiny.yaml.
Everything else (--resume, --reproduce, sweeps, torchrun, exit statuses) is common.training.cli's;
evaluate with evaluate.py, export to a Hugging Face folder with export.py.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from common.training.cli import main as train_main

if TYPE_CHECKING:
    from projects.pretrained_lm.model import PretrainedConfig, PretrainedLM

PROJECT = "pretrained_lm"
PROJECT_DIR = Path(__file__).resolve().parent
TINY_CONFIG = PROJECT_DIR / "configs" / "tiny.yaml"
TINYSTORIES_CONFIG = PROJECT_DIR / "configs" / "tinystories.yaml"


def build_model(model_cfg: PretrainedConfig, vocab_size: int) -> PretrainedLM:
    """The pretrained model the config's ``model`` section names (with LoRA when asked)."""
    from projects.pretrained_lm.model import build_pretrained

    model = build_pretrained(model_cfg)
    if vocab_size > model.vocab_size:
        raise ValueError(
            f"the tokenizer has {vocab_size} tokens but {model_cfg.pretrained} only "
            f"{model.vocab_size} outputs; use data.tokenizer: model"
        )
    return model


def choose_default_config() -> tuple[Path, str]:
    """``configs/tinystories.yaml`` when TinyStories is downloaded, else ``configs/tiny.yaml``."""
    from common.data.hf_utils import dataset_path

    if dataset_path("tinystories").is_dir():
        return TINYSTORIES_CONFIG, "TinyStories found: fine-tuning with configs/tinystories.yaml"
    return TINY_CONFIG, (
        "TinyStories is not downloaded: fine-tuning on the embedded story corpus with "
        "configs/tiny.yaml (python tools/download_hf_dataset.py --name tinystories for more)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and train; returns the exit status (0 on success)."""
    from projects.pretrained_lm.model import PretrainedConfig

    return train_main(
        build_model,
        project=PROJECT,
        description=__doc__,
        model_cls=PretrainedConfig,
        default_config=choose_default_config,
        config_dir=PROJECT_DIR,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
