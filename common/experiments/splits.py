"""Which rows a ranking, summary or curve uses: the split rule, and the sweep filter.

When the store has a ``split`` column, rankings use the validation rows by default: the first of
``VALIDATION_SPLITS`` present, together with rows that have no split. ``"all"`` uses every row,
any other name the rows of that split only. The reports, the dashboard and the plots all choose
rows through ``split_filter``.
"""

from __future__ import annotations

from typing import Any

from common.experiments.errors import UnknownExperimentError, UnknownSplitError
from common.experiments.read import Store
from common.experiments.sql import quote_ident, quote_str

VALIDATION_SPLITS = ("val", "validation", "valid", "eval", "dev")
"""Split names taken as validation rows, in order of preference."""
ALL_SPLITS = "all"


def split_column(store: Store) -> str | None:
    """The stored spelling of the ``split`` column, or None when no row has one."""
    return next((n for n, _, _ in store.columns() if n.lower() == "split"), None)


def split_values(store: Store) -> list[Any]:
    """The distinct non-NULL values of the ``split`` column, sorted (``[]`` without one)."""
    col = split_column(store)
    if col is None:
        return []
    q = quote_ident(col)
    sql = f"SELECT DISTINCT {q} FROM experiments WHERE {q} IS NOT NULL ORDER BY 1"
    return [r[0] for r in store.execute(sql).rows]


def default_split(splits: list[Any]) -> str | None:
    """The validation split among ``splits`` (the first of ``VALIDATION_SPLITS``), or None."""
    return next((s for s in VALIDATION_SPLITS if s in splits), None)


def split_filter(store: Store, split: str | None) -> tuple[str, tuple[str, ...]]:
    """SQL condition on ``experiments`` choosing the rows for ``split`` (None: the default rule,
    ``"all"``: every row), and the note saying which rows were used.

    Raises:
        UnknownSplitError: no row has that split.
    """
    col = split_column(store)
    if col is None:
        if split not in (None, ALL_SPLITS):
            raise UnknownSplitError(f"split {split!r} was asked for, but no row has a split")
        return "true", ()
    q = quote_ident(col)
    splits = split_values(store)
    listing = ", ".join(str(s) for s in splits) or "(none)"
    if split == ALL_SPLITS:
        return "true", (f"split: all rows ({listing})",)
    if split is None:
        chosen = default_split(splits)
        if chosen is None:
            return "true", (f"split: all rows (no validation split among: {listing})",)
        return f"({q} = {quote_str(chosen)} OR {q} IS NULL)", (
            f"split: {chosen} (default; --split NAME or all to choose; splits: {listing})",
        )
    if split not in splits:
        raise UnknownSplitError(f"no rows with split {split!r}; the splits are: {listing}")
    return f"{q} = {quote_str(split)}", (f"split: {split}",)


def sweep_filter(store: Store, sweep: str | None) -> tuple[str, tuple[str, ...]]:
    """SQL condition keeping the rows of one sweep (the ``sweep`` column), and the note.

    Raises:
        UnknownExperimentError: no row belongs to that sweep.
    """
    if sweep is None:
        return "true", ()
    col = next((n for n, _, _ in store.columns() if n.lower() == "sweep"), None)
    sweeps: list[Any] = []
    if col is not None:
        q = quote_ident(col)
        sweeps = [
            r[0]
            for r in store.execute(
                f"SELECT DISTINCT {q} FROM experiments WHERE {q} IS NOT NULL ORDER BY 1"
            ).rows
        ]
    if col is None or sweep not in sweeps:
        listing = ", ".join(map(str, sweeps)) if sweeps else "none (no row has a sweep)"
        raise UnknownExperimentError(f"no rows of sweep {sweep!r}; the sweeps are: {listing}")
    return f"{quote_ident(col)} = {quote_str(sweep)}", (f"sweep: {sweep}",)
