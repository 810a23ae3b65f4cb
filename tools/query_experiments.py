#!/usr/bin/env python
"""Query the experiment store from the shell: list, summarize, rank, compare, or run SQL.

Examples (from the repository root)::

    python tools/query_experiments.py --list
    python tools/query_experiments.py --best perplexity --top 5
    python tools/query_experiments.py --compare baseline bigger-model --plot curves.png
    python tools/query_experiments.py --sql "SELECT experiment_name, min(loss) FROM experiments
        GROUP BY 1 ORDER BY 2 LIMIT 3" --format markdown
    python tools/query_experiments.py --rename old-name new-name
    python tools/query_experiments.py --delete broken-run --yes
    python tools/query_experiments.py --tag baseline paper-fig-2 --note baseline "warmup 200"
    python tools/query_experiments.py --check

Exit status: 0 success; 2 a user mistake (bad SQL, unknown metric, experiment or split, missing
store, invalid tag); 3 the answer was printed, but some store files are damaged or some values
have the wrong type (warnings say which; ``--check`` lists them and schema entries that disagree
with the data, ``--repair`` fixes what can be fixed); 1 an internal error (``RESEARCH_DEBUG=1``
shows its traceback); 130 interrupted (Ctrl-C). The answers are rendered by
``common.experiments.render``.

Start-up is kept fast: the query path imports DuckDB and the store, never pandas, torch,
transformers or datasets; only ``--plot`` loads matplotlib.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:
    import common  # noqa: F401
except ImportError:  # run by a Python without the editable install: use this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.experiments.render import (  # noqa: E402 (after the path)
    FORMATS,
    render_markdown,
    render_table,
    write_csv,
    write_json,
    write_result,
)
from common.utils.argtypes import non_negative_float, non_negative_int, positive_int  # noqa: E402
from common.utils.cli import OneLineParser, error, run_cli  # noqa: E402

__all__ = [
    "build_parser",
    "main",
    "render_markdown",
    "render_table",
    "write_csv",
    "write_json",
    "write_result",
]
TOOL = "query_experiments"
EXIT_DAMAGED = 3

EMPTY_STORE_HINT = """\
No experiments in {where} yet.

Experiments get there when a run saves its results:
  - a project's training run, e.g. (from the repository root)
      python -m projects.custom_transformer.train \\
          --config projects/custom_transformer/configs/tiny.yaml
  - or from Python / a notebook:
      from common.utils import save_experiment
      save_experiment("my-run", [{{"step": 100, "loss": 2.31}}], metadata={{"model": "tiny"}})
Use --dir PATH (or set RESEARCH_ASSETS_DIR) to query another store."""


class CliError(Exception):
    """A user mistake: printed as one message on stderr, exit status 2."""


# --------------------------------------------------------------------------- arguments


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = OneLineParser(
        prog="query_experiments.py",
        description=(
            "Query the experiment store (Parquet files read by DuckDB).\n\n"
            "SQL sees the views `experiments` (every stored row: results, flattened metadata\n"
            "such as training__lr, and saved_at / git_commit / git_dirty / host),\n"
            "`experiment_summary` (one row per experiment) and `experiment_columns`.\n"
            "Queries are read-only: nothing can be written, copied or deleted through SQL."
        ),
        epilog=(
            "examples:\n"
            "  %(prog)s --list\n"
            "  %(prog)s --best perplexity --top 5 --plot best.png\n"
            "  %(prog)s --compare baseline wide-model --metrics loss accuracy\n"
            '  %(prog)s --sql "SELECT experiment_name, min(loss) AS best FROM experiments\n'
            '                             GROUP BY 1 ORDER BY best LIMIT 5" --format markdown\n'
            "\n"
            "The store is assets/outputs/experiments (RESEARCH_ASSETS_DIR relocates assets/).\n"
            "Mistakes (bad SQL, unknown metric or experiment, invalid tag, missing store) exit\n"
            "with status 2."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_argument_group("what to show (pick one)")
    action = what.add_mutually_exclusive_group(required=True)
    action.add_argument("--sql", metavar="QUERY", help="run a read-only SQL query")
    action.add_argument("--list", action="store_true", help="list experiments")
    action.add_argument(
        "--summary",
        action="store_true",
        help="one row per experiment with the best value of each metric",
    )
    action.add_argument(
        "--best", metavar="METRIC", help="rank experiments by the best value of METRIC"
    )
    action.add_argument(
        "--compare", nargs="+", metavar="EXP", help="compare experiments side by side"
    )
    action.add_argument(
        "--delete", nargs="+", metavar="EXP", help="delete experiments (asks first; see --yes)"
    )
    action.add_argument("--rename", nargs=2, metavar=("OLD", "NEW"), help="rename an experiment")
    action.add_argument(
        "--tag",
        nargs="+",
        action="append",
        metavar=("EXP", "TAG"),
        help="add tags to an experiment (repeatable: --tag a x --tag b y)",
    )
    action.add_argument(
        "--untag",
        nargs="+",
        action="append",
        metavar=("EXP", "TAG"),
        help="remove tags from an experiment (repeatable)",
    )
    action.add_argument(
        "--note",
        nargs=2,
        action="append",
        metavar=("EXP", "TEXT"),
        help='set an experiment\'s note ("" clears it; repeatable)',
    )
    action.add_argument(
        "--check",
        action="store_true",
        help="verify every store file, column type and schema entry; exit 3 when something "
        "is damaged",
    )
    action.add_argument(
        "--repair",
        action="store_true",
        help="move damaged files aside (into damaged/), convert values of the wrong type and "
        "restore schema entries from the data",
    )

    opts = parser.add_argument_group("modifiers")
    opts.add_argument("--top", type=positive_int, metavar="N", help="with --best: N best (5)")
    opts.add_argument(
        "--mode",
        choices=("min", "max"),
        help="with --best: lower or higher is better (default: from the metric's name)",
    )
    opts.add_argument(
        "--metrics",
        nargs="+",
        metavar="METRIC",
        help="with --compare: only these metrics (also the curves drawn by --plot)",
    )
    opts.add_argument(
        "--split",
        metavar="NAME",
        help="with --best/--summary/--compare: rank on rows of this split, or 'all' (default: "
        "the validation split, e.g. val, when the store has a split column)",
    )
    opts.add_argument(
        "--group-by",
        action="append",
        metavar="COLUMN",
        help="with --best: group experiments by COLUMN (repeatable, e.g. training__lr); each "
        "group's mean, std, min, max and count of the experiments' best values",
    )
    opts.add_argument(
        "--sweep", metavar="NAME", help="with --best: only the experiments of sweep NAME"
    )
    opts.add_argument(
        "--timeout",
        type=non_negative_float,
        metavar="SECONDS",
        help="with --sql: stop the query after SECONDS (exit 2 with a message)",
    )
    opts.add_argument("--yes", action="store_true", help="with --delete: do not ask")
    opts.add_argument("--dir", metavar="PATH", help="read the store in PATH instead")
    opts.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )
    opts.add_argument(
        "--max-rows",
        type=non_negative_int,
        metavar="N",
        help="cut table/markdown output after N rows, 0 = all (default: table fits the "
        "terminal height, markdown shows all; csv and json always show all)",
    )
    opts.add_argument(
        "--plot",
        metavar="PATH",
        help="with --compare/--best: also write those experiments' training curves as PNG",
    )
    return parser


def _check_combinations(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.best is None:
        if args.top is not None:
            parser.error("--top goes with --best")
        if args.mode is not None:
            parser.error("--mode goes with --best")
        if args.group_by is not None:
            parser.error("--group-by goes with --best")
        if args.sweep is not None:
            parser.error("--sweep goes with --best")
    elif args.group_by is not None and args.top is not None:
        parser.error("--top goes with --best without --group-by (every group is shown)")
    if args.metrics is not None and args.compare is None:
        parser.error("--metrics goes with --compare")
    if args.split is not None and not (args.best or args.summary or args.compare):
        parser.error("--split goes with --best, --summary or --compare")
    if args.timeout is not None and args.sql is None:
        parser.error("--timeout goes with --sql")
    if args.timeout is not None and args.timeout <= 0:
        parser.error("--timeout must be more than 0 seconds")
    if args.yes and args.delete is None:
        parser.error("--yes goes with --delete")
    for option, given in (("--tag", args.tag), ("--untag", args.untag)):
        for values in given or ():
            if len(values) < 2:
                parser.error(f"{option} takes an experiment and at least one tag: {option} EXP TAG")
    if args.plot is not None:
        if args.compare is None and args.best is None:
            parser.error("--plot goes with --compare or --best")
        if Path(args.plot).suffix.lower() not in ("", ".png"):
            parser.error(f"--plot writes PNG files: give a .png name, not {args.plot!r}")


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_combinations(parser, args)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # one line per warning, no source excerpt
        return _run_guarded(args)


def _run_guarded(args: argparse.Namespace) -> int:
    from common.experiments.errors import ExperimentStoreError

    def describe(exc: BaseException) -> str:
        if isinstance(exc, OSError) and not isinstance(exc, ExperimentStoreError):
            return f"cannot read the experiment store: {exc}"
        return str(exc)

    return run_cli(
        lambda: _run(args),
        tool=TOOL,
        user_errors=(CliError, ExperimentStoreError, OSError),
        describe=describe,
    )


def _run(args: argparse.Namespace) -> int:
    storage_dir = _storage_dir(args.dir)
    if args.tag or args.untag or args.note:
        return _annotate(args, storage_dir)
    if args.delete is not None or args.rename is not None or args.repair:
        return _change(args, storage_dir)
    from common.experiments import reports
    from common.experiments.errors import ExperimentStoreError
    from common.experiments.read import Store

    # One Store = one snapshot of the store for the whole command.
    with Store(storage_dir) as store:
        if args.check:
            return _check(store)
        try:
            result = _query(reports, store, args)
        except ExperimentStoreError as exc:
            if store.experiment_names():
                raise
            if _unreadable(store):
                return _damaged_and_empty(store)
            if args.sql is None:
                return _empty_store(args, storage_dir)
            raise CliError(
                f"{exc}\n(The store is empty: no experiments have been saved.)"
            ) from None
        # checked only now, so that the usual case costs no extra query
        if not result.rows and not store.experiment_names():
            if _unreadable(store):
                return _damaged_and_empty(store)
            return _empty_store(args, storage_dir)
        plot_metrics = _plot_metrics(args, store.metric_columns()) if args.plot else []
        damaged = bool(store.problems)

    write_result(result.columns, result.rows, args.format, max_rows=args.max_rows)
    width = shutil.get_terminal_size(fallback=(120, 40)).columns
    for note in result.notes:  # e.g. which split a ranking used; csv/json stay machine-readable
        out = sys.stdout if args.format in ("table", "markdown") else sys.stderr
        print(textwrap.fill(note, width=max(width, 40)), file=out)
    if args.plot is not None:
        _plot(args, result.columns, result.rows, plot_metrics, storage_dir)
    return EXIT_DAMAGED if damaged else 0


def _query(reports: Any, store: Any, args: argparse.Namespace) -> Any:
    if args.sql is not None:
        return store.sql(args.sql, timeout=args.timeout)
    if args.list:
        return reports.list_experiments(store=store)
    if args.summary:
        return reports.summarize_experiments(split=args.split, store=store)
    if args.best is not None:
        if args.group_by:
            return reports.group_experiments(
                args.best, args.group_by, args.mode, split=args.split, sweep=args.sweep, store=store
            )
        top = args.top if args.top is not None else 5
        return reports.best_experiments(
            args.best, top, args.mode, split=args.split, sweep=args.sweep, store=store
        )
    return reports.compare_experiments(args.compare, args.metrics, split=args.split, store=store)


def _unreadable(store: Any) -> bool:
    return bool(store.snapshot.damaged or store.snapshot.legacy)


def _damaged_and_empty(store: Any) -> int:
    n = len(store.snapshot.damaged) + len(store.snapshot.legacy)
    _error(
        f"the store {store.root} holds {n} file(s) that cannot be read (see the warnings "
        "above) and no readable experiments; it is not empty. See --check and --repair."
    )
    return EXIT_DAMAGED


def _check(store: Any) -> int:
    from common.experiments.repair import schema_problems

    snap = store.snapshot
    problems = store.problems + schema_problems(store.root)
    print(f"store: {store.root}")
    print(f"files verified: {len(snap.files)}; damaged: {len(snap.damaged)}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    if not problems:
        print(
            "OK: every file matches its checksum, every column holds one type and every schema "
            "entry agrees with the data"
        )
        return 0
    print("repair what can be repaired with: python tools/query_experiments.py --repair")
    return EXIT_DAMAGED


def _change(args: argparse.Namespace, storage_dir: Path | None) -> int:
    from common.experiments import write
    from common.experiments.repair import repair_store

    kwargs: dict[str, Any] = {"storage_dir": storage_dir}
    if args.repair:
        report = repair_store(**kwargs)
        if report.converted_rows:
            print(f"converted {report.converted_rows} rows from the previous store format")
        for name in report.unreadable_legacy:
            print(f"could not read {name} (previous format); moved into legacy/")
        for path in report.moved_aside:
            print(f"moved a damaged file aside: {path}")
        for exp, cols in report.retyped.items():
            print(f"converted {', '.join(cols)} of experiment {exp!r} to the store's types")
        for entry in report.schema_restored:
            print(f"restored the schema entry of {entry} from the stored files")
        done = (report.moved_aside, report.retyped, report.converted_rows, report.schema_restored)
        if not any(done):
            print("nothing to repair")
        for problem in report.remaining:
            print(f"PROBLEM (not repaired): {problem}")
        return EXIT_DAMAGED if report.remaining else 0
    if args.rename is not None:
        old, new = args.rename
        n = write.rename_experiment(old, new, **kwargs)
        print(f"renamed {old!r} to {new!r} ({n} rows)")
        return 0
    names = list(dict.fromkeys(args.delete))
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("--delete asks for confirmation on a terminal; pass --yes to delete")
        answer = input(f"delete {len(names)} experiment(s) {', '.join(names)}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    n = write.delete_experiment(names, **kwargs)
    print(f"deleted {', '.join(repr(x) for x in names)} ({n} rows)")
    return 0


def _annotate(args: argparse.Namespace, storage_dir: Path | None) -> int:
    """--tag, --untag or --note (each repeatable), applied in the order given."""
    from common.experiments import write

    for name, *tags in args.tag or ():
        now = write.tag_experiment(name, *tags, storage_dir=storage_dir)
        print(f"tags of {name!r}: {', '.join(now) or '(none)'}")
    for name, *tags in args.untag or ():
        now = write.untag_experiment(name, *tags, storage_dir=storage_dir)
        print(f"tags of {name!r}: {', '.join(now) or '(none)'}")
    for name, text in args.note or ():
        write.set_note(name, text, storage_dir=storage_dir)
        print(f"note of {name!r} {'set' if text else 'cleared'}")
    return 0


def _empty_store(args: argparse.Namespace, storage_dir: Path | None) -> int:
    where = storage_dir if storage_dir is not None else _default_store()
    print(EMPTY_STORE_HINT.format(where=where), file=sys.stderr)
    for sub in ("experiments", "outputs/experiments"):
        if storage_dir is not None and (storage_dir / sub).is_dir():
            print(f"(Did you mean --dir {storage_dir / sub}?)", file=sys.stderr)
    if args.format == "json":
        print("[]")
    return 0


def _storage_dir(option: str | None) -> Path | None:
    if option is None:
        return None
    path = Path(option).expanduser()
    if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
        raise CliError(f"cannot read the experiment store {path}: permission denied")
    return path


def _default_store() -> Path:
    from common.paths import get_experiments_dir

    return get_experiments_dir()


def _plot_metrics(args: argparse.Namespace, available: list[str]) -> list[str]:
    if args.best is not None:
        return [args.best]
    if args.metrics:
        return list(args.metrics)
    return ["loss"] if "loss" in available else available[:1]


def _plot(
    args: argparse.Namespace,
    columns: list[str],
    rows: list[tuple],
    metrics: list[str],
    storage_dir: Path | None,
) -> None:
    path = Path(args.plot).expanduser()
    if not path.suffix:
        path = path.with_suffix(".png")
    if args.group_by:
        from common.visualization.plots import plot_group_curves

        try:
            plot_group_curves(
                args.best,
                args.group_by,
                sweep=args.sweep,
                split=None if args.split == "all" else (args.split or "val"),
                storage_dir=storage_dir,
                save_path=path,
            )
        except ValueError as exc:
            raise CliError(f"cannot plot: {exc}") from None
        except OSError as exc:
            raise CliError(f"cannot write the plot to {path}: {exc.strerror or exc}") from None
        print(f"wrote {path}", file=sys.stderr)
        return
    title = None
    if args.best is not None:
        name_i = columns.index("experiment_name")
        names = [r[name_i] for r in rows]
        title = f"Top {len(names)} by best {args.best}"
    else:
        names = list(dict.fromkeys(args.compare))
    if not names or not metrics:
        raise CliError("nothing to plot: no experiments or metrics selected")

    from common.visualization.plots import plot_training_curves

    try:
        plot_training_curves(
            names, metrics, storage_dir=storage_dir, save_path=path, log_scale="auto", title=title
        )
    except ValueError as exc:
        raise CliError(f"cannot plot: {exc}") from None
    except OSError as exc:
        raise CliError(f"cannot write the plot to {path}: {exc.strerror or exc}") from None
    print(f"wrote {path}", file=sys.stderr)


def _show_warning(message: Warning | str, category: type[Warning], *_args: Any, **_kw: Any) -> None:
    print(f"query_experiments: warning: {message}", file=sys.stderr)


def _error(message: str) -> None:
    error(TOOL, message)


if __name__ == "__main__":
    sys.exit(main())
