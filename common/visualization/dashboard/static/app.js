// The experiments dashboard: one page, two data sources. Live (served by
// tools/view_experiments.py): every answer comes from the server's JSON API, sorted and filtered
// in DuckDB, and the page follows new saves. Static (an --export report): the same requests are
// answered from the data embedded in window.DASHBOARD_STATIC.
"use strict";
(function () {
  const STATIC = window.DASHBOARD_STATIC || null;
  const NAME = "experiment_name";
  // 24 colours chosen to stay apart from each other; past 24 runs the dash style changes too.
  const COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
    "#882255", "#117733", "#999933", "#332288", "#AA4499", "#44AA99", "#DDCC77", "#661100",
    "#6699CC", "#888888", "#E31A1C", "#1F78B4", "#33A02C", "#FF7F00", "#6A3D9A", "#B15928",
    "#FB9A99"];
  const DASHES = { val: "solid", train: "dot" };
  const CYCLE_DASHES = ["solid", "dashdot", "longdash", "longdashdot"];
  const SELECT_CAP = 200;  // "select all matching" takes at most this many runs
  const TOKEN = (document.querySelector('meta[name="dashboard-token"]') || {}).content || null;

  function runColor(i) { return COLORS[i % COLORS.length]; }
  function runDash(i, split) {
    const cycle = Math.floor(i / COLORS.length) % CYCLE_DASHES.length;
    if (cycle === 0) return DASHES[split] || "dash";
    return split === "train" ? "dot" : CYCLE_DASHES[cycle];
  }

  // Learning rates read as 3e-4 (never "300µ"): on axes and in table cells.
  function isLrLike(column) {
    const last = String(column || "").toLowerCase().split("__").pop().replace(/^(best|last)_/, "");
    return last === "lr" || last === "learning_rate" || last.endsWith("_lr");
  }
  function fmtE(v) {
    if (typeof v !== "number" || !Number.isFinite(v)) return fmt(v);
    return Number(v.toPrecision(4)).toExponential().replace("e+", "e");
  }
  // A y axis title: the metric and its unit.
  function unitOf(metric) {
    const m = String(metric).toLowerCase().replace(/^(best|last)_/, "");
    const last = m.split("__").pop();
    if (m.startsWith("sys__") && m.endsWith("_mb")) return "MiB";
    if (m.endsWith("_percent") || m.endsWith("_pct")) return "%";
    if (last === "bits_per_byte" || last === "bpb") return "bits/byte";
    if (last === "perplexity" || last === "ppl") return "perplexity";
    if (last === "loss" || last.endsWith("_loss")) return "nats/token";
    if (isLrLike(m)) return "learning rate";
    if (last === "tokens_seen" || last === "tokens") return "tokens";
    if (last === "elapsed_s" || last === "seconds" || last.endsWith("_s")) return "seconds";
    if (last.endsWith("_mb")) return "MiB";
    return null;
  }
  function axisTitle(metric) {
    const unit = unitOf(metric);
    return unit && unit !== metric ? `${metric} (${unit})` : String(metric);
  }
  function lrAxis(column) {
    return isLrLike(column) ? { exponentformat: "e", tickformat: ".2~e" } : {};
  }
  const state = {
    meta: null, version: null, split: null, where: "", sort: NAME, desc: false, offset: 0,
    limit: 50, columns: null, selected: [], page: null, curves: null, groups: {},
    x: null, hiddenSplits: new Set(), logY: false, smoothing: 0, groupBy: "", view: "runs",
    runName: null, brush: { parcoords: "", scatter: "" }, lastClicked: null,
    viewMetric: "", scatterX: "", study: "", pcDims: null, scatterMeta: null,
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
    if (Array.isArray(v)) return v.map(fmt).join(", ");
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

  async function httpPost(path, body) {
    const headers = { "Content-Type": "application/json" };
    if (TOKEN) headers["X-Dashboard-Token"] = TOKEN;
    const response = await fetch("/api/" + path, { method: "POST", headers, body: JSON.stringify(body), cache: "no-store" });
    let answer;
    try { answer = await response.json(); } catch (e) { answer = { error: await response.text().catch(() => response.statusText) }; }
    if (!response.ok) throw new Error(answer.error || response.statusText);
    return answer;
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
    return all.filter((c) => c === NAME || c === "rows" || c === "last_step" || c === (state.meta.annotation_columns || [])[0] ||
      c.startsWith("best_") || c === "last_tokens_seen" || c === "last_elapsed_s" ||
      c === "last_saved_at" || c === "git_commit" || c === "host" ||
      (c.startsWith("last_") && all.includes("best_" + c.slice(5))));
  }

  function brushSql() {
    return [state.brush.parcoords, state.brush.scatter].filter(Boolean).join(" AND ");
  }
  function tableWhere() {
    const parts = [state.where, brushSql()].filter((w) => w && w.trim());
    if (parts.length < 2) return parts[0] || "";
    return parts.map((w) => "(" + w + ")").join(" AND ");
  }

  async function loadRuns() {
    const params = {
      split: state.split, where: tableWhere(), sort: state.sort, desc: state.desc ? "1" : "0",
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
      const box = el("input", { type: "checkbox", checked: selected, title: "select " + name + " (shift-click: a range)" });
      box.addEventListener("click", (e) => clickSelected(name, box.checked, e.shiftKey));
      tr.append(el("td", {}, [box]));
      row.forEach((v, i) => {
        if (i === 0) {
          tr.append(el("td", {}, [el("a", { href: "#run/" + encodeURIComponent(name), text: name })]));
        } else {
          const text = isLrLike(page.columns[i]) ? fmtE(v) : fmt(v);
          tr.append(el("td", { class: typeof v === "number" ? "num" : null, text, title: v === null ? null : String(v) }));
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
    renderBrush();
  }

  // Shift-click selects (or clears) every row of the page between the last click and this one.
  function clickSelected(name, checked, shift) {
    const names = state.page.rows.map((r) => r[0]);
    const from = names.indexOf(state.lastClicked), to = names.indexOf(name);
    const range = shift && from >= 0 && to >= 0
      ? names.slice(Math.min(from, to), Math.max(from, to) + 1) : [name];
    state.lastClicked = name;
    setSelected(range, checked);
  }

  function setSelected(names, on) {
    const drop = new Set(names);
    state.selected = state.selected.filter((n) => !drop.has(n));
    if (on) state.selected.push(...names);
    state.userCleared = true;
    $("select-info").textContent = "";
    renderSelection();
    scheduleCurves();
    if (state.view === "compare") loadCompare();
  }

  async function selectMatching() {
    let page;
    try {
      page = await api("runs", { split: state.split, where: tableWhere(), sort: state.sort,
        desc: state.desc ? "1" : "0", columns: NAME, offset: 0, limit: SELECT_CAP });
    } catch (e) {
      showError("filter-error", e.message);
      return;
    }
    state.selected = page.rows.map((r) => r[0]);
    state.userCleared = true;
    $("select-info").textContent = page.total > SELECT_CAP
      ? `selected the first ${SELECT_CAP} of ${page.total} matching runs (at most ${SELECT_CAP} at once)`
      : `selected all ${page.total} matching run(s)`;
    renderSelection();
    scheduleCurves();
  }

  let curvesTimer = null;
  function scheduleCurves() {  // one request for a burst of clicks
    clearTimeout(curvesTimer);
    curvesTimer = setTimeout(loadCurves, 120);
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

  function renderSelection() {
    const n = state.selected.length;
    $("selection").textContent = n === 0 ? "none"
      : (n > 20 ? `${n} runs: ${state.selected.slice(0, 20).join(", ")}, …` : state.selected.join(", "));
    $("selection").dataset.count = n;
    const chosen = new Set(state.selected);
    document.querySelectorAll("#runs-table tr[data-name]").forEach((tr) => {
      const on = chosen.has(tr.dataset.name);
      tr.classList.toggle("selected", on);
      const box = tr.querySelector("input[type=checkbox]");
      if (box) box.checked = on;
    });
  }

  // ------------------------------------------------------------------ curves

  function curveNames() {
    return state.view === "run" ? [state.runName] : state.selected;
  }

  let curvesSeq = 0;  // an answer to an older request (the selection changed since) is dropped

  async function loadCurves() {
    const names = curveNames();
    const seq = ++curvesSeq;
    if (!names.length) {
      state.curves = { runs: [], metrics: [], x_columns: [] };
      return renderCurves();
    }
    try {
      const curves = STATIC ? await api("curves", { name: names }) : await httpPost("curves", { names });
      if (state.groupBy) await loadGroups(names);
      if (seq !== curvesSeq) return;
      state.curves = curves;
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
          line: { color: runColor(i), dash: runDash(i, split) },
          marker: { color: runColor(i) },
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
    const present = data.metrics.filter((m) => data.runs.some((r) =>
      Object.values(r.splits).some((s) => (s[m] || []).some((v) => v !== null))));
    const isSystem = (m) => m.toLowerCase().startsWith("sys__");
    const systemBox = state.view === "run" ? $("run-system") : null;
    const wanted = present.filter((m) => !isSystem(m) || systemBox);
    for (const holder of [box, $("run-system")]) {
      if (!holder) continue;
      for (const div of [...holder.children]) {
        if (!wanted.includes(div.dataset.metric) || (holder === box) === isSystem(div.dataset.metric)) {
          Plotly.purge(div); div.remove();
        }
      }
    }
    if (systemBox) {
      $("run-system-note").textContent = present.some(isSystem) ? "" : "no system metrics (sys__*) stored for this run";
    }
    for (const metric of wanted) {
      const id = "plot-" + metric;
      let div = document.getElementById(id);
      if (!div) {
        div = el("div", { id, class: "plot", "data-metric": metric });
        (isSystem(metric) ? systemBox : box).append(div);
      }
      const traces = state.groupBy ? groupTraces(metric) : runTraces(metric);
      Plotly.react(div, traces, {
        title: { text: metric, font: { size: 14 } },
        xaxis: { title: { text: axisTitle(state.x) }, ...lrAxis(state.x) },
        yaxis: { title: { text: axisTitle(metric) }, type: state.logY ? "log" : "linear", ...lrAxis(metric) },
        margin: { l: 55, r: 15, t: 35, b: 40 }, height: 320,
        legend: { font: { size: 10 } }, uirevision: metric + state.x + state.logY,
      }, { displaylogo: false, responsive: true });
    }
  }

  // ------------------------------------------------------------------ views over many runs

  function sqlIdent(c) { return '"' + String(c).replace(/"/g, '""') + '"'; }
  function sqlLiteral(v) {
    if (typeof v === "number") return String(v);
    return "'" + String(v).replace(/'/g, "''") + "'";
  }

  function viewParams() {
    return { split: state.split, where: state.where, metric: state.viewMetric || undefined };
  }

  async function loadViews() {
    if (STATIC || !$("views-box").open) return;
    showError("views-error", "");
    try {
      const [pc, sc, imp] = await Promise.all([
        api("parcoords", viewParams()),
        api("scatter", { ...viewParams(), x: state.scatterX || undefined }),
        api("importance", { ...viewParams(), study: state.study || undefined }),
      ]);
      renderViewControls(pc, sc, imp);
      renderParcoords(pc);
      renderScatter(sc);
      renderImportance(imp);
    } catch (e) {
      showError("views-error", e.message);
    }
  }

  function fillSelect(sel, options, value) {
    const key = options.map((o) => o.value + "=" + o.text).join(",");
    if (sel.dataset.options !== key) {
      sel.dataset.options = key;
      sel.replaceChildren(...options.map((o) => el("option", { value: o.value, text: o.text })));
    }
    sel.value = value;
  }

  function renderViewControls(pc, sc, imp) {
    fillSelect($("view-metric"), pc.metrics.map((m) => ({ value: m, text: m })), pc.metric);
    fillSelect($("scatter-x"), pc.params.map((m) => ({ value: m, text: m })), sc.x);
    fillSelect($("importance-source"), [{ value: "", text: "these runs (eta\u00b2)" },
      ...(imp.studies || []).map((st) => ({ value: st, text: "Optuna study: " + st }))], state.study || "");
  }

  // One parcoords dimension: log axes are drawn as log10 with ticks in the column's values,
  // text as the index of the value; ``toSql`` turns a brushed range back into a condition.
  function dimension(column, kind, log, values) {
    if (kind === "text") {
      const cats = [...new Set(values.filter((v) => v !== null).map(String))].sort();
      const index = new Map(cats.map((c, i) => [c, i]));
      return {
        spec: { label: column, values: values.map((v) => (v === null ? null : index.get(String(v)))),
          tickvals: cats.map((_, i) => i), ticktext: cats, range: [0, Math.max(cats.length - 1, 1)] },
        toSql: (lo, hi) => {
          const picked = cats.filter((_, i) => i >= lo && i <= hi);
          return picked.length ? `${sqlIdent(column)} IN (${picked.map(sqlLiteral).join(", ")})` : "false";
        },
      };
    }
    const nums = values.filter((v) => typeof v === "number");
    if (log) {
      const lo = Math.floor(Math.log10(Math.min(...nums))), hi = Math.ceil(Math.log10(Math.max(...nums)));
      const distinct = [...new Set(nums)].sort((a, b) => a - b);
      const ticks = distinct.length <= 8 ? distinct : Array.from({ length: hi - lo + 1 }, (_, i) => Math.pow(10, lo + i));
      return {
        spec: { label: column + " (log)", values: values.map((v) => (typeof v === "number" && v > 0 ? Math.log10(v) : null)),
          tickvals: ticks.map(Math.log10), ticktext: ticks.map(fmtE) },
        toSql: (a, b) => `${sqlIdent(column)} BETWEEN ${Math.pow(10, a)} AND ${Math.pow(10, b)}`,
      };
    }
    const spec = { label: column, values: values.map((v) => (typeof v === "number" ? v : null)) };
    if (isLrLike(column)) spec.tickformat = ".2~e";
    return { spec, toSql: (a, b) => `${sqlIdent(column)} BETWEEN ${a} AND ${b}` };
  }

  function renderParcoords(pc) {
    const div = $("parcoords");
    const dims = pc.dimensions.map((d) => dimension(d.column, d.kind, d.log, d.values));
    const metric = dimension(pc.metric, "numeric", false, pc.metric_values);
    dims.push(metric);
    state.pcDims = dims;
    const ys = pc.metric_values;
    div.dataset.runs = pc.names.length;
    div.dataset.metric = pc.metric;
    if (!pc.names.length) {
      Plotly.purge(div);
      div.replaceChildren(el("p", { class: "muted", text: "no run has a finite " + pc.metric }));
      return;
    }
    // a live update redraws the view: the brushed ranges stay on their axes
    const kept = new Map(((div.data && div.data[0] && div.data[0].dimensions) || [])
      .filter((d) => d.constraintrange).map((d) => [d.label, d.constraintrange]));
    for (const d of dims) if (kept.has(d.spec.label) && state.brush.parcoords) d.spec.constraintrange = kept.get(d.spec.label);
    Plotly.react(div, [{
      type: "parcoords", dimensions: dims.map((d) => d.spec),
      line: { color: ys, colorscale: "Viridis", showscale: true, colorbar: { title: { text: axisTitle(pc.metric) } } },
    }], {
      title: { text: `${pc.names.length} run(s) \u00b7 ${axisTitle(pc.metric)} on ${pc.split}`, font: { size: 13 } },
      margin: { l: 70, r: 90, t: 70, b: 30 }, height: 380,
    }, { displaylogo: false, responsive: true });
    if (!div.dataset.wired) {
      div.dataset.wired = "1";
      div.on("plotly_restyle", () => brushParcoords(div));
    }
  }

  function brushParcoords(div) {
    const trace = div.data && div.data[0];
    if (!trace || !state.pcDims) return;
    const conditions = [];
    trace.dimensions.forEach((d, i) => {
      let ranges = d.constraintrange;
      if (!ranges || !ranges.length) return;
      if (!Array.isArray(ranges[0])) ranges = [ranges];
      const parts = ranges.map(([a, b]) => state.pcDims[i].toSql(Math.min(a, b), Math.max(a, b)));
      conditions.push(parts.length > 1 ? "(" + parts.join(" OR ") + ")" : parts[0]);
    });
    setBrush("parcoords", conditions.join(" AND "));
  }

  function renderScatter(sc) {
    const div = $("scatter");
    const text = sc.kind === "text";
    div.dataset.points = sc.names.length;
    Plotly.react(div, [{
      type: "scatter", mode: "markers", x: sc.xs, y: sc.ys, text: sc.names,
      hovertemplate: "%{text}<br>" + sc.x + " = %{x}<br>" + sc.metric + " = %{y}<extra></extra>",
      marker: { size: 7, color: "#0072B2", opacity: 0.75 },
    }], {
      title: { text: `${sc.metric} vs ${sc.x}`, font: { size: 13 } },
      xaxis: { title: { text: axisTitle(sc.x) }, type: text ? "category" : (sc.log_x ? "log" : "linear"), ...lrAxis(sc.x) },
      yaxis: { title: { text: axisTitle(sc.metric) } },
      dragmode: "select", margin: { l: 60, r: 15, t: 35, b: 45 }, height: 320,
    }, { displaylogo: false, responsive: true });
    state.scatterMeta = sc;
    if (!div.dataset.wired) {
      div.dataset.wired = "1";
      div.on("plotly_selected", (ev) => brushScatter(ev));
      div.on("plotly_deselect", () => setBrush("scatter", ""));
    }
  }

  // The box's selection as SQL: the smallest box around the selected points holds exactly them.
  function brushScatter(ev) {
    const sc = state.scatterMeta;
    if (!ev || !ev.points || !sc) return;
    if (!ev.points.length) { setBrush("scatter", "false"); return; }
    const xs = ev.points.map((pt) => sc.xs[pt.pointIndex]), ys = ev.points.map((pt) => sc.ys[pt.pointIndex]);
    const xCond = sc.kind === "text"
      ? `${sqlIdent(sc.x)} IN (${[...new Set(xs.map(String))].map(sqlLiteral).join(", ")})`
      : `${sqlIdent(sc.x)} BETWEEN ${Math.min(...xs)} AND ${Math.max(...xs)}`;
    setBrush("scatter", `${xCond} AND ${sqlIdent(sc.metric)} BETWEEN ${Math.min(...ys)} AND ${Math.max(...ys)}`);
  }

  function setBrush(view, sql) {
    if ((state.brush[view] || "") === sql) return;
    state.brush[view] = sql;
    state.offset = 0;
    loadRuns();
  }

  function renderBrush() {
    const sql = brushSql();
    $("brush").hidden = !sql;
    $("brush-sql").textContent = sql;
  }

  function renderImportance(imp) {
    const div = $("importance");
    const rows = imp.importances.slice().reverse();
    div.dataset.params = imp.importances.map((r) => r.param).join(",");
    Plotly.react(div, [{
      type: "bar", orientation: "h", x: rows.map((r) => r.importance), y: rows.map((r) => r.param),
      marker: { color: "#009E73" },
    }], {
      title: { text: imp.source === "optuna" ? `importance (Optuna, study ${imp.study})` : `importance for ${imp.metric} (eta\u00b2)`, font: { size: 13 } },
      xaxis: { title: { text: "share of the metric's variance" }, range: [0, 1] },
      margin: { l: 140, r: 15, t: 35, b: 45 }, height: 320,
    }, { displaylogo: false, responsive: true });
    $("importance-method").textContent = "method: " + imp.method
      + (imp.runs !== undefined ? ` \u00b7 ${imp.runs} run(s)` : "") + (imp.trials !== undefined ? ` \u00b7 ${imp.trials} trial(s)` : "");
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
        ...result.rows.map((r) => el("td", { class: typeof r[i] === "number" ? "num" : null, text: isLrLike(c) ? fmtE(r[i]) : fmt(r[i]) })),
      ]));
    }
    table.append(body);
  }

  // ------------------------------------------------------------------ run page

  function kv(title, obj) {
    const entries = Object.entries(obj || {});
    return [el("h2", { text: title }), entries.length
      ? el("dl", { class: "kv" }, entries.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: isLrLike(k) ? fmtE(v) : fmt(v) })]))
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
      ...annotationsSection(run),
      ...kv("Provenance", run.provenance),
      ...kv("Environment", run.environment),
      el("h2", { text: "Checkpoints" }),
      el("p", {}, [el("code", { text: ck.folder }), ck.exists
        ? ` \u2014 ${ck.steps.length} checkpoint(s)${ck.steps.length ? ": " + ck.steps.join(", ") : ""}${ck.run_json ? ", run.json" : ""}`
        : " \u2014 (no such folder)"]),
      ...kv("Config", run.config),
      el("h2", { text: "Evaluation samples" }), samples,
      el("h2", { text: "System" }),
      el("p", { id: "run-system-note", class: "muted" }),
      el("div", { id: "run-system", class: "plots" }),
    );
    loadCurves();
  }

  // Tags and note: read-only in a static report; on the live page, edited through the server.
  function annotationsSection(run) {
    const tags = el("div", { id: "run-tags", class: "tags" });
    const note = el("div", { id: "run-note-box" });
    const message = el("span", { id: "annotation-error", class: "error", hidden: true });
    const render = (tagList, noteText) => {
      tags.replaceChildren(...tagList.map((t) => el("span", { class: "tag", "data-tag": t }, [t,
        STATIC ? null : el("button", { type: "button", title: "remove tag " + t, text: "\u00d7",
          onclick: () => edit("untag", { tag: t }) })])));
      if (!tagList.length) tags.append(el("span", { class: "muted", text: "(no tags)" }));
      if (!STATIC) {
        const input = el("input", { id: "tag-input", size: 16, placeholder: "new tag", autocomplete: "off" });
        const form = el("form", { id: "tag-form" }, [input, el("button", { type: "submit", text: "add tag" })]);
        form.addEventListener("submit", (e) => { e.preventDefault(); if (input.value.trim()) edit("tag", { tag: input.value.trim() }); });
        tags.append(form);
        const area = el("textarea", { id: "note-text", rows: 3, placeholder: "a note on this run" });
        area.value = noteText || "";
        note.replaceChildren(area, el("div", {}, [el("button", { id: "note-save", type: "button", text: "save note",
          onclick: () => edit("note", { note: area.value }) })]));
      } else {
        note.replaceChildren(noteText ? el("p", { id: "run-note", class: "note", text: noteText })
          : el("p", { class: "muted", text: "(no note)" }));
      }
    };
    async function edit(op, body) {
      message.hidden = true;
      try {
        const answer = await httpPost(op, { name: run.name, ...body });
        render(answer.tags, answer.note);
        document.body.dataset.annotated = String(Number(document.body.dataset.annotated || 0) + 1);
      } catch (e) {
        message.textContent = e.message;
        message.hidden = false;
      }
    }
    render(run.tags || [], run.note);
    return [el("h2", { text: "Tags and note" }), tags, note, message];
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
    loadViews();
    // an open run page keeps its tag and note editors (and what is typed in them): only its
    // curves follow the store
    const shown = $("run-title");
    if (state.view === "run" && !(shown && shown.textContent === state.runName)) loadRunPage();
    else if (state.view !== "sql") loadCurves();
    if (state.view === "compare") loadCompare();
  }

  function wire() {
    $("split").addEventListener("change", (e) => { state.split = e.target.value; state.offset = 0; loadRuns(); loadViews(); if (state.groupBy) loadCurves(); if (state.view === "compare") loadCompare(); });
    $("filter-form").addEventListener("submit", (e) => { e.preventDefault(); state.where = $("where").value; state.offset = 0; loadRuns(); loadViews(); });
    $("page-size").addEventListener("change", (e) => { state.limit = Number(e.target.value); state.offset = 0; loadRuns(); });
    $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); loadRuns(); });
    $("next").addEventListener("click", () => { state.offset += state.limit; loadRuns(); });
    $("clear-selection").addEventListener("click", () => { state.selected = []; state.userCleared = true; $("select-info").textContent = ""; renderRuns(); loadCurves(); });
    $("select-matching").addEventListener("click", selectMatching);
    $("clear-brush").addEventListener("click", () => {
      state.brush = { parcoords: "", scatter: "" };
      state.offset = 0;
      loadRuns();
      loadViews();  // redraws without the brushed ranges
    });
    $("views-box").addEventListener("toggle", loadViews);
    $("view-metric").addEventListener("change", (e) => { state.viewMetric = e.target.value; state.brush = { parcoords: "", scatter: "" }; loadRuns(); loadViews(); });
    $("scatter-x").addEventListener("change", (e) => { state.scatterX = e.target.value; state.brush.scatter = ""; loadRuns(); loadViews(); });
    $("importance-source").addEventListener("change", (e) => { state.study = e.target.value; loadViews(); });
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
      $("views-box").hidden = true;
      $("select-matching").title = "select the runs the name filter matches (at most 200)";
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
