"""Evaluate a trained custom transformer: validation loss, perplexity, bits per byte, samples.

By default it loads the latest checkpoint of the most recent run of this project; --run NAME picks
a run, --checkpoint PATH a checkpoint folder (or a run folder: its latest checkpoint). The
validation data is rebuilt from the config saved in the checkpoint (cached token files are
reused). The metrics are stored as a row with split "val" (the validation data, as during
training; the row also has eval_tokens, eval_batches and checkpoint columns) in the run's
experiment, next to the rows written during training.

Examples:
    python -m projects.custom_transformer.evaluate
    python -m projects.custom_transformer.evaluate --run custom_transformer-tiny-20250101-120000
    python -m projects.custom_transformer.evaluate --prompt "Once upon a time" --temperature 0.5
    cd projects/custom_transformer && python evaluate.py --eval-batches 20 --no-save
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.training.cli import EXIT_INTERRUPTED, EXIT_USER_ERROR
from common.utils.argtypes import non_negative_float, positive_int
from common.utils.config import Config, ConfigError, config_from_dict

PROJECT = "custom_transformer"
TRAIN_COMMAND = "python -m projects.custom_transformer.train"
EXTRA_PROMPTS = ("One day, a little girl named Lily", "The dog was very")
"""Prompts sampled after the run's own ``logging.sample_prompts``."""


class EvaluationError(Exception):
    """A user-facing problem (no checkpoint, unusable checkpoint): printed as one line."""


def build_arg_parser() -> argparse.ArgumentParser:
    """The command line of ``evaluate.py``."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--run", metavar="NAME", help="evaluate this run's latest checkpoint")
    which.add_argument(
        "--checkpoint", type=Path, metavar="PATH", help="a checkpoint folder (or a run folder)"
    )
    parser.add_argument(
        "--prompt",
        dest="prompts",
        action="append",
        default=None,
        metavar="TEXT",
        help="prompt to continue (repeatable; default: the run's sample prompts and a few more)",
    )
    parser.add_argument(
        "--max-new-tokens", type=positive_int, default=None, help="tokens generated per prompt"
    )
    parser.add_argument(
        "--temperature", type=non_negative_float, default=0.8, help="0 = greedy (default 0.8)"
    )
    parser.add_argument("--top-k", type=positive_int, default=50, help="top-k sampling (50)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (0)")
    parser.add_argument(
        "--eval-batches",
        type=positive_int,
        default=None,
        help="evaluate at most N validation batches (default: the whole validation split)",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=None, help="validation batch size"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--no-save", action="store_true", help="do not store the evaluation row")
    return parser


# ---------------------------------------------------------------------------- checkpoints
def find_checkpoint(run: str | None = None, checkpoint: str | Path | None = None) -> Path:
    """The checkpoint folder to evaluate.

    Args:
        run: a run name under ``assets/outputs/checkpoints`` (its newest intact checkpoint).
        checkpoint: a checkpoint folder, or a run folder (its newest intact checkpoint).

    Returns:
        A complete checkpoint folder; with neither argument the newest intact checkpoint of the
        most recent run of this project.

    Raises:
        EvaluationError: nothing to evaluate there; the message says how to get a checkpoint.
    """
    from common.models.checkpoint import CheckpointError, list_checkpoints, resolve_checkpoint_dir
    from common.training.run import find_runs, run_dir, validate_run_name

    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not (path.is_dir() and list_checkpoints(path)):
            try:
                return resolve_checkpoint_dir(path)
            except CheckpointError as exc:
                raise EvaluationError(str(exc)) from None
        folder = path
    elif run is not None:
        folder = run_dir(validate_run_name(run))
        if not list_checkpoints(folder):
            names = [r.name for r in find_runs(PROJECT)]
            known = f"; runs: {', '.join(names[-5:])}" if names else ""
            raise EvaluationError(f"no checkpoint of run {run!r} in {folder.parent}{known}")
    else:
        runs = [r for r in find_runs(PROJECT) if list_checkpoints(r)]
        if not runs:
            raise EvaluationError(
                f"no checkpoint of project {PROJECT!r} yet; train one first: {TRAIN_COMMAND} "
                "(or pass --checkpoint PATH)"
            )
        folder = runs[-1]
    return _newest_intact(folder)


def _newest_intact(folder: Path) -> Path:
    from common.models.checkpoint import CheckpointError, list_checkpoints, read_verified_metadata

    problems = []
    for path in reversed(list_checkpoints(folder)):
        try:
            read_verified_metadata(path)
        except CheckpointError as exc:
            problems.append(str(exc))
            print(f"skipping {path.name}: {exc}", file=sys.stderr, flush=True)
            continue
        return path
    raise EvaluationError(f"no intact checkpoint in {folder}: {'; '.join(problems)}")


def saved_config(metadata: dict[str, Any], checkpoint: Path) -> Config:
    """The run config stored in a checkpoint's metadata by the training loop.

    Raises:
        EvaluationError: the checkpoint has no run config (not written by ``train.py``).
        ConfigError: the stored config does not parse.
    """
    from projects.custom_transformer.model import TransformerConfig

    raw = (metadata.get("extra") or {}).get("config")
    if not isinstance(raw, dict):
        raise EvaluationError(
            f"{checkpoint} holds no run config (it was not written by {TRAIN_COMMAND}); "
            "cannot tell which data to evaluate on"
        )
    return config_from_dict(raw, model_cls=TransformerConfig)


# ------------------------------------------------------------------------------ evaluation
def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Load the checkpoint, evaluate it, sample, print a report and store the row.

    Args:
        args: the parsed command line.

    Returns:
        The evaluation row (also stored unless ``--no-save``).

    Raises:
        EvaluationError, ConfigError, DataError, CheckpointError, ExperimentStoreError.
    """
    import torch

    from common.data.pipeline import prepare_data
    from common.models.checkpoint import read_checkpoint_metadata
    from common.training.distributed import resolve_device
    from common.training.evaluator import Evaluator
    from common.training.records import metrics_row, run_metadata

    checkpoint = find_checkpoint(args.run, args.checkpoint)
    metadata = read_checkpoint_metadata(checkpoint)
    config = saved_config(metadata, checkpoint)
    extra = metadata.get("extra") or {}
    name = str(extra.get("experiment_name") or config.logging.experiment_name or "")
    if not name:
        name = checkpoint.parent.name
    step = int(metadata.get("step") or 0)

    try:
        device = resolve_device(args.device)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"--device {args.device!r}: {exc}") from None
    from projects.custom_transformer.model import CustomTransformer

    model = CustomTransformer.from_checkpoint(checkpoint, map_location=device)
    print(
        f"checkpoint: {checkpoint} (run {name}, step {step:,}, "
        f"{model.num_parameters():,} parameters, {device})",
        flush=True,
    )

    batch_size = args.batch_size or config.training.batch_size
    context = int(model.context_length or config.model.context_length)
    data = prepare_data(
        config.data,
        context,
        config.training.batch_size,
        seed=config.training.seed,
        eval_batch_size=batch_size,
    )
    if data.tokenizer.vocab_size > model.vocab_size:
        raise EvaluationError(
            f"the tokenizer built from the saved config has {data.tokenizer.vocab_size} tokens "
            f"but the model only {model.vocab_size}: the data or tokenizer changed since training"
        )
    print(f"data: {data.description}", flush=True)

    amp = (
        config.training.dtype
        if device.type == "cuda" and config.training.dtype != "float32"
        else None
    )
    evaluator = Evaluator(model, device=device, amp_dtype=amp)
    start = time.perf_counter()
    metrics = evaluator.evaluate(data.val_loader, max_batches=args.eval_batches)
    eval_s = time.perf_counter() - start
    baseline = data.unigram_baseline()

    loss, bpb = float(metrics["loss"]), metrics.get("bits_per_byte")
    covered = f"{metrics['num_batches']} batches, {int(metrics['num_tokens']):,} tokens"
    print(
        f"validation ({covered}, {eval_s:.1f}s): loss {loss:.4f} | perplexity "
        f"{metrics['perplexity']:.2f} | bits per byte {_fmt(bpb)}",
        flush=True,
    )
    ratio = ""
    if bpb is not None and baseline.get("bits_per_byte"):
        ratio = f" (the model needs {bpb / baseline['bits_per_byte']:.0%} of the baseline's bits)"
    print(
        f"unigram baseline: loss {baseline['loss']:.4f} | perplexity "
        f"{baseline['perplexity']:.2f} | bits per byte {_fmt(baseline.get('bits_per_byte'))}"
        f"{ratio}",
        flush=True,
    )

    prompts = args.prompts or list(dict.fromkeys([*config.logging.sample_prompts, *EXTRA_PROMPTS]))
    max_new = args.max_new_tokens or max(config.logging.sample_tokens, 1)
    torch.manual_seed(args.seed)
    samples = evaluator.generate_samples(
        prompts,
        data.tokenizer,
        max_length=max_new,
        temperature=args.temperature,
        top_k=args.top_k,
    )
    print(f"samples (temperature {args.temperature:g}, top-k {args.top_k}, seed {args.seed}):")
    for prompt, text in zip(prompts, samples):
        print(f"  [{prompt}] {text!r}")

    train_tokens = extra.get("tokens_seen")
    epoch = train_tokens / data.train_tokens if train_tokens and data.train_tokens else None
    row = metrics_row(
        {
            "loss": loss,
            "perplexity": float(metrics["perplexity"]),
            "bits_per_byte": bpb,
        },
        split="val",
        epoch=epoch,
        step=step,
        tokens_seen=train_tokens,
        eval_tokens=int(metrics["num_tokens"]),
        eval_batches=int(metrics["num_batches"]),
        unigram_loss=baseline["loss"],
        unigram_bits_per_byte=baseline.get("bits_per_byte"),
        checkpoint=str(checkpoint),
    )
    if not args.no_save:
        from common.utils import save_experiment

        meta = run_metadata(
            config,
            model,
            device=device,
            data_description=data.description,
            train_tokens=data.train_tokens,
            project=PROJECT,
        )
        save_experiment(name, [row], meta)
        print(
            f"stored: split 'val' row at step {step} (eval_batches {row['eval_batches']}) in "
            f"experiment {name}; see it with\n"
            '  python tools/query_experiments.py --sql "SELECT step, split, loss, bits_per_byte, '
            f"eval_batches FROM experiments WHERE experiment_name = '{name}' "
            'ORDER BY step, split"',
            flush=True,
        )
    return row


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and evaluate; returns the exit status (0 on success).

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
    """
    args = build_arg_parser().parse_args(argv)
    from common.data.pipeline import DataError
    from common.models.base import CheckpointError
    from common.utils import ExperimentStoreError

    try:
        evaluate(args)
    except (EvaluationError, ConfigError, DataError, CheckpointError, ExperimentStoreError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
