#!/usr/bin/env python
"""Check that this machine can run the monorepo, in a few seconds.

Checks the Python version; that every required package imports (with its version, and whether it
satisfies pyproject.toml); the torch build and a small tensor operation on every available device
(CPU, each CUDA GPU, MPS); that the assets folders exist and are writable; that DuckDB writes and
reads back a Parquet file; and whether the Hugging Face Hub endpoint answers (reported, never a
failure). Prints a table of the checks and exits with status 1 when a required check fails.

Usage:
    python tools/test_env.py                 # table
    python tools/test_env.py --json          # machine-readable
    python tools/test_env.py --skip-network  # do not contact the Hub endpoint
    python tools/test_env.py --dev           # also require pytest, black, ruff, mypy

This file holds the package checks, the report and the command line; the machine's checks are in
tools/machine_checks.py.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

if str(Path(__file__).resolve().parent) not in sys.path:  # loaded by path, not run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine_checks import (  # noqa: E402 (after the path)
    FAIL,
    INFO,
    PASS,
    REPO_ROOT,
    WARN,
    Check,
    HubProbe,
    assets_checks,
    describe_error,
    duckdb_parquet_check,
    platform_check,
    python_check,
    torch_checks,
    usable_cpus,
)

IMPORT_WORKER_TIMEOUT_S = 120.0

# Import name -> distribution name (as pyproject.toml spells it).
REQUIRED_PACKAGES: dict[str, str] = {
    "torch": "torch",
    "transformers": "transformers",
    "datasets": "datasets",
    "huggingface_hub": "huggingface_hub",
    "tokenizers": "tokenizers",
    "safetensors": "safetensors",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "duckdb": "duckdb",
    "yaml": "pyyaml",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
    "numpy": "numpy",
}
DEV_PACKAGES: dict[str, str] = {
    "pytest": "pytest",
    "black": "black",
    "ruff": "ruff",
    "mypy": "mypy",
}

_WORKER_MARK = "@@test_env@@ "


# ---------------------------------------------------------------------------------------------
# Package imports: a worker subprocess imports every package except torch while this process
# imports torch, so the two slowest imports overlap (and a package that breaks the interpreter on
# import cannot take the report down with it).


def _import_worker(names: list[str]) -> int:
    """Import each module in turn; print one marked JSON line per module."""
    for name in names:
        record: dict[str, Any] = {"name": name}
        try:
            module = importlib.import_module(name)
        except (Exception, SystemExit) as exc:
            record.update(ok=False, error=describe_error(exc))
        else:
            record.update(
                ok=True,
                file=getattr(module, "__file__", None),
                version=getattr(module, "__version__", None),
            )
        print(_WORKER_MARK + json.dumps(record), flush=True)
    return 0


@dataclass
class _ImportWorker:
    proc: subprocess.Popen[str]
    names: list[str]
    stderr: IO[str]  # a file, not a pipe: chatty imports must not block on a full pipe


def _start_import_worker(names: list[str]) -> _ImportWorker:
    stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed on collection)
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--import-worker", *names],
        stdout=subprocess.PIPE,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=str(REPO_ROOT),
    )
    return _ImportWorker(proc, names, stderr)


def _start_import_workers(names: list[str]) -> list[_ImportWorker]:
    """One worker on a machine with two cores or fewer (this process imports torch meanwhile);
    otherwise two, transformers and datasets (the slowest after torch) in different ones."""
    workers = 1 if usable_cpus() <= 2 else 2
    groups: list[list[str]] = [[] for _ in range(workers)]
    for i, name in enumerate(sorted(names, key=lambda n: n not in ("transformers", "datasets"))):
        groups[i % workers].append(name)
    return [_start_import_worker(group) for group in groups if group]


def _collect_import_worker(worker: _ImportWorker) -> dict[str, dict[str, Any]]:
    """Results by module name; modules the worker never reported get an explanatory error."""
    proc = worker.proc
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=IMPORT_WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        timed_out = True
    worker.stderr.seek(0)
    err = worker.stderr.read()
    worker.stderr.close()
    results: dict[str, dict[str, Any]] = {}
    for line in out.splitlines():
        if line.startswith(_WORKER_MARK):
            record = json.loads(line[len(_WORKER_MARK) :])
            results[record["name"]] = record
    missing = [name for name in worker.names if name not in results]
    if missing:
        stuck = missing[0]
        if timed_out:
            why = f"import did not finish within {IMPORT_WORKER_TIMEOUT_S:.0f} s"
        else:
            tail = err.strip().splitlines()[-1:] or ["no error output"]
            why = f"import crashed the interpreter (exit code {proc.returncode}): {tail[0]}"
        results[stuck] = {"name": stuck, "ok": False, "error": why}
        for name in missing[1:]:
            error = f"not checked: the import of {stuck} stopped the worker first"
            results[name] = {"name": name, "ok": False, "error": error, "unchecked": True}
    return results


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject_requirements() -> dict[str, str]:
    """Version specifiers from pyproject.toml by canonical distribution name ({} if unreadable)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: fall back to the installed metadata
        lines = importlib.metadata.requires("research") or []
    else:
        try:
            data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
        except (OSError, ValueError):
            return {}
        project = data.get("project", {})
        lines = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            lines.extend(extra)
    specs: dict[str, str] = {}
    for line in lines:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*([^;]*)", line)
        if match and match.group(3).strip():
            specs[_canonical(match.group(1))] = match.group(3).strip()
    return specs


def _version_note(dist: str, version: str | None, specs: dict[str, str]) -> tuple[str, str]:
    """(status, note) for an importable package: WARN when it violates pyproject's specifier."""
    spec = specs.get(_canonical(dist))
    if not spec or not version:
        return PASS, ""
    try:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
        from packaging.version import InvalidVersion, Version
    except ImportError:
        return PASS, ""
    try:
        if SpecifierSet(spec).contains(Version(version), prereleases=True):
            return PASS, ""
    except (InvalidSpecifier, InvalidVersion):
        return PASS, ""
    return WARN, f"; pyproject.toml wants {spec}"


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def package_check(
    name: str, dist: str, result: dict[str, Any], required: bool, specs: dict[str, str]
) -> Check:
    """The row for one package from its import result."""
    label = f"package {name}" if name == dist else f"package {name} ({dist})"
    installed = _dist_version(dist)
    if not result["ok"]:
        status = FAIL if required else WARN
        if result.get("unchecked"):
            return Check(label, status, result["error"])
        detail = f"not importable: {result['error']}"
        if installed:
            detail += f" (distribution {dist} {installed} is installed)"
        elif not required:
            detail = "not installed (optional dev tool; bash scripts/setup.sh installs it)"
        return Check(label, status, detail)
    version = installed or result.get("version") or "unknown version"
    status, note = _version_note(dist, installed or result.get("version"), specs)
    return Check(label, status, f"{version}{note}")


def common_check(result: dict[str, Any]) -> Check:
    """Whether ``common`` imports from anywhere (the editable install) and from this checkout."""
    label = "package common (research)"
    if not result["ok"]:
        return Check(label, FAIL, f"not importable: {result['error']}; run bash scripts/setup.sh")
    file = result.get("file")
    if file is None:
        return Check(
            label,
            WARN,
            "imports as a namespace package (stale editable install?); run bash scripts/setup.sh",
        )
    location = Path(file).resolve().parent
    if location != REPO_ROOT / "common":
        return Check(label, WARN, f"imports from {location}, not this checkout ({REPO_ROOT})")
    version = _dist_version("research") or "unknown version"
    return Check(label, PASS, f"{version}, editable from {location}")


# ---------------------------------------------------------------------------------------------
# Report


def run_checks(skip_network: bool = False, dev: bool = False) -> list[Check]:
    """Run every check and return the rows in report order.

    Args:
        skip_network: do not contact the Hub endpoint.
        dev: treat the dev tools (pytest, black, ruff, mypy) as required.

    Returns:
        The checks; any with status ``FAIL`` means a required check failed.
    """
    hub = HubProbe(skip=skip_network)
    worker_names = [n for n in REQUIRED_PACKAGES if n != "torch"] + ["common", *DEV_PACKAGES]
    workers = _start_import_workers(worker_names)

    checks = [python_check(), platform_check()]
    specs = _pyproject_requirements()

    torch_result: dict[str, Any]
    torch_module: Any = None
    try:
        import torch as torch_module

        torch_result = {"ok": True, "version": torch_module.__version__}
    except Exception as exc:
        torch_result = {"ok": False, "error": describe_error(exc)}
    later = (
        torch_checks(torch_module)
        if torch_module is not None
        else [Check("torch build", INFO, "skipped: torch is not importable")]
    )
    later += assets_checks()
    later.append(duckdb_parquet_check())

    imports: dict[str, dict[str, Any]] = {}
    for worker in workers:
        imports.update(_collect_import_worker(worker))
    imports["torch"] = torch_result
    for name, dist in REQUIRED_PACKAGES.items():
        checks.append(package_check(name, dist, imports[name], True, specs))
    checks.append(common_check(imports["common"]))
    for name, dist in DEV_PACKAGES.items():
        checks.append(package_check(name, dist, imports[name], dev, specs))
    checks += later
    checks.append(hub.collect())
    return checks


def summarize(checks: list[Check], elapsed: float) -> str:
    """One line: counts per status, the failed checks by name, and the wall time."""
    counts = {s: sum(c.status == s for c in checks) for s in (PASS, FAIL, WARN, INFO)}
    text = ", ".join(f"{n} {s}" for s, n in counts.items())
    failed = [c.check for c in checks if c.status == FAIL]
    if failed:
        verdict = f"FAILED: {len(failed)} required check(s) failed: {', '.join(failed)}"
    else:
        verdict = "environment OK"
    return f"{verdict} ({text}; {elapsed:.1f} s)"


def format_table(checks: list[Check]) -> str:
    """The checks as an aligned text table with a header."""
    header = Check("CHECK", "STATUS", "DETAIL")
    width = max(len(c.check) for c in [header, *checks])
    lines = [f"{header.check:<{width}}  {header.status:<6}  {header.detail}"]
    lines.append(f"{'-' * width}  {'-' * 6}  {'-' * 6}")
    lines += [f"{c.check:<{width}}  {c.status:<6}  {c.detail}" for c in checks]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the checks, print the table (or JSON); 1 if a required check failed, else 0."""
    parser = argparse.ArgumentParser(
        description="Check the environment: Python, packages, torch devices, assets folders, "
        "DuckDB/Parquet and the Hub endpoint. Exits 1 if a required check fails."
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--skip-network", action="store_true", help="do not contact the Hub endpoint"
    )
    parser.add_argument(
        "--dev", action="store_true", help="require the dev tools (pytest, black, ruff, mypy)"
    )
    parser.add_argument("--import-worker", nargs="+", metavar="MODULE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.import_worker:
        return _import_worker(args.import_worker)

    start = time.monotonic()
    checks = run_checks(skip_network=args.skip_network, dev=args.dev)
    elapsed = time.monotonic() - start
    ok = not any(c.status == FAIL for c in checks)
    if args.json:
        counts = {s: sum(c.status == s for c in checks) for s in (PASS, FAIL, WARN, INFO)}
        report = {
            "ok": ok,
            "elapsed_s": round(elapsed, 3),
            "counts": counts,
            "checks": [asdict(c) for c in checks],
        }
        print(json.dumps(report, indent=2))
    else:
        print(format_table(checks))
        print()
        print(summarize(checks, elapsed))
        if any(c.status == FAIL and c.check.startswith("package ") for c in checks):
            print(
                "hint: `bash scripts/setup.sh` installs everything into .venv; then run "
                "`.venv/bin/python tools/test_env.py`"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
