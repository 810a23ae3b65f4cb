"""Triton kernels of the custom transformer, hand-written forward and backward pairs.

Same conventions as :mod:`projects.custom_transformer.ops` (llm.c style): ``y =
<stem>_forward(a, b, ...)`` and ``da, db = <stem>_backward(dy, a, b, ..., [stats])``, the backward
right below its forward, with mirrored argument lists. Modules: :mod:`.attention` (causal flash
attention), :mod:`.rmsnorm`, :mod:`.swiglu`, :mod:`.cross_entropy` (the output projection's
softmax cross-entropy over blocks of rows). Matrix multiplies stay ``torch.matmul`` (cuBLAS).

Importing this package never imports Triton; :func:`load` does, and returns the kernel
functions. Triton chooses between compiling a kernel and interpreting it (``TRITON_INTERPRET=1``:
NumPy on CPU tensors, slow, for tests) when the kernel, or Triton's own library at ``import
triton``, is decorated, and PyTorch imports Triton early (``torch._dynamo``, e.g. when an
optimizer is created). So this package, imported by the model module, sets
``TRITON_INTERPRET=1`` on a machine without CUDA as long as Triton is not yet imported; the
variable only concerns Triton (which can do nothing else there) and child processes inherit it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import SimpleNamespace

from common.device import cuda_available

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


def _interpret_without_cuda() -> None:
    unset = os.environ.get("TRITON_INTERPRET") != "1" and "triton" not in sys.modules
    if unset and not cuda_available():
        os.environ["TRITON_INTERPRET"] = "1"


_interpret_without_cuda()


def triton_available() -> bool:
    """Whether the ``triton`` package can be imported here."""
    return importlib.util.find_spec("triton") is not None


def interpreting() -> bool:
    """Whether the kernels run in Triton's interpreter (no CUDA, or ``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET") == "1" or not cuda_available()


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
