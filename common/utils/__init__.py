"""Experiment storage (Parquet + DuckDB), checkpoints, configuration and logging helpers."""

from common._lazy import lazy_exports

_EXPORTS = {
    # experiment store (common.experiments)
    "save_experiment": "common.experiments",
    "query_experiments": "common.experiments",
    "connect": "common.experiments",
    "list_experiments": "common.experiments",
    "summarize_experiments": "common.experiments",
    "best_experiments": "common.experiments",
    "compare_experiments": "common.experiments",
    "group_experiments": "common.experiments",
    "compact_store": "common.experiments",
    "check_store": "common.experiments",
    "repair_store": "common.experiments",
    "delete_experiment": "common.experiments",
    "rename_experiment": "common.experiments",
    "rewind_experiment": "common.experiments",
    "validate_experiment_name": "common.experiments",
    "ExperimentStoreError": "common.experiments",
    "FLATTEN_SEPARATOR": "common.experiments",
    "UnknownMetricError": "common.experiments",
    "UnknownExperimentError": "common.experiments",
    "ReadOnlyViolation": "common.experiments",
    "QueryError": "common.experiments",
    "StoreNotFoundError": "common.experiments",
    "StoreWriteError": "common.experiments",
    "SchemaError": "common.experiments",
    "InvalidExperimentNameError": "common.experiments",
    "QueryResult": "common.experiments",
    "run_readonly_sql": "common.experiments",
    "experiment_names": "common.experiments",
    "metric_columns": "common.experiments",
    # configuration
    "Config": ".config",
    "ModelConfig": ".config",
    "DataConfig": ".config",
    "TrainingConfig": ".config",
    "LoggingConfig": ".config",
    "ConfigError": ".config",
    "load_config": ".config",
    "apply_overrides": ".config",
    "config_to_dict": ".config",
    # provenance
    "git_info": ".provenance",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
