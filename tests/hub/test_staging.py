"""The partial folder: a failed, cut-off or disk-full download keeps nothing.

End to end against the local Hub stand-in (``tests/hub_server.py``) where a test names ``hub``.
"""

from __future__ import annotations

import contextlib
import resource
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub_fixtures import (
    DATASET,
    MODEL,
    CliResult,
    HubCli,
    assert_clean_error,
    repo_file,
)
from tests.hub_repos import (
    BIG_DATASET_REPO,
    BIG_MODEL_REPO,
    DATASET_REPO,
    MODEL_REPO,
)
from tests.hub_server import Fault, HubServer


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def _limit_file_size_500k() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (500_000, 500_000))


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "1m") -> Iterator[bool]:
    """Mount a ``size`` tmpfs on ``folder`` (True), or yield False where mounting is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.slow
def test_cut_off_response_is_retried_transparently(hub_cli: HubCli, hub: HubServer):
    hub.add_fault(Fault("model.safetensors", "cut", at_byte=1000, times=1))
    result = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--filename", "model.safetensors")
    assert result.returncode == 0, result.output
    data = (hub_cli.assets / "models" / MODEL_REPO / "model.safetensors").read_bytes()
    assert data == repo_file(hub, MODEL_REPO, "model.safetensors")
    transfers = [(r.status, r.cut, r.bytes_sent) for r in hub.requests(server="cdn")]
    assert transfers == [(200, True, 1000), (200, False, len(data))]


@pytest.mark.slow
def test_failed_transfer_leaves_no_asset_and_a_retry_succeeds(hub_cli: HubCli, hub: HubServer):
    # The body is cut mid-way, and the library's own retry gets a server error.
    hub.add_fault(Fault("model.safetensors", "cut", at_byte=1000, times=1))
    hub.add_fault(Fault("model.safetensors", "status", status=503, times=1))
    failed = hub_cli.run(MODEL, "--repo-id", MODEL_REPO)
    assert_clean_error(failed, "503", "Nothing was kept", "run the command again", code=1)
    assert not (hub_cli.assets / "models" / MODEL_REPO).exists()
    assert hub_cli.partials() == []

    retry = hub_cli.run(MODEL, "--repo-id", MODEL_REPO)
    assert retry.returncode == 0, retry.output
    assert (hub_cli.assets / "models" / MODEL_REPO / "model.safetensors").read_bytes() == (
        repo_file(hub, MODEL_REPO, "model.safetensors")
    )


@pytest.mark.slow
def test_dataset_failed_transfer_leaves_no_asset(hub_cli: HubCli, hub: HubServer):
    name = "data/validation-00000-of-00001.parquet"
    hub.add_fault(Fault(name, "cut", at_byte=100, times=1))
    hub.add_fault(Fault(name, "status", status=500, times=1))
    failed = hub_cli.run(DATASET, "--name", DATASET_REPO)
    assert_clean_error(failed, "500", "Nothing was kept", code=1)
    assert list((hub_cli.assets / "datasets").iterdir()) == []

    retry = hub_cli.run(DATASET, "--name", DATASET_REPO)
    assert retry.returncode == 0, retry.output
    assert (hub_cli.assets / "datasets" / DATASET_REPO / "dataset_dict.json").is_file()


def test_disk_full_is_reported_and_cleaned_up(hub_cli: HubCli, hub: HubServer):
    result = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, preexec_fn=_limit_file_size)
    assert_clean_error(result, "file size limit", "free there", "Nothing was kept", code=1)
    assert list((hub_cli.assets / "models").iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("tool", [MODEL, DATASET])
def test_full_disk_gives_the_disk_full_message(hub_cli: HubCli, hub: HubServer, tool: str):
    kind, repo, flag = (
        ("models", BIG_MODEL_REPO, "--repo-id")
        if tool == MODEL
        else ("datasets", BIG_DATASET_REPO, "--name")
    )
    with small_disk(hub_cli.assets / kind) as mounted:
        if mounted:
            result = hub_cli.run(tool, flag, repo)
            expected = "The disk is full"
        else:  # no permission to mount: the same failure injected through a file size limit
            result: CliResult = hub_cli.run(tool, flag, repo, preexec_fn=_limit_file_size_500k)
            expected = "file size limit"
        assert_clean_error(result, expected, "free there", "Nothing was kept", code=1)
        assert list((hub_cli.assets / kind).iterdir()) == []
