"""Every ``torch.cuda`` call of the project, behind one small module.

Each function answers sensibly on a machine without CUDA (no GPU, a CPU build of torch), so the
code that uses it runs and is tested on CPU; on CUDA it is a thin call into ``torch.cuda``.
Imports torch on first use only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_MB = 1024.0 * 1024.0


def _torch() -> Any:
    import torch

    return torch


def cuda_available() -> bool:
    """Whether a CUDA device can be used (False on a CPU build, without a driver, or on error)."""
    torch = _torch()
    try:
        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken driver means "no CUDA"
        return False


def device_count() -> int:
    """How many CUDA devices this process sees (0 without CUDA)."""
    return int(_torch().cuda.device_count()) if cuda_available() else 0


def is_cuda(device: torch.device | str | None) -> bool:
    """Whether ``device`` names a CUDA device."""
    if device is None:
        return False
    return str(device).startswith("cuda")


def set_device(device: torch.device | str) -> None:
    """Make ``device`` the current CUDA device (no-op for other devices)."""
    if is_cuda(device):
        _torch().cuda.set_device(device)


def device_name(device: torch.device | str | int | None = None) -> str | None:
    """The GPU's name (``"NVIDIA H100 80GB HBM3"``), or None without CUDA."""
    if not cuda_available():
        return None
    return str(_torch().cuda.get_device_name(device))


def capability(device: torch.device | str | int | None = None) -> tuple[int, int] | None:
    """The GPU's compute capability, e.g. ``(9, 0)``, or None without CUDA."""
    if not cuda_available():
        return None
    major, minor = _torch().cuda.get_device_capability(device)
    return int(major), int(minor)


def total_memory_mb(device: torch.device | str | int | None = None) -> float | None:
    """The GPU's memory in MiB, or None without CUDA."""
    if not cuda_available():
        return None
    return float(_torch().cuda.get_device_properties(device).total_memory) / _MB


def free_memory_mb(device: torch.device | str | int | None = None) -> float | None:
    """Free GPU memory in MiB as the driver reports it, or None without CUDA."""
    if not cuda_available():
        return None
    free, _ = _torch().cuda.mem_get_info(device)
    return float(free) / _MB


def bf16_supported() -> bool:
    """Whether the current GPU computes in bfloat16 (False without CUDA)."""
    return cuda_available() and bool(_torch().cuda.is_bf16_supported())


def synchronize(device: torch.device | str | None = None) -> None:
    """Wait for the GPU's queued work (no-op on other devices)."""
    if is_cuda(device) and cuda_available():
        _torch().cuda.synchronize(device)


def reset_peak_memory(device: torch.device | str | None = None) -> None:
    """Start a new peak-memory measurement (no-op on other devices)."""
    if is_cuda(device) and cuda_available():
        _torch().cuda.reset_peak_memory_stats(device)


def max_allocated_mb(device: torch.device | str | None = None) -> float | None:
    """Peak memory allocated by tensors since the last reset, in MiB; None off CUDA."""
    if not (is_cuda(device) and cuda_available()):
        return None
    return float(_torch().cuda.max_memory_allocated(device)) / _MB


def reserved_mb(device: torch.device | str | None = None) -> float | None:
    """Memory held by the caching allocator, in MiB; None off CUDA."""
    if not (is_cuda(device) and cuda_available()):
        return None
    return float(_torch().cuda.memory_reserved(device)) / _MB


def empty_cache() -> None:
    """Return cached GPU memory to the driver (no-op without CUDA)."""
    if cuda_available():
        _torch().cuda.empty_cache()


def cuda_rng_states() -> list[torch.Tensor] | None:
    """The RNG state of every visible CUDA device, or None without CUDA."""
    if not cuda_available():
        return None
    return [state.cpu() for state in _torch().cuda.get_rng_state_all()]


def set_cuda_rng_states(states: list[torch.Tensor] | None) -> None:
    """Restore what :func:`cuda_rng_states` returned (no-op without CUDA or without states)."""
    if not states or not cuda_available():
        return
    torch = _torch()
    count = min(len(states), device_count())
    for index in range(count):
        torch.cuda.set_rng_state(states[index].to("cpu", torch.uint8), index)


def manual_seed_all(seed: int) -> None:
    """Seed every CUDA generator (no-op without CUDA)."""
    if cuda_available():
        _torch().cuda.manual_seed_all(seed)


@contextlib.contextmanager
def autocast(device: torch.device | str, dtype: torch.dtype | None) -> Iterator[None]:
    """Mixed precision on CUDA with ``dtype``; nothing elsewhere or when ``dtype`` is None."""
    if dtype is None or not is_cuda(device):
        yield
        return
    with _torch().autocast(device_type="cuda", dtype=dtype):
        yield


def grad_scaler(dtype: torch.dtype | None) -> Any:
    """A gradient scaler for float16 autocast on CUDA, else None."""
    torch = _torch()
    if dtype is torch.float16 and cuda_available():
        return torch.amp.GradScaler("cuda")
    return None


def cuda_initialized() -> bool:
    """Whether this process has already initialized CUDA (False without CUDA)."""
    return cuda_available() and bool(_torch().cuda.is_initialized())


def set_current_cuda_rng_state(state: torch.Tensor) -> None:
    """Restore the current CUDA device's RNG state (no-op without CUDA)."""
    if cuda_available():
        torch = _torch()
        torch.cuda.set_rng_state(state.to("cpu", torch.uint8))


def driver_version() -> str | None:
    """The NVIDIA driver's version (``"570.124.06"``) through NVML, or None without a driver or
    without ``pynvml`` (nvidia-ml-py)."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver (NVMLError_LibraryNotFound and kin)
        return None
    try:
        version = pynvml.nvmlSystemGetDriverVersion()
    except Exception:  # noqa: BLE001
        return None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    return version.decode() if isinstance(version, bytes) else str(version)


def cuda_version() -> str | None:
    """The CUDA version torch was built with (``"12.8"``), or None for a CPU build."""
    version = _torch().version.cuda
    return None if version is None else str(version)


def memory_allocated_mb(device: torch.device | str | None = None) -> float | None:
    """Memory held by live tensors now, in MiB; None off CUDA."""
    if not (is_cuda(device) and cuda_available()):
        return None
    return float(_torch().cuda.memory_allocated(device)) / _MB


def device_properties(index: int) -> dict[str, Any] | None:
    """Name, memory (MiB), compute capability and multiprocessor count of CUDA device
    ``index``, or None without CUDA or without that device."""
    if not (0 <= index < device_count()):
        return None
    props = _torch().cuda.get_device_properties(index)
    return {
        "name": str(props.name),
        "total_memory_mb": float(props.total_memory) / _MB,
        "capability": (int(props.major), int(props.minor)),
        "multiprocessors": int(props.multi_processor_count),
    }
