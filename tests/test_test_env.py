"""tools/test_env.py: the environment check passes here, and fails on a missing package or an
unwritable assets folder; an unreachable Hub endpoint never fails it."""

from __future__ import annotations

import http.server
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TOOL = REPO_ROOT / "tools" / "test_env.py"
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: connection refused at once
# A proxy would answer for the local endpoints below; the tool itself honours proxies.
PROXY_VARS = [v for n in ("http", "https", "all") for v in (f"{n}_proxy", f"{n.upper()}_PROXY")]

REQUIRED_PACKAGE_ROWS = [
    "package torch",
    "package transformers",
    "package datasets",
    "package huggingface_hub",
    "package tokenizers",
    "package safetensors",
    "package pandas",
    "package pyarrow",
    "package duckdb",
    "package yaml (pyyaml)",
    "package matplotlib",
    "package tqdm",
    "package numpy",
]
ASSET_ROWS = ["assets: assets", "assets: datasets", "assets: models", "assets: experiments"]
ASSET_ROWS += ["assets: checkpoints"]

# Hides packages from every import in the subprocess, as if they were not installed: the
# interpreter's path finder is replaced by one that does not see the names in TEST_ENV_HIDE.
# (importlib.util.find_spec then returns None, exactly as for an uninstalled package.)
HIDING_SITECUSTOMIZE = """
import os, sys
from importlib.machinery import PathFinder

_HIDDEN = set(filter(None, os.environ.get("TEST_ENV_HIDE", "").split(",")))


class _HidingPathFinder(PathFinder):
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname.partition(".")[0] in _HIDDEN:
            return None
        return PathFinder.find_spec(fullname, path, target)


sys.meta_path[:] = [_HidingPathFinder if f is PathFinder else f for f in sys.meta_path]
"""


CRASHING_MODULE = """
import os, sys
sys.stderr.write("simulated crash while importing {name}\\n")
sys.stderr.flush()
os.abort()
"""


def run_tool(
    *args: str,
    tmp_path: Path,
    hide: tuple[str, ...] = (),
    crash: tuple[str, ...] = (),
    **env_overrides: str,
) -> subprocess.CompletedProcess[str]:
    """Run the tool from a directory outside the repo, with assets in ``tmp_path/assets``.

    ``hide``: packages that look uninstalled; ``crash``: packages whose import kills the process.
    """
    env = dict(os.environ)
    env["RESEARCH_ASSETS_DIR"] = str(tmp_path / "assets")
    env["HF_ENDPOINT"] = UNREACHABLE
    for name in ("HF_HUB_OFFLINE", *PROXY_VARS):
        env.pop(name, None)
    if hide or crash:
        site_dir = tmp_path / "pythonpath"
        site_dir.mkdir(exist_ok=True)
        (site_dir / "sitecustomize.py").write_text(HIDING_SITECUSTOMIZE)
        for name in crash:
            (site_dir / name).mkdir()
            (site_dir / name / "__init__.py").write_text(CRASHING_MODULE.format(name=name))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site_dir), env.get("PYTHONPATH")]))
        env["TEST_ENV_HIDE"] = ",".join(hide)
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, str(TOOL), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def parse_table(stdout: str) -> dict[str, tuple[str, str]]:
    """{check: (status, detail)} from the printed table."""
    rows: dict[str, tuple[str, str]] = {}
    for line in stdout.splitlines():
        match = re.match(r"^(\S.*?)\s+(PASS|FAIL|WARN|INFO)\s+(.*)$", line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
    return rows


def summary_line(stdout: str) -> str:
    """The verdict line after the table."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith(("environment OK", "FAILED:"))]
    assert len(lines) == 1, stdout
    return lines[0]


@pytest.mark.slow
def test_passes_here_and_an_unreachable_hub_is_only_a_warning(tmp_path: Path) -> None:
    proc = run_tool(tmp_path=tmp_path)  # HF_ENDPOINT is unreachable
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    rows = parse_table(proc.stdout)
    assert proc.stdout.splitlines()[0].split() == ["CHECK", "STATUS", "DETAIL"]

    assert rows["python"][0] == "PASS"
    assert rows["python"][1].startswith(".".join(map(str, sys.version_info[:3])))
    for name in REQUIRED_PACKAGE_ROWS:
        assert rows[name][0] in ("PASS", "WARN"), (name, rows[name])  # WARN: version vs pyproject
    torch_version = importlib.metadata.version("torch")
    assert rows["package torch"][1].startswith(torch_version)
    assert rows["package common (research)"][0] != "FAIL"
    for name in ("pytest", "black", "ruff", "mypy"):
        assert rows[f"package {name}"][0] == "PASS"
    assert rows["torch build"][0] == "PASS"
    assert torch_version in rows["torch build"][1]
    assert rows["device cpu"] == ("PASS", "matmul + softmax correct")
    for name in ASSET_ROWS:
        assert rows[name][0] == "PASS", rows[name]
        assert rows[name][1].startswith(str((tmp_path / "assets").resolve()))
    assert not list((tmp_path / "assets").rglob(".test_env_probe*")), "probe files left behind"
    assert rows["duckdb parquet"][0] == "PASS"
    status, detail = rows["hub endpoint"]
    assert status == "WARN"
    assert detail.startswith(f"{UNREACHABLE}: unreachable")
    assert not any(status == "FAIL" for status, _ in rows.values())
    assert summary_line(proc.stdout).startswith("environment OK (")


@pytest.mark.slow
def test_missing_required_package_fails_naming_it(tmp_path: Path) -> None:
    # duckdb is required; mypy is an optional dev tool (only reported without --dev).
    proc = run_tool("--skip-network", tmp_path=tmp_path, hide=("duckdb", "mypy"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    rows = parse_table(proc.stdout)
    status, detail = rows["package duckdb"]
    assert status == "FAIL"
    assert "No module named 'duckdb'" in detail
    assert rows["duckdb parquet"][0] == "FAIL"
    assert rows["package mypy"][0] == "WARN"
    assert rows["package torch"][0] == "PASS"
    assert rows["device cpu"][0] == "PASS"
    summary = summary_line(proc.stdout)
    assert summary.startswith("FAILED: 2 required check(s) failed: package duckdb, duckdb parquet")
    assert "mypy" not in summary
    assert proc.stdout.rstrip().endswith("`.venv/bin/python tools/test_env.py`")  # the hint


@pytest.mark.slow
def test_missing_torch_and_crashing_import_with_dev_tools_required(tmp_path: Path) -> None:
    # Without torch this run is quick, so it also covers --dev and an import that kills the
    # interpreter (ruff, imported second to last; mypy comes after it in the same worker).
    proc = run_tool(
        "--skip-network", "--dev", tmp_path=tmp_path, hide=("torch", "black"), crash=("ruff",)
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    rows = parse_table(proc.stdout)
    assert rows["package torch"][0] == "FAIL"
    assert "No module named 'torch'" in rows["package torch"][1]
    assert rows["torch build"] == ("INFO", "skipped: torch is not importable")
    assert "device cpu" not in rows
    # transformers and datasets import fine without torch.
    assert rows["package transformers"][0] != "FAIL"
    assert rows["package datasets"][0] != "FAIL"
    assert rows["package black"][0] == "FAIL"
    status, detail = rows["package ruff"]
    assert status == "FAIL"
    assert "import crashed the interpreter" in detail
    assert "simulated crash while importing ruff" in detail
    assert rows["package mypy"][0] == "FAIL"
    assert rows["package mypy"][1] == "not checked: the import of ruff stopped the worker first"
    assert rows["package pytest"][0] == "PASS"
    assert "package torch, package black, package ruff, package mypy" in summary_line(proc.stdout)


@pytest.mark.slow
def test_unwritable_assets_dir_fails(tmp_path: Path) -> None:
    # A file where the assets folder should be (chmod would not stop root, who runs the tests).
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file\n")
    proc = run_tool("--json", "--skip-network", tmp_path=tmp_path, RESEARCH_ASSETS_DIR=str(blocker))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    assert sum(report["counts"].values()) == len(report["checks"])
    checks = {c["check"]: c for c in report["checks"]}
    for name in ASSET_ROWS:
        assert checks[name]["status"] == "FAIL"
        assert "not writable" in checks[name]["detail"]
        assert str(blocker) in checks[name]["detail"]
    failed = {name for name, c in checks.items() if c["status"] == "FAIL"}
    assert set(ASSET_ROWS) <= failed
    assert all(name.startswith("assets: ") for name in failed)
    assert checks["package torch"]["status"] == "PASS"
    assert checks["device cpu"]["status"] == "PASS"
    assert checks["duckdb parquet"]["status"] == "PASS"
    assert checks["hub endpoint"] == {
        "check": "hub endpoint",
        "status": "INFO",
        "detail": f"{UNREACHABLE}: skipped (--skip-network)",
    }


def test_bad_argument_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_tool("--no-such-option", tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr
    assert "Traceback" not in proc.stderr


# In-process checks of the pieces (the tool is a script, so load it from its path).


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("research_test_env_tool", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class _HeadHandler(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def local_endpoint() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HeadHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_hub_probe_reports_reachable_endpoint(
    tool: ModuleType, local_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", local_endpoint)
    for name in ("HF_HUB_OFFLINE", *PROXY_VARS):
        monkeypatch.delenv(name, raising=False)
    check = tool.HubProbe(skip=False).collect()
    assert check.status == "INFO"
    assert check.detail.startswith(f"{local_endpoint}: reachable (HTTP 200")


def test_hub_probe_unreachable_and_offline(tool: ModuleType, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_ENDPOINT", UNREACHABLE)
    for name in ("HF_HUB_OFFLINE", *PROXY_VARS):
        monkeypatch.delenv(name, raising=False)
    assert tool.HubProbe(skip=False).collect().status == "WARN"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = tool.HubProbe(skip=False).collect()
    assert (offline.status, offline.detail) == ("INFO", f"{UNREACHABLE}: skipped (HF_HUB_OFFLINE)")


def test_version_outside_pyproject_specifier_warns(tool: ModuleType) -> None:
    specs = {"datasets": "==5.2.0", "torch": ">=2.4"}
    assert tool._version_note("datasets", "5.2.0", specs) == ("PASS", "")
    assert tool._version_note("datasets", "5.1.0", specs) == (
        "WARN",
        "; pyproject.toml wants ==5.2.0",
    )
    assert tool._version_note("torch", "2.13.0+cpu", specs) == ("PASS", "")
    assert tool._version_note("numpy", "1.0", specs) == ("PASS", "")
    assert tool._pyproject_requirements()["huggingface-hub"].startswith("==")


def test_summary_names_failed_checks(tool: ModuleType) -> None:
    checks = [
        tool.Check("python", "PASS", "3.11"),
        tool.Check("package duckdb", "FAIL", "not importable"),
        tool.Check("hub endpoint", "WARN", "unreachable"),
    ]
    summary = tool.summarize(checks, 2.0)
    assert summary == (
        "FAILED: 1 required check(s) failed: package duckdb "
        "(1 PASS, 1 FAIL, 1 WARN, 0 INFO; 2.0 s)"
    )
    table = tool.format_table(checks).splitlines()
    assert table[0].split() == ["CHECK", "STATUS", "DETAIL"]
    assert table[3] == "package duckdb  FAIL    not importable"
