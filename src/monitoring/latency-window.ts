/** How an operation ended, as the statistics count it. */
export type Outcome = "ok" | "error" | "refused" | "invalid";

const OUTCOMES: readonly Outcome[] = ["ok", "error", "refused", "invalid"];

/** What `getTenantStats` reports for one tenant over the sliding window. */
export interface TenantStats {
  tenantId: string;
  /** Length of the window the figures cover (ms). */
  windowMs: number;
  /** Operations in the window, whatever their outcome. */
  requests: number;
  ok: number;
  /** Operations that failed on Bulkhead's or the database's side (5xx). */
  errors: number;
  /** Operations refused by a rate limit, quota or concurrency limit (429). */
  refused: number;
  /** Operations rejected for bad input or state (other 4xx). */
  invalid: number;
  /** errors / (ok + errors): the share of admitted operations that failed. 0 with no operations. */
  errorRate: number;
  /** Latency percentiles of admitted operations (ok or error), ms; null with none in the window. */
  p50: number | null;
  p95: number | null;
  p99: number | null;
  /** Mean recall@k of the tenant's sampled ANN queries (see `BULKHEAD_RECALL_SAMPLE_RATE`); null before any sample. */
  recall: number | null;
  /** Recall samples behind `recall` (those since its search was last widened). */
  recallSamples: number;
}

/**
 * The most recent operations of one tenant: time, latency and outcome. Grows with use up to
 * `capacity` entries, then overwrites the oldest (a ring), so a quiet tenant costs a few bytes and
 * a busy one at most `capacity` entries; statistics cover the entries inside the time window.
 */
export class LatencyWindow {
  private readonly at: number[] = [];
  private readonly ms: number[] = [];
  private readonly outcome: number[] = [];
  /** Where the next entry goes once the buffer is full. */
  private next = 0;

  constructor(private readonly capacity: number) {}

  record(at: number, latencyMs: number, outcome: Outcome): void {
    const o = OUTCOMES.indexOf(outcome);
    if (this.at.length < this.capacity) {
      this.at.push(at);
      this.ms.push(latencyMs);
      this.outcome.push(o);
      return;
    }
    this.at[this.next] = at;
    this.ms[this.next] = latencyMs;
    this.outcome[this.next] = o;
    this.next = (this.next + 1) % this.capacity;
  }

  stats(tenantId: string, now: number, windowMs: number): Omit<TenantStats, "recall" | "recallSamples"> {
    const counts = [0, 0, 0, 0];
    const latencies: number[] = [];
    const size = this.at.length;
    for (let k = 0; k < size; k++) {
      const i = (this.next - 1 - k + size) % size;
      if (this.at[i]! < now - windowMs) break; // entries are in time order: the rest are older
      const o = this.outcome[i]!;
      counts[o]!++;
      if (o <= 1) latencies.push(this.ms[i]!);
    }
    latencies.sort((a, b) => a - b);
    const [ok, errors, refused, invalid] = counts as [number, number, number, number];
    return {
      tenantId,
      windowMs,
      requests: ok + errors + refused + invalid,
      ok,
      errors,
      refused,
      invalid,
      errorRate: ok + errors === 0 ? 0 : errors / (ok + errors),
      p50: percentile(latencies, 0.5),
      p95: percentile(latencies, 0.95),
      p99: percentile(latencies, 0.99),
    };
  }
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}
