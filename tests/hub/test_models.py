"""Model downloads: the default selection, revisions, patterns, one file.

End to end against the local Hub stand-in (``tests/hub_server.py``) where a test names ``hub``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hub_fixtures import (
    MODEL,
    REPO_ROOT,
    HubCli,
    assert_clean_error,
    repo_file,
)
from tests.hub_fixtures import asset_files as model_files
from tests.hub_repos import (
    GRANTED_TOKEN,
    MODEL_REPO,
)
from tests.hub_server import HubServer


def test_model_first_download_then_repeat_transfers_nothing(hub_cli: HubCli, hub: HubServer):
    result = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, env={"HF_TOKEN": GRANTED_TOKEN})
    assert result.returncode == 0, result.output
    folder = hub_cli.assets / "models" / MODEL_REPO
    expected = set(hub.repos[("model", MODEL_REPO)].resolve("main").files)  # type: ignore[union-attr]
    expected -= {".gitattributes"}  # git's own file: not needed to load the model
    assert model_files(folder) == expected
    for rel in expected:  # plain files with the repo's bytes, not cache symlinks
        assert not (folder / rel).is_symlink()
        assert (folder / rel).read_bytes() == repo_file(hub, MODEL_REPO, rel)
    manifest = json.loads((folder / ".download.json").read_text())
    assert manifest["commit"] == hub.commits[MODEL_REPO]["main"]  # type: ignore[attr-defined]
    assert manifest["revision"] == "main"

    # One summary line: where, how many files, size, time.
    summary = result.stdout.strip().splitlines()
    assert len(summary) == 1
    assert summary[0].startswith(f"Downloaded {MODEL_REPO}@main (commit ")
    assert f"{len(expected)} files" in summary[0] and " kB in " in summary[0]
    assert "Fetching" in result.stderr  # progress bars
    assert GRANTED_TOKEN not in result.output + json.dumps(manifest)

    # The weights came through the redirect to the other origin, without the token.
    weights = [r for r in hub.requests() if r.filename == "model.safetensors"]
    assert [(r.server, r.method, r.status) for r in weights] == [
        ("hub", "HEAD", 302),
        ("cdn", "GET", 200),
    ]
    assert all(r.authorized for r in hub.requests(server="hub"))
    assert not any(r.authorized for r in hub.requests(server="cdn"))
    assert hub.requests(server="proxy") == []

    hub.clear_log()
    again = hub_cli.run(MODEL, "--repo-id", MODEL_REPO)
    assert again.returncode == 0, again.output
    assert again.stdout.startswith("Already downloaded:")
    assert hub.requests() == []


@pytest.mark.slow
def test_model_revision_pinning_and_conflicts(hub_cli: HubCli, hub: HubServer):
    commits = hub.commits[MODEL_REPO]  # type: ignore[attr-defined]
    folder = hub_cli.assets / "models" / MODEL_REPO
    result = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--revision", "v1.0")
    assert result.returncode == 0, result.output
    assert json.loads((folder / "config.json").read_text())["hidden_size"] == 4
    assert (folder / "model.safetensors").read_bytes() == repo_file(
        hub, MODEL_REPO, "model.safetensors", "v1.0"
    )
    # Every file request named the commit the tag pointed to, never the moving tag itself.
    resolves = [r.path for r in hub.requests(server="hub") if "/resolve/" in r.path]
    assert resolves and all(f"/resolve/{commits['v1.0']}/" in p for p in resolves)

    conflict = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--revision", "main")
    assert_clean_error(conflict, "revision 'v1.0'", "--force", "--output-dir", code=2)

    hub.clear_log()
    same_by_commit = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--revision", commits["v1.0"][:10])
    assert same_by_commit.returncode == 0 and hub.requests() == []

    forced = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--revision", "main", "--force")
    assert forced.returncode == 0, forced.output
    assert json.loads((folder / "config.json").read_text())["hidden_size"] == 8

    other = hub_cli.assets / "elsewhere"
    pinned = hub_cli.run(
        MODEL, "--repo-id", MODEL_REPO, "--revision", commits["v1.0"], "--output-dir", str(other)
    )
    assert pinned.returncode == 0, pinned.output
    assert json.loads((other / "config.json").read_text())["hidden_size"] == 4
    assert hub_cli.partials() == []


@pytest.mark.slow
def test_model_include_and_exclude_patterns(hub_cli: HubCli, hub: HubServer):
    json_only = hub_cli.assets / "json-only"
    result = hub_cli.run(
        MODEL, "--repo-id", MODEL_REPO, "--include", "*.json", "--output-dir", str(json_only)
    )
    assert result.returncode == 0, result.output
    assert model_files(json_only) == {
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    }
    assert hub.requests(server="cdn") == []  # the weights were never fetched

    no_weights = hub_cli.assets / "no-weights"
    result = hub_cli.run(
        MODEL,
        "--repo-id",
        MODEL_REPO,
        "--exclude",
        "*.safetensors",
        "extra/*",
        "--output-dir",
        str(no_weights),
    )
    assert result.returncode == 0, result.output
    files = model_files(no_weights)
    assert "model.safetensors" not in files and "extra/notes.txt" not in files
    assert {"config.json", "README.md", "tokenizer.json"} <= files

    # A pattern set already satisfied is not fetched again; a new one adds only what is missing.
    hub.clear_log()
    assert hub_cli.run(
        MODEL, "--repo-id", MODEL_REPO, "--include", "*.json", "--output-dir", str(json_only)
    ).stdout.startswith("Already downloaded")
    assert hub.requests() == []
    more = hub_cli.run(
        MODEL, "--repo-id", MODEL_REPO, "--include", "*.safetensors", "--output-dir", str(json_only)
    )
    assert more.returncode == 0, more.output
    assert "model.safetensors" in model_files(json_only) and "README.md" not in model_files(
        json_only
    )
    assert [r.filename for r in hub.downloads()] == ["model.safetensors"]

    nothing = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--include", "*.gguf")
    assert_clean_error(nothing, "No file", "*.gguf", "config.json")
    assert not (hub_cli.assets / "models" / MODEL_REPO).exists()


@pytest.mark.slow
def test_model_single_file(hub_cli: HubCli, hub: HubServer):
    result = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--filename", "config.json")
    assert result.returncode == 0, result.output
    folder = hub_cli.assets / "models" / MODEL_REPO
    assert model_files(folder) == {"config.json"}
    assert (folder / "config.json").read_bytes() == repo_file(hub, MODEL_REPO, "config.json")
    assert "1 file, " in result.stdout and str(Path("config.json")) in result.stdout
    assert {r.filename for r in hub.downloads()} == {"config.json"}

    hub.clear_log()
    weights = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--filename", "model.safetensors")
    assert weights.returncode == 0, weights.output
    assert model_files(folder) == {"config.json", "model.safetensors"}
    assert [r.filename for r in hub.downloads()] == ["model.safetensors"]

    hub.clear_log()
    again = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--filename", "config.json")
    assert again.stdout.startswith("Already downloaded") and hub.requests() == []

    api = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from common.data import download_model; "
            "print(download_model(sys.argv[1], 'tokenizer.json'))",
            MODEL_REPO,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=hub_cli.env,
        cwd=REPO_ROOT,
    )
    assert api.stdout.strip() == str(folder / "tokenizer.json"), api.stderr
    assert [r.filename for r in hub.downloads()] == ["tokenizer.json"]

    typo = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--filename", "confg.json")
    assert_clean_error(typo, "no file 'confg.json'", "Did you mean: config.json")

    outside = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--filename", "../../config.json")
    assert_clean_error(outside, "not a file path inside a repo")

    both = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, "--filename", "a", "--include", "*")
    assert both.returncode == 2 and "cannot be combined" in both.stderr
