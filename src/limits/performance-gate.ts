import { performance } from "node:perf_hooks";
import { RateLimitedError } from "../errors.js";
import type { Tenant } from "../tenancy/tenant.js";
import { outcomeOf, type TenantMonitor } from "../monitoring/tenant-monitor.js";
import type { DailyQueryQuota, QueryAdmission } from "./daily-query-quota.js";
import { takeDoorAdmission } from "./door-admission.js";
import type { RateLimitRefusal, TenantRateLimiter } from "./rate-limiter.js";
import type { TenantBulkheads } from "./tenant-bulkheads.js";

/** The operations the gate admits: data operations, and `report` (a tenant reading its own usage or costs). */
export type Operation = "query" | "upsert" | "fetch" | "delete" | "count" | "report";

/**
 * What the data manager runs every tenant operation through: admission (rate limit, concurrency,
 * daily queries) and measurement. The data manager validates input first, so bad input is refused
 * before it spends any of the tenant's limits — except through the HTTP service, which decides the
 * rate limit at the door from the key alone (`admitRate`), before it reads the body.
 */
export interface OperationGate {
  /**
   * Runs `fn` if the tenant may operate now. For a query, `fn` receives the daily count's admission:
   * the count it asks for must run first in the query's own transaction, and what the store counted
   * goes back through `admission.counted` (see `DailyQueryQuota`).
   */
  run<T>(tenant: Tenant, operation: Operation, fn: (admission?: QueryAdmission) => Promise<T>, vectorsWritten?: number): Promise<T>;
  /**
   * The rate-limit decision for an operation about to be run, made before its input is read: a
   * refusal the tenant already earned comes from memory; otherwise one point is spent now and the
   * operation's own `run` will not spend another (when run inside `withDoorAdmission`). Null when
   * admitted. Refusals are counted like any refusal of `operation`.
   */
  admitRate?(tenant: Tenant, operation: Operation): Promise<RateLimitRefusal | null>;
  /**
   * Spends `bytes` of the tenant's request-body budget (`requestBytesPerSecond`) for an operation
   * whose body the HTTP service is about to read or parse; the refusal, or null when admitted.
   */
  admitRequestBytes?(tenant: Tenant, operation: Operation, bytes: number): Promise<RateLimitRefusal | null>;
  /** Facts only the data manager learns: documents stored after a write, the day's query count, a query's isolation overhead. */
  observe(tenant: Tenant, facts: { documents?: number; dailyQueries?: number; overheadMs?: number; operation: Operation }): void;
}

/**
 * Performance isolation in front of the data: a tenant's operation is admitted only within its rate
 * limit (cheap, refused first), its concurrency bulkhead and — for queries — its daily quota,
 * counted in the query's own transaction; then its latency and outcome are recorded. Cheapest
 * checks first, so a flood is refused before it costs a database round trip.
 */
export class PerformanceGate implements OperationGate {
  constructor(
    private readonly rateLimiter: TenantRateLimiter,
    private readonly bulkheads: TenantBulkheads,
    private readonly dailyQueries: DailyQueryQuota,
    private readonly monitor: TenantMonitor,
  ) {}

  async run<T>(tenant: Tenant, operation: Operation, fn: (admission?: QueryAdmission) => Promise<T>, vectorsWritten = 0): Promise<T> {
    const started = performance.now();
    const { tenantId, quota } = tenant;
    let leave: (() => void) | undefined;
    try {
      // Spent already when the HTTP door decided from the key alone (see door-admission.ts).
      if (!takeDoorAdmission(tenantId)) await this.rateLimiter.consume(tenantId, quota);
      // A move that cannot catch up with the tenant's writes holds them to a rate it can follow.
      if (tenant.moveWriteLimit !== null && vectorsWritten > 0) await this.rateLimiter.consumeMoveWrites(tenantId, tenant.moveWriteLimit, vectorsWritten);
      leave = await this.bulkheads.enter(tenantId, quota.maxConcurrent);
      this.monitor.metrics.inFlight.set({ tenant: tenantId }, this.bulkheads.inFlight(tenantId));
      const result = operation === "query" ? await this.dailyQueries.run(tenantId, quota.maxDailyQueries, fn) : await fn();
      this.monitor.record(tenantId, operation, performance.now() - started, "ok");
      return result;
    } catch (caught) {
      const err = this.dailyQueries.refusalFrom(caught, tenantId, quota.maxDailyQueries) ?? caught;
      this.monitor.record(tenantId, operation, performance.now() - started, outcomeOf(err), (err as { code?: string })?.code);
      throw err;
    } finally {
      if (leave) {
        leave();
        this.monitor.metrics.inFlight.set({ tenant: tenantId }, this.bulkheads.inFlight(tenantId));
      }
    }
  }

  async admitRate(tenant: Tenant, operation: Operation): Promise<RateLimitRefusal | null> {
    let refusal = this.rateLimiter.refusedNow(tenant.tenantId);
    if (!refusal) {
      try {
        await this.rateLimiter.consume(tenant.tenantId, tenant.quota);
        return null;
      } catch (err) {
        if (!(err instanceof RateLimitedError)) throw err;
        refusal = { tenantId: tenant.tenantId, requestsPerSecond: tenant.quota.requestsPerSecond, retryAfterMs: err.retryAfterMs };
      }
    }
    this.monitor.record(tenant.tenantId, operation, 0, "refused", "RATE_LIMITED");
    return refusal;
  }

  async admitRequestBytes(tenant: Tenant, operation: Operation, bytes: number): Promise<RateLimitRefusal | null> {
    try {
      await this.rateLimiter.consumeRequestBytes(tenant.tenantId, tenant.quota.requestBytesPerSecond, bytes);
      return null;
    } catch (err) {
      if (!(err instanceof RateLimitedError)) throw err;
      this.monitor.record(tenant.tenantId, operation, 0, "refused", "RATE_LIMITED");
      return { tenantId: tenant.tenantId, requestsPerSecond: err.limit, retryAfterMs: err.retryAfterMs, what: err.what };
    }
  }

  observe(tenant: Tenant, facts: { documents?: number; dailyQueries?: number; overheadMs?: number; operation: Operation }): void {
    if (facts.documents !== undefined) this.setQuotaGauge(tenant, "documents", facts.documents, tenant.quota.maxDocuments);
    if (facts.dailyQueries !== undefined) this.setQuotaGauge(tenant, "daily_queries", facts.dailyQueries, tenant.quota.maxDailyQueries);
    if (facts.overheadMs !== undefined) this.monitor.metrics.isolationOverhead.observe({ tenant: tenant.tenantId, operation: facts.operation }, facts.overheadMs / 1000);
  }

  /** Forgets what is remembered about a tenant whose configuration changed (e.g. a raised quota); null: every tenant. */
  forget(tenantId: string | null): void {
    this.rateLimiter.forget(tenantId);
    this.dailyQueries.forget(tenantId);
  }

  private setQuotaGauge(tenant: Tenant, quota: string, used: number, limit: number): void {
    const labels = { tenant: tenant.tenantId, quota };
    this.monitor.metrics.quotaUsed.set(labels, used);
    this.monitor.metrics.quotaLimit.set(labels, limit);
  }
}
