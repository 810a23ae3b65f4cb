"""Worker for ``test_ddp.py``: trains the tiny model, one process or one rank of ``torchrun``.

Run by ``torchrun --standalone --nproc_per_node=2 tests/ddp_worker.py --out DIR --batch-size 4``
(each rank writes ``DIR/rank<r>.json``) and in-process by the test through :func:`run`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import torch  # noqa: E402
from training_utils import loaders, tiny_config, tiny_model  # noqa: E402

from common.training.distributed import init_distributed  # noqa: E402
from common.training.trainer import Trainer  # noqa: E402

MAX_STEPS = 12
EVAL_BATCHES = 3
"""Global validation batches: an odd count, so the ranks' shares differ (2 and 1)."""


def run(out: Path, batch_size: int, grad_accum_steps: int = 1) -> dict[str, Any]:
    """Train ``MAX_STEPS`` steps; return (and write to ``out/rank<r>.json``) what happened."""
    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    config = tiny_config(
        max_steps=MAX_STEPS,
        batch_size=batch_size,
        grad_accum_steps=grad_accum_steps,
        lr=1e-2,
        eval_interval=6,
        checkpoint_interval=6,
        eval_batches=EVAL_BATCHES,
    )
    train, val = loaders(config, ctx.rank, ctx.world_size)
    # Each rank starts from different weights: DDP must broadcast rank 0's.
    model = tiny_model(seed=ctx.rank)
    saves = []
    original_save = model.save_checkpoint

    def counting_save(*args: Any, **kwargs: Any) -> Any:
        saves.append(kwargs.get("step"))
        return original_save(*args, **kwargs)

    model.save_checkpoint = counting_save  # type: ignore[method-assign]
    losses: list[float] = []
    trainer = Trainer(
        model,
        config,
        train,
        val,
        experiment_name="ddp",
        checkpoint_dir=out / "checkpoints",
        storage_dir=out / "store",
        dist_ctx=ctx,
        callbacks=[lambda t, stats: losses.append(stats["loss"])],
    )
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = trainer.train()
    report = {
        "rank": ctx.rank,
        "world_size": ctx.world_size,
        "losses": losses,
        "history": trainer.history,
        "val_loss": result["val_loss"],
        "saves": saves,
        "printed": printed.getvalue(),
        "parameters": {k: v.flatten().tolist() for k, v in model.state_dict().items()},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{ctx.rank}.json").write_text(json.dumps(report))
    ctx.cleanup()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--grad-accum-steps", type=int, default=1)
    args = parser.parse_args()
    run(args.out, args.batch_size, args.grad_accum_steps)


if __name__ == "__main__":
    main()
