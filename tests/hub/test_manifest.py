"""The manifest's rules: the same asset is reused, another is refused or replaced,
a folder the tool did not write is never replaced or emptied.

End to end against the local Hub stand-in (``tests/hub_server.py``) where a test names ``hub``.
"""

from __future__ import annotations

import pytest

from tests.hub_fixtures import (
    DATASET,
    MODEL,
    HubCli,
    assert_clean_error,
    asset_files,
    manifest,
    repo_file,
    snapshot,
)
from tests.hub_repos import (
    ALIAS_REPO,
    MODEL_REPO,
    OTHER_REPO,
    SQUAD_REPO,
    WMT14_REPO,
    WMT14_ROWS,
)
from tests.hub_server import HubServer


@pytest.mark.slow
def test_two_model_repos_into_one_folder_are_refused_or_replaced(hub_cli: HubCli, hub: HubServer):
    folder = hub_cli.assets / "shared"
    first = hub_cli.run(MODEL, "--repo-id", OTHER_REPO, "--output-dir", str(folder))
    assert first.returncode == 0, first.output
    before = snapshot(folder)

    hub.clear_log()
    for args in (("--filename", "config.json"), (), ("--include", "*.json")):
        refused = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, *args, "--output-dir", str(folder))
        assert_clean_error(
            refused, f"holds model '{OTHER_REPO}'", f"asked for model '{MODEL_REPO}'", code=2
        )
        assert "--force" in refused.stderr and "--output-dir" in refused.stderr
    assert hub.requests() == []  # refused before any network access
    assert snapshot(folder) == before

    # Another revision of the same repo is refused too.
    pinned = hub_cli.run(
        MODEL, "--repo-id", OTHER_REPO, "--revision", "v9", "--output-dir", str(folder)
    )
    assert_clean_error(pinned, "at revision 'main'", "asked for", "revision 'v9'", code=2)

    replaced = hub_cli.run(
        MODEL, "--repo-id", MODEL_REPO, "--filename", "config.json", "--output-dir", str(folder)
    )
    assert replaced.returncode == 2
    forced = hub_cli.run(
        MODEL,
        "--repo-id",
        MODEL_REPO,
        "--filename",
        "config.json",
        "--output-dir",
        str(folder),
        "--force",
    )
    assert forced.returncode == 0, forced.output
    assert asset_files(folder) == {"config.json"}
    assert (folder / "config.json").read_bytes() == repo_file(hub, MODEL_REPO, "config.json")
    assert manifest(folder)["repo_id"] == MODEL_REPO
    assert hub_cli.partials() == []


@pytest.mark.slow
def test_two_datasets_into_one_folder_cli_and_api(hub_cli: HubCli, hub: HubServer):
    folder = hub_cli.assets / "one-folder"
    assert hub_cli.run(DATASET, "--name", "squad", "--output-dir", str(folder)).returncode == 0
    before = snapshot(folder)
    refused = hub_cli.run(DATASET, "--name", "tinystories", "--output-dir", str(folder))
    assert_clean_error(
        refused, f"holds data set '{SQUAD_REPO}'", f"asked for data set '{ALIAS_REPO}'", code=2
    )
    api = hub_cli.python(
        "import sys\n"
        "from common.data import AssetConflictError, download_dataset\n"
        "try:\n"
        "    download_dataset('tinystories', output_dir=sys.argv[1])\n"
        "except AssetConflictError as exc:\n"
        "    print('refused:', exc)\n",
        str(folder),
    )
    assert api.stdout.startswith("refused:") and SQUAD_REPO in api.stdout, api.output
    assert snapshot(folder) == before

    forced = hub_cli.run(DATASET, "--name", "tinystories", "--output-dir", str(folder), "--force")
    assert forced.returncode == 0, forced.output
    assert manifest(folder)["repo_id"] == ALIAS_REPO
    assert hub_cli.partials() == []


@pytest.mark.slow
def test_force_never_deletes_a_users_files(hub_cli: HubCli, hub: HubServer):
    mine = hub_cli.assets / "X"
    mine.mkdir()
    (mine / "my_notes.txt").write_text("keep\n")
    for tool, args in (
        (MODEL, ("--repo-id", OTHER_REPO)),
        (DATASET, ("--name", "squad")),
    ):
        for extra in ((), ("--force",)):
            result = hub_cli.run(tool, *args, "--output-dir", str(mine), *extra)
            message = assert_clean_error(result, "did not download", "never replaced", code=2)
            assert "pass --force" not in message.lower()  # --force would not help: not suggested
    assert snapshot(mine) == {"my_notes.txt": b"keep\n"}

    # A folder the tool wrote, into which the user put a file: --force keeps it too.
    folder = hub_cli.assets / "models" / OTHER_REPO
    assert hub_cli.run(MODEL, "--repo-id", OTHER_REPO).returncode == 0
    (folder / "my_notes.txt").write_text("keep\n")
    forced = hub_cli.run(MODEL, "--repo-id", OTHER_REPO, "--force")
    assert_clean_error(forced, "files this tool did not download", "my_notes.txt", code=2)
    assert (folder / "my_notes.txt").read_text() == "keep\n"
    assert (folder / "model.safetensors").is_file()

    # An empty folder made beforehand is simply filled.
    empty = hub_cli.assets / "empty"
    empty.mkdir()
    assert hub_cli.run(MODEL, "--repo-id", OTHER_REPO, "--output-dir", str(empty)).returncode == 0
    assert asset_files(empty) == {"config.json", "model.safetensors"}


@pytest.mark.slow
def test_second_config_or_split_never_clobbers_the_first(hub_cli: HubCli, hub: HubServer):
    args = ("--name", "wmt14", "--config", "de-en", "--split", "train")
    assert hub_cli.run(DATASET, *args).returncode == 0
    folder = hub_cli.assets / "datasets" / "wmt14"
    before = snapshot(folder)
    for other in (("--config", "fr-en"), ("--config", "de-en", "--split", "test")):
        refused = hub_cli.run(DATASET, "--name", "wmt14", *other)
        message = assert_clean_error(
            refused, f"holds data set '{WMT14_REPO}' config 'de-en' split 'train'", code=2
        )
        assert "--output-dir" in message
    assert snapshot(folder) == before

    # The documented path: a folder of its own.
    fr = hub_cli.assets / "datasets" / "wmt14-fr-en"
    second = hub_cli.run(DATASET, "--name", "wmt14", "--config", "fr-en", "--output-dir", str(fr))
    assert second.returncode == 0, second.output
    assert manifest(fr)["config"] == "fr-en" and manifest(fr)["num_rows"] == WMT14_ROWS
    assert snapshot(folder) == before
