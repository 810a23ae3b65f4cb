"""Which files of a repo a model download fetches: the default rule (what ``transformers`` and
PyTorch load), one file, glob patterns, or every file; and what a folder already covers."""

from __future__ import annotations

import difflib
import fnmatch
import sys
from typing import Any

from common.hub.errors import EntryNotFoundError
from common.hub.summary import fmt_bytes
from common.hub.translate import Context

# Files of other frameworks and runtimes: not read by transformers/PyTorch.
_OTHER_FRAMEWORK_DIRS = {"onnx", "coreml", "openvino", "tflite", "tf", "flax", "jax", "gguf", "mlx"}
_OTHER_FRAMEWORK_FILES = (
    "*.h5",
    "*.msgpack",
    "*.onnx",
    "*.onnx_data",
    "*.onnx.data",
    "*.ot",
    "*.gguf",
    "*.ggml",
    "*.tflite",
    "*.mlmodel",
    "*.pb",
    "*.ckpt.*",
    "*.ckpt",
    "openvino_*",
    "*.npz",
)
_OTHER_FRAMEWORK_SUFFIX_DIRS = (".mlpackage", ".mlmodelc")
_TORCH_WEIGHTS = (".bin", ".pt", ".pth")
_GIT_FILES = {".gitattributes", ".gitignore"}


def _weight_format(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1].removesuffix(".index.json")
    if name.endswith(".safetensors"):
        return "safetensors"
    if name.endswith(_TORCH_WEIGHTS):
        return "pytorch"
    return None


def _other_framework(path: str) -> bool:
    *folders, name = path.split("/")
    if any(
        f.lower() in _OTHER_FRAMEWORK_DIRS or f.endswith(_OTHER_FRAMEWORK_SUFFIX_DIRS)
        for f in folders
    ):
        return True
    return name in _GIT_FILES or any(fnmatch.fnmatch(name, pat) for pat in _OTHER_FRAMEWORK_FILES)


def select_model_files(files: list[str]) -> list[str]:
    """The files of a model repo that loading it with ``transformers``/PyTorch needs.

    Configs, tokenizer and generation files, code and docs, and the weights in one format:
    safetensors (with the shard index) when the repo has any, else PyTorch ``.bin``/``.pt``.
    TensorFlow, Flax, ONNX, CoreML, OpenVINO, TFLite, Rust and GGUF files and folders are left
    out, as are git's own files.

    Args:
        files: the repo's file paths.

    Returns:
        The selected paths, in the order given.
    """
    candidates = [f for f in files if not _other_framework(f)]
    formats = {_weight_format(f) for f in candidates}
    chosen = "safetensors" if "safetensors" in formats else "pytorch"
    return [f for f in candidates if _weight_format(f) in (None, chosen)]


def as_list(patterns: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    """One pattern or several, as a list (None stays None)."""
    if patterns is None:
        return None
    return [patterns] if isinstance(patterns, str) else list(patterns)


def selection(
    filename: str | None,
    include: list[str] | None,
    exclude: list[str] | None,
    all_files: bool,
    repo_type: str,
) -> dict[str, Any]:
    """The rule of a request, as the manifest records it."""
    if filename is not None:
        return {"rule": "file", "filename": filename}
    if include or exclude:
        return {"rule": "patterns", "include": include, "exclude": exclude}
    return {"rule": "all" if all_files or repo_type != "model" else "default"}


def selections(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The rules a folder's downloads used."""
    if "selections" in manifest:
        return list(manifest["selections"])
    # Manifests before 2026-12 recorded snapshots; no patterns meant every file.
    out: list[dict[str, Any]] = []
    for snap in manifest.get("snapshots", []):
        if snap.get("include") is None and snap.get("exclude") is None:
            out.append({"rule": "all"})
        else:
            out.append({"rule": "patterns", **snap})
    return out


def selection_covered(manifest: dict[str, Any], rule: dict[str, Any]) -> bool:
    """Whether the files the manifest lists include every file ``rule`` asks for."""
    files = manifest.get("files") or {}
    if rule["rule"] == "file":
        return rule["filename"] in files
    held = selections(manifest)
    return {"rule": "all"} in held or rule in held


def select_files(ctx: Context, siblings: list[str], rule: dict[str, Any]) -> list[str]:
    """The repo files ``rule`` picks out of ``siblings``.

    Raises:
        EntryNotFoundError: no such file, or no file matches the patterns.
    """
    listing = f"Files: {', '.join(siblings[:20])}{' ...' if len(siblings) > 20 else ''}"
    if rule["rule"] == "file":
        filename = rule["filename"]
        if filename not in siblings:
            close = difflib.get_close_matches(filename, siblings, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise EntryNotFoundError(
                f"{ctx.what} has no file '{filename}' at revision '{ctx.revision or 'main'}'."
                f"{hint} {listing}"
            )
        return [filename]
    if rule["rule"] == "patterns":
        from huggingface_hub.utils import filter_repo_objects

        wanted = list(
            filter_repo_objects(
                siblings, allow_patterns=rule["include"], ignore_patterns=rule["exclude"]
            )
        )
        if not wanted:
            raise EntryNotFoundError(
                f"No file of {ctx.what} matches include={rule['include']} "
                f"exclude={rule['exclude']}. {listing}"
            )
        return wanted
    return list(siblings) if rule["rule"] == "all" else select_model_files(siblings)


def announce(
    ctx: Context, wanted: list[str], sizes: dict[str, int | None], left_out: list[str]
) -> None:
    """The selection, on stderr, before the transfer starts."""
    total = fmt_bytes(sum(sizes.get(f) or 0 for f in wanted))
    lines = [
        f"Fetching {len(wanted)} file{'s' if len(wanted) != 1 else ''} ({total}) of "
        f"{ctx.what}: {', '.join(wanted)}"
    ]
    if left_out:
        shown = ", ".join(left_out[:12]) + (" ..." if len(left_out) > 12 else "")
        lines.append(
            f"Left out {len(left_out)} file{'s' if len(left_out) != 1 else ''} that "
            f"transformers/PyTorch do not load ({shown}); --all-files fetches them."
        )
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
