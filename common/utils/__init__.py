"""Configuration, provenance, and a short alias for the experiment store.

``common.utils`` re-exports every public name of ``common.experiments`` (the experiment store:
``save_experiment``, ``query_experiments``, the reports, ``Store``, the errors, ...), so
``from common.utils import save_experiment`` and ``from common.experiments import
save_experiment`` are the same thing; the store's own modules and ``common/`` use
``common.experiments``. Besides: the training configuration (``Config``, ``load_config``, ...
from ``config``) and ``git_info`` (``provenance``). Submodules: ``atomic`` (atomic file writes),
``argtypes`` and ``cli`` (the command-line convention).
"""

from common import experiments as _experiments
from common._lazy import lazy_exports

_EXPORTS = {
    # the experiment store: every public name of common.experiments
    **{name: "common.experiments" for name in _experiments.__all__},
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
