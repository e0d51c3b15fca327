import type { TenantQuota } from "../../config.js";
import type { CheckResult } from "../../readiness/checks.js";
import type { MonthlyReport, Reconciliation, TenantCostSummary } from "../../costs/cost-engine.js";
import type { StrategyCost } from "../../costs/planner.js";
import type { MoveStatus } from "../../operations/background-moves.js";
import type { TenantOverviewRow } from "../../operations/tenant-overview.js";
import type { AuditEntry } from "../../tenancy/audit-log.js";
import type { ApiKeyInfo } from "../../tenancy/api-keys.js";
import type { IndexCapacity } from "../../tenancy/capacity.js";
import { html, type Html } from "./html.js";

/** What every signed-in page needs: where it is, the session's CSRF token, and a notice to show once. */
export interface PageContext {
  path: string;
  csrf: string;
  notice?: { kind: "ok" | "error"; text: string };
}

const NAV = [
  ["/dashboard", "Tenants"],
  ["/dashboard/capacity", "Capacity"],
  ["/dashboard/costs", "Costs"],
  ["/dashboard/readiness", "Readiness"],
] as const;

/** A whole page: the signed-in frame around `main`, which the page's script refreshes in place every `refreshMs` (never with 0). */
export function page(title: string, ctx: PageContext, main: Html, refreshMs = 5_000): Html {
  const current = (href: string) => (href === "/dashboard" ? ctx.path === "/dashboard" || ctx.path.startsWith("/dashboard/tenants") : ctx.path.startsWith(href));
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Bulkhead</title>
<link rel="stylesheet" href="/dashboard/assets/uPlot.min.css">
<link rel="stylesheet" href="/dashboard/assets/dashboard.css">
<script src="/dashboard/assets/uPlot.iife.min.js" defer></script>
<script src="/dashboard/assets/dashboard.js" defer></script>
</head>
<body>
<a class="skip" href="#live">Skip to content</a>
<header class="top">
  <span class="brand">Bulkhead</span>
  <nav aria-label="Sections">${NAV.map(([href, label]) => html`<a href="${href}"${current(href) ? html` aria-current="page"` : ""}>${label}</a>`)}</nav>
  <form method="post" action="/dashboard/sign-out" class="sign-out"><input type="hidden" name="csrf" value="${ctx.csrf}"><button type="submit">Sign out</button></form>
</header>
${ctx.notice ? html`<p class="notice ${ctx.notice.kind}" role="status">${ctx.notice.kind === "ok" ? "✓ " : "✗ "}${ctx.notice.text}</p>` : ""}
<main id="live"${refreshMs > 0 ? html` data-refresh-ms="${refreshMs}"` : ""} tabindex="-1">
${main}
</main>
<footer>${refreshMs > 0 ? `Updates every ${refreshMs / 1000} s · ` : ""}<span id="updated">${new Date().toISOString().slice(11, 19)} UTC</span></footer>
</body>
</html>`;
}

export function signInPage(options: { error?: string; next: string }): Html {
  return html`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Sign in · Bulkhead</title><link rel="stylesheet" href="/dashboard/assets/dashboard.css"></head>
<body class="sign-in">
<main id="live">
<h1>Bulkhead dashboard</h1>
<form method="post" action="/dashboard/sign-in">
  <label for="key">Admin key</label>
  <input id="key" name="key" type="password" autocomplete="off" required autofocus>
  <input type="hidden" name="next" value="${options.next}">
  <button type="submit">Sign in</button>
  ${options.error ? html`<p class="notice error" role="alert">✗ ${options.error}</p>` : ""}
  <p class="hint">The key is exchanged for a session cookie and is not kept in the browser. <code>bulkhead keys create-admin</code> makes one.</p>
</form>
</main>
</body>
</html>`;
}

// ————— formatting —————

const num = (n: number) => n.toLocaleString("en-US");
const ms = (v: number | null) => (v === null ? "—" : v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`);
const pct = (v: number | null) => (v === null ? "—" : `${(v * 100).toFixed(v > 0 && v < 0.01 ? 2 : 1)} %`);
/** Dollars to the cent; under a dollar, to two significant digits (a tenant's month of queries may cost $0.0031). */
export const money = (usd: number) => {
  const a = Math.abs(usd);
  const shown = a > 0 && a < 0.995 ? `${Number(a.toPrecision(2))}` : a.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  return `${usd < 0 ? "−" : ""}$${shown}`;
};
/** An amount shown with its exact value alongside, for copying and for tests. */
const amount = (usd: number) => html`<span data-usd="${usd}">${money(usd)}</span>`;
const when = (d: Date | null) => (d ? d.toISOString().replace("T", " ").slice(0, 19) : "—");

/** Use of a quota as a meter and in words (a meter alone says nothing to a screen reader without its numbers). */
function quotaUse(used: number, limit: number, label: string): Html {
  return html`<span class="use"><meter min="0" max="${Math.max(limit, 1)}" low="${0.8 * limit}" high="${0.9 * limit}" optimum="0" value="${Math.min(used, limit)}" aria-label="${label}"></meter> ${num(used)} / ${num(limit)}</span>`;
}

/** Refusals by kind, in words: "3 rate, 1 quota". */
function refusalKinds(k: { rateLimited: number; quotaExceeded: number; concurrencyLimited: number }): string {
  const parts = [[k.rateLimited, "rate"], [k.quotaExceeded, "quota"], [k.concurrencyLimited, "concurrency"]] as const;
  return parts.filter(([n]) => n > 0).map(([n, what]) => `${num(n)} ${what}`).join(", ");
}

/** Badges carry a symbol and a word, never colour alone. */
const badge = (kind: string, text: string) => html`<span class="badge ${kind}">${text}</span>`;

export type Flag = "hot" | "slow" | "failing" | "near-quota" | "unprofitable" | "suspended" | "moving";
const FLAG_BADGES: Record<Flag, [string, string]> = {
  hot: ["warn", "↑ hot"],
  slow: ["warn", "◔ slow"],
  failing: ["bad", "✗ failing"],
  "near-quota": ["warn", "▲ near quota"],
  unprofitable: ["bad", "$ unprofitable"],
  suspended: ["bad", "‖ suspended"],
  moving: ["info", "⇄ moving"],
};

export interface TenantRowView extends TenantOverviewRow {
  flags: Flag[];
}

// ————— tenants —————

export const SORTS = {
  tenant: (r: TenantRowView) => r.tenantId,
  tier: (r: TenantRowView) => r.tier,
  documents: (r: TenantRowView) => r.documents / Math.max(1, r.quota.maxDocuments),
  queries: (r: TenantRowView) => r.queriesToday / Math.max(1, r.quota.maxDailyQueries),
  requests: (r: TenantRowView) => r.recent.requests,
  p95: (r: TenantRowView) => r.recent.p95 ?? -1,
  errors: (r: TenantRowView) => r.day.errorRate ?? -1,
  refused: (r: TenantRowView) => r.day.refused,
  cost: (r: TenantRowView) => r.month.totalCost,
  margin: (r: TenantRowView) => r.month.margin,
} as const;
export type SortKey = keyof typeof SORTS;

export interface TenantFilters {
  q: string;
  tier: string;
  status: string;
  flag: string;
  sort: SortKey;
  dir: "asc" | "desc";
}

/** Rows a tenant table shows at most: the rest are reached by sorting, finding and filtering (10,000 rows took 0.76 s to render). */
export const TABLE_ROWS = 200;

export function tenantsMain(rows: TenantRowView[], all: TenantRowView[], f: TenantFilters): Html {
  const shown = rows.slice(0, TABLE_ROWS);
  const count = (flag: Flag) => all.filter((r) => r.flags.includes(flag)).length;
  const link = (key: SortKey) => {
    const dir = f.sort === key && f.dir === "desc" ? "asc" : "desc";
    const params = new URLSearchParams({ ...(f.q ? { q: f.q } : {}), ...(f.tier ? { tier: f.tier } : {}), ...(f.status ? { status: f.status } : {}), ...(f.flag ? { flag: f.flag } : {}), sort: key, dir });
    return `/dashboard?${params}`;
  };
  const th = (key: SortKey, label: string) =>
    html`<th scope="col" aria-sort="${f.sort === key ? (f.dir === "asc" ? "ascending" : "descending") : "none"}"><a href="${link(key)}">${label}${f.sort === key ? (f.dir === "asc" ? " ▲" : " ▼") : ""}</a></th>`;
  const option = (value: string, label: string, selected: string) => html`<option value="${value}"${value === selected ? html` selected` : ""}>${label}</option>`;
  return html`<h1>Tenants</h1>
<ul class="cards" aria-label="At a glance">
  <li><strong>${num(all.length)}</strong> tenants</li>
  <li><a href="/dashboard?flag=hot"><strong>${count("hot")}</strong> hot</a></li>
  <li><a href="/dashboard?flag=near-quota"><strong>${count("near-quota")}</strong> near quota</a></li>
  <li><a href="/dashboard?flag=failing"><strong>${count("failing")}</strong> failing</a></li>
  <li><a href="/dashboard?flag=unprofitable"><strong>${count("unprofitable")}</strong> unprofitable</a></li>
  <li><a href="/dashboard?flag=suspended"><strong>${count("suspended")}</strong> suspended</a></li>
</ul>
<form class="filters" method="get" action="/dashboard" role="search">
  <label>Find <input type="search" name="q" value="${f.q}" placeholder="id or name"></label>
  <label>Tier <select name="tier">${option("", "any", f.tier)}${option("free", "free", f.tier)}${option("pro", "pro", f.tier)}${option("enterprise", "enterprise", f.tier)}</select></label>
  <label>Status <select name="status">${option("", "any", f.status)}${option("active", "active", f.status)}${option("suspended", "suspended", f.status)}</select></label>
  <label>Flag <select name="flag">${option("", "any", f.flag)}${(Object.keys(FLAG_BADGES) as Flag[]).map((k) => option(k, k, f.flag))}</select></label>
  <input type="hidden" name="sort" value="${f.sort}"><input type="hidden" name="dir" value="${f.dir}">
  <button type="submit">Filter</button>
</form>
<div class="scroll">
<table class="tenants">
<caption>${num(rows.length)} of ${num(all.length)} tenants${rows.length > shown.length ? ` (the first ${num(shown.length)} in this order: find or filter to narrow)` : ""} · activity from the last 5 minutes and 24 hours · costs month to date</caption>
<thead><tr>
  ${th("tenant", "Tenant")}${th("tier", "Tier")}<th scope="col">Placement</th><th scope="col">Status</th>
  ${th("documents", "Documents")}${th("queries", "Queries today")}${th("requests", "Ops 5 min")}${th("p95", "p50 / p95 5 min")}
  ${th("errors", "Errors 5 min / 24 h")}${th("refused", "Refused 24 h")}${th("cost", "Cost")}${th("margin", "Margin")}<th scope="col">Flags</th>
</tr></thead>
<tbody>
${shown.map(
  (r) => html`<tr data-tenant="${r.tenantId}">
  <th scope="row"><a href="/dashboard/tenants/${r.tenantId}">${r.tenantId}</a><br><small>${r.tenantName}</small></th>
  <td>${r.tier}</td>
  <td><small>${r.store} / ${r.index}${r.isolation === "dedicated-index" ? "" : html` / ${r.namespace}`}</small></td>
  <td>${r.status === "active" ? badge("ok", "● active") : badge("bad", "‖ suspended")}</td>
  <td data-field="documents">${quotaUse(r.documents, r.quota.maxDocuments, `documents of ${r.tenantId}`)}</td>
  <td data-field="queries">${quotaUse(r.queriesToday, r.quota.maxDailyQueries, `queries today of ${r.tenantId}`)}</td>
  <td class="n" data-field="requests">${num(r.recent.requests)}</td>
  <td class="n">${ms(r.recent.p50)} / ${ms(r.recent.p95)}</td>
  <td class="n">${pct(r.recent.errorRate)} / ${pct(r.day.errorRate)}</td>
  <td class="n" data-field="refused">${num(r.day.refused)}${r.day.refused > 0 ? html`<br><small>${refusalKinds(r.day.refusals)}</small>` : ""}</td>
  <td class="n" data-field="cost">${amount(r.month.totalCost)}</td>
  <td class="n" data-field="margin">${amount(r.month.margin)}</td>
  <td>${r.flags.map((flag) => badge(...FLAG_BADGES[flag]))}</td>
</tr>`,
)}
</tbody>
</table>
</div>`;
}

// ————— one tenant —————

export interface TenantPageData {
  row: TenantRowView;
  quotaOverrides: Partial<TenantQuota>;
  costs: TenantCostSummary;
  keys: ApiKeyInfo[];
  audit: AuditEntry[];
  move: MoveStatus | null;
  window: string;
  tiers: readonly string[];
  stores: readonly string[];
  /** Quota fields an override form offers. */
  quotaFields: readonly (keyof TenantQuota)[];
}

/** A form for one action on the tenant: it names the tenant and asks for its id to be typed (a confirmation a slip of the finger cannot give). */
function action(ctx: PageContext, tenantId: string, name: string, label: string, fields: Html = html``, danger = false): Html {
  return html`<form method="post" action="/dashboard/tenants/${tenantId}/actions/${name}" class="action${danger ? " danger" : ""}">
  <input type="hidden" name="csrf" value="${ctx.csrf}">
  ${fields}
  <label>Confirm: type <code>${tenantId}</code> <input name="confirm" autocomplete="off" required pattern="${tenantId.replace(/[-]/g, "\\-")}" aria-label="type ${tenantId} to confirm ${label}"></label>
  <button type="submit">${label}</button>
</form>`;
}

export function tenantMain(ctx: PageContext, d: TenantPageData): Html {
  const r = d.row;
  const windows = ["1h", "6h", "24h", "7d"];
  return html`<p class="crumbs"><a href="/dashboard">Tenants</a> › ${r.tenantId}</p>
<h1>${r.tenantName} <small>${r.tenantId}</small></h1>
<p>${r.status === "active" ? badge("ok", "● active") : badge("bad", "‖ suspended")} ${r.flags.map((flag) => badge(...FLAG_BADGES[flag]))}</p>
<dl class="facts">
  <div><dt>Tier</dt><dd data-field="tier">${r.tier}</dd></div>
  <div><dt>Placement</dt><dd>${r.store} / ${r.index} / ${r.namespace} (${r.isolation})</dd></div>
  <div><dt>Documents</dt><dd data-field="documents">${quotaUse(r.documents, r.quota.maxDocuments, "documents")}</dd></div>
  <div><dt>Text chunks</dt><dd>${quotaUse(r.textChunks, r.quota.maxTextChunks, "text chunks")}</dd></div>
  <div><dt>Queries today</dt><dd data-field="queries">${quotaUse(r.queriesToday, r.quota.maxDailyQueries, "queries today")}</dd></div>
  <div><dt>Latency 5 min</dt><dd>p50 ${ms(r.recent.p50)} · p95 ${ms(r.recent.p95)}</dd></div>
  <div><dt>Error rate</dt><dd>${pct(r.recent.errorRate)} (5 min) · ${pct(r.day.errorRate)} (24 h)</dd></div>
  <div><dt>Refused / invalid 24 h</dt><dd data-field="refused">${num(r.day.refused)} / ${num(r.day.invalid)}${r.day.refused > 0 ? html`<br><small>${refusalKinds(r.day.refusals)}</small>` : ""}</dd></div>
  <div><dt>Cost this month</dt><dd data-field="cost">${amount(d.costs.totalCost)}</dd></div>
  <div><dt>Margin</dt><dd data-field="margin">${money(r.month.margin)} on ${money(r.month.revenue)}</dd></div>
</dl>

<section aria-labelledby="history">
<h2 id="history">History</h2>
<p class="windows">Window: ${windows.map((w) => (w === d.window ? html`<strong aria-current="true">${w}</strong> ` : html`<a href="/dashboard/tenants/${r.tenantId}?window=${w}">${w}</a> `))}</p>
<div class="charts" data-series="/dashboard/api/tenants/${r.tenantId}/series?window=${d.window}">
  <figure><figcaption>Latency, ms (p50, p95)</figcaption><div class="chart" data-chart="latency" role="img" aria-label="latency chart"></div></figure>
  <figure><figcaption>Operations per step (ok, errors, refused, invalid)</figcaption><div class="chart" data-chart="operations" role="img" aria-label="operations chart"></div></figure>
  <figure><figcaption>Metered cost per step, USD (embedding, LLM, vector queries)</figcaption><div class="chart" data-chart="cost" role="img" aria-label="cost chart"></div></figure>
</div>
</section>

<section aria-labelledby="month">
<h2 id="month">This month's cost by kind</h2>
<table class="compact"><tbody>
  <tr><th scope="row">Embedding</th><td class="n">${money(d.costs.breakdown.embedding)}</td><td><small>${num(d.costs.usage.embedTokens)} tokens</small></td></tr>
  <tr><th scope="row">LLM</th><td class="n">${money(d.costs.breakdown.llm)}</td><td><small>${num(d.costs.usage.llmTokens)} tokens</small></td></tr>
  <tr><th scope="row">Vector queries</th><td class="n">${money(d.costs.breakdown.vectorQueries)}</td><td><small>${num(d.costs.usage.vectorQueries)} queries</small></td></tr>
  <tr><th scope="row">Fixed share</th><td class="n">${money(d.costs.fixedCost)}</td><td></td></tr>
  <tr><th scope="row">Total</th><td class="n"><strong>${money(d.costs.totalCost)}</strong></td><td></td></tr>
</tbody></table>
</section>

<section aria-labelledby="move">
<h2 id="move">Move</h2>
${
  d.move
    ? html`<p data-field="move">Moving to ${d.move.toStore} / ${d.move.toIndex} (${d.move.toTier}): <strong>${d.move.phase}</strong>, ${num(d.move.copied)} of ${num(d.move.total)} vectors
  <progress max="100" value="${d.move.percent}" aria-label="move progress">${d.move.percent} %</progress> ${d.move.percent} %${d.move.running ? "" : " · not running in this instance"}${d.move.error ? html` · <span class="badge bad">✗ ${d.move.error}</span>` : ""}</p>
  ${action(ctx, r.tenantId, "move-resume", "Resume move")}${action(ctx, r.tenantId, "move-rollback", "Roll back move", html``, true)}`
    : html`<p data-field="move">No move in progress.</p>
  ${action(
    ctx,
    r.tenantId,
    "move",
    "Start move",
    html`<label>To tier <select name="tier"><option value="">(same)</option>${d.tiers.map((t) => html`<option>${t}</option>`)}</select></label>
    <label>To store <select name="store"><option value="">(same)</option>${d.stores.map((s) => html`<option>${s}</option>`)}</select></label>
    <label>To shared index <input name="index" placeholder="(any)" size="12"></label>`,
  )}`
}
</section>

<section aria-labelledby="keys">
<h2 id="keys">Keys</h2>
<div class="scroll"><table class="compact">
<thead><tr><th scope="col">Key</th><th scope="col">Name</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead>
<tbody>
${d.keys.map(
  (k) => html`<tr data-key="${k.keyId}"><td><code>${k.keyId}</code></td><td>${k.name}</td><td>${k.scopes.join(", ")}</td><td>${when(k.createdAt)}</td><td>${when(k.lastUsedAt)}</td>
  <td>${k.revokedAt ? badge("bad", "✗ revoked") : badge("ok", "● active")}</td>
  <td>${k.revokedAt ? "" : html`${action(ctx, r.tenantId, `keys/${k.keyId}/rotate`, `Rotate ${k.keyId}`)}${action(ctx, r.tenantId, `keys/${k.keyId}/revoke`, `Revoke ${k.keyId}`, html``, true)}`}</td></tr>`,
)}
</tbody></table></div>
${action(ctx, r.tenantId, "keys/create", "Create key", html`<label>Name <input name="name" maxlength="200" size="16"></label><label><input type="checkbox" name="write" value="1" checked> write scope</label>`)}
</section>

<section aria-labelledby="actions">
<h2 id="actions">Actions</h2>
<div class="actions">
${r.status === "active" ? action(ctx, r.tenantId, "suspend", "Suspend", html``, true) : action(ctx, r.tenantId, "resume", "Resume")}
${action(ctx, r.tenantId, "tier", "Change tier", html`<label>Tier <select name="tier">${d.tiers.map((t) => html`<option${t === r.tier ? html` selected` : ""}>${t}</option>`)}</select></label>`)}
${action(
  ctx,
  r.tenantId,
  "quota",
  "Set quota overrides",
  html`<fieldset><legend>Overrides (empty: the tier's)</legend>${d.quotaFields.map(
    (f) => html`<label>${f} <input name="${f}" inputmode="numeric" pattern="[0-9]*" size="10" value="${d.quotaOverrides[f] ?? ""}" placeholder="${r.quota[f]}"></label>`,
  )}</fieldset>`,
)}
${action(ctx, r.tenantId, "backup", "Download backup")}
${action(ctx, r.tenantId, "erase", "Erase tenant (cannot be undone)", html``, true)}
</div>
</section>

<section aria-labelledby="audit">
<h2 id="audit">Recent audit events</h2>
<div class="scroll"><table class="compact">
<thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Details</th></tr></thead>
<tbody>${d.audit.map((a) => html`<tr><td>${when(a.at)}</td><td>${a.actor}</td><td>${a.action}</td><td><code>${JSON.stringify(a.details).slice(0, 200)}</code></td></tr>`)}</tbody>
</table></div>
</section>`;
}

/** Shown once, right after a key was created or rotated: the secret is never shown again. */
export function secretMain(tenantId: string, keyId: string, secret: string, what: string): Html {
  return html`<p class="crumbs"><a href="/dashboard">Tenants</a> › <a href="/dashboard/tenants/${tenantId}">${tenantId}</a></p>
<h1>${what}</h1>
<p class="notice ok" role="status">✓ Key <code>${keyId}</code> for ${tenantId}. Copy it now: it is shown this once and never stored.</p>
<p><output class="secret" id="secret">${secret}</output></p>
<p><a href="/dashboard/tenants/${tenantId}">Back to ${tenantId}</a></p>`;
}

// ————— capacity —————

export function capacityMain(data: { indexes: IndexCapacity[]; pools: { index: string; store: string; tenants: number }[]; dedicated: TenantOverviewRow[]; stores: { name: string; detail: string }[] }): Html {
  return html`<h1>Capacity</h1>
<section aria-labelledby="shared"><h2 id="shared">Shared indexes</h2>
<p class="hint">Namespaces used per index: an alert at 80 %, the next index provisioned at 90 %.</p>
<div class="scroll"><table>
<thead><tr><th scope="col">Index</th><th scope="col">Namespaces</th><th scope="col">Use</th><th scope="col">Alert at</th><th scope="col">Provision at</th><th scope="col">Status</th></tr></thead>
<tbody>${data.indexes.map(
    (i) => html`<tr data-index="${i.index}"><th scope="row">${i.index}</th><td class="n">${i.used} / ${i.max}</td>
  <td><meter min="0" max="${i.max}" low="${i.alertAt}" high="${i.provisionAt}" optimum="0" value="${i.used}" aria-label="namespaces of ${i.index}"></meter> ${pct(i.utilization)}</td>
  <td class="n">${i.alertAt}</td><td class="n">${i.provisionAt}</td>
  <td>${i.status === "healthy" ? badge("ok", "● healthy") : i.status === "warning" ? badge("warn", "▲ warning") : badge("bad", "✗ critical")}</td></tr>`,
  )}</tbody></table></div>
${data.indexes.length === 0 ? html`<p>No shared index yet.</p>` : ""}
</section>
<section aria-labelledby="pools"><h2 id="pools">Pools of small tenants</h2>
${data.pools.length === 0 ? html`<p>None (small tenants get namespaces: BULKHEAD_SMALL_TENANTS=namespace).</p>` : html`<ul>${data.pools.map((p) => html`<li>${p.store} / ${p.index}: ${num(p.tenants)} tenants</li>`)}</ul>`}
</section>
<section aria-labelledby="dedicated"><h2 id="dedicated">Dedicated indexes</h2>
${data.dedicated.length === 0 ? html`<p>None.</p>` : html`<ul>${data.dedicated.map((t) => html`<li><a href="/dashboard/tenants/${t.tenantId}">${t.tenantId}</a>: ${t.store} / ${t.index}, ${num(t.documents)} documents</li>`)}</ul>`}
</section>
<section aria-labelledby="stores"><h2 id="stores">Stores and cells</h2>
<ul>${data.stores.map((s) => html`<li data-store="${s.name}"><strong>${s.name}</strong> <small>${s.detail}</small></li>`)}</ul>
<p class="hint">Whether each answers is checked by the <a href="/dashboard/readiness">readiness checklist</a>.</p>
</section>`;
}

// ————— costs —————

export function costsMain(ctx: PageContext, report: MonthlyReport, plan: StrategyCost[], reconciliation: Reconciliation | null, categories: readonly string[]): Html {
  return html`<h1>Costs <small>${report.period}</small></h1>
<ul class="cards" aria-label="The month">
  <li><strong>${money(report.totals.revenue)}</strong> revenue</li>
  <li><strong>${money(report.totals.totalCost)}</strong> cost</li>
  <li><strong>${money(report.totals.margin)}</strong> margin</li>
  <li><strong>${report.unprofitable.length}</strong> unprofitable</li>
  <li>allocation: <strong>${report.allocationMethod ?? "none yet"}</strong></li>
</ul>
<section aria-labelledby="tiers"><h2 id="tiers">Per tier</h2>
<figure><figcaption>Revenue, cost and margin per tier, USD</figcaption>${barChart(
    Object.keys(report.tiers),
    [
      { name: "revenue", color: "#1a7f37", values: Object.values(report.tiers).map((t) => t.revenue) },
      { name: "cost", color: "#cf222e", values: Object.values(report.tiers).map((t) => t.totalCost) },
      { name: "margin", color: "#0969da", values: Object.values(report.tiers).map((t) => t.margin) },
    ],
  )}</figure>
<table class="compact"><thead><tr><th scope="col">Tier</th><th scope="col">Tenants</th><th scope="col">Revenue</th><th scope="col">Cost</th><th scope="col">Margin</th><th scope="col">Ratio</th></tr></thead>
<tbody>${Object.entries(report.tiers).map(
    ([tier, t]) => html`<tr><th scope="row">${tier}</th><td class="n">${t.tenants}</td><td class="n">${money(t.revenue)}</td><td class="n">${money(t.totalCost)}</td><td class="n">${money(t.margin)}</td><td class="n">${pct(t.marginRatio)}</td></tr>`,
  )}</tbody></table>
</section>
<section aria-labelledby="per-tenant"><h2 id="per-tenant">Per tenant</h2>
<div class="scroll"><table class="compact"><thead><tr><th scope="col">Tenant</th><th scope="col">Tier</th><th scope="col">Revenue</th><th scope="col">Variable</th><th scope="col">Fixed</th><th scope="col">Total</th><th scope="col">Margin</th><th scope="col"></th></tr></thead>
<tbody>${[...report.tenants]
    .sort((a, b) => a.margin - b.margin)
    .map(
      (t) => html`<tr data-tenant="${t.tenantId}"><th scope="row"><a href="/dashboard/tenants/${t.tenantId}">${t.tenantId}</a></th><td>${t.tier}</td><td class="n">${money(t.revenue)}</td><td class="n">${money(t.variableCost)}</td><td class="n">${money(t.fixedCost)}</td><td class="n">${money(t.totalCost)}</td><td class="n">${money(t.margin)}</td><td>${t.unprofitable ? badge("bad", "$ unprofitable") : ""}</td></tr>`,
    )}</tbody></table></div>
</section>
<section aria-labelledby="reconcile"><h2 id="reconcile">Reconcile with an invoice</h2>
<form method="post" action="/dashboard/costs/reconcile" class="action">
  <input type="hidden" name="csrf" value="${ctx.csrf}"><input type="hidden" name="period" value="${report.period}">
  <fieldset><legend>The invoice's amounts for ${report.period}, USD</legend>${categories.map((c) => html`<label>${c} <input name="${c}" inputmode="decimal" size="10"></label>`)}</fieldset>
  <button type="submit">Reconcile</button>
</form>
${
  reconciliation
    ? html`<table class="compact" id="reconciliation"><caption>Allocated against actual (tolerance ±${pct(reconciliation.tolerance)}): ${reconciliation.withinTolerance ? badge("ok", "✓ within") : badge("bad", "✗ outside")}</caption>
<thead><tr><th scope="col">Category</th><th scope="col">Allocated</th><th scope="col">Actual</th><th scope="col">Deviation</th></tr></thead>
<tbody>${reconciliation.lines.map((l) => html`<tr><th scope="row">${l.category}</th><td class="n">${money(l.allocated)}</td><td class="n">${money(l.actual)}</td><td class="n">${pct(l.deviation)} ${l.flagged ? badge("bad", "✗ flagged") : ""}</td></tr>`)}</tbody></table>`
    : ""
}
</section>
<section aria-labelledby="planner"><h2 id="planner">Isolation strategies for this deployment's prices</h2>
<div class="scroll"><table class="compact"><thead><tr><th scope="col">Strategy</th><th scope="col">Tenants</th><th scope="col">Infrastructure / month</th><th scope="col">Variable / month</th><th scope="col">Total / month</th><th scope="col">Per tenant</th></tr></thead>
<tbody>${plan.map((p) => html`<tr><th scope="row">${p.strategy}</th><td class="n">${num(p.tenants)}</td><td class="n">${money(p.infrastructureMonthly)}</td><td class="n">${money(p.variableMonthly)}</td><td class="n">${money(p.totalMonthly)}</td><td class="n">${money(p.perTenantMonthly)}</td></tr>`)}</tbody></table></div>
</section>`;
}

/**
 * A grouped bar chart drawn on the server as SVG (a handful of bars needs no script): each bar has
 * its value as text and a title, and the legend names each colour, so nothing rests on colour alone.
 */
export function barChart(groups: readonly string[], series: readonly { name: string; color: string; values: readonly number[] }[]): Html {
  const W = 640, H = 240, top = 16, bottom = 40, left = 8;
  const all = series.flatMap((s) => s.values);
  const max = Math.max(0, ...all), min = Math.min(0, ...all);
  const span = max - min || 1;
  const y = (v: number) => top + ((max - v) / span) * (H - top - bottom);
  const groupW = (W - left * 2) / Math.max(1, groups.length);
  const barW = Math.min(48, (groupW * 0.7) / series.length);
  return html`<svg class="bars" viewBox="0 0 ${W} ${H}" role="img" aria-label="${series.map((s) => s.name).join(", ")} per ${groups.join(", ")}">
  <line x1="${left}" x2="${W - left}" y1="${y(0)}" y2="${y(0)}" stroke="#57606a" stroke-width="1"></line>
  ${groups.map((g, gi) => {
    const x0 = left + gi * groupW + (groupW - barW * series.length) / 2;
    return html`<g>${series.map((s, si) => {
      const v = s.values[gi] ?? 0;
      const [y1, y2] = [y(Math.max(v, 0)), y(Math.min(v, 0))];
      return html`<rect x="${x0 + si * barW}" y="${y1}" width="${barW - 3}" height="${Math.max(1, y2 - y1)}" fill="${s.color}"><title>${g} ${s.name}: ${money(v)}</title></rect>
      <text x="${x0 + si * barW + (barW - 3) / 2}" y="${y1 - 3}" text-anchor="middle" font-size="10">${money(v)}</text>`;
    })}<text x="${left + gi * groupW + groupW / 2}" y="${H - bottom + 16}" text-anchor="middle" font-size="13">${g}</text></g>`;
  })}
  ${series.map((s, si) => html`<g><rect x="${left + si * 110}" y="${H - 14}" width="10" height="10" fill="${s.color}"></rect><text x="${left + si * 110 + 14}" y="${H - 5}" font-size="12">${s.name}</text></g>`)}
</svg>`;
}

// ————— readiness —————

export function readinessMain(ctx: PageContext, checks: CheckResult[] | null, ranAt: Date | null): Html {
  const categories = [...new Set((checks ?? []).map((c) => c.category))];
  const passed = (checks ?? []).filter((c) => c.passed).length;
  return html`<h1>Production readiness</h1>
<form method="post" action="/dashboard/readiness/run" class="action"><input type="hidden" name="csrf" value="${ctx.csrf}"><button type="submit">Run the checklist now</button></form>
${
  checks
    ? html`<p data-field="readiness">${passed === checks.length ? badge("ok", "✓ all green") : badge("bad", `✗ ${checks.length - passed} failing`)} ${passed} of ${checks.length} passed · run ${when(ranAt)} UTC</p>
${categories.map(
  (cat) => html`<section><h2>${cat}</h2><ul class="checks">${checks
    .filter((c) => c.category === cat)
    .map((c) => html`<li class="${c.passed ? "pass" : "fail"}"><span class="badge ${c.passed ? "ok" : "bad"}">${c.passed ? "✓ pass" : "✗ fail"}</span> <strong>${c.name}</strong><br><small>${c.detail}</small></li>`)}</ul></section>`,
)}`
    : html`<p>Not run yet in this session's instance.</p>`
}`;
}

export function errorMain(status: number, text: string): Html {
  return html`<h1>${status === 404 ? "Not found" : "Refused"}</h1><p class="notice error" role="alert">✗ ${text}</p><p><a href="/dashboard">Back to tenants</a></p>`;
}
