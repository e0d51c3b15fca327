import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { Bulkhead } from "../bulkhead.js";
import type { CheckResult, ReadinessOptions } from "../readiness/checks.js";
import { isProbeTenant, newProbeTenantIds, registerProbeTenant } from "../tenancy/probe-tenants.js";
import type { LogTap } from "./log-tap.js";

/** Routes anyone may call. */
const OPEN_ROUTES = new Set(["/healthz", "/readyz", "/dashboard/sign-in", "/dashboard/assets/:name"]);
/** A dashboard page asked for without a session sends the browser to sign in; its data and actions answer 401. */
const isDashboardPage = (r: { method: string; url: string }) => (r.method === "GET" || r.method === "HEAD") && r.url.startsWith("/dashboard") && !r.url.startsWith("/dashboard/api/");

/**
 * The library's live checklist plus the checks only the running service can make: every route it
 * registered refuses a request without a key, a tenant request's log lines carry `tenant_id` and
 * no key, and every active tenant's p95 and error rate are within target.
 *
 * The checks write: canaries, a key, metered queries. Unless the caller names tenants for them,
 * they run in two probe tenants of their own (`bh-probe-…`), registered for the run, left out of
 * reports and allocations, and erased at the end — never in a customer's tenant.
 */
export async function runServiceReadiness(
  bh: Bulkhead,
  app: FastifyInstance,
  registered: readonly { method: string; url: string }[],
  tap: LogTap,
  options: ReadinessOptions,
): Promise<CheckResult[]> {
  const probes = options.probeTenants && options.sampleTenant ? [] : newProbeTenantIds();
  const made: string[] = [];
  try {
    for (const id of probes) {
      await registerProbeTenant(bh.registry, id);
      made.push(id);
    }
    return await checks(bh, app, registered, tap, {
      ...options,
      probeTenants: options.probeTenants ?? [probes[0]!, probes[1]!],
      sampleTenant: options.sampleTenant ?? probes[0],
    });
  } finally {
    for (const id of made) {
      try {
        await bh.eraseTenant(id, "readiness");
      } catch (err) {
        // Left registered; the next run does not reuse it (fresh ids) and reports leave it out. Say so.
        app.log.warn({ tenant_id: id, err: (err as Error).message }, "readiness: could not erase its probe tenant");
      }
    }
  }
}

async function checks(
  bh: Bulkhead,
  app: FastifyInstance,
  registered: readonly { method: string; url: string }[],
  tap: LogTap,
  options: ReadinessOptions,
): Promise<CheckResult[]> {
  const results = await bh.readiness(options);
  const add = (category: CheckResult["category"], name: string, passed: boolean, detail: string) => results.push({ category, name, passed, detail });

  const keyed = registered.filter((r) => !OPEN_ROUTES.has(r.url));
  const open: string[] = [];
  for (const r of keyed) {
    const url = r.url.replace(/:([A-Za-z]+)/g, (_, name: string) => (name === "keyId" ? "0000000000000000" : "readiness-probe"));
    const res = await app.inject({ method: r.method as "GET", url, payload: r.method === "GET" || r.method === "HEAD" ? undefined : {} });
    const refused = isDashboardPage(r) ? res.statusCode === 303 && String(res.headers.location).startsWith("/dashboard/sign-in") : res.statusCode === 401;
    if (!refused) open.push(`${r.method} ${r.url} → ${res.statusCode}`);
  }
  add("Security", "Every route but /healthz, /readyz and the dashboard's sign-in refuses a request without a key", keyed.length > 0 && open.length === 0,
    open.length
      ? `answered without a key: ${open.join(", ")}`
      : `${keyed.length} registered routes (methods × paths, from Fastify's route table) all answered 401 (dashboard pages: a redirect to sign in)`);

  if (!options.sampleTenant) {
    add("Security", "Request logs carry tenant_id and never a key", false, "not run: no sample tenant given");
  } else {
    const created = await bh.keys.createKey("tenant", { tenantId: options.sampleTenant, scopes: ["read"], name: "readiness log check" }, "readiness");
    const requestId = `readiness-${randomUUID()}`;
    try {
      const res = await app.inject({ method: "GET", url: "/v1/usage", headers: { authorization: `Bearer ${created.key}`, "x-request-id": requestId } });
      const lines = tap.recent().filter((l) => l.request_id === requestId);
      const withTenant = lines.filter((l) => l.tenant_id === options.sampleTenant);
      const leaking = lines.filter((l) => JSON.stringify(l).includes(created.key));
      add("Security", "Request logs carry tenant_id and never a key", res.statusCode === 200 && lines.length > 0 && withTenant.length === lines.length && leaking.length === 0,
        `a request of ${options.sampleTenant} (status ${res.statusCode}) wrote ${lines.length} log lines: ${withTenant.length} with its tenant_id, ${leaking.length} containing the key`);
    } finally {
      await bh.keys.revokeKey(created.keyId, "readiness");
    }
  }

  const { alertP95Ms, alertErrorRate, alertMinRequests } = bh.config;
  const outside: string[] = [];
  let judged = 0;
  for (const t of await bh.registry.listTenants()) {
    if (isProbeTenant(t.tenantId)) continue;
    const s = bh.monitor.getTenantStats(t.tenantId);
    if (s.ok + s.errors < alertMinRequests) continue;
    judged++;
    if ((s.p95 ?? 0) > alertP95Ms || s.errorRate > alertErrorRate) outside.push(`${t.tenantId} p95 ${s.p95?.toFixed(1)} ms, errors ${(s.errorRate * 100).toFixed(1)} %`);
  }
  add("Performance", `p95 under ${alertP95Ms} ms and error rate under ${alertErrorRate * 100} % for every active tenant`, outside.length === 0,
    outside.length ? outside.join("; ") : `${judged} tenants with at least ${alertMinRequests} operations in the last ${bh.config.statsWindowMs / 1000} s, all within target`);
  return results;
}
