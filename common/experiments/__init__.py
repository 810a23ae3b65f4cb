"""The experiment store: every run's results as immutable Parquet files, queried in SQL.

Design
======

Data model. A *save* is one call of ``save_experiment(name, rows, metadata)``: rows of one
experiment, each carrying ``experiment_name``, the result columns, the metadata flattened into
columns (``training__lr``), the provenance columns ``saved_at``, ``git_commit``, ``git_dirty``,
``host``, and the hidden ``_rx_save`` naming the save. Saves are never changed in place.

Schema (``schema``, ``column_types``). Each column has one logical type in a store (number, text,
bool, timestamp, date): the type most of its stored rows have, read from the files' footers
(``column_types``; int and float are both ``number``). ``schema/`` is a cache of it, one file per
column created by an exclusive link, so concurrent first saves agree before any row is stored;
where the stored files hold a column they decide (a missing entry is rebuilt from them, a
disagreeing one is reported by ``check_store`` and restored by ``repair_store``, and data is
never converted to follow an entry). A save whose values do not fit is refused (``SchemaError``
naming the column, both types and the experiment that set the type) before anything is written.
Files that break the rule anyway (the previous format, hand-made files) stay readable: such
values read as NULL with a warning, and ``repair_store`` converts them.

Files (``layout``). ``saves/`` holds one file per save; ``merged/`` the files compaction writes.
Every file is written under ``tmp/``, fsynced and renamed, and its name carries the CRC-32 of its
content; its footer lists the saves it holds and the saves it supersedes (``dead``).

Order without clocks (``write``, ``snapshot``). An overwrite, delete, rename or rewind is one new
file whose footer names the saves it supersedes: those of the experiment that were visible to the
writer. A reader shows every save that no file names as superseded, each from exactly one file
(merged files first, then by size and name). So what is visible depends only on which saves each
change named, never on any host's clock: a save made after a change stays visible, whatever the
clocks of the machines sharing the folder say.

Names (``claims``). ``names/`` holds one claim file per experiment name, holding the
experiment's identity (a random id kept through renames) and the owner that claimed it (a run).
A claim is created only with an exclusive ``os.link`` and taken only with an ``os.rename``, so of
two changes that want one name (two renames, a rename and a new run, ``claim_experiment`` from
two sweeps) exactly one wins, on one machine and on a shared folder; the loser gets
``ExperimentExistsError`` and changes nothing. A store written before claims existed is claimed
name by name the first time a change needs it.

Tags and notes (``annotations``). ``tag_experiment``, ``untag_experiment`` and ``set_note`` add one
immutable file each under ``annotations/<identity>/``: they hang on the identity, so a rename
carries them, a delete ends them, and compaction and repair never touch them. An untag names the
tag events it removes and a note the notes it replaces, so concurrent changes all land in an
order that needs no clock. ``experiment_annotations`` reads them; ``experiment_summary`` shows
them as ``tags`` (a list of text) and ``note``.

Compaction (``compaction``). When ``PENDING_LIMIT`` saves have gathered, the saving process merges
them in a background thread (the save never waits); merged files of one size tier are merged
again, ``FANIN`` at a time. A merge drops superseded rows for good but keeps their ids; the new
file is read back and checked before its inputs are deleted, and a file is deleted only when
every save it holds lives on in a higher-ranked verified file or is superseded. Readers that
listed a deleted file take a new snapshot and retry. Temporary files are removed only when their
writer is dead (same host) or when the file system's own clock says they are hours old.

Damage (``snapshot``, ``repair``). Every file is verified against its checksum when a process
first reads it. A damaged file is left out of answers with a ``DamagedStoreWarning`` naming the
file and what it holds (experiments, or the number of saves from its name); the CLI then exits 3
after printing what it could answer and never calls such a store empty. ``check_store`` lists
the problems, ``repair_store`` moves damaged files into ``damaged/`` (never deletes them),
converts values of the wrong type and converts the previous format (``legacy``).

Reading (``read``, ``guard``, ``shared``, ``splits``, ``reports``, ``curves``, ``sql``). ``Store``
is one verified snapshot with DuckDB views (``experiments``, ``experiment_summary``,
``experiment_columns``); ``guard`` admits read-only SQL only and runs a query so that a time
limit or Ctrl-C can stop it (DuckDB is interrupted). ``shared_store`` keeps one ``Store`` per
thread and folder and reuses it while a cheap listing of the folder is unchanged (files are
immutable, so an unchanged listing means an unchanged snapshot); ``query_experiments`` and the
reports called without ``store=`` use it. The reports (list, summary, best, group, compare) are
one function each, returning a ``QueryResult`` (``.df()`` for pandas); rankings use the
validation rows by default when rows have a ``split`` (``splits``, the one split rule); plots and
the dashboard read curves through ``curve_rows``. ``sql`` holds the one copy of SQL quoting, the
numeric column types, DuckDB values as JSON and how NaN/inf are shown (``nan``, ``inf``,
``-inf``, everywhere). NaN and infinite values never rank: the reports use finite values and
their notes name the runs left out and those that diverged. Every module reads the store
through these; answers are rendered as text tables, CSV, JSON or Markdown by ``render``.

Import route. ``common.experiments`` is the store's public API; ``common.utils`` is a short alias
that re-exports every one of its public names (``from common.utils import save_experiment``).

Durability. Each save's file is fsynced before it is renamed into place; the folder is fsynced
after changes and merges but not after single saves (it would double their latency): a power cut
may lose the newest saves, and can never expose a partial one (the checksum would show it).
Several processes and machines may share one store folder; no lock is needed for correctness.
"""

from common._lazy import lazy_exports

_EXPORTS = {
    "save_experiment": ".write",
    "delete_experiment": ".write",
    "rename_experiment": ".write",
    "rewind_experiment": ".write",
    "claim_experiment": ".write",
    "tag_experiment": ".write",
    "untag_experiment": ".write",
    "set_note": ".write",
    "experiment_annotations": ".annotations",
    "Annotations": ".annotations",
    "Store": ".read",
    "QueryResult": ".read",
    "connect": ".read",
    "check_readonly_sql": ".guard",
    "run_stoppable": ".guard",
    "query_experiments": ".shared",
    "experiment_names": ".shared",
    "metric_columns": ".shared",
    "shared_store": ".shared",
    "list_experiments": ".reports",
    "summarize_experiments": ".reports",
    "best_experiments": ".reports",
    "compare_experiments": ".reports",
    "group_experiments": ".reports",
    "metric_direction": ".reports",
    "check_experiments": ".reports",
    "non_finite_notes": ".reports",
    "VALIDATION_SPLITS": ".splits",
    "split_column": ".splits",
    "split_values": ".splits",
    "default_split": ".splits",
    "split_filter": ".splits",
    "sweep_filter": ".splits",
    "curve_rows": ".curves",
    "quote_ident": ".sql",
    "quote_str": ".sql",
    "is_numeric": ".sql",
    "json_value": ".sql",
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
    "ExperimentBusyError": ".errors",
    "MetricDirectionError": ".errors",
    "ReadOnlyViolation": ".errors",
    "QueryError": ".errors",
    "QueryTimeoutError": ".errors",
    "DamagedStoreWarning": ".errors",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
