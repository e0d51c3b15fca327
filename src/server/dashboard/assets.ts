/**
 * The dashboard's stylesheet and script, served from the service itself (no CDN, no build step:
 * they compile into dist/ with the rest). The script only enhances server-rendered pages: every
 * page and every action works without it; with it, a page's main region refreshes in place and
 * charts are drawn with uPlot (served from node_modules, see dashboard-routes.ts).
 */
export const DASHBOARD_CSS = `
:root { --fg: #1b1f24; --muted: #57606a; --bg: #fff; --line: #d0d7de; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --info: #0969da; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--info); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, main:focus-visible { outline: 3px solid var(--info); outline-offset: 2px; }
.skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: var(--bg); padding: 4px 8px; z-index: 2; }
header.top { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 20px; padding: 10px 20px; border-bottom: 1px solid var(--line); background: var(--soft); }
.brand { font-weight: 700; }
nav a { margin-right: 14px; text-decoration: none; padding: 4px 2px; }
nav a[aria-current="page"] { font-weight: 700; border-bottom: 3px solid var(--info); }
.sign-out { margin-left: auto; }
main { padding: 12px 20px 24px; max-width: 1500px; }
footer { padding: 8px 20px; color: var(--muted); font-size: 13px; }
h1 small, h1 + p small { color: var(--muted); font-weight: 400; }
h2 { font-size: 18px; margin-top: 28px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; list-style: none; padding: 0; }
.cards li { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; background: var(--soft); }
.cards strong { font-size: 20px; margin-right: 4px; }
.filters { display: flex; flex-wrap: wrap; gap: 8px 14px; align-items: end; margin: 10px 0; }
.filters label { display: flex; flex-direction: column; font-size: 13px; color: var(--muted); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
caption { text-align: left; color: var(--muted); padding: 4px 0; font-size: 13px; }
th, td { padding: 6px 8px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { background: var(--soft); white-space: nowrap; }
thead th a { color: var(--fg); text-decoration: none; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.compact { width: auto; }
.use { white-space: nowrap; font-variant-numeric: tabular-nums; }
meter { width: 70px; vertical-align: middle; }
.badge { display: inline-block; border: 1px solid currentColor; border-radius: 10px; padding: 0 7px; font-size: 12px; margin: 1px 2px; white-space: nowrap; }
.badge.ok { color: var(--ok); } .badge.warn { color: var(--warn); } .badge.bad { color: var(--bad); } .badge.info { color: var(--info); }
.notice { margin: 10px 20px; padding: 8px 12px; border-radius: 6px; border: 1px solid; }
.notice.ok { color: var(--ok); background: #dafbe1; } .notice.error { color: var(--bad); background: #ffebe9; }
main .notice { margin: 10px 0; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 8px 16px; }
.facts div { border: 1px solid var(--line); border-radius: 6px; padding: 6px 10px; }
.facts dt { color: var(--muted); font-size: 13px; } .facts dd { margin: 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 12px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px; min-width: 0; }
figcaption { font-size: 13px; color: var(--muted); }
.chart { min-height: 220px; }
svg.bars { width: 100%; max-width: 720px; height: auto; }
.actions { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 12px; align-items: start; }
form.action { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; display: flex; flex-wrap: wrap; gap: 6px 10px; align-items: end; margin: 6px 0; }
form.action.danger { border-color: var(--bad); }
form.action label { display: flex; flex-direction: column; font-size: 13px; color: var(--muted); }
form.action fieldset { display: flex; flex-wrap: wrap; gap: 6px 10px; border: 1px dashed var(--line); }
button { font: inherit; padding: 5px 12px; border-radius: 6px; border: 1px solid var(--line); background: var(--soft); cursor: pointer; }
.danger button { color: var(--bad); border-color: var(--bad); }
input, select { font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 4px; }
.secret { display: block; font: 15px ui-monospace, monospace; padding: 10px; background: var(--soft); border: 1px solid var(--line); word-break: break-all; }
.checks { list-style: none; padding: 0; } .checks li { padding: 6px 0; border-bottom: 1px solid var(--line); }
.crumbs { color: var(--muted); margin: 0; }
body.sign-in main { max-width: 420px; margin: 10vh auto; }
body.sign-in form { display: flex; flex-direction: column; gap: 8px; }
.hint { color: var(--muted); font-size: 13px; }
@media (max-width: 700px) {
  main { padding: 8px 10px; }
  .charts { grid-template-columns: 1fr; }
  header.top { padding: 8px 10px; }
}
`;

export const DASHBOARD_JS = `
"use strict";
(function () {
  var main = document.getElementById("live");
  if (!main || !main.dataset.refreshMs) return;
  var refreshMs = Number(main.dataset.refreshMs);
  var charts = [];
  var COLORS = { p50: "#0969da", p95: "#cf222e", ok: "#1a7f37", errors: "#cf222e", refused: "#9a6700", invalid: "#8250df", embedding: "#0969da", llm: "#8250df", vectorQueries: "#1a7f37", };
  var DASH = { p95: [6, 4], errors: [6, 4], refused: [2, 3], invalid: [8, 3, 2, 3], llm: [6, 4], vectorQueries: [2, 3] };

  function signedOut(res) { if (res.status === 401) { location.assign("/dashboard/sign-in?next=" + encodeURIComponent(location.pathname + location.search)); return true; } return false; }

  // Points are shown: a quiet tenant's minutes are mostly empty, and a lone busy minute must still be seen.
  function series(name) { return { label: name, stroke: COLORS[name], width: 2, dash: DASH[name], spanGaps: false, points: { show: true, size: 5 } }; }
  var small = { size: 70, values: function (u, vals) { return vals.map(function (v) { return v === 0 ? "0" : Math.abs(v) < 1 ? Number(v.toPrecision(2)).toString() : v.toLocaleString(); }); } };

  function draw(el, labels, xs, data, opts) {
    if (typeof uPlot === "undefined") return;
    var width = Math.max(260, el.clientWidth - 4);
    var o = Object.assign({ width: width, height: 200, series: [{}].concat(labels.map(series)), axes: [{}, { size: 60 }], legend: { live: true } }, opts || {});
    if (el._plot) { el._plot.setData([xs].concat(data)); el._plot.setSize({ width: width, height: 200 }); return; }
    el.textContent = "";
    el._plot = new uPlot(o, [xs].concat(data), el);
    charts.push(el);
  }

  function drawSeries(box) {
    fetch(box.dataset.series, { credentials: "same-origin" }).then(function (res) {
      if (signedOut(res) || !res.ok) return null;
      return res.json();
    }).then(function (s) {
      if (!s) return;
      var xs = s.points.map(function (p) { return Date.parse(p.at) / 1000; });
      var pick = function (f) { return s.points.map(f); };
      box.querySelectorAll("[data-chart]").forEach(function (el) {
        var kind = el.dataset.chart;
        if (kind === "latency") draw(el, ["p50", "p95"], xs, [pick(function (p) { return p.p50; }), pick(function (p) { return p.p95; })]);
        if (kind === "operations") draw(el, ["ok", "errors", "refused", "invalid"], xs, ["ok", "errors", "refused", "invalid"].map(function (k) { return pick(function (p) { return p[k]; }); }));
        if (kind === "cost") draw(el, ["embedding", "llm", "vectorQueries"], xs, ["embedding", "llm", "vectorQueries"].map(function (k) { return pick(function (p) { return p.cost[k]; }); }), { axes: [{}, small] });
      });
    }).catch(function () {});
  }

  function drawAll() {
    document.querySelectorAll(".charts[data-series]").forEach(drawSeries);
  }

  // Refreshes the main region in place: never while the operator is typing in one of its forms.
  function refresh() {
    if (document.visibilityState !== "visible") return;
    var active = document.activeElement;
    if (active && active.closest && active.closest("main form")) return;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Dashboard-Fragment": "main" } }).then(function (res) {
      if (signedOut(res) || !res.ok) return null;
      return res.text();
    }).then(function (text) {
      if (text === null || text === undefined) return;
      var kept = main.querySelector(".charts[data-series]");
      main.innerHTML = text;
      var fresh = main.querySelector(".charts[data-series]");
      // The charts stay (uPlot keeps its state); they refresh from their own data.
      if (kept && fresh && kept.dataset.series === fresh.dataset.series) fresh.replaceWith(kept);
      var updated = document.getElementById("updated");
      if (updated) updated.textContent = new Date().toISOString().slice(11, 19) + " UTC";
      drawAll();
    }).catch(function () {});
  }

  window.addEventListener("load", drawAll);
  window.addEventListener("resize", function () { charts.forEach(function (el) { if (el._plot) el._plot.setSize({ width: Math.max(260, el.clientWidth - 4), height: 200 }); }); });
  setInterval(refresh, refreshMs);
})();
`;
