import type { Queryable } from "../db/db.js";
import type { Outcome } from "./latency-window.js";

/**
 * Upper bounds (ms) of the latency histogram's buckets; a last bucket holds everything slower.
 * Percentiles read off it are interpolated inside a bucket, so they are estimates: exact enough to
 * tell 3 ms from 30 ms, which is what a chart of minutes is for (the live window, `getTenantStats`,
 * keeps exact samples).
 */
export const LATENCY_BOUNDS_MS: readonly number[] = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
// Migration 23's tenant_overview sums these 14 buckets by position: changing their number needs a migration.
const BUCKETS = LATENCY_BOUNDS_MS.length + 1;

/** One tenant's operations in one minute: counts by outcome and the latencies of admitted ones. */
export interface MinuteCounts {
  ok: number;
  errors: number;
  invalid: number;
  refused: number;
  /** Refusals by kind (the rest of `refused`: a store or provider throttling). */
  rateLimited: number;
  quotaExceeded: number;
  concurrencyLimited: number;
  /** Operations per latency bucket (`LATENCY_BOUNDS_MS`, then the overflow). */
  latency: number[];
}

const emptyCounts = (): MinuteCounts => ({ ok: 0, errors: 0, invalid: 0, refused: 0, rateLimited: 0, quotaExceeded: 0, concurrencyLimited: 0, latency: new Array<number>(BUCKETS).fill(0) });
export const COUNT_FIELDS = ["ok", "errors", "invalid", "refused", "rateLimited", "quotaExceeded", "concurrencyLimited"] as const;
const REFUSAL_KINDS: Record<string, "rateLimited" | "quotaExceeded" | "concurrencyLimited"> = { RATE_LIMITED: "rateLimited", QUOTA_EXCEEDED: "quotaExceeded", CONCURRENCY_LIMITED: "concurrencyLimited" };

export function bucketOf(latencyMs: number): number {
  const i = LATENCY_BOUNDS_MS.findIndex((bound) => latencyMs <= bound);
  return i === -1 ? BUCKETS - 1 : i;
}

/** The `q` quantile (0–1) of a latency histogram, in ms; null when it holds nothing. */
export function percentileOf(latency: readonly number[], q: number): number | null {
  const total = latency.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < latency.length; i++) {
    const n = latency[i]!;
    if (n > 0 && seen + n >= rank) {
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!;
      // The overflow bucket has no upper bound: report its lower one (at least that slow).
      const upper = LATENCY_BOUNDS_MS[i] ?? lower;
      return lower + ((upper - lower) * (rank - seen)) / n;
    }
    seen += n;
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!;
}

export interface RollupOptions {
  /** How often the counts gathered are written (ms). */
  flushIntervalMs: number;
  /** How long minutes are kept (ms); older ones are pruned about once an hour. */
  retentionMs: number;
  /** Told about a failed flush (the counts stay gathered and are written with the next one). */
  onError: (err: unknown) => void;
  now?: () => number;
}

/** Gathered minutes beyond which the oldest are dropped (a database down for long must not grow memory without bound). */
const MAX_PENDING = 200_000;
const ROWS_PER_STATEMENT = 2_000;
const PRUNE_EVERY_MS = 3_600_000;

/**
 * Per-tenant minute rollups (migration 23): every operation the monitor records is counted into
 * its tenant's current minute in memory, and the minutes are written every `flushIntervalMs` in
 * one round trip, each in its own tenant's context. Rows for the same minute from several
 * instances (or several flushes) add up in the database, so nothing needs coordinating.
 */
export class MinuteRollups {
  private pending = new Map<string, PendingMinute>();
  private writing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private lastPrune: number;
  private readonly now: () => number;

  constructor(
    private readonly db: Queryable,
    /** The same database with the deadline of slow work: the hourly prune enters every tenant's context. */
    private readonly pruneDb: Queryable,
    private readonly options: RollupOptions,
  ) {
    this.now = options.now ?? Date.now;
    // The first prune waits an interval: opening many instances at once must not prune at once.
    this.lastPrune = this.now();
    this.timer = setInterval(() => void this.flush().catch(options.onError), options.flushIntervalMs);
    this.timer.unref();
  }

  record(tenantId: string, latencyMs: number, outcome: Outcome, code?: string): void {
    const minute = Math.floor(this.now() / 60_000) * 60_000;
    const key = `${minute}\u0000${tenantId}`;
    let entry = this.pending.get(key);
    if (!entry) {
      if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
      this.pending.set(key, (entry = { tenantId, minute, counts: emptyCounts() }));
    }
    const c = entry.counts;
    if (outcome === "ok") c.ok++;
    else if (outcome === "error") c.errors++;
    else if (outcome === "invalid") c.invalid++;
    else {
      c.refused++;
      const kind = code === undefined ? undefined : REFUSAL_KINDS[code];
      if (kind) c[kind]++;
    }
    if (outcome === "ok" || outcome === "error") c.latency[bucketOf(latencyMs)]!++;
  }

  /** Writes what was gathered (flushes run one at a time); prunes expired minutes about once an hour. */
  flush(): Promise<void> {
    const run = this.writing.catch(() => {}).then(() => this.write());
    this.writing = run;
    return run;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private async write(): Promise<void> {
    const entries = [...this.pending];
    this.pending = new Map();
    // In statements of bounded size: each tenant's context is entered in turn (~0.1 ms a row), and
    // a backlog after an outage must not become one statement longer than the deadline, for ever.
    for (let i = 0; i < entries.length; i += ROWS_PER_STATEMENT) {
      const chunk = entries.slice(i, i + ROWS_PER_STATEMENT);
      try {
        await this.db.query("SELECT write_tenant_minutes($1::jsonb)", [JSON.stringify(chunk.map(([, e]) => rowOf(e)))]);
      } catch (err) {
        // This statement wrote nothing: its counts and the ones not tried go back, merged with any gathered since.
        this.putBack(entries.slice(i));
        throw err;
      }
    }
    if (this.now() - this.lastPrune >= PRUNE_EVERY_MS) {
      this.lastPrune = this.now();
      await this.pruneDb.query("SELECT prune_tenant_minutes($1)", [new Date(this.now() - this.options.retentionMs)]);
    }
  }

  private putBack(entries: readonly [string, PendingMinute][]): void {
    for (const [key, e] of entries) {
      const now = this.pending.get(key);
      if (now) {
        for (const f of COUNT_FIELDS) now.counts[f] += e.counts[f];
        now.counts.latency = now.counts.latency.map((n, i) => n + e.counts.latency[i]!);
      } else if (this.pending.size < MAX_PENDING) this.pending.set(key, e);
    }
  }
}

type PendingMinute = { tenantId: string; minute: number; counts: MinuteCounts };

const rowOf = ({ tenantId, minute, counts: c }: PendingMinute) => ({
  tenant_id: tenantId,
  minute: new Date(minute).toISOString(),
  ok: c.ok,
  errors: c.errors,
  invalid: c.invalid,
  refused: c.refused,
  rate_limited: c.rateLimited,
  quota_exceeded: c.quotaExceeded,
  concurrency_limited: c.concurrencyLimited,
  latency: c.latency,
});
