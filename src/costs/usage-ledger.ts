import type { TenantDb } from "../db/db.js";

export type UsageKind = "embedding" | "llm" | "vector_query" | "vector_write";

/** One metered quantity with its cost in pico-dollars. */
export interface UsageEvent {
  tenantId: string;
  kind: UsageKind;
  quantity: number;
  costPico: bigint;
  model?: string;
  occurredAt: Date;
}

export interface LedgerOptions {
  /** Buffered events are written at least this often (ms). */
  flushIntervalMs: number;
  /** A buffer this large is written at once, without waiting for the interval. */
  maxEvents: number;
  /** Told about a failed flush; the events stay buffered and are retried. */
  onError: (err: unknown) => void;
}

/** `YYYY-MM` of a date in UTC: the billing period. */
export const periodOf = (d: Date) => d.toISOString().slice(0, 7);

const INSERT = `
  INSERT INTO usage_events (tenant_id, occurred_at, period, kind, model, quantity, cost_pico)
  SELECT $1, r.occurred_at, r.period, r.kind, r.model, r.quantity, r.cost_pico
    FROM jsonb_to_recordset($2::jsonb) AS r(occurred_at timestamptz, period text, kind text, model text, quantity bigint, cost_pico bigint)`;

/**
 * The durable usage ledger. Events are buffered in memory and written in batches — one statement
 * per tenant per flush, each under that tenant's row-level-security context — every
 * `flushIntervalMs` or when `maxEvents` are waiting. Loss bound: a process killed between
 * flushes loses at most the events of the last interval (or of the last `maxEvents`); `close()`
 * and `flush()` write everything. A failed flush keeps the events and retries on the next one.
 */
export class UsageLedger {
  private buffer: UsageEvent[] = [];
  private writing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly db: TenantDb,
    private readonly options: LedgerOptions,
  ) {
    this.timer = setInterval(() => void this.flush().catch(options.onError), options.flushIntervalMs);
    // A buffered ledger must not keep a process alive on its own.
    this.timer.unref();
  }

  /** Buffers events; never touches the database on the caller's path. */
  record(events: readonly UsageEvent[]): void {
    if (this.closed) throw new Error("the usage ledger is closed");
    this.buffer.push(...events);
    if (this.buffer.length >= this.options.maxEvents) void this.flush().catch(this.options.onError);
  }

  /** Events waiting to be written. */
  get pending(): number {
    return this.buffer.length;
  }

  /** Writes everything buffered so far. Flushes run one at a time, in order. */
  flush(): Promise<void> {
    const run = this.writing.catch(() => {}).then(() => this.writeBuffered());
    this.writing = run;
    return run;
  }

  private async writeBuffered(): Promise<void> {
    if (this.buffer.length === 0) return;
    const batch = this.buffer;
    this.buffer = [];
    const byTenant = new Map<string, UsageEvent[]>();
    for (const e of batch) {
      const list = byTenant.get(e.tenantId);
      if (list) list.push(e);
      else byTenant.set(e.tenantId, [e]);
    }
    const failed: UsageEvent[] = [];
    let firstError: unknown;
    for (const [tenantId, events] of byTenant) {
      const rows = events.map((e) => ({
        occurred_at: e.occurredAt.toISOString(),
        period: periodOf(e.occurredAt),
        kind: e.kind,
        model: e.model ?? null,
        quantity: e.quantity,
        cost_pico: e.costPico.toString(),
      }));
      try {
        await this.db.queryAsTenant(tenantId, INSERT, [tenantId, JSON.stringify(rows)]);
      } catch (err) {
        failed.push(...events);
        firstError ??= err;
      }
    }
    if (failed.length > 0) {
      this.buffer = failed.concat(this.buffer);
      throw firstError;
    }
  }

  /** Stops the timer and writes everything. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.flush();
  }
}
