"""A local web dashboard over the experiment store (``tools/view_experiments.py``).

``queries`` answers the page's questions (runs table, curves, compare, SQL) through the store's
read API; ``run_page`` a run's page; ``views`` the views over many runs (parallel coordinates,
scatter, importance); ``server`` serves the page and a JSON API on 127.0.0.1 and follows saves;
``export`` writes the same page as one self-contained HTML file; ``static/`` holds the page,
its script and style (plotly.js comes from the ``plotly`` package).
"""

from common._lazy import lazy_exports

_EXPORTS = {
    "Dashboard": ".queries",
    "DashboardError": ".queries",
    "DashboardServer": ".server",
    "export_report": ".export",
    "ExportSummary": ".export",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
