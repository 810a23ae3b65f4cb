"""Plots of experiments (headless-safe: the Agg backend) and the experiments dashboard."""

from common._lazy import lazy_exports

_EXPORTS = {
    "plot_training_curves": ".plots",
    "plot_best_comparison": ".plots",
    "DashboardServer": ".dashboard.server",
    "export_report": ".dashboard.export",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
