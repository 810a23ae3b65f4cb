"""Runs, the training loop, evaluation, optimizers, learning-rate schedules and DDP helpers."""

from common._lazy import lazy_exports

_EXPORTS = {
    "Evaluator": ".evaluator",
    "compute_perplexity": ".evaluator",
    "metrics_row": ".records",
    "run_metadata": ".records",
    "create_optimizer": ".optimizers",
    "create_scheduler": ".schedules",
    "lr_at_step": ".schedules",
    "Trainer": ".trainer",
    "TrainState": ".state",
    "TrainingDivergedError": ".errors",
    "TrainingInterrupted": ".errors",
    "RowsNotStoredError": ".errors",
    "newest_intact_checkpoint": ".checkpointing",
    "run_dir": ".checkpointing",
    "RunRequest": ".run",
    "Run": ".run",
    "resolve_run": ".run",
    "train_run": ".run",
    "find_runs": ".run",
    "DistributedContext": ".distributed",
    "DistributedFailure": ".distributed",
    "init_distributed": ".distributed",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
