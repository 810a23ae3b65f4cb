"""Experiment storage (Parquet + DuckDB), checkpoints, configuration and logging helpers."""

from common._lazy import lazy_exports

_EXPORTS = {
    # experiment store
    "save_experiment": ".experiment_storage",
    "query_experiments": ".experiment_storage",
    "connect": ".experiment_storage",
    "list_experiments": ".experiment_storage",
    "summarize_experiments": ".experiment_storage",
    "best_experiments": ".experiment_storage",
    "compare_experiments": ".experiment_storage",
    "compact_store": ".experiment_storage",
    "ExperimentStoreError": ".experiment_storage",
    "FLATTEN_SEPARATOR": ".experiment_storage",
    "UnknownMetricError": ".experiment_storage",
    "UnknownExperimentError": ".experiment_storage",
    "ReadOnlyViolation": ".experiment_storage",
    "QueryError": ".experiment_storage",
    "StoreNotFoundError": ".experiment_storage",
    "InvalidExperimentNameError": ".experiment_storage",
    "QueryResult": ".experiment_storage",
    "run_readonly_sql": ".experiment_storage",
    "experiment_names": ".experiment_storage",
    "metric_columns": ".experiment_storage",
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
