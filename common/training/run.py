"""One place decides a training run: its name, project, folder, config and resume state.

``resolve_run(RunRequest(...))`` turns what was asked for (a config file and overrides, or a run
to resume) into a ``Run``; ``train_run(run, model_factory)`` prepares the data, builds the model,
writes the run's record (``<run folder>/run.json``: name, project, config file and the resolved
config) before the first step and trains it with the ``Trainer``. ``common.training.cli`` only
parses arguments into a ``RunRequest`` and maps the errors to exit statuses.

Runs live in ``assets/outputs/checkpoints/<name>``; a name is validated with the experiment
store's rule before any work, and a new run never reuses the folder of an existing one. A new
run (``--reproduce`` and a sweep's runs included) claims its experiment name in the store
(``claim_experiment``, owner: its folder) before its first write, so of two runs, renames or
saves that want one name exactly one gets it; then the ``--tag``/``--note`` asked for are set.
A run is trained by one process at a time: ``train_run`` (and the ``Trainer``) take the run
folder's lease (``common.training.lease``) before the first write; a second trainer is refused.

Resume always uses the run's stored config. Overrides are accepted for the keys in
``RESUMABLE_KEYS`` (steps, intervals, device, logging, and the learning-rate schedule, which then
applies from the resume step on); any other override is refused. With no complete checkpoint the
run restarts from step 0, with its own config.

Reproduction (``RunRequest.reproduce``) is a new run with another run's stored config, seed
included, so on the same machine and software its rows equal the original's.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.training.checkpointing import newest_intact_checkpoint, run_dir
from common.utils.config import (
    RESUMABLE_KEYS,
    Config,
    ConfigError,
    ModelConfig,
    config_dict_from_metadata,
    config_from_dict,
    config_to_dict,
    load_config,
)

if TYPE_CHECKING:
    from torch import nn

    from common.training.distributed import DistributedContext

LATEST = "__latest__"
"""``RunRequest.resume`` value meaning: the project's most recent run."""
RUN_FILE = "run.json"


ModelFactory = Callable[[Any, int], "nn.Module"]


@dataclass
class RunRequest:
    """What the user asked for.

    Attributes:
        project: the project the run belongs to.
        config_file: the YAML config of a new run (None: ``default_config`` of ``resolve_run``).
        overrides: ``SECTION.KEY=VALUE`` strings applied to the config.
        resume: None for a new run, ``LATEST`` for the project's most recent run, or a run name.
        name: the new run's name (default: ``logging.experiment_name`` or a timestamped name);
            with ``resume=LATEST`` it names the run to resume.
        reproduce: a stored run to train again, from step 0, with its stored config and seed.
        tags: tags to give the run's experiment (``--tag``).
        note: the note to set on the run's experiment (``--note``; empty: none).
    """

    project: str
    config_file: Path | None = None
    overrides: list[str] = field(default_factory=list)
    resume: str | None = None
    name: str | None = None
    reproduce: str | None = None
    tags: list[str] = field(default_factory=list)
    note: str | None = None


@dataclass
class Run:
    """A decided run.

    Attributes:
        name: the run's name (experiment rows and folder).
        project: its project.
        folder: ``assets/outputs/checkpoints/<name>``.
        config: the resolved config (``logging.project`` and ``logging.experiment_name`` set).
        config_file: the config file the run was started from (kept across resumes).
        resume: continue from the folder's newest intact checkpoint (step 0 when there is none).
        overrides: the overrides applied (recorded in ``run.json`` on resume).
        note: a line to print before training (e.g. why a resume restarts from step 0).
        tags: tags given to the run's experiment when training starts.
        experiment_note: the note set on the run's experiment when training starts (None: the
            note is left as it is).
    """

    name: str
    project: str
    folder: Path
    config: Config
    config_file: str
    resume: bool = False
    overrides: list[str] = field(default_factory=list)
    note: str | None = None
    tags: list[str] = field(default_factory=list)
    experiment_note: str | None = None


def default_run_name(project: str, stem: str | None = None) -> str:
    """``<project>-<config stem>-<UTC timestamp>``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return "-".join(part for part in (project, stem, stamp) if part)


def validate_run_name(name: str) -> str:
    """``name`` if the experiment store accepts it (no path separators, ``..``, ...).

    Raises:
        ConfigError: the store's reason.
    """
    from common.utils import InvalidExperimentNameError, validate_experiment_name

    try:
        return validate_experiment_name(name)
    except InvalidExperimentNameError as exc:
        raise ConfigError(f"run name: {exc}") from None


def read_run_record(folder: Path) -> dict[str, Any] | None:
    """The ``run.json`` of a run folder, or None when it has none (or it is unreadable)."""
    try:
        record = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("config"), dict) else None


def write_run_record(run: Run) -> None:
    """Create or update ``<run folder>/run.json`` atomically (the config, and each resume)."""
    from common.utils.atomic import atomic_write_text

    now = datetime.now(timezone.utc).isoformat()
    record = read_run_record(run.folder) or {"created_at": now, "resumes": []}
    if run.resume:
        record.setdefault("resumes", []).append({"at": now, "overrides": run.overrides})
    record.update(
        {
            "name": run.name,
            "project": run.project,
            "config_file": run.config_file,
            "config": config_to_dict(run.config),
        }
    )
    run.folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run.folder / RUN_FILE, json.dumps(record, indent=2) + "\n")


def _run_project(folder: Path) -> tuple[str | None, float] | None:
    """(project, time of the last activity) of a run folder, or None if it is not a run."""
    from common.models.checkpoint import (
        CheckpointError,
        latest_checkpoint,
        read_checkpoint_metadata,
    )

    record = read_run_record(folder)
    latest = latest_checkpoint(folder)
    times = [p.stat().st_mtime for p in (folder / RUN_FILE, latest) if p is not None and p.exists()]
    if record is not None:
        return record.get("project"), max(times)
    if latest is None:
        return None
    try:
        extra = read_checkpoint_metadata(latest).get("extra") or {}
    except CheckpointError:
        return None
    return ((extra.get("config") or {}).get("logging") or {}).get("project"), max(times)


def find_runs(project: str, root: str | Path | None = None) -> list[Path]:
    """Run folders of ``project`` (with a ``run.json`` or a checkpoint), most recent last.

    A run belongs to ``project`` when its record (or its checkpoint's config) says so, or its
    name starts with ``<project>-``.
    """
    from common.paths import get_checkpoints_dir

    base = Path(root) if root is not None else get_checkpoints_dir()
    if not base.is_dir():
        return []
    runs = []
    for folder in base.iterdir():
        info = _run_project(folder) if folder.is_dir() else None
        if info is not None and (info[0] == project or folder.name.startswith(f"{project}-")):
            runs.append((info[1], folder.name, folder))
    return [folder for *_, folder in sorted(runs)]


def _known_runs(project: str) -> str:
    names = [p.name for p in find_runs(project)]
    if not names:
        return f"there are no runs of project {project!r} yet"
    return f"runs of project {project!r}: {', '.join(names[-10:])}"


def _check_resumable(overrides: Sequence[str]) -> None:
    for text in overrides:
        key = text.partition("=")[0].strip()
        section, _, name = key.partition(".")
        if name not in RESUMABLE_KEYS.get(section, frozenset()):
            allowed = ", ".join(
                f"{s}.{k}" for s, keys in RESUMABLE_KEYS.items() for k in sorted(keys)
            )
            raise ConfigError(
                f"--set {key}: cannot be changed when resuming (the run's checkpoints and rows "
                f"depend on it); start a new run instead. Changeable on resume: {allowed}"
            )


def resolve_run(
    request: RunRequest,
    *,
    model_cls: type[ModelConfig] = ModelConfig,
    default_config: str | Path | None = None,
) -> Run:
    """Decide the run ``request`` asks for; reads files, writes nothing.

    Raises:
        ConfigError: a bad config, override, tag or note, an invalid or taken name, a resume
            with ``--config`` or with an override it cannot take, or no run to resume (the
            message lists the project's runs).
    """
    from common.experiments.annotations import valid_note, valid_tags
    from common.experiments.errors import InvalidResultsError

    try:
        tags, note = valid_tags(request.tags), valid_note(request.note)
    except InvalidResultsError as exc:
        raise ConfigError(f"--tag/--note: {exc}") from None
    run = _decide(request, model_cls, default_config)
    run.tags = tags
    run.experiment_note = None if request.note is None else note or ""  # "": clear it
    return run


def _decide(
    request: RunRequest, model_cls: type[ModelConfig], default_config: str | Path | None
) -> Run:
    if request.reproduce is not None:
        return _reproduction(request, model_cls)
    if request.resume is None:
        return _new_run(request, model_cls, default_config)
    if request.config_file is not None:
        raise ConfigError(
            "--resume continues a run with its stored config; drop --config "
            "(change what may change with --set)"
        )
    name = request.resume if request.resume != LATEST else request.name
    if name is None:
        runs = find_runs(request.project)
        if not runs:
            raise ConfigError(f"--resume: {_known_runs(request.project)}; start one first")
        name = runs[-1].name
    folder = run_dir(validate_run_name(name))
    if not folder.is_dir():
        raise ConfigError(
            f"--resume: no run named {name!r} in {folder.parent}; {_known_runs(request.project)}"
        )
    record = read_run_record(folder)
    stored = record["config"] if record is not None else _checkpoint_config(folder)
    if stored is None:
        raise ConfigError(
            f"--resume: run {name!r} has no stored config ({folder} holds neither {RUN_FILE} nor "
            "a complete checkpoint); start it again without --resume"
        )
    _check_resumable(request.overrides)
    config = config_from_dict(stored, request.overrides, model_cls=model_cls)
    config.logging.experiment_name = name
    project = (record or {}).get("project") or config.logging.project or request.project
    config.logging.project = project
    from common.models.checkpoint import list_checkpoints

    note = None
    if not list_checkpoints(folder):
        note = (
            f"run {name} has no complete checkpoint in {folder}: restarting it from step 0 with "
            "its stored config"
        )
    return Run(
        name=name,
        project=project,
        folder=folder,
        config=config,
        config_file=str((record or {}).get("config_file") or ""),
        resume=True,
        overrides=list(request.overrides),
        note=note,
    )


def _checkpoint_config(folder: Path) -> dict[str, Any] | None:
    """The config saved in a run's newest readable checkpoint (runs without ``run.json``)."""
    from common.models.checkpoint import CheckpointError, read_checkpoint_metadata

    def load(path: Path) -> dict[str, Any]:
        config = read_checkpoint_metadata(path)["extra"].get("config")
        if not isinstance(config, dict):
            raise CheckpointError(f"{path} holds no run config")
        return config

    found = newest_intact_checkpoint(folder, load)
    return found[1] if found is not None else None


def _new_run(
    request: RunRequest, model_cls: type[ModelConfig], default_config: str | Path | None
) -> Run:
    path = request.config_file or (Path(default_config) if default_config else None)
    config = load_config(path, request.overrides, model_cls=model_cls)
    project = config.logging.project or request.project
    config.logging.project = project
    stem = Path(path).stem if path is not None else "default"
    name = request.name or config.logging.experiment_name or default_run_name(project, stem)
    folder = run_dir(validate_run_name(name))
    if folder.is_dir() and any(folder.iterdir()):
        raise ConfigError(
            f"run {name!r} already exists ({folder}); continue it with --resume {name} or choose "
            "another name (--name)"
        )
    config.logging.experiment_name = name
    return Run(
        name=name,
        project=project,
        folder=folder,
        config=config,
        config_file=str(path or ""),
        overrides=list(request.overrides),
    )


def _reproduction(request: RunRequest, model_cls: type[ModelConfig]) -> Run:
    """A new run with the stored config (and so the seed) of run ``request.reproduce``."""
    original = request.reproduce or ""
    if request.resume is not None or request.config_file is not None:
        raise ConfigError("--reproduce uses the stored config; drop --resume and --config")
    for text in request.overrides:
        if text.partition("=")[0].strip() not in ("training.device", "training.dist_timeout_s"):
            raise ConfigError(
                f"--reproduce: {text!r} would change the run; only --device may be given"
            )
    folder = run_dir(validate_run_name(original))
    record = read_run_record(folder)
    stored = record["config"] if record is not None else _checkpoint_config(folder)
    if stored is None:
        stored = _config_from_rows(original, model_cls)
    if stored is None:
        raise ConfigError(
            f"--reproduce: no stored config for {original!r} (no {RUN_FILE} or checkpoint in "
            f"{folder}, no rows in the experiment store); {_known_runs(request.project)}"
        )
    config = config_from_dict(stored, request.overrides, model_cls=model_cls)
    name = request.name
    if name is None:
        name = f"{original}-repro"
        for n in range(2, 1000):
            if not run_dir(name).exists():
                break
            name = f"{original}-repro{n}"
    folder = run_dir(validate_run_name(name))
    if folder.is_dir() and any(folder.iterdir()):
        raise ConfigError(f"run {name!r} already exists ({folder}); choose another --name")
    config.logging.experiment_name = name
    project = (record or {}).get("project") or config.logging.project or request.project
    config.logging.project = project
    notes = [f"reproducing {original} as {name} (seed {config.training.seed})"]
    notes += _environment_differences(original)
    if any(r.get("overrides") for r in (record or {}).get("resumes", [])):
        notes.append(
            f"warning: {original} was resumed with changed settings; the stored config is the "
            "latest, so rows before that change may differ"
        )
    return Run(
        name=name,
        project=project,
        folder=folder,
        config=config,
        config_file=str((record or {}).get("config_file") or ""),
        overrides=list(request.overrides),
        note="\n".join(notes),
    )


def _config_from_rows(name: str, model_cls: type[ModelConfig]) -> dict[str, Any] | None:
    """The config of experiment ``name`` rebuilt from its newest stored row (a run whose folder
    is gone)."""
    from common.experiments.errors import ExperimentStoreError
    from common.experiments.read import Store
    from common.experiments.schema import unflatten_metadata

    try:
        with Store() as store:
            result = store.execute(
                "SELECT * FROM experiments WHERE experiment_name = ? ORDER BY saved_at DESC "
                "LIMIT 1",
                [name],
            )
    except ExperimentStoreError:
        return None
    if not result.rows:
        return None
    metadata = unflatten_metadata(dict(zip(result.columns, result.rows[0])))
    return config_dict_from_metadata(metadata, model_cls=model_cls)


def _environment_differences(name: str) -> list[str]:
    """Warnings for a git commit or torch version that differ from run ``name``'s rows."""
    import torch

    from common.experiments.errors import ExperimentStoreError
    from common.experiments.read import Store
    from common.utils.provenance import git_info

    try:
        with Store() as store:
            have = {c.lower() for c, _, _ in store.columns()}
            cols = [c for c in ("git_commit", "torch_version") if c in have]
            rows = store.execute(
                f"SELECT {', '.join(cols)} FROM experiments WHERE experiment_name = ? "
                "ORDER BY saved_at DESC LIMIT 1",
                [name],
            ).rows
    except ExperimentStoreError:
        return []
    if not rows or not cols:
        return []
    stored = dict(zip(cols, rows[0]))
    now = {"git_commit": git_info().get("git_commit"), "torch_version": torch.__version__}
    return [
        f"warning: {key.replace('_', ' ')} differs: {name} ran with {stored[key]}, now {now[key]}"
        for key in cols
        if stored[key] is not None and now[key] is not None and stored[key] != now[key]
    ]


def train_run(
    run: Run,
    model_factory: ModelFactory,
    *,
    dist_ctx: DistributedContext | None = None,
    storage_dir: str | Path | None = None,
    metadata: dict[str, Any] | None = None,
    evaluation_hooks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Prepare the data, build the model, record the run and train it.

    Args:
        run: the decided run (``resolve_run``).
        model_factory: ``f(model_cfg, vocab_size) -> model`` (a ``BaseLanguageModel``).
        dist_ctx: the ``init_distributed`` context (default: one process).
        storage_dir: the experiment store (default ``get_experiments_dir()``).
        metadata: extra metadata stored with every row.
        evaluation_hooks: the Trainer's ``evaluation_hooks`` (a search's pruning).

    Returns:
        ``Trainer.train``'s final metrics plus ``config`` (the resolved ``Config``).

    Raises:
        RunLeasedError: another process is training this run.
        ConfigError, DataError, CheckpointError and the Trainer's errors.
    """
    from common.training.distributed import DistributedContext
    from common.training.lease import acquire_run_lease
    from common.training.recorder import annotate_run, claim_run_name

    ctx = dist_ctx or DistributedContext()
    if not run.resume:
        claim_run_name(run.name, run.folder, storage_dir)
    if ctx.is_main:
        annotate_run(run.name, run.folder, run.tags, run.experiment_note, storage_dir)
    # one trainer per run: taken before the first write to the run folder (run.json)
    new_folder = not run.folder.exists()
    lease = acquire_run_lease(run.folder, is_main=ctx.is_main, run=run.name)
    try:
        return _prepare_and_train(run, model_factory, ctx, storage_dir, metadata, evaluation_hooks)
    finally:
        if lease is not None:
            lease.release()
            if new_folder:  # a run that failed before its first write leaves no folder
                with contextlib.suppress(OSError):
                    run.folder.rmdir()  # only when empty


def _prepare_and_train(
    run: Run,
    model_factory: ModelFactory,
    ctx: DistributedContext,
    storage_dir: str | Path | None,
    metadata: dict[str, Any] | None,
    evaluation_hooks: Sequence[Any] = (),
) -> dict[str, Any]:
    import torch

    from common.data.pipeline import prepare_data
    from common.training.trainer import Trainer

    config = run.config
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
        if run.note:
            print(run.note, flush=True)
        write_run_record(run)

    torch.manual_seed(config.training.seed)
    try:
        model = model_factory(config.model, config.model.vocab_size)
    except ValueError as exc:  # an impossible combination of sizes is a config mistake
        raise ConfigError(f"model: {exc}") from None
    trainer = Trainer.from_prepared(
        model,
        config,
        data,
        experiment_name=run.name,
        checkpoint_dir=run.folder,
        metadata={"project": run.project, "config_file": run.config_file, **(metadata or {})},
        storage_dir=storage_dir,
        dist_ctx=ctx,
        evaluation_hooks=evaluation_hooks,
    )
    result = trainer.train(resume=run.resume)
    result["config"] = config
    return result
