"""Which files a model download fetches (compared with what transformers asks for).

End to end against the local Hub stand-in (``tests/hub_server.py``) where a test names ``hub``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.hub_fixtures import (
    MODEL,
    HubCli,
    asset_files,
    manifest,
)
from tests.hub_repos import (
    BERT_LEGACY_ID,
    BERT_PYTORCH_FILES,
    BERT_REPO,
)
from tests.hub_server import HubServer

TRANSFORMERS_LOAD = """
import sys
from transformers import AutoModelForMaskedLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
model = AutoModelForMaskedLM.from_pretrained(sys.argv[1])
ids = tok("once upon a time", return_tensors="pt")
print(round(float(model(**ids).logits.sum()), 4))
"""


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
