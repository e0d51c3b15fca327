import { EventEmitter } from "node:events";
import type { BulkheadConfig } from "../config.js";
import { BulkheadError } from "../errors.js";
import { LatencyWindow, type Outcome, type TenantStats } from "./latency-window.js";
import type { BulkheadMetrics } from "./metrics.js";
import type { MinuteRollups } from "./minute-rollups.js";

/** A tenant's latency, error rate or recall crossed its threshold (`firing`) or came back (`resolved`). */
export interface TenantAlert {
  tenantId: string;
  kind: "latency_p95" | "error_rate" | "recall";
  state: "firing" | "resolved";
  /** The measured p95 (ms), error rate or recall (firing below its threshold). */
  value: number;
  threshold: number;
  at: Date;
}

export type MonitorConfig = Pick<BulkheadConfig, "statsWindowMs" | "alertP95Ms" | "alertErrorRate" | "alertMinRequests" | "alertRecall">;

/** A tenant's recall was measured below `alertRecall` over `samples` fresh samples: its search should be widened. */
export interface LowRecall {
  tenantId: string;
  recall: number;
  samples: number;
}

/** Most recent recall samples kept per tenant. */
const RECALL_SAMPLES = 100;
const meanOf = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

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
 * `alertMinRequests` operations), and resolves when it is back under; recall alerts: `recordRecall`.
 *
 * @example
 * bh.monitor.on("alert", (a) => pager.notify(`${a.tenantId}: ${a.kind} ${a.value}`));
 * const s = bh.monitor.getTenantStats("tenant-001"); // { p50, p95, p99, errorRate, … }
 */
export class TenantMonitor extends EventEmitter<{ alert: [TenantAlert]; lowRecall: [LowRecall] }> {
  private readonly windows = new Map<string, LatencyWindow>();
  private readonly recalls = new Map<string, number[]>();
  private readonly lastCheck = new Map<string, number>();
  private readonly firing = new Set<string>();

  constructor(
    readonly metrics: BulkheadMetrics,
    private readonly config: MonitorConfig,
    private readonly log: (message: string) => void,
    private readonly now: () => number = Date.now,
    /** Where each operation is also counted minute by minute (the charts' history); none in tests of the monitor alone. */
    private readonly rollups?: Pick<MinuteRollups, "record">,
  ) {
    super();
  }

  /** Records one finished operation; a refusal with its error code (RATE_LIMITED, QUOTA_EXCEEDED, CONCURRENCY_LIMITED…). */
  record(tenantId: string, operation: string, latencyMs: number, outcome: Outcome, code?: string): void {
    const at = this.now();
    let window = this.windows.get(tenantId);
    if (!window) this.windows.set(tenantId, (window = new LatencyWindow(SAMPLES_PER_TENANT)));
    window.record(at, latencyMs, outcome);
    this.rollups?.record(tenantId, latencyMs, outcome, code);
    this.metrics.operations.inc({ tenant: tenantId, operation, outcome });
    if (outcome === "ok" || outcome === "error") this.metrics.duration.observe({ tenant: tenantId, operation }, latencyMs / 1000);
    if (at - (this.lastCheck.get(tenantId) ?? -Infinity) >= ALERT_CHECK_INTERVAL_MS) {
      this.lastCheck.set(tenantId, at);
      this.checkAlerts(tenantId);
    }
  }

  /**
   * Records one recall sample (recall@k of an ANN answer against the exact one). Once
   * `alertMinRequests` samples are in and their mean is below `alertRecall`, the recall alert fires
   * and `lowRecall` is emitted — then the samples start afresh, so the next judgement measures
   * whatever was done about it (the search widened); the alert resolves when a full window is back
   * at or above the threshold.
   */
  recordRecall(tenantId: string, recall: number): void {
    let samples = this.recalls.get(tenantId);
    if (!samples) this.recalls.set(tenantId, (samples = []));
    samples.push(recall);
    if (samples.length > RECALL_SAMPLES) samples.shift();
    const mean = meanOf(samples);
    this.metrics.recall.set({ tenant: tenantId }, mean);
    this.metrics.recallSamples.inc({ tenant: tenantId });
    if (samples.length < this.config.alertMinRequests) return;
    const low = mean < this.config.alertRecall;
    this.setAlert(tenantId, "recall", low, mean, this.config.alertRecall, `${mean.toFixed(3)} (threshold ${this.config.alertRecall}) over ${samples.length} sampled queries`);
    if (low) {
      this.recalls.set(tenantId, []);
      this.emit("lowRecall", { tenantId, recall: mean, samples: samples.length });
    }
  }

  /** Forgets an erased tenant: its window, its alerts and its metric series. */
  async forgetTenant(tenantId: string): Promise<void> {
    this.windows.delete(tenantId);
    this.recalls.delete(tenantId);
    this.lastCheck.delete(tenantId);
    for (const key of this.firing) if (key.startsWith(`${tenantId}\u0000`)) this.firing.delete(key);
    await this.metrics.forgetTenant(tenantId);
  }

  /** p50/p95/p99 latency, error rate and counts of the tenant's operations in the sliding window. */
  getTenantStats(tenantId: string): TenantStats {
    const window = this.windows.get(tenantId) ?? new LatencyWindow(1);
    const samples = this.recalls.get(tenantId) ?? [];
    const recall = samples.length > 0 ? meanOf(samples) : null;
    return { ...window.stats(tenantId, this.now(), this.config.statsWindowMs), recall, recallSamples: samples.length };
  }

  /** Judges a tenant's alerts now (also done automatically as operations are recorded). */
  checkAlerts(tenantId: string): TenantAlert[] {
    const s = this.getTenantStats(tenantId);
    const judged = s.ok + s.errors >= this.config.alertMinRequests;
    const over = (value: number | null, threshold: number) => judged && value !== null && value > threshold;
    const window = `over the last ${this.config.statsWindowMs / 1000} s`;
    return [
      this.setAlert(tenantId, "latency_p95", over(s.p95, this.config.alertP95Ms), s.p95 ?? 0, this.config.alertP95Ms, `${(s.p95 ?? 0).toFixed(1)} ms (threshold ${this.config.alertP95Ms} ms) ${window}`),
      this.setAlert(tenantId, "error_rate", over(s.errorRate, this.config.alertErrorRate), s.errorRate, this.config.alertErrorRate, `${(s.errorRate * 100).toFixed(1)} % (threshold ${this.config.alertErrorRate * 100} %) ${window}`),
    ].filter((a): a is TenantAlert => a !== undefined);
  }

  /** Puts one alert of a tenant in the state `firing` says: metrics, a log line and an `alert` event when it changes. */
  private setAlert(tenantId: string, kind: TenantAlert["kind"], firing: boolean, value: number, threshold: number, shown: string): TenantAlert | undefined {
    const key = `${tenantId}\u0000${kind}`;
    if (firing === this.firing.has(key)) return undefined;
    if (firing) this.firing.add(key);
    else this.firing.delete(key);
    const alert: TenantAlert = { tenantId, kind, state: firing ? "firing" : "resolved", value, threshold, at: new Date(this.now()) };
    if (firing) this.metrics.alerts.inc({ tenant: tenantId, kind });
    this.metrics.alertActive.set({ tenant: tenantId, kind }, firing ? 1 : 0);
    this.log(`bulkhead: alert ${alert.state}: tenant ${tenantId} ${kind} ${shown}`);
    this.emit("alert", alert);
    return alert;
  }

  /** Prometheus text exposition of every Bulkhead metric. */
  metricsText(): Promise<string> {
    return this.metrics.text();
  }
}
