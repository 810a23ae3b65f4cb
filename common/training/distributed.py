"""Process-group set-up for single-process and ``torchrun`` data-parallel training.

``init_distributed()`` reads the variables ``torchrun`` sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``). Without them it is a no-op returning a single-process context; with them it joins
the process group (``nccl`` on CUDA, ``gloo`` otherwise) and binds the process to its GPU.
``cleanup_distributed()`` (or ``DistributedContext.cleanup()``) leaves the group at the end.

Collectives wait at most ``timeout_s`` (the config's ``training.dist_timeout_s``). Before each
collective a rank records in the process group's store what it is about to wait for
(``DistributedContext.mark``); when a collective fails (a rank died or hung),
``DistributedContext.failure`` reads those records to name the ranks that never arrived, and
stops a hung rank on this machine, so every rank ends within about ``timeout_s``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from common import device as cuda
from common import settings

T = TypeVar("T")


class DistributedFailure(RuntimeError):
    """Another rank died or did not answer within the timeout; this rank stopped too."""


_MARK_PREFIX = "research/at/"


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly single-process) run.

    Attributes:
        rank: global rank, 0 in a single process.
        local_rank: rank on this machine (selects the GPU).
        world_size: number of processes.
        device: the device this process computes on.
        is_main: whether this is rank 0, which alone writes checkpoints, experiments and logs.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    is_main: bool = True

    @property
    def is_distributed(self) -> bool:
        """Whether a process group with more than one member is active."""
        return self.world_size > 1 and dist.is_available() and dist.is_initialized()

    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process)."""
        if self.is_distributed:
            dist.barrier()

    def cleanup(self) -> None:
        """Leave the process group (no-op in a single process)."""
        cleanup_distributed()

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks in place (identity in a single process)."""
        return all_reduce_sum(tensor)

    def mark(self, what: str) -> None:
        """Record, for failure reports, the collective this rank is about to wait in."""
        if not self.is_distributed:
            return
        store = _store()
        if store is not None:
            record = f"{what}|{socket.gethostname()}|{os.getpid()}"
            store.set(f"{_MARK_PREFIX}{self.rank}", record)

    def failure(self, exc: BaseException) -> DistributedFailure | None:
        """A ``DistributedFailure`` naming the missing ranks if ``exc`` is a failed collective.

        A rank on this machine that never reached the collective this rank waited in is hung:
        it is stopped (SIGKILL) so that ``torchrun`` can end the job at once.
        """
        if not (self.world_size > 1 and _is_collective_failure(exc)):
            return None
        store = _store()
        records: dict[int, list[str]] = {}
        if store is not None:
            with_timeout = getattr(store, "set_timeout", None)
            if with_timeout is not None:
                with_timeout(timedelta(seconds=5))
            for rank in range(self.world_size):
                try:
                    key = f"{_MARK_PREFIX}{rank}"
                    if store.check([key]):
                        records[rank] = store.get(key).decode().split("|")
                except Exception:  # noqa: BLE001 - the store may be gone with a dead rank 0
                    break
        mine = records.get(self.rank, ["a collective"])[0]
        missing = [
            (rank, record)
            for rank, record in sorted(records.items())
            if rank != self.rank and (record[0] != mine or not _alive(record))
        ]
        for _rank, record in missing:
            if _local_pid(record) is not None:
                _kill(int(record[2]))
        cause = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        if missing:
            who = ", ".join(f"rank {rank} (last at {record[0]})" for rank, record in missing)
            message = (
                f"rank {self.rank} waited in {mine}, but {who} never arrived: that rank died or "
                f"hung; stopping every rank ({cause})"
            )
        else:
            message = (
                f"rank {self.rank} lost the other rank(s) in {mine}: a rank died or hung; "
                f"stopping every rank ({cause})"
            )
        return DistributedFailure(message)


def resolve_device(spec: str = "auto", local_rank: int = 0) -> torch.device:
    """The device named by a config's ``training.device``.

    Args:
        spec: ``"auto"`` (``cuda:<local_rank>`` when CUDA is available, else ``mps``, else
            ``cpu``), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
        local_rank: the GPU index ``"auto"`` and ``"cuda"`` use.

    Returns:
        The device. ``cuda``/``mps`` requested where unavailable fall back to CPU with a warning.

    Raises:
        ValueError: an unrecognized device string.
    """
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if cuda.cuda_available():
            return torch.device("cuda", local_rank % max(cuda.device_count(), 1))
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not cuda.cuda_available():
            warnings.warn(
                f"device {spec!r} requested but CUDA is unavailable; using CPU", stacklevel=2
            )
            return torch.device("cpu")
        if spec == "cuda":
            return torch.device("cuda", local_rank % cuda.device_count())
        resolved = torch.device(spec)
        if resolved.index is not None and resolved.index >= cuda.device_count():
            warnings.warn(
                f"device {spec!r} requested but only {cuda.device_count()} CUDA device(s) "
                "exist; using CPU",
                stacklevel=2,
            )
            return torch.device("cpu")
        return resolved
    if spec == "mps":
        if not torch.backends.mps.is_available():
            warnings.warn("device 'mps' requested but MPS is unavailable; using CPU", stacklevel=2)
            return torch.device("cpu")
        return torch.device("mps")
    raise ValueError(f"unknown device {spec!r}; use auto, cpu, cuda, cuda:N or mps")


def resolve_amp_dtype(
    dtype: str, device: torch.device, log: Callable[[str], None] = print
) -> torch.dtype | None:
    """The autocast dtype of ``training.dtype`` on ``device`` (None: float32), saying when it
    cannot be had: autocast applies on CUDA only; fp16 with a gradient scaler replaces bf16 on a
    GPU without bfloat16."""
    if dtype == "float32":
        return None
    if device.type != "cuda":
        log(f"training.dtype={dtype}: autocast applies on CUDA only; using float32")
        return None
    if dtype == "bf16" and not cuda.bf16_supported():
        log("bf16 is not supported on this GPU; using fp16 with a gradient scaler")
        return torch.float16
    return torch.bfloat16 if dtype == "bf16" else torch.float16


def _store() -> Any:
    try:
        return dist.distributed_c10d._get_default_store()
    except (RuntimeError, ValueError, AttributeError):
        return None


def _is_collective_failure(exc: BaseException) -> bool:
    dist_error = getattr(dist, "DistError", None)
    if dist_error is not None and isinstance(exc, dist_error):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        word in text
        for word in ("gloo", "nccl", "timed out", "connection reset", "connection closed")
    )


def _local_pid(record: list[str]) -> int | None:
    """The pid of a ``mark`` record written on this machine, else None."""
    if len(record) == 3 and record[1] == socket.gethostname() and record[2].isdigit():
        return int(record[2])
    return None


def _alive(record: list[str]) -> bool:
    """False when the rank's process is on this machine and gone or stopped (e.g. SIGSTOP)."""
    pid = _local_pid(record)
    if pid is None:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return not os.path.exists("/proc/self")  # no /proc: cannot tell
    return state not in ("T", "t", "Z", "X")


def _kill(pid: int) -> None:
    if pid != os.getpid():
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def init_distributed(
    device: str = "auto", backend: str | None = None, timeout_s: float = 300.0
) -> DistributedContext:
    """Join the ``torchrun`` process group if launched by it; otherwise a single-process context.

    Args:
        device: the config's ``training.device`` (see ``resolve_device``); under ``torchrun``
            each rank takes ``cuda:<LOCAL_RANK>``.
        backend: override the process-group backend (default ``nccl`` on CUDA, else ``gloo``).
        timeout_s: how long a collective waits for the other ranks.

    Returns:
        The context. Calling it again when the group already exists returns the same context.
    """
    world_size = settings.env_int("WORLD_SIZE") or 1
    rank = settings.env_int("RANK") or 0
    local_rank = settings.env_int("LOCAL_RANK")
    local_rank = rank if local_rank is None else local_rank
    dev = resolve_device(device, local_rank)
    if world_size <= 1:
        return DistributedContext(0, 0, 1, dev, True)
    if dev.type == "cuda":
        cuda.set_device(dev)
    if not dist.is_initialized():
        chosen = backend or ("nccl" if dev.type == "cuda" else "gloo")
        kwargs: dict[str, Any] = {"backend": chosen, "timeout": timedelta(seconds=timeout_s)}
        if chosen == "nccl":
            kwargs["device_id"] = dev
        dist.init_process_group(**kwargs)
    return DistributedContext(rank, local_rank, world_size, dev, rank == 0)


def wrap_model(
    model: torch.nn.Module, ctx: DistributedContext, *, compile: bool = False
) -> tuple[Any, torch.nn.Module]:
    """``(ddp_model, forward_model)`` for one training run: ``DistributedDataParallel`` under
    ``torchrun`` (which also broadcasts rank 0's weights; None otherwise), then ``torch.compile``
    when asked. Drop both when the run ends."""
    from torch.nn.parallel import DistributedDataParallel

    ddp = None
    forward: torch.nn.Module = model
    if ctx.is_distributed:
        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        ddp = DistributedDataParallel(model, device_ids=device_ids)
        forward = ddp
    if compile:
        forward = torch.compile(forward)  # type: ignore[assignment]
    return ddp, forward


def cleanup_distributed() -> None:
    """Destroy the process group if one is active."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()  # a DDP wrapper left in a reference cycle must go before its group
        dist.destroy_process_group()


def broadcast_object(obj: T, src: int = 0) -> T:
    """``obj`` as held by rank ``src`` on every rank (identity in a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def all_gather_object(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order (``[obj]`` in a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place and return it (identity in a single process)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor
