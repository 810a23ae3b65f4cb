"""Pytest fixtures for the Hub stand-in (``tests/hub_server.py``), imported by tests/conftest.py.

- ``hub``: the running stand-in with the repos of ``tests/hub_repos.py`` (one server per session;
  its request log and faults are reset for each test).
- ``hub_cli``: runs ``tools/*.py`` as subprocesses with ``HF_ENDPOINT`` on the stand-in, a fresh
  ``HF_HOME`` per test and the test's ``RESEARCH_ASSETS_DIR``; no ``HF_TOKEN`` unless given.

Helpers for assertions: :func:`assert_clean_error`, :func:`asset_files`, :func:`repo_file`,
:func:`manifest`, :func:`snapshot`; :func:`fake_asset` makes a data set folder without network.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.hub_repos import build_demo_repos
from tests.hub_server import HubServer

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL = "download_hf_model.py"
DATASET = "download_hf_dataset.py"
_ERROR_LINE = re.compile(r"^(?:[\w.-]+: )?error: ")
_HF_VARIABLES = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HUB_CACHE",
    "HF_DATASETS_CACHE",
    "HF_TOKEN_PATH",
    "HF_HUB_ENABLE_HF_TRANSFER",
)


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def errors(self) -> list[str]:
        """The error lines of stderr: ``<tool>: error: ...`` (``common.utils.cli``)."""
        return [line for line in self.stderr.splitlines() if _ERROR_LINE.match(line)]


def assert_clean_error(result: CliResult, *fragments: str, code: int = 2) -> str:
    """Exit ``code`` (2: the user's mistake; 1: network, disk or server), exactly one ``error:``
    line containing ``fragments``, no traceback."""
    assert result.returncode == code, result.output
    assert "Traceback" not in result.output, result.output
    assert len(result.errors) == 1, result.stderr
    message = result.errors[0]
    for fragment in fragments:
        assert fragment in message, message
    return message


def asset_files(folder: Path) -> set[str]:
    """The files of an asset folder, without its manifest."""
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != ".download.json"
    }


def manifest(folder: Path) -> dict:
    """The asset folder's ``.download.json``."""
    return json.loads((folder / ".download.json").read_text())


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (manifest included) with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def fake_asset(folder: Path, **manifest: object) -> Path:
    """A data set folder as ``download_dataset`` leaves it, made without network."""
    folder.mkdir(parents=True)
    (folder / "dataset_dict.json").write_text('{"splits": []}')
    record = {"kind": "dataset", "revision": "main", "repo_id": folder.name, **manifest}
    (folder / ".download.json").write_text(json.dumps(record))
    return folder


def free_port() -> int:
    """A TCP port nothing listens on (for an unreachable endpoint)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def repo_file(
    hub: HubServer, repo_id: str, path: str, revision: str = "main", kind: str = "model"
) -> bytes:
    """The bytes of ``path`` in the stand-in's repo at ``revision``."""
    commit = hub.repos[(kind, repo_id)].resolve(revision)
    assert commit is not None
    return commit.files[path].content


@dataclass
class HubCli:
    hub: HubServer
    env: dict[str, str]
    assets: Path
    hf_home: Path

    def command(self, tool: str, *args: str) -> list[str]:
        return [sys.executable, str(REPO_ROOT / "tools" / tool), *args]

    def environment(self, **extra: str | None) -> dict[str, str]:
        env = dict(self.env)
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def run(
        self,
        tool: str,
        *args: str,
        env: dict[str, str | None] | None = None,
        timeout: float = 120,
        preexec_fn: Callable[[], Any] | None = None,
    ) -> CliResult:
        start = time.monotonic()
        proc = subprocess.run(
            self.command(tool, *args),
            env=self.environment(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO_ROOT,
            preexec_fn=preexec_fn,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)

    def popen(
        self, tool: str, *args: str, env: dict[str, str | None] | None = None
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(tool, *args),
            env=self.environment(**(env or {})),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )

    def python(
        self,
        code: str,
        *args: str,
        timeout: float = 120,
        env: dict[str, str | None] | None = None,
    ) -> CliResult:
        """Run ``python -c code args`` in the same environment as the tools (plus ``env``)."""
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            env=self.environment(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO_ROOT,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)

    def partials(self) -> list[Path]:
        """Leftover partial download folders anywhere under the assets folder."""
        return [p for p in self.assets.rglob("*") if ".partial-" in p.name]


@pytest.fixture(scope="session")
def hub_server() -> Iterator[HubServer]:
    with HubServer() as server:
        server.commits = build_demo_repos(server)  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def hub(hub_server: HubServer) -> Iterator[HubServer]:
    hub_server.clear_log()
    hub_server.clear_faults()
    yield hub_server
    hub_server.clear_faults()


@pytest.fixture
def hub_cli(hub: HubServer, tmp_path: Path) -> HubCli:
    env = {k: v for k, v in os.environ.items() if k not in _HF_VARIABLES}
    hf_home = tmp_path / "hf_home"
    env.update(hub.client_env(str(hf_home)))
    env["PYTHONUNBUFFERED"] = "1"
    assets = Path(os.environ["RESEARCH_ASSETS_DIR"])
    return HubCli(hub, env, assets, hf_home)
