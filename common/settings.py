"""Every environment variable the project reads, read in this one module.

Each function reads its variable on every call, so tests and notebooks may set it at any time.

| variable | meaning |
| --- | --- |
| ``RESEARCH_ASSETS_DIR`` | relocates the whole ``assets/`` tree |
| ``RESEARCH_DEBUG`` | a CLI shows the traceback of an internal error instead of one line |
| ``HF_ENDPOINT`` | the Hugging Face Hub to download from (tests point it at a local stand-in) |
| ``HF_TOKEN`` | the Hub token (never echoed) |
| ``HF_HUB_OFFLINE`` | no network for the Hub |
| ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` | set by ``torchrun`` for data-parallel runs |
| ``CUDA_VISIBLE_DEVICES`` | the GPUs a process may use |
| ``OMP_NUM_THREADS`` | CPU threads of a process |
| ``RESEARCH_LEASE_TIMEOUT_S`` | seconds before another host's unrenewed run lease is taken over |
| ``TRITON_INTERPRET`` | Triton kernels run in Triton's interpreter (on CPU tensors) |
"""

from __future__ import annotations

import os

ASSETS_ENV_VAR = "RESEARCH_ASSETS_DIR"
DEBUG_ENV_VAR = "RESEARCH_DEBUG"
DEFAULT_HF_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "true", "yes", "on"}


def _get(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else None


def assets_dir_override() -> str | None:
    """``$RESEARCH_ASSETS_DIR``, or None when unset."""
    return _get(ASSETS_ENV_VAR)


def debug() -> bool:
    """Whether ``RESEARCH_DEBUG`` asks for tracebacks."""
    return (_get(DEBUG_ENV_VAR) or "").lower() in _TRUE | {"2"}


def hf_endpoint() -> str:
    """The Hub's address: ``$HF_ENDPOINT`` or the public Hub."""
    return (_get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT).rstrip("/")


def hf_token() -> str | None:
    """``$HF_TOKEN``, or None."""
    return _get("HF_TOKEN")


def hf_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids network access."""
    return (_get("HF_HUB_OFFLINE") or "").lower() in _TRUE


def env_int(name: str) -> int | None:
    """An integer environment variable (``RANK``, ``WORLD_SIZE``, ...), or None when unset."""
    value = _get(name)
    return int(value) if value is not None else None


def dist_rank() -> int:
    """This process's data-parallel rank (0 outside ``torchrun``)."""
    return env_int("RANK") or 0


def omp_threads() -> int | None:
    """``$OMP_NUM_THREADS``, or None when unset."""
    return env_int("OMP_NUM_THREADS")


def visible_cuda_devices() -> str | None:
    """``$CUDA_VISIBLE_DEVICES`` as given, or None when unset."""
    return os.environ.get("CUDA_VISIBLE_DEVICES")


def triton_interpret() -> bool:
    """Whether Triton kernels run in the interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET") == "1"


LEASE_TIMEOUT_ENV_VAR = "RESEARCH_LEASE_TIMEOUT_S"
DEFAULT_LEASE_TIMEOUT_S = 600.0


def lease_timeout_s() -> float:
    """Seconds another host's run lease may go unrenewed before a trainer takes it over
    (``$RESEARCH_LEASE_TIMEOUT_S``, default 600)."""
    value = _get(LEASE_TIMEOUT_ENV_VAR)
    return float(value) if value is not None else DEFAULT_LEASE_TIMEOUT_S
