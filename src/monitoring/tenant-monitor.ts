import { EventEmitter } from "node:events";
import type { BulkheadConfig } from "../config.js";
import { BulkheadError } from "../errors.js";
import { LatencyWindow, type Outcome, type TenantStats } from "./latency-window.js";
import type { BulkheadMetrics } from "./metrics.js";

/** A tenant's latency or error rate crossed its threshold (`firing`) or came back under it (`resolved`). */
export interface TenantAlert {
  tenantId: string;
  kind: "latency_p95" | "error_rate";
  state: "firing" | "resolved";
  /** The measured p95 (ms) or error rate. */
  value: number;
  threshold: number;
  at: Date;
}

export type MonitorConfig = Pick<BulkheadConfig, "statsWindowMs" | "alertP95Ms" | "alertErrorRate" | "alertMinRequests">;

/** Most recent operations kept per tenant for percentiles (bounded memory: at most ~0.2 MB for a busy tenant). */
const SAMPLES_PER_TENANT = 5_000;
/** A tenant's alerts are judged at most this often; judging sorts its window. */
const ALERT_CHECK_INTERVAL_MS = 1_000;

/** How an error counts: refused (429), invalid (other 4xx) or error (5xx and anything unexpected). */
export function outcomeOf(err: unknown): Outcome {
  if (err instanceof BulkheadError) return err.status === 429 ? "refused" : err.status < 500 ? "invalid" : "error";
  return "error";
}

/**
 * Per-tenant latency and error statistics over a sliding window, Prometheus metrics and alerts.
 * An alert is an `alert` event, a log line and the `bulkhead_tenant_alert*` metrics; it fires when a
 * tenant's p95 exceeds `alertP95Ms` or its error rate `alertErrorRate` (once the window holds
 * `alertMinRequests` operations), and resolves when it is back under.
 *
 * @example
 * bh.monitor.on("alert", (a) => pager.notify(`${a.tenantId}: ${a.kind} ${a.value}`));
 * const s = bh.monitor.getTenantStats("tenant-001"); // { p50, p95, p99, errorRate, … }
 */
export class TenantMonitor extends EventEmitter<{ alert: [TenantAlert] }> {
  private readonly windows = new Map<string, LatencyWindow>();
  private readonly lastCheck = new Map<string, number>();
  private readonly firing = new Set<string>();

  constructor(
    readonly metrics: BulkheadMetrics,
    private readonly config: MonitorConfig,
    private readonly log: (message: string) => void,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  /** Records one finished operation. */
  record(tenantId: string, operation: string, latencyMs: number, outcome: Outcome): void {
    const at = this.now();
    let window = this.windows.get(tenantId);
    if (!window) this.windows.set(tenantId, (window = new LatencyWindow(SAMPLES_PER_TENANT)));
    window.record(at, latencyMs, outcome);
    this.metrics.operations.inc({ tenant: tenantId, operation, outcome });
    if (outcome === "ok" || outcome === "error") this.metrics.duration.observe({ tenant: tenantId, operation }, latencyMs / 1000);
    if (at - (this.lastCheck.get(tenantId) ?? -Infinity) >= ALERT_CHECK_INTERVAL_MS) {
      this.lastCheck.set(tenantId, at);
      this.checkAlerts(tenantId);
    }
  }

  /** Forgets an erased tenant: its window, its alerts and its metric series. */
  async forgetTenant(tenantId: string): Promise<void> {
    this.windows.delete(tenantId);
    this.lastCheck.delete(tenantId);
    for (const key of this.firing) if (key.startsWith(`${tenantId}\u0000`)) this.firing.delete(key);
    await this.metrics.forgetTenant(tenantId);
  }

  /** p50/p95/p99 latency, error rate and counts of the tenant's operations in the sliding window. */
  getTenantStats(tenantId: string): TenantStats {
    const window = this.windows.get(tenantId) ?? new LatencyWindow(1);
    return window.stats(tenantId, this.now(), this.config.statsWindowMs);
  }

  /** Judges a tenant's alerts now (also done automatically as operations are recorded). */
  checkAlerts(tenantId: string): TenantAlert[] {
    const s = this.getTenantStats(tenantId);
    const judged = s.ok + s.errors >= this.config.alertMinRequests;
    const changes: TenantAlert[] = [];
    const judge = (kind: TenantAlert["kind"], value: number | null, threshold: number) => {
      const key = `${tenantId}\u0000${kind}`;
      const over = judged && value !== null && value > threshold;
      if (over === this.firing.has(key)) return;
      if (over) this.firing.add(key);
      else this.firing.delete(key);
      const alert: TenantAlert = { tenantId, kind, state: over ? "firing" : "resolved", value: value ?? 0, threshold, at: new Date(this.now()) };
      if (over) this.metrics.alerts.inc({ tenant: tenantId, kind });
      this.metrics.alertActive.set({ tenant: tenantId, kind }, over ? 1 : 0);
      const shown = kind === "latency_p95" ? `${alert.value.toFixed(1)} ms (threshold ${threshold} ms)` : `${(alert.value * 100).toFixed(1)} % (threshold ${threshold * 100} %)`;
      this.log(`bulkhead: alert ${alert.state}: tenant ${tenantId} ${kind} ${shown} over the last ${this.config.statsWindowMs / 1000} s`);
      changes.push(alert);
      this.emit("alert", alert);
    };
    judge("latency_p95", s.p95, this.config.alertP95Ms);
    judge("error_rate", s.errorRate, this.config.alertErrorRate);
    return changes;
  }

  /** Prometheus text exposition of every Bulkhead metric. */
  metricsText(): Promise<string> {
    return this.metrics.text();
  }
}
