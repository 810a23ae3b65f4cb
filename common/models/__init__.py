"""Model base classes: every language model extends ``BaseLanguageModel``."""

from common._lazy import lazy_exports

_EXPORTS = {
    "BaseLanguageModel": ".base",
    "CheckpointError": ".base",
    "load_model_from_checkpoint": ".base",
    "read_checkpoint_metadata": ".base",
    "resolve_checkpoint_dir": ".base",
    "TinyTransformerLM": ".examples",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
