"""Library failures become one clear message of the right class and exit status.

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
    free_port,
    manifest,
)
from tests.hub_repos import (
    ALIAS_REPO,
    DATASET_REPO,
    GATED_REPO,
    GRANTED_TOKEN,
    MODEL_REPO,
    SCRIPT_REPO,
    SPACE_REPO,
    UNGRANTED_TOKEN,
)
from tests.hub_server import HubServer


def test_model_not_found_errors_are_clear(hub_cli: HubCli, hub: HubServer):
    missing = hub_cli.run(MODEL, "--repo-id", "research-test/no-such-model")
    assert_clean_error(missing, "No model repository 'research-test/no-such-model'", "HF_TOKEN")
    revision = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--revision", "v9.9")
    assert_clean_error(revision, "has no revision 'v9.9'")
    invalid = hub_cli.run(MODEL, "--repo-id", "not a repo")
    assert_clean_error(invalid, "not a valid model repo id")
    assert [(r.status, r.path) for r in hub.requests(contains="/api/models/")] == [
        (401, "/api/models/research-test/no-such-model"),
        (404, f"/api/models/{MODEL_REPO}/revision/v9.9"),
    ]
    assert list((hub_cli.assets / "models").iterdir()) == []


@pytest.mark.slow
def test_gated_model_explains_authentication_and_hides_the_token(hub_cli: HubCli, hub: HubServer):
    anonymous = hub_cli.run(MODEL, "--repo-id", GATED_REPO)
    assert_clean_error(anonymous, "is gated", "HF_TOKEN", "--token", "hf auth login")

    not_granted = hub_cli.run(MODEL, "--repo-id", GATED_REPO, "--token", UNGRANTED_TOKEN)
    assert_clean_error(not_granted, "not been granted access", f"/{GATED_REPO}")
    assert UNGRANTED_TOKEN not in not_granted.output

    invalid = hub_cli.run(MODEL, "--repo-id", GATED_REPO, env={"HF_TOKEN": "hf_revoked_SECRET"})
    assert_clean_error(invalid, "rejected the token")
    assert "hf_revoked_SECRET" not in invalid.output
    assert not (hub_cli.assets / "models" / GATED_REPO).exists() and hub_cli.partials() == []

    granted = hub_cli.run(MODEL, "--repo-id", GATED_REPO, env={"HF_TOKEN": GRANTED_TOKEN})
    assert granted.returncode == 0, granted.output
    assert GRANTED_TOKEN not in granted.output
    assert (hub_cli.assets / "models" / GATED_REPO / "model.safetensors").is_file()


def test_offline_mode_and_unreachable_endpoint(hub_cli: HubCli, hub: HubServer):
    offline = {"HF_HUB_OFFLINE": "1"}
    missing = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, env=offline)
    assert_clean_error(missing, "Offline mode is on", "Nothing has been downloaded")
    assert hub.requests() == []

    assert hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--filename", "config.json").returncode == 0
    hub.clear_log()
    present = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--filename", "config.json", env=offline)
    assert present.returncode == 0 and present.stdout.startswith("Already downloaded")
    other = hub_cli.run(MODEL, "--repo-id", GATED_REPO, env=offline)
    assert_clean_error(other, "Offline mode", "Available locally in ", MODEL_REPO)
    assert hub.requests() == []

    dead = f"http://127.0.0.1:{free_port()}"
    unreachable = hub_cli.run(MODEL, "--repo-id", GATED_REPO, env={"HF_ENDPOINT": dead})
    assert_clean_error(unreachable, f"Cannot reach the Hub at {dead}", MODEL_REPO, code=1)


@pytest.mark.slow
def test_dataset_errors_are_clear(hub_cli: HubCli, hub: HubServer):
    assert_clean_error(
        hub_cli.run(DATASET, "--name", "research-test/no-such-data"),
        "No data set repository 'research-test/no-such-data'",
    )
    assert_clean_error(
        hub_cli.run(DATASET, "--name", DATASET_REPO, "--revision", "nope"),
        "has no revision 'nope'",
    )
    assert_clean_error(
        hub_cli.run(DATASET, "--name", "not-an-alias"), "not a known data set alias", "tinystories"
    )
    assert_clean_error(
        hub_cli.run(DATASET, "--name", SCRIPT_REPO),
        "loading script",
        "no longer",
        "refs/convert/parquet",
    )
    assert_clean_error(
        hub_cli.run(DATASET, "--name", DATASET_REPO, "--config", "novels"),
        "has no configuration 'novels'",
        "default, poems",
    )
    hub.clear_log()
    assert_clean_error(
        hub_cli.run(DATASET, "--name", DATASET_REPO, "--split", "test"),
        "has no split 'test'",
        "train, validation",
    )
    assert hub.downloads() == [] or {r.filename for r in hub.downloads()} == {"README.md"}
    assert hub_cli.partials() == []
    assert [p.name for p in (hub_cli.assets / "datasets").iterdir()] == []


@pytest.mark.slow
def test_repo_type_and_other_type_hints(hub_cli: HubCli, hub: HubServer):
    missing = hub_cli.run(MODEL, "--repo-id", ALIAS_REPO)
    assert_clean_error(
        missing,
        f"No model repository '{ALIAS_REPO}'",
        "A data set repository of that name exists",
        "--repo-type dataset",
    )
    raw = hub_cli.run(MODEL, "--repo-id", ALIAS_REPO, "--repo-type", "dataset")
    assert raw.returncode == 0, raw.output
    folder = hub_cli.assets / "repos" / "datasets" / ALIAS_REPO
    expected = set(hub.repos[("dataset", ALIAS_REPO)].resolve("main").files)  # type: ignore[union-attr]
    assert asset_files(folder) == expected
    assert manifest(folder)["repo_type"] == "dataset"

    space = hub_cli.run(MODEL, "--repo-id", SPACE_REPO, "--repo-type", "space")
    assert space.returncode == 0, space.output
    assert asset_files(hub_cli.assets / "repos" / "spaces" / SPACE_REPO) == {
        "README.md",
        "app.py",
        "requirements.txt",
    }
    not_a_dataset = hub_cli.run(DATASET, "--name", MODEL_REPO)
    assert_clean_error(
        not_a_dataset, "No data set repository", "A model repository of that name exists"
    )
    bad_type = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--repo-type", "paper")
    assert bad_type.returncode == 2 and "invalid choice" in bad_type.stderr
