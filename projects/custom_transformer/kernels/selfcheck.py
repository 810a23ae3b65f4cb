"""Check each Triton kernel on this machine before a run uses it, and remember the verdict.

``model.kernels: auto`` on CUDA takes a kernel only after it has passed here: compiled, its
forward and backward run on small shapes of the run's dtype(s) and compared with its ``ops.py``
pair within the tolerances of ``tests/test_kernels.py`` (float32: ``atol = rtol = 1e-5``;
bfloat16/float16: no further from the float32 ``ops.py`` result than twice ``ops.py``'s own
error in that dtype, plus ``1e-2`` of the largest reference value). A kernel that fails to
compile, raises or disagrees is replaced by its ``ops.py`` pair (one log line naming it and the
reason) and the run goes on; ``model.kernels: triton`` raises :class:`KernelCheckError` instead.

Verdicts are cached in ``<assets>/cache/kernel_selfcheck.json`` under a key made of the GPU's
name, compute capability and driver, the torch and Triton versions, a hash of the kernels' source
and the dtype, so a machine pays for the check once. Passes and mismatches are stored;
exceptions are not (they may be the moment's: memory held by another process), so they are
tried again by the next run. Within a process each (device, dtype) is checked once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from common import device as cuda
from common.paths import get_cache_dir
from common.utils.atomic import atomic_write_text
from projects.custom_transformer import ops

__all__ = [
    "CACHE_FILE",
    "GROUPS",
    "KernelCheckError",
    "cache_key",
    "check_group",
    "verified_kernels",
]

log = logging.getLogger(__name__)

CACHE_FILE = "kernel_selfcheck.json"

#: Each kernel (a module of this package) and the functions of the kernel set it provides;
#: a kernel passes or falls back as a whole.
GROUPS: dict[str, tuple[str, ...]] = {
    "attention": ("attention_forward", "attention_backward"),
    "rmsnorm": ("rmsnorm_forward", "rmsnorm_backward"),
    "swiglu": ("swiglu_forward", "swiglu_backward"),
    "cross_entropy": (
        "cross_entropy_forward",
        "cross_entropy_backward",
        "lm_head_cross_entropy_forward",
        "lm_head_cross_entropy_backward",
    ),
}
_SOURCES = ("_triton.py", "attention.py", "rmsnorm.py", "swiglu.py", "cross_entropy.py")
_F32_TOL = 1e-5
_MEMO: dict[tuple[str, torch.dtype], dict[str, str | None]] = {}


class KernelCheckError(RuntimeError):
    """A Triton kernel failed its self-check where ``model.kernels: triton`` requires it."""


class _Mismatch(AssertionError):
    """The kernel ran but its numbers are outside the tolerance."""


# ----------------------------------------------------------------------------- comparison
def _close(
    name: str, got: torch.Tensor, own: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype
) -> None:
    """``got`` (Triton) against ``ref`` (float32 ``ops.py``); ``own``: ``ops.py`` run in the
    checked ``dtype`` (outputs kept in float32, like the loss, get that dtype's rule too)."""
    ref = ref.float()
    err = (got.float() - ref).abs().max().item() if ref.numel() else 0.0
    scale = ref.abs().max().item() if ref.numel() else 0.0
    if dtype == torch.float32:
        limit = _F32_TOL + _F32_TOL * scale
    else:
        limit = 2 * (own.float() - ref).abs().max().item() + 1e-2 * scale
    if not err <= limit:  # also catches NaN
        raise _Mismatch(f"{name}: max error {err:.3g} > {limit:.3g}")


def _compare(names: Iterable[str], got: Any, own: Any, ref: Any, dtype: torch.dtype) -> None:
    for name, g, o, r in zip(names, got, own, ref, strict=True):
        if g is None and r is None:
            continue
        if g is None or r is None or g.shape != r.shape:
            raise _Mismatch(f"{name}: shape {None if g is None else tuple(g.shape)} expected")
        _close(name, g, o, r, dtype)


def _randn(*shape: int, seed: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).to(device)


# ----------------------------------------------------------------------------- one check per kernel
# Each takes the kernel set, the device and the dtype, raises _Mismatch or the kernel's exception.
# The reference is ops.py in float32 on the float32 inputs, as in tests/test_kernels.py.
def _check_attention(k: SimpleNamespace, device: torch.device, dtype: torch.dtype) -> None:
    for shape in ((2, 3, 37, 16), (1, 2, 70, 64)):
        qf, kf, vf, df = (_randn(*shape, seed=i, device=device) for i in range(4))
        q, kk, v, dout = (t.to(dtype) for t in (qf, kf, vf, df))
        y, lse = k.attention_forward(q, kk, v)
        y_own = ops.attention_forward(q, kk, v)
        y_ref = ops.attention_forward(qf, kf, vf)
        _compare(["attention y"], [y], [y_own], [y_ref], dtype)
        got = k.attention_backward(dout, q, kk, v, y, lse)
        own = ops.attention_backward(dout, q, kk, v, y_own)
        ref = ops.attention_backward(df, qf, kf, vf, y_ref)
        _compare(["attention dq", "attention dk", "attention dv"], got, own, ref, dtype)


def _check_rmsnorm(k: SimpleNamespace, device: torch.device, dtype: torch.dtype) -> None:
    for shape, gain in (((3, 7, 37), False), ((9, 130), True)):
        xf = _randn(*shape, seed=1, device=device)
        df = _randn(*shape, seed=2, device=device)
        wf = 1 + 0.1 * _randn(shape[-1], seed=3, device=device) if gain else None
        x, dout = xf.to(dtype), df.to(dtype)
        w = None if wf is None else wf.to(dtype)
        y, rstd = k.rmsnorm_forward(x, w, 1e-5)
        y_own, rstd_own = ops.rmsnorm_forward(x, w, 1e-5)
        y_ref, rstd_ref = ops.rmsnorm_forward(xf, wf, 1e-5)
        _compare(
            ["rmsnorm y", "rmsnorm rstd"], [y, rstd], [y_own, rstd_own], [y_ref, rstd_ref], dtype
        )
        got = k.rmsnorm_backward(dout, x, w, 1e-5, rstd)
        own = ops.rmsnorm_backward(dout, x, w, 1e-5, rstd_own)
        ref = ops.rmsnorm_backward(df, xf, wf, 1e-5, rstd_ref)
        _compare(["rmsnorm dx", "rmsnorm dw"], got, own, ref, dtype)


def _check_swiglu(k: SimpleNamespace, device: torch.device, dtype: torch.dtype) -> None:
    gate_up_f = _randn(5, 11, 46, seed=1, device=device)
    dout_f = _randn(5, 11, 23, seed=2, device=device)
    gate_up, dout = gate_up_f.to(dtype), dout_f.to(dtype)
    y, stats = k.swiglu_forward(gate_up)
    y_own, stats_own = ops.swiglu_forward(gate_up)
    y_ref, stats_ref = ops.swiglu_forward(gate_up_f)
    _compare(
        ["swiglu y", "swiglu stats"], [y, stats], [y_own, stats_own], [y_ref, stats_ref], dtype
    )
    got = k.swiglu_backward(dout, gate_up, stats)
    own = ops.swiglu_backward(dout, gate_up, stats_own)
    ref = ops.swiglu_backward(dout_f, gate_up_f, stats_ref)
    _compare(["swiglu dgate_up"], [got], [own], [ref], dtype)


def _check_cross_entropy(k: SimpleNamespace, device: torch.device, dtype: torch.dtype) -> None:
    n, d, vocab = 31, 24, 1500
    xf = _randn(n, d, seed=1, device=device)
    wf = 0.3 * _randn(vocab, d, seed=2, device=device)
    x, w = xf.to(dtype), wf.to(dtype)
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, vocab, (n,), generator=g)
    labels[::4] = ops.IGNORE_INDEX
    labels[1] = vocab - 1
    labels = labels.to(device)
    dloss = torch.tensor(0.8, device=device)
    logits, loss, lse = k.lm_head_cross_entropy_forward(x, w, labels)
    logits_own, loss_own = ops.lm_head_cross_entropy_forward(x, w, labels)
    logits_ref, loss_ref = ops.lm_head_cross_entropy_forward(xf, wf, labels)
    _compare(
        ["lm_head logits", "lm_head loss"],
        [logits, loss],
        [logits_own, loss_own],
        [logits_ref, loss_ref],
        dtype,
    )
    got = k.lm_head_cross_entropy_backward(None, dloss, x, w, labels, logits, lse)
    own = ops.lm_head_cross_entropy_backward(None, dloss, x, w, labels, logits_own)
    ref = ops.lm_head_cross_entropy_backward(None, dloss, xf, wf, labels, logits_ref)
    _compare(["lm_head dx", "lm_head dw"], got, own, ref, dtype)


_CHECKS: dict[str, Callable[[SimpleNamespace, torch.device, torch.dtype], None]] = {
    "attention": _check_attention,
    "rmsnorm": _check_rmsnorm,
    "swiglu": _check_swiglu,
    "cross_entropy": _check_cross_entropy,
}


def check_group(
    group: str, kernels: SimpleNamespace, device: torch.device, dtype: torch.dtype
) -> str | None:
    """Run one kernel's check; None when it passes, else the reason (``mismatch: ...`` or
    ``ExceptionClass: message``)."""
    try:
        _CHECKS[group](kernels, device, dtype)
        cuda.synchronize(device)
    except _Mismatch as exc:
        return f"mismatch: {exc}"
    except Exception as exc:  # noqa: BLE001 - any failure of a kernel means "use ops.py"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"{type(exc).__name__}: {first[:300]}"
    return None


# ----------------------------------------------------------------------------- cache
def _source_hash() -> str:
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in (*_SOURCES, "selfcheck.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def cache_key(device: torch.device, dtype: torch.dtype) -> str:
    """What a verdict depends on: GPU, driver, torch, Triton, the kernels' source, the dtype."""
    from projects.custom_transformer.kernels._triton import triton

    parts = {
        "gpu": cuda.device_name(device) if device.type == "cuda" else device.type,
        "capability": cuda.capability(device) if device.type == "cuda" else None,
        "driver": cuda.driver_version() if device.type == "cuda" else None,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "source": _source_hash(),
        "dtype": str(dtype).removeprefix("torch."),
    }
    return json.dumps(parts, sort_keys=True)


def _cache_path() -> Path:
    return get_cache_dir() / CACHE_FILE


def _read_cache() -> dict[str, dict[str, str | None]]:
    try:
        data = json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}  # absent or unreadable: the check runs again and rewrites it
    return data if isinstance(data, dict) else {}


def _write_cache(key: str, verdicts: dict[str, str | None]) -> None:
    data = _read_cache()
    data[key] = verdicts
    try:
        atomic_write_text(_cache_path(), json.dumps(data, indent=1, sort_keys=True) + "\n")
    except OSError as exc:  # a read-only cache costs a re-check next run, nothing else
        log.warning("kernel self-check: cannot write %s: %s", _cache_path(), exc)


def _verdicts(kernels: SimpleNamespace, device: torch.device, dtype: torch.dtype) -> dict:
    """Per kernel None (passed) or the reason, from the memo, the cache or a fresh check."""
    memo_key = (str(device), dtype)
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    key = cache_key(device, dtype)
    cached = _read_cache().get(key, {})
    verdicts: dict[str, str | None] = {}
    fresh = False
    for group in GROUPS:
        if group in cached and (cached[group] is None or str(cached[group]).startswith("mis")):
            verdicts[group] = cached[group]
        else:
            verdicts[group] = check_group(group, kernels, device, dtype)
            fresh = True
    storable = {g: r for g, r in verdicts.items() if r is None or r.startswith("mismatch")}
    if fresh and storable:
        _write_cache(key, storable)
    _MEMO[memo_key] = verdicts
    return verdicts


def verified_kernels(
    kernels: SimpleNamespace,
    fallback: SimpleNamespace,
    device: torch.device,
    dtypes: Iterable[torch.dtype],
    strict: bool = False,
) -> tuple[SimpleNamespace, list[str]]:
    """The kernel set with every kernel that failed its check on ``device`` in any of
    ``dtypes`` replaced by ``fallback``'s functions.

    Args:
        kernels: The Triton kernel set (:func:`projects.custom_transformer.kernels.load`).
        fallback: The ``ops.py`` set under the same interface (the model's ``TORCH_KERNELS``).
        device: Where the run's tensors are.
        dtypes: The dtypes the kernels will see (parameters and autocast).
        strict: Raise instead of falling back (``model.kernels: triton``).

    Returns:
        ``(kernel set, failed)``: ``failed`` names each replaced kernel with its reason. Each
        failure is logged once per process (warning).

    Raises:
        KernelCheckError: ``strict`` and a kernel failed.
    """
    failed: dict[str, str] = {}
    for dtype in dict.fromkeys(dtypes):
        for group, reason in _verdicts(kernels, device, dtype).items():
            if reason is not None and group not in failed:
                failed[group] = f"{str(dtype).removeprefix('torch.')}: {reason}"
    lines = [f"{group} ({reason})" for group, reason in failed.items()]
    if strict and failed:
        raise KernelCheckError(
            "model.kernels=triton: Triton kernel(s) failed their self-check on this machine: "
            + "; ".join(lines)
            + " (model.kernels: auto uses ops.py for these)"
        )
    if not failed:
        return kernels, []
    functions = {name: getattr(kernels, name) for names in GROUPS.values() for name in names}
    for group in failed:
        for name in GROUPS[group]:
            if hasattr(fallback, name):
                functions[name] = getattr(fallback, name)
            else:
                del functions[name]
    mixed = SimpleNamespace(name="triton+ops(" + ",".join(failed) + ")", **functions)
    for group, reason in failed.items():
        if (group, reason) not in _LOGGED:
            _LOGGED.add((group, reason))
            log.warning("Triton kernel %s failed its self-check, using ops.py: %s", group, reason)
    return mixed, lines


_LOGGED: set[tuple[str, str]] = set()
