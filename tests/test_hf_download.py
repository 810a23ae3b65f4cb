"""End-to-end tests of the Hugging Face download tools against the local Hub stand-in.

The CLIs run as subprocesses (``huggingface_hub`` and ``datasets`` read ``HF_ENDPOINT`` and
``HF_HOME`` at import) against ``tests/hub_server.py``; assertions are on the files they leave and
on the server's request log. Large files (``*.safetensors``, ``*.parquet``) are served through a
redirect to a second origin, as the Hub's CDN does.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hub_fixtures import REPO_ROOT, HubCli, assert_clean_error, repo_file
from tests.hub_fixtures import asset_files as model_files
from tests.hub_repos import (
    ALIAS_REPO,
    DATASET_REPO,
    GATED_REPO,
    GRANTED_TOKEN,
    MODEL_REPO,
    SCRIPT_REPO,
    UNGRANTED_TOKEN,
)
from tests.hub_server import Fault, HubServer

MODEL = "download_hf_model.py"
DATASET = "download_hf_dataset.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- models ----------------------------------------------------------------------------------------


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


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_disk_full_is_reported_and_cleaned_up(hub_cli: HubCli, hub: HubServer):
    result = hub_cli.run(MODEL, "--repo-id", MODEL_REPO, preexec_fn=_limit_file_size)
    assert_clean_error(result, "file size limit", "free there", "Nothing was kept", code=1)
    assert list((hub_cli.assets / "models").iterdir()) == []


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
    # Only the light command-line convention of common (common.utils.cli), never the Hub code.
    assert {m for m in modules if m.startswith("common")} <= {
        "common",
        "common._lazy",
        "common.settings",
        "common.utils",
        "common.utils.argtypes",
        "common.utils.cli",
    }


# -- data sets -------------------------------------------------------------------------------------


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


@pytest.mark.slow
def test_alias_download_and_project_symlink_workflow(
    hub_cli: HubCli, hub: HubServer, tmp_path: Path
):
    project = tmp_path / "projects" / "my_project"
    project.mkdir(parents=True)
    result = hub_cli.run(DATASET, "--name", "tinystories", "--link", str(project))
    assert result.returncode == 0, result.output
    folder = hub_cli.assets / "datasets" / "tinystories"
    assert json.loads((folder / ".download.json").read_text())["repo_id"] == ALIAS_REPO
    link = project / "data"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    assert link.resolve() == folder.resolve()
    assert f"Linked {link}" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith(f"Downloaded {ALIAS_REPO}@main")

    typo = hub_cli.run(DATASET, "--name", "tinystories", "--link", str(tmp_path / "nope"))
    assert typo.returncode == 2 and "No project folder" in typo.stderr


# -- library functions without network -------------------------------------------------------------


def _fake_asset(folder: Path, **manifest: object) -> Path:
    folder.mkdir(parents=True)
    (folder / "dataset_dict.json").write_text('{"splits": []}')
    record = {"kind": "dataset", "revision": "main", "repo_id": folder.name, **manifest}
    (folder / ".download.json").write_text(json.dumps(record))
    return folder


def test_link_dataset_rules(tmp_path: Path, isolated_assets: Path):
    from common.data import AssetConflictError, HFAssetError, dataset_path, link_dataset

    # The repository's layout: <root>/assets and <root>/projects/<p> give ../../assets/...
    root = isolated_assets.parent
    project = root / "projects" / "demo"
    project.mkdir(parents=True)
    _fake_asset(dataset_path("tinystories"))
    link = link_dataset(project, "tinystories")
    assert os.readlink(link) == f"../../{isolated_assets.name}/datasets/tinystories"
    assert (link / "dataset_dict.json").is_file()

    assert link_dataset(project, "tinystories") == link  # already there: kept
    _fake_asset(dataset_path("wikitext"))
    with pytest.raises(AssetConflictError, match="already links to .*--force"):
        link_dataset(project, "wikitext")  # a link elsewhere is replaced only with force
    assert os.readlink(link).endswith("datasets/tinystories")
    relinked = link_dataset(project, "wikitext", force=True)
    assert os.readlink(relinked).endswith("datasets/wikitext")

    with pytest.raises(HFAssetError, match="does not exist: download it first"):
        link_dataset(project, "imdb")
    with pytest.raises(HFAssetError, match="No project folder"):
        link_dataset(root / "projects" / "missing", "tinystories")
    real = root / "projects" / "real"
    (real / "data").mkdir(parents=True)
    with pytest.raises(HFAssetError, match="real folder"):
        link_dataset(real, "tinystories")
    assert (real / "data").is_dir() and not (real / "data").is_symlink()


def test_names_and_layout(isolated_assets: Path):
    from common.data import DATASET_ALIASES, HFAssetError, dataset_path, model_path
    from common.data import resolve_dataset_name as resolve
    from common.data.hf_utils import repo_files_path

    assert resolve("tinystories") == resolve("TinyStories") == "roneneldan/TinyStories"
    assert resolve("squad") == DATASET_ALIASES["squad"] == "rajpurkar/squad"
    assert resolve("org/name") == "org/name"
    assert resolve("https://huggingface.co/datasets/org/name") == "org/name"
    for bad in ("squadd", "org/na--me", "a/b/c", ""):
        with pytest.raises(HFAssetError):
            resolve(bad)
    datasets = isolated_assets / "datasets"
    assert dataset_path("tinystories") == datasets / "tinystories"
    assert dataset_path("wmt14") == dataset_path("WMT14") == datasets / "wmt14"
    assert dataset_path("org/name") == datasets / "org" / "name"
    assert model_path("org/model") == isolated_assets / "models" / "org" / "model"
    assert repo_files_path("org/d", "dataset") == isolated_assets / "repos" / "datasets/org/d"
    for bad in ("../x", "a/b/c", "", "org/..", "/abs"):
        with pytest.raises(HFAssetError):
            dataset_path(bad)
        with pytest.raises(HFAssetError):
            model_path(bad)


def test_existing_asset_is_returned_without_network(isolated_assets: Path, monkeypatch):
    from common.data import AssetConflictError, dataset_path
    from common.data.hf_utils import ensure_dataset

    # An unreachable endpoint: any network access would fail.
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    folder = _fake_asset(dataset_path("org/name"), repo_id="org/name", commit="a" * 40)
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


# -- the stand-in itself ---------------------------------------------------------------------------


def test_stand_in_speaks_the_hub_protocol(hub: HubServer):
    """Pagination, paths-info, refs and Range through the real client API."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url, token=False)
    hub.tree_page_size = 3
    try:
        tree = list(api.list_repo_tree(MODEL_REPO, recursive=True))
    finally:
        hub.tree_page_size = 1000
    paths = {item.path for item in tree}
    assert {"extra", "extra/notes.txt", "model.safetensors"} <= paths
    assert len(hub.requests(contains="cursor=")) >= 2  # followed the Link header
    lfs = next(item for item in tree if item.path == "model.safetensors")
    assert (
        lfs.lfs.sha256
        == hashlib.sha256(repo_file(hub, MODEL_REPO, "model.safetensors")).hexdigest()
    )

    info = api.get_paths_info(DATASET_REPO, ["README.md", "data", "missing"], repo_type="dataset")
    assert [(type(i).__name__, i.path) for i in info] == [
        ("RepoFile", "README.md"),
        ("RepoFolder", "data"),
    ]
    refs = api.list_repo_refs(MODEL_REPO)
    assert [t.name for t in refs.tags] == ["v1.0"] and [b.name for b in refs.branches] == ["main"]

    import urllib.request

    url = hub.cdn_location(
        hub.repos[("model", MODEL_REPO)].resolve("main").files["model.safetensors"],  # type: ignore[union-attr]
        "model.safetensors",
    )
    request = urllib.request.Request(url, headers={"Range": "bytes=10-19"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 206
        assert response.headers["Content-Range"].startswith("bytes 10-19/")
        assert response.read() == repo_file(hub, MODEL_REPO, "model.safetensors")[10:20]
