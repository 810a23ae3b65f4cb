"""Checking and repairing a store: damaged files and values stored with the wrong type."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from common.experiments import layout
from common.experiments.column_types import registry
from common.experiments.legacy import convert_legacy
from common.experiments.read import Store
from common.experiments.schema import SCHEMA_FOLDER, SQL_TYPES, entry_name
from common.experiments.snapshot import take_snapshot
from common.experiments.write import rewrite_fresh


@dataclasses.dataclass
class StoreCheck:
    """What ``check_store`` found: ``problems`` (one line each) and the damaged files."""

    root: str
    files: int
    damaged: list[layout.Damaged]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_store(storage_dir: str | os.PathLike[str] | None = None) -> StoreCheck:
    """Verify every file of the store (checksums, footers) and every column's types.

    Returns:
        A ``StoreCheck``; ``.ok`` is False when some file is damaged, some value is stored with
        the wrong type, or files of the previous format are waiting to be converted.
    """
    with Store(storage_dir, warn=False) as store:
        snap = store.snapshot
        problems = store.problems + schema_problems(store.root)
        return StoreCheck(
            str(store.root), len(snap.files) + len(snap.damaged), snap.damaged, problems
        )


def schema_problems(root: Path) -> list[str]:
    """One line per ``schema/`` entry whose type disagrees with the stored files'."""
    return [
        f"schema entry {SCHEMA_FOLDER}/{entry_name(entry.column)} says column "
        f"{entry.column!r} holds {entry.logical} values, but the stored files hold "
        f"{found.logical} values; restore it from the data with: "
        "python tools/query_experiments.py --repair"
        for entry, found in registry(root).disagreements()
    ]


@dataclasses.dataclass
class RepairReport:
    """What ``repair_store`` did."""

    moved_aside: list[str]
    retyped: dict[str, list[str]]  # experiment -> columns converted
    remaining: list[str]
    converted_rows: int = 0  # rows taken over from files of the previous format
    unreadable_legacy: list[str] = dataclasses.field(default_factory=list)
    schema_restored: list[str] = dataclasses.field(default_factory=list)  # "column (old -> new)"


def repair_store(storage_dir: str | os.PathLike[str] | None = None) -> RepairReport:
    """Make a store whole again, losing nothing that can still be read.

    - Files of the previous format are converted (see ``legacy``) and moved into ``legacy/``.
    - Damaged files are moved into ``damaged/`` (never deleted), so that queries stop warning;
      the saves they held are gone unless another copy exists.
    - Schema entries (``schema/``) that are missing or disagree with the stored files are
      restored from the files' types; data is never converted to follow an entry.
    - Experiments holding values of the wrong type in a column (text in a number column, ...)
      are rewritten with those values converted to the column's type (the type most of its
      stored rows have); values that cannot be converted become NULL. The superseded rows stay
      on disk until the next compaction.
    """
    root = layout.resolve_dir(storage_dir, create=False)
    converted, unreadable = convert_legacy(root)
    moved: list[str] = []
    snap = take_snapshot(root)
    if snap.damaged:
        (root / layout.DAMAGED).mkdir(exist_ok=True)
        for bad in snap.damaged:
            aside = root / layout.DAMAGED / os.path.basename(bad.path)
            shutil.move(bad.path, aside)
            moved.append(str(aside))
    restored = [
        f"{found.column} ({old.logical if old else 'missing'} -> {found.logical})"
        for old, found in registry(root).restore()
    ]
    retyped: dict[str, list[str]] = {}
    with Store(root, warn=False) as store:
        by_exp: dict[str, dict[str, str]] = {}
        for col, (target, exps) in store.wrong_types.items():
            for exp in exps:
                by_exp.setdefault(exp, {})[col] = SQL_TYPES[target]
        for exp, casts in sorted(by_exp.items()):
            rewrite_fresh(root, exp, casts=casts)
            retyped[exp] = sorted(casts)
    return RepairReport(moved, retyped, check_store(root).problems, converted, unreadable, restored)
