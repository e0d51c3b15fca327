import { createReadStream } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Bulkhead } from "../../bulkhead.js";
import { QUOTA_MINIMUMS, TIERS, type TenantQuota } from "../../config.js";
import { COST_CATEGORIES, type CostCategory, type Reconciliation } from "../../costs/cost-engine.js";
import { planStrategies } from "../../costs/planner.js";
import { SERIES_WINDOWS } from "../../operations/tenant-overview.js";
import { AuthenticationError, BulkheadError, ForbiddenError, MoveNotFoundError, ValidationError } from "../../errors.js";
import type { CheckResult } from "../../readiness/checks.js";
import type { ApiKeyInfo } from "../../tenancy/api-keys.js";
import { toProblem } from "../problem.js";
import type { RouteSpec } from "../route-spec.js";
import { parse } from "../schemas.js";
import { DASHBOARD_CSS, DASHBOARD_JS } from "./assets.js";
import { type Html } from "./html.js";
import {
  capacityMain,
  costsMain,
  errorMain,
  page,
  readinessMain,
  secretMain,
  signInPage,
  SORTS,
  tenantMain,
  tenantsMain,
  type Flag,
  type PageContext,
  type SortKey,
  type TenantFilters,
  type TenantRowView,
} from "./pages.js";
import { csrfMatches, type DashboardSession } from "../../tenancy/dashboard-sessions.js";

export interface DashboardDeps {
  bh: Bulkhead;
  /** The admin API's routes: every dashboard action runs one of them (same validation, same audit). */
  routes: readonly RouteSpec[];
  /** Checks a presented key with the service's failed-authentication budget per client address. */
  verifyKey(presented: string, request: FastifyRequest): Promise<ApiKeyInfo>;
  readiness(): Promise<CheckResult[]>;
  /** The service's per-address budget of failed authentications: unknown session cookies spend it too. */
  failures: { overBudget(client: string): boolean; failed(client: string): void };
}

declare module "fastify" {
  interface FastifyRequest {
    /** The dashboard session, found before the body was read (see the onRequest hook). */
    dashboardSession: DashboardSession | null;
  }
}

const COOKIE = "bh_session";
const FORM_LIMIT = 64 * 1024;
const OVERVIEW_TTL_MS = 2_000;
const QUOTA_FIELDS = Object.keys(QUOTA_MINIMUMS) as (keyof TenantQuota)[];
const require = createRequire(import.meta.url);

/** Files under /dashboard/assets: the dashboard's own, and uPlot's from its package (no CDN). */
const ASSETS: Record<string, { type: string; load: () => Promise<string> }> = {
  "dashboard.css": { type: "text/css", load: async () => DASHBOARD_CSS },
  "dashboard.js": { type: "text/javascript", load: async () => DASHBOARD_JS },
  "uPlot.iife.min.js": { type: "text/javascript", load: () => readFile(require.resolve("uplot/dist/uPlot.iife.min.js"), "utf8") },
  "uPlot.min.css": { type: "text/css", load: () => readFile(require.resolve("uplot/dist/uPlot.min.css"), "utf8") },
};

/** Pages may load only what this service serves: no inline script, no other origin, no framing. */
const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  // same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with its own forms, which the origin check refuses.
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
};

function cookieOf(request: FastifyRequest): string | undefined {
  for (const part of (request.headers.cookie ?? "").split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === COOKIE) return value.join("=");
  }
  return undefined;
}

/** Where to go after signing in: a dashboard path of this service, never another origin. */
const safeNext = (next: unknown) => (typeof next === "string" && /^\/dashboard(\/[A-Za-z0-9/_.?=&%-]*)?$/.test(next) && !next.includes("//") ? next : "/dashboard");

type Form = Record<string, string>;
const field = (form: Form, name: string) => (typeof form[name] === "string" ? form[name]! : "");

/**
 * The operator's dashboard under /dashboard, served by the service: server-rendered pages (they
 * work without script), refreshed in place by a small script, charts drawn with uPlot. Signing in
 * exchanges an admin key for an HttpOnly, SameSite=Strict session cookie; every form carries the
 * session's CSRF token; every action is one of the admin API's routes, audited as the admin key
 * that signed in. A tenant key cannot sign in.
 */
export async function dashboardRoutes(app: FastifyInstance, deps: DashboardDeps): Promise<void> {
  const { bh } = deps;
  const sessions = bh.dashboardSessions;
  let lastReadiness: { checks: CheckResult[]; at: Date } | null = null;
  let overview: { at: number; rows: TenantRowView[] } | null = null;

  // Forms only, of at most 64 KB: the service's JSON parser (16 MiB) and Fastify's text parser are
  // not inherited, so any other body is refused (415) before a byte of it is read.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: FORM_LIMIT }, async (_request: FastifyRequest, body: string) => {
    const form: Form = Object.create(null) as Form;
    for (const [k, v] of new URLSearchParams(body)) {
      // What the API's JSON decoder refuses, a form refuses too (the admin routes rely on it).
      if (/\u0000|[\ud800-\udfff]/u.test(k + v)) throw new ValidationError(k.replace(/\u0000/g, "").slice(0, 64) || "form", "must not contain the NUL character or a lone surrogate");
      if (!(k in form)) form[k] = v;
    }
    return form;
  });
  app.decorateRequest("dashboardSession", null);
  // The session is checked before the body is read: without one, a page is a redirect to sign in,
  // anything else a 401, and a large body is not read at all (its connection is closed).
  app.addHook("onRequest", async (request, reply) => {
    const path = request.url.split("?")[0]!;
    if (path === "/dashboard/sign-in" || path.startsWith("/dashboard/assets/")) return;
    const session = await findSession(request);
    if (session) {
      request.dashboardSession = session;
      return;
    }
    request.refusedEarly = true; // anyone can send these: summarised, not one log line each
    const page = (request.method === "GET" || request.method === "HEAD") && !path.startsWith("/dashboard/api/") && request.headers["x-dashboard-fragment"] === undefined;
    if (page) return reply.redirect(`/dashboard/sign-in?next=${encodeURIComponent(safeNext(request.url))}`, 303);
    if (!request.raw.complete && request.headers["content-length"] !== "0") reply.header("connection", "close");
    const { problem } = toProblem(new AuthenticationError("sign in to the dashboard first (POST /dashboard/sign-in with an admin key)"), request.url);
    return reply.status(401).type("application/problem+json").send(JSON.stringify(problem));
  });

  /**
   * The session of the request's cookie. An unknown cookie costs a database lookup, so it spends
   * the address's budget of failed authentications like an unknown key; over it, only no session.
   */
  async function findSession(request: FastifyRequest): Promise<DashboardSession | null> {
    const token = cookieOf(request);
    if (token === undefined) return null;
    if (deps.failures.overBudget(request.ip)) return null;
    const session = await sessions.find(token);
    if (!session) deps.failures.failed(request.ip);
    return session;
  }

  app.addHook("onSend", async (_request, reply) => {
    reply.headers(SECURITY_HEADERS);
  });

  /**
   * Every tenant with its flags, read once at a time however many pages poll. Fresh for 2 s;
   * after that the last table is served at once while a new one is read (with many tenants a read
   * takes seconds: bench:dashboard), so only the first page load waits for it.
   */
  const tenantRows = async (): Promise<TenantRowView[]> => {
    if (overview && Date.now() - overview.at < OVERVIEW_TTL_MS) return overview.rows;
    if (!reading) {
      const started = generation;
      const read = readTenantRows();
      reading = read;
      read.then(
        (rows) => {
          // A change made while it was read (an action) makes it stale: it is not kept.
          if (generation === started) overview = { at: Date.now(), rows };
        },
        () => {},
      ).finally(() => {
        if (reading === read) reading = undefined;
      });
    }
    return overview ? overview.rows : reading;
  };
  let reading: Promise<TenantRowView[]> | undefined;
  let generation = 0;
  const readTenantRows = (): Promise<TenantRowView[]> =>
    bh.overview.tenants().then((all) => {
      const hottest = all.filter((r) => r.recent.requests > 0).sort((a, b) => b.recent.requests - a.recent.requests).slice(0, 3).map((r) => r.tenantId);
      return all.map((r): TenantRowView => {
        const flags: Flag[] = [];
        if (hottest.includes(r.tenantId)) flags.push("hot");
        if ((r.recent.p95 ?? 0) > bh.config.alertP95Ms) flags.push("slow");
        if ((r.recent.errorRate ?? 0) > bh.config.alertErrorRate) flags.push("failing");
        if (r.nearQuota.length > 0) flags.push("near-quota");
        if (r.month.unprofitable) flags.push("unprofitable");
        if (r.status === "suspended") flags.push("suspended");
        if (r.moving) flags.push("moving");
        return { ...r, flags };
      });
    });
  const invalidate = () => {
    overview = null;
    reading = undefined;
    generation++;
  };

  /** A POST of a signed-in session from this origin with the session's CSRF token, or refused (403). */
  async function authorisedPost(request: FastifyRequest): Promise<DashboardSession> {
    const session = sessionOf(request);
    assertSameOrigin(request);
    if (!csrfMatches(session, (request.body as Form | undefined)?.csrf)) throw new ForbiddenError("the form's CSRF token is missing or not this session's: reload the page and try again");
    return session;
  }

  const send = (request: FastifyRequest, reply: FastifyReply, title: string, ctx: PageContext, main: Html, status = 200) => {
    reply.status(status).type("text/html; charset=utf-8");
    // A page answering a POST (a new key's secret, an error, a reconciliation) must not refresh:
    // its URL names the action, not a page, and the secret is shown this once.
    return request.headers["x-dashboard-fragment"] === "main" ? main.text : page(title, ctx, main, request.method === "POST" ? 0 : undefined).text;
  };

  /** Runs one admin API route as the signed-in admin key: its schemas validate, its handler audits. */
  async function runAdmin(method: RouteSpec["method"], url: string, session: DashboardSession, request: FastifyRequest, reply: FastifyReply, input: { params?: unknown; body?: unknown; query?: unknown } = {}) {
    const spec = deps.routes.find((r) => r.method === method && r.url === url);
    if (!spec) throw new Error(`no admin route ${method} ${url}`);
    const params = spec.params ? parse(spec.params, input.params, "params") : undefined;
    const body = spec.body ? parse(spec.body, input.body, "body") : undefined;
    const query = spec.query ? parse(spec.query, input.query, "query") : {};
    const key: ApiKeyInfo = { keyId: session.keyId, kind: "admin", tenantId: null, scopes: ["read", "write"], name: "dashboard", createdAt: new Date(0), lastUsedAt: null, revokedAt: null };
    const result = await spec.handler({ bh, key, tenantId: "", actor: `admin:${session.keyId}`, body, query, params, request, reply });
    if (method !== "GET") invalidate();
    return result;
  }

  app.setErrorHandler(async (err, request, reply) => {
    const { problem, headers } = toProblem(err, request.url);
    // A body refused unread (a type the dashboard does not take, one too large) is not drained: the connection closes.
    if (!request.raw.complete) reply.header("connection", "close");
    if (problem.status >= 500) request.log.error({ err }, "dashboard request failed");
    if (request.url.startsWith("/dashboard/api/") || request.headers["x-dashboard-fragment"] !== undefined || request.url === "/dashboard/sign-in") {
      return reply.status(problem.status).headers(headers).type("application/problem+json").send(JSON.stringify(problem));
    }
    const session = request.dashboardSession;
    reply.status(problem.status).type("text/html; charset=utf-8");
    const main = errorMain(problem.status, problem.detail);
    return session ? page("Refused", { path: request.url, csrf: session.csrf }, main, 0).text : signInPage({ error: problem.detail, next: "/dashboard" }).text;
  });

  app.get("/dashboard/assets/:name", async (request, reply) => {
    const name = (request.params as { name: string }).name;
    const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!asset) return reply.status(404).type("text/plain").send("no such asset");
    reply.type(asset.type);
    return asset.load();
  });

  app.get("/dashboard/sign-in", async (request, reply) => {
    const next = safeNext((request.query as { next?: string }).next);
    if (await findSession(request)) return reply.redirect(next, 303);
    return reply.type("text/html; charset=utf-8").send(signInPage({ next }).text);
  });

  app.post("/dashboard/sign-in", async (request, reply) => {
    const form = (request.body ?? {}) as Form;
    const next = safeNext(form.next);
    assertSameOrigin(request);
    let key: ApiKeyInfo;
    try {
      key = await deps.verifyKey(field(form, "key").trim(), request);
    } catch (err) {
      const { problem } = toProblem(err, request.url);
      return reply.status(problem.status).type("text/html; charset=utf-8").send(signInPage({ error: problem.detail, next }).text);
    }
    if (key.kind !== "admin") {
      return reply.status(403).type("text/html; charset=utf-8").send(signInPage({ error: "a tenant key cannot open the dashboard: sign in with an admin key", next }).text);
    }
    const { token } = await sessions.create(key.keyId);
    await bh.audit.record(`admin:${key.keyId}`, "dashboard.sign-in", null, { ip: request.ip });
    // Behind a proxy that ends TLS the service sees http: the proxy's header says what the browser used.
    const secure = request.protocol === "https" || request.headers["x-forwarded-proto"] === "https" ? "; Secure" : "";
    reply.header("set-cookie", `${COOKIE}=${token}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(bh.config.dashboardSessionMs / 1000)}${secure}`);
    return reply.redirect(next, 303);
  });

  app.post("/dashboard/sign-out", async (request, reply) => {
    const session = await authorisedPost(request);
    await sessions.end(cookieOf(request)!);
    await bh.audit.record(`admin:${session.keyId}`, "dashboard.sign-out", null);
    reply.header("set-cookie", `${COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0`);
    return reply.redirect("/dashboard/sign-in", 303);
  });

  // ————— pages —————

  app.get("/dashboard", async (request, reply) => {
    const session = sessionOf(request);
    const q = request.query as Record<string, string | undefined>;
    const f: TenantFilters = {
      q: String(q.q ?? "").slice(0, 100),
      tier: TIERS.includes(q.tier as never) ? q.tier! : "",
      status: q.status === "active" || q.status === "suspended" ? q.status : "",
      flag: String(q.flag ?? "").slice(0, 20),
      sort: Object.hasOwn(SORTS, q.sort ?? "") ? (q.sort as SortKey) : "requests",
      dir: q.dir === "asc" ? "asc" : "desc",
    };
    const all = await tenantRows();
    const needle = f.q.toLowerCase();
    const key = SORTS[f.sort];
    const rows = all
      .filter((r) => (!needle || r.tenantId.includes(needle) || r.tenantName.toLowerCase().includes(needle)) && (!f.tier || r.tier === f.tier) && (!f.status || r.status === f.status) && (!f.flag || r.flags.includes(f.flag as Flag)))
      .sort((a, b) => {
        const [x, y] = [key(a), key(b)];
        const order = x < y ? -1 : x > y ? 1 : a.tenantId.localeCompare(b.tenantId);
        return f.dir === "asc" ? order : -order;
      });
    return send(request, reply, "Tenants", { path: "/dashboard", csrf: session.csrf }, tenantsMain(rows, all, f));
  });

  app.get("/dashboard/tenants/:tenantId", async (request, reply) => {
    const session = sessionOf(request);
    const { tenantId } = request.params as { tenantId: string };
    const windowParam = (request.query as { window?: string }).window;
    const window = windowParam && Object.hasOwn(SERIES_WINDOWS, windowParam) ? windowParam : "1h";
    const tenant = await bh.registry.getTenant(tenantId); // 404 for an unknown or malformed id
    let row = (await tenantRows()).find((r) => r.tenantId === tenant.tenantId);
    if (!row) {
      invalidate(); // registered since the overview was read
      row = (await tenantRows()).find((r) => r.tenantId === tenant.tenantId);
    }
    if (!row) throw new BulkheadError("TENANT_NOT_FOUND", 404, `tenant "${tenant.tenantId}" does not exist`);
    // What the registry says now wins over the table's last read (seconds old with many tenants).
    row = { ...row, tier: tenant.tier, status: tenant.status, store: tenant.store, index: tenant.index, namespace: tenant.namespace, isolation: tenant.isolation, moving: tenant.placement.moving, quota: tenant.quota };
    const [costs, keys, audit, move] = await Promise.all([
      bh.costEngine.getTenantCostSummary(tenant.tenantId),
      bh.keys.listKeys({ tenantId: tenant.tenantId }),
      bh.audit.list(20, tenant.tenantId),
      bh.moves.status(tenant.tenantId).catch((err: unknown) => {
        if (err instanceof MoveNotFoundError) return null;
        throw err;
      }),
    ]);
    const notice = noticeOf(request.query as Record<string, string | undefined>);
    const ctx: PageContext = { path: request.url, csrf: session.csrf, ...(notice ? { notice } : {}) };
    const main = tenantMain(ctx, { row, quotaOverrides: tenant.quotaOverrides, costs, keys, audit, move, window, tiers: TIERS, stores: bh.stores, quotaFields: QUOTA_FIELDS });
    return send(request, reply, tenant.tenantId, ctx, main);
  });

  app.get("/dashboard/capacity", async (request, reply) => {
    const session = sessionOf(request);
    const [indexes, pools, rows] = await Promise.all([bh.registry.getCapacity(), bh.registry.getPools(), tenantRows()]);
    const stores = bh.stores.map((name) => ({ name, detail: describeCapabilities(bh.storeCapabilities[name]) }));
    const main = capacityMain({ indexes, pools, dedicated: rows.filter((r) => r.isolation === "dedicated-index"), stores });
    return send(request, reply, "Capacity", { path: "/dashboard/capacity", csrf: session.csrf }, main);
  });

  const costsPage = async (request: FastifyRequest, reply: FastifyReply, session: DashboardSession, period: string | undefined, reconciliation: Reconciliation | null) => {
    const report = await bh.costEngine.monthlyReport(period);
    const plan = planStrategies(bh.config.prices, bh.config.maxNamespacesPerIndex, { tenantCounts: [Math.max(1, report.tenants.length), 100, 1000] });
    return send(request, reply, "Costs", { path: "/dashboard/costs", csrf: session.csrf }, costsMain({ path: "/dashboard/costs", csrf: session.csrf }, report, plan, reconciliation, COST_CATEGORIES));
  };

  app.get("/dashboard/costs", async (request, reply) => {
    const session = sessionOf(request);
    const period = (request.query as { period?: string }).period;
    return costsPage(request, reply, session, period && /^[0-9]{4}-[0-9]{2}$/.test(period) ? period : undefined, null);
  });

  app.post("/dashboard/costs/reconcile", async (request, reply) => {
    const session = await authorisedPost(request);
    const form = request.body as Form;
    const actual: Partial<Record<CostCategory, number>> = {};
    for (const c of COST_CATEGORIES) {
      const raw = field(form, c).trim();
      if (raw === "") continue;
      const value = Number(raw);
      if (!Number.isFinite(value) || value < 0 || value > 1e12) throw new ValidationError(c, "must be an amount in USD from 0 to 10^12");
      actual[c] = value;
    }
    const period = /^[0-9]{4}-[0-9]{2}$/.test(field(form, "period")) ? field(form, "period") : undefined;
    const reconciliation = await bh.costEngine.reconcile(period ?? new Date().toISOString().slice(0, 7), actual);
    await bh.audit.record(`admin:${session.keyId}`, "costs.reconcile", null, { period: reconciliation.period, withinTolerance: reconciliation.withinTolerance });
    return costsPage(request, reply, session, reconciliation.period, reconciliation);
  });

  app.get("/dashboard/readiness", async (request, reply) => {
    const session = sessionOf(request);
    return send(request, reply, "Readiness", { path: "/dashboard/readiness", csrf: session.csrf }, readinessMain({ path: "/dashboard/readiness", csrf: session.csrf }, lastReadiness?.checks ?? null, lastReadiness?.at ?? null));
  });

  app.post("/dashboard/readiness/run", async (request, reply) => {
    const session = await authorisedPost(request);
    lastReadiness = { checks: await deps.readiness(), at: new Date() };
    return reply.redirect("/dashboard/readiness", 303);
  });

  // ————— data for the charts —————

  app.get("/dashboard/api/tenants", async (request, reply) => {
    const session = sessionOf(request);
    return tenantRows();
  });

  app.get("/dashboard/api/tenants/:tenantId/series", async (request, reply) => {
    const session = sessionOf(request);
    return runAdmin("GET", "/admin/tenants/:tenantId/series", session, request, reply, { params: request.params, query: request.query });
  });

  // ————— actions on a tenant —————

  app.post("/dashboard/tenants/:tenantId/actions/*", async (request, reply) => {
    const session = await authorisedPost(request);
    const { tenantId, "*": name } = request.params as { tenantId: string; "*": string };
    const form = request.body as Form;
    if (field(form, "confirm") !== tenantId) throw new ValidationError("confirm", `type the tenant's id, ${tenantId}, to confirm`);
    const params = { tenantId };
    const back = (notice: string) => reply.redirect(`/dashboard/tenants/${tenantId}?done=${notice}`, 303);
    const ownKey = async (keyId: string) => {
      // A key action on a tenant's page acts on that tenant's keys only (never an admin key or another tenant's).
      if (!(await bh.keys.listKeys({ tenantId })).some((k) => k.keyId === keyId)) throw new BulkheadError("KEY_NOT_FOUND", 404, `tenant ${tenantId} has no key ${keyId}`);
    };
    const keyAction = /^keys\/([a-f0-9]{16})\/(rotate|revoke)$/.exec(name);
    switch (keyAction ? `keys/${keyAction[2]}` : name) {
      case "suspend":
      case "resume":
        await runAdmin("POST", `/admin/tenants/:tenantId/${name}`, session, request, reply, { params });
        return back(name === "suspend" ? "suspended" : "resumed");
      case "tier":
        await runAdmin("POST", "/admin/tenants/:tenantId/tier", session, request, reply, { params, body: { tier: field(form, "tier") } });
        return back("tier");
      case "quota": {
        const quota: Record<string, number> = {};
        for (const f of QUOTA_FIELDS) {
          const raw = field(form, f).trim();
          if (raw === "") continue;
          if (!/^[0-9]{1,16}$/.test(raw)) throw new ValidationError(f, "must be a whole number");
          quota[f] = Number(raw);
        }
        await runAdmin("PUT", "/admin/tenants/:tenantId/quota", session, request, reply, { params, body: { quota } });
        return back("quota");
      }
      case "move": {
        const body = Object.fromEntries(["tier", "store", "index"].map((k) => [k, field(form, k).trim()]).filter(([, v]) => v !== ""));
        await runAdmin("POST", "/admin/tenants/:tenantId/move", session, request, reply, { params, body });
        return back("move");
      }
      case "move-resume":
        await runAdmin("POST", "/admin/moves/:tenantId/resume", session, request, reply, { params, body: {} });
        return back("move");
      case "move-rollback":
        await runAdmin("POST", "/admin/moves/:tenantId/rollback", session, request, reply, { params });
        return back("rolled-back");
      case "keys/create": {
        const created = (await runAdmin("POST", "/admin/tenants/:tenantId/keys", session, request, reply, {
          params,
          body: { ...(field(form, "name").trim() ? { name: field(form, "name").trim() } : {}), scopes: field(form, "write") ? ["read", "write"] : ["read"] },
        })) as { keyId: string; key: string };
        const ctx = { path: request.url, csrf: session.csrf };
        return send(request, reply, "New key", ctx, secretMain(tenantId, created.keyId, created.key, "Key created"), 201);
      }
      case "keys/rotate": {
        await ownKey(keyAction![1]!);
        const created = (await runAdmin("POST", "/admin/keys/:keyId/rotate", session, request, reply, { params: { keyId: keyAction![1] } })) as { keyId: string; key: string };
        return send(request, reply, "Rotated key", { path: request.url, csrf: session.csrf }, secretMain(tenantId, created.keyId, created.key, "Key rotated"), 201);
      }
      case "keys/revoke":
        await ownKey(keyAction![1]!);
        await runAdmin("DELETE", "/admin/keys/:keyId", session, request, reply, { params: { keyId: keyAction![1] } });
        return back("revoked");
      case "backup":
        return downloadBackup(tenantId, session, reply);
      case "erase": {
        const report = (await runAdmin("DELETE", "/admin/tenants/:tenantId", session, request, reply, { params })) as { verified: boolean };
        return reply.redirect(`/dashboard?erased=${encodeURIComponent(tenantId)}&verified=${report.verified}`, 303);
      }
      default:
        throw new BulkheadError("NOT_FOUND", 404, `no dashboard action ${name}`);
    }
  });

  /** A tenant's backup file, made now into a private directory, sent, then deleted. */
  async function downloadBackup(tenantId: string, session: DashboardSession, reply: FastifyReply) {
    const dir = await mkdtemp(join(tmpdir(), "bulkhead-dashboard-backup-"));
    const file = join(dir, `${tenantId}.jsonl.gz`);
    try {
      const summary = await bh.backupTenant(tenantId, file);
      await bh.audit.record(`admin:${session.keyId}`, "tenant.backup", tenantId, { documents: summary.documents, sha256: summary.sha256, via: "dashboard" });
      const stream = createReadStream(file);
      stream.on("close", () => void rm(dir, { recursive: true, force: true }));
      reply.header("content-disposition", `attachment; filename="${tenantId}-${new Date().toISOString().slice(0, 10)}.jsonl.gz"`).type("application/gzip");
      return reply.send(stream);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }
}

/** The request's session: the onRequest hook has refused every request without one that reaches a handler. */
function sessionOf(request: FastifyRequest): DashboardSession {
  if (!request.dashboardSession) throw new AuthenticationError("sign in to the dashboard first");
  return request.dashboardSession;
}

/**
 * A form must come from this service's own pages. Browsers send Origin with every POST; one that
 * names another site, or is "null" (a sandboxed frame, a page opened from a file), is refused.
 */
function assertSameOrigin(request: FastifyRequest): void {
  const origin = request.headers.origin;
  if (origin === undefined) return;
  let host: string | undefined;
  try {
    host = new URL(origin).host;
  } catch {
    host = undefined;
  }
  if (host === undefined || host !== request.headers.host) throw new ForbiddenError("this form was sent from another site");
}

const NOTICES: Record<string, string> = {
  suspended: "Suspended: its keys are refused from now on.",
  resumed: "Resumed: its keys work again.",
  tier: "Tier changed (a change to or from enterprise starts a move).",
  quota: "Quota overrides saved.",
  move: "Move started: its progress shows below.",
  "rolled-back": "Move rolled back: the tenant stays where it was.",
  revoked: "Key revoked, in every instance.",
};

function noticeOf(query: Record<string, string | undefined>): PageContext["notice"] | undefined {
  const text = query.done && Object.hasOwn(NOTICES, query.done) ? NOTICES[query.done] : undefined;
  return text ? { kind: "ok", text } : undefined;
}

function describeCapabilities(c: unknown): string {
  return c && typeof c === "object" ? Object.entries(c).filter(([, v]) => v === true).map(([k]) => k).join(", ") : "";
}
