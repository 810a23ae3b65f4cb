"""Column names, metadata flattening and column typing; the store's one-type-per-column rule.

Every column has one logical type in a store (``number``, ``text``, ``bool``, ``timestamp``,
``date``): the type its stored rows have. ``column_types`` reads it from the files' footers and
keeps the registry, ``schema/``, its cache (one small file per column, named by ``entry_name``).
Integers and floats are both ``number`` (an integer column widens to float). This module types a
save's values and names their columns; no DuckDB, no file is read here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import enum
import hashlib
import json
import math
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from common.experiments.errors import (
    InvalidExperimentNameError,
    InvalidResultsError,
    SchemaError,
)

FLATTEN_SEPARATOR = "__"
"""Separator joining nested metadata keys into one column name (``training__lr``)."""

NAME_COLUMN = "experiment_name"
PROVENANCE_COLUMNS = ("saved_at", "git_commit", "git_dirty", "host")
"""Columns every stored row carries besides ``experiment_name``, results and metadata."""
SAVE_COLUMN = "_rx_save"
"""Hidden column naming the save each row belongs to."""
RESERVED = {NAME_COLUMN, *PROVENANCE_COLUMNS, SAVE_COLUMN}
FIXED_TYPES = {
    NAME_COLUMN: "text",
    "saved_at": "timestamp",
    "git_commit": "text",
    "git_dirty": "bool",
    "host": "text",
    SAVE_COLUMN: "text",
}
MAX_NAME_LENGTH = 200
SCHEMA_FOLDER, TMP_FOLDER = "schema", "tmp"  # inside a store folder (see ``layout``)
LOGICAL_TYPES = ("number", "text", "bool", "timestamp", "date")
SQL_TYPES = {  # logical type -> the SQL type it is read as
    "number": "DOUBLE",
    "text": "VARCHAR",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def validate_experiment_name(name: object) -> str:
    """Check that ``name`` is a safe experiment name and return it.

    Raises:
        InvalidExperimentNameError: not a string, empty, longer than 200 characters, with
            surrounding whitespace, a path separator, ``..`` or a control character.
    """
    if not isinstance(name, str):
        raise InvalidExperimentNameError(
            f"experiment name must be a string, got {type(name).__name__}"
        )
    problem = None
    if not name:
        problem = "it is empty"
    elif len(name) > MAX_NAME_LENGTH:
        problem = f"it is longer than {MAX_NAME_LENGTH} characters"
    elif name != name.strip():
        problem = "it starts or ends with whitespace"
    elif "/" in name or "\\" in name:
        problem = "it contains a path separator"
    elif ".." in name:
        problem = "it contains '..'"
    elif _CONTROL_RE.search(name):
        problem = "it contains a control character"
    if problem:
        raise InvalidExperimentNameError(
            f"invalid experiment name {name!r}: {problem}; use letters, digits and "
            "characters like '-', '_', '.', ':' (e.g. 'llm-tiny_lr3e-4')"
        )
    return name


def flatten_metadata(
    metadata: Mapping[str, Any] | Any | None, separator: str = FLATTEN_SEPARATOR
) -> dict[str, Any]:
    """Flatten nested metadata into column name -> scalar.

    Nested mappings (and dataclass instances such as a ``Config``) become ``outer__inner`` keys;
    lists and tuples become JSON text; ``None`` values and empty mappings are left out.

    Raises:
        InvalidResultsError: two keys flatten to the same column, or a key is empty.
    """
    out: dict[str, Any] = {}
    if metadata is None:
        return out

    def visit(prefix: str, value: Any) -> None:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        if isinstance(value, Mapping):
            for key, sub in value.items():
                key = str(key.value if isinstance(key, enum.Enum) else key)
                if not key:
                    raise InvalidResultsError(f"metadata has an empty key under {prefix!r}")
                visit(f"{prefix}{separator}{key}" if prefix else key, sub)
            return
        scalar = _metadata_scalar(value)
        if scalar is None:
            return
        if prefix.lower() in {k.lower() for k in out}:
            raise InvalidResultsError(f"metadata key {prefix!r} appears twice after flattening")
        out[prefix] = scalar

    if not (isinstance(metadata, Mapping) or dataclasses.is_dataclass(metadata)):
        raise InvalidResultsError(
            f"metadata must be a mapping or a dataclass, got {type(metadata).__name__}"
        )
    visit("", metadata)
    return out


def unflatten_metadata(
    flat: Mapping[str, Any], separator: str = FLATTEN_SEPARATOR
) -> dict[str, Any]:
    """The nested metadata that ``flatten_metadata`` turned into ``flat`` (e.g. a stored row).

    ``outer__inner`` keys nest again; JSON array text (how lists are stored) becomes a list;
    ``None`` values are left out, as ``flatten_metadata`` leaves them out. A text value that was
    itself JSON array text also comes back as a list.

    Raises:
        InvalidResultsError: a key is both a value and a section (``a`` and ``a__b``).
    """
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if value is None:
            continue
        if isinstance(value, str) and value.startswith("["):
            with contextlib.suppress(ValueError):
                decoded = json.loads(value)
                value = decoded if isinstance(decoded, list) else value
        *outer, last = str(key).split(separator)
        node = out
        for part in outer:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InvalidResultsError(f"metadata key {key!r} is both a value and a section")
        if isinstance(node.get(last), dict):
            raise InvalidResultsError(f"metadata key {key!r} is both a value and a section")
        node[last] = value
    return out


def _metadata_scalar(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    if hasattr(value, "item") and callable(value.item) and type(value).__module__ == "numpy":
        value = value.item()
    if isinstance(value, bool | int | str | _dt.date):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list | tuple | set | frozenset):
        seq = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        return json.dumps(seq, default=str)
    return str(value)


class Column(NamedTuple):
    """One column of a save: name, logical type, storage kind and values (None = missing).

    ``kind`` is ``int``, ``float``, ``text``, ``bool``, ``timestamp`` or ``date``.
    """

    name: str
    logical: str
    kind: str
    values: list[Any]


def union_names(groups: Sequence[Sequence[str]]) -> list[str]:
    """Column names of several files, first spelling kept (names are case-insensitive)."""
    out: dict[str, str] = {}
    for group in groups:
        for col in group:
            out.setdefault(col.lower(), col)
    return list(out.values())


def kind_of_sql_type(sql_type: str) -> str:
    """The storage kind (``int``, ``float``, ``text``, ...) of a DuckDB column type."""
    t = sql_type.upper()
    if t in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER"):
        return "int"
    if t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
        return "float"
    if t == "BOOLEAN":
        return "bool"
    if t.startswith("TIMESTAMP"):
        return "timestamp"
    if t == "DATE":
        return "date"
    return "text"


def logical_of_kind(kind: str) -> str:
    """The logical type of a storage kind (``int`` and ``float`` are both ``number``)."""
    return "number" if kind in ("int", "float") else kind


def _clean_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float):
        return None if value != value else value
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return _clean_value(value.item())
    try:
        if value != value:  # NaT, pandas.NA
            return None
    except (TypeError, ValueError):
        return None  # pandas.NA refuses a truth value
    return value


def typed_column(name: str, values: list[Any]) -> Column | None:
    """Type a column of plain Python values; None when every value is missing.

    Raises:
        SchemaError: the values mix types that have no common column type (text and numbers).
    """
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return None
    if kinds == {bool}:
        return Column(name, "bool", "bool", values)
    if any(issubclass(k, bool) for k in kinds):
        raise SchemaError(f"column {name!r} mixes booleans with other values in one save")
    if all(issubclass(k, int) for k in kinds):
        if all(-(2**63) <= v < 2**63 for v in values if v is not None):
            return Column(name, "number", "int", [None if v is None else int(v) for v in values])
        return Column(name, "number", "float", [None if v is None else float(v) for v in values])
    if all(issubclass(k, int | float) for k in kinds):
        return Column(name, "number", "float", [None if v is None else float(v) for v in values])
    if all(issubclass(k, str) for k in kinds):
        return Column(name, "text", "text", values)
    if all(issubclass(k, _dt.datetime) for k in kinds):
        fixed = [
            (
                None
                if v is None
                else v.astimezone(_dt.timezone.utc).replace(tzinfo=None) if v.tzinfo else v
            )
            for v in values
        ]
        return Column(name, "timestamp", "timestamp", fixed)
    if all(issubclass(k, _dt.date) and not issubclass(k, _dt.datetime) for k in kinds):
        return Column(name, "date", "date", values)
    if any(issubclass(k, int | float) for k in kinds):
        shown = sorted(k.__name__ for k in kinds)
        raise SchemaError(
            f"column {name!r} mixes numbers with other values ({', '.join(shown)}) in one save; "
            "a column holds one type"
        )
    text = [
        (
            None
            if v is None
            else json.dumps(v, default=str) if isinstance(v, list | tuple | dict) else str(v)
        )
        for v in values
    ]
    return Column(name, "text", "text", text)


def _dataframe_columns(df: Any) -> dict[str, list[Any]]:
    if any(n is not None for n in df.index.names):
        df = df.reset_index()
    out: dict[str, list[Any]] = {}
    for name in df.columns:
        series = df[name]
        kind = getattr(series.dtype, "kind", "O")
        if kind in "iub":
            out[name] = series.tolist()
        elif kind == "f":
            out[name] = [None if v != v else v for v in series.tolist()]
        elif kind == "M":
            out[name] = [None if v != v else v.to_pydatetime() for v in series]
        else:
            out[name] = [_clean_value(v) for v in series.tolist()]
    return out


def normalize_results(results: Any) -> list[Column]:
    """Turn a DataFrame, a list of row dicts, a dict of columns or a dict of scalars (one row)
    into typed columns.

    Raises:
        InvalidResultsError: no rows, no non-null column, clashing names or unequal lengths.
        SchemaError: a column mixes types.
    """
    if hasattr(results, "columns") and hasattr(results, "dtypes") and hasattr(results, "index"):
        raw = _dataframe_columns(results)
    elif isinstance(results, Mapping):
        values = list(results.values())
        is_seq = [
            isinstance(v, Sequence) and not isinstance(v, str | bytes) or hasattr(v, "tolist")
            for v in values
        ]
        if values and all(is_seq):
            lists = [v.tolist() if hasattr(v, "tolist") else list(v) for v in values]
            lengths = {len(v) for v in lists}
            if len(lengths) > 1:
                raise InvalidResultsError(
                    f"result columns have different lengths: {sorted(lengths)}"
                )
            raw = {k: [_clean_value(x) for x in v] for k, v in zip(results, lists)}
        elif not any(is_seq):
            raw = {k: [_clean_value(v)] for k, v in results.items()}
        else:
            raise InvalidResultsError(
                "a results dict must map every column to a list of values, or every column to a "
                "single value (one row)"
            )
    elif isinstance(results, Iterable) and not isinstance(results, str | bytes):
        rows = list(results)
        if not all(isinstance(r, Mapping) for r in rows):
            raise InvalidResultsError("a results list must hold one dict per row")
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        raw = {k: [_clean_value(r.get(k)) for r in rows] for k in names}
    else:
        raise InvalidResultsError(
            "results must be a pandas DataFrame, a list of row dicts or a dict of columns, "
            f"got {type(results).__name__}"
        )
    n_rows = len(next(iter(raw.values()))) if raw else 0
    if n_rows == 0:
        raise InvalidResultsError("results have no rows; nothing to save")
    columns = []
    seen: set[str] = set()
    for name, values in raw.items():
        if not isinstance(name, str) or not name:
            raise InvalidResultsError(f"result column names must be non-empty strings: {name!r}")
        if name.lower() in seen:
            raise InvalidResultsError(f"result column {name!r} appears twice (case-insensitive)")
        seen.add(name.lower())
        column = typed_column(name, values)
        if column is not None:
            columns.append(column)
    if not columns:
        raise InvalidResultsError("results have no non-null column; nothing to save")
    return columns


def check_reserved(names: Iterable[str]) -> None:
    """Refuse column names the store uses itself.

    Raises:
        InvalidResultsError: a reserved name (``experiment_name``, provenance, ``_rx*``).
    """
    for key in names:
        if key.lower() in RESERVED or key.lower().startswith("_rx"):
            raise InvalidResultsError(
                f"column {key!r} is reserved by the store (reserved: "
                f"{', '.join(sorted(RESERVED - {SAVE_COLUMN}))})"
            )


# --------------------------------------------------------------------------------------------
# a column's registered type and the file of its entry (the registry: ``column_types``)


class ColumnType(NamedTuple):
    """A column's registered type and the experiment whose save set it."""

    column: str
    logical: str
    experiment: str


def entry_name(column: str) -> str:
    """The file name of ``column``'s entry under ``schema/``."""
    quoted = urllib.parse.quote(column.lower(), safe="")
    if len(quoted) > 120:
        quoted = quoted[:80] + "-" + hashlib.sha256(column.lower().encode()).hexdigest()[:32]
    return quoted + ".json"
