"""A project ``train.py`` for the run tests: the example model behind ``common.training.cli``.

``python tests/run_worker.py ARGS`` trains like a project script would. With ``KILL_AT_RENAME``
(a regular expression) set, the process SIGKILLs itself at the ``KILL_AT_COUNT``-th rename whose
destination matches it, just before that rename: a real kill in the middle of a real checkpoint
(``step_XXXXXXX``) or experiment-store (``.parquet``) write.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.models.examples import TinyTransformerLM  # noqa: E402
from common.training.cli import main  # noqa: E402

PROJECT = "runs"
CONFIG = """
model: {context_length: 32, d_model: 32, n_layers: 1, n_heads: 2, dropout: 0.1}
data: {synthetic_train_stories: 300, synthetic_val_stories: 20, vocab_size: 300, num_workers: 1}
training:
  max_steps: 12
  batch_size: 4
  lr: 1.0e-2
  warmup_steps: 2
  eval_interval: 2
  eval_batches: 2
  checkpoint_interval: 5
  keep_checkpoints: 10
  device: cpu
logging: {progress_bar: false, log_interval: 0, sample_tokens: 0}
"""
"""A run of a few seconds: 12 steps, evaluations every 2, checkpoints at 5, 10 and 12."""


def build_model(model_cfg: Any, vocab_size: int) -> TinyTransformerLM:
    """The example model sized by the config."""
    return TinyTransformerLM(
        vocab_size,
        context_length=model_cfg.context_length,
        d_model=model_cfg.d_model,
        n_layers=model_cfg.n_layers,
        n_heads=model_cfg.n_heads,
        d_ff=model_cfg.d_ff,
        dropout=model_cfg.dropout,
    )


def _kill_at_rename(pattern: str, count: int) -> None:
    seen = [0]

    def guard(real: Any) -> Any:
        def rename(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
            if re.search(pattern, str(dst)):
                seen[0] += 1
                if seen[0] == count:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(src, dst, *args, **kwargs)

        return rename

    os.rename = guard(os.rename)  # type: ignore[assignment]
    os.replace = guard(os.replace)  # type: ignore[assignment]


if __name__ == "__main__":
    if os.environ.get("KILL_AT_RENAME"):
        _kill_at_rename(os.environ["KILL_AT_RENAME"], int(os.environ.get("KILL_AT_COUNT", "1")))
    sys.exit(main(build_model, project=PROJECT, argv=sys.argv[1:]))
