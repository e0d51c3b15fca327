import type { TenantQuota, TenantTier } from "../config.js";
import type { Db } from "../db/db.js";
import { ValidationError } from "../errors.js";
import type { CostAllocationEngine, TenantMargin } from "../costs/cost-engine.js";
import { picoToUsd as usd } from "../costs/money.js";
import { periodOf } from "../costs/usage-ledger.js";
import { percentileOf } from "../monitoring/minute-rollups.js";
import type { TenantRegistry } from "../tenancy/registry.js";
import { assertTenantId, type TenantStatus } from "../tenancy/tenant.js";

/** A window of a tenant's history and the step its points are summed over. */
export const SERIES_WINDOWS = { "1h": { ms: 3_600_000, stepMs: 60_000 }, "6h": { ms: 6 * 3_600_000, stepMs: 300_000 }, "24h": { ms: 86_400_000, stepMs: 900_000 }, "7d": { ms: 7 * 86_400_000, stepMs: 3_600_000 } } as const;
export type SeriesWindow = keyof typeof SERIES_WINDOWS;

/** One step of a tenant's history: its operations by outcome, latency, tokens and metered cost. */
export interface SeriesPoint {
  /** Start of the step (UTC). */
  at: string;
  requests: number;
  ok: number;
  errors: number;
  invalid: number;
  refused: number;
  /** Refusals by kind (the rest of `refused`: a store or provider throttling). */
  refusals: Refusals;
  /** errors / (ok + errors); null with no admitted operation. */
  errorRate: number | null;
  /** Latency percentiles of admitted operations, ms (estimated from a histogram, see LATENCY_BOUNDS_MS); null with none. */
  p50: number | null;
  p95: number | null;
  tokens: { embedding: number; llm: number };
  /** Metered variable cost in USD, by kind. */
  cost: { embedding: number; llm: number; vectorQueries: number };
}

export interface TenantSeries {
  tenantId: string;
  window: SeriesWindow;
  stepSeconds: number;
  points: SeriesPoint[];
}

/** A row of the operator's tenant table: who is hot, near quota, failing or unprofitable. */
export interface TenantOverviewRow {
  tenantId: string;
  tenantName: string;
  tier: TenantTier;
  status: TenantStatus;
  store: string;
  index: string;
  namespace: string;
  isolation: string;
  moving: boolean;
  quota: Readonly<TenantQuota>;
  documents: number;
  textChunks: number;
  /**
   * Queries counted against today's quota. The database counts queries in leases of up to 20 per
   * instance; this instance's unspent ones are left out, another instance's are not (at most 20 each).
   */
  queriesToday: number;
  /** The last 5 minutes and the last 24 hours (from the minute rollups). */
  recent: Activity;
  day: Activity & { refusals: Refusals };
  /** This month so far: revenue (plan price), metered plus allocated cost, margin. */
  month: Pick<TenantMargin, "revenue" | "totalCost" | "margin" | "unprofitable">;
  /** Quotas at or past 80 % use: "documents", "queries", "textChunks". */
  nearQuota: string[];
}

export interface Refusals {
  rateLimited: number;
  quotaExceeded: number;
  concurrencyLimited: number;
}

export interface Activity {
  requests: number;
  errors: number;
  refused: number;
  invalid: number;
  errorRate: number | null;
  p50: number | null;
  p95: number | null;
}

type MinuteRow = { minute: Date | string; ok: number; errors: number; invalid: number; refused: number; rate_limited: number; quota_exceeded: number; concurrency_limited: number; latency: number[] };
type UsageRow = { minute: Date | string; kind: string; quantity: string; cost: string };
type OverviewRow = {
  tenant_id: string;
  documents: string | number;
  text_chunks: string | number;
  queries_today: number;
  ok: string | number;
  errors: string | number;
  invalid: string | number;
  refused: string | number;
  rate_limited: string | number;
  quota_exceeded: string | number;
  concurrency_limited: string | number;
  latency: (string | number)[];
  recent_ok: string | number;
  recent_errors: string | number;
  recent_invalid: string | number;
  recent_refused: string | number;
  recent_latency: (string | number)[];
};

const SERIES_SQL = {
  minutes: "SELECT minute, ok, errors, invalid, refused, rate_limited, quota_exceeded, concurrency_limited, latency FROM tenant_minutes WHERE tenant_id = $1 AND minute >= $2 ORDER BY minute",
  // The ledger's index leads with (tenant, period): the window's months bound the scan.
  usage: `SELECT date_trunc('minute', occurred_at) AS minute, kind, sum(quantity)::text AS quantity, sum(cost_pico)::text AS cost
            FROM usage_events WHERE tenant_id = $1 AND period >= $3 AND occurred_at >= $2 GROUP BY 1, 2`,
};

const rate = (errors: number, ok: number) => (ok + errors > 0 ? errors / (ok + errors) : null);
const addInto = (into: number[], from: readonly (number | string)[]) => from.forEach((n, i) => (into[i] = (into[i] ?? 0) + Number(n)));

function activity(ok: number, errors: number, invalid: number, refused: number, latency: readonly number[]): Activity {
  return { requests: ok + errors + invalid + refused, errors, refused, invalid, errorRate: rate(errors, ok), p50: percentileOf(latency, 0.5), p95: percentileOf(latency, 0.95) };
}

export interface OverviewDeps {
  db: Db;
  cells: readonly { db: Db }[];
  registry: TenantRegistry;
  costEngine: CostAllocationEngine;
  /** The deadline of slow work (`BULKHEAD_DB_LONG_TIMEOUT_MS`): the overview reads every tenant. */
  slowTimeoutMs: number;
  /** Queries of the tenant's day this instance has counted ahead in a lease and not spent (the database counts leases). */
  unspentQueries: (tenantId: string) => number;
  /** Writes what this instance gathered (minute rollups, usage) so the figures include it. */
  flush: () => Promise<void>;
  now: () => number;
}

/**
 * What operators look at: a tenant's history minute by minute, and every tenant's quota use,
 * activity and month in one table. Both read tenant data in each tenant's own context (the
 * overview in one round trip per database, `tenant_overview`, migration 23).
 */
export class TenantOverview {
  constructor(private readonly deps: OverviewDeps) {}

  /** A tenant's history over `window`, in steps (`GET /admin/tenants/{id}/series`). */
  async series(tenantId: string, window: SeriesWindow = "1h"): Promise<TenantSeries> {
    assertTenantId(tenantId);
    if (!Object.hasOwn(SERIES_WINDOWS, window)) throw new ValidationError("window", `must be one of ${Object.keys(SERIES_WINDOWS).join(", ")}`);
    await this.deps.registry.getTenant(tenantId);
    await this.deps.flush();
    const { ms, stepMs } = SERIES_WINDOWS[window];
    const end = Math.floor(this.deps.now() / stepMs) * stepMs + stepMs;
    const start = end - ms;
    const from = new Date(start);
    const [minutes, usage] = (await this.deps.db.pipelineAsTenant(tenantId, [
      { text: SERIES_SQL.minutes, params: [tenantId, from] },
      { text: SERIES_SQL.usage, params: [tenantId, from, periodOf(from)] },
    ])) as [MinuteRow[], UsageRow[]];
    const steps = ms / stepMs;
    const acc = Array.from({ length: steps }, () => ({ ok: 0, errors: 0, invalid: 0, refused: 0, refusals: { rateLimited: 0, quotaExceeded: 0, concurrencyLimited: 0 }, latency: [] as number[], tokens: { embedding: 0, llm: 0 }, pico: { embedding: 0n, llm: 0n, vector_query: 0n } }));
    const stepOf = (at: Date | string) => Math.floor((new Date(at).getTime() - start) / stepMs);
    for (const m of minutes) {
      const a = acc[stepOf(m.minute)];
      if (!a) continue;
      a.ok += m.ok;
      a.errors += m.errors;
      a.invalid += m.invalid;
      a.refused += m.refused;
      a.refusals.rateLimited += m.rate_limited;
      a.refusals.quotaExceeded += m.quota_exceeded;
      a.refusals.concurrencyLimited += m.concurrency_limited;
      addInto(a.latency, m.latency);
    }
    for (const u of usage) {
      const a = acc[stepOf(u.minute)];
      if (!a) continue;
      if (u.kind === "embedding" || u.kind === "llm") a.tokens[u.kind] += Number(u.quantity);
      if (u.kind === "embedding" || u.kind === "llm" || u.kind === "vector_query") a.pico[u.kind] += BigInt(u.cost);
    }
    const points = acc.map((a, i): SeriesPoint => {
      const { requests, errors, refused, invalid, errorRate, p50, p95 } = activity(a.ok, a.errors, a.invalid, a.refused, a.latency);
      return {
        at: new Date(start + i * stepMs).toISOString(),
        requests,
        ok: a.ok,
        errors,
        invalid,
        refused,
        refusals: a.refusals,
        errorRate,
        p50,
        p95,
        tokens: a.tokens,
        cost: { embedding: usd(a.pico.embedding), llm: usd(a.pico.llm), vectorQueries: usd(a.pico.vector_query) },
      };
    });
    return { tenantId, window, stepSeconds: stepMs / 1000, points };
  }

  /** Every tenant with its quota use, the last 5 minutes and 24 hours, and its month so far. */
  async tenants(): Promise<TenantOverviewRow[]> {
    await this.deps.flush();
    const now = this.deps.now();
    const day = new Date(now).toISOString().slice(0, 10);
    const args = [new Date(now - 86_400_000), new Date(now - 300_000), day];
    const [tenants, report, ...perDb] = await Promise.all([
      this.deps.registry.listTenants(),
      this.deps.costEngine.monthlyReport(periodOf(new Date(now))),
      // Each tenant's context in turn: ~0.1 ms a tenant (10,000 tenants: ~1 s, bench:dashboard), more than a request's deadline allows at scale.
      ...[this.deps.db, ...this.deps.cells.map((c) => c.db)].map((db) => db.withTimeout(this.deps.slowTimeoutMs).query<OverviewRow>("SELECT * FROM tenant_overview($1, $2, $3)", args)),
    ]);
    // A tenant's counters live in the database of its store (home or a cell); its minutes at home.
    const empty = () => ({ documents: 0, chunks: 0, queries: 0, day: [0, 0, 0, 0, 0, 0, 0], dayLatency: [] as number[], recent: [0, 0, 0, 0], recentLatency: [] as number[] });
    const byTenant = new Map<string, ReturnType<typeof empty>>();
    for (const rows of perDb) {
      for (const r of rows) {
        const e = byTenant.get(r.tenant_id) ?? empty();
        e.documents += Number(r.documents);
        e.chunks += Number(r.text_chunks);
        e.queries += Number(r.queries_today);
        addInto(e.day, [r.ok, r.errors, r.invalid, r.refused, r.rate_limited, r.quota_exceeded, r.concurrency_limited]);
        addInto(e.recent, [r.recent_ok, r.recent_errors, r.recent_invalid, r.recent_refused]);
        addInto(e.dayLatency, r.latency ?? []);
        addInto(e.recentLatency, r.recent_latency ?? []);
        byTenant.set(r.tenant_id, e);
      }
    }
    const margins = new Map(report.tenants.map((t) => [t.tenantId, t]));
    return tenants.map((t): TenantOverviewRow => {
      const e = byTenant.get(t.tenantId) ?? empty();
      const m = margins.get(t.tenantId);
      const near = (used: number, limit: number) => limit > 0 && used >= 0.8 * limit;
      const queriesToday = Math.max(0, e.queries - this.deps.unspentQueries(t.tenantId));
      return {
        tenantId: t.tenantId,
        tenantName: t.tenantName,
        tier: t.tier,
        status: t.status,
        store: t.store,
        index: t.index,
        namespace: t.namespace,
        isolation: t.isolation,
        moving: t.placement.moving,
        quota: t.quota,
        documents: e.documents,
        textChunks: e.chunks,
        queriesToday,
        recent: activity(e.recent[0]!, e.recent[1]!, e.recent[2]!, e.recent[3]!, e.recentLatency),
        day: { ...activity(e.day[0]!, e.day[1]!, e.day[2]!, e.day[3]!, e.dayLatency), refusals: { rateLimited: e.day[4]!, quotaExceeded: e.day[5]!, concurrencyLimited: e.day[6]! } },
        month: m ? { revenue: m.revenue, totalCost: m.totalCost, margin: m.margin, unprofitable: m.unprofitable } : { revenue: 0, totalCost: 0, margin: 0, unprofitable: false },
        nearQuota: [
          ...(near(e.documents, t.quota.maxDocuments) ? ["documents"] : []),
          ...(near(queriesToday, t.quota.maxDailyQueries) ? ["queries"] : []),
          ...(near(e.chunks, t.quota.maxTextChunks) ? ["textChunks"] : []),
        ],
      };
    });
  }
}
