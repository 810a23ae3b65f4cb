"""The download tools' rules, end to end against the local Hub stand-in (issue 10).

- The right asset or a clear refusal: a folder holding another repo, revision, config or split is
  refused (exit 2) or, with ``--force``, replaced; a folder the tool did not write is never
  replaced or emptied.
- The seed's layout and commands, run literally, and its ``ln -s`` line.
- Only the files a model needs (compared with what ``transformers`` asks the Hub for),
  ``--all-files``, ``--dry-run``, ``--repo-type``.
- Ctrl-C during a throttled download, bad names, a full disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub_fixtures import (
    REPO_ROOT,
    CliResult,
    HubCli,
    assert_clean_error,
    asset_files,
    repo_file,
)
from tests.hub_repos import (
    ALIAS_REPO,
    BERT_LEGACY_ID,
    BERT_PYTORCH_FILES,
    BERT_REPO,
    BIG_DATASET_REPO,
    BIG_MODEL_REPO,
    MODEL_REPO,
    OTHER_REPO,
    SPACE_REPO,
    SQUAD_REPO,
    WMT14_REPO,
    WMT14_ROWS,
    build_bert_repo,
)
from tests.hub_server import Fault, HubServer

MODEL = "download_hf_model.py"
DATASET = "download_hf_dataset.py"


@pytest.fixture
def bert_hub(hub: HubServer) -> HubServer:
    """The stand-in with the tiny BERT in every format (built once per session; needs torch)."""
    build_bert_repo(hub)
    return hub


def manifest(folder: Path) -> dict:
    return json.loads((folder / ".download.json").read_text())


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (manifest included) with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


# -- the right asset or a clear refusal ------------------------------------------------------------


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


# -- the seed's layout and workflow ----------------------------------------------------------------

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


@pytest.mark.slow
def test_link_refuses_to_replace_a_link_elsewhere(hub_cli: HubCli, hub: HubServer, tmp_path: Path):
    project = tmp_path / "projects" / "p"
    project.mkdir(parents=True)
    assert hub_cli.run(DATASET, "--name", "squad", "--link", str(project)).returncode == 0
    link = project / "data"
    target = os.readlink(link)
    hub.clear_log()
    refused = hub_cli.run(DATASET, "--name", "tinystories", "--link", str(project))
    assert_clean_error(refused, "already links to", "--force", code=2)
    assert os.readlink(link) == target
    assert hub.requests() == [] and not (hub_cli.assets / "datasets" / "tinystories").exists()

    same = hub_cli.run(DATASET, "--name", "squad", "--link", str(project))
    assert same.returncode == 0 and os.readlink(link) == target

    forced = hub_cli.run(DATASET, "--name", "tinystories", "--link", str(project), "--force")
    assert forced.returncode == 0, forced.output
    assert link.resolve() == (hub_cli.assets / "datasets" / "tinystories").resolve()


# -- only the files a model needs ------------------------------------------------------------------


def test_select_model_files_rule():
    from common.data.hf_utils import select_model_files

    sharded = [
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
        "pytorch_model.bin.index.json",
        "tf_model.h5",
        "flax_model.msgpack",
        "onnx/model.onnx",
        "onnx/config.json",
        "openvino_model.xml",
        "openvino_model.bin",
        "model.gguf",
        "rust_model.ot",
        "coreml/x.mlpackage/Data/com.apple.CoreML/weights/weight.bin",
        "tokenizer.model",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "merges.txt",
        "modeling_custom.py",
        ".gitattributes",
    ]
    assert select_model_files(sharded) == [
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "merges.txt",
        "modeling_custom.py",
    ]
    bin_only = ["config.json", "pytorch_model.bin", "tf_model.h5", "vocab.json"]
    assert select_model_files(bin_only) == ["config.json", "pytorch_model.bin", "vocab.json"]


@pytest.mark.slow
def test_multi_format_repo_fetches_the_pytorch_set(hub_cli: HubCli, bert_hub: HubServer):
    hub = bert_hub
    sizes = {
        path: blob.size
        for path, blob in hub.repos[("model", BERT_REPO)].resolve("main").files.items()  # type: ignore[union-attr]
    }
    # --dry-run: the list and the total, nothing written, no file transferred.
    dry = hub_cli.run(MODEL, "--repo-id", BERT_LEGACY_ID, "--dry-run")
    assert dry.returncode == 0, dry.output
    listed = {line.split()[0] for line in dry.stdout.splitlines() if line.startswith("  ")}
    assert listed == BERT_PYTORCH_FILES
    default_bytes = sum(sizes[f] for f in BERT_PYTORCH_FILES)
    assert f"would fetch {len(BERT_PYTORCH_FILES)} files" in dry.stdout
    assert hub.downloads() == [] and list((hub_cli.assets / "models").iterdir()) == []

    result = hub_cli.run(MODEL, "--repo-id", BERT_LEGACY_ID)
    assert result.returncode == 0, result.output
    folder = hub_cli.assets / "models" / BERT_LEGACY_ID
    assert asset_files(folder) == BERT_PYTORCH_FILES
    fetched = {r.filename: r.bytes_sent for r in hub.downloads()}
    assert set(fetched) == BERT_PYTORCH_FILES and sum(fetched.values()) == default_bytes
    assert f"Left out {len(sizes) - len(BERT_PYTORCH_FILES)} files" in result.stderr
    assert "tf_model.h5" in result.stderr
    assert "--all-files" in result.stderr
    record = manifest(folder)
    assert record["selections"] == [{"rule": "default"}]
    assert set(record["files"]) == BERT_PYTORCH_FILES

    # --all-files: every file (here into another folder).
    hub.clear_log()
    everything = hub_cli.assets / "bert-all"
    dry_all = hub_cli.run(
        MODEL,
        "--repo-id",
        BERT_LEGACY_ID,
        "--all-files",
        "--dry-run",
        "--output-dir",
        str(everything),
    )
    assert f"would fetch {len(sizes)} files" in dry_all.stdout and not everything.exists()
    full = hub_cli.run(
        MODEL, "--repo-id", BERT_LEGACY_ID, "--all-files", "--output-dir", everything
    )
    assert full.returncode == 0, full.output
    assert asset_files(everything) == set(sizes)
    all_bytes = sum(r.bytes_sent for r in hub.downloads())
    assert all_bytes == sum(sizes.values()) > 4 * default_bytes
    print(f"\nbytes fetched: default {default_bytes}, --all-files {all_bytes}")

    # --all-files into the default-selection folder adds the other formats.
    hub.clear_log()
    more = hub_cli.run(MODEL, "--repo-id", BERT_LEGACY_ID, "--all-files")
    assert more.returncode == 0, more.output
    assert set(r.filename for r in hub.downloads()) == set(sizes) - BERT_PYTORCH_FILES
    assert asset_files(folder) == set(sizes)


TRANSFORMERS_LOAD = """
import sys
from transformers import AutoModelForMaskedLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
model = AutoModelForMaskedLM.from_pretrained(sys.argv[1])
ids = tok("once upon a time", return_tensors="pt")
print(round(float(model(**ids).logits.sum()), 4))
"""


@pytest.mark.slow
def test_selection_matches_what_transformers_asks_for(hub_cli: HubCli, bert_hub: HubServer):
    """What ``from_pretrained`` fetches from the Hub is what the default rule selects (but docs),
    and the downloaded folder loads offline to the same model."""
    hub = bert_hub
    from_hub = hub_cli.python(TRANSFORMERS_LOAD, BERT_LEGACY_ID, timeout=300)
    assert from_hub.returncode == 0, from_hub.stderr[-3000:]
    asked = {r.filename for r in hub.downloads()}
    assert asked <= BERT_PYTORCH_FILES
    assert BERT_PYTORCH_FILES - asked == {"README.md", "LICENSE"}  # docs: kept, never loaded

    assert hub_cli.run(MODEL, "--repo-id", BERT_LEGACY_ID).returncode == 0
    folder = hub_cli.assets / "models" / BERT_LEGACY_ID
    hub.clear_log()
    offline = subprocess.run(
        [sys.executable, "-c", TRANSFORMERS_LOAD, str(folder)],
        env=dict(hub_cli.env, HF_HUB_OFFLINE="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert offline.returncode == 0, offline.stderr[-3000:]
    assert offline.stdout == from_hub.stdout and hub.requests() == []


# -- --dry-run, --repo-type ------------------------------------------------------------------------


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


# -- Ctrl-C, bad names, a full disk ----------------------------------------------------------------


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


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (500_000, 500_000))


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
            result: CliResult = hub_cli.run(tool, flag, repo, preexec_fn=_limit_file_size)
            expected = "file size limit"
        assert_clean_error(result, expected, "free there", "Nothing was kept", code=1)
        assert list((hub_cli.assets / kind).iterdir()) == []
