"""Each column's type as the stored files say it: the truth that ``schema/`` caches.

A column's type in a store is the logical type that most of its visible rows are stored with,
read from the files' Parquet footers only (no data is read, no checksum verified). A file that
merged rows of disagreeing types (stored as text, so nothing is lost) records in its footer how
many rows of each type went into it (``mixed``), so a merge never turns a number column into a
text one. Ties go to the first of ``LOGICAL_TYPES`` (number first).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from common.experiments.schema import FIXED_TYPES, LOGICAL_TYPES, ColumnType, logical_of_kind
from common.experiments.snapshot import Part, footer_parts


def column_votes(parts: Iterable[Part]) -> dict[str, Counter[str]]:
    """Lower-case column -> logical type -> rows stored with that type, over ``parts``."""
    votes: dict[str, Counter[str]] = {}
    for part in parts:
        info = part.info
        if not info.rows:
            continue
        mixed = {k.lower(): v for k, v in info.mixed.items()}
        for col, kind in info.types.items():
            key = col.lower()
            if key in FIXED_TYPES:
                continue
            counter = votes.setdefault(key, Counter())
            if key in mixed:
                counter.update(mixed[key])
            else:
                counter[logical_of_kind(kind)] += info.rows
    return votes


def mixed_columns(
    parts: Iterable[Part], out_types: dict[str, str], rows: int
) -> dict[str, dict[str, int]]:
    """The footer entry ``mixed`` of a file of ``rows`` rows written from ``parts`` with column
    kinds ``out_types``: each text column whose input rows disagree on their type, with the rows
    of each type (scaled to ``rows``)."""
    parts = list(parts)
    votes = column_votes(parts)
    out = {}
    for col, kind in out_types.items():
        counter = votes.get(col.lower())
        if kind != "text" or counter is None or len(counter) < 2:
            continue
        total = sum(counter.values())
        out[col] = {t: max(1, round(n * rows / total)) for t, n in sorted(counter.items())}
    return out


def winner(counter: Counter[str]) -> str:
    """The logical type held by most rows (ties: the first of ``LOGICAL_TYPES``)."""
    best = max(counter.values())
    return next(t for t in LOGICAL_TYPES if counter.get(t) == best)


def stored_types(root: Path) -> dict[str, ColumnType]:
    """Lower-case column -> its type as the store's visible files hold it, with an experiment
    whose rows have that type (the first by name)."""
    parts = footer_parts(root)
    votes = column_votes(parts)
    spelling: dict[str, str] = {}
    holders: dict[tuple[str, str], set[str]] = {}
    for part in parts:
        if not part.info.rows:
            continue
        for col, kind in part.info.types.items():
            key = col.lower()
            spelling.setdefault(key, col)
            holders.setdefault((key, logical_of_kind(kind)), set()).update(part.info.exps)
    out = {}
    for key, counter in votes.items():
        logical = winner(counter)
        exps = holders.get((key, logical)) or {
            e for (k, _), held in holders.items() if k == key for e in held
        }
        out[key] = ColumnType(spelling[key], logical, min(exps, default="(unknown)"))
    return out
