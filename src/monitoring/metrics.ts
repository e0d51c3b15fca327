import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { IndexCapacity } from "../tenancy/capacity.js";

/**
 * Bulkhead's Prometheus metrics, in a registry of its own (never prom-client's global one, so two
 * Bulkheads in one process — or the host application's metrics — do not collide).
 */
export class BulkheadMetrics {
  readonly registry = new Registry();

  readonly operations = new Counter({
    name: "bulkhead_operations_total",
    help: "Data operations by tenant, operation and outcome (ok, error, refused, invalid).",
    labelNames: ["tenant", "operation", "outcome"] as const,
    registers: [this.registry],
  });

  readonly duration = new Histogram({
    name: "bulkhead_operation_duration_seconds",
    help: "Latency of admitted data operations, including time queued behind the tenant's own operations.",
    labelNames: ["tenant", "operation"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly isolationOverhead = new Histogram({
    name: "bulkhead_isolation_overhead_seconds",
    help: "Application-side isolation work of a query (tenant resolution, validation, filter scoping, owner checks).",
    labelNames: ["tenant", "operation"] as const,
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01],
    registers: [this.registry],
  });

  readonly quotaUsed = new Gauge({
    name: "bulkhead_quota_used",
    help: "Quota in use: documents stored, queries today (UTC).",
    labelNames: ["tenant", "quota"] as const,
    registers: [this.registry],
  });

  readonly quotaLimit = new Gauge({
    name: "bulkhead_quota_limit",
    help: "Quota limit in force for the tenant.",
    labelNames: ["tenant", "quota"] as const,
    registers: [this.registry],
  });

  readonly inFlight = new Gauge({
    name: "bulkhead_in_flight_operations",
    help: "Data operations a tenant has in flight (running or queued for its connection share).",
    labelNames: ["tenant"] as const,
    registers: [this.registry],
  });

  readonly insuranceDecisions = new Counter({
    name: "bulkhead_rate_limit_insurance_decisions_total",
    help: "Rate-limit decisions made in memory because Redis was down or too slow (limits are per instance meanwhile).",
    registers: [this.registry],
  });

  readonly redisUp = new Gauge({
    name: "bulkhead_redis_up",
    help: "1 when the rate limiter's Redis connection is ready, 0 when not (absent without Redis).",
    registers: [this.registry],
  });

  readonly alerts = new Counter({
    name: "bulkhead_tenant_alerts_total",
    help: "Alerts raised per tenant and kind (latency_p95, error_rate, recall).",
    labelNames: ["tenant", "kind"] as const,
    registers: [this.registry],
  });

  readonly recall = new Gauge({
    name: "bulkhead_tenant_recall",
    help: "Mean recall@k of the tenant's sampled ANN queries against the same queries run exactly (since its search was last changed).",
    labelNames: ["tenant"] as const,
    registers: [this.registry],
  });

  readonly recallSamples = new Counter({
    name: "bulkhead_tenant_recall_samples_total",
    help: "ANN queries of the tenant run again exactly to measure recall.",
    labelNames: ["tenant"] as const,
    registers: [this.registry],
  });

  readonly alertActive = new Gauge({
    name: "bulkhead_tenant_alert_active",
    help: "1 while a tenant's alert of this kind is firing.",
    labelNames: ["tenant", "kind"] as const,
    registers: [this.registry],
  });

  /**
   * @param capacity read at scrape time: namespaces used and allowed per shared index
   * @param pools read at scrape time: tenants per pool of small tenants
   */
  constructor(capacity: () => Promise<IndexCapacity[]>, pools: () => Promise<{ index: string; tenants: number }[]> = async () => []) {
    new Gauge({
      name: "bulkhead_pool_tenants",
      help: "Tenants in each pool of small tenants (BULKHEAD_SMALL_TENANTS=pool; a pool has no namespace limit).",
      labelNames: ["index"] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const p of await pools()) this.set({ index: p.index }, p.tenants);
      },
    });
    new Gauge({
      name: "bulkhead_namespaces_used",
      help: "Namespaces in use per shared index.",
      labelNames: ["index"] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const c of await capacity()) this.set({ index: c.index }, c.used);
      },
    });
    new Gauge({
      name: "bulkhead_namespaces_max",
      help: "Namespaces a shared index may hold.",
      labelNames: ["index"] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const c of await capacity()) this.set({ index: c.index }, c.max);
      },
    });
  }

  /**
   * Drops every series of one tenant (an erased tenant's, a readiness probe's): without it each
   * erased tenant would stay in every scrape for the life of the process.
   */
  async forgetTenant(tenantId: string): Promise<void> {
    for (const metric of this.registry.getMetricsAsArray() as unknown as { get(): Promise<{ values: { labels: Record<string, string | number> }[] }>; remove(labels: Record<string, string | number>): void }[]) {
      const { values } = await metric.get();
      const seen = new Set<string>();
      for (const { labels } of values) {
        if (labels.tenant !== tenantId) continue;
        // A histogram reports each bucket (le) and its sum and count; its series is the rest of the labels.
        const { le: _le, ...series } = labels;
        const key = JSON.stringify(series);
        if (seen.has(key)) continue;
        seen.add(key);
        metric.remove(series);
      }
    }
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
