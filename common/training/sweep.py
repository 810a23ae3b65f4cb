"""Sweeps: a grid or random search over config values and seeds, run as ordinary runs.

``--sweep training.lr=1e-3,3e-3 --sweep model.d_model=128,256 --seeds 2`` is the Cartesian
product of the values times the seeds ``seed, seed+1``; ``--sweep "training.lr=loguniform(1e-4,
1e-2)" --trials 20`` draws 20 points (``uniform``, ``loguniform``, ``int``, ``choice``; a list of
values is a ``choice``), from a generator seeded by the config's seed and the sweep's text, so the
same command draws the same points. Every run is the project's own train script started as a new
process (``--config`` with ``--set`` overrides and a name derived from the sweep's name and the
run's values, or ``--resume NAME``), so a sweep run is exactly a single run: same resume, same
errors, same exit statuses. Every stored row carries ``sweep`` and ``sweep_keys`` (the swept
columns, e.g. ``training__lr,training__seed``); the swept values are the config's own columns.

Where the processes run: ``--jobs N`` at once on this machine (``concurrent.futures``; the CPU
threads split among them, one GPU each when there are GPUs), or as submitit jobs
(``--launcher submitit-local`` or ``slurm``) that run the same command. Running the same sweep
again skips finished (and diverged) runs, resumes interrupted ones from their checkpoints and
starts the missing ones. The sweep's record, ``assets/outputs/sweeps/<sweep>/sweep.json``, holds
each run's status; each run's output goes to ``logs/<run>.log`` beside it.

Ctrl-C or SIGTERM stops a sweep: every run it started checkpoints and stops (``launch``), is
recorded ``interrupted``, and the sweep exits 130. ``--search`` (``common.training.search``)
asks an Optuna study for the points instead, with pruning.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import queue
import random
import re
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.training.launch import (
    Children,
    child_env,
    forwarding_stops,
    gpu_count,
    launch_child,
    script_command,
    submitit_executor,
)
from common.training.launch import (
    run_command as run_command,  # the command every launcher executes (re-exported)
)
from common.utils.config import ConfigError

LAUNCHERS = ("local", "submitit-local", "slurm")
SWEEP_FILE = "sweep.json"
FINAL_STATUSES = ("finished", "diverged", "pruned")
"""Statuses a rerun leaves as they are (a diverged run would diverge again)."""
_DISTRIBUTION_RE = re.compile(r"^\s*(uniform|loguniform|int|choice)\s*\((.*)\)\s*$", re.S)
_EXIT_DIVERGED = 3  # common.training.cli.EXIT_DIVERGED (cli imports this module)


@dataclass(frozen=True)
class Axis:
    """One ``--sweep KEY=...``: a list of values (grid) or a distribution (random search).

    Attributes:
        key: ``SECTION.KEY``.
        values: the values as typed (a grid axis, or ``choice(...)``).
        distribution: ``(kind, low, high)`` for ``uniform``, ``loguniform`` and ``int``.
    """

    key: str
    values: tuple[str, ...] = ()
    distribution: tuple[str, float, float] | None = None

    def draw(self, rng: random.Random) -> str:
        """One value, as ``--set`` text."""
        if self.distribution is None:
            return rng.choice(self.values)
        kind, low, high = self.distribution
        if kind == "int":
            return str(rng.randint(int(low), int(high)))
        if kind == "loguniform":
            return _float_text(math.exp(rng.uniform(math.log(low), math.log(high))))
        return _float_text(rng.uniform(low, high))


@dataclass
class SweepRun:
    """One run of a sweep: its name, its ``--set`` overrides and its swept values."""

    name: str
    overrides: list[str]
    values: dict[str, str] = field(default_factory=dict)


def _float_text(value: float) -> str:
    """A float YAML reads back as a float (PyYAML wants a '.' before an exponent)."""
    text = f"{value:.6g}"
    if "e" in text and "." not in text.split("e")[0]:
        text = text.replace("e", ".0e")
    return text


def parse_axis(text: str) -> Axis:
    """``SECTION.KEY=V1,V2,...`` or ``SECTION.KEY=uniform(a,b)`` (``loguniform``, ``int``,
    ``choice(v1,v2,...)``).

    Raises:
        ConfigError: the text does not have that form, or a distribution's bounds are wrong.
    """
    key, sep, spec = text.partition("=")
    key = key.strip()
    if not sep or not re.fullmatch(r"[A-Za-z_]\w*\.[A-Za-z_]\w*", key) or not spec.strip():
        raise ConfigError(
            f"--sweep {text!r}: expected SECTION.KEY=V1,V2,... or SECTION.KEY=uniform(a,b) "
            "(also loguniform, int, choice), e.g. --sweep training.lr=1e-3,3e-3"
        )
    match = _DISTRIBUTION_RE.match(spec)
    if match is None:
        values = tuple(v.strip() for v in spec.split(","))
        if not all(values):
            raise ConfigError(f"--sweep {text!r}: an empty value")
        return Axis(key, values=tuple(dict.fromkeys(values)))
    kind, args = match.group(1), [a.strip() for a in match.group(2).split(",")]
    if kind == "choice":
        if not all(args):
            raise ConfigError(f"--sweep {text!r}: choice needs values, e.g. choice(64,128)")
        return Axis(key, values=tuple(dict.fromkeys(args)))
    try:
        low, high = (float(a) for a in args)
    except ValueError:
        raise ConfigError(f"--sweep {text!r}: {kind} takes two numbers, e.g. {kind}(1,8)") from None
    if not low < high or (kind == "loguniform" and low <= 0):
        need = "0 < low < high" if kind == "loguniform" else "low < high"
        raise ConfigError(f"--sweep {text!r}: {kind} needs {need}")
    if kind == "int" and not (low.is_integer() and high.is_integer()):
        raise ConfigError(f"--sweep {text!r}: int takes two integers")
    return Axis(key, distribution=(kind, low, high))


def _short(key: str, keys: Sequence[str]) -> str:
    last = key.rpartition(".")[2]
    return last if sum(k.rpartition(".")[2] == last for k in keys) == 1 else key


def expand(
    sweep: str,
    axes: Sequence[Axis],
    *,
    seeds: int = 1,
    base_seed: int = 0,
    trials: int | None = None,
) -> list[SweepRun]:
    """The runs of a sweep, in order: each grid point (or trial) with each seed.

    Raises:
        ConfigError: a key swept twice, a distribution without ``trials``, ``training.seed``
            swept together with ``seeds > 1``.
    """
    keys = [a.key for a in axes]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--sweep: a key is given twice ({', '.join(keys)}); one --sweep each")
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    if seeds > 1 and "training.seed" in keys:
        raise ConfigError("--seeds and --sweep training.seed=... both choose seeds; use one")
    if trials is None:
        random_axes = [a.key for a in axes if a.distribution is not None]
        if random_axes:
            raise ConfigError(f"--sweep {random_axes[0]}: a distribution needs --trials N")
        points = [dict(zip(keys, combo)) for combo in itertools.product(*(a.values for a in axes))]
        labels = [""] * len(points)
    else:
        if trials < 1:
            raise ConfigError(f"--trials must be at least 1, got {trials}")
        spec = "|".join(f"{a.key}={a.values}{a.distribution}" for a in axes)
        rng = random.Random(f"{base_seed}|{spec}")
        points = [{a.key: a.draw(rng) for a in axes} for _ in range(trials)]
        width = len(str(trials - 1))
        labels = [f"t{i:0{width}d}" for i in range(trials)]
    runs = []
    for label, point in zip(labels, points):
        for seed in range(base_seed, base_seed + seeds):
            values = dict(point)
            if "training.seed" not in values:
                values["training.seed"] = str(seed)
            parts = [label] if label else []
            parts += [f"{_short(k, keys)}={v}" for k, v in point.items()]
            if "training.seed" not in keys:
                parts.append(f"s{seed}")
            name = "-".join([sweep, *parts])
            runs.append(SweepRun(name, [f"{k}={v}" for k, v in values.items()], values))
    return runs


def sweep_dir(sweep: str) -> Path:
    """``assets/outputs/sweeps/<sweep>``: the sweep's record, logs and submitit files."""
    from common.paths import get_checkpoints_dir

    return get_checkpoints_dir().parent / "sweeps" / sweep


@dataclass
class SweepOptions:
    """How to run a sweep (the command line's sweep options)."""

    name: str
    axes: list[Axis]
    seeds: int = 1
    trials: int | None = None
    jobs: int = 1
    launcher: str = "local"
    dry_run: bool = False
    slurm_partition: str | None = None
    slurm_gpus_per_job: int = 0
    slurm_time: int = 60
    search: str | None = None
    objective: str = "loss"
    prune: str = "none"


class SweepRecord:
    """``sweep.json``: the sweep's name, project and each run's entry (status, overrides, ...).

    Every save rewrites the file atomically; with ``shared`` (a study several sweep processes
    work on) each save first re-reads the file under a lock file, so no process's entries are
    lost.
    """

    def __init__(self, path: Path, name: str, project: str, *, shared: bool = True) -> None:
        self.path = path
        self.shared = shared
        self._lock = threading.Lock()
        self.record = self._read() or {"name": name, "project": project, "runs": {}}
        self.runs: dict[str, Any] = self.record.setdefault("runs", {})

    def _read(self) -> dict[str, Any] | None:
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def save(self, run: str, **entry: Any) -> None:
        """Update run ``run``'s entry and write the file."""
        from common.utils.atomic import atomic_write_text

        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._file_lock():
                if self.shared:
                    disk = (self._read() or {}).get("runs")
                    if isinstance(disk, dict):
                        self.runs.update({k: v for k, v in disk.items() if k != run})
                self.runs.setdefault(run, {}).update(entry)
                atomic_write_text(self.path, json.dumps(self.record, indent=2) + "\n")

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        if not self.shared:
            yield
            return
        from optuna.storages.journal import JournalFileOpenLock

        lock = JournalFileOpenLock(str(self.path))
        lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def statuses(self) -> dict[str, str]:
        """Each run's recorded status."""
        return {k: str(v.get("status", "")) for k, v in self.runs.items()}


def run_state(run: SweepRun, recorded: dict[str, Any]) -> str:
    """``start``, ``resume`` or ``skip`` (finished, or diverged: a rerun would diverge again)."""
    from common.models.checkpoint import latest_checkpoint
    from common.training.checkpointing import run_dir
    from common.training.run import read_run_record

    folder = run_dir(run.name)
    record = read_run_record(folder)
    if record is None:
        return "resume" if latest_checkpoint(folder) is not None else "start"
    if (recorded.get(run.name) or {}).get("status") == "diverged":
        return "skip"
    latest = latest_checkpoint(folder)
    max_steps = (record["config"].get("training") or {}).get("max_steps")
    done = latest is not None and max_steps is not None and int(latest.name[5:]) >= max_steps
    return "skip" if done else "resume"


def _status(code: int) -> str:
    if code == 0:
        return "finished"
    if code == _EXIT_DIVERGED:
        return "diverged"
    if code == 130:
        return "interrupted"
    if code < 0:
        return f"killed (signal {-code})"
    return f"failed (exit {code})"


def _best_values(names: list[str]) -> dict[str, tuple[Any, Any]]:
    """Each run's best validation loss and its last step, from the store."""
    from common.experiments.errors import ExperimentStoreError
    from common.experiments.read import Store, quote_str

    try:
        with Store() as store:
            in_list = ", ".join(quote_str(n) for n in names)
            rows = store.execute(
                "SELECT experiment_name, min(loss) FILTER (WHERE split = 'val'), max(step) "
                f"FROM experiments WHERE experiment_name IN ({in_list}) GROUP BY 1"
            ).rows
    except ExperimentStoreError:
        return {}
    return {r[0]: (r[1], r[2]) for r in rows}


def run_sweep(
    options: SweepOptions,
    config_path: Path | None,
    base_overrides: Sequence[str],
    *,
    project: str,
    model_cls: Any,
) -> int:
    """Run (or resume) a sweep, print a table of every run's status; returns 0 when every run
    finished (or was finished), else 1.

    Raises:
        ConfigError: bad sweep options, or a point whose config is invalid (named).
    """
    from common.training.run import validate_run_name
    from common.utils.atomic import atomic_write_text
    from common.utils.config import load_config

    validate_run_name(options.name)
    base = load_config(config_path, list(base_overrides), model_cls=model_cls)
    runs = expand(
        options.name,
        options.axes,
        seeds=options.seeds,
        base_seed=base.training.seed,
        trials=options.trials,
    )
    for run in runs:
        validate_run_name(run.name)
        try:
            load_config(config_path, [*base_overrides, *run.overrides], model_cls=model_cls)
        except ConfigError as exc:
            raise ConfigError(f"sweep run {run.name}: {exc}") from None
    folder = sweep_dir(options.name)
    record_path = folder / SWEEP_FILE
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {"name": options.name, "project": project, "runs": {}}
    recorded: dict[str, Any] = record.setdefault("runs", {})
    states = {run.name: run_state(run, recorded) for run in runs}
    if options.dry_run:
        _print_table(
            ["run", "would", *[a.key for a in options.axes]],
            [[r.name, states[r.name], *[r.values.get(a.key) for a in options.axes]] for r in runs],
        )
        return 0

    script = script_command()
    executor = None if options.launcher == "local" else submitit_executor(options, folder)
    keys = [a.key.replace(".", "__") for a in options.axes]
    if options.seeds > 1 and "training__seed" not in keys:
        keys.append("training__seed")
    metadata = json.dumps({"sweep": options.name, "sweep_keys": ",".join(keys)})
    lock = threading.Lock()

    def save(name: str, **entry: Any) -> None:
        with lock:
            recorded.setdefault(name, {}).update(entry)
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")

    todo = [r for r in runs if states[r.name] != "skip"]
    for run in runs:
        done = states[run.name] == "skip" and recorded.get(run.name, {}).get("status") != "diverged"
        save(
            run.name,
            overrides=run.overrides,
            action=states[run.name],
            **({"status": "finished"} if done else {}),
            **({"status": "pending"} if states[run.name] != "skip" else {}),
        )
    jobs = max(1, min(options.jobs, len(todo) or 1))
    gpus = gpu_count() if options.launcher == "local" and todo else 0
    slots: queue.Queue[int] = queue.Queue()
    for slot in range(jobs):
        slots.put(slot)

    children = Children(options.launcher)

    def launch(run: SweepRun) -> int | None:
        if states[run.name] == "resume":
            args = ["--resume", run.name]
        else:
            args = [] if config_path is None else ["--config", str(config_path)]
            for text in [*base_overrides, *run.overrides]:
                args += ["--set", text]
            args += ["--name", run.name]
        argv = [*script, *args, "--sweep-metadata", metadata]
        log = str(folder / "logs" / f"{run.name}.log")
        slot = slots.get()
        try:
            if children.stopping:
                return None
            save(run.name, status="running")
            env = child_env(slot, jobs, gpus) if options.launcher != "slurm" else {}
            code, error = launch_child(children, executor, argv, env, log, key=id(run))
            if error is not None:
                save(run.name, error=[error])
            save(run.name, status=_status(code), exit_code=code)
            return code
        finally:
            slots.put(slot)

    print(
        f"sweep {options.name}: {len(runs)} runs ({len(todo)} to run, {len(runs) - len(todo)} "
        f"done), {jobs} at a time ({options.launcher}); logs in {folder / 'logs'}",
        flush=True,
    )
    with forwarding_stops(children, options.name), ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(launch, run) for run in todo]
        while wait(futures, timeout=0.5, return_when=FIRST_EXCEPTION).not_done:
            continue  # wakes up to let a signal handler run promptly
        for future in futures:
            future.result()
    for run in todo:
        if recorded[run.name].get("status") in ("pending", "running"):
            save(run.name, status="not started")
    return _report(options.name, runs, recorded, folder, interrupted=children.stopping)


def _report(
    sweep: str,
    runs: list[SweepRun],
    recorded: dict[str, Any],
    folder: Path,
    *,
    interrupted: bool,
) -> int:
    """Print every run's status and the closing line; returns the sweep's exit status (0 all
    finished, 130 stopped by a signal, else 1)."""
    best = _best_values([r.name for r in runs])
    table = []
    for run in runs:
        status = recorded.get(run.name, {}).get("status", "finished")
        value, step = best.get(run.name, (None, None))
        table.append([run.name, status, step, value])
    _print_table(["run", "status", "step", "best val loss"], table)
    for run, row in zip(runs, table):
        if row[1] not in ("finished", "not started"):
            print(f"{run.name}: {_last_error(folder / 'logs' / f'{run.name}.log')}", flush=True)
    finished = sum(row[1] == "finished" for row in table)
    left = sum(row[1] not in FINAL_STATUSES for row in table)
    line = f"sweep {sweep}: {finished}/{len(runs)} finished"
    if interrupted:
        line += ", stopped by a signal"
    if left:
        line += f"; {left} left: rerun the same command (--sweep-name {sweep}) to resume"
    print(line, flush=True)
    if interrupted:
        return 130
    return 0 if finished == len(runs) else 1


def _last_error(log: Path) -> str:
    """The last ``error:`` line of a run's log (what the run said when it stopped)."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return f"no log ({log})"
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["(no output)"])[-1].strip() + f" (log: {log})"


def _print_table(header: list[str], rows: list[list[Any]]) -> None:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    cells = [header] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), flush=True)
