"""The shared command line of project ``train.py`` scripts.

A project's script builds its model and hands everything else to this module::

    from common.training.cli import main

    def build_model(model_cfg, vocab_size):
        return MyLM(vocab_size, context_length=model_cfg.context_length, ...)

    if __name__ == "__main__":
        raise SystemExit(main(build_model, project="my_project", description=__doc__))

``main`` parses ``--config``, ``--set SECTION.KEY=VALUE`` (repeatable), ``--resume [RUN]``,
``--device``, ``--max-steps`` and ``--name``; loads the config; joins the ``torchrun`` process
group when launched by it; prepares the data; builds the model; trains with ``Trainer``; and
prints a summary saying where the checkpoint and the experiment rows are and how to query them.
Mistakes (bad config, missing data set, divergence, a checkpoint that does not fit) end with one
clear message and a non-zero exit status, no traceback.

Runs are named ``<project>-<config stem>-<UTC timestamp>`` unless ``--name`` (or
``logging.experiment_name``) says otherwise; checkpoints go to
``assets/outputs/checkpoints/<name>``. ``--resume`` alone continues the project's most recent run
(by checkpoint time), ``--resume NAME`` that run, with the config saved in its checkpoint unless
``--config`` is given; ``--set`` still applies (e.g. ``--set training.max_steps=4000``).

Nothing heavy is imported until a run starts, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.utils.config import (
    SECTIONS,
    Config,
    ConfigError,
    DataConfig,
    LoggingConfig,
    ModelConfig,
    TrainingConfig,
    apply_overrides,
    load_config,
    parse_dataclass,
)

if TYPE_CHECKING:
    from torch import nn

LATEST = "__latest__"
EXIT_USER_ERROR = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130

ModelFactory = Callable[[Any, int], "nn.Module"]


def build_arg_parser(
    description: str | None = None, *, default_config: str | Path | None = None
) -> argparse.ArgumentParser:
    """The argument parser of a project's ``train.py``.

    Args:
        description: shown by ``--help`` (e.g. the script's ``__doc__``).
        default_config: the config used without ``--config`` (mentioned in ``--help``).

    Returns:
        A parser with ``--config``, ``--set``, ``--resume``, ``--device``, ``--max-steps`` and
        ``--name``; more arguments may be added before parsing.
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
        help="continue a run from its latest checkpoint: the named run, or without a value the "
        "most recent run of this project",
    )
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--max-steps", type=int, default=None, help="optimizer steps in total")
    parser.add_argument("--name", default=None, help="experiment (run) name")
    return parser


def find_runs(project: str, checkpoints_dir: str | Path | None = None) -> list[Path]:
    """Run folders of ``project`` holding at least one complete checkpoint, most recent last.

    A run belongs to ``project`` when its name starts with ``<project>-`` (the default names) or
    its checkpoint's saved config says ``logging.project: <project>`` (runs named with
    ``--name``).

    Args:
        project: the project name.
        checkpoints_dir: where runs live (default ``get_checkpoints_dir()``).

    Returns:
        The run folders, ordered by the time of their latest checkpoint.
    """
    from common.models.base import CheckpointError, read_checkpoint_metadata
    from common.paths import get_checkpoints_dir
    from common.training.trainer import latest_checkpoint

    root = Path(checkpoints_dir) if checkpoints_dir is not None else get_checkpoints_dir()
    if not root.is_dir():
        return []
    runs = []
    for run in root.iterdir():
        latest = latest_checkpoint(run) if run.is_dir() else None
        if latest is None:
            continue
        if not run.name.startswith(f"{project}-"):
            try:
                extra = read_checkpoint_metadata(latest).get("extra") or {}
            except CheckpointError:
                continue
            if ((extra.get("config") or {}).get("logging") or {}).get("project") != project:
                continue
        runs.append(((latest / "checkpoint.json").stat().st_mtime, run.name, run))
    return [run for *_, run in sorted(runs)]


def _resume_target(args: argparse.Namespace, project: str) -> Path | None:
    from common.paths import get_checkpoints_dir

    if args.resume is None:
        return None
    root = get_checkpoints_dir()
    name = args.name if args.resume == LATEST else args.resume
    if name:
        run = root / name
        if not run.is_dir():
            raise ConfigError(f"--resume: no run named {name!r} in {root}")
        return run
    runs = find_runs(project, root)
    if not runs:
        raise ConfigError(
            f"--resume: no run of project {project!r} with a checkpoint in {root}; "
            "start one without --resume"
        )
    return runs[-1]


def _cli_overrides(args: argparse.Namespace) -> list[str]:
    overrides = list(args.overrides or [])
    if args.device is not None:
        overrides.append(f"training.device={args.device}")
    if args.max_steps is not None:
        overrides.append(f"training.max_steps={args.max_steps}")
    return overrides


def config_from_dict(
    raw: dict[str, Any], overrides: Sequence[str] = (), model_cls: type[ModelConfig] = ModelConfig
) -> Config:
    """A ``Config`` from a nested dict (e.g. the one saved in a checkpoint) plus overrides.

    Raises:
        ConfigError: unknown sections or keys, or wrongly typed values.
    """
    raw = apply_overrides({k: dict(v or {}) for k, v in raw.items()}, overrides)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"unknown config section {', '.join(map(repr, unknown))}")
    return Config(
        model=parse_dataclass(model_cls, raw.get("model"), "model"),
        data=parse_dataclass(DataConfig, raw.get("data"), "data"),
        training=parse_dataclass(TrainingConfig, raw.get("training"), "training"),
        logging=parse_dataclass(LoggingConfig, raw.get("logging"), "logging"),
    )


def resolve_run_config(
    args: argparse.Namespace,
    *,
    project: str,
    model_cls: type[ModelConfig] = ModelConfig,
    default_config: str | Path | None = None,
) -> tuple[Config, Path | None, Path | None]:
    """The run's config, the config file it came from, and the run folder to resume (if any).

    When resuming without ``--config`` the config saved in the run's latest checkpoint is used.

    Raises:
        ConfigError: bad config or override, or nothing to resume.
    """
    from common.models.base import read_checkpoint_metadata
    from common.training.trainer import latest_checkpoint

    resume_dir = _resume_target(args, project)
    overrides = _cli_overrides(args)
    config_path = args.config or (Path(default_config) if default_config else None)
    if resume_dir is not None and args.config is None:
        latest = latest_checkpoint(resume_dir)
        saved = (
            (read_checkpoint_metadata(latest).get("extra") or {}).get("config")
            if latest is not None
            else None
        )
        if saved:
            config = config_from_dict(saved, overrides, model_cls)
            return config, None, resume_dir
    config = load_config(config_path, overrides, model_cls=model_cls)
    return config, config_path, resume_dir


def _error(message: str, is_main: bool = True) -> None:
    if is_main:
        print(f"error: {message}", file=sys.stderr, flush=True)


def run_training(
    model_factory: ModelFactory,
    args: argparse.Namespace,
    *,
    project: str,
    model_cls: type[ModelConfig] = ModelConfig,
    default_config: str | Path | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Load the config, prepare data, build the model, train, and print a summary.

    Args:
        model_factory: ``f(model_cfg, vocab_size) -> model`` (a ``BaseLanguageModel``).
        args: the parsed arguments of ``build_arg_parser``.
        project: the project name (experiment metadata, run names, ``--resume``).
        model_cls: the project's ``ModelConfig`` subclass for the ``model`` section.
        default_config: config file used without ``--config``.
        metadata: extra experiment metadata.

    Returns:
        ``Trainer.train``'s final metrics plus ``config`` (the resolved ``Config``).

    Raises:
        SystemExit: after printing one line for a config, data or checkpoint problem (status 2),
            divergence (3) or Ctrl-C (130).
    """
    from common.data.pipeline import DataError
    from common.models.base import CheckpointError
    from common.training.trainer import TrainingDivergedError

    is_main = os.environ.get("RANK", "0") == "0"
    ctx = None
    try:
        config, config_path, resume_dir = resolve_run_config(
            args, project=project, model_cls=model_cls, default_config=default_config
        )
        from common.training.distributed import init_distributed

        try:
            ctx = init_distributed(config.training.device)
        except ValueError as exc:  # unknown device string
            raise ConfigError(f"training.device: {exc}") from None
        is_main = ctx.is_main
        return _train(
            model_factory, config, config_path, resume_dir, args, ctx, project, metadata or {}
        )
    except (ConfigError, DataError, CheckpointError) as exc:
        _error(str(exc), is_main)
        raise SystemExit(EXIT_USER_ERROR) from None
    except TrainingDivergedError as exc:
        _error(str(exc), is_main)
        raise SystemExit(EXIT_DIVERGED) from None
    except KeyboardInterrupt:
        _error("interrupted; continue the run with --resume", is_main)
        raise SystemExit(EXIT_INTERRUPTED) from None
    finally:
        if ctx is not None:
            ctx.cleanup()


def _train(
    model_factory: ModelFactory,
    config: Config,
    config_path: Path | None,
    resume_dir: Path | None,
    args: argparse.Namespace,
    ctx: Any,
    project: str,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    import torch

    from common.data.pipeline import prepare_data
    from common.paths import get_checkpoints_dir, get_experiments_dir
    from common.training.distributed import broadcast_object
    from common.training.trainer import Trainer, default_experiment_name

    if config.logging.project is None:
        config.logging.project = project
    if resume_dir is not None:
        name = resume_dir.name
    else:
        stem = config_path.stem if config_path is not None else "default"
        name = args.name or config.logging.experiment_name or default_experiment_name(project, stem)
        name = broadcast_object(name)
    config.logging.experiment_name = name

    data = prepare_data(
        config.data,
        config.model.context_length,
        config.training.batch_size,
        seed=config.training.seed,
        rank=ctx.rank,
        world_size=ctx.world_size,
    )
    tokenizer_vocab = int(data.tokenizer.vocab_size)
    if config.model.vocab_size is None:
        config.model.vocab_size = tokenizer_vocab
    elif config.model.vocab_size < tokenizer_vocab:
        raise ConfigError(
            f"model.vocab_size ({config.model.vocab_size}) is smaller than the tokenizer's "
            f"vocabulary ({tokenizer_vocab}); remove it to use the tokenizer's size"
        )
    if ctx.is_main:
        print(f"data: {data.description}", flush=True)

    torch.manual_seed(config.training.seed)
    model = model_factory(config.model, config.model.vocab_size)
    trainer = Trainer.from_prepared(
        model,
        config,
        data,
        experiment_name=name,
        checkpoint_dir=get_checkpoints_dir() / name,
        metadata={"project": project, "config_file": str(config_path or ""), **metadata},
        dist_ctx=ctx,
    )
    result = trainer.train(resume=resume_dir is not None)
    result["config"] = config
    if ctx.is_main:
        _print_summary(result, get_experiments_dir())
    return result


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def _print_summary(result: dict[str, Any], experiments_dir: Path) -> None:
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
        f"  checkpoint: {result.get('last_checkpoint')}",
        f"  experiment: {name} (store: {experiments_dir})",
        f"  query: {query}",
    ]
    print("\n".join(lines), flush=True)


def main(
    model_factory: ModelFactory,
    *,
    project: str,
    description: str | None = None,
    model_cls: type[ModelConfig] = ModelConfig,
    default_config: str | Path | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    """Parse the command line and train; returns the exit status (0 on success).

    Args:
        model_factory: ``f(model_cfg, vocab_size) -> model``.
        project: the project name.
        description: ``--help`` text.
        model_cls: the project's ``ModelConfig`` subclass.
        default_config: config file used without ``--config``.
        argv: arguments (default ``sys.argv[1:]``).
    """
    parser = build_arg_parser(description, default_config=default_config)
    args = parser.parse_args(argv)
    try:
        run_training(
            model_factory,
            args,
            project=project,
            model_cls=model_cls,
            default_config=default_config,
        )
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
