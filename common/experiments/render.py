"""Answers as text: aligned terminal tables, CSV, JSON and GitHub Markdown.

``render_table`` fits a terminal (one number format per column, wide text clipped, bookkeeping
columns dropped first, few wide rows transposed); CSV and JSON print every row at full precision.
NaN and infinities are shown as ``nan``, ``inf`` and ``-inf`` in tables and CSV (``null`` in JSON).
"""

from __future__ import annotations

import csv
import datetime as _dt
import decimal
import json
import math
import shutil
import sys
import textwrap
from collections.abc import Sequence
from typing import IO, Any

from common.experiments.sql import json_value, show_non_finite

FORMATS = ("table", "csv", "json", "markdown")
MAX_CELL_WIDTH = 48
MIN_CELL_WIDTH = 12
MAX_TRANSPOSED_ROWS = 8


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
    records = [{c: json_value(v) for c, v in zip(columns, row)} for row in rows]
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
        if not math.isfinite(v):
            return show_non_finite(v)
        return f"{v:.6g}"
    if isinstance(v, _dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, (_dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, _dt.timedelta):
        return str(v)
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(json_value(v), ensure_ascii=False)
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
        return repr(v) if math.isfinite(v) else show_non_finite(v)
    if isinstance(v, (_dt.datetime, _dt.date, _dt.time)):
        return v.isoformat()
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(json_value(v), ensure_ascii=False)
    return v
