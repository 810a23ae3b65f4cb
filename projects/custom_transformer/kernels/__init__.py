"""Triton kernels of the custom transformer, hand-written forward and backward pairs.

Same conventions as :mod:`projects.custom_transformer.ops` (llm.c style): ``y =
<stem>_forward(a, b, ...)`` and ``da, db = <stem>_backward(dy, a, b, ..., [stats])``, the backward
right below its forward, with mirrored argument lists. Modules: :mod:`.attention` (causal flash
attention), :mod:`.rmsnorm`, :mod:`.swiglu`, :mod:`.cross_entropy` (the output projection's
softmax cross-entropy over blocks of rows). Matrix multiplies stay ``torch.matmul`` (cuBLAS).

Importing this package never imports Triton. :func:`load` does, and returns the kernel
functions; on a machine without CUDA it first switches Triton to its interpreter
(``TRITON_INTERPRET=1``, which runs the kernels on CPU tensors with NumPy: slow, for tests), see
:mod:`._triton`.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import SimpleNamespace

__all__ = ["KERNEL_NAMES", "interpreting", "load", "triton_available"]

#: The functions a kernel set provides (the model's Triton path calls exactly these).
KERNEL_NAMES = (
    "attention_forward",
    "attention_backward",
    "rmsnorm_forward",
    "rmsnorm_backward",
    "swiglu_forward",
    "swiglu_backward",
    "cross_entropy_forward",
    "cross_entropy_backward",
    "lm_head_cross_entropy_forward",
    "lm_head_cross_entropy_backward",
)
_MODULES = ("attention", "rmsnorm", "swiglu", "cross_entropy")
_LOADED: SimpleNamespace | None = None


def triton_available() -> bool:
    """Whether the ``triton`` package can be imported here."""
    return importlib.util.find_spec("triton") is not None


def interpreting() -> bool:
    """Whether the kernels run in Triton's interpreter (no CUDA, or ``TRITON_INTERPRET=1``)."""
    from projects.custom_transformer.kernels._triton import wants_interpreter

    return wants_interpreter()


def load() -> SimpleNamespace:
    """Import the kernels (and Triton) once; returns a namespace of :data:`KERNEL_NAMES`.

    Raises:
        ImportError: Triton is not installed.
        RuntimeError: Triton was already imported without its interpreter on a machine without
            CUDA (the kernels could not run).
    """
    global _LOADED
    if _LOADED is None:
        functions = {}
        for name in _MODULES:
            module = importlib.import_module(f"{__name__}.{name}")
            functions.update({k: getattr(module, k) for k in module.__all__})
        _LOADED = SimpleNamespace(name="triton", **{k: functions[k] for k in KERNEL_NAMES})
    return _LOADED
