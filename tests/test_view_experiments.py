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
    run = dash.run("lr1e-3-s1")
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
    assert dash.run("wide-s1")["checkpoints"]["exists"] is False
    with pytest.raises(DashboardError, match="unknown experiment"):
        dash.run("nobody")


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
