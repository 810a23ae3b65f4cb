"""The dashboard stays up whatever the SQL box is given: a real slow DuckDB query against a live
server (``tools/view_experiments.py`` in a subprocess) never delays ``/api/meta`` or the runs
table, is stopped at the time limit with one clear error, a huge answer is fetched only as far
as the page shows it, and SIGINT stops a server busy on a query within 2 s. Also: what a user can
store renders as text in the export, and non-finite values never rank."""

from __future__ import annotations

import http.client
import json
import math
import os
import signal
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

from common.experiments import save_experiment
from common.visualization.dashboard.queries import Dashboard

REPO_ROOT = Path(__file__).resolve().parent.parent
CLI = REPO_ROOT / "tools" / "view_experiments.py"
QUERY_CLI = REPO_ROOT / "tools" / "query_experiments.py"
SLOW_SQL = "SELECT count(*) FROM range(100000000) a, range(1000) b"
HUGE_SQL = "SELECT range AS step, range * 1.5 AS loss FROM range(20000000)"
NASTY = {
    "comment": "<!--<script>",
    "close": "</script><script>document.title='pwned'</script>",
    "html": "<b>bold</b> & <img src=x onerror=alert(1)>",
    "separators": "a\u2028b\u2029c",
    "nul": "x\x00y",
    "long": "z" * 20000,
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("limits") / "experiments"
    for i, final in enumerate([2.0, 1.5, -math.inf, math.inf]):
        rows = [
            {"step": s, "split": "val", "loss": 3.0 - s / 10 if s < 2 else final} for s in range(3)
        ]
        save_experiment(f"run{i}", rows, {"model": "tiny", "lr": 1e-3}, storage_dir=root)
    save_experiment(
        "never-finite", [{"step": 0, "split": "val", "loss": math.inf}], storage_dir=root
    )
    return root


def _get(url: str, timeout: float = 60) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(store: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    proc = subprocess.Popen(
        [sys.executable, str(CLI), "--dir", str(store), "--port", "0", "--query-timeout", "6"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert " at http://127.0.0.1:" in line, line
    try:
        yield line.split(" at ", 1)[1].split()[0], proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def _sql_in_background(url: str, sql: str) -> tuple[threading.Thread, dict[str, Any]]:
    answer: dict[str, Any] = {}

    def ask() -> None:
        started = time.monotonic()
        try:
            answer["status"], answer["body"] = _get(url + "api/sql?q=" + urllib.parse.quote(sql))
        except (OSError, http.client.HTTPException) as exc:  # the server stopped meanwhile
            answer["error"] = exc
        answer["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    return thread, answer


@pytest.mark.slow
def test_a_slow_query_delays_nothing_else_and_is_stopped_at_the_limit(server) -> None:
    url, _ = server
    thread, answer = _sql_in_background(url, SLOW_SQL)
    time.sleep(1.0)  # the query is running now
    for path in ("api/meta", "api/runs", "api/curves?name=run0"):
        started = time.monotonic()
        status, body = _get(url + path, timeout=30)
        assert status == 200, body
        assert time.monotonic() - started < 3, path
    assert thread.is_alive()  # still running: the answers above did not wait for it
    thread.join(timeout=30)
    assert answer["status"] == 400
    assert answer["body"]["error"].startswith("the query was stopped after 6 s")
    assert "--query-timeout" in answer["body"]["error"]
    assert answer["seconds"] < 10


@pytest.mark.slow
def test_a_huge_answer_fetches_only_the_rows_shown(server) -> None:
    url, proc = server
    assert _get(url + "api/meta")[0] == 200
    before = _rss_mb(proc.pid)
    status, body = _get(url + "api/sql?q=" + urllib.parse.quote(HUGE_SQL))
    assert status == 200, body
    assert len(body["rows"]) == body["total"] == 10_000 and body["more"] is True
    assert body["rows"][1] == [1, 1.5]
    assert _rss_mb(proc.pid) - before < 500


@pytest.mark.slow
def test_sigint_stops_a_server_busy_on_a_query_within_2_s(server) -> None:
    url, proc = server
    _sql_in_background(url, SLOW_SQL)
    time.sleep(1.5)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    assert time.monotonic() - started < 2
    assert proc.returncode == 0


def test_the_sql_box_timeout_and_limits_in_process(store: Path) -> None:
    data = Dashboard(store, query_timeout=0.5)
    try:
        from common.visualization.dashboard.queries import DashboardError

        started = time.monotonic()
        with pytest.raises(DashboardError, match="stopped after 0.5 s"):
            data.sql(SLOW_SQL)
        assert time.monotonic() - started < 5
        with pytest.raises(DashboardError, match="the filter was stopped"):
            data.runs(where="(SELECT count(*) FROM range(100000000) a, range(1000) b) > 0")
        assert data.runs()["total"] == 5  # the connection still answers
    finally:
        data.close()


def test_query_cli_timeout_and_ctrl_c(store: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(QUERY_CLI), "--dir", str(store), "--sql", SLOW_SQL, "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("query_experiments: error: the query was stopped after 1 s")
    proc = subprocess.Popen(
        [sys.executable, str(QUERY_CLI), "--dir", str(store), "--sql", SLOW_SQL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and time.monotonic() - started < 2
    assert "interrupted" in err and "Traceback" not in err


# --------------------------------------------------------------------------- stored strings


def test_export_keeps_every_stored_string_as_text(tmp_path: Path) -> None:
    from common.visualization.dashboard.export import export_report

    root = tmp_path / "experiments"
    save_experiment("plain", [{"step": 1, "loss": 1.0}], {"model": "tiny"}, storage_dir=root)
    save_experiment("nasty", [{"step": 1, "loss": 2.0}], NASTY, storage_dir=root)
    out = tmp_path / "report.html"
    export_report(out, root)
    html = out.read_text()
    script = html.split("window.DASHBOARD_STATIC = ", 1)[1].split(";</script>", 1)[0]
    assert "<" not in script and "\u2028" not in script and "\x00" not in script
    data = json.loads(script)
    config = data["runs"]["nasty"]["config"]
    assert {k: config[k] for k in NASTY} == NASTY
    assert sorted(r[0] for r in data["table"]["rows"]) == ["nasty", "plain"]


# --------------------------------------------------------------------------- non-finite values


def test_rankings_leave_non_finite_values_out_and_say_so(store: Path) -> None:
    for mode, first in (("min", "run1"), ("max", "run0")):
        result = subprocess.run(
            [sys.executable, str(QUERY_CLI), "--dir", str(store), "--best", "loss", "--mode", mode],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[2].split()[:2] == ["1", first]
        ranked = [line.split()[1] for line in lines[2:] if line.split()[0].isdigit()]
        assert "never-finite" not in ranked
        assert "inf" not in " ".join(lines[2 : 2 + len(ranked)]).split()
        notes = result.stdout[result.stdout.index("loss: ") :]
        assert "1 run(s) left out, no finite value" in notes and "never-finite (inf)" in notes
        assert "2 run(s) diverged" in notes and "run2 (-inf)" in notes and "run3 (inf)" in notes
    summary = subprocess.run(
        [sys.executable, str(QUERY_CLI), "--dir", str(store), "--summary", "--format", "csv"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    best = {line.split(",")[0]: line.split(",")[3] for line in summary.stdout.splitlines()[1:]}
    assert best["run2"] == best["run3"] == "2.9" and best["never-finite"] == ""
    assert "never-finite (inf)" in summary.stderr
    grouped = subprocess.run(
        [sys.executable, str(QUERY_CLI), "--dir", str(store), "--best", "loss", "--group-by",
         "model", "--format", "csv"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    row = grouped.stdout.splitlines()[1].split(",")
    assert row[:2] == ["tiny", "4"] and float(row[4]) == 1.5
    assert "run2 (-inf)" in grouped.stderr


def test_the_dashboard_shows_non_finite_values_as_the_cli_does(store: Path) -> None:
    data = Dashboard(store)
    try:
        page = data.runs(sort="best_loss")
        by_name = {row[0]: dict(zip(page["columns"], row)) for row in page["rows"]}
        assert by_name["run2"]["last_loss"] == "-inf" and by_name["run3"]["last_loss"] == "inf"
        assert by_name["run2"]["best_loss"] == 2.9 and by_name["never-finite"]["best_loss"] is None
        assert [r[0] for r in page["rows"]][:2] == ["run1", "run0"]
        assert any("never-finite (inf)" in n for n in page["notes"])
        assert data.sql("SELECT -'inf'::DOUBLE AS x")["rows"] == [["-inf"]]
    finally:
        data.close()


def test_plot_training_curves_takes_a_dataframe(store: Path) -> None:
    from common.experiments import query_experiments
    from common.visualization import plot_training_curves

    df = query_experiments(
        "SELECT experiment_name, step, loss FROM experiments WHERE experiment_name IN "
        "('run0', 'run1')",
        storage_dir=store,
    )
    fig = plot_training_curves(df)
    assert len(fig.axes[0].lines) == 2
    with pytest.raises(ValueError, match="data="):
        plot_training_curves(df, data=df)
