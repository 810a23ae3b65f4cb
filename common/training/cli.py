"""The shared command line of project ``train.py`` scripts: arguments in, exit status out.

A project's script is a model factory and its default config::

    from common.training.cli import main

    def build_model(model_cfg, vocab_size):
        return MyLM(vocab_size, context_length=model_cfg.context_length, ...)

    if __name__ == "__main__":
        raise SystemExit(main(build_model, project="my_project", default_config=CONFIG))

``main`` parses ``--config``, ``--set SECTION.KEY=VALUE`` (repeatable), ``--resume [RUN]``,
``--reproduce EXPERIMENT``, ``--device``, ``--max-steps`` and ``--name`` into a ``RunRequest``
(with ``--sweep``/``--seeds``/``--trials`` it hands the request to ``common.training.sweep``,
which starts this same script once per run; ``--search`` runs an Optuna study through
``common.training.search``); ``common.training.run``
decides and trains the run (joining the ``torchrun`` process group when launched by it); this
module prints the summary and turns every expected failure into one line on stderr and an exit
status (``EXIT_*``: ``common.utils.cli``'s 0, 2, 1 and 130, plus 3 to 7 below), never a
traceback. Nothing heavy is imported until a run starts, so
``--help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common import settings
from common.training.run import LATEST, ModelFactory, RunRequest
from common.training.search import EXIT_PRUNED, PRUNERS, SEARCHES
from common.training.sweep import LAUNCHERS, SweepOptions, parse_axis, run_sweep
from common.utils.cli import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, run_cli
from common.utils.config import ConfigError, ModelConfig

EXIT_USER_ERROR = EXIT_USAGE
"""A bad config, argument, data set or checkpoint."""
EXIT_DIVERGED = 3
EXIT_ROWS_NOT_STORED = 4
"""The run finished but the experiment store refused rows (kept in the checkpoint)."""
EXIT_CHECKPOINT_FAILED = 5
"""A checkpoint could not be written (disk full); the previous one is intact."""
EXIT_RANK_FAILED = 6
"""Another ``torchrun`` rank died or hung."""

__all__ = [
    "EXIT_CHECKPOINT_FAILED",
    "EXIT_DIVERGED",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PRUNED",
    "EXIT_RANK_FAILED",
    "EXIT_ROWS_NOT_STORED",
    "EXIT_USER_ERROR",
    "build_arg_parser",
    "main",
    "request_from_args",
    "run_sweep_command",
    "run_training",
]

DefaultConfig = Path | Callable[[], tuple[Path, str]] | None
"""A config file, or a function returning one and a line saying why it was chosen."""


def build_arg_parser(
    description: str | None = None, *, default_config: str | None = None
) -> argparse.ArgumentParser:
    """The argument parser of a project's ``train.py``.

    Args:
        description: shown by ``--help`` (e.g. the script's ``__doc__``).
        default_config: how the config is chosen without ``--config`` (for ``--help``).
    """
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_note = f" (default: {default_config})" if default_config else ""
    parser.add_argument(
        "--config", type=Path, default=None, help=f"YAML run configuration{default_note}"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a config value, e.g. --set training.lr=3e-4 (repeatable)",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const=LATEST,
        default=None,
        metavar="RUN",
        help="continue a run from its newest intact checkpoint with its stored config: the "
        "named run, or without a value the most recent run of this project",
    )
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--max-steps", type=int, default=None, help="optimizer steps in total")
    parser.add_argument("--name", default=None, help="the run's (experiment's) name")
    parser.add_argument(
        "--reproduce",
        metavar="EXPERIMENT",
        default=None,
        help="train a stored experiment again from its stored config and seed, as a new run "
        "(default name: EXPERIMENT-repro); warns when the git commit or torch version differ",
    )
    parser.add_argument(
        "--tag",
        dest="tags",
        action="append",
        default=[],
        metavar="TAG",
        help="tag the run's experiment (repeatable); see query_experiments.py --list",
    )
    parser.add_argument("--note", default=None, help="a note on the run's experiment")
    sweep = parser.add_argument_group(
        "sweeps", "a grid or random search of runs of this script (common.training.sweep)"
    )
    sweep.add_argument(
        "--sweep",
        dest="sweep_axes",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUES",
        help="values to sweep: training.lr=1e-3,3e-3 (grid; repeat for a product) or "
        "'training.lr=loguniform(1e-4,1e-2)' with --trials (also uniform, int, choice)",
    )
    sweep.add_argument("--seeds", type=int, default=None, help="seeds per point: seed, seed+1, ...")
    sweep.add_argument("--trials", type=int, default=None, help="random search: points to draw")
    sweep.add_argument(
        "--sweep-name", default=None, help="the sweep's name (default: project, config, time)"
    )
    sweep.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    sweep.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        default="local",
        help="local processes, or submitit jobs: submitit-local or slurm",
    )
    sweep.add_argument("--slurm-partition", default=None, help="with --launcher slurm")
    sweep.add_argument("--slurm-gpus-per-job", type=int, default=0, help="with --launcher slurm")
    sweep.add_argument(
        "--slurm-time", type=int, default=60, metavar="MINUTES", help="a job's time limit"
    )
    sweep.add_argument(
        "--dry-run", action="store_true", help="list the runs a sweep would start, resume or skip"
    )
    sweep.add_argument(
        "--search",
        choices=SEARCHES,
        default=None,
        help="an Optuna study over the --sweep axes: random, tpe, cmaes or grid, with --trials",
    )
    sweep.add_argument(
        "--objective",
        default="loss",
        metavar="METRIC",
        help="with --search: the val column to optimize (default loss; loss, perplexity and "
        "bits_per_byte are minimized; say max:METRIC or min:METRIC for others)",
    )
    sweep.add_argument(
        "--prune",
        choices=PRUNERS,
        default="none",
        help=f"with --search: stop hopeless runs early (median, hyperband; exit {EXIT_PRUNED})",
    )
    sweep.add_argument("--sweep-metadata", default=None, help=argparse.SUPPRESS)
    sweep.add_argument("--sweep-trial", default=None, help=argparse.SUPPRESS)
    return parser


def request_from_args(
    args: argparse.Namespace, project: str, config_dir: Path | None = None
) -> RunRequest:
    """The ``RunRequest`` of parsed arguments (``--device``/``--max-steps`` become overrides).

    A relative ``--config`` that does not exist is also looked up in ``config_dir`` (so
    ``--config configs/tiny.yaml`` works from the repository root).
    """
    overrides = list(args.overrides or [])
    if args.device is not None:
        overrides.append(f"training.device={args.device}")
    if args.max_steps is not None:
        overrides.append(f"training.max_steps={args.max_steps}")
    config = args.config
    moved = config_dir / config if config is not None and config_dir is not None else None
    if config is not None and moved is not None and not config.exists() and moved.exists():
        config = moved
    return RunRequest(
        project, config, overrides, args.resume, args.name, args.reproduce, args.tags, args.note
    )


def _error(message: str, is_main: bool) -> None:
    if is_main:
        print(f"error: {message}", file=sys.stderr, flush=True)


def run_training(
    model_factory: ModelFactory,
    request: RunRequest,
    *,
    model_cls: type[ModelConfig] = ModelConfig,
    default_config: DefaultConfig = None,
    metadata: dict[str, Any] | None = None,
    evaluation_hooks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Decide the run, train it and print a summary.

    Raises:
        SystemExit: after printing one line, with an ``EXIT_*`` status.
    """
    from common.data.pipeline import DataError
    from common.models.checkpoint import CheckpointError, CheckpointWriteError
    from common.training.distributed import DistributedFailure
    from common.training.errors import RowsNotStoredError, RunPruned, TrainingDivergedError
    from common.training.lease import RunLeasedError

    is_main = settings.dist_rank() == 0
    ctx = None
    run = None
    try:
        config_path = _default_config_path(request, default_config, is_main)
        from common.training.run import resolve_run, train_run

        run = resolve_run(request, model_cls=model_cls, default_config=config_path)
        from common.training.distributed import broadcast_object, init_distributed

        try:
            ctx = init_distributed(
                run.config.training.device, timeout_s=run.config.training.dist_timeout_s
            )
        except ValueError as exc:  # unknown device string
            raise ConfigError(f"training.device: {exc}") from None
        is_main = ctx.is_main
        run = broadcast_object(run)  # every rank trains rank 0's run (one name, one folder)
        result = train_run(
            run, model_factory, dist_ctx=ctx, metadata=metadata, evaluation_hooks=evaluation_hooks
        )
        if is_main:
            _print_summary(result)
        return result
    except CheckpointWriteError as exc:
        _error(str(exc), is_main)
        raise SystemExit(EXIT_CHECKPOINT_FAILED) from None
    except (ConfigError, DataError, CheckpointError, RunLeasedError) as exc:
        _error(str(exc), is_main)
        raise SystemExit(EXIT_USER_ERROR) from None
    except TrainingDivergedError as exc:
        _error(str(exc), is_main)
        raise SystemExit(EXIT_DIVERGED) from None
    except RowsNotStoredError as exc:
        _error(str(exc), is_main)
        raise SystemExit(EXIT_ROWS_NOT_STORED) from None
    except RunPruned:  # not an error: the Trainer has said where it stopped
        raise SystemExit(EXIT_PRUNED) from None
    except DistributedFailure as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)  # every rank says what it saw
        raise SystemExit(EXIT_RANK_FAILED) from None
    except KeyboardInterrupt as exc:
        _error(_interrupted_message(exc, run), is_main)
        raise SystemExit(EXIT_INTERRUPTED) from None
    finally:
        if ctx is not None:
            ctx.cleanup()


def _default_config_path(
    request: RunRequest, default_config: DefaultConfig, is_main: bool
) -> Path | None:
    if not callable(default_config):
        return default_config
    if request.config_file is not None:
        return None
    config_path, note = default_config()
    if request.resume is None and request.reproduce is None and is_main:
        print(note, flush=True)
    return config_path


def _sweep_options(args: argparse.Namespace, request: RunRequest) -> SweepOptions:
    """The sweep the arguments ask for (raises ``ConfigError`` for a bad combination)."""
    from common.training.run import default_run_name

    for flag, bad in (("--resume", args.resume), ("--reproduce", args.reproduce)):
        if bad is not None:
            raise ConfigError(f"{flag} goes with single runs; rerun a sweep by its --sweep-name")
    if args.name is not None:
        raise ConfigError("--name names a single run; a sweep's runs are named by --sweep-name")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    stem = request.config_file.stem if request.config_file is not None else None
    return SweepOptions(
        name=args.sweep_name or f"{default_run_name(request.project, stem)}-sweep",
        axes=[parse_axis(text) for text in args.sweep_axes],
        seeds=args.seeds if args.seeds is not None else 1,
        trials=args.trials,
        jobs=args.jobs,
        launcher=args.launcher,
        dry_run=args.dry_run,
        slurm_partition=args.slurm_partition,
        slurm_gpus_per_job=args.slurm_gpus_per_job,
        slurm_time=args.slurm_time,
        search=args.search,
        objective=args.objective,
        prune=args.prune,
    )


def run_sweep_command(
    args: argparse.Namespace,
    request: RunRequest,
    *,
    model_cls: type[ModelConfig] = ModelConfig,
    default_config: DefaultConfig = None,
) -> int:
    """Run the sweep the arguments ask for; returns its exit status (``EXIT_USER_ERROR`` after
    one line for a bad sweep)."""
    from common.data.pipeline import DataError

    try:
        options = _sweep_options(args, request)
        config_path = request.config_file or _default_config_path(request, default_config, True)
        if options.search is not None:  # a search that learns: Optuna asks for the points
            from common.training.search import run_search

            run = run_search
        else:
            run = run_sweep
        return run(
            options,
            config_path,
            request.overrides,
            project=request.project,
            model_cls=model_cls,
        )
    except (ConfigError, DataError) as exc:
        _error(str(exc), True)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        _error("sweep interrupted; rerun the same command to resume it", True)
        return EXIT_INTERRUPTED


def _interrupted_message(exc: KeyboardInterrupt, run: Any) -> str:
    if str(exc):  # TrainingInterrupted: says where the checkpoint is
        return str(exc)
    from common.training.run import RUN_FILE

    if run is not None and (run.folder / RUN_FILE).exists():
        return (
            f"interrupted; run {run.name} has no new checkpoint; --resume {run.name} continues "
            "from its newest checkpoint (or step 0) with its config"
        )
    return "interrupted before the run started; nothing was saved"


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def _floor_lines(floor: float | None, gap: float | None) -> list[str]:
    if floor is None:
        return []
    return [f"  floor {floor:.4f} bits per byte (a perfect model's score), gap {_fmt(gap)}"]


def _print_summary(result: dict[str, Any]) -> None:
    from common.paths import get_experiments_dir

    name = result["experiment_name"]
    best = result.get("best_val_loss")
    best_note = f" (best {_fmt(best)} at step {result.get('best_val_step')})" if best else ""
    query = (
        'python tools/query_experiments.py --sql "SELECT step, split, loss, bits_per_byte '
        f"FROM experiments WHERE experiment_name = '{name}' ORDER BY step, split\""
    )
    lines = [
        f"finished {name}: step {result['step']}, {result['tokens_seen']:,} tokens, "
        f"{result['elapsed_s']:.0f}s",
        f"  val loss {_fmt(result.get('val_loss'))}{best_note}, perplexity "
        f"{_fmt(result.get('val_perplexity'), '.2f')}, bits per byte "
        f"{_fmt(result.get('val_bits_per_byte'))}",
        *_floor_lines(result.get("val_floor_bits_per_byte"), result.get("val_gap_bits_per_byte")),
        f"  checkpoint: {result.get('last_checkpoint')}",
        f"  experiment: {name} (store: {get_experiments_dir()})",
        f"  query: {query}",
    ]
    print("\n".join(lines), flush=True)


def main(
    model_factory: ModelFactory,
    *,
    project: str,
    description: str | None = None,
    model_cls: type[ModelConfig] = ModelConfig,
    default_config: DefaultConfig = None,
    config_dir: Path | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    """Parse the command line and train; returns the exit status (0 on success).

    Args:
        model_factory: ``f(model_cfg, vocab_size) -> model``.
        project: the project name.
        description: ``--help`` text.
        model_cls: the project's ``ModelConfig`` subclass.
        default_config: the config used without ``--config``: a file, or a function returning
            one and a line (printed) saying why.
        config_dir: where a relative ``--config`` is also looked up (the project's folder).
        argv: arguments (default ``sys.argv[1:]``).
    """
    help_default = (
        None if callable(default_config) or default_config is None else str(default_config)
    )
    parser = build_arg_parser(description, default_config=help_default)
    args = parser.parse_args(argv)
    request = request_from_args(args, project, config_dir)
    if args.sweep_axes or args.seeds is not None or args.trials is not None or args.search:
        return run_sweep_command(args, request, model_cls=model_cls, default_config=default_config)
    defaults = parser.parse_args([])
    for flag in ("sweep_name", "jobs", "launcher", "slurm_partition", "slurm_gpus_per_job",
                 "slurm_time", "dry_run", "objective", "prune"):  # fmt: skip
        if getattr(args, flag) != getattr(defaults, flag):
            parser.error(f"--{flag.replace('_', '-')} goes with --sweep, --seeds or --trials")
    metadata = None
    if args.sweep_metadata is not None:
        metadata = json.loads(args.sweep_metadata)

    def body() -> int:
        reporter = None
        if args.sweep_trial is not None:  # a run of a search: report to its trial
            from common.training.search import TrialLink, TrialReporter

            reporter = TrialReporter(TrialLink.from_json(args.sweep_trial))
        try:
            run_training(
                model_factory,
                request,
                model_cls=model_cls,
                default_config=default_config,
                metadata=metadata,
                evaluation_hooks=[reporter] if reporter is not None else [],
            )
        except SystemExit as exc:
            if exc.code == EXIT_PRUNED and reporter is not None:
                reporter.mark_pruned()
            return int(exc.code or 0)
        return EXIT_OK

    return run_cli(body, tool="train")
