"""Names and places: data set aliases, repo ids, and the asset folder of each download."""

from __future__ import annotations

import re
from pathlib import Path

from common.hub.errors import HFAssetError
from common.paths import get_assets_dir, get_datasets_dir, get_models_dir

DATASET_ALIASES: dict[str, str] = {
    "squad": "rajpurkar/squad",
    "squad_v2": "rajpurkar/squad_v2",
    "wmt14": "wmt/wmt14",
    "wmt16": "wmt/wmt16",
    "tinystories": "roneneldan/TinyStories",
    "wikitext": "Salesforce/wikitext",
    "imdb": "stanfordnlp/imdb",
    "glue": "nyu-mll/glue",
    "sst2": "stanfordnlp/sst2",
    "ag_news": "fancyzhx/ag_news",
    "cnn_dailymail": "abisee/cnn_dailymail",
    "gsm8k": "openai/gsm8k",
    "mnist": "ylecun/mnist",
    "cifar10": "uoft-cs/cifar10",
    "c4": "allenai/c4",
    "wikipedia": "wikimedia/wikipedia",
    "fineweb": "HuggingFaceFW/fineweb",
    "fineweb-edu": "HuggingFaceFW/fineweb-edu",
}
"""Bare names of well-known data sets mapped to their current Hub repo ids. Current ``datasets``
and ``huggingface_hub`` refuse bare names (``squad``); any ``org/name`` is accepted as is."""

MANIFEST_NAME = ".download.json"
PARTIAL_MARKER = ".partial-"
REPO_TYPES = ("model", "dataset", "space")
TYPE_LABEL = {"model": "model", "dataset": "data set", "space": "Space"}

_REPO_ID_RE = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]*$")
_HUB_URL_RE = re.compile(r"^(?:https?://(?:huggingface\.co|hf\.co)/|hf://)(datasets/)?(.+?)/?$")
_SPLIT_SAFE_RE = re.compile(r"[^A-Za-z0-9._+-]+")


def resolve_dataset_name(name: str) -> str:
    """The Hub repo id for a data set name: an alias of :data:`DATASET_ALIASES` or ``org/name``.

    Args:
        name: ``"tinystories"`` (alias, case-insensitive), ``"org/name"``, or a Hub URL of a data
            set (``https://huggingface.co/datasets/org/name``).

    Returns:
        The repo id, e.g. ``"roneneldan/TinyStories"``.

    Raises:
        HFAssetError: a bare name that is not an alias, or a malformed id.
    """
    cleaned = strip_hub_url(name.strip())
    alias = DATASET_ALIASES.get(cleaned.lower())
    if alias is not None:
        return alias
    if "/" not in cleaned:
        raise HFAssetError(
            f"'{name}' is not a known data set alias and not a repo id of the form 'org/name' "
            f"(the Hub no longer accepts bare names). Known aliases: "
            f"{', '.join(sorted(DATASET_ALIASES))}."
        )
    validate_repo_id(cleaned, "data set")
    return cleaned


def dataset_path(name: str) -> Path:
    """Where ``download_dataset`` puts ``name`` (any config or split).

    Args:
        name: alias or repo id, as passed to ``download_dataset``.

    Returns:
        The folder under ``get_datasets_dir()``; it may not exist yet.
    """
    return get_datasets_dir() / dataset_base_name(name)


def model_path(repo_id: str) -> Path:
    """Where ``download_model`` puts ``repo_id``: ``assets/models/<org>/<name>``.

    Args:
        repo_id: ``"org/name"`` (or a legacy single-name id such as ``"gpt2"``).

    Returns:
        The folder under ``get_models_dir()``; it may not exist yet.
    """
    return repo_files_path(repo_id, "model")


def repo_files_path(repo_id: str, repo_type: str = "model") -> Path:
    """Where ``download_model`` puts the files of a repo of type ``repo_type``.

    Models go to ``assets/models/<org>/<name>``; the raw files of data set and Space repos to
    ``assets/repos/datasets/<org>/<name>`` and ``assets/repos/spaces/<org>/<name>``.

    Raises:
        HFAssetError: a malformed repo id or an unknown repo type.
    """
    if repo_type not in REPO_TYPES:
        raise HFAssetError(f"Unknown repo type '{repo_type}': one of {', '.join(REPO_TYPES)}.")
    repo_id = strip_hub_url(repo_id.strip())
    validate_repo_id(repo_id, TYPE_LABEL[repo_type])
    if repo_type == "model":
        return get_models_dir() / repo_id
    return get_assets_dir() / "repos" / f"{repo_type}s" / repo_id


def strip_hub_url(name: str) -> str:
    """``org/name`` from a Hub URL (``https://huggingface.co/...``, ``hf://...``); else ``name``."""
    m = _HUB_URL_RE.match(name)
    if m is None:
        return name
    rest = m.group(2)
    if rest.startswith("datasets/"):
        rest = rest[len("datasets/") :]
    return "/".join(rest.split("/")[:2])


def validate_repo_id(repo_id: str, kind: str) -> None:
    """Raise :class:`HFAssetError` unless ``repo_id`` is a well-formed id of a ``kind`` repo."""
    if not _REPO_ID_RE.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise HFAssetError(
            f"'{repo_id}' is not a valid {kind} repo id: expected 'org/name' made of letters, "
            "digits, '-', '_' and '.' (no '--' or '..')."
        )


def dataset_base_name(name: str) -> str:
    """The data set's folder name under ``assets/datasets``: the alias or the repo id."""
    cleaned = strip_hub_url(name.strip())
    if cleaned.lower() in DATASET_ALIASES:
        return cleaned.lower()
    resolve_dataset_name(cleaned)  # validates
    return cleaned


def safe_split(split: str) -> str:
    """A config or split expression made safe for a folder name."""
    return _SPLIT_SAFE_RE.sub("_", split).strip("_") or "split"
