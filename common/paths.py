"""Where things live: the repository root and the assets folders.

Every folder is created on first use. ``RESEARCH_ASSETS_DIR`` relocates the whole assets tree (for
tests and for shared machines); it is read on every call, so tests may set it at any time.
"""

from __future__ import annotations

from pathlib import Path

from common import settings
from common.settings import ASSETS_ENV_VAR  # noqa: F401 (the name users import from here)

REPO_ROOT = Path(__file__).resolve().parent.parent


def repo_root() -> Path:
    """The repository root (the folder holding ``common/`` and ``projects/``)."""
    return REPO_ROOT


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def get_assets_dir() -> Path:
    """The assets root: ``$RESEARCH_ASSETS_DIR`` if set, else ``<repo>/assets``."""
    override = settings.assets_dir_override()
    return _ensure(Path(override).expanduser().resolve() if override else REPO_ROOT / "assets")


def get_datasets_dir() -> Path:
    """Downloaded data sets: ``assets/datasets``."""
    return _ensure(get_assets_dir() / "datasets")


def get_models_dir() -> Path:
    """Downloaded models: ``assets/models``."""
    return _ensure(get_assets_dir() / "models")


def get_outputs_dir() -> Path:
    """Everything runs produce: ``assets/outputs``."""
    return _ensure(get_assets_dir() / "outputs")


def get_experiments_dir() -> Path:
    """The experiment store (Parquet): ``assets/outputs/experiments``."""
    return _ensure(get_outputs_dir() / "experiments")


def get_checkpoints_dir() -> Path:
    """Model checkpoints, one folder per run: ``assets/outputs/checkpoints``."""
    return _ensure(get_outputs_dir() / "checkpoints")


def get_cache_dir() -> Path:
    """Derived data that can be rebuilt at any time (token files, trained tokenizers)."""
    return _ensure(get_assets_dir() / "cache")


ASSET_DIR_GETTERS = {
    "assets": get_assets_dir,
    "datasets": get_datasets_dir,
    "models": get_models_dir,
    "experiments": get_experiments_dir,
    "checkpoints": get_checkpoints_dir,
    "cache": get_cache_dir,
}
