"""Fine-tune and evaluate any downloaded ``transformers`` causal LM through ``common``.

Public names are resolved lazily so that importing the package does not import torch.
"""

from common._lazy import lazy_exports

_EXPORTS = {
    "PretrainedLM": ".model",
    "PretrainedConfig": ".model",
    "export_pretrained": ".model",
    "resolve_pretrained": ".model",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
