"""The exploratory notebooks run top to bottom against a temporary experiment store."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

from common.paths import get_experiments_dir
from common.utils import save_experiment

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO_ROOT / "exploratory" / "experiments_overview.ipynb"
KERNEL_NAME = "research-test-python"


@pytest.fixture
def kernel_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec that runs THIS interpreter (the venv's), found first on JUPYTER_PATH."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "research test kernel",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL_NAME


def _fill_store() -> None:
    """Three runs in the default store (RESEARCH_ASSETS_DIR points at a temp folder)."""
    for k, name in enumerate(["nb-alpha", "nb-beta", "nb-gamma"]):  # gamma is best
        rows = []
        for step in range(0, 200, 20):
            loss = 4.0 * math.exp(-step / 60) + 2.2 - 0.4 * k
            rows.append({"step": step, "epoch": 0, "split": "train", "loss": loss,
                         "perplexity": math.exp(loss)})  # fmt: skip
        rows.append({"step": 180, "epoch": 0, "split": "val", "loss": loss + 0.1,
                     "perplexity": math.exp(loss + 0.1)})  # fmt: skip
        save_experiment(name, rows, {"model": name, "training": {"lr": 1e-3}})


def test_notebook_is_committed_without_outputs() -> None:
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "the notebook has no code cells"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_experiments_overview_runs_against_a_temporary_store(
    kernel_name: str, tmp_path: Path
) -> None:
    import nbformat
    from nbclient import NotebookClient

    _fill_store()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys\nprint('KERNEL_PREFIX', sys.prefix)"))
    workdir = tmp_path / "elsewhere"  # the kernel runs outside the repository
    workdir.mkdir()
    client = NotebookClient(
        nb, timeout=180, kernel_name=kernel_name, resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()  # raises CellExecutionError (with the cell's traceback) if a cell fails

    texts, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", out
            texts.append(out.get("text", "") + out.get("data", {}).get("text/plain", ""))
            images += "image/png" in out.get("data", {})
    text = "\n".join(texts)

    assert f"KERNEL_PREFIX {sys.prefix}" in text  # the venv's interpreter ran it
    assert str(get_experiments_dir()) in text  # it read the temporary store
    assert "3 experiments" in text
    for name in ("nb-alpha", "nb-beta", "nb-gamma"):
        assert name in text
    ranking = next(t for t in texts if "rank" in t and "perplexity" in t).splitlines()
    assert "nb-gamma" in ranking[1] and "nb-alpha" in ranking[3]  # the best run ranks first
    assert images == 2  # training curves and the best-value bar chart
