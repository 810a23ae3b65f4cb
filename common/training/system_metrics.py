"""System metrics stored with every evaluation row, as ``sys__*`` columns.

- ``sys__rss_mb``: the process's resident memory;
- ``sys__cpu_percent``: the process's CPU use since the previous evaluation (all threads, so
  above 100 with several cores busy);
- on CUDA, ``sys__cuda_max_allocated_mb`` (the peak since the previous evaluation) and
  ``sys__cuda_reserved_mb`` through ``common.device``, and ``sys__gpu_util_percent`` where
  NVML answers (``nvidia-ml-py``; left out without a driver).

A metric that cannot be read is left out of the row rather than stored as a wrong number.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from common import device as cuda
from common import settings

_MB = 1024.0 * 1024.0


class SystemMetrics:
    """Samples the ``sys__*`` columns of one process training on ``device``."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self._process: Any = None
        with contextlib.suppress(Exception):  # psutil missing or no /proc: no CPU columns
            import psutil

            self._process = psutil.Process()
            self._process.cpu_percent(None)  # starts the first interval
        self._nvml: Any = None
        self._gpu: Any = None
        if cuda.is_cuda(self.device):
            self._gpu = self._nvml_handle()

    def _nvml_handle(self) -> Any:
        """The NVML handle of this process's GPU, or None where NVML does not answer."""
        try:
            import pynvml

            pynvml.nvmlInit()
            index = self.device.index if self.device.index is not None else 0
            visible = settings.visible_cuda_devices()
            if visible:
                ids = [v.strip() for v in visible.split(",") if v.strip()]
                if index < len(ids):
                    if not ids[index].isdigit():  # a UUID or MIG name
                        return pynvml.nvmlDeviceGetHandleByUUID(ids[index])
                    index = int(ids[index])
            self._nvml = pynvml
            return pynvml.nvmlDeviceGetHandleByIndex(index)
        except Exception:  # noqa: BLE001 - no library, no driver, no such device
            return None

    def sample(self) -> dict[str, float]:
        """The columns now (and, for peaks and CPU use, since the previous sample)."""
        row: dict[str, float] = {}
        if self._process is not None:
            with contextlib.suppress(Exception):
                row["sys__rss_mb"] = self._process.memory_info().rss / _MB
                row["sys__cpu_percent"] = float(self._process.cpu_percent(None))
        if cuda.is_cuda(self.device):
            peak = cuda.max_allocated_mb(self.device)
            reserved = cuda.reserved_mb(self.device)
            if peak is not None:
                row["sys__cuda_max_allocated_mb"] = peak
                cuda.reset_peak_memory(self.device)
            if reserved is not None:
                row["sys__cuda_reserved_mb"] = reserved
            if self._gpu is not None:
                with contextlib.suppress(Exception):
                    rates = self._nvml.nvmlDeviceGetUtilizationRates(self._gpu)
                    row["sys__gpu_util_percent"] = float(rates.gpu)
        return row
