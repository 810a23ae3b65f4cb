"""The machine's rows of ``tools/test_env.py``: Python, platform, torch and every device it sees,
the assets folders, DuckDB on Parquet, and the Hugging Face Hub endpoint.

Imports only the standard library at import time (torch, ``common`` and duckdb inside the checks),
so that the tool's ``--help`` stays instant and its import worker sees only what it probes.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
MIN_PYTHON = (3, 10)
DEFAULT_HF_ENDPOINT = "https://huggingface.co"
HUB_TIMEOUT_S = 2.0

PASS, FAIL, WARN, INFO = "PASS", "FAIL", "WARN", "INFO"


@dataclass
class Check:
    """One row of the report. ``FAIL`` is used only for required checks, so any FAIL exits 1."""

    check: str
    status: str
    detail: str


def describe_error(exc: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on macOS / Windows
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------
# Python, platform


def python_check() -> Check:
    """Python >= 3.10, with the interpreter's path and whether it runs in a virtualenv."""
    version = platform.python_version()
    venv = ", virtualenv" if sys.prefix != sys.base_prefix else ""
    detail = f"{version} ({platform.python_implementation()}{venv}) at {sys.executable}"
    if sys.version_info[:2] < MIN_PYTHON:
        wanted = ".".join(map(str, MIN_PYTHON))
        return Check("python", FAIL, f"{detail}; need >= {wanted}")
    return Check("python", PASS, detail)


def platform_check() -> Check:
    """OS, architecture, CPU count and memory (information only)."""
    parts = [f"{platform.system()} {platform.release()} {platform.machine()}"]
    parts.append(f"{usable_cpus()} CPUs")
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        parts.append(f"{memory / 2**30:.1f} GiB RAM")
    except (ValueError, OSError, AttributeError):
        pass
    return Check("platform", INFO, ", ".join(parts))


# ---------------------------------------------------------------------------------------------
# torch


def _tensor_check(torch: Any, device: str) -> str:
    """Run a small matmul and softmax on ``device``; raise AssertionError if the result is wrong."""
    rows = [[float(4 * i + k) for k in range(4)] for i in range(3)]
    expected = [[sum(x * y for x, y in zip(r1, r2)) for r2 in rows] for r1 in rows]
    a = torch.arange(12, dtype=torch.float32, device=device).reshape(3, 4)
    product = (a @ a.T).cpu().tolist()
    row_sums = torch.softmax(a, dim=1).sum(dim=1).cpu().tolist()
    if product != expected:
        raise AssertionError(f"3x4 @ 4x3 matmul gave {product}, expected {expected}")
    if any(abs(s - 1.0) > 1e-5 for s in row_sums):
        raise AssertionError(f"softmax rows sum to {row_sums}, expected 1")
    return "matmul + softmax correct"


def _device_module() -> Any:
    """``common.device`` (every ``torch.cuda`` call of the project) from this checkout."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import common.device

    return common.device


def torch_checks(torch: Any) -> list[Check]:
    """The torch build row and one row per available device."""
    cuda_build = torch.version.cuda
    hip_build = getattr(torch.version, "hip", None)
    build = f"CUDA {cuda_build} build" if cuda_build else "CPU-only build"
    if hip_build:
        build = f"ROCm {hip_build} build"
    cuda = _device_module()
    cuda_problem: str | None = None
    cuda_count = cuda.device_count()  # 0 without CUDA, also when a broken driver raises
    if (cuda_build or hip_build) and not cuda_count:
        cuda_problem = "GPU build of torch, but no usable GPU is visible"
    mps_backend = getattr(torch.backends, "mps", None)
    mps = bool(mps_backend and mps_backend.is_available())
    cuda_text = f"yes, {cuda_count} device(s)" if cuda_count else "no"
    detail = (
        f"{torch.__version__}, {build}; CUDA available: {cuda_text}; "
        f"MPS available: {'yes' if mps else 'no'}; {torch.get_num_threads()} CPU threads"
    )
    checks = [Check("torch build", PASS, detail)]
    if cuda_problem:
        checks.append(Check("cuda", WARN, cuda_problem))

    devices = ["cpu"] + [f"cuda:{i}" for i in range(cuda_count)] + (["mps"] if mps else [])
    for device in devices:
        described = _describe_device(torch, device)
        try:
            result = _tensor_check(torch, device)
        except Exception as exc:
            checks.append(Check(f"device {device}", FAIL, f"{described}{describe_error(exc)}"))
        else:
            checks.append(Check(f"device {device}", PASS, f"{described}{result}"))
    return checks


def _describe_device(torch: Any, device: str) -> str:
    """Name and memory of a CUDA device (empty for cpu/mps or when unavailable), ending in '; '."""
    if not device.startswith("cuda"):
        return ""
    index = int(device.split(":")[1])
    cuda = _device_module()
    try:
        props = cuda.device_properties(index)
        if props is None:
            return "properties unavailable (no such CUDA device); "
        text = f"{props['name']}, {props['total_memory_mb'] / 1024:.1f} GiB"
        try:
            free = cuda.free_memory_mb(index)
            if free is not None:
                text += f" ({free / 1024:.1f} GiB free)"
        except Exception:
            pass
        major, minor = props["capability"]
        return f"{text}, compute capability {major}.{minor}; "
    except Exception as exc:
        return f"properties unavailable ({describe_error(exc)}); "


# ---------------------------------------------------------------------------------------------
# Assets, DuckDB, Hub


def assets_checks() -> list[Check]:
    """Each assets folder of ``common.paths``: created if missing, then a probe file written,
    read back and deleted."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    try:
        from common.paths import ASSET_DIR_GETTERS, ASSETS_ENV_VAR
    except Exception as exc:
        return [Check("assets", FAIL, f"common.paths not importable: {describe_error(exc)}")]

    override = os.environ.get(ASSETS_ENV_VAR)
    checks: list[Check] = []
    for name, getter in ASSET_DIR_GETTERS.items():
        label = f"assets: {name}"
        try:
            folder = getter()
            probe = folder / f".test_env_probe_{os.getpid()}"
            probe.write_bytes(b"probe")
            try:
                if probe.read_bytes() != b"probe":
                    raise OSError(f"probe file {probe} read back wrong contents")
            finally:
                probe.unlink()
        except OSError as exc:
            hint = f" ({ASSETS_ENV_VAR}={override})" if override else ""
            checks.append(Check(label, FAIL, f"not writable: {describe_error(exc)}{hint}"))
        else:
            suffix = f" (from {ASSETS_ENV_VAR})" if override and name == "assets" else ""
            checks.append(Check(label, PASS, f"{folder}{suffix}"))
    return checks


def duckdb_parquet_check() -> Check:
    """DuckDB writes a small Parquet file in a temporary folder and reads the same values back."""
    label = "duckdb parquet"
    try:
        import duckdb
    except Exception as exc:
        return Check(label, FAIL, f"duckdb not importable: {describe_error(exc)}")
    n = 1000
    try:
        with tempfile.TemporaryDirectory(prefix="test_env_") as tmp:
            path = Path(tmp) / "probe.parquet"
            quoted = str(path).replace("'", "''")
            con = duckdb.connect()
            try:
                con.execute(
                    "COPY (SELECT i, i * i AS sq, 'row' || i AS name, i / 4 AS quarter "
                    f"FROM range({n}) t(i)) TO '{quoted}' (FORMAT parquet)"
                )
                size = path.stat().st_size
                got = con.execute(
                    "SELECT count(*), sum(sq), max(name), sum(quarter), "
                    f"count(DISTINCT name) FROM read_parquet('{quoted}')"
                ).fetchone()
            finally:
                con.close()
    except Exception as exc:
        return Check(label, FAIL, describe_error(exc))
    expected = (n, sum(i * i for i in range(n)), "row999", sum(i / 4 for i in range(n)), n)
    if got is None or tuple(got) != expected:
        return Check(label, FAIL, f"read back {got}, expected {expected}")
    return Check(label, PASS, f"duckdb {duckdb.__version__}: wrote and read {n} rows ({size} B)")


class HubProbe:
    """Asks the Hub endpoint for a response in a background thread (DNS included)."""

    def __init__(self, skip: bool) -> None:
        self.endpoint = os.environ.get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT
        self.result: Check | None = None
        self.thread: threading.Thread | None = None
        self.started = time.monotonic()
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
        if skip:
            self.result = Check("hub endpoint", INFO, f"{self.endpoint}: skipped (--skip-network)")
        elif offline:
            self.result = Check("hub endpoint", INFO, f"{self.endpoint}: skipped (HF_HUB_OFFLINE)")
        else:
            self.thread = threading.Thread(target=self._probe, daemon=True)
            self.thread.start()

    def _probe(self) -> None:
        start = time.monotonic()
        request = urllib.request.Request(self.endpoint, method="HEAD")
        request.add_header("User-Agent", "research-test-env")
        try:
            with urllib.request.urlopen(request, timeout=HUB_TIMEOUT_S) as response:
                code = response.status
        except urllib.error.HTTPError as exc:  # the server answered: reachable
            code = exc.code
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            self.result = Check("hub endpoint", WARN, f"{self.endpoint}: unreachable ({reason})")
            return
        elapsed = time.monotonic() - start
        self.result = Check(
            "hub endpoint", INFO, f"{self.endpoint}: reachable (HTTP {code} in {elapsed:.2f} s)"
        )

    def collect(self) -> Check:
        """The result, waiting at most until the probe's deadline."""
        if self.thread is not None:
            deadline = self.started + HUB_TIMEOUT_S + 0.5
            self.thread.join(max(0.0, deadline - time.monotonic()))
        if self.result is None:
            return Check(
                "hub endpoint", WARN, f"{self.endpoint}: no answer within {HUB_TIMEOUT_S:.0f} s"
            )
        return self.result
