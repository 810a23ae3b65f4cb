"""Random number generator state: save, restore and seed every generator a run draws from.

The generators are torch's CPU generator, every CUDA device's generator (once this process has
initialized CUDA), Python's ``random`` and NumPy's global generator.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import torch

from common import device


def rng_state() -> dict[str, Any]:
    """This process's torch (CPU and every CUDA device), Python and NumPy RNG states."""
    state: dict[str, Any] = {
        "torch_cpu": torch.get_rng_state(),
        "python": _python_rng_state(),
        "numpy": _numpy_rng_state(),
    }
    if device.cuda_initialized():
        state["torch_cuda_all"] = device.cuda_rng_states()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what ``rng_state`` returned (entries that are absent are left alone).

    ``torch_cuda`` (one tensor: the current device's state, as older checkpoints hold it) is
    restored when ``torch_cuda_all`` (every device's) is absent.
    """
    if state.get("torch_cpu") is not None:
        torch.set_rng_state(state["torch_cpu"].to("cpu", torch.uint8))
    if state.get("torch_cuda_all"):
        device.set_cuda_rng_states(list(state["torch_cuda_all"]))
    elif state.get("torch_cuda") is not None and device.cuda_available():
        device.set_current_cuda_rng_state(state["torch_cuda"])
    if state.get("python") is not None:
        version, internal, gauss_next = state["python"]
        random.setstate((version, tuple(internal), gauss_next))
    if state.get("numpy") is not None:
        import numpy as np

        name, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and every CUDA device), Python's ``random`` and NumPy's global generator."""
    import numpy as np

    random.seed(seed)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def _python_rng_state() -> list[Any]:
    version, internal, gauss_next = random.getstate()
    return [version, list(internal), gauss_next]


def _numpy_rng_state() -> list[Any]:
    import numpy as np

    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]
