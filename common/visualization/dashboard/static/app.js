// The experiments dashboard: one page, two data sources. Live (served by
// tools/view_experiments.py): every answer comes from the server's JSON API, sorted and filtered
// in DuckDB, and the page follows new saves. Static (an --export report): the same requests are
// answered from the data embedded in window.DASHBOARD_STATIC.
"use strict";
(function () {
  const STATIC = window.DASHBOARD_STATIC || null;
  const NAME = "experiment_name";
  const COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255"];
  const DASHES = { val: "solid", train: "dot" };
  const state = {
    meta: null, version: null, split: null, where: "", sort: NAME, desc: false, offset: 0,
    limit: 50, columns: null, selected: [], page: null, curves: null, groups: {},
    x: null, hiddenSplits: new Set(), logY: false, smoothing: 0, groupBy: "", view: "runs",
    runName: null,
  };
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children || []) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "boolean") return v ? "true" : "false";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return String(v);
      const a = Math.abs(v);
      if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
      return String(Number(v.toPrecision(5)));
    }
    return String(v);
  }

  function showError(id, message) {
    const box = $(id);
    box.textContent = message || "";
    box.hidden = !message;
  }

  // ------------------------------------------------------------------ data sources

  function query(params) {
    const parts = [];
    for (const [k, v] of Object.entries(params || {})) {
      if (v === undefined || v === null) continue;
      for (const one of Array.isArray(v) ? v : [v]) {
        parts.push(encodeURIComponent(k) + "=" + encodeURIComponent(one));
      }
    }
    return parts.join("&");
  }

  async function httpApi(path, params) {
    const response = await fetch("/api/" + path + "?" + query(params), { cache: "no-store" });
    let body;
    try { body = await response.json(); } catch (e) { body = { error: response.statusText }; }
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }

  function compareValues(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;
    if (b === null || b === undefined) return -1;
    return a < b ? -1 : 1;
  }

  const staticApi = {
    meta: () => STATIC.meta,
    state: () => ({ version: 1, problems: STATIC.meta.problems }),
    runs(p) {
      const table = STATIC.table;
      const all = table.columns;
      const idx = (c) => all.indexOf(c);
      let rows = table.rows;
      const needle = (p.where || "").trim().toLowerCase();
      if (needle) rows = rows.filter((r) => String(r[0]).toLowerCase().includes(needle));
      if (p.name !== undefined) {
        const wanted = new Set(p.name);
        rows = rows.filter((r) => wanted.has(r[0]));
      }
      const sort = p.sort && idx(p.sort) >= 0 ? p.sort : NAME;
      const si = idx(sort);
      rows = rows.slice().sort((a, b) => {
        let c = compareValues(a[si], b[si]);
        if (p.desc === "1" && a[si] !== null && b[si] !== null) c = -c;
        return c || compareValues(a[0], b[0]);
      });
      const shown = p.columns ? [NAME, ...p.columns.split(",").filter((c) => c !== NAME)] : all;
      const cols = shown.map(idx);
      const offset = Number(p.offset || 0), limit = Number(p.limit || 50);
      return {
        columns: shown, all_columns: all, total: rows.length, offset, limit,
        rows: rows.slice(offset, offset + limit).map((r) => cols.map((i) => r[i])),
        split: table.split, sort, descending: p.desc === "1", notes: table.notes || [],
      };
    },
    curves(p) {
      const wanted = new Set(p.name || []);
      return { ...STATIC.curves, runs: STATIC.curves.runs.filter((r) => wanted.has(r.name)) };
    },
    compare(p) {
      const table = STATIC.table, names = p.name || [];
      if (names.length < 2) throw new Error("pick at least two runs to compare");
      const byName = new Map(table.rows.map((r) => [r[0], r]));
      const meta = new Set(STATIC.meta.metadata);
      const metricCols = table.columns.filter((c) => /^(best|last)_/.test(c) || c === "rows");
      const differing = table.columns.filter((c) => meta.has(c) &&
        new Set(names.map((n) => JSON.stringify(byName.get(n)[table.columns.indexOf(c)]))).size > 1);
      const columns = [NAME, ...metricCols, ...differing];
      const rows = names.map((n) => columns.map((c) => byName.get(n)[table.columns.indexOf(c)]));
      return { columns, rows, differing, notes: ["split: " + table.split] };
    },
    run(p) {
      const run = STATIC.runs[p.name];
      if (!run) throw new Error("run " + p.name + " is not in this report");
      return run;
    },
    sql() {
      if (STATIC.sql) return STATIC.sql;
      throw new Error("this is a static report: run queries in the live dashboard " +
        "(python tools/view_experiments.py)");
    },
  };

  async function api(path, params) {
    if (!STATIC) return httpApi(path, params);
    return staticApi[path](params || {});
  }

  // ------------------------------------------------------------------ runs table

  function defaultColumns(all) {
    return all.filter((c) => c === NAME || c === "rows" || c === "last_step" ||
      c.startsWith("best_") || c === "last_tokens_seen" || c === "last_elapsed_s" ||
      c === "last_saved_at" || c === "git_commit" || c === "host" ||
      (c.startsWith("last_") && all.includes("best_" + c.slice(5))));
  }

  async function loadRuns() {
    const params = {
      split: state.split, where: state.where, sort: state.sort, desc: state.desc ? "1" : "0",
      offset: state.offset, limit: state.limit,
      columns: state.columns ? state.columns.join(",") : undefined,
    };
    let page;
    try {
      page = await api("runs", params);
    } catch (e) {
      showError("filter-error", e.message);
      return;
    }
    showError("filter-error", "");
    if (!state.columns) {
      state.columns = defaultColumns(page.all_columns);
      if (state.columns.length < page.columns.length) return loadRuns();
    }
    state.page = page;
    if (state.selected.length === 0 && !state.userCleared) {
      state.selected = page.rows.slice(0, 3).map((r) => r[0]);
      if (state.selected.length) loadCurves();
    }
    renderRuns();
  }

  function renderRuns() {
    const page = state.page;
    const table = $("runs-table");
    table.replaceChildren();
    const head = el("tr", {}, [el("th", { text: "" })]);
    for (const c of page.columns) {
      const arrow = c === page.sort ? (page.descending ? " \u25BC" : " \u25B2") : "";
      head.append(el("th", {
        text: c + arrow, "data-column": c, title: "sort by " + c,
        onclick: () => {
          state.desc = state.sort === c ? !state.desc : false;
          state.sort = c;
          state.offset = 0;
          loadRuns();
        },
      }));
    }
    table.append(el("thead", {}, [head]));
    const body = el("tbody");
    for (const row of page.rows) {
      const name = row[0];
      const selected = state.selected.includes(name);
      const tr = el("tr", { "data-name": name, class: selected ? "selected" : null });
      const box = el("input", { type: "checkbox", checked: selected, title: "select " + name });
      box.addEventListener("change", () => toggleSelected(name, box.checked));
      tr.append(el("td", {}, [box]));
      row.forEach((v, i) => {
        if (i === 0) {
          tr.append(el("td", {}, [el("a", { href: "#run/" + encodeURIComponent(name), text: name })]));
        } else {
          tr.append(el("td", { class: typeof v === "number" ? "num" : null, text: fmt(v), title: v === null ? null : String(v) }));
        }
      });
      body.append(tr);
    }
    table.append(body);
    const last = Math.min(page.offset + page.rows.length, page.total);
    $("page-info").textContent = page.total
      ? `${page.offset + 1}\u2013${last} of ${page.total}` : "no runs";
    $("page-info").dataset.total = page.total;
    $("runs-notes").textContent = (page.notes || []).join("\n");
    $("prev").disabled = page.offset === 0;
    $("next").disabled = last >= page.total;
    renderColumnChooser(page.all_columns);
    renderSelection();
  }

  function renderColumnChooser(all) {
    const box = $("columns");
    if (box.dataset.columns === all.join(",")) return;
    box.dataset.columns = all.join(",");
    box.replaceChildren();
    for (const c of all) {
      const input = el("input", { type: "checkbox", checked: state.columns.includes(c), disabled: c === NAME, "data-column": c });
      input.addEventListener("change", () => {
        const picked = [...box.querySelectorAll("input:checked")].map((i) => i.dataset.column);
        state.columns = picked;
        loadRuns();
      });
      box.append(el("label", {}, [input, " " + c]));
    }
  }

  function toggleSelected(name, on) {
    state.selected = state.selected.filter((n) => n !== name);
    if (on) state.selected.push(name);
    state.userCleared = true;
    renderSelection();
    document.querySelectorAll("#runs-table tr[data-name]").forEach((tr) => {
      tr.classList.toggle("selected", state.selected.includes(tr.dataset.name));
    });
    loadCurves();
    if (state.view === "compare") loadCompare();
  }

  function renderSelection() {
    $("selection").textContent = state.selected.length ? state.selected.join(", ") : "none";
  }

  // ------------------------------------------------------------------ curves

  function curveNames() {
    return state.view === "run" ? [state.runName] : state.selected;
  }

  async function loadCurves() {
    const names = curveNames();
    if (!names.length) {
      state.curves = { runs: [], metrics: [], x_columns: [] };
      return renderCurves();
    }
    try {
      state.curves = await api("curves", { name: names });
      if (state.groupBy) await loadGroups(names);
      showError("error", "");
    } catch (e) {
      showError("error", e.message);
      return;
    }
    renderCurves();
  }

  async function loadGroups(names) {
    const page = await api("runs", { split: state.split, name: names, columns: state.groupBy, limit: 500 });
    state.groups = Object.fromEntries(page.rows.map((r) => [r[0], r[1]]));
  }

  function smooth(ys, weight) {
    if (!weight) return ys;
    const out = [];
    let last = 0, n = 0;
    for (const y of ys) {
      if (y === null || !Number.isFinite(y)) { out.push(y); continue; }
      last = last * weight + (1 - weight) * y;
      n += 1;
      out.push(last / (1 - Math.pow(weight, n)));  // debiased like an EMA started at 0
    }
    return out;
  }

  function seriesOf(run, split, metric) {
    const s = run.splits[split];
    const xs = s[state.x] || [], ys = s[metric] || [];
    const px = [], py = [];
    for (let i = 0; i < ys.length; i++) {
      if (ys[i] === null || xs[i] === null || xs[i] === undefined) continue;
      px.push(xs[i]);
      py.push(ys[i]);
    }
    return { x: px, y: smooth(py, state.smoothing) };
  }

  function runTraces(metric) {
    const traces = [];
    state.curves.runs.forEach((run, i) => {
      for (const split of Object.keys(run.splits)) {
        if (state.hiddenSplits.has(split)) continue;
        const { x, y } = seriesOf(run, split, metric);
        if (!y.length) continue;
        traces.push({
          x, y, type: "scatter", mode: x.length > 1 ? "lines" : "markers",
          name: split ? `${run.name} \u00b7 ${split}` : run.name,
          meta: { run: run.name, split },
          line: { color: COLORS[i % COLORS.length], dash: DASHES[split] || "dash" },
          marker: { color: COLORS[i % COLORS.length] },
        });
      }
    });
    return traces;
  }

  function groupTraces(metric) {
    const groups = new Map();
    for (const run of state.curves.runs) {
      const key = JSON.stringify(state.groups[run.name] ?? null);
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(run);
    }
    const traces = [];
    let g = 0;
    for (const [key, runs] of groups) {
      const color = COLORS[g++ % COLORS.length];
      const splits = new Set(runs.flatMap((r) => Object.keys(r.splits)));
      for (const split of splits) {
        if (state.hiddenSplits.has(split)) continue;
        const byX = new Map();
        for (const run of runs) {
          if (!run.splits[split]) continue;
          const { x, y } = seriesOf(run, split, metric);
          x.forEach((xv, i) => {
            if (!byX.has(xv)) byX.set(xv, []);
            byX.get(xv).push(y[i]);
          });
        }
        if (!byX.size) continue;
        const xs = [...byX.keys()].sort((a, b) => a - b);
        const stat = (f) => xs.map((xv) => f(byX.get(xv)));
        const mean = stat((v) => v.reduce((a, b) => a + b, 0) / v.length);
        const label = `${state.groupBy}=${fmt(JSON.parse(key))} (${runs.length} run${runs.length > 1 ? "s" : ""})` + (split ? ` \u00b7 ${split}` : "");
        traces.push({ x: xs, y: stat((v) => Math.min(...v)), type: "scatter", mode: "lines",
          line: { width: 0, color }, showlegend: false, hoverinfo: "skip", name: label + " min",
          meta: { group: key, split, band: "min" } });
        traces.push({ x: xs, y: stat((v) => Math.max(...v)), type: "scatter", mode: "lines",
          fill: "tonexty", fillcolor: color + "33", line: { width: 0, color },
          showlegend: false, hoverinfo: "skip", name: label + " max",
          meta: { group: key, split, band: "max" } });
        traces.push({ x: xs, y: mean, type: "scatter", mode: xs.length > 1 ? "lines" : "markers",
          name: label, line: { color, dash: DASHES[split] || "dash" },
          meta: { group: key, split, band: "mean" } });
      }
    }
    return traces;
  }

  function renderCurveControls() {
    const meta = state.meta;
    const xSel = $("x-axis");
    if (xSel.dataset.options !== meta.x_columns.join(",")) {
      xSel.dataset.options = meta.x_columns.join(",");
      xSel.replaceChildren(...meta.x_columns.map((x) => el("option", { value: x, text: x })));
    }
    if (!state.x || !meta.x_columns.includes(state.x)) state.x = meta.x_columns[0] || null;
    if (state.x) xSel.value = state.x;
    const gSel = $("group-by");
    if (gSel.dataset.options !== meta.metadata.join(",")) {
      gSel.dataset.options = meta.metadata.join(",");
      gSel.replaceChildren(el("option", { value: "", text: "(none)" }),
        ...meta.metadata.map((k) => el("option", { value: k, text: k })));
      gSel.value = state.groupBy;
    }
    const toggles = $("split-toggles");
    const splits = meta.splits.length ? meta.splits : [];
    if (toggles.dataset.options !== splits.join(",")) {
      toggles.dataset.options = splits.join(",");
      toggles.replaceChildren(...splits.map((s) => {
        const box = el("input", { type: "checkbox", checked: !state.hiddenSplits.has(s), "data-split": s });
        box.addEventListener("change", () => {
          if (box.checked) state.hiddenSplits.delete(s); else state.hiddenSplits.add(s);
          renderCurves();
        });
        return el("label", {}, [box, " " + s]);
      }));
    }
  }

  function renderCurves() {
    const box = $("curves");
    const data = state.curves;
    if (!data || !state.x) {
      box.replaceChildren();
      $("curves-note").textContent = state.x ? "" : "no step-like column to draw curves against";
      return;
    }
    $("curves-note").textContent = data.runs.length ? "" : "select runs in the table to see their curves";
    const wanted = data.metrics.filter((m) => data.runs.some((r) =>
      Object.values(r.splits).some((s) => (s[m] || []).some((v) => v !== null))));
    for (const div of [...box.children]) {
      if (!wanted.includes(div.dataset.metric)) { Plotly.purge(div); div.remove(); }
    }
    for (const metric of wanted) {
      const id = "plot-" + metric;
      let div = document.getElementById(id);
      if (!div) {
        div = el("div", { id, class: "plot", "data-metric": metric });
        box.append(div);
      }
      const traces = state.groupBy ? groupTraces(metric) : runTraces(metric);
      Plotly.react(div, traces, {
        title: { text: metric, font: { size: 14 } },
        xaxis: { title: { text: state.x } },
        yaxis: { type: state.logY ? "log" : "linear" },
        margin: { l: 55, r: 15, t: 35, b: 40 }, height: 320,
        legend: { font: { size: 10 } }, uirevision: metric + state.x + state.logY,
      }, { displaylogo: false, responsive: true });
    }
  }

  // ------------------------------------------------------------------ compare

  async function loadCompare() {
    const table = $("compare-table");
    const notes = $("compare-notes");
    table.replaceChildren();
    if (state.selected.length < 2) {
      notes.textContent = "select two or more runs in the Runs table to compare them";
      return;
    }
    let result;
    try {
      result = await api("compare", { name: state.selected, split: state.split });
    } catch (e) {
      notes.textContent = e.message;
      return;
    }
    const differing = new Set(result.differing);
    notes.textContent = (result.differing.length
      ? `${result.differing.length} config key(s) differ` : "the runs' configs are identical")
      + (result.notes.length ? " \u00b7 " + result.notes.join("; ") : "");
    const names = result.rows.map((r) => r[0]);
    table.append(el("thead", {}, [el("tr", {}, [el("th", { text: "" }),
      ...names.map((n) => el("th", {}, [el("a", { href: "#run/" + encodeURIComponent(n), text: n })]))])]));
    const body = el("tbody");
    const order = [...result.differing, ...result.columns.filter((c) => c !== NAME && !differing.has(c))];
    for (const c of order) {
      const i = result.columns.indexOf(c);
      body.append(el("tr", { class: differing.has(c) ? "differing" : "metric", "data-key": c }, [
        el("th", { text: c }),
        ...result.rows.map((r) => el("td", { class: typeof r[i] === "number" ? "num" : null, text: fmt(r[i]) })),
      ]));
    }
    table.append(body);
  }

  // ------------------------------------------------------------------ run page

  function kv(title, obj) {
    const entries = Object.entries(obj || {});
    return [el("h2", { text: title }), entries.length
      ? el("dl", { class: "kv" }, entries.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: fmt(v) })]))
      : el("p", { class: "muted", text: "(none)" })];
  }

  async function loadRunPage() {
    const box = $("tab-run");
    box.replaceChildren(el("p", { class: "muted", text: "loading " + state.runName + " \u2026" }));
    let run;
    try {
      run = await api("run", { name: state.runName });
    } catch (e) {
      box.replaceChildren(el("p", { class: "error", text: e.message }));
      return;
    }
    const ck = run.checkpoints;
    const samples = run.samples.length ? (() => {
      const cols = Object.keys(run.samples[0]);
      return el("table", { class: "data" }, [
        el("thead", {}, [el("tr", {}, cols.map((c) => el("th", { text: c })))]),
        el("tbody", {}, run.samples.map((s) => el("tr", {}, cols.map((c) => el("td", { text: fmt(s[c]) }))))),
      ]);
    })() : el("p", { class: "muted", text: "no evaluation samples stored" });
    box.replaceChildren(
      el("p", {}, [el("a", { href: "#runs", text: "\u2190 runs" })]),
      el("h2", { id: "run-title", text: run.name }),
      ...kv("Provenance", run.provenance),
      ...kv("Environment", run.environment),
      el("h2", { text: "Checkpoints" }),
      el("p", {}, [el("code", { text: ck.folder }), ck.exists
        ? ` \u2014 ${ck.steps.length} checkpoint(s)${ck.steps.length ? ": " + ck.steps.join(", ") : ""}${ck.run_json ? ", run.json" : ""}`
        : " \u2014 (no such folder)"]),
      ...kv("Config", run.config),
      el("h2", { text: "Evaluation samples" }), samples,
    );
    loadCurves();
  }

  // ------------------------------------------------------------------ SQL box

  async function runSql() {
    const text = $("sql-text").value;
    showError("sql-error", "");
    $("sql-info").textContent = "running \u2026";
    let result;
    try {
      result = await api("sql", { q: text });
    } catch (e) {
      $("sql-info").textContent = "";
      showError("sql-error", e.message);
      return;
    }
    renderSql(result);
  }

  function renderSql(result) {
    const shown = result.rows.slice(0, 1000);
    $("sql-info").textContent = `${result.total} row(s)` + (result.more ? " (more not fetched)" : "")
      + (result.total > shown.length ? `, first ${shown.length} shown` : "")
      + (result.seconds !== undefined ? ` in ${result.seconds} s` : "");
    const table = $("sql-table");
    table.replaceChildren(
      el("thead", {}, [el("tr", {}, result.columns.map((c) => el("th", { text: c })))]),
      el("tbody", {}, shown.map((r) => el("tr", {}, r.map((v) => el("td", { class: typeof v === "number" ? "num" : null, text: fmt(v) }))))),
    );
    const chart = $("sql-chart");
    if (!result.chart) { Plotly.purge(chart); chart.hidden = true; return; }
    chart.hidden = false;
    const { x, y, group } = result.chart;
    const xi = result.columns.indexOf(x), gi = group ? result.columns.indexOf(group) : -1;
    const traces = [];
    for (const col of y) {
      const yi = result.columns.indexOf(col);
      const byGroup = new Map();
      for (const r of result.rows) {
        const g = gi >= 0 ? String(r[gi]) : col;
        if (!byGroup.has(g)) byGroup.set(g, { x: [], y: [] });
        if (r[yi] !== null && r[xi] !== null) { byGroup.get(g).x.push(r[xi]); byGroup.get(g).y.push(r[yi]); }
      }
      for (const [g, s] of byGroup) {
        traces.push({ ...s, type: "scatter", mode: "lines+markers", name: gi >= 0 && y.length > 1 ? `${g} \u00b7 ${col}` : g });
      }
    }
    Plotly.react(chart, traces, { xaxis: { title: { text: x } }, height: 320, margin: { l: 55, r: 15, t: 20, b: 40 } },
      { displaylogo: false, responsive: true });
  }

  // ------------------------------------------------------------------ navigation and live updates

  function route() {
    const hash = decodeURIComponent(location.hash.slice(1));
    if (hash.startsWith("run/")) {
      state.view = "run";
      state.runName = hash.slice(4);
    } else {
      state.view = ["runs", "compare", "sql"].includes(hash) ? hash : "runs";
    }
    for (const v of ["runs", "compare", "sql", "run"]) $("tab-" + v).hidden = v !== state.view;
    document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.tab === state.view));
    $("curves-panel").hidden = state.view === "sql";
    if (state.view === "run") loadRunPage();
    else if (state.view !== "sql") loadCurves();
    if (state.view === "compare") loadCompare();
  }

  async function loadMeta() {
    const meta = await api("meta");
    state.meta = meta;
    state.version = meta.version;
    $("store").textContent = (STATIC ? "report of " : "") + meta.store + ` \u00b7 ${meta.experiments} experiment(s)`
      + (STATIC && STATIC.restriction ? ` (${STATIC.restriction})` : "");
    const splitSel = $("split");
    const options = [...meta.splits, "all"];
    splitSel.replaceChildren(...options.map((s) => el("option", { value: s, text: s })));
    if (!state.split || !options.includes(state.split)) state.split = meta.default_split;
    splitSel.value = state.split;
    renderProblems(meta.problems);
    renderCurveControls();
  }

  function renderProblems(problems) {
    const box = $("problems");
    box.textContent = (problems || []).map((p) => "\u26A0 " + p).join("\n");
    box.hidden = !(problems && problems.length);
  }

  async function follow() {
    let s;
    try {
      s = await api("state");
    } catch (e) {
      $("live").textContent = "\u25CB server not reachable";
      return;
    }
    renderProblems(s.problems);
    if (s.version === state.version) {
      $("live").textContent = "\u25CF live";
      return;
    }
    await loadMeta();
    $("live").textContent = "\u25CF live \u00b7 updated " + new Date().toLocaleTimeString();
    $("live").dataset.version = s.version;
    await loadRuns();
    if (state.view === "run") loadRunPage();
    else if (state.view !== "sql") loadCurves();
    if (state.view === "compare") loadCompare();
  }

  function wire() {
    $("split").addEventListener("change", (e) => { state.split = e.target.value; state.offset = 0; loadRuns(); if (state.groupBy) loadCurves(); if (state.view === "compare") loadCompare(); });
    $("filter-form").addEventListener("submit", (e) => { e.preventDefault(); state.where = $("where").value; state.offset = 0; loadRuns(); });
    $("page-size").addEventListener("change", (e) => { state.limit = Number(e.target.value); state.offset = 0; loadRuns(); });
    $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); loadRuns(); });
    $("next").addEventListener("click", () => { state.offset += state.limit; loadRuns(); });
    $("clear-selection").addEventListener("click", () => { state.selected = []; state.userCleared = true; renderRuns(); loadCurves(); });
    $("x-axis").addEventListener("change", (e) => { state.x = e.target.value; renderCurves(); });
    $("log-y").addEventListener("change", (e) => { state.logY = e.target.checked; renderCurves(); });
    $("smoothing").addEventListener("input", (e) => { state.smoothing = Number(e.target.value); $("smoothing-value").textContent = e.target.value; renderCurves(); });
    $("group-by").addEventListener("change", (e) => { state.groupBy = e.target.value; loadCurves(); });
    $("sql-run").addEventListener("click", runSql);
    $("sql-text").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); runSql(); } });
    window.addEventListener("hashchange", route);
    if (STATIC) {
      $("where").placeholder = "filter by name (static report: SQL filters need the live dashboard)";
      $("sql-run").disabled = true;
      if (STATIC.sql) { $("sql-text").value = STATIC.sql.query; renderSql(STATIC.sql); }
      $("live").textContent = "static report";
    }
  }

  async function start() {
    wire();
    try {
      await loadMeta();
    } catch (e) {
      showError("error", e.message);
      return;
    }
    await loadRuns();
    route();
    document.body.dataset.ready = "1";
    if (!STATIC) setInterval(follow, 1000);
  }

  start();
})();
