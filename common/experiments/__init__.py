"""The experiment store: every run's results as immutable Parquet files, queried in SQL.

One concept per module:

- ``errors``: the exceptions.
- ``schema``: names, metadata flattening, column typing, and the rule that each column has one
  type in a store (set by the first save that has it; int widens to float; a save that does not
  fit is refused before anything is written).
- ``layout``: the folder layout, file names (each carrying its content's CRC-32), footers and the
  one way a file is published (temp file, fsync, rename, folder fsync).
- ``snapshot``: which file serves each save; superseded saves; damaged files.
- ``write``: save, overwrite, delete, rename, rewind. Every change is one new file; a change that
  supersedes rows names the saves it supersedes, so order never depends on a clock.
- ``read``: ``Store``, one verified snapshot with DuckDB views (``experiments``,
  ``experiment_summary``, ``experiment_columns``), retry when compaction removes a file, and the
  read-only SQL guard.
- ``reports``: list, summary, best and compare (split-aware), each a ``QueryResult``.
- ``compaction``: background merging of small files, ``compact_store``.
- ``repair``: ``check_store`` and ``repair_store``.

Guarantees: a save that returned is visible to every later snapshot until an overwrite, delete,
rename or rewind made after it supersedes it; nothing is ever partially visible; a damaged file
is reported (file, and the experiments or number of saves it holds), never silently skipped;
several processes and machines may share one store folder without locks.
"""

from common._lazy import lazy_exports

_EXPORTS = {
    "save_experiment": ".write",
    "delete_experiment": ".write",
    "rename_experiment": ".write",
    "rewind_experiment": ".write",
    "Store": ".read",
    "QueryResult": ".read",
    "connect": ".read",
    "query_experiments": ".read",
    "run_readonly_sql": ".read",
    "check_readonly_sql": ".read",
    "experiment_names": ".read",
    "metric_columns": ".read",
    "list_experiments": ".reports",
    "summarize_experiments": ".reports",
    "best_experiments": ".reports",
    "compare_experiments": ".reports",
    "metric_direction": ".reports",
    "VALIDATION_SPLITS": ".reports",
    "compact_store": ".compaction",
    "CompactionReport": ".compaction",
    "check_store": ".repair",
    "repair_store": ".repair",
    "validate_experiment_name": ".schema",
    "flatten_metadata": ".schema",
    "FLATTEN_SEPARATOR": ".schema",
    "PROVENANCE_COLUMNS": ".schema",
    "ExperimentStoreError": ".errors",
    "InvalidExperimentNameError": ".errors",
    "InvalidResultsError": ".errors",
    "SchemaError": ".errors",
    "StoreNotFoundError": ".errors",
    "StoreWriteError": ".errors",
    "UnknownMetricError": ".errors",
    "UnknownExperimentError": ".errors",
    "UnknownSplitError": ".errors",
    "ExperimentExistsError": ".errors",
    "MetricDirectionError": ".errors",
    "ReadOnlyViolation": ".errors",
    "QueryError": ".errors",
    "DamagedStoreWarning": ".errors",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
