"""SQL text and DuckDB values: quoting, which column types are numbers, values as JSON, and how
a non-finite number is shown. Every module that writes SQL or shows a stored value uses these.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
from typing import Any


def quote_ident(name: str) -> str:
    """A SQL identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


def quote_str(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


NUMERIC_TYPES = frozenset(
    {
        "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
        "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE",
    }
)  # fmt: skip
"""DuckDB's number types (``DECIMAL(p, s)`` too, see ``is_numeric``)."""


def is_numeric(column_type: str) -> bool:
    """Whether a DuckDB column type is a number."""
    return column_type in NUMERIC_TYPES or column_type.startswith("DECIMAL")


def is_finite_sql(expression: str) -> str:
    """SQL condition: ``expression`` is a finite number (not NULL, NaN or an infinity)."""
    return f"isfinite(CAST({expression} AS DOUBLE))"


def show_non_finite(value: float) -> str:
    """How a NaN or an infinity is shown everywhere (CLI tables, dashboard): nan, inf, -inf."""
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def json_value(value: Any, *, time_sep: str = "T", non_finite_text: bool = False) -> Any:
    """A DuckDB value as JSON: times ISO strings (date and time joined by ``time_sep``),
    durations in seconds, bytes as hex, nested values element by element; NaN and infinities
    null, or with ``non_finite_text`` the text ``nan``, ``inf``, ``-inf`` (to show them)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return show_non_finite(value) if non_finite_text else None
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=time_sep)
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    options = {"time_sep": time_sep, "non_finite_text": non_finite_text}
    if isinstance(value, dict):
        return {str(k): json_value(v, **options) for k, v in value.items()}  # type: ignore[arg-type]
    if isinstance(value, (list, tuple)):
        return [json_value(v, **options) for v in value]  # type: ignore[arg-type]
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)
