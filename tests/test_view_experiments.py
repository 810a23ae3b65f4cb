"""The dashboard without a browser: its answers on a real store filled with ``save_experiment``
(checked against the saved rows), its HTTP server on 127.0.0.1, the static export and the
command line's errors. Browser tests: ``test_view_experiments_browser.py``."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.utils import save_experiment
from common.visualization.dashboard.queries import Dashboard, DashboardError, chart_hint
from common.visualization.dashboard.run_page import run_page
from common.visualization.dashboard.server import DashboardServer

REPO_ROOT = Path(__file__).resolve().parent.parent
CLI = REPO_ROOT / "tools" / "view_experiments.py"

# name: (lr, seed, d_model) -- two seeds of lr 1e-3, one of 3e-3, one wider model
RUNS = {
    "lr1e-3-s1": (1e-3, 1, 64),
    "lr1e-3-s2": (1e-3, 2, 64),
    "lr3e-3-s1": (3e-3, 1, 64),
    "wide-s1": (1e-3, 1, 128),
}


def _rows(name: str, lr: float) -> list[dict[str, Any]]:
    rng = random.Random(name)
    rows = []
    for step in range(10, 110, 10):
        for split in ("train", "val"):
            loss = 1.5 + 3.0 * math.exp(-step * lr * 20) + rng.uniform(-0.3, 0.3)
            rows.append(
                {
                    "step": step,
                    "split": split,
                    "loss": loss,
                    "perplexity": math.exp(loss),
                    "lr": lr,
                    "tokens_seen": step * 256,
                    "elapsed_s": step / 10,
                }
            )
    return rows


SAVED = {name: _rows(name, lr) for name, (lr, _, _) in RUNS.items()}


def _config(lr: float, seed: int, d_model: int) -> dict[str, Any]:
    return {
        "model": {"d_model": d_model, "n_layers": 2},
        "training": {"lr": lr, "seed": seed},
        "torch_version": "2.13.0",
        "device": "cpu",
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("assets") / "outputs" / "experiments"
    for name, (lr, seed, width) in RUNS.items():
        rows = SAVED[name]
        # two saves per run, as the trainer appends evaluations
        save_experiment(name, rows[:10], _config(lr, seed, width), storage_dir=root)
        save_experiment(name, rows[10:], _config(lr, seed, width), storage_dir=root)
    (root.parent / "checkpoints" / "lr1e-3-s1" / "step_0000100").mkdir(parents=True)
    (root.parent / "checkpoints" / "lr1e-3-s1" / "run.json").write_text("{}")
    return root


@pytest.fixture
def dash(store: Path):
    data = Dashboard(store)
    yield data
    data.close()


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def _best(name: str, split: str = "val") -> float:
    return min(r["loss"] for r in SAVED[name] if split == "all" or r["split"] == split)


def _last(name: str, split: str = "val") -> float:
    rows = [r for r in SAVED[name] if r["split"] == split]
    return max(rows, key=lambda r: r["step"])["loss"]


# --------------------------------------------------------------------------- runs table


def test_runs_table_has_one_row_per_run_with_best_and_last_on_the_validation_split(dash):
    page = dash.runs(limit=50)
    assert page["split"] == "val" and page["total"] == len(RUNS)
    rows = {r[0]: dict(zip(page["columns"], r)) for r in page["rows"]}
    assert sorted(rows) == sorted(RUNS)
    for name, (lr, seed, width) in RUNS.items():
        row = rows[name]
        assert row["best_loss"] == pytest.approx(_best(name))
        assert row["last_loss"] == pytest.approx(_last(name))
        assert row["rows"] == len(SAVED[name]) and row["last_step"] == 100
        assert (row["training__lr"], row["training__seed"], row["model__d_model"]) == (
            lr,
            seed,
            width,
        )
        assert row["host"] and "git_commit" in row and "best_lr" not in row
    train = {r[0]: r for r in dash.runs(split="train", columns=["best_loss"])["rows"]}
    assert train["wide-s1"][1] == pytest.approx(_best("wide-s1", "train"))
    every = {r[0]: r for r in dash.runs(split="all", columns=["best_loss"])["rows"]}
    assert every["wide-s1"][1] == pytest.approx(_best("wide-s1", "all"))
    with pytest.raises(DashboardError, match="no rows with split 'test'"):
        dash.runs(split="test")


def test_sorting_filtering_columns_and_pages_happen_in_duckdb(dash):
    by_best = sorted(RUNS, key=_best)
    page = dash.runs(sort="best_loss", columns=["best_loss", "training__lr"])
    assert page["columns"] == ["experiment_name", "best_loss", "training__lr"]
    assert [r[0] for r in page["rows"]] == by_best
    page = dash.runs(sort="best_loss", descending=True, limit=2, offset=1)
    assert [r[0] for r in page["rows"]] == by_best[::-1][1:3] and page["total"] == len(RUNS)
    page = dash.runs(where="training__lr < 2e-3 AND model__d_model = 64")
    assert sorted(r[0] for r in page["rows"]) == ["lr1e-3-s1", "lr1e-3-s2"]
    assert page["total"] == 2
    cut = sorted(_best(n) for n in RUNS)[1]
    page = dash.runs(where=f"best_loss <= {cut!r}")
    assert sorted(r[0] for r in page["rows"]) == sorted(n for n in RUNS if _best(n) <= cut)
    for where, message in [
        ("true; DELETE FROM experiments", "refused"),
        ("nosuchcolumn > 1", "nosuchcolumn"),
        ("best_loss <", "refused"),
    ]:
        with pytest.raises(DashboardError, match=message) as info:
            dash.runs(where=where)
        assert "Columns of the runs table: experiment_name" in str(info.value)
    with pytest.raises(DashboardError, match="no column 'nope'"):
        dash.runs(sort="nope")
    with pytest.raises(DashboardError, match="page"):
        dash.runs(limit=0)


def test_curves_hold_every_stored_row_per_run_and_split(dash):
    answer = dash.curves(["wide-s1", "lr3e-3-s1"])
    assert [r["name"] for r in answer["runs"]] == ["wide-s1", "lr3e-3-s1"]
    assert answer["x_columns"][:3] == ["step", "tokens_seen", "elapsed_s"]
    assert "loss" in answer["metrics"] and "step" not in answer["metrics"]
    for run in answer["runs"]:
        for split in ("train", "val"):
            saved = sorted(
                (r for r in SAVED[run["name"]] if r["split"] == split), key=lambda r: r["step"]
            )
            series = run["splits"][split]
            assert series["step"] == [r["step"] for r in saved]
            assert series["loss"] == pytest.approx([r["loss"] for r in saved])
    with pytest.raises(DashboardError, match="unknown experiment"):
        dash.curves(["nobody"])


def test_compare_lists_exactly_the_differing_config_keys(dash):
    answer = dash.compare(["lr1e-3-s1", "lr1e-3-s2"])
    assert answer["differing"] == ["training__seed"]
    answer = dash.compare(["lr1e-3-s1", "lr3e-3-s1", "wide-s1"])
    assert sorted(answer["differing"]) == ["model__d_model", "training__lr"]
    row = dict(zip(answer["columns"], answer["rows"][2]))
    assert row["loss_best"] == pytest.approx(_best("wide-s1"))
    with pytest.raises(DashboardError, match="at least two"):
        dash.compare(["wide-s1"])


def test_run_page_has_config_environment_provenance_and_checkpoints(dash, store: Path):
    run = run_page(dash, "lr1e-3-s1")
    assert run["config"] == {
        "model__d_model": 64,
        "model__n_layers": 2,
        "training__lr": 1e-3,
        "training__seed": 1,
    }
    assert run["environment"] == {"torch_version": "2.13.0", "device": "cpu"}
    assert run["provenance"]["rows"] == len(SAVED["lr1e-3-s1"])
    assert set(run["provenance"]) >= {"git_commit", "git_dirty", "host"}
    assert run["checkpoints"] == {
        "folder": str(store.resolve().parent / "checkpoints" / "lr1e-3-s1"),
        "exists": True,
        "run_json": True,
        "steps": ["step_0000100"],
    }
    assert run["samples"] == []
    assert run_page(dash, "wide-s1")["checkpoints"]["exists"] is False
    with pytest.raises(DashboardError, match="unknown experiment"):
        run_page(dash, "nobody")


def test_sql_box_answers_read_only_queries_and_refuses_writes(dash, store: Path):
    before = _files(store)
    answer = dash.sql(
        "SELECT experiment_name, step, loss FROM experiments WHERE split = 'val' ORDER BY 1, 2"
    )
    assert answer["total"] == sum(1 for rows in SAVED.values() for r in rows if r["split"] == "val")
    assert answer["chart"] == {"x": "step", "y": ["loss"], "group": "experiment_name"}
    assert dash.sql("SELECT experiment_name FROM experiment_summary")["chart"] is None
    for sql in [
        "DELETE FROM experiments",
        "COPY (SELECT 1) TO 'x.csv'",
        "CREATE TABLE t AS SELECT 1",
        "SELECT 1; DROP VIEW experiments",
    ]:
        with pytest.raises(DashboardError, match="not allowed|one statement"):
            dash.sql(sql)
    with pytest.raises(DashboardError, match="nosuch"):
        dash.sql("SELECT nosuch FROM experiments")
    assert _files(store) == before


def test_chart_hint_needs_a_step_like_and_a_numeric_column():
    assert chart_hint(["a", "b"], [[1, 2]]) is None
    assert chart_hint(["global_step", "acc"], [[1, 0.5]]) == {
        "x": "global_step",
        "y": ["acc"],
        "group": None,
    }
    assert chart_hint(["step", "name"], [[1, "x"]]) is None


def test_poll_follows_new_saves_and_never_writes(tmp_path: Path):
    root = tmp_path / "store"
    save_experiment("a", SAVED["wide-s1"][:4], storage_dir=root)
    data = Dashboard(root)
    try:
        assert data.runs()["rows"][0][1] == 4
        before = _files(root)
        assert data.poll() is False and data.state()["version"] == 1
        assert _files(root) == before
        save_experiment("a", SAVED["wide-s1"][4:6], storage_dir=root)
        save_experiment("b", SAVED["wide-s1"][:2], {"training": {"lr": 0.1}}, storage_dir=root)
        assert data.poll() is True and data.state()["version"] == 2
        page = data.runs(columns=["rows", "training__lr"])
        assert page["rows"] == [["a", 6, None], ["b", 2, 0.1]]
    finally:
        data.close()


def test_damaged_files_are_reported_as_problems(tmp_path: Path):
    root = tmp_path / "store"
    save_experiment("a", SAVED["wide-s1"][:4], storage_dir=root)
    save_experiment("b", SAVED["wide-s1"][:4], storage_dir=root)
    victim = sorted((root / "saves").glob("*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:-40] + b"\0" * 40)
    data = Dashboard(root)
    try:
        problems = data.meta()["problems"]
        assert len(problems) == 1 and victim.name in problems[0]
        assert data.runs()["total"] == 1
    finally:
        data.close()


# --------------------------------------------------------------------------- HTTP server


@contextlib.contextmanager
def _serving(root: Path, refresh_s: float = 0.2) -> Iterator[DashboardServer]:
    srv = DashboardServer(root, "127.0.0.1", 0, refresh_s=refresh_s)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def server(store: Path) -> Iterator[DashboardServer]:
    with _serving(store) as srv:
        yield srv


def _get(url: str, host: str | None = None) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers["Content-Type"]


def test_server_serves_the_page_assets_and_json_api_only(server):
    base = server.url
    assert base.startswith("http://127.0.0.1:")
    status, body, ctype = _get(base)
    assert status == 200 and ctype.startswith("text/html")
    assert b'src="/static/plotly.min.js"' in body and b'src="/static/app.js"' in body
    assert b"http://" not in body and b"https://" not in body
    status, body, _ = _get(base + "static/plotly.min.js")
    assert status == 200 and len(body) > 1_000_000 and b"plotly" in body[:2000].lower()
    status, body, ctype = _get(base + "api/runs?sort=best_loss&columns=best_loss")
    assert status == 200 and ctype.startswith("application/json")
    assert [r[0] for r in json.loads(body)["rows"]] == sorted(RUNS, key=_best)
    query = urllib.parse.urlencode({"q": "DELETE FROM experiments"})
    status, body, _ = _get(base + "api/sql?" + query)
    assert status == 400 and "not allowed" in json.loads(body)["error"]
    status, body, _ = _get(base + "api/runs?limit=x")
    assert status == 400 and "limit" in json.loads(body)["error"]
    for path in ["static/../queries.py", "static/index.html", "api/nope", "etc/passwd", "x"]:
        assert _get(base + path)[0] == 404, path
    # a page of another site resolving its name to 127.0.0.1 (DNS rebinding) gets nothing
    assert _get(base + "api/meta", host="attacker.example:80")[0] == 403
    assert _get(base + "api/meta", host=f"localhost:{server.server_address[1]}")[0] == 200


def test_server_follows_a_save_within_a_few_polls(tmp_path: Path):
    root = tmp_path / "store"
    save_experiment("first", SAVED["wide-s1"][:2], storage_dir=root)
    with _serving(root) as server:
        version = json.loads(_get(server.url + "api/state")[1])["version"]
        save_experiment("late-run", SAVED["wide-s1"][:2], storage_dir=root)
        deadline = time.monotonic() + 10
        while json.loads(_get(server.url + "api/state")[1])["version"] == version:
            assert time.monotonic() < deadline, "the server did not see the new save"
            time.sleep(0.05)
        page = json.loads(_get(server.url + "api/runs")[1])
        assert [r[0] for r in page["rows"]] == ["first", "late-run"]


# --------------------------------------------------------------------------- export and CLI


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CLI), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
    )


def test_export_is_one_self_contained_file(store: Path, tmp_path: Path):
    from common.visualization.dashboard.export import export_report

    out = tmp_path / "report.html"
    summary = export_report(out, store, best="loss", top=2)
    html = out.read_text()
    assert summary.experiments == 2 and summary.curves == 2 and summary.bytes == len(html.encode())
    assert "<script src" not in html and "<link" not in html
    payload = html.split("window.DASHBOARD_STATIC = ", 1)[1].split(";</script>", 1)[0]
    data = json.loads(payload.replace("<\\/", "</"))
    assert [r[0] for r in data["table"]["rows"]] == sorted(RUNS, key=_best)[:2]
    assert data["restriction"] == "--best loss --top 2"
    summary = export_report(
        out, store, sql="SELECT DISTINCT experiment_name FROM experiments WHERE training__seed = 2"
    )
    assert summary.experiments == 1
    with pytest.raises(DashboardError, match="experiment_name column"):
        export_report(out, store, sql="SELECT 1 AS x")
    with pytest.raises(DashboardError, match="selected no experiments"):
        export_report(out, store, sql="SELECT experiment_name FROM experiments WHERE false")


def test_cli_mistakes_are_one_message_and_exit_2(store: Path, tmp_path: Path):
    cases = [
        (["--sql", "SELECT 1"], "--sql goes with --export"),
        (["--export", str(tmp_path / "r.html"), "--top", "3"], "--top and --mode go with --best"),
        (["--export", str(tmp_path / "r.png")], "give a .html name"),
        (["--dir", str(tmp_path / "missing")], "no experiment store at"),
        (["--port", "70000"], "at most 65535"),
        (["--port", "-1"], "--port"),
        (["--refresh", "0"], "--refresh must be at least 0.1"),
        (
            ["--dir", str(store), "--export", str(tmp_path / "r.html"), "--best", "nosuch"],
            "unknown metric 'nosuch'",
        ),
        (
            ["--dir", str(store), "--export", str(tmp_path / "r.html"), "--sql", "DROP VIEW x"],
            "not allowed",
        ),
        (["--dir", str(store), "--export", str(tmp_path / "no" / "r.html")], "does not exist"),
    ]
    for args, message in cases:
        result = _cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.count("\n") <= 3, result.stderr
    assert not (tmp_path / "r.html").exists()


def test_cli_export_writes_the_report(store: Path, tmp_path: Path):
    out = tmp_path / "r.html"
    result = _cli("--dir", str(store), "--export", str(out), "--best", "loss", "--top", "3")
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout and "3 experiment(s)" in result.stdout
    assert out.stat().st_size > 1_000_000


def test_cli_port_in_use_is_a_user_error(store: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _cli("--dir", str(store), "--port", str(port))
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_serves_until_ctrl_c_and_warns_off_loopback(store: Path):
    import signal

    for host, warned in (("127.0.0.1", False), ("0.0.0.0", True)):
        proc = subprocess.Popen(
            [sys.executable, str(CLI), "--dir", str(store), "--port", "0", "--host", host],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith(f"serving {store.resolve()} at http://{host}:"), line
            url = line.split(" at ", 1)[1].split()[0].replace("0.0.0.0", "127.0.0.1")
            assert _get(url + "api/state")[0] == 200
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert ("warning: listening on 0.0.0.0" in err) is warned
        assert "Traceback" not in err


def test_cli_parses_arguments_before_importing_anything_heavy():
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(CLI), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "--export" in result.stdout
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0] for line in result.stderr.splitlines()
    }
    assert not imported & {"duckdb", "plotly", "pandas", "torch", "pyarrow"}


# --------------------------------------------------------------------------- views over many runs

GRID = [  # lr x d_model x act x seed: 4 x 3 x 2 x 2 = 48 runs
    (lr, width, act, seed)
    for lr in (1e-4, 3e-4, 1e-3, 3e-3)
    for width in (64, 128, 256)
    for act in ("gelu", "relu")
    for seed in (1, 2)
]


def _grid_name(lr: float, width: int, act: str, seed: int) -> str:
    return f"lr{lr:g}-d{width}-{act}-s{seed}"


def _grid_rows(lr: float, width: int, act: str, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(_grid_name(lr, width, act, seed))
    rows = []
    for step in (10, 20, 30):
        # the learning rate matters most, the width a little, the activation not at all
        loss = 2.0 + abs(math.log10(lr) + 3) + 64 / width * 0.1 + rng.uniform(0, 0.05) + 1 / step
        rows.append({"step": step, "split": "val", "loss": loss, "sys__rss_mb": 100.0 + step})
        rows.append({"step": step, "split": "train", "loss": loss - 0.1})
    return rows


GRID_SAVED = {_grid_name(*g): _grid_rows(*g) for g in GRID}


@pytest.fixture(scope="module")
def grid_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("grid") / "outputs" / "experiments"
    for lr, width, act, seed in GRID:
        config = {"model": {"d_model": width, "act": act}, "training": {"lr": lr, "seed": seed}}
        name = _grid_name(lr, width, act, seed)
        save_experiment(name, GRID_SAVED[name], config, storage_dir=root)
    return root


@pytest.fixture
def grid(grid_store: Path):
    data = Dashboard(grid_store)
    yield data
    data.close()


def _grid_best(name: str) -> float:
    return min(r["loss"] for r in GRID_SAVED[name] if r["split"] == "val")


def _eta_squared(key: Any) -> float:
    """Between-group sum of squares over the total, computed here from the saved rows."""
    ys = {name: _grid_best(name) for name in GRID_SAVED}
    mean = sum(ys.values()) / len(ys)
    groups: dict[Any, list[float]] = {}
    for g in GRID:
        groups.setdefault(key(g), []).append(ys[_grid_name(*g)])
    between = sum(len(v) * (sum(v) / len(v) - mean) ** 2 for v in groups.values())
    return between / sum((y - mean) ** 2 for y in ys.values())


def test_parallel_coordinates_has_one_line_per_run_over_the_swept_columns(grid):
    from common.visualization.dashboard.views import parallel_coordinates

    pc = parallel_coordinates(grid)
    assert pc["metric"] == "best_loss" and pc["split"] == "val"
    assert sorted(pc["names"]) == sorted(GRID_SAVED)
    dims = {d["column"]: d for d in pc["dimensions"]}
    assert set(dims) == {"model__d_model", "model__act", "training__lr", "training__seed"}
    assert dims["training__lr"]["log"] and not dims["model__d_model"]["log"]
    assert dims["model__act"]["kind"] == "text"
    for i, name in enumerate(pc["names"]):
        lr, width, act, seed = next(g for g in GRID if _grid_name(*g) == name)
        assert dims["training__lr"]["values"][i] == lr
        assert dims["model__act"]["values"][i] == act
        assert pc["metric_values"][i] == pytest.approx(_grid_best(name))
    narrowed = parallel_coordinates(grid, where="training__lr >= 1e-3", columns=["training__lr"])
    assert len(narrowed["names"]) == 24 and [d["column"] for d in narrowed["dimensions"]] == [
        "training__lr"
    ]
    last = parallel_coordinates(grid, metric="loss", stat="last")
    assert last["metric"] == "last_loss"
    with pytest.raises(DashboardError, match="no parameter column"):
        parallel_coordinates(grid, columns=["nope"])
    with pytest.raises(DashboardError, match="no metric"):
        parallel_coordinates(grid, metric="nope")


def test_scatter_and_importance_from_the_runs(grid):
    from common.visualization.dashboard.views import importance, scatter

    sc = scatter(grid, x="training__lr")
    assert sc["log_x"] and len(sc["xs"]) == 48
    for name, x, y in zip(sc["names"], sc["xs"], sc["ys"]):
        assert x == next(g[0] for g in GRID if _grid_name(*g) == name)
        assert y == pytest.approx(_grid_best(name))
    assert scatter(grid, x="model__act")["kind"] == "text"
    imp = importance(grid)
    assert imp["source"] == "runs" and imp["runs"] == 48 and "eta squared" in imp["method"]
    ranked = [r["param"] for r in imp["importances"]]
    assert ranked[0] == "training__lr" and ranked[1] == "model__d_model"
    shares = {r["param"]: r["importance"] for r in imp["importances"]}
    assert shares["training__lr"] == pytest.approx(_eta_squared(lambda g: g[0]))
    assert shares["model__d_model"] == pytest.approx(_eta_squared(lambda g: g[1]))
    assert shares["model__act"] == pytest.approx(_eta_squared(lambda g: g[2]))


def test_run_page_lists_the_system_metrics_and_they_have_no_best(grid):
    name = _grid_name(*GRID[0])
    assert run_page(grid, name)["system_metrics"] == ["sys__rss_mb"]
    columns = grid.runs(limit=1)["all_columns"]
    assert "last_sys__rss_mb" in columns and "best_sys__rss_mb" not in columns


def test_importance_of_an_optuna_study_in_the_sweep_folder(grid_store: Path):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from common.visualization.dashboard.views import importance, studies

    folder = grid_store.parent / "sweeps" / "lr-search"
    folder.mkdir(parents=True)
    storage = JournalStorage(JournalFileBackend(str(folder / "study.journal")))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="lr-search", storage=storage)
    rng = random.Random(0)
    study.optimize(
        lambda t: (math.log10(t.suggest_float("lr", 1e-5, 1e-1, log=True)) + 3) ** 2
        + 0.01 * t.suggest_float("dropout", 0.0, 0.5)
        + rng.uniform(0, 1e-3),
        n_trials=30,
    )
    before = _files(folder)
    assert studies(grid_store) == ["lr-search"]
    data = Dashboard(grid_store)
    try:
        imp = importance(data, study="lr-search")
        assert imp["source"] == "optuna" and imp["trials"] == 30
        assert [r["param"] for r in imp["importances"]][0] == "lr"
        assert sum(r["importance"] for r in imp["importances"]) == pytest.approx(1.0)
        assert importance(data)["studies"] == ["lr-search"]
        with pytest.raises(DashboardError, match="no Optuna study"):
            importance(data, study="other")
    finally:
        data.close()
    assert _files(folder) == before  # read from a copy: the sweep's folder is never written


def test_views_and_batch_curves_over_http(grid_store: Path):
    with _serving(grid_store) as srv:
        base = srv.url
        status, body, _ = _get(base + "api/parcoords?columns=training__lr,model__act")
        assert status == 200 and len(json.loads(body)["names"]) == 48
        status, body, _ = _get(base + "api/scatter?x=model__d_model&metric=loss&stat=last")
        assert status == 200 and json.loads(body)["metric"] == "last_loss"
        status, body, _ = _get(base + "api/importance")
        assert json.loads(body)["importances"][0]["param"] == "training__lr"
        status, body, _ = _get(base + "api/parcoords?columns=nope")
        assert status == 400 and "nope" in json.loads(body)["error"]
        # a brush on an axis becomes the runs table's SQL filter
        where = urllib.parse.quote('"training__lr" BETWEEN 0.0003 AND 0.001')
        rows = json.loads(_get(base + f"api/runs?where={where}&limit=500")[1])["rows"]
        assert sorted(r[0] for r in rows) == sorted(
            _grid_name(*g) for g in GRID if 3e-4 <= g[0] <= 1e-3
        )
        # the curves of 20 runs: one GET with repeated names, or one POST
        names = sorted(GRID_SAVED)[:20]
        query = urllib.parse.urlencode([("name", n) for n in names])
        by_get = json.loads(_get(base + "api/curves?" + query)[1])
        status, by_post = _post(base + "api/curves", {"names": names})
        assert status == 200 and by_post == by_get
        assert [r["name"] for r in by_post["runs"]] == names
        for run in by_post["runs"]:
            val = [r["loss"] for r in GRID_SAVED[run["name"]] if r["split"] == "val"]
            assert run["splits"]["val"]["loss"] == pytest.approx(val)
            assert run["splits"]["val"]["sys__rss_mb"] == [110.0, 120.0, 130.0]
        status, answer = _post(base + "api/curves", {"names": "x"})
        assert status == 400 and "list of names" in answer["error"]


def _post(
    url: str, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> tuple[int, Any]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text.decode()


def test_tags_and_notes_are_written_only_from_the_page_itself(tmp_path: Path):
    from common.experiments import experiment_annotations, tag_experiment

    root = tmp_path / "outputs" / "experiments"
    for name in ("a", "b"):
        save_experiment(
            name, [{"step": 1, "loss": 2.0}], {"training": {"lr": 1e-3}}, storage_dir=root
        )
    tag_experiment("b", "from-cli", storage_dir=root)
    with _serving(root) as srv:
        base, port = srv.url, srv.server_address[1]
        page = _get(base)[1].decode()
        assert f'<meta name="dashboard-token" content="{srv.token}">' in page
        own = {"Origin": f"http://127.0.0.1:{port}", "X-Dashboard-Token": srv.token}
        rows = json.loads(_get(base + "api/runs?columns=tags,note")[1])["rows"]
        assert rows == [["a", [], None], ["b", ["from-cli"], None]]
        refused = [
            {},  # no Origin, no token (curl, a script)
            {"Origin": own["Origin"]},  # no token
            {**own, "X-Dashboard-Token": "guess"},
            {**own, "Origin": "http://evil.example"},  # a foreign page holding the token
            {**own, "Origin": f"http://127.0.0.1:{port + 1}"},
            {**own, "Origin": "null"},
            {**own, "Host": "attacker.example:80"},
        ]
        for headers in refused:
            for path, body in [
                ("tag", {"name": "a", "tag": "x"}),
                ("note", {"name": "a", "note": "x"}),
            ]:
                status, _ = _post(base + "api/" + path, body, headers)
                assert status == 403, (path, headers)
        assert experiment_annotations(root) == {"b": (["from-cli"], None)}
        status, answer = _post(base + "api/tag", {"name": "a", "tag": "baseline"}, own)
        assert status == 200 and answer["tags"] == ["baseline"]
        status, answer = _post(base + "api/note", {"name": "a", "note": "lr too high <b>"}, own)
        assert status == 200 and answer["note"] == "lr too high <b>"
        status, answer = _post(base + "api/untag", {"name": "b", "tag": "from-cli"}, own)
        assert status == 200 and answer["tags"] == []
        stored = experiment_annotations(root)  # re-read from the store
        assert stored["a"].tags == ["baseline"] and stored["a"].note == "lr too high <b>"
        assert "b" not in stored
        rows = json.loads(_get(base + "api/runs?columns=tags,note")[1])["rows"]
        assert rows == [["a", ["baseline"], "lr too high <b>"], ["b", [], None]]
        where = urllib.parse.quote("list_contains(tags, 'baseline')")
        assert json.loads(_get(base + f"api/runs?where={where}")[1])["total"] == 1
        run = json.loads(_get(base + "api/run?name=a")[1])
        assert run["tags"] == ["baseline"] and run["note"] == "lr too high <b>"
        # the user's mistakes: one message each, nothing written
        for path, body in [
            ("tag", {"name": "nope", "tag": "x"}),
            ("tag", {"name": "a", "tag": " padded "}),
            ("tag", {"name": "a"}),
            ("note", {"name": "a", "note": 3}),
        ]:
            status, answer = _post(base + "api/" + path, body, own)
            assert status == 400 and answer["error"], (path, body)
        status, answer = _post(base + "api/tag", None, own, raw=b"{not json")
        assert status == 400
        assert experiment_annotations(root)["a"].tags == ["baseline"]
        assert _post(base + "api/nope", {}, own)[0] == 404
    # the static export shows them read-only, and carries no token
    from common.visualization.dashboard.export import export_report

    html = export_report(tmp_path / "report.html", root).path.read_text()
    assert "baseline" in html and "lr too high \\u003cb\\u003e" in html
    assert '<meta name="dashboard-token"' not in html
