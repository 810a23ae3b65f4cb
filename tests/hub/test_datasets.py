"""Data set downloads: save_to_disk, config, split, revision, dry run.

End to end against the local Hub stand-in (``tests/hub_server.py``) where a test names ``hub``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hub_fixtures import (
    DATASET,
    REPO_ROOT,
    HubCli,
    assert_clean_error,
    fake_asset,
    free_port,
    repo_file,
)
from tests.hub_repos import (
    DATASET_REPO,
    WMT14_REPO,
)
from tests.hub_server import HubServer


@pytest.mark.slow
def test_dataset_first_download_repeat_and_offline(hub_cli: HubCli, hub: HubServer):
    result = hub_cli.run(DATASET, "--name", DATASET_REPO)
    assert result.returncode == 0, result.output
    folder = hub_cli.assets / "datasets" / DATASET_REPO
    assert (folder / "dataset_dict.json").is_file()
    assert json.loads((folder / ".download.json").read_text())["num_rows"] == {
        "train": 10,
        "validation": 3,
    }
    summary = result.stdout.strip().splitlines()
    assert len(summary) == 1 and summary[0].startswith(f"Downloaded {DATASET_REPO}@main")
    assert "2 splits (train 10, validation 3 rows)" in summary[0]
    assert "Generating train split" in result.stderr  # progress bars
    # Parquet files of the default config only, through the CDN origin; nothing left the machine.
    fetched = sorted(r.filename for r in hub.downloads() if r.server == "cdn")
    assert fetched == [
        "data/train-00000-of-00001.parquet",
        "data/validation-00000-of-00001.parquet",
    ]
    assert hub.requests(server="proxy") == []
    assert hub_cli.partials() == []

    hub.clear_log()
    again = hub_cli.run(DATASET, "--name", DATASET_REPO)
    assert again.returncode == 0 and again.stdout.startswith("Already downloaded")
    offline = hub_cli.run(DATASET, "--name", DATASET_REPO, env={"HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 0 and offline.stdout.startswith("Already downloaded")
    assert hub.requests() == []

    # The Python API returns the saved data set, and the README's load_from_disk line loads it.
    check = (
        "import sys\n"
        "from datasets import load_from_disk\n"
        "from common.data import download_dataset, get_datasets_dir\n"
        "d = download_dataset(sys.argv[1])\n"
        "same = load_from_disk(get_datasets_dir() / sys.argv[1])\n"
        "assert same['train']['text'] == d['train']['text']\n"
        "print(type(d).__name__, d['train'].num_rows, d['validation'][0]['text'])\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", check, DATASET_REPO],
        capture_output=True,
        text=True,
        timeout=60,
        env=hub_cli.env,
        cwd=REPO_ROOT,
    )
    assert loaded.stdout.split(" ", 2) == [
        "DatasetDict",
        "10",
        "story validation number 0: once upon a time.\n",
    ], loaded.stderr
    assert hub.requests() == []

    missing = hub_cli.run(DATASET, "--name", "research-test/other", env={"HF_HUB_OFFLINE": "1"})
    assert_clean_error(missing, "Offline mode is on", "Available locally in ", DATASET_REPO)


@pytest.mark.slow
def test_dataset_config_split_and_revision_selection(hub_cli: HubCli, hub: HubServer):
    args = ("--name", DATASET_REPO, "--config", "poems", "--split", "validation")
    result = hub_cli.run(DATASET, *args, "--revision", "v1.0")
    assert result.returncode == 0, result.output
    folder = hub_cli.assets / "datasets" / DATASET_REPO  # config and split: in the manifest
    assert (folder / "state.json").is_file()  # a Dataset, not a DatasetDict
    manifest = json.loads((folder / ".download.json").read_text())
    assert manifest["commit"] == hub.commits[DATASET_REPO]["v1.0"]  # type: ignore[attr-defined]
    assert manifest["num_rows"] == {"validation": 2} and manifest["config"] == "poems"
    fetched = {r.filename for r in hub.downloads() if r.server == "cdn"}
    assert fetched == {"poems/validation-00000-of-00001.parquet"}  # only the requested split

    conflict = hub_cli.run(DATASET, *args, "--revision", "main")
    assert_clean_error(conflict, "revision 'v1.0'", "--force", code=2)

    hub.clear_log()
    forced = hub_cli.run(DATASET, *args, "--revision", "main", "--force")
    assert forced.returncode == 0, forced.output
    manifest = json.loads((folder / ".download.json").read_text())
    assert manifest["commit"] == hub.commits[DATASET_REPO]["main"]  # type: ignore[attr-defined]
    assert manifest["num_rows"] == {"validation": 3}
    assert "poems/validation-00000-of-00001.parquet" in {r.filename for r in hub.downloads()}
    assert hub_cli.partials() == []


@pytest.mark.slow
def test_dataset_dry_run_lists_the_split_files(hub_cli: HubCli, hub: HubServer):
    dry = hub_cli.run(
        DATASET, "--name", "wmt14", "--config", "de-en", "--split", "train", "--dry-run"
    )
    assert dry.returncode == 0, dry.output
    name = "de-en/train-00000-of-00001.parquet"
    size = len(repo_file(hub, WMT14_REPO, name, kind="dataset"))
    shown = f"{size / 1000:.1f} kB"
    assert f"  {name}  {shown}" in dry.stdout
    assert f"would fetch 1 file, {shown} of {WMT14_REPO}@main" in dry.stdout
    assert "malformed" not in dry.stderr  # the stand-in's card is well-formed
    assert "nothing was written" in dry.stdout
    assert not any(r.filename.endswith(".parquet") for r in hub.downloads())
    assert list((hub_cli.assets / "datasets").iterdir()) == []

    unknown = hub_cli.run(
        DATASET, "--name", "wmt14", "--config", "de-en", "--split", "dev", "--dry-run"
    )
    assert_clean_error(unknown, "has no split 'dev'", "test, train, validation")


def test_existing_asset_is_returned_without_network(isolated_assets: Path, monkeypatch):
    from common.data import AssetConflictError, dataset_path
    from common.data.hf_utils import ensure_dataset

    # An unreachable endpoint: any network access would fail.
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    folder = fake_asset(dataset_path("org/name"), repo_id="org/name", commit="a" * 40)
    (folder / ".download.json").write_text(
        json.dumps(
            {"kind": "dataset", "repo_id": "org/name", "revision": "main", "commit": "a" * 40}
        )
    )
    result = ensure_dataset("org/name")
    assert result.downloaded is False and result.folder == folder
    assert ensure_dataset("org/name", revision="aaaaaaa").downloaded is False
    with pytest.raises(AssetConflictError, match="revision 'main'"):
        ensure_dataset("org/name", revision="v2")
    stray = isolated_assets / "datasets" / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("keep")
    for force in (False, True):
        with pytest.raises(AssetConflictError, match="did not download"):
            ensure_dataset("org/stray", output_dir=stray, force=force)
    assert (stray / "notes.txt").read_text() == "keep"
