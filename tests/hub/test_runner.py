"""The commands' runner: Ctrl-C mid-transfer, and a --help that imports no Hub code.

End to end against the local Hub stand-in (``tests/hub_server.py``) where a test names ``hub``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.hub_fixtures import (
    DATASET,
    MODEL,
    REPO_ROOT,
    HubCli,
)
from tests.hub_repos import (
    BIG_DATASET_REPO,
    BIG_MODEL_REPO,
    MODEL_REPO,
)
from tests.hub_server import Fault, HubServer


def _interrupt_when_flowing(
    hub: HubServer, proc: subprocess.Popen, filename: str
) -> tuple[float, str]:
    """Send SIGINT once ``filename`` is flowing; return the seconds until ``proc`` ends, stderr."""
    deadline = time.monotonic() + 60
    while not any(r.filename == filename and r.bytes_sent >= 20_000 for r in hub.requests("cdn")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, stderr = proc.communicate(timeout=60)
    return time.monotonic() - sent, stderr


def _interrupt_while_stalled(hub_cli: HubCli, hub: HubServer, tool: str, filename: str, *args):
    hub.add_fault(Fault(filename, "stall", at_byte=500))
    proc = hub_cli.popen(tool, *args)
    deadline = time.monotonic() + 60
    while not any(r.filename == filename and r.bytes_sent >= 500 for r in hub.requests("cdn")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    hub.release()
    return proc.returncode, out, err


@pytest.mark.slow
def test_ctrl_c_mid_download_leaves_nothing_behind(hub_cli: HubCli, hub: HubServer):
    code, out, err = _interrupt_while_stalled(
        hub_cli, hub, MODEL, "model.safetensors", "--repo-id", MODEL_REPO
    )
    assert code == 130, err
    assert "Interrupted" in err and "Traceback" not in err
    assert list((hub_cli.assets / "models").rglob("*")) == []


@pytest.mark.slow
@pytest.mark.parametrize("how", ["cli", "python-model", "python-dataset"])
def test_ctrl_c_during_a_throttled_download(hub_cli: HubCli, hub: HubServer, how: str):
    if how == "python-dataset":
        filename, target = "data/train-00000-of-00001.parquet", f"datasets/{BIG_DATASET_REPO}"
        code = f"from common.data import download_dataset; download_dataset({BIG_DATASET_REPO!r})"
    else:
        filename, target = "model.safetensors", f"models/{BIG_MODEL_REPO}"
        code = f"from common.data import download_model; download_model({BIG_MODEL_REPO!r})"
    hub.add_fault(Fault(filename, "throttle", rate=100_000, times=None))  # 15 s for the file
    if how == "cli":
        proc = hub_cli.popen(MODEL, "--repo-id", BIG_MODEL_REPO)
    else:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env=hub_cli.env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    seconds, stderr = _interrupt_when_flowing(hub, proc, filename)
    print(f"\n{how}: ended {seconds:.2f}s after SIGINT")
    assert seconds < 5, seconds
    if how == "cli":
        assert proc.returncode == 130 and "Interrupted" in stderr, stderr
    else:  # KeyboardInterrupt reaches the caller; Python then ends by SIGINT
        assert proc.returncode == -signal.SIGINT and "KeyboardInterrupt" in stderr, stderr
    assert not (hub_cli.assets / target).exists()
    assert hub_cli.partials() == []


@pytest.mark.parametrize("tool", [MODEL, DATASET])
def test_help_is_instant_and_imports_no_hub_library(tool: str):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(REPO_ROOT / "tools" / tool), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "--revision" in result.stdout and "--output-dir" in result.stdout
    modules = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    imported = {name.split(".")[0] for name in modules}
    assert not imported & {"huggingface_hub", "datasets", "torch", "httpx2", "pandas"}
    # The command-line convention (common.utils.cli) and the shared options, never the Hub code.
    assert {m for m in modules if m.startswith("common.hub")} <= {
        "common.hub",
        "common.hub.options",
    }
    assert "common.utils.cli" in modules
