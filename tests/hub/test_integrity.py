"""Damaged downloads are not "already downloaded" (issue 18, section 5): a repeat request checks
every file the manifest lists (type and size) and fetches again what fails, saying so; ``--verify``
and ``verify_download()`` also compare each file's SHA-256 and name what differs.

Through the real commands against the local Hub stand-in (``tests/hub_server.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hub_fixtures import (
    DATASET,
    MODEL,
    HubCli,
    assert_clean_error,
    manifest,
    repo_file,
    snapshot,
)
from tests.hub_repos import DATASET_REPO, MODEL_REPO
from tests.hub_server import HubServer

WEIGHTS = "model.safetensors"


def _download(hub_cli: HubCli, hub: HubServer) -> Path:
    result = hub_cli.run(MODEL, "--repo-id", MODEL_REPO)
    assert result.returncode == 0, result.output
    hub.clear_log()
    return hub_cli.assets / "models" / MODEL_REPO


def _fetched(hub: HubServer) -> list[str]:
    return sorted(r.filename for r in hub.downloads() if r.filename)


@pytest.mark.slow
def test_truncated_weights_are_fetched_again(hub_cli: HubCli, hub: HubServer):
    folder = _download(hub_cli, hub)
    size = manifest(folder)["files"][WEIGHTS]
    os.truncate(folder / WEIGHTS, 0)

    repeat = hub_cli.run(MODEL, "--repo-id", MODEL_REPO)
    assert repeat.returncode == 0, repeat.output
    assert f"Repaired 1 file: {WEIGHTS} (size 0, expected {size:,} B)" in repeat.stdout
    assert "Already downloaded" not in repeat.stdout
    assert (folder / WEIGHTS).read_bytes() == repo_file(hub, MODEL_REPO, WEIGHTS)
    assert _fetched(hub) == [WEIGHTS]  # only the damaged file
    assert hub_cli.partials() == []

    hub.clear_log()
    again = hub_cli.run(MODEL, "--repo-id", MODEL_REPO)
    assert again.returncode == 0 and again.stdout.startswith("Already downloaded"), again.output
    assert hub.requests() == []


@pytest.mark.slow
def test_missing_config_and_truncated_weights_are_both_fetched(hub_cli: HubCli, hub: HubServer):
    folder = _download(hub_cli, hub)
    (folder / "config.json").unlink()
    os.truncate(folder / WEIGHTS, 10)

    repeat = hub_cli.run(MODEL, "--repo-id", MODEL_REPO)
    assert repeat.returncode == 0, repeat.output
    assert "Repaired 2 files:" in repeat.stdout
    assert "config.json (missing)" in repeat.stdout and f"{WEIGHTS} (size 10," in repeat.stdout
    for rel in ("config.json", WEIGHTS):
        assert (folder / rel).read_bytes() == repo_file(hub, MODEL_REPO, rel)
    assert _fetched(hub) == ["config.json", WEIGHTS]

    # Asking for one file repairs the others too: every listed file is checked.
    os.truncate(folder / WEIGHTS, 0)
    one = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--filename", "config.json")
    assert one.returncode == 0, one.output
    assert f"Repaired 1 file: {WEIGHTS}" in one.stdout
    assert (folder / WEIGHTS).read_bytes() == repo_file(hub, MODEL_REPO, WEIGHTS)


@pytest.mark.slow
def test_symlink_to_an_outside_file_is_replaced_and_the_outside_file_untouched(
    hub_cli: HubCli, hub: HubServer, tmp_path: Path
):
    folder = _download(hub_cli, hub)
    good = (folder / WEIGHTS).read_bytes()
    outside = tmp_path / "elsewhere.bin"
    outside.write_bytes(b"\x00" * len(good))  # the same size: only the type gives it away
    (folder / WEIGHTS).unlink()
    (folder / WEIGHTS).symlink_to(outside)

    repeat = hub_cli.run(MODEL, "--repo-id", MODEL_REPO)
    assert repeat.returncode == 0, repeat.output
    assert f"Repaired 1 file: {WEIGHTS} (a symlink to {outside})" in repeat.stdout
    assert not (folder / WEIGHTS).is_symlink() and (folder / WEIGHTS).read_bytes() == good
    assert outside.read_bytes() == b"\x00" * len(good)


@pytest.mark.slow
def test_a_folder_with_files_in_place_of_a_file_is_refused_untouched(
    hub_cli: HubCli, hub: HubServer
):
    folder = _download(hub_cli, hub)
    (folder / WEIGHTS).unlink()
    (folder / WEIGHTS).mkdir()
    (folder / WEIGHTS / "notes.txt").write_text("mine")
    before = snapshot(folder)

    refused = hub_cli.run(MODEL, "--repo-id", MODEL_REPO)
    assert_clean_error(refused, f"{WEIGHTS} (a folder with files in it)", "never emptied")
    assert snapshot(folder) == before
    assert hub.requests() == []


@pytest.mark.slow
def test_repair_keeps_the_users_files(hub_cli: HubCli, hub: HubServer):
    folder = _download(hub_cli, hub)
    (folder / "my_notes.txt").write_text("keep me")
    os.truncate(folder / WEIGHTS, 0)

    repeat = hub_cli.run(MODEL, "--repo-id", MODEL_REPO)
    assert repeat.returncode == 0, repeat.output
    assert (folder / WEIGHTS).read_bytes() == repo_file(hub, MODEL_REPO, WEIGHTS)
    assert (folder / "my_notes.txt").read_text() == "keep me"


@pytest.mark.slow
def test_verify_names_a_bit_flipped_file_of_the_same_size(hub_cli: HubCli, hub: HubServer):
    folder = _download(hub_cli, hub)
    recorded = manifest(folder)["sha256"]
    assert set(recorded) == set(manifest(folder)["files"])  # every file's SHA-256 recorded

    intact = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--verify")
    assert intact.returncode == 0, intact.output
    assert "intact" in intact.stdout

    for rel in (WEIGHTS, "config.json"):  # an LFS file (the Hub's SHA-256) and a small one
        data = bytearray((folder / rel).read_bytes())
        data[len(data) // 2] ^= 0x01
        (folder / rel).write_bytes(bytes(data))
    before = snapshot(folder)

    # Same sizes: a plain repeat finds nothing wrong without reading every byte.
    hub.clear_log()
    plain = hub_cli.run(MODEL, "--repo-id", MODEL_REPO)
    assert plain.returncode == 0 and plain.stdout.startswith("Already downloaded"), plain.output
    assert hub.requests() == []

    verify = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--verify")
    assert verify.returncode == 3, verify.output
    assert "Traceback" not in verify.output
    assert f"{WEIGHTS}: SHA-256" in verify.stdout and "config.json: " in verify.stdout
    assert "2 files of" in verify.stdout and "--force" in verify.stdout
    assert snapshot(folder) == before  # --verify writes nothing
    assert hub.downloads() == []

    # The same from Python, offline: against the manifest's SHA-256.
    code = (
        "import sys; from common.data import verify_download, model_path\n"
        f"report = verify_download(model_path({MODEL_REPO!r}))\n"
        "print(sorted(report.problems)); sys.exit(0 if report.ok else 3)"
    )
    offline = hub_cli.python(code, env={"HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 3, offline.output
    assert offline.stdout.strip() == str(sorted(["config.json", WEIGHTS]))

    forced = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--force")
    assert forced.returncode == 0, forced.output
    assert hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--verify").returncode == 0


@pytest.mark.slow
def test_verify_checks_against_the_hub_when_the_manifest_has_no_checksums(
    hub_cli: HubCli, hub: HubServer
):
    folder = _download(hub_cli, hub)
    record = manifest(folder)
    del record["sha256"]  # a manifest written before checksums were recorded
    (folder / ".download.json").write_text(__import__("json").dumps(record))
    assert hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--verify").returncode == 0
    data = bytearray((folder / "config.json").read_bytes())
    data[0] ^= 0x01
    (folder / "config.json").write_bytes(bytes(data))
    verify = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--verify")
    assert verify.returncode == 3 and "config.json: git blob id" in verify.stdout, verify.output


@pytest.mark.slow
def test_verify_of_a_folder_that_was_never_downloaded_is_a_clear_error(hub_cli: HubCli):
    missing = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--verify")
    assert_clean_error(missing, "does not exist", "not a download of this tool")
    combined = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--verify", "--force")
    assert_clean_error(combined, "--verify only reads the folder")
    models = hub_cli.assets / "models"
    assert not models.exists() or not any(models.iterdir())  # neither wrote anything


@pytest.mark.slow
def test_damaged_dataset_is_downloaded_again(hub_cli: HubCli, hub: HubServer):
    first = hub_cli.run(DATASET, "--name", DATASET_REPO)
    assert first.returncode == 0, first.output
    folder = hub_cli.assets / "datasets" / DATASET_REPO
    arrow = sorted(rel for rel in manifest(folder)["files"] if rel.endswith(".arrow"))[0]
    good = (folder / arrow).read_bytes()
    os.truncate(folder / arrow, 0)

    repeat = hub_cli.run(DATASET, "--name", DATASET_REPO)
    assert repeat.returncode == 0, repeat.output
    assert f"Repaired 1 file: {arrow} (size 0, expected {len(good):,} B)" in repeat.stdout
    assert (folder / arrow).read_bytes() == good
    assert hub_cli.run(DATASET, "--name", DATASET_REPO, "--verify").returncode == 0

    # A data set folder holding the user's files is never replaced: the damage is reported.
    (folder / "my_notes.txt").write_text("keep me")
    os.truncate(folder / arrow, 0)
    refused = hub_cli.run(DATASET, "--name", DATASET_REPO)
    assert_clean_error(refused, arrow, "my_notes.txt", "never replaced or emptied")
    assert (folder / "my_notes.txt").read_text() == "keep me"
