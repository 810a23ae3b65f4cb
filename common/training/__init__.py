"""Evaluation, optimizers, learning-rate schedules, the training loop and distributed helpers."""

from common._lazy import lazy_exports

_EXPORTS = {
    "Evaluator": ".evaluator",
    "compute_perplexity": ".evaluator",
    "create_metrics_dataframe": ".evaluator",
    "create_optimizer": ".optimizers",
    "create_scheduler": ".schedules",
    "lr_at_step": ".schedules",
    "Trainer": ".trainer",
    "TrainingDivergedError": ".trainer",
    "DistributedContext": ".distributed",
    "init_distributed": ".distributed",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
