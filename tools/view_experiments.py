#!/usr/bin/env python
"""See the experiment store in a browser: a local dashboard, or a self-contained HTML report.

Examples (from the repository root)::

    python tools/view_experiments.py                      # serve on http://127.0.0.1:8765/
    python tools/view_experiments.py --dir path/to/store --port 9000
    python tools/view_experiments.py --export report.html
    python tools/view_experiments.py --export best.html --best bits_per_byte --top 10
    python tools/view_experiments.py --export lr.html --sql "SELECT DISTINCT experiment_name
        FROM experiments WHERE training__lr >= 1e-3"

The dashboard reads the store and follows it: runs that are training show up and their curves
grow without reloading the page. The one thing it writes is what you edit on a run page (tags
and the note), accepted only from the page itself. It binds to 127.0.0.1 unless ``--host`` says
otherwise. Exit status: 0 success (Ctrl-C stops the server); 2 a user mistake (missing store,
bad SQL, unknown metric, port in use); 1 an internal error (``RESEARCH_DEBUG=1`` shows its
traceback); 130 an export interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

try:
    import common  # noqa: F401
except ImportError:  # run by a Python without the editable install: use this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.utils.argtypes import (  # noqa: E402
    non_negative_float,
    non_negative_int,
    positive_int,
)
from common.utils.cli import OneLineParser, run_cli  # noqa: E402

TOOL = "view_experiments"
DEFAULT_PORT = 8765


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = OneLineParser(
        prog="view_experiments.py",
        description=(
            "A local web dashboard over the experiment store: runs table (sort, SQL filter,\n"
            "columns, pages, tags and notes), parallel coordinates, scatter and importance,\n"
            "curves with live updates, compare, run pages and a SQL box.\n"
            "With --export, write the same page as one self-contained HTML file instead."
        ),
        epilog=(
            "examples:\n"
            "  %(prog)s\n"
            "  %(prog)s --port 9000 --dir assets/outputs/experiments\n"
            "  %(prog)s --export report.html --best bits_per_byte --top 10\n"
            "\n"
            "The store is assets/outputs/experiments (RESEARCH_ASSETS_DIR relocates assets/)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dir", metavar="PATH", help="the store folder (default: the assets')")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other exposes the store: a warning)",
    )
    parser.add_argument(
        "--port",
        type=non_negative_int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--refresh",
        type=non_negative_float,
        default=1.0,
        metavar="SECONDS",
        help="how often the server looks for new saves (default 1)",
    )
    parser.add_argument(
        "--query-timeout",
        type=non_negative_float,
        default=10.0,
        metavar="SECONDS",
        help="stop a query from the SQL box or the runs filter after SECONDS (default 10)",
    )
    export = parser.add_argument_group("static report")
    export.add_argument("--export", metavar="FILE.html", help="write a self-contained page")
    choose = export.add_mutually_exclusive_group()
    choose.add_argument(
        "--sql", metavar="QUERY", help="with --export: the experiments this query's rows name"
    )
    choose.add_argument("--best", metavar="METRIC", help="with --export: the best by METRIC")
    export.add_argument("--top", type=positive_int, metavar="N", help="with --best: N best (5)")
    export.add_argument("--mode", choices=("min", "max"), help="with --best: which is better")
    export.add_argument(
        "--split",
        metavar="NAME",
        help="with --export: the split of the table's best/last values (default: validation)",
    )
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.export is None:
        for flag in ("sql", "best", "top", "mode", "split"):
            if getattr(args, flag) is not None:
                parser.error(f"--{flag} goes with --export")
    elif Path(args.export).suffix.lower() not in (".html", ".htm"):
        parser.error(f"--export writes an HTML page: give a .html name, not {args.export!r}")
    if args.best is None and (args.top is not None or args.mode is not None):
        parser.error("--top and --mode go with --best")
    if args.query_timeout <= 0:
        parser.error("--query-timeout must be more than 0 seconds")
    if args.refresh < 0.1:
        parser.error(f"--refresh must be at least 0.1 seconds, got {args.refresh:g}")
    if args.port > 65535:
        parser.error(f"--port must be at most 65535, got {args.port}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    from common.experiments import ExperimentStoreError
    from common.visualization.dashboard.queries import DashboardError

    return run_cli(
        lambda: _export(args) if args.export is not None else _serve(args),
        tool=TOOL,
        user_errors=(ExperimentStoreError, DashboardError, OSError),
    )


def _export(args: argparse.Namespace) -> int:
    from common.visualization.dashboard.export import export_report

    out = Path(args.export)
    if out.is_dir():
        raise OSError(f"--export {out}: that is a folder; give a file name")
    if not out.parent.is_dir():
        raise OSError(f"--export {out}: the folder {out.parent} does not exist")
    summary = export_report(
        out,
        args.dir,
        sql=args.sql,
        best=args.best,
        top=args.top if args.top is not None else 5,
        mode=args.mode,
        split=args.split,
    )
    print(
        f"wrote {summary.path} ({summary.bytes / 1e6:.1f} MB): {summary.experiments} "
        f"experiment(s) in the table, curves of {summary.curves}; it opens with no network"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from common.visualization.dashboard.server import DashboardServer, is_loopback

    try:
        server = DashboardServer(
            args.dir,
            args.host,
            args.port,
            refresh_s=args.refresh,
            query_timeout=args.query_timeout,
        )
    except OSError as exc:
        if exc.errno is None:
            raise
        raise OSError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
            + (" (choose another --port, or 0 for any free one)" if exc.errno == 98 else "")
        ) from None
    if not is_loopback(args.host):
        print(
            f"view_experiments: warning: listening on {args.host}: anyone who can reach this "
            "machine can read the experiment store (there is no login)",
            file=sys.stderr,
        )
    print(f"serving {server.data.root} at {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
