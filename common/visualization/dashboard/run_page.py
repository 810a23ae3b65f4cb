"""A run's page in the dashboard: its resolved config, environment, provenance, tags and note,
checkpoints folder, stored text samples and which system metrics it has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.experiments.sql import quote_ident
from common.visualization.dashboard.queries import (
    ENVIRONMENT_KEYS,
    NAME,
    SYSTEM_PREFIX,
    Dashboard,
    cell,
)


def run_page(dash: Dashboard, name: str) -> dict[str, Any]:
    """One run's page: its resolved config, environment, provenance, checkpoints folder and
    stored text results (evaluation samples).

    Raises:
        DashboardError: unknown run.
    """
    with dash._lock:
        meta = dash.meta()
        dash._check_names([name])
        summary = dash.store.execute(
            f"SELECT * FROM experiment_summary WHERE {quote_ident(NAME)} = ?", [name]
        )
        record = dict(zip(summary.columns, summary.rows[0]))
        table, _, _ = dash.runs_table(None)
        tags_col, note_col = map(quote_ident, meta["annotation_columns"])
        tags, note = dash.store.execute(
            f"SELECT {tags_col}, {note_col} FROM {quote_ident(table)} "
            f"WHERE {quote_ident(NAME)} = ?",
            [name],
        ).rows[0]
        samples: list[dict[str, Any]] = []
        if meta["text_columns"]:
            present = {n for n, _, _ in dash.store.columns()}
            keep = [c for c in ("step", meta["split_column"]) if c and c in present]
            text = meta["text_columns"]
            result = dash.store.execute(
                f"SELECT {', '.join(quote_ident(c) for c in [*keep, *text])} FROM experiments "
                f"WHERE {quote_ident(NAME)} = ? AND ("
                + " OR ".join(f"{quote_ident(c)} IS NOT NULL" for c in text)
                + ") ORDER BY 1 LIMIT 200",
                [name],
            )
            samples = [{c: cell(v) for c, v in zip(result.columns, row)} for row in result.rows]
    # a metadata key named like an annotation column (tags, note) is ``<key>_1`` in the summary
    renamed = {k[:-2]: v for k, v in record.items() if k.lower() in ("tags_1", "note_1")}
    record = {**record, **renamed}
    config = {
        k: cell(v)
        for k, v in record.items()
        if k in meta["metadata"] and k not in ENVIRONMENT_KEYS and v is not None
    }
    system = [m for m in meta["metrics"] if m.lower().startswith(SYSTEM_PREFIX)]
    environment = {k: cell(record[k]) for k in ENVIRONMENT_KEYS if record.get(k) is not None}
    provenance = {
        k: cell(record.get(k))
        for k in ("git_commit", "git_dirty", "host", "first_saved_at", "last_saved_at", "rows")
    }
    return {
        "name": name,
        "config": config,
        "environment": environment,
        "provenance": provenance,
        "checkpoints": checkpoints_of(dash.root, name),
        "samples": samples,
        "tags": list(tags or []),
        "note": note,
        "system_metrics": system,
    }


def checkpoints_of(store_root: Path, name: str) -> dict[str, Any]:
    """The run's checkpoints folder (``checkpoints/<name>`` beside the store) and the
    checkpoints in it, by name only."""
    folder = store_root.parent / "checkpoints" / name
    steps: list[str] = []
    if folder.is_dir():
        steps = sorted(p.name for p in folder.iterdir() if p.name.startswith("step_"))
    return {
        "folder": str(folder),
        "exists": folder.is_dir(),
        "run_json": (folder / "run.json").is_file(),
        "steps": steps,
    }
