"""The one place that imports Triton for the kernels.

Triton reads ``TRITON_INTERPRET`` when it decorates a kernel (``@triton.jit``, including its own
standard library at ``import triton``). The package sets it on a machine without CUDA when it is
imported (see :mod:`projects.custom_transformer.kernels`); here it is set, or its absence
reported, at the latest moment it can still act: before the first ``import triton``.
``INTERPRET`` tells the kernels which mode they were built in.
"""

from __future__ import annotations

import os
import sys

from common.device import cuda_available

__all__ = ["INTERPRET", "next_power_of_2", "tl", "triton", "wants_interpreter"]


def wants_interpreter() -> bool:
    """True without CUDA or with ``TRITON_INTERPRET=1`` already set."""
    return os.environ.get("TRITON_INTERPRET") == "1" or not cuda_available()


INTERPRET = wants_interpreter()
if INTERPRET and os.environ.get("TRITON_INTERPRET") != "1":
    if "triton" in sys.modules:
        raise RuntimeError(
            "triton was imported (by torch._dynamo, perhaps) before the custom transformer's "
            "kernels could switch it to its interpreter (there is no CUDA device): import "
            "projects.custom_transformer.model first, or set TRITON_INTERPRET=1 before starting "
            "Python"
        )
    os.environ["TRITON_INTERPRET"] = "1"

import triton  # noqa: E402
import triton.language as tl  # noqa: E402


def next_power_of_2(n: int) -> int:
    """Smallest power of two >= ``n`` (block dimensions of ``tl.arange`` are powers of two)."""
    return 1 << max(0, int(n) - 1).bit_length()
