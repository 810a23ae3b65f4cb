"""Model base classes and checkpoints: every language model extends ``BaseLanguageModel``."""

from common._lazy import lazy_exports

_EXPORTS = {
    "BaseLanguageModel": ".base",
    "load_model_from_checkpoint": ".base",
    "CheckpointError": ".checkpoint",
    "CheckpointWriteError": ".checkpoint",
    "read_checkpoint_metadata": ".checkpoint",
    "resolve_checkpoint_dir": ".checkpoint",
    "register_model_class": ".registry",
    "TinyTransformerLM": ".examples",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
