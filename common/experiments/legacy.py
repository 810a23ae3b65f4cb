"""Converting a store written in the previous format (``s-*.parquet`` and ``c-*.parquet`` files at
the top of the folder, ordered by their writers' clocks) into the current one, once.

The old rules are applied one last time: each save is taken from the highest-ranked file that
holds it (compacted files above single saves, more saves first, then the name), and an
experiment's rows saved before its latest ``mode="overwrite"`` marker are dropped. The visible
rows become one new file; the old files are moved into ``legacy/`` (never deleted).
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from common.experiments import layout
from common.experiments.read import count, database, quote_ident, quote_str
from common.experiments.schema import FIXED_TYPES, kind_of_sql_type, logical_of_kind

_OLD_PREFIX = b'{"format":"research-experiments/1"'
LEGACY = "legacy"


def _old_footer(path: Path) -> dict[str, Any] | None:
    data = path.read_bytes()
    if len(data) < 12 or data[-4:] != b"PAR1":
        return None
    footer_len = int.from_bytes(data[-8:-4], "little")
    footer = data[-(footer_len + 8) : -8]
    at = footer.rfind(_OLD_PREFIX)
    if at < 0:
        return None
    try:
        meta, _ = json.JSONDecoder().raw_decode(footer[at:].decode("latin-1"))
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


def convert_legacy(root: Path) -> tuple[int, list[str]]:
    """Convert the previous format's files of ``root``; returns (rows kept, unreadable files).

    Unreadable old files are moved into ``legacy/`` too and listed, so that nothing stays
    hidden; their rows cannot be recovered.
    """
    names = sorted(n for n in os.listdir(root) if layout.is_legacy_name(n))
    if not names:
        return 0, []
    files: list[tuple[tuple[int, int, str], Path, dict[str, Any]]] = []
    unreadable: list[str] = []
    con = database(None).cursor()
    for name in names:
        path = root / name
        meta = _old_footer(path)
        if meta is None or not meta.get("saves"):
            unreadable.append(name)
            continue
        try:
            con.execute(f"SELECT count(*) FROM read_parquet({quote_str(str(path))})").fetchall()
        except Exception:  # noqa: BLE001 - any DuckDB failure: the file is damaged
            unreadable.append(name)
            continue
        compacted = name.startswith("c-")
        files.append(((0 if compacted else 1, -len(meta["saves"]), name), path, meta))
    files.sort(key=lambda f: (f[0][0], f[0][1], [-ord(c) for c in f[0][2]]))
    markers: dict[str, int] = {}
    for _, _, meta in files:
        for exp, t in meta.get("marks", {}).items():
            markers[exp] = max(markers.get(exp, -1), int(t))
    taken: set[str] = set()
    selects = []
    votes: dict[str, Counter[str]] = {}  # column -> logical type -> rows, as the old files hold
    for _, path, meta in files:
        mine = sorted(set(meta["saves"]) - taken)
        taken |= set(meta["saves"])
        if mine:
            in_list = ", ".join(quote_str(s) for s in mine)
            select = (
                f"SELECT * FROM read_parquet({quote_str(str(path))}) WHERE _rx_save IN ({in_list})"
            )
            selects.append(select)
            n = count(con, f"SELECT count(*) FROM ({select})")
            for name, typ, *_ in con.execute(f"DESCRIBE {select}").fetchall():
                if name.lower() not in FIXED_TYPES:
                    logical = logical_of_kind(kind_of_sql_type(typ))
                    votes.setdefault(name, Counter())[logical] += n
    kept = 0
    if selects:
        body = " UNION ALL BY NAME ".join(selects)
        drops = [
            f"NOT (experiment_name = {quote_str(exp)} AND saved_at < "
            f"make_timestamp(CAST({int(t)} AS BIGINT)))"
            for exp, t in sorted(markers.items())
        ]
        where = " AND ".join(drops) if drops else "true"
        op_id = layout.new_id()
        rows_sql = f"SELECT * REPLACE ({quote_str(op_id)} AS _rx_save) FROM ({body}) WHERE {where}"
        described = con.execute(f"DESCRIBE {rows_sql}").fetchall()
        kept = count(con, f"SELECT count(*) FROM ({rows_sql})")
        exps = [
            r[0]
            for r in con.execute(f"SELECT DISTINCT experiment_name FROM ({rows_sql})").fetchall()
        ]
        meta_cols: dict[str, str] = {}
        for _, _, meta in files:
            for c in meta.get("meta_cols", ()):
                meta_cols.setdefault(c.lower(), c)
        stored = [r[0] for r in described if r[0].lower() not in FIXED_TYPES]
        types = {r[0]: kind_of_sql_type(r[1]) for r in described}
        mixed = {  # columns the old files disagree on, stored as text here
            col: {t: max(1, round(n * kept / sum(c.values()))) for t, n in sorted(c.items())}
            for col, c in votes.items()
            if len(c) > 1 and types.get(col) == "text" and kept
        }
        footer = {
            "saves": [op_id],
            "dead": [],
            "exps": sorted(exps),
            "types": types,
            "mixed": mixed,
            "result_cols": [c for c in stored if c.lower() not in meta_cols],
            "meta_cols": [c for c in stored if c.lower() in meta_cols],
            "rows": kept,
        }
        cols = ", ".join(quote_ident(r[0]) for r in described)
        select = f"SELECT {cols} FROM ({rows_sql}) ORDER BY experiment_name"
        layout.write_query(root, layout.SAVES, op_id, con, select, footer, suffix=".op.parquet")
    (root / LEGACY).mkdir(exist_ok=True)
    for name in names:
        shutil.move(str(root / name), str(root / LEGACY / name))
    return kept, unreadable
