"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``, driven by
Playwright with ``executable_path``: no browser download) on ``tools/view_experiments.py``
serving a store of three real training runs (``tests/run_worker.py``). Expected values come from
the store itself. Skipped, with the reason, when no Chromium or no Playwright is installed
(``make system-deps`` installs Chromium)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.experiments import Store

REPO_ROOT = Path(__file__).resolve().parent.parent
CLI = REPO_ROOT / "tools" / "view_experiments.py"
WORKER = Path(__file__).resolve().parent / "run_worker.py"
CHROMIUM = next(
    (
        path
        for path in (
            os.environ.get("DASHBOARD_CHROMIUM"),
            shutil.which("chromium"),
            shutil.which("chromium-browser"),
        )
        if path
    ),
    None,
)
RUNS = {  # name: overrides; two seeds of one learning rate, one of another
    "lr1e-2-s1": ["training.lr=1e-2", "training.seed=1"],
    "lr1e-2-s2": ["training.lr=1e-2", "training.seed=2"],
    "lr3e-3-s1": ["training.lr=3e-3", "training.seed=1"],
}
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)"),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None, reason="playwright is not installed"
    ),
]

ROWS_CELL = """([name, column]) => {
  const heads = [...document.querySelectorAll('#runs-table thead th')];
  const i = heads.findIndex((th) => th.dataset.column === column);
  const tr = document.querySelector(`#runs-table tr[data-name="${name}"]`);
  return tr && i >= 0 ? tr.children[i].textContent : null;
}"""
TRACE_POINTS = """([metric, name]) => {
  const div = document.getElementById('plot-' + metric);
  if (!div || !div.data) return null;
  const out = {};
  for (const t of div.data) if (t.meta && t.meta.run === name) out[t.meta.split] = t.x.length;
  return out;
}"""


def _train(assets: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "RESEARCH_ASSETS_DIR": str(assets), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from run_worker import CONFIG

    assets = tmp_path_factory.mktemp("dashboard-assets")
    config = assets / "run.yaml"
    config.write_text(CONFIG)
    procs = []
    for name, overrides in RUNS.items():
        args = ["--config", str(config), "--name", name]
        procs.append(_train(assets, *args, *[a for o in overrides for a in ("--set", o)]))
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (out, err)
    return {"assets": assets, "store": assets / "outputs" / "experiments"}


def _query(store: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with Store(store) as s:
        return list(s.execute(sql, params).rows)


def _files(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def url(trained: dict[str, Path]) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, str(CLI), "--dir", str(trained["store"]), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert " at http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.stderr else "")
    try:
        yield line.split(" at ", 1)[1].split()[0]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        assert proc.returncode == 0


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(20_000)
    yield page
    context.close()
    assert errors == []


def _open(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")


def _names(page: Any) -> list[str]:
    return page.eval_on_selector_all("#runs-table tbody tr", "rs => rs.map(r => r.dataset.name)")


def _wait_names(page: Any, names: list[str]) -> None:
    page.wait_for_function(
        "(names) => JSON.stringify([...document.querySelectorAll('#runs-table tbody tr')]"
        ".map(r => r.dataset.name)) === JSON.stringify(names)",
        arg=names,
    )


def _select_only(page: Any, names: list[str]) -> None:
    page.click("#clear-selection")
    for name in names:
        page.check(f'#runs-table tr[data-name="{name}"] input[type=checkbox]')


def test_table_lists_the_runs_and_sorts_and_filters_in_duckdb(page, url, trained):
    store = trained["store"]
    _open(page, url)
    assert _names(page) == sorted(RUNS)
    by_best = [
        r[0]
        for r in _query(
            store,
            "SELECT experiment_name FROM experiments WHERE split = 'val' "
            "GROUP BY 1 ORDER BY min(loss), 1",
        )
    ]
    assert sorted(by_best) == sorted(RUNS)
    page.click("#runs-table th[data-column='best_loss']")
    _wait_names(page, by_best)
    page.click("#runs-table th[data-column='best_loss']")
    _wait_names(page, by_best[::-1])
    best = dict(
        _query(
            store,
            "SELECT experiment_name, min(loss) FROM experiments WHERE split = 'val' GROUP BY 1",
        )
    )
    lrs = dict(_query(store, "SELECT experiment_name, training__lr FROM experiment_summary"))
    cut = best[by_best[1]]
    for where, keep in [
        ("training__lr < 5e-3", {n for n in RUNS if lrs[n] < 5e-3}),
        (f"best_loss <= {cut!r}", set(by_best[:2])),
    ]:
        expected = [n for n in by_best[::-1] if n in keep]  # still sorted by best_loss, desc
        assert 0 < len(expected) < len(RUNS)
        page.fill("#where", where)
        page.click("#filter-form button")
        _wait_names(page, expected)
        assert page.is_hidden("#filter-error")
    page.fill("#where", "nosuchcolumn > 1")
    page.click("#filter-form button")
    page.wait_for_selector("#filter-error:not([hidden])")
    assert "nosuchcolumn" in page.text_content("#filter-error")
    assert "Columns of the runs table" in page.text_content("#filter-error")


def test_curves_have_every_stored_point_log_scale_smoothing_and_seed_groups(page, url, trained):
    store = trained["store"]
    _open(page, url)
    name = "lr3e-3-s1"
    _select_only(page, [name])
    expected = dict(
        _query(
            store,
            "SELECT split, count(loss) FROM experiments WHERE experiment_name = ? GROUP BY 1",
            [name],
        )
    )
    assert set(expected) == {"train", "val"} and all(expected.values())
    page.wait_for_function(
        f"(a) => JSON.stringify(({TRACE_POINTS})(a)) === a[2]", arg=["loss", name, _json(expected)]
    )
    traces = page.evaluate("document.getElementById('plot-loss').data.length")
    assert traces == 2  # only the selected run: train and val

    page.check("#log-y")
    page.wait_for_function("document.getElementById('plot-loss').layout.yaxis.type === 'log'")
    raw = page.evaluate(
        "document.getElementById('plot-loss').data.find(t => t.meta.split === 'val').y"
    )
    page.evaluate(
        "(() => { const s = document.getElementById('smoothing'); s.value = '0.9';"
        " s.dispatchEvent(new Event('input')); })()"
    )
    smoothed = page.evaluate(
        "document.getElementById('plot-loss').data.find(t => t.meta.split === 'val').y"
    )
    assert smoothed[0] == pytest.approx(raw[0]) and smoothed[1:] != pytest.approx(raw[1:])

    _select_only(page, list(RUNS))
    page.select_option("#group-by", "training__lr")
    page.wait_for_function(
        "((document.getElementById('plot-loss') || {}).data || [])"  # re-drawn meanwhile
        ".filter(t => t.meta.band === 'mean').length === 4"
    )
    page.evaluate(
        "(() => { const s = document.getElementById('smoothing'); s.value = '0';"
        " s.dispatchEvent(new Event('input')); })()"
    )
    means = page.evaluate(
        "document.getElementById('plot-loss').data.filter(t => t.meta.split === 'val')"
        ".map(t => [t.meta.group, t.meta.band, t.x, t.y])"
    )
    stored = _query(
        store,
        "SELECT training__lr, step, avg(loss), min(loss), max(loss), count(*) FROM experiments "
        "WHERE split = 'val' GROUP BY 1, 2 ORDER BY 1, 2",
    )
    for lr in {r[0] for r in stored}:
        rows = [r for r in stored if r[0] == lr]
        group = {band: (x, y) for g, band, x, y in means if float(g) == lr}
        assert group["mean"][0] == [r[1] for r in rows]
        assert group["mean"][1] == pytest.approx([r[2] for r in rows])
        assert group["min"][1] == pytest.approx([r[3] for r in rows])
        assert group["max"][1] == pytest.approx([r[4] for r in rows])
    assert {r[5] for r in stored if r[0] == 1e-2} == {2}  # the band spans two seeds


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def test_compare_shows_exactly_the_differing_config_keys(page, url, trained):
    store = trained["store"]
    names = ["lr1e-2-s1", "lr1e-2-s2", "lr3e-3-s1"]
    with Store(store) as s:
        metadata = [n for n, kind, _ in s.columns() if kind == "metadata"]
        in_list = ", ".join(f"'{n}'" for n in names)
        counts = s.execute(
            "SELECT "
            + ", ".join(
                f"count(DISTINCT coalesce(CAST(\"{c}\" AS VARCHAR), '<null>'))" for c in metadata
            )
            + f" FROM experiment_summary WHERE experiment_name IN ({in_list})"
        ).rows[0]
    expected = sorted(c for c, n in zip(metadata, counts) if n > 1)
    assert "training__lr" in expected and "training__seed" in expected
    assert "model__d_model" not in expected

    _open(page, url)
    _select_only(page, names)
    page.click("#compare-selected")
    page.wait_for_selector("#compare-table tr.differing")
    shown = page.eval_on_selector_all(
        "#compare-table tr.differing", "rs => rs.map(r => r.dataset.key)"
    )
    assert sorted(shown) == expected
    heads = page.eval_on_selector_all(
        "#compare-table thead th a", "as => as.map(a => a.textContent)"
    )
    assert heads == names
    page.wait_for_selector("#plot-loss", state="visible")  # their curves together


def test_sql_box_answers_with_a_table_and_chart_and_refuses_writes(page, url, trained):
    store = trained["store"]
    before = _files(store)
    _open(page, url + "#sql")
    page.fill("#sql-text", "DELETE FROM experiments")
    page.click("#sql-run")
    page.wait_for_selector("#sql-error:not([hidden])")
    assert "DELETE statements are not allowed" in page.text_content("#sql-error")
    page.fill("#sql-text", "COPY (SELECT * FROM experiments) TO '/tmp/x.csv'")
    page.click("#sql-run")
    page.wait_for_function("document.getElementById('sql-error').textContent.includes('COPY')")
    sql = "SELECT experiment_name, step, loss FROM experiments WHERE split = 'val' ORDER BY 1, 2"
    page.fill("#sql-text", sql)
    page.click("#sql-run")
    page.wait_for_selector("#sql-chart .main-svg")
    rows = page.eval_on_selector_all("#sql-table tbody tr", "rs => rs.length")
    assert rows == len(_query(store, sql))
    assert page.evaluate("document.getElementById('sql-chart').data.length") == len(RUNS)
    assert _files(store) == before


def test_run_page_shows_config_provenance_and_checkpoints(page, url, trained):
    name = "lr1e-2-s2"
    _open(page, url + "#run/" + name)
    page.wait_for_function(
        "(n) => (document.getElementById('run-title') || {}).textContent === n", arg=name
    )
    text = page.text_content("#tab-run")
    folder = trained["assets"] / "outputs" / "checkpoints" / name
    assert str(folder.resolve()) in text
    for step in sorted(p.name for p in folder.glob("step_*")):
        assert step in text
    for key in ("training__lr", "torch_version", "git_commit", "host", "device"):
        assert key in text
    page.wait_for_selector("#plot-loss .main-svg")


def test_export_renders_table_and_curves_from_file_with_networking_off(browser, trained, tmp_path):
    out = tmp_path / "report.html"
    result = subprocess.run(
        [sys.executable, str(CLI), "--dir", str(trained["store"]), "--export", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    context = browser.new_context(offline=True)
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(out.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        assert _names(page) == sorted(RUNS)
        page.wait_for_selector("#plot-loss .main-svg")
        assert page.evaluate("document.getElementById('plot-loss').data.length") == 2 * len(RUNS)
        page.click("#runs-table th[data-column='best_loss']")  # sorting works offline too
        page.wait_for_function(
            "document.querySelector('#runs-table th[data-column=best_loss]')"
            ".textContent.includes('\u25b2')"
        )
    finally:
        context.close()
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []


STORED_STRINGS = {
    "model": "<!--<script>",
    "note": "</script><script>document.title='pwned'</script>",
    "html": "<b>bold</b> & <img src=x onerror=\"document.title='pwned'\">",
    "separators": "a\u2028b\u2029c",
    "nul": "x\x00y",
    "long": "z" * 20000,
}


def _check_stored_strings(page: Any) -> None:
    assert _names(page) == ["nasty", "plain"]
    page.click("#columns-box summary")
    page.check('#columns input[data-column="model"]')
    page.wait_for_function(f"(a) => ({ROWS_CELL})(a) !== null", arg=["nasty", "model"])
    assert page.evaluate(ROWS_CELL, ["nasty", "model"]) == "<!--<script>"
    assert page.evaluate(ROWS_CELL, ["plain", "model"]) == "tiny"
    assert page.title() != "pwned" and page.query_selector("#runs-table b, img") is None


def test_stored_strings_render_as_text_in_the_export_and_the_live_page(browser, tmp_path):
    from common.experiments import save_experiment

    store = tmp_path / "experiments"
    save_experiment("plain", [{"step": 1, "loss": 1.0}], {"model": "tiny"}, storage_dir=store)
    save_experiment("nasty", [{"step": 1, "loss": 2.0}], STORED_STRINGS, storage_dir=store)
    out = tmp_path / "report.html"
    result = subprocess.run(
        [sys.executable, str(CLI), "--dir", str(store), "--export", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    context = browser.new_context(offline=True)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: errors.append("dialog: " + d.message))
    try:
        page.goto(out.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        _check_stored_strings(page)
        page.goto(out.as_uri() + "#run/nasty")
        page.wait_for_function(
            "(document.getElementById('run-title') || {}).textContent === 'nasty'"
        )
        text = page.text_content("#tab-run")
        for key in ("model", "note", "html"):
            assert STORED_STRINGS[key] in text
    finally:
        context.close()
    assert errors == []

    proc = subprocess.Popen(
        [sys.executable, str(CLI), "--dir", str(store), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().split(" at ", 1)[1].split()[0]
    context = browser.new_context()
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda d: errors.append("dialog: " + d.message))
    try:
        _open(page, url)
        _check_stored_strings(page)
    finally:
        context.close()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert errors == [] and proc.returncode == 0


def test_a_training_run_appears_on_the_open_page_without_a_reload(page, url, trained):
    """Last in the module: it adds rows to the shared store."""
    store, name = trained["store"], "lr3e-3-s1"
    _open(page, url)
    _select_only(page, [name])
    before = int(page.evaluate(ROWS_CELL, [name, "rows"]))
    page.wait_for_function(f"(a) => ({TRACE_POINTS})(a) !== null", arg=["loss", name])
    page.evaluate("window.__not_reloaded = true")

    proc = _train(trained["assets"], "--resume", name, "--max-steps", "20")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (out, err)
    rows = _query(store, "SELECT count(*) FROM experiments WHERE experiment_name = ?", [name])
    expected = dict(
        _query(
            store,
            "SELECT split, count(loss) FROM experiments WHERE experiment_name = ? GROUP BY 1",
            [name],
        )
    )
    assert rows[0][0] > before
    page.wait_for_function(
        f"(a) => ({ROWS_CELL})(a) === a[2]", arg=[name, "rows", str(rows[0][0])], timeout=15_000
    )
    page.wait_for_function(
        f"(a) => JSON.stringify(({TRACE_POINTS})(a)) === a[2]",
        arg=["loss", name, _json(expected)],
        timeout=15_000,
    )
    assert page.evaluate("window.__not_reloaded") is True


def test_parallel_coordinates_render_and_a_brush_filters_the_runs_table(page, url, trained):
    _open(page, url)
    _wait_names(page, sorted(RUNS))
    page.click("#views-box summary")
    page.wait_for_selector("#parcoords[data-runs='3'] .main-svg")
    page.wait_for_selector("#scatter[data-points='3'] .main-svg")
    page.wait_for_function("() => document.getElementById('importance').dataset.params")
    assert "eta squared" in page.text_content("#importance-method")
    labels = page.evaluate(
        "() => document.getElementById('parcoords').data[0].dimensions.map((d) => d.label)"
    )
    assert "training__lr (log)" in labels and labels[-1] == "best_loss"
    lr = labels.index("training__lr (log)")
    ticks = page.evaluate(
        f"() => document.getElementById('parcoords').data[0].dimensions[{lr}].ticktext"
    )
    assert ticks == ["3e-3", "1e-2"]  # learning rates in scientific notation
    # brushing the learning-rate axis around 1e-2 keeps the two runs of that rate
    page.evaluate(
        "(i) => Plotly.restyle('parcoords', {['dimensions[' + i + '].constraintrange']: "
        "[[Math.log10(5e-3), Math.log10(2e-2)]]})",
        lr,
    )
    _wait_names(page, ["lr1e-2-s1", "lr1e-2-s2"])
    assert "training__lr" in page.text_content("#brush-sql")
    expected = _query(
        trained["store"],
        "SELECT DISTINCT experiment_name FROM experiments WHERE training__lr "
        "BETWEEN 5e-3 AND 2e-2 ORDER BY 1",
    )
    assert [r[0] for r in expected] == _names(page)
    page.click("#clear-brush")
    _wait_names(page, sorted(RUNS))
    assert page.is_hidden("#brush")


def test_shift_click_selects_a_range_and_select_all_matching_takes_the_filter(page, url):
    _open(page, url)
    _wait_names(page, sorted(RUNS))
    page.click("#clear-selection")
    names = _names(page)
    page.click(f'#runs-table tr[data-name="{names[0]}"] input[type=checkbox]')
    page.click(f'#runs-table tr[data-name="{names[2]}"] input[type=checkbox]', modifiers=["Shift"])
    page.wait_for_function("() => document.getElementById('selection').dataset.count === '3'")
    checked = page.eval_on_selector_all(
        "#runs-table tbody input[type=checkbox]", "bs => bs.map(b => b.checked)"
    )
    assert checked == [True, True, True]
    # all three runs' curves come back from one request
    page.wait_for_function(
        "() => { const d = document.getElementById('plot-loss');"
        " return d && d.data && new Set(d.data.map((t) => t.meta.run)).size === 3; }"
    )
    assert page.evaluate("() => document.getElementById('plot-loss').layout.yaxis.title.text") == (
        "loss (nats/token)"
    )
    if page.query_selector("#plot-lr"):
        assert page.evaluate("() => document.getElementById('plot-lr').layout.yaxis.tickformat")
    page.click("#clear-selection")
    page.fill("#where", "training__lr < 5e-3")
    page.click("#filter-form button")
    _wait_names(page, ["lr3e-3-s1"])
    page.click("#select-matching")
    page.wait_for_function("() => document.getElementById('selection').dataset.count === '1'")
    assert page.text_content("#selection") == "lr3e-3-s1"
    assert "selected all 1 matching" in page.text_content("#select-info")


def test_tags_and_note_are_edited_on_the_run_page_and_stored(page, url, trained):
    from common.experiments.annotations import experiment_annotations

    store = trained["store"]
    name = "lr3e-3-s1"
    _open(page, url + "#run/" + name)
    page.wait_for_selector("#tag-form")
    page.fill("#tag-input", "promising")
    page.click("#tag-form button")
    page.wait_for_selector('#run-tags .tag[data-tag="promising"]')
    assert experiment_annotations(store)[name].tags == ["promising"]
    page.fill("#note-text", "warmup too short?\n<b>check</b>")
    page.click("#note-save")
    page.wait_for_function("() => document.body.dataset.annotated === '2'")
    assert experiment_annotations(store)[name].note == "warmup too short?\n<b>check</b>"
    # the runs table shows the tag
    page.click("nav a[data-tab='runs']")
    page.wait_for_function(f"(a) => ({ROWS_CELL})(a) === 'promising'", arg=[name, "tags"])
    page.goto(url + "#run/" + name)
    page.wait_for_selector('#run-tags .tag[data-tag="promising"] button')
    page.click('#run-tags .tag[data-tag="promising"] button')
    page.wait_for_selector('#run-tags .tag[data-tag="promising"]', state="detached")
    assert name not in experiment_annotations(store) or not experiment_annotations(store)[name].tags
    page.fill("#note-text", "")
    done = int(page.evaluate("() => document.body.dataset.annotated")) + 1
    page.click("#note-save")
    page.wait_for_function("(n) => document.body.dataset.annotated === String(n)", arg=done)
    assert name not in experiment_annotations(store)


def test_a_box_on_the_scatter_filters_the_runs_table(page, url, trained):
    _open(page, url)
    _wait_names(page, sorted(RUNS))
    page.click("#views-box summary")
    page.wait_for_selector("#scatter[data-points='3'] .main-svg")
    page.select_option("#scatter-x", "training__lr")
    page.wait_for_function(
        "() => (document.getElementById('scatter').layout || {}).xaxis"
        " && document.getElementById('scatter').layout.xaxis.type === 'log'"
    )
    # a box around the two points at lr 1e-2, in page pixels
    box = page.evaluate("""() => {
          const div = document.getElementById('scatter'), fl = div._fullLayout;
          const r = div.getBoundingClientRect(), sc = div.data[0];
          const px = sc.x.map((x) => r.left + fl._size.l + fl.xaxis.d2p(x));
          const py = sc.y.map((y) => r.top + fl._size.t + fl.yaxis.d2p(y));
          const mine = sc.x.map((x, i) => i).filter((i) => sc.x[i] > 5e-3);
          const xs = mine.map((i) => px[i]), ys = mine.map((i) => py[i]);
          const [lo, hi] = [(v) => Math.min(...v) - 8, (v) => Math.max(...v) + 8];
          return [lo(xs), lo(ys), hi(xs), hi(ys)];
        }""")
    page.mouse.move(box[0], box[1])
    page.mouse.down()
    page.mouse.move((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, steps=5)
    page.mouse.move(box[2], box[3], steps=5)
    page.mouse.up()
    _wait_names(page, ["lr1e-2-s1", "lr1e-2-s2"])
    assert "training__lr" in page.text_content("#brush-sql")
