"""Names and layout: aliases, repo ids, folders; the seed's commands run literally.

End to end against the local Hub stand-in (``tests/hub_server.py``) where a test names ``hub``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hub_fixtures import (
    DATASET,
    MODEL,
    REPO_ROOT,
    HubCli,
    assert_clean_error,
    asset_files,
    manifest,
)
from tests.hub_repos import (
    BERT_LEGACY_ID,
    BERT_PYTORCH_FILES,
    WMT14_REPO,
    WMT14_ROWS,
)
from tests.hub_server import HubServer

SEED_COMMANDS = """set -e
python tools/download_hf_dataset.py --name wmt14 --split train --config de-en
python tools/download_hf_dataset.py --name squad
python tools/download_hf_model.py --repo-id bert-base-uncased
cd projects/custom_transformer && ln -s ../../assets/datasets/wmt14 data
"""


@pytest.fixture
def seed_root(tmp_path: Path) -> Path:
    """A copy of the repository's layout: ``tools`` (linked), ``projects/custom_transformer``
    (empty), and ``assets`` as the assets folder."""
    root = tmp_path / "seed"
    (root / "projects" / "custom_transformer").mkdir(parents=True)
    (root / "tools").symlink_to(REPO_ROOT / "tools")
    return root


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


@pytest.mark.parametrize(
    "tool, flag, name",
    [
        (DATASET, "--name", "../x"),
        (DATASET, "--name", "a/b/c"),
        (DATASET, "--name", ""),
        (MODEL, "--repo-id", "../x"),
        (MODEL, "--repo-id", "a/b/c"),
        (MODEL, "--repo-id", ""),
    ],
)
def test_bad_names_give_one_clear_message(hub_cli: HubCli, tool: str, flag: str, name: str):
    result = hub_cli.run(tool, flag, name)
    assert_clean_error(result, f"'{name}'")
    assert hub_cli.hub.requests() == []


@pytest.mark.slow
def test_seed_commands_run_literally(hub_cli: HubCli, bert_hub: HubServer, seed_root: Path):
    env = hub_cli.environment(
        RESEARCH_ASSETS_DIR=str(seed_root / "assets"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    proc = subprocess.run(
        ["bash", "-c", SEED_COMMANDS],
        cwd=seed_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    datasets_dir = seed_root / "assets" / "datasets"
    assert sorted(p.name for p in datasets_dir.iterdir()) == ["squad", "wmt14"]
    wmt14 = manifest(datasets_dir / "wmt14")
    assert (wmt14["repo_id"], wmt14["config"], wmt14["split"]) == (WMT14_REPO, "de-en", "train")
    assert wmt14["num_rows"] == {"train": WMT14_ROWS["train"]}
    # Only the requested split was fetched.
    wmt_files = {r.filename for r in bert_hub.downloads() if r.filename.endswith(".parquet")}
    assert {f for f in wmt_files if f.startswith(("de-en", "fr-en"))} == {
        "de-en/train-00000-of-00001.parquet"
    }
    link = seed_root / "projects" / "custom_transformer" / "data"
    assert os.readlink(link) == "../../assets/datasets/wmt14"
    model = seed_root / "assets" / "models" / BERT_LEGACY_ID
    assert asset_files(model) == BERT_PYTORCH_FILES

    check = (
        "import sys\n"
        "from datasets import load_from_disk\n"
        "from common.data import get_datasets_dir\n"
        "by_link = load_from_disk(sys.argv[1])\n"
        "by_name = load_from_disk(get_datasets_dir() / 'wmt14')\n"
        "squad = load_from_disk(get_datasets_dir() / 'squad')\n"
        "assert by_link['translation'] == by_name['translation']\n"
        "print(type(by_link).__name__, by_link.num_rows, by_link[0]['translation']['de'])\n"
        "print(type(squad).__name__, sorted(squad), squad['train'][0]['question'])\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", check, str(link)],
        env=dict(env, HF_HUB_OFFLINE="1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.stdout.splitlines() == [
        "Dataset 4 Wiederaufnahme der Sitzungsperiode",
        "DatasetDict ['train', 'validation'] What sits on top of the Main Building at Notre Dame?",
    ], loaded.stderr

    # The commands again: nothing is fetched, and ln refuses as it would (the link exists).
    bert_hub.clear_log()
    again = subprocess.run(
        ["bash", "-c", SEED_COMMANDS.replace("set -e\n", "")],
        cwd=seed_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.stdout.count("Already downloaded") == 3, again.stdout + again.stderr
    assert bert_hub.requests() == []
