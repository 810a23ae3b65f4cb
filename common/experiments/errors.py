"""Exceptions of the experiment store; every message says what went wrong and what exists."""

from __future__ import annotations


class ExperimentStoreError(Exception):
    """Any failure of the experiment store."""


class InvalidExperimentNameError(ExperimentStoreError, ValueError):
    """An experiment name that is empty, too long or not a safe identifier."""


class InvalidResultsError(ExperimentStoreError, ValueError):
    """Results or metadata that cannot be stored (no rows, clashing or reserved column names)."""


class SchemaError(InvalidResultsError):
    """A value whose type does not fit the column's type in the store (set by an earlier save)."""


class StoreNotFoundError(ExperimentStoreError):
    """The store folder does not exist or cannot be read."""


class StoreWriteError(ExperimentStoreError, OSError):
    """Writing to the store failed (disk full, permissions, a vanished folder); nothing stored
    was changed and no temporary file is left."""


class UnknownMetricError(ExperimentStoreError, KeyError):
    """A metric that is not a numeric column of the store; the message lists the metrics."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownExperimentError(ExperimentStoreError, KeyError):
    """An experiment name that is not in the store; the message suggests close names."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ExperimentExistsError(ExperimentStoreError, ValueError):
    """A name that another experiment owns (a rename onto it, a new run under it)."""


class ExperimentBusyError(ExperimentStoreError):
    """Another process is renaming or deleting the experiment right now."""


class UnknownSplitError(ExperimentStoreError, ValueError):
    """A ``split`` value that no stored row has; the message lists the splits."""


class MetricDirectionError(ExperimentStoreError, ValueError):
    """Whether lower or higher is better cannot be told from a metric's name."""


class ReadOnlyViolation(ExperimentStoreError):
    """A statement given to the read-only SQL entry points would change or write something."""


class QueryError(ExperimentStoreError):
    """DuckDB refused a query; the message has DuckDB's text plus the tables and columns."""


class QueryTimeoutError(QueryError):
    """A query ran past its time limit and was stopped."""


class DamagedStoreWarning(UserWarning):
    """Some store files cannot be read; answers leave out the saves they hold."""
