"""The evaluation command every project shares: a checkpoint's validation metrics, samples, a row.

A project's ``evaluate.py`` is ``common.training.evaluate.main(ModelClass, project=...)``. By
default it loads the newest intact checkpoint of the project's most recent run; ``--run NAME``
picks a run, ``--checkpoint PATH`` a checkpoint folder (or a run folder: its newest intact
checkpoint). The validation data is rebuilt from the config saved in the checkpoint (cached token
files are reused). The metrics are stored as a row with split ``val`` (as during training; the row
also has ``eval_tokens``, ``eval_batches`` and ``checkpoint`` columns, and on the embedded corpus
``floor_bits_per_byte`` and ``gap_bits_per_byte``) in the run's experiment.
Exit statuses follow ``common.utils.cli``: 2 a user error (one line), 1 an internal error, 130
Ctrl-C.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.utils.argtypes import OneLineParser, non_negative_float, positive_int
from common.utils.cli import run_cli
from common.utils.config import Config, ConfigError, ModelConfig, config_from_dict


class EvaluationError(Exception):
    """A user-facing problem (no checkpoint, unusable checkpoint): printed as one line."""


def build_arg_parser(description: str | None = None) -> argparse.ArgumentParser:
    """The command line of a project's ``evaluate.py``."""
    parser = OneLineParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
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


def find_checkpoint(
    project: str,
    run: str | None = None,
    checkpoint: str | Path | None = None,
    *,
    train_command: str = "train.py",
) -> Path:
    """The checkpoint folder to evaluate: ``checkpoint``, else run ``run``'s newest intact one,
    else that of ``project``'s most recent run.

    Raises:
        EvaluationError: nothing to evaluate there; the message says how to get a checkpoint.
    """
    from common.models.checkpoint import CheckpointError, list_checkpoints, resolve_checkpoint_dir
    from common.training.checkpointing import newest_intact_checkpoint, run_dir
    from common.training.run import find_runs, validate_run_name

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
            names = [r.name for r in find_runs(project)]
            known = f"; runs: {', '.join(names[-5:])}" if names else ""
            raise EvaluationError(f"no checkpoint of run {run!r} in {folder.parent}{known}")
    else:
        runs = [r for r in find_runs(project) if list_checkpoints(r)]
        if not runs:
            raise EvaluationError(
                f"no checkpoint of project {project!r} yet; train one first: {train_command} "
                "(or pass --checkpoint PATH)"
            )
        folder = runs[-1]
    problems: list[str] = []

    def skip(path: Path, exc: CheckpointError) -> None:
        problems.append(str(exc))
        print(f"skipping {path.name}: {exc}", file=sys.stderr, flush=True)

    found = newest_intact_checkpoint(folder, on_skip=skip)
    if found is None:
        raise EvaluationError(f"no intact checkpoint in {folder}: {'; '.join(problems)}")
    return found[0]


def saved_config(
    metadata: dict[str, Any], checkpoint: Path, model_cls: type[ModelConfig] = ModelConfig
) -> Config:
    """The run config stored in a checkpoint's metadata by the training loop.

    Raises:
        EvaluationError: the checkpoint has no run config (not written by a training run).
        ConfigError: the stored config does not parse.
    """
    raw = (metadata.get("extra") or {}).get("config")
    if not isinstance(raw, dict):
        raise EvaluationError(
            f"{checkpoint} holds no run config (it was not written by a training run); "
            "cannot tell which data to evaluate on"
        )
    return config_from_dict(raw, model_cls=model_cls)


def evaluate(
    args: argparse.Namespace,
    model_class: Any,
    *,
    project: str,
    model_cls: type[ModelConfig] = ModelConfig,
    train_command: str = "train.py",
    extra_prompts: Sequence[str] = (),
) -> dict[str, Any]:
    """Load the checkpoint, evaluate it, sample, print a report and store the row.

    Args:
        args: the parsed command line (``build_arg_parser``).
        model_class: the project's model class (a ``BaseLanguageModel``).
        project: the project name (its runs are searched; stored as metadata).
        model_cls: the project's ``ModelConfig`` subclass.
        train_command: how to train one (named when there is no checkpoint).
        extra_prompts: prompts sampled after the run's own ``logging.sample_prompts``.

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

    checkpoint = find_checkpoint(project, args.run, args.checkpoint, train_command=train_command)
    metadata = read_checkpoint_metadata(checkpoint)
    config = saved_config(metadata, checkpoint, model_cls)
    extra = metadata.get("extra") or {}
    name = str(extra.get("experiment_name") or config.logging.experiment_name or "")
    name = name or checkpoint.parent.name
    step = int(metadata.get("step") or 0)
    try:
        device = resolve_device(args.device)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"--device {args.device!r}: {exc}") from None
    model = model_class.from_checkpoint(checkpoint, map_location=device)
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

    dtype = config.training.dtype
    amp = dtype if device.type == "cuda" and dtype != "float32" else None
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
    floor = data.floor_bits_per_byte
    if floor is not None:
        gap = None if bpb is None else bpb - floor
        print(f"floor (a perfect model's score): bits per byte {floor:.4f} | gap {_fmt(gap)}")

    prompts = args.prompts or list(dict.fromkeys([*config.logging.sample_prompts, *extra_prompts]))
    max_new = args.max_new_tokens or max(config.logging.sample_tokens, 1)
    torch.manual_seed(args.seed)
    samples = evaluator.generate_samples(
        prompts, data.tokenizer, max_length=max_new, temperature=args.temperature, top_k=args.top_k
    )
    print(f"samples (temperature {args.temperature:g}, top-k {args.top_k}, seed {args.seed}):")
    for prompt, text in zip(prompts, samples):
        print(f"  [{prompt}] {text!r}")

    train_tokens = extra.get("tokens_seen")
    epoch = train_tokens / data.train_tokens if train_tokens and data.train_tokens else None
    row = metrics_row(
        {"loss": loss, "perplexity": float(metrics["perplexity"]), "bits_per_byte": bpb},
        split="val",
        epoch=epoch,
        floor_bits_per_byte=data.floor_bits_per_byte,
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
            project=project,
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


def main(
    model_class: Any,
    *,
    project: str,
    description: str | None = None,
    model_cls: type[ModelConfig] = ModelConfig,
    train_command: str = "train.py",
    extra_prompts: Sequence[str] = (),
    argv: Sequence[str] | None = None,
) -> int:
    """Parse the command line and evaluate; returns the exit status (0 on success).

    Args:
        model_class: the project's model class (a ``BaseLanguageModel``).
        project: the project name.
        description: ``--help`` text (e.g. the script's ``__doc__``).
        model_cls: the project's ``ModelConfig`` subclass.
        train_command: how to train a first run (named when there is no checkpoint).
        extra_prompts: prompts sampled after the run's own.
        argv: the arguments (default ``sys.argv[1:]``).
    """
    from common.data.pipeline import DataError
    from common.models.checkpoint import CheckpointError
    from common.utils import ExperimentStoreError

    args = build_arg_parser(description).parse_args(argv)

    def body() -> int:
        evaluate(
            args,
            model_class,
            project=project,
            model_cls=model_cls,
            train_command=train_command,
            extra_prompts=extra_prompts,
        )
        return 0

    user_errors = (EvaluationError, ConfigError, DataError, CheckpointError, ExperimentStoreError)
    return run_cli(body, tool="evaluate", user_errors=user_errors)
