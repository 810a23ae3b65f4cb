"""Model-based search on Optuna: ``--search random|tpe|cmaes|grid`` with ``--prune``.

``--search tpe --sweep "training.lr=loguniform(1e-4,1e-2)" --trials 12 --prune median`` asks an
Optuna study for 12 trials; each trial is an ordinary run of the project's train script (named
``<sweep>-tNN-lr=...``), exactly like a grid sweep's runs, and every stored row carries
``sweep``, ``sweep_keys`` and ``trial`` (the trial number). The objective (``--objective``,
default the validation ``loss``) is the best value of that column over the run's ``val`` rows;
its direction comes from the metric (``loss``, ``perplexity``, ``bits_per_byte`` minimize) or
is said with ``max:``/``min:``.

The study lives in the sweep's folder (``assets/outputs/sweeps/<sweep>/study.journal``, Optuna's
journal file storage with an open-file lock, which works on a shared folder), so ``--jobs N``
threads, other sweep processes and Slurm jobs on the same folder cooperate on one study, and
rerunning the command continues it: a trial whose run did not finish (the sweep was killed or
stopped) is resumed as the same run, never asked again.

Pruning: the run reports its objective to the study at each evaluation (``TrialReporter``, in
the training process); when the pruner says so the run stops at once with a checkpoint, its last
rows carry ``pruned = true``, it exits with ``EXIT_PRUNED`` (7), the trial is ``PRUNED`` and
``sweep.json`` says ``pruned``; a rerun never resumes it.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.utils.config import ConfigError

if TYPE_CHECKING:
    import optuna

    from common.training.sweep import Axis, SweepOptions

SEARCHES = ("random", "tpe", "cmaes", "grid")
PRUNERS = ("none", "median", "hyperband")
STUDY_FILE = "study.journal"
EXIT_PRUNED = 7
"""A search's pruner stopped the run (``--prune``); its checkpoint and rows are kept."""
_MINIMIZED = ("loss", "perplexity", "bits_per_byte", "error")


def parse_objective(text: str) -> tuple[str, str]:
    """``(metric, direction)`` of ``--objective``: ``loss``, ``max:accuracy``, ``min:foo``.

    Raises:
        ConfigError: not a column name, or a metric whose direction is not known.
    """
    prefix, sep, metric = text.strip().rpartition(":")
    metric = metric.strip()
    if not re.fullmatch(r"[A-Za-z_]\w*", metric) or (sep and prefix not in ("min", "max")):
        raise ConfigError(
            f"--objective {text!r}: expected a metric column, e.g. loss, bits_per_byte or "
            "max:accuracy"
        )
    if sep:
        return metric, "minimize" if prefix == "min" else "maximize"
    if any(word in metric for word in _MINIMIZED):
        return metric, "minimize"
    raise ConfigError(
        f"--objective {metric}: say whether to maximize or minimize it: --objective "
        f"max:{metric} or min:{metric}"
    )


def study_path(folder: Path) -> Path:
    """The study's journal file in a sweep folder."""
    return folder / STUDY_FILE


def open_storage(path: Path) -> optuna.storages.JournalStorage:
    """Optuna's journal file storage at ``path``, locked with an open-file lock (shared folders)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path.parent.mkdir(parents=True, exist_ok=True)
    backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
    return optuna.storages.JournalStorage(backend)


def make_pruner(kind: str, first_step: int, max_steps: int) -> optuna.pruners.BasePruner:
    """The pruner of ``--prune``; steps are optimizer steps (evaluations every ``first_step``).

    ``median`` prunes once two trials finished, from a quarter of the run on (the first
    evaluations of every learning rate look alike).
    """
    import optuna

    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=max_steps // 4)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=max(1, first_step), max_resource=max(max_steps, first_step)
        )
    return optuna.pruners.NopPruner()


def _distributions(axes: Sequence[Axis]) -> dict[str, Any]:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out: dict[str, Any] = {}
    for axis in axes:
        if axis.distribution is None:
            out[axis.key] = CategoricalDistribution(list(axis.values))
            continue
        kind, low, high = axis.distribution
        if kind == "int":
            out[axis.key] = IntDistribution(int(low), int(high))
        else:
            out[axis.key] = FloatDistribution(low, high, log=kind == "loguniform")
    return out


def make_sampler(kind: str, axes: Sequence[Axis], seed: int) -> optuna.samplers.BaseSampler:
    """The sampler of ``--search`` (``grid`` takes value lists only).

    Raises:
        ConfigError: a distribution with ``--search grid``.
    """
    import optuna

    if kind == "grid":
        ranged = [a.key for a in axes if a.distribution is not None]
        if ranged:
            raise ConfigError(f"--search grid: {ranged[0]} needs a list of values, not a range")
        return optuna.samplers.GridSampler({a.key: list(a.values) for a in axes}, seed=seed)
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if kind == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.RandomSampler(seed=seed)


def tell(study: optuna.Study, number: int, value: float | None = None, **kwargs: Any) -> None:
    """``study.tell`` outside ``optimize``: the grid sampler's ``study.stop()`` after the last
    grid point raises there, once the trial's state is stored; that is not an error here."""
    try:
        study.tell(number, value, skip_if_finished=True, **kwargs)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


def override_text(value: Any) -> str:
    """A parameter value as ``--set`` text."""
    from common.training.sweep import _float_text

    return _float_text(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class TrialLink:
    """What a training process needs to report to its trial (passed as ``--sweep-trial``)."""

    storage: str
    study: str
    trial: int
    metric: str
    prune: str
    first_step: int
    max_steps: int

    def to_json(self) -> str:
        """The ``--sweep-trial`` text."""
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> TrialLink:
        """Read ``--sweep-trial`` text."""
        return cls(**json.loads(text))


class TrialReporter:
    """Reports a run's objective to its trial at each evaluation and decides pruning.

    Called by the Trainer with the evaluation's rows; returns True when the run is to stop.
    """

    def __init__(self, link: TrialLink) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.link = link
        storage = open_storage(Path(link.storage))
        pruner = make_pruner(link.prune, link.first_step, link.max_steps)
        self.study = optuna.load_study(study_name=link.study, storage=storage, pruner=pruner)
        study_id = storage.get_study_id_from_name(link.study)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, link.trial)
        self.trial = optuna.trial.Trial(self.study, trial_id)

    def __call__(self, trainer: Any, rows: list[dict[str, Any]]) -> bool:
        values = [r.get(self.link.metric) for r in rows if r.get("split") == "val"]
        if not values or values[-1] is None:
            return False
        import math

        value = float(values[-1])
        if not math.isfinite(value):
            return False
        step = int(rows[-1].get("step") or trainer.step)
        reported = self.trial.storage.get_trial(self.trial._trial_id).intermediate_values
        if step not in reported:
            self.trial.report(value, step)
        return bool(self.link.prune != "none" and self.trial.should_prune())

    def mark_pruned(self) -> None:
        """Record the trial as pruned (its run stopped with a checkpoint)."""
        import optuna

        tell(self.study, self.link.trial, state=optuna.trial.TrialState.PRUNED)


class Search:
    """One sweep process's side of a study: asks trials, runs them, tells their results."""

    def __init__(self, options: SweepOptions, folder: Path, seed: int, max_steps: int,
                 eval_interval: int) -> None:  # fmt: skip
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.options = options
        self.metric, direction = parse_objective(options.objective)
        self.storage_path = study_path(folder)
        self.storage = open_storage(self.storage_path)
        self.first_step = eval_interval if eval_interval > 0 else max_steps
        self.max_steps = max_steps
        pruner = make_pruner(options.prune, self.first_step, max_steps)
        names = {s.study_name for s in optuna.get_all_study_summaries(self.storage)}
        existing = 0
        if options.name in names:
            existing = len(optuna.load_study(study_name=options.name, storage=self.storage).trials)
        # a continued study draws new points, not the first ones again
        sampler = make_sampler(options.search or "random", options.axes, seed + existing)
        self.study = optuna.create_study(
            study_name=options.name,
            storage=self.storage,
            sampler=sampler,
            pruner=pruner,
            direction=direction,  # type: ignore[arg-type]
            load_if_exists=True,
        )
        if self.study.direction.name.lower() != direction:
            raise ConfigError(
                f"sweep {options.name}: its study {direction}s nothing; it was created to "
                f"{self.study.direction.name.lower()} (use another --sweep-name)"
            )
        self.distributions = _distributions(options.axes)
        self.lock = threading.Lock()
        self.total = options.trials or 0
        if options.search == "grid" and not options.trials:
            self.total = 1
            for axis in options.axes:
                self.total *= len(axis.values)
        self.width = len(str(max(self.total - 1, 0)))

    def run_name(self, number: int, params: dict[str, Any]) -> str:
        """``<sweep>-tNN-<short key>=<value>-...``."""
        from common.training.sweep import _short

        keys = list(params)
        parts = [f"{_short(k, keys)}={override_text(v)}" for k, v in params.items()]
        return "-".join([self.options.name, f"t{number:0{self.width}d}", *parts])

    def link(self, number: int) -> TrialLink:
        """The ``--sweep-trial`` of trial ``number``."""
        return TrialLink(str(self.storage_path), self.options.name, number, self.metric,
                         self.options.prune, self.first_step, self.max_steps)  # fmt: skip

    def unfinished(self) -> list[optuna.trial.FrozenTrial]:
        """Trials left running by a sweep that stopped (their runs are resumed, not re-asked),
        less those whose run another process is training now."""
        import optuna

        from common.training.checkpointing import run_dir
        from common.training.lease import LEASE_FILE, _alive, _read

        left = []
        for trial in self.study.get_trials(
            deepcopy=False, states=[optuna.trial.TrialState.RUNNING]
        ):
            name = trial.user_attrs.get("run")
            if name is None:  # asked by a sweep killed before it named the run: never ran
                tell(self.study, trial.number, state=optuna.trial.TrialState.FAIL)
                continue
            holder = _read(run_dir(name) / LEASE_FILE)
            if holder is not None and (holder.host != socket.gethostname() or _alive(holder)):
                continue  # trained now (another host's lease: its own timeout decides)
            left.append(trial)
        return left

    def ask(self) -> optuna.trial.Trial | None:
        """A new trial, or None once the study holds ``--trials`` trials."""
        with self.lock:
            if len(self.study.get_trials(deepcopy=False)) >= self.total:
                return None
            trial = self.study.ask(self.distributions)
            name = self.run_name(trial.number, trial.params)
            trial.set_user_attr("run", name)
            trial.set_user_attr(
                "overrides", [f"{k}={override_text(v)}" for k, v in trial.params.items()]
            )
            return trial

    def objective(self, name: str) -> float | None:
        """The best value of the objective over run ``name``'s ``val`` rows (None without)."""
        from common.experiments.errors import ExperimentStoreError
        from common.experiments.read import Store
        from common.experiments.sql import quote_ident

        agg = "min" if self.study.direction.name == "MINIMIZE" else "max"
        try:
            with Store() as store:
                rows = store.execute(
                    f"SELECT {agg}({quote_ident(self.metric)}) FROM experiments "
                    "WHERE experiment_name = ? AND split = 'val' AND isfinite("
                    f"{quote_ident(self.metric)})",
                    [name],
                ).rows
        except ExperimentStoreError:
            return None
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    def tell(self, number: int, name: str, status: str) -> str:
        """Record a run's outcome in the study; returns the status to record in ``sweep.json``
        (a run that stopped without finishing stays RUNNING, to be resumed)."""
        import optuna

        state = optuna.trial.TrialState
        trial = self.study.get_trials(deepcopy=False)[number]
        if trial.state == state.PRUNED or status == "pruned":
            tell(self.study, number, state=state.PRUNED)
            return "pruned"
        if status == "finished":
            value = self.objective(name)
            if value is None:
                tell(self.study, number, state=state.FAIL)
                return f"failed (no {self.metric} in its val rows)"
            tell(self.study, number, value)
            return "finished"
        if status == "diverged" or status.startswith("failed"):
            tell(self.study, number, state=state.FAIL)
        return status

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """The trials so far: number, run, state, objective, parameters."""
        keys = [a.key for a in self.options.axes]
        rows = []
        for trial in self.study.get_trials(deepcopy=False):
            value = trial.value if trial.values else None
            rows.append([trial.number, trial.user_attrs.get("run"), trial.state.name.lower(),
                         value, *[override_text(trial.params.get(k)) for k in keys]])  # fmt: skip
        return ["trial", "run", "state", self.metric, *keys], rows


def run_search(
    options: SweepOptions,
    config_path: Path | None,
    base_overrides: Sequence[str],
    *,
    project: str,
    model_cls: Any,
) -> int:
    """Run (or continue) a search; prints every trial and the best; returns 0 when every trial
    reached an end (finished, pruned or diverged), 130 when stopped by a signal, else 1.

    Raises:
        ConfigError: bad search options, or a value whose config is invalid (named).
    """
    from concurrent.futures import ThreadPoolExecutor

    from common.training import launch
    from common.training import sweep as sw
    from common.training.run import validate_run_name
    from common.utils.config import load_config

    validate_run_name(options.name)
    if options.seeds != 1:
        raise ConfigError("--seeds goes with grid and random sweeps; with --search sweep "
                          "training.seed as an axis")  # fmt: skip
    if options.search != "grid" and not options.trials:
        raise ConfigError(f"--search {options.search} needs --trials N")
    keys = [a.key for a in options.axes]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--sweep: a key is given twice ({', '.join(keys)}); one --sweep each")
    base = load_config(config_path, list(base_overrides), model_cls=model_cls)
    for axis in options.axes:
        ends = axis.values or tuple(override_text(v) for v in axis.distribution[1:])  # type: ignore[index]
        if axis.distribution is not None and axis.distribution[0] == "int":
            ends = tuple(str(int(float(v))) for v in ends)
        for value in ends:
            try:
                load_config(config_path, [*base_overrides, f"{axis.key}={value}"],
                            model_cls=model_cls)  # fmt: skip
            except ConfigError as exc:
                raise ConfigError(f"--sweep {axis.key}={value}: {exc}") from None
    folder = sw.sweep_dir(options.name)
    tcfg = base.training
    search = Search(options, folder, tcfg.seed, tcfg.max_steps, tcfg.eval_interval)
    record = sw.SweepRecord(folder / sw.SWEEP_FILE, options.name, project)
    resumable = search.unfinished()
    if options.dry_run:
        left = max(search.total - len(search.study.trials), 0)
        print(f"search {options.name}: {len(search.study.trials)} trial(s) in the study; "
              f"would resume {len(resumable)} and ask {left} more")  # fmt: skip
        return 0

    script = launch.script_command()
    executor = None if options.launcher == "local" else launch.submitit_executor(options, folder)
    sweep_keys = ",".join(a.key.replace(".", "__") for a in options.axes)
    jobs = max(1, options.jobs)
    gpus = launch.gpu_count() if options.launcher == "local" else 0
    children = launch.Children(options.launcher)
    pending = list(resumable)
    pending_lock = threading.Lock()

    def next_trial() -> tuple[int, str, list[str], bool] | None:
        with pending_lock:
            if pending:
                trial = pending.pop(0)
                return trial.number, trial.user_attrs["run"], trial.user_attrs["overrides"], True
        asked = search.ask()
        if asked is None:
            return None
        return asked.number, asked.user_attrs["run"], asked.user_attrs["overrides"], False

    def work(slot: int) -> None:
        while not children.stopping:
            item = next_trial()
            if item is None:
                return
            number, name, overrides, again = item
            state = sw.run_state(sw.SweepRun(name, overrides), {}) if again else "start"
            metadata = json.dumps({"sweep": options.name, "sweep_keys": sweep_keys,
                                   "trial": number})  # fmt: skip
            if state == "skip":  # finished before the sweep was stopped: only tell
                record.save(name, trial=number, status=search.tell(number, name, "finished"))
                continue
            if state == "resume":
                args = ["--resume", name]
            else:
                args = [] if config_path is None else ["--config", str(config_path)]
                for text in [*base_overrides, *overrides]:
                    args += ["--set", text]
                args += ["--name", name]
            argv = [*script, *args, "--sweep-metadata", metadata,
                    "--sweep-trial", search.link(number).to_json()]  # fmt: skip
            record.save(name, trial=number, overrides=overrides, action=state, status="running")
            env = launch.child_env(slot, jobs, gpus) if options.launcher != "slurm" else {}
            log = str(folder / "logs" / f"{name}.log")
            code, error = launch.launch_child(children, executor, argv, env, log, key=number)
            if error is not None:
                record.save(name, error=[error])
            status = "pruned" if code == EXIT_PRUNED else sw._status(code)
            record.save(name, status=search.tell(number, name, status), exit_code=code)

    print(f"search {options.name} ({options.search}, prune {options.prune}): "
          f"{len(search.study.trials)} trial(s) in the study, resuming {len(resumable)}, up to "
          f"{search.total} in all; {jobs} at a time ({options.launcher}); logs in "
          f"{folder / 'logs'}", flush=True)  # fmt: skip
    with launch.forwarding_stops(children, options.name), ThreadPoolExecutor(jobs) as pool:
        for future in [pool.submit(work, slot) for slot in range(jobs)]:
            while not future.done():
                try:
                    future.result(timeout=0.5)
                except TimeoutError:
                    continue
    header, rows = search.table()
    statuses = record.statuses()
    for row in rows:
        row[2] = statuses.get(row[1], row[2])
    sw._print_table(header, rows)
    for name, status in statuses.items():
        if status.startswith(("failed", "killed", "diverged")):
            print(f"{name}: {sw._last_error(folder / 'logs' / f'{name}.log')}", flush=True)
    done = [t for t in search.study.trials if t.state.name == "COMPLETE"]
    if done:
        best = search.study.best_trial
        print(f"best: trial {best.number} ({best.user_attrs.get('run')}), {search.metric} "
              f"{best.value:.4f}", flush=True)  # fmt: skip
    left = max(search.total - len(search.study.trials), 0) + sum(
        1 for t in search.study.trials if t.state.name == "RUNNING"
    )
    line = f"search {options.name}: {len(done)} finished, {len(search.study.trials)} trials"
    if children.stopping:
        line += ", stopped by a signal"
    if left:
        line += f"; {left} left: rerun the same command (--sweep-name {options.name}) to resume"
    print(line, flush=True)
    if children.stopping:
        return 130
    failed = [s for s in statuses.values() if s.startswith(("failed", "killed"))]
    return 1 if failed or left else 0
