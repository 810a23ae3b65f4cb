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
- ``wmt/wmt14`` and ``rajpurkar/squad`` (data sets): what the ``wmt14`` and ``squad`` aliases point
  to, laid out as on the Hub (Parquet per config and split, ``dataset_info`` with exact row counts)
  with a few real-looking rows: ``wmt14`` has configs ``de-en`` and ``fr-en`` with train,
  validation and test; ``squad`` has ``plain_text`` with train and validation.
- ``other-org/tiny-other`` (model): another small model, to download into an occupied folder.
- ``research-test/demo-space`` (Space): an app's files.
- ``research-test/big-rows`` (data set) and ``research-test/big-model`` (model): about 1.5 MB of
  incompressible data each, to fill a small disk.
- ``google-bert/bert-base-uncased`` (model, also served as ``bert-base-uncased``; built on demand
  by :func:`build_bert_repo`, it needs torch): a real tiny BERT that ``transformers`` loads, with
  the file list of the real repo: safetensors and PyTorch weights, and TensorFlow, Flax, Rust, ONNX
  and CoreML files (opaque bytes of the size the real formats would have; nothing loads them).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from tests.hub_server import HubServer

MODEL_REPO = "research-test/tiny-model"
DATASET_REPO = "research-test/tiny-stories"
GATED_REPO = "research-test/gated-model"
SCRIPT_REPO = "research-test/scripted"
ALIAS_REPO = "roneneldan/TinyStories"
WMT14_REPO = "wmt/wmt14"
SQUAD_REPO = "rajpurkar/squad"
OTHER_REPO = "other-org/tiny-other"
SPACE_REPO = "research-test/demo-space"
BIG_DATASET_REPO = "research-test/big-rows"
BIG_MODEL_REPO = "research-test/big-model"
BERT_REPO = "google-bert/bert-base-uncased"
BERT_LEGACY_ID = "bert-base-uncased"
BERT_PYTORCH_FILES = {
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "README.md",
    "LICENSE",
}
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


WMT14_PAIRS = [
    ("Resumption of the session", "Wiederaufnahme der Sitzungsperiode", "Reprise de la session"),
    (
        "Please rise, then, for this minute's silence.",
        "Ich bitte Sie, sich zu einer " "Schweigeminute zu erheben.",
        "Je vous invite à vous lever pour cette minute de silence.",
    ),
    (
        "The House rose and observed a minute's silence",
        "Das Parlament erhebt sich zu einer " "Schweigeminute.",
        "Le Parlement, debout, observe une minute de silence",
    ),
    (
        "Madam President, on a point of order.",
        "Frau Präsidentin, zur Geschäftsordnung.",
        "Madame la Présidente, c'est une motion de procédure.",
    ),
    ("Thank you very much.", "Vielen Dank.", "Merci beaucoup."),
    ("The debate is closed.", "Die Aussprache ist geschlossen.", "Le débat est clos."),
]
WMT14_ROWS = {"train": 4, "validation": 1, "test": 1}


def _readme(configs: dict[str, dict[str, int]], features: str, pretty: str) -> str:
    """A Hub data set card: ``configs:`` with Parquet paths and ``dataset_info`` row counts."""
    info, cfgs = [], []
    for config, splits in configs.items():
        info.append(f"- config_name: {config}\n  features:\n{features}  splits:")
        cfgs.append(f"- config_name: {config}\n  data_files:")
        for split, n in splits.items():
            info.append(f"  - name: {split}\n    num_bytes: {100 * n}\n    num_examples: {n}")
            cfgs.append(f"  - split: {split}\n    path: {config}/{split}-*.parquet")
    return (
        "---\ndataset_info:\n"
        + "\n".join(info)
        + "\nconfigs:\n"
        + "\n".join(cfgs)
        + f"\n---\n\n# {pretty} (stand-in)\n"
    )


def build_wmt14_repo(hub: HubServer) -> str:
    hub.create_repo(WMT14_REPO, "dataset")
    files: dict[str, bytes | str | None] = {".gitattributes": GITATTRIBUTES}
    features = (
        "  - name: translation\n    dtype:\n      translation:\n        languages:\n"
        "        - {src}\n        - en\n"
    )
    infos = []
    for config, column in (("de-en", 1), ("fr-en", 2)):
        src = config.split("-")[0]
        start = 0
        for split, n in WMT14_ROWS.items():
            rows = [
                {"translation": {src: pair[column], "en": pair[0]}}
                for pair in WMT14_PAIRS[start : start + n]
            ]
            start += n
            files[f"{config}/{split}-00000-of-00001.parquet"] = parquet_bytes(rows)
        infos.append(_readme({config: WMT14_ROWS}, features.format(src=src), "WMT14"))
    # One card with both configs.
    head = [card.split("\nconfigs:\n")[0].removeprefix("---\ndataset_info:\n") for card in infos]
    cfgs = [card.split("\nconfigs:\n")[1].split("\n---\n")[0] for card in infos]
    files["README.md"] = (
        "---\ndataset_info:\n"
        + "\n".join(head)
        + "\nconfigs:\n"
        + "\n".join(cfgs)
        + "\n---\n\n# WMT14 (stand-in)\n"
    )
    return hub.commit(WMT14_REPO, files, repo_type="dataset")


SQUAD_ROWS = [
    {
        "id": "5733be284776f41900661182",
        "title": "University_of_Notre_Dame",
        "context": "Architecturally, the school has a Catholic character. Atop the Main "
        "Building's gold dome is a golden statue of the Virgin Mary.",
        "question": "What sits on top of the Main Building at Notre Dame?",
        "answers": {"text": ["a golden statue of the Virgin Mary"], "answer_start": [92]},
    },
    {
        "id": "56be4db0acb8001400a502ec",
        "title": "Super_Bowl_50",
        "context": "Super Bowl 50 was an American football game to determine the champion of "
        "the National Football League (NFL) for the 2015 season.",
        "question": "Which NFL season did Super Bowl 50 determine the champion of?",
        "answers": {"text": ["2015"], "answer_start": [115]},
    },
    {
        "id": "5733bf84d058e614000b61be",
        "title": "University_of_Notre_Dame",
        "context": "As at most other universities, Notre Dame's students run a number of news "
        "media outlets.",
        "question": "Who runs the news media outlets at Notre Dame?",
        "answers": {"text": ["Notre Dame's students"], "answer_start": [32]},
    },
]


def build_squad_repo(hub: HubServer) -> str:
    hub.create_repo(SQUAD_REPO, "dataset")
    features = (
        "  - name: id\n    dtype: string\n  - name: title\n    dtype: string\n"
        "  - name: context\n    dtype: string\n  - name: question\n    dtype: string\n"
        "  - name: answers\n    sequence:\n    - name: text\n      dtype: string\n"
        "    - name: answer_start\n      dtype: int32\n"
    )
    return hub.commit(
        SQUAD_REPO,
        {
            ".gitattributes": GITATTRIBUTES,
            "README.md": _readme({"plain_text": {"train": 2, "validation": 1}}, features, "SQuAD"),
            "plain_text/train-00000-of-00001.parquet": parquet_bytes(SQUAD_ROWS[:2]),
            "plain_text/validation-00000-of-00001.parquet": parquet_bytes(SQUAD_ROWS[2:]),
        },
        repo_type="dataset",
    )


def build_other_repo(hub: HubServer) -> str:
    hub.create_repo(OTHER_REPO)
    return hub.commit(
        OTHER_REPO,
        {
            ".gitattributes": GITATTRIBUTES,
            "config.json": json.dumps({"model_type": "tiny", "hidden_size": 2}),
            "model.safetensors": safetensors_bytes(2),
        },
    )


def build_space_repo(hub: HubServer) -> str:
    hub.create_repo(SPACE_REPO, "space")
    return hub.commit(
        SPACE_REPO,
        {
            "README.md": "---\nsdk: gradio\n---\n# demo space\n",
            "app.py": "import gradio as gr\n\ngr.Interface(lambda x: x, 'text', 'text').launch()\n",
            "requirements.txt": "gradio\n",
        },
        repo_type="space",
    )


BIG_BYTES = 1_500_000


def build_big_repos(hub: HubServer) -> None:
    import numpy as np
    from safetensors.numpy import save

    rng = np.random.default_rng(0)
    hub.create_repo(BIG_DATASET_REPO, "dataset")
    rows = [{"text": rng.bytes(1500).hex()} for _ in range(BIG_BYTES // 3000)]
    hub.commit(
        BIG_DATASET_REPO,
        {".gitattributes": GITATTRIBUTES, "data/train-00000-of-00001.parquet": parquet_bytes(rows)},
        repo_type="dataset",
    )
    hub.create_repo(BIG_MODEL_REPO)
    weights = rng.standard_normal(BIG_BYTES // 4).astype(np.float32)
    hub.commit(
        BIG_MODEL_REPO,
        {
            "config.json": json.dumps({"model_type": "tiny"}),
            "model.safetensors": save({"w": weights}),
        },
    )


def build_bert_repo(hub: HubServer) -> dict[str, int]:
    """Create ``BERT_REPO`` (once) as a real tiny BERT in every format; return the file sizes."""
    if ("model", BERT_REPO) not in hub.repos:
        hub.create_repo(BERT_REPO)
        hub.commit(BERT_REPO, _bert_files(), title="Tiny BERT in every format")
        hub.rename(BERT_LEGACY_ID, BERT_REPO)
    commit = hub.repos[("model", BERT_REPO)].resolve("main")
    assert commit is not None
    return {path: blob.size for path, blob in commit.files.items()}


def _bert_files() -> dict[str, bytes | str | None]:
    import tempfile

    import numpy as np
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    words = ["the", "a", "tiny", "model", "told", "stories", "once", "upon", "time", "there", "was"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    vocab += [f"[unused{i}]" for i in range(config.vocab_size - len(vocab))]
    files: dict[str, bytes | str | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = BertForMaskedLM(config)
        model.save_pretrained(tmp, safe_serialization=True)
        (Path(tmp) / "vocab.txt").write_text("\n".join(vocab) + "\n")
        tokenizer = BertTokenizerFast(vocab_file=str(Path(tmp) / "vocab.txt"))
        tokenizer.save_pretrained(tmp)
        for name in (
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "vocab.txt",
            "tokenizer_config.json",
        ):
            files[name] = (Path(tmp) / name).read_bytes()
        torch.save(model.state_dict(), Path(tmp) / "pytorch_model.bin")
        files["pytorch_model.bin"] = (Path(tmp) / "pytorch_model.bin").read_bytes()
    size = len(files["model.safetensors"])  # type: ignore[arg-type]
    rng = np.random.default_rng(1)
    mlpackage = "coreml/fill-mask/float32_model.mlpackage"
    for name in (
        "tf_model.h5",
        "flax_model.msgpack",
        "rust_model.ot",
        "model.onnx",
        f"{mlpackage}/Data/com.apple.CoreML/weights/weight.bin",
    ):
        files[name] = rng.bytes(size)
    files[f"{mlpackage}/Data/com.apple.CoreML/model.mlmodel"] = rng.bytes(2048)
    files[f"{mlpackage}/Manifest.json"] = json.dumps({"fileFormatVersion": "1.0.0"})
    files[".gitattributes"] = GITATTRIBUTES + "*.h5 filter=lfs\n*.msgpack filter=lfs\n"
    files["LICENSE"] = "Apache License 2.0 (stand-in)\n"
    files["README.md"] = "---\nlicense: apache-2.0\n---\n# bert-base-uncased (tiny stand-in)\n"
    return files


def build_demo_repos(hub: HubServer, granted_tokens: set[str] | None = None) -> dict[str, dict]:
    """All the repos above; return their commit ids."""
    hub.valid_tokens |= {GRANTED_TOKEN, UNGRANTED_TOKEN} | set(granted_tokens or ())
    commits = {
        MODEL_REPO: build_model_repo(hub),
        DATASET_REPO: build_dataset_repo(hub),
        GATED_REPO: {"main": build_gated_repo(hub)},
        SCRIPT_REPO: {"main": build_script_repo(hub)},
        ALIAS_REPO: {"main": build_alias_repo(hub)},
        WMT14_REPO: {"main": build_wmt14_repo(hub)},
        SQUAD_REPO: {"main": build_squad_repo(hub)},
        OTHER_REPO: {"main": build_other_repo(hub)},
        SPACE_REPO: {"main": build_space_repo(hub)},
    }
    build_big_repos(hub)
    if granted_tokens:
        hub.repos[("model", GATED_REPO)].granted_tokens |= set(granted_tokens)
    return commits
