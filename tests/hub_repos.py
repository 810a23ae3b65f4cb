"""The repositories the Hub stand-in serves in tests: built here, small, deterministic.

- ``research-test/tiny-model`` (model): ``config.json``, ``model.safetensors`` (LFS: served through
  the CDN origin), tokenizer files, ``README.md``, ``.gitattributes``, ``extra/notes.txt``. Two
  commits: tag ``v1.0`` (hidden size 4) and ``main`` (hidden size 8).
- ``research-test/tiny-stories`` (data set): Parquet files for two configs (``default`` and
  ``poems``), each with ``train`` and ``validation`` splits, declared in the README's YAML
  ``configs:`` section as real Hub Parquet data sets do. Tag ``v1.0`` has fewer rows than ``main``.
- ``research-test/gated-model`` (model, gated): only ``GRANTED_TOKEN`` may download its files.
- ``research-test/scripted`` (data set): a loading script, which ``datasets`` no longer runs.
- ``roneneldan/TinyStories`` (data set): what the ``tinystories`` alias points to; no ``configs:``
  in its README, so ``datasets`` infers the splits from the file names.
"""

from __future__ import annotations

import io
import json

from tests.hub_server import HubServer

MODEL_REPO = "research-test/tiny-model"
DATASET_REPO = "research-test/tiny-stories"
GATED_REPO = "research-test/gated-model"
SCRIPT_REPO = "research-test/scripted"
ALIAS_REPO = "roneneldan/TinyStories"
GRANTED_TOKEN = "hf_granted_SECRET_9f8e7d"
UNGRANTED_TOKEN = "hf_notgranted_SECRET_1a2b3c"

GITATTRIBUTES = (
    "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    "*.parquet filter=lfs diff=lfs merge=lfs -text\n"
)

DATASET_README = """---
license: mit
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.parquet
  - split: validation
    path: data/validation-*.parquet
  default: true
- config_name: poems
  data_files:
  - split: train
    path: poems/train-*.parquet
  - split: validation
    path: poems/validation-*.parquet
---

# Tiny stories (test fixture)

Two configurations, each with a train and a validation split.
"""


def safetensors_bytes(hidden: int, vocab: int = 256) -> bytes:
    """A tiny model's weights in safetensors format."""
    import numpy as np
    from safetensors.numpy import save

    rng = np.random.default_rng(hidden)
    tensors = {
        "embed.weight": rng.standard_normal((vocab, hidden)).astype(np.float32),
        "lm_head.bias": np.zeros(vocab, dtype=np.float32),
    }
    return save(tensors, metadata={"format": "np"})


def tokenizer_files() -> dict[str, bytes | str]:
    """``tokenizer.json`` (a real word-level tokenizer) and its config files."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"<unk>": 0, "<|endoftext|>": 1}
    words = "once upon a time there was a tiny model that told stories"
    for word in words.split(" "):
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return {
        "tokenizer.json": tok.to_str(),
        "tokenizer_config.json": json.dumps(
            {"model_max_length": 64, "eos_token": "<|endoftext|>", "unk_token": "<unk>"}
        ),
        "special_tokens_map.json": json.dumps({"eos_token": "<|endoftext|>", "unk_token": "<unk>"}),
    }


def parquet_bytes(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def story_rows(kind: str, split: str, n: int) -> list[dict]:
    return [{"text": f"{kind} {split} number {i}: once upon a time.", "id": i} for i in range(n)]


def build_model_repo(hub: HubServer) -> dict[str, str]:
    """Create ``MODEL_REPO``; return ``{"v1.0": sha, "main": sha}``."""
    hub.create_repo(MODEL_REPO)
    base: dict[str, bytes | str | None] = {
        ".gitattributes": GITATTRIBUTES,
        "README.md": "# tiny-model\n\nA test fixture.\n",
        "extra/notes.txt": "Notes that only a full snapshot brings.\n",
        **tokenizer_files(),
    }
    v1 = hub.commit(
        MODEL_REPO,
        {
            **base,
            "config.json": json.dumps({"model_type": "tiny", "hidden_size": 4}),
            "model.safetensors": safetensors_bytes(4),
        },
        title="First version",
    )
    hub.tag(MODEL_REPO, "v1.0", v1)
    main = hub.commit(
        MODEL_REPO,
        {
            "config.json": json.dumps({"model_type": "tiny", "hidden_size": 8}),
            "model.safetensors": safetensors_bytes(8),
        },
        title="Wider model",
    )
    return {"v1.0": v1, "main": main}


def build_dataset_repo(hub: HubServer) -> dict[str, str]:
    """Create ``DATASET_REPO``; return ``{"v1.0": sha, "main": sha}``."""
    hub.create_repo(DATASET_REPO, "dataset")

    def files(n_train: int, n_val: int) -> dict[str, bytes | str | None]:
        out: dict[str, bytes | str | None] = {
            ".gitattributes": GITATTRIBUTES,
            "README.md": DATASET_README,
        }
        for folder, kind in (("data", "story"), ("poems", "poem")):
            out[f"{folder}/train-00000-of-00001.parquet"] = parquet_bytes(
                story_rows(kind, "train", n_train)
            )
            out[f"{folder}/validation-00000-of-00001.parquet"] = parquet_bytes(
                story_rows(kind, "validation", n_val)
            )
        return out

    v1 = hub.commit(DATASET_REPO, files(6, 2), repo_type="dataset", title="First rows")
    hub.tag(DATASET_REPO, "v1.0", v1, repo_type="dataset")
    main = hub.commit(DATASET_REPO, files(10, 3), repo_type="dataset", title="More rows")
    return {"v1.0": v1, "main": main}


def build_gated_repo(hub: HubServer) -> str:
    hub.create_repo(GATED_REPO, gated=True, granted_tokens={GRANTED_TOKEN})
    return hub.commit(
        GATED_REPO,
        {
            ".gitattributes": GITATTRIBUTES,
            "README.md": "# gated\n",
            "config.json": json.dumps({"model_type": "tiny", "hidden_size": 4}),
            "model.safetensors": safetensors_bytes(4),
        },
    )


def build_script_repo(hub: HubServer) -> str:
    hub.create_repo(SCRIPT_REPO, "dataset")
    return hub.commit(
        SCRIPT_REPO,
        {
            "README.md": "# scripted\n\nA data set defined by a loading script.\n",
            "scripted.py": (
                "import datasets\n\n\nclass Scripted(datasets.GeneratorBasedBuilder):\n    pass\n"
            ),
        },
        repo_type="dataset",
    )


def build_alias_repo(hub: HubServer) -> str:
    hub.create_repo(ALIAS_REPO, "dataset")
    return hub.commit(
        ALIAS_REPO,
        {
            ".gitattributes": GITATTRIBUTES,
            "README.md": "---\nlicense: cdla-sharing-1.0\n---\n# TinyStories (stand-in)\n",
            "data/train-00000-of-00001.parquet": parquet_bytes(story_rows("tiny", "train", 5)),
            "data/validation-00000-of-00001.parquet": parquet_bytes(
                story_rows("tiny", "validation", 2)
            ),
        },
        repo_type="dataset",
    )


def build_demo_repos(hub: HubServer, granted_tokens: set[str] | None = None) -> dict[str, dict]:
    """All the repos above; return their commit ids."""
    hub.valid_tokens |= {GRANTED_TOKEN, UNGRANTED_TOKEN} | set(granted_tokens or ())
    commits = {
        MODEL_REPO: build_model_repo(hub),
        DATASET_REPO: build_dataset_repo(hub),
        GATED_REPO: {"main": build_gated_repo(hub)},
        SCRIPT_REPO: {"main": build_script_repo(hub)},
        ALIAS_REPO: {"main": build_alias_repo(hub)},
    }
    if granted_tokens:
        hub.repos[("model", GATED_REPO)].granted_tokens |= set(granted_tokens)
    return commits
