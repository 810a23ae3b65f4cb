"""Writing: save, overwrite, delete, rename and rewind experiments; claim a name for a run; tag
and annotate an experiment.

A save is one new immutable file (``saves/<id>``) built with pyarrow: no DuckDB on the hot path.
Every other change writes one file too, an *op* file, whose footer names the saves it supersedes
(those of the experiment that the writer saw) and which holds the replacement rows, if any: an
overwrite's new rows, a rename's rows under the new name, a rewind's rows up to its step. One
file means the change is atomic, and naming saves instead of comparing times means the order of
changes never depends on any host's clock: saves made after the change stay visible.

Names and tags are changes too (``claims``, ``annotations``: files created atomically, no clock);
their public calls are here because deciding who owns a name asks whether it has rows.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from common.experiments import claims, layout
from common.experiments.annotations import (
    add_tags,
    forget_annotations,
    record_annotated_name,
    remove_tags,
    replace_note,
    valid_note,
    valid_tags,
)
from common.experiments.column_types import mixed_columns, registry
from common.experiments.compaction import after_save
from common.experiments.errors import (
    ExperimentExistsError,
    InvalidResultsError,
    StoreNotFoundError,
    UnknownExperimentError,
)
from common.experiments.read import (
    count,
    database,
    on_fresh_snapshot,
    quote_ident,
    quote_str,
    rows_relation,
)
from common.experiments.schema import (
    NAME_COLUMN,
    SAVE_COLUMN,
    Column,
    check_reserved,
    flatten_metadata,
    kind_of_sql_type,
    normalize_results,
    typed_column,
    union_names,
    validate_experiment_name,
)
from common.experiments.snapshot import Snapshot
from common.utils.provenance import git_info, hostname


def save_experiment(
    name: str,
    results: Any,
    metadata: Mapping[str, Any] | Any | None = None,
    *,
    storage_dir: str | os.PathLike[str] | None = None,
    mode: str = "append",
) -> Path:
    """Store result rows of experiment ``name`` as one new immutable Parquet file.

    Args:
        name: experiment name: non-empty, no path separators, ``..`` or control characters.
        results: a pandas DataFrame, a list of row dicts, a dict of columns, or a dict of scalars
            (one row). NaN is stored as NULL.
        metadata: run description (config, model name, ...) stored on every row; nested mappings
            and dataclasses are flattened with ``__`` (``training__lr``).
        storage_dir: the store folder; default ``get_experiments_dir()``.
        mode: ``"append"`` adds rows; ``"overwrite"`` replaces the experiment's rows that exist
            now (saves made later, by anyone, stay).

    Returns:
        The path of the file written.

    Raises:
        InvalidExperimentNameError: unsafe name.
        InvalidResultsError: no rows, clashing or reserved column names.
        SchemaError: a value does not fit its column's type in this store; nothing is written.
        StoreWriteError: the store cannot be written (disk full, permissions, ...).
        ValueError: unknown mode.
    """
    validate_experiment_name(name)
    if mode not in ("append", "overwrite"):
        raise ValueError(f"mode must be 'append' or 'overwrite', got {mode!r}")
    columns = normalize_results(results)
    meta = flatten_metadata(metadata)
    check_reserved([c.name for c in columns] + list(meta))
    result_names = {c.name.lower() for c in columns}
    clashes = [k for k in meta if k.lower() in result_names]
    if clashes:
        raise InvalidResultsError(
            f"metadata keys {clashes} are also result columns; rename one of them"
        )
    n_rows = len(columns[0].values)
    meta_columns = []
    for key, value in meta.items():
        col = typed_column(key, [value])
        assert col is not None
        meta_columns.append(col._replace(values=col.values * n_rows))
    root = layout.resolve_dir(storage_dir, create=True)
    reg = registry(root)
    new = reg.check(name, columns + meta_columns)
    reg.register(name, new)

    save_id = layout.new_id()
    prov = git_info()
    stored = [
        Column(NAME_COLUMN, "text", "text", [name] * n_rows),
        *columns,
        *meta_columns,
        Column("saved_at", "timestamp", "timestamp", [_utc_now()] * n_rows),
        Column("git_commit", "text", "text", [prov.get("git_commit")] * n_rows),
        Column("git_dirty", "bool", "bool", [prov.get("git_dirty")] * n_rows),
        Column("host", "text", "text", [hostname()] * n_rows),
        Column(SAVE_COLUMN, "text", "text", [save_id] * n_rows),
    ]
    dead: list[str] = []
    if mode == "overwrite":
        dead = sorted(on_fresh_snapshot(root, lambda snap: visible_saves(snap, name)))
    footer = {
        "saves": [save_id],
        "dead": dead,
        "exps": [name],
        "types": {c.name: c.kind for c in stored},
        "result_cols": [c.name for c in columns],
        "meta_cols": [c.name for c in meta_columns],
        "rows": n_rows,
    }
    data = _encode(stored, layout.kv_json(footer))
    claims.ensure_claimed(root, name)
    suffix = ".op.parquet" if dead else ".parquet"
    path = layout.write_bytes(root, layout.SAVES, save_id, data, suffix, sync_dir=bool(dead))

    after_save(root)
    return path


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


_ARROW_TYPES = {
    "int": "int64",
    "float": "float64",
    "text": "string",
    "bool": "bool_",
    "date": "date32",
}


def _encode(columns: Sequence[Column], kv: str) -> bytes:
    """One Parquet file (zstd) holding ``columns``, with the store document in its footer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = []
    for col in columns:
        if col.kind == "timestamp":
            typ = pa.timestamp("us")
        else:
            typ = getattr(pa, _ARROW_TYPES[col.kind])()
        arrays.append(pa.array(col.values, type=typ))
    table = pa.Table.from_arrays(arrays, names=[c.name for c in columns])
    buf = io.BytesIO()
    with pq.ParquetWriter(buf, table.schema, compression="zstd", store_schema=False) as writer:
        writer.write_table(table)
        writer.add_key_value_metadata({layout.KV_KEY: kv})
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# changes that supersede saves


def visible_saves(snap: Snapshot, name: str) -> set[str]:
    """The saves of experiment ``name`` that queries show in ``snap``."""
    relation = rows_relation(snap, experiments=[name])
    if relation is None:
        return set()
    con = database(None).cursor()
    rows = con.execute(
        f"SELECT DISTINCT {SAVE_COLUMN} FROM {relation} WHERE {NAME_COLUMN} = ?", [name]
    ).fetchall()
    return {r[0] for r in rows}


def rewrite(
    root: Path,
    snap: Snapshot,
    name: str,
    *,
    new_name: str | None = None,
    where: str | None = None,
    params: Sequence[Any] = (),
    casts: Mapping[str, str] | None = None,
) -> int:
    """Supersede the visible saves of ``name`` with one op file holding the rows to keep.

    Args:
        root: the store folder.
        snap: the snapshot the change is based on (its saves of ``name`` are superseded).
        name: the experiment.
        new_name: store the kept rows under this name (a rename).
        where: SQL condition on the rows to keep (None: keep all, ``"false"``: keep none).
        params: parameters of ``where``.
        casts: column -> SQL type to convert the kept values to (a repair).

    Returns:
        The number of rows superseded (visible before minus kept).
    """
    saves = visible_saves(snap, name)
    if not saves:
        return 0
    relation = rows_relation(snap, experiments=[name])
    assert relation is not None
    op_id = layout.new_id()
    con = database(None).cursor()
    in_saves = ", ".join(quote_str(s) for s in sorted(saves))
    base = f"SELECT * FROM {relation} WHERE {SAVE_COLUMN} IN ({in_saves})"
    total = count(con, f"SELECT count(*) FROM ({base})")
    keep = f"{base} AND ({where})" if where else base
    cols = [r[0] for r in con.execute(f"DESCRIBE {base}").fetchall()]
    replace = {SAVE_COLUMN: quote_str(op_id)}
    if new_name is not None:
        replace[NAME_COLUMN] = quote_str(new_name)
    for col, sql_type in (casts or {}).items():
        replace[col] = f"TRY_CAST({quote_ident(col)} AS {sql_type})"
    select = ", ".join(
        f"{replace[c]} AS {quote_ident(c)}" if c in replace else quote_ident(c) for c in cols
    )
    described = con.execute(f"DESCRIBE SELECT {select} FROM ({base})").fetchall()
    kept = count(con, f"SELECT count(*) FROM ({keep})", params)
    infos = [p.info for p in snap.parts if name in p.info.exps]
    result_cols = union_names([i.result_cols for i in infos])
    meta_cols = union_names([i.meta_cols for i in infos])
    types = {r[0]: kind_of_sql_type(r[1]) for r in described}
    footer = {
        "saves": [op_id],
        "dead": sorted(saves),
        "exps": [new_name or name] if kept else [],
        "types": types,
        "result_cols": result_cols,
        "meta_cols": meta_cols,
        "rows": kept,
        "mixed": mixed_columns([p for p in snap.parts if name in p.info.exps], types, kept),
    }
    layout.write_query(
        root,
        layout.SAVES,
        op_id,
        con,
        f"SELECT {select} FROM ({keep})",
        footer,
        params=params,
        suffix=".op.parquet",
    )
    return total - kept


def has_rows(root: Path, name: str) -> bool:
    """Whether experiment ``name`` has visible rows now (a fresh snapshot)."""
    return bool(on_fresh_snapshot(root, lambda snap: visible_saves(snap, name)))


def rewrite_fresh(root: Path, name: str, **options: Any) -> int:
    """``rewrite`` on a fresh snapshot, again on a new one when a compaction removed a file."""
    return on_fresh_snapshot(root, lambda snap: rewrite(root, snap, name, **options))


def delete_experiment(
    names: str | Sequence[str], *, storage_dir: str | os.PathLike[str] | None = None
) -> int:
    """Delete experiments: their rows stop being visible at once, compaction drops them for good.

    Saves made after the delete (by anyone) stay visible. The name becomes free, and the
    experiment's tags and note are gone. A name claimed by a run that never stored a row is
    freed (0 rows).

    Args:
        names: one experiment name or several.
        storage_dir: the store folder; default ``get_experiments_dir()``.

    Returns:
        The number of rows deleted.

    Raises:
        UnknownExperimentError: a name has neither rows nor a claim (nothing is deleted then).
        ExperimentBusyError: another process is renaming or deleting it.
        StoreWriteError: the store cannot be written.
    """
    wanted = [names] if isinstance(names, str) else list(dict.fromkeys(names))
    for name in wanted:
        validate_experiment_name(name)
    root = layout.resolve_dir(storage_dir, create=False)

    def check(snap: Snapshot) -> None:
        for name in wanted:
            if not visible_saves(snap, name) and claims.owner_of(root, name) is None:
                raise _unknown(snap, name)

    on_fresh_snapshot(root, check)
    total = 0
    for name in wanted:
        with claims.taking(root, name, has_rows=lambda n: has_rows(root, n)) as held:
            removed = rewrite_fresh(root, name, where="false")
        if removed:  # (a claim without rows may share its identity with a live experiment)
            forget_annotations(root, held.id)
        total += removed
    after_save(root)
    return total


def rename_experiment(
    old: str, new: str, *, storage_dir: str | os.PathLike[str] | None = None
) -> int:
    """Give experiment ``old``'s rows the name ``new`` (atomically).

    Returns:
        The number of rows renamed.

    Of several changes that claim ``new`` at once (renames, a new run, a first save) exactly
    one wins, decided by the name claims (``claims``), on one machine or on a shared folder.

    Raises:
        UnknownExperimentError: ``old`` has no rows.
        ExperimentExistsError: another experiment owns ``new`` (nothing is changed).
        ExperimentBusyError: another process is renaming or deleting ``old``.
        StoreWriteError: the store cannot be written.
    """
    validate_experiment_name(old)
    validate_experiment_name(new)
    root = layout.resolve_dir(storage_dir, create=False)
    if old == new:
        raise ExperimentExistsError(f"experiment {old!r} already has that name")

    def change(snap: Snapshot) -> int:
        if not visible_saves(snap, old):
            raise _unknown(snap, old)
        if visible_saves(snap, new):
            raise ExperimentExistsError(
                f"an experiment named {new!r} exists; delete or rename it first"
            )
        before = _row_count(snap, old)
        rewrite(root, snap, old, new_name=new)
        return before

    def rows(name: str) -> bool:
        return has_rows(root, name)

    def known(snap: Snapshot) -> None:
        if not visible_saves(snap, old):
            raise _unknown(snap, old)

    on_fresh_snapshot(root, known)  # for the message; the claims below decide
    try:
        with claims.taking(root, old, has_rows=rows) as held:
            claims.claim(root, new, held, has_rows=rows)
            try:
                renamed = on_fresh_snapshot(root, change)
            except BaseException:
                claims.release(root, new, held)
                raise
    except ExperimentExistsError as exc:
        raise ExperimentExistsError(f"cannot rename {old!r} to {new!r}: {exc}") from None
    record_annotated_name(root, held.id, new)
    after_save(root)
    return renamed


def rewind_experiment(
    name: str, after_step: int, *, storage_dir: str | os.PathLike[str] | None = None
) -> int:
    """Supersede the rows of ``name`` whose ``step`` is greater than ``after_step`` (atomically).

    Rows with a NULL step are kept; ``after_step=-1`` supersedes every stepped row. A resumed
    training run calls this with its checkpoint's step so that its rows match an uninterrupted
    run's.

    Returns:
        The number of rows superseded; 0 when the experiment has no such rows or does not exist.

    Raises:
        StoreWriteError: the store cannot be written.
    """
    validate_experiment_name(name)
    try:
        root = layout.resolve_dir(storage_dir, create=False)
    except StoreNotFoundError:  # no store yet: nothing to rewind
        return 0

    def change(snap: Snapshot) -> int:
        infos = [p.info for p in snap.parts if name in p.info.exps]
        if not any("step" in {c.lower() for c in i.types} for i in infos):
            return 0
        relation = rows_relation(snap, experiments=[name])
        if relation is None:
            return 0
        later = count(
            database(None).cursor(),
            f"SELECT count(*) FROM {relation} WHERE {NAME_COLUMN} = ? AND step > ?",
            [name, int(after_step)],
        )
        if not later:
            return 0
        keep = "step IS NULL OR step <= ?"
        return rewrite(root, snap, name, where=keep, params=[int(after_step)])

    removed = on_fresh_snapshot(root, change)
    if removed:
        after_save(root)
    return removed


def claim_experiment(
    name: str, owner: str, *, storage_dir: str | os.PathLike[str] | None = None
) -> None:
    """Make ``owner`` (a new run's identity, e.g. its run folder) the owner of experiment ``name``.

    Atomic against every other change that claims a name (another run, a rename onto ``name``,
    a first save), on one machine and on a shared folder. Claiming a name the same owner holds
    already is allowed (a resumed run). The experiment can be tagged from then on, before its
    first save.

    Raises:
        ExperimentExistsError: another experiment owns ``name`` or has rows under it.
        InvalidExperimentNameError: unsafe name.
        StoreWriteError: the store cannot be written.
        ValueError: ``owner`` is not a non-empty string.
    """
    validate_experiment_name(name)
    if not isinstance(owner, str) or not owner:
        raise ValueError("owner must be a non-empty string (e.g. the run's id)")
    root = layout.resolve_dir(storage_dir, create=True)
    wanted = claims.Claim(layout.new_id(), owner)
    claims.claim(root, name, wanted, has_rows=lambda n: has_rows(root, n), rejoin=True)


def tag_experiment(
    name: str, *tags: str, storage_dir: str | os.PathLike[str] | None = None
) -> list[str]:
    """Add ``tags`` to experiment ``name``; returns its tags afterwards.

    Raises:
        UnknownExperimentError: no experiment ``name`` (neither rows nor a run that claimed it).
        InvalidResultsError: a tag that is not text, empty, longer than 100 characters, with
            surrounding whitespace or a control character.
        ExperimentBusyError: another process is renaming or deleting ``name``.
        StoreWriteError: the store cannot be written.
    """
    wanted = valid_tags(tags)
    root, identity = _identity(name, storage_dir)
    return add_tags(root, identity, name, wanted)


def untag_experiment(
    name: str, *tags: str, storage_dir: str | os.PathLike[str] | None = None
) -> list[str]:
    """Remove ``tags`` from experiment ``name`` (tags it does not have are ignored); returns its
    tags afterwards. A tag added by someone else while this runs stays.

    Raises:
        UnknownExperimentError, InvalidResultsError, ExperimentBusyError, StoreWriteError: as
            ``tag_experiment``.
    """
    wanted = valid_tags(tags)
    root, identity = _identity(name, storage_dir)
    return remove_tags(root, identity, name, wanted)


def set_note(
    name: str, text: str | None, *, storage_dir: str | os.PathLike[str] | None = None
) -> None:
    """Set experiment ``name``'s note to ``text`` (None or empty: no note), replacing it.

    Raises:
        UnknownExperimentError, ExperimentBusyError, StoreWriteError: as ``tag_experiment``.
        InvalidResultsError: ``text`` is not text, or longer than 100,000 characters.
    """
    note = valid_note(text)
    root, identity = _identity(name, storage_dir)
    replace_note(root, identity, name, note)


def _identity(name: str, storage_dir: str | os.PathLike[str] | None) -> tuple[Path, str]:
    """The store folder and the identity of experiment ``name`` (claimed now if it has rows and
    no claim: a store written before claims existed)."""
    validate_experiment_name(name)
    root = layout.resolve_dir(storage_dir, create=False)
    return root, claims.identity_of(root, name, has_rows=lambda n: has_rows(root, n)).id


def _row_count(snap: Snapshot, name: str) -> int:
    relation = rows_relation(snap, experiments=[name])
    if relation is None:
        return 0
    sql = f"SELECT count(*) FROM {relation} WHERE {NAME_COLUMN} = ?"
    return count(database(None).cursor(), sql, [name])


def _unknown(snap: Snapshot, name: str) -> UnknownExperimentError:
    import difflib

    known = sorted(snap.experiments())
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return UnknownExperimentError(f"unknown experiment {name!r}.{hint}")
