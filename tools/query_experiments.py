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
    python tools/query_experiments.py --check

Exit status: 0 success; 2 a user mistake (bad SQL, unknown metric, experiment or split, missing
store); 3 the answer was printed, but some store files are damaged or some values have the wrong
type (warnings say which; ``--check`` lists them, ``--repair`` fixes what can be fixed); 1 an
internal error.

Start-up is kept fast: the query path imports DuckDB and the store, never pandas, torch,
transformers or datasets; only ``--plot`` loads matplotlib.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import decimal
import json
import math
import os
import shutil
import sys
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

try:
    import common  # noqa: F401
except ImportError:  # run by a Python without the editable install: use this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.utils.argtypes import (  # noqa: E402 (after the path)
    OneLineParser,
    non_negative_int,
    positive_int,
)

EXIT_USAGE = 2
EXIT_INTERNAL = 1
EXIT_DAMAGED = 3
FORMATS = ("table", "csv", "json", "markdown")
MAX_CELL_WIDTH = 48
MIN_CELL_WIDTH = 12
MAX_TRANSPOSED_ROWS = 8
DEBUG_ENV = "QUERY_EXPERIMENTS_DEBUG"

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
            "Mistakes (bad SQL, unknown metric or experiment, missing store) exit with status 2."
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
        "--check",
        action="store_true",
        help="verify every store file and column type; exit 3 when something is damaged",
    )
    action.add_argument(
        "--repair",
        action="store_true",
        help="move damaged files aside (into damaged/) and convert values of the wrong type",
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
    if args.yes and args.delete is None:
        parser.error("--yes goes with --delete")
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
    try:
        return _run(args)
    except CliError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `| head`: the reader left, nothing more to say
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from common.experiments.errors import ExperimentStoreError

        if isinstance(exc, ExperimentStoreError):
            _error(str(exc))
            return EXIT_USAGE
        if isinstance(exc, OSError):
            _error(f"cannot read the experiment store: {exc}")
            return EXIT_USAGE
        if os.environ.get(DEBUG_ENV):
            raise
        _error(
            f"unexpected {type(exc).__name__}: {exc} "
            f"(set {DEBUG_ENV}=1 to see the traceback and report it)"
        )
        return EXIT_INTERNAL


def _run(args: argparse.Namespace) -> int:
    storage_dir = _storage_dir(args.dir)
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
        return store.sql(args.sql)
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
    snap = store.snapshot
    print(f"store: {store.root}")
    print(f"files verified: {len(snap.files)}; damaged: {len(snap.damaged)}")
    for problem in store.problems:
        print(f"PROBLEM: {problem}")
    if not store.problems:
        print("OK: every file matches its checksum and every column holds one type")
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
        if not (report.moved_aside or report.retyped or report.converted_rows):
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
    print(f"query_experiments: error: {message}", file=sys.stderr)


def _silence_stdout() -> None:
    # Python flushes stdout at exit; point it at devnull so that flush cannot fail again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


# --------------------------------------------------------------------------- output


def write_result(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fmt: str,
    *,
    max_rows: int | None = None,
    out: IO[str] | None = None,
) -> None:
    """Print a result in ``fmt``; ``table`` fits the terminal, csv and json print every row."""
    out = out if out is not None else sys.stdout
    if fmt == "csv":
        write_csv(columns, rows, out)
    elif fmt == "json":
        write_json(columns, rows, out)
    elif fmt == "markdown":
        out.write(render_markdown(columns, rows, max_rows=max_rows or None))
    else:
        size = shutil.get_terminal_size(fallback=(120, 40))
        limit = max_rows if max_rows is not None else max(10, size.lines - 6)
        out.write(render_table(columns, rows, width=size.columns, max_rows=limit or None))


def write_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]], out: IO[str]) -> None:
    """Every row as CSV with a header; floats at full precision, NULL as an empty field."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_plain(v) for v in row])


def write_json(columns: Sequence[str], rows: Sequence[Sequence[Any]], out: IO[str]) -> None:
    """Every row as a JSON list of objects; NaN and infinities become null."""
    records = [{c: _jsonable(v) for c, v in zip(columns, row)} for row in rows]
    json.dump(records, out, indent=2, ensure_ascii=False, allow_nan=False)
    out.write("\n")


def render_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    width: int = 120,
    max_rows: int | None = None,
) -> str:
    """Aligned plain-text table cut to ``max_rows`` rows and ``width`` characters.

    Numbers are right-aligned with one number format per column. Columns that do not fit the
    width are left out (the first one is always shown) and a note names them, as it does for
    rows cut by ``max_rows``.
    """
    shown = rows if max_rows is None else rows[:max_rows]
    cells = _format_columns(columns, shown)
    numeric = [_is_numeric_column(rows, i) for i in range(len(columns))]
    widths = [max([len(c)] + [len(v) for v in col]) for c, col in zip(columns, cells)]
    if sum(widths) + 2 * (len(widths) - 1) > width and 1 <= len(shown) <= MAX_TRANSPOSED_ROWS:
        transposed = _render_transposed(columns, cells, numeric, width)
        if transposed is not None:
            return transposed + _row_note(len(rows), len(shown))
    keep = _fit_columns(list(columns), widths, cells, width)

    def line(values: list[str]) -> str:
        parts = []
        for i in keep:
            text = values[i]
            parts.append(text.rjust(widths[i]) if numeric[i] else text.ljust(widths[i]))
        return "  ".join(parts).rstrip()

    headers = [_clip(c, widths[i]) for i, c in enumerate(columns)]
    lines = [line(headers), "  ".join("-" * widths[i] for i in keep)]
    lines += [line([col[r] for col in cells]) for r in range(len(shown))]
    if not rows:
        lines.append("(no rows)")
    notes = [_row_note(len(rows), len(shown))] if len(rows) > len(shown) else []
    dropped = [columns[i] for i in range(len(columns)) if i not in keep]
    if dropped:
        listed = ", ".join(dropped[:8]) + (", ..." if len(dropped) > 8 else "")
        notes.append(
            f"... {len(dropped)} more column{'s' if len(dropped) != 1 else ''} not shown: "
            f"{listed} (pick columns with --sql, or use --format csv/json)\n"
        )
    wrapped = [textwrap.fill(n.rstrip("\n"), width=max(width, 40)) + "\n" for n in notes]
    return "\n".join(lines) + "\n" + "".join(wrapped)


def _row_note(total: int, shown: int) -> str:
    if total <= shown:
        return ""
    left = total - shown
    return (
        f"... {left} more row{'s' if left != 1 else ''} not shown ({total} in all; "
        "--max-rows 0 or --format csv/json shows all)\n"
    )


def _render_transposed(
    columns: Sequence[str], cells: list[list[str]], numeric: list[bool], width: int
) -> str | None:
    """Few rows, many columns: one line per column, one text column per row (None if too wide).

    The first column (usually ``experiment_name``) becomes the header line.
    """
    label_w = max(len(c) for c in columns)
    n = len(cells[0])
    col_w = [max(len(cells[i][r]) for i in range(len(columns))) for r in range(n)]
    if label_w + sum(w + 2 for w in col_w) > width:
        return None
    lines = []
    for i, name in enumerate(columns):
        parts = [name.ljust(label_w)]
        for r in range(n):
            text = cells[i][r]
            parts.append(text.rjust(col_w[r]) if numeric[i] else text.ljust(col_w[r]))
        lines.append("  ".join(parts).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in [label_w, *col_w]))
    lines.append(f"(one column per result row, {len(columns)} fields: transposed to fit)")
    return "\n".join(lines) + "\n"


def render_markdown(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, max_rows: int | None = None
) -> str:
    """A GitHub-flavoured Markdown table (numbers right-aligned), optionally cut to max_rows."""
    shown = rows if max_rows is None else rows[:max_rows]
    cells = _format_columns(columns, shown, max_width=None)
    numeric = [_is_numeric_column(rows, i) for i in range(len(columns))]

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|")

    lines = ["| " + " | ".join(esc(c) for c in columns) + " |"]
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    for r in range(len(shown)):
        lines.append("| " + " | ".join(esc(col[r]) for col in cells) + " |")
    if len(rows) > len(shown):
        left = len(rows) - len(shown)
        lines.append("")
        lines.append(f"_... {left} more row{'s' if left != 1 else ''} not shown._")
    return "\n".join(lines) + "\n"


def _fit_columns(
    columns: list[str], widths: list[int], cells: list[list[str]], width: int
) -> list[int]:
    """Indices of the columns to show, fitting ``width`` (may shrink ``widths`` and ``cells``).

    Wide text columns after the first shrink first (never below MIN_CELL_WIDTH), then columns
    are dropped from the right; the first column (usually the experiment name) is kept whole as
    long as it fits on its own.
    """

    def total(idx: list[int]) -> int:
        return sum(widths[i] for i in idx) + 2 * (len(idx) - 1)

    def shrink(i: int, excess: int, floor: int) -> None:
        new = max(floor, widths[i] - excess)
        if new < widths[i]:
            widths[i] = new
            cells[i] = [_clip(v, new) for v in cells[i]]

    keep = list(range(len(columns)))
    for i in sorted(keep[1:], key=lambda j: -widths[j]):
        excess = total(keep) - width
        if excess <= 0:
            break
        if not _all_numbers(cells[i]):
            shrink(i, excess, MIN_CELL_WIDTH)
    # drop bookkeeping columns (times, provenance) first, then from the right
    drop_order = sorted(keep[1:], key=lambda j: (not _is_bookkeeping(columns[j]), -j))
    while len(keep) > 1 and total(keep) > width:
        keep.remove(drop_order.pop(0))
    if total(keep) > width:
        shrink(0, total(keep) - width, 4)
    return keep


_BOOKKEEPING = {"saved_at", "first_saved_at", "last_saved_at", "git_commit", "git_dirty", "host"}


def _is_bookkeeping(name: str) -> bool:
    return name in _BOOKKEEPING


def _all_numbers(values: list[str]) -> bool:
    return all(not v or v[0].isdigit() or v[0] in "-+." or v in ("nan", "inf") for v in values)


def _format_columns(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    max_width: int | None = MAX_CELL_WIDTH,
) -> list[list[str]]:
    out = []
    for i in range(len(columns)):
        formatter = _column_formatter([row[i] for row in rows])
        out.append([_clip(formatter(row[i]), max_width) for row in rows])
    return out


def _column_formatter(values: list[Any]) -> Any:
    floats = [
        float(v)
        for v in values
        if isinstance(v, (float, decimal.Decimal)) and not isinstance(v, bool)
    ]
    finite = [f for f in floats if math.isfinite(f)]
    if not finite:
        return _cell
    if all(f.is_integer() and abs(f) < 1e15 for f in finite):
        decimals: int | None = 0
    elif any(f != 0 and (abs(f) < 1e-3 or abs(f) >= 1e9) for f in finite):
        decimals = None  # scientific notation for the whole column
    else:
        fractional = [f for f in finite if f != 0 and not f.is_integer()]
        needed = [max(0, 4 - math.floor(math.log10(abs(f)))) for f in fractional]
        decimals = min(max(needed, default=0), 6)

    def fmt(v: Any) -> str:
        if isinstance(v, (float, decimal.Decimal)) and not isinstance(v, bool):
            f = float(v)
            if not math.isfinite(f):
                return _cell(f)
            if decimals is None:
                return f"{f:.4g}"
            return f"{f:.{decimals}f}"
        return _cell(v)

    return fmt


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.6g}"
    if isinstance(v, _dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, (_dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, _dt.timedelta):
        return str(v)
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(_jsonable(v), ensure_ascii=False)
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    return " ".join(str(v).split("\n"))


def _clip(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    return text[: max(1, width - 3)] + "..."


def _is_numeric_column(rows: Sequence[Sequence[Any]], i: int) -> bool:
    seen = False
    for row in rows:
        v = row[i]
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float, decimal.Decimal)):
            return False
        seen = True
    return seen


def _plain(v: Any) -> Any:
    """CSV field: full-precision numbers, ISO times, JSON for nested values."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else str(v))
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(_jsonable(v), ensure_ascii=False)
    return v


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, decimal.Decimal):
        return _jsonable(float(v))
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, _dt.timedelta):
        return v.total_seconds()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    return str(v)


if __name__ == "__main__":
    sys.exit(main())
