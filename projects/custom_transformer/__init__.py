"""Llama-style language model with hand-written backpropagation (the monorepo's flagship).

Public names are resolved lazily so that importing the package does not import torch.
"""

from common._lazy import lazy_exports

_EXPORTS = {
    "CustomTransformer": ".model",
    "TransformerConfig": ".model",
    "resolve_d_ff": ".model",
    "ReferenceTransformer": ".reference",
    "export_hf": ".export",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
