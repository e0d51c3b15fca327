import { randomUUID } from "node:crypto";
import type { TenantDb } from "../db/db.js";

export type UsageKind = "embedding" | "llm" | "vector_query" | "vector_write";
const KINDS: ReadonlySet<string> = new Set<UsageKind>(["embedding", "llm", "vector_query", "vector_write"]);

/** One metered quantity with its cost in pico-dollars. */
export interface UsageEvent {
  tenantId: string;
  /** Given by the ledger when recorded: written once however often its flush is retried. */
  eventId?: string;
  kind: UsageKind;
  quantity: number;
  costPico: bigint;
  model?: string;
  /** The quantity was counted here because the provider reported none (embedding tokens). */
  estimated?: boolean;
  occurredAt: Date;
}

/** An event the ledger could not store, set aside with the reason (no content: ids, kind, amounts). */
export interface QuarantinedEvent {
  event: UsageEvent;
  reason: string;
}

export interface LedgerOptions {
  /** Buffered events are written at least this often (ms). */
  flushIntervalMs: number;
  /** A buffer this large is written at once, without waiting for the interval. */
  maxEvents: number;
  /** Told about a failed flush (the database did not answer); the events stay buffered and are retried. */
  onError: (err: unknown) => void;
  /** Told about each event set aside in quarantine (it is stored there, and never retried). */
  onQuarantine?: (q: QuarantinedEvent) => void;
}

/** `YYYY-MM` of a date in UTC: the billing period. */
export const periodOf = (d: Date) => d.toISOString().slice(0, 7);

/** The ledger's columns are bigint: nothing above this can be stored (sums are numeric, so they cannot overflow). */
export const MAX_BIGINT = 2n ** 63n - 1n;

// ON CONFLICT: a retried flush (its first attempt may have committed) writes each event once.
const INSERT = `
  INSERT INTO usage_events (tenant_id, event_id, occurred_at, period, kind, model, quantity, cost_pico, estimated)
  SELECT $1, r.event_id, r.occurred_at, r.period, r.kind, r.model, r.quantity, r.cost_pico, r.estimated
    FROM jsonb_to_recordset($2::jsonb) AS r(event_id uuid, occurred_at timestamptz, period text, kind text, model text, quantity bigint, cost_pico bigint, estimated boolean)
  ON CONFLICT (tenant_id, event_id) DO NOTHING`;

const QUARANTINE = `
  INSERT INTO usage_quarantine (tenant_id, occurred_at, kind, model, quantity, cost_pico, reason)
  VALUES ($1, $2, $3, $4, $5::numeric, $6::numeric, $7)`;

/** Why an event cannot be stored as it is, or null when it can. */
export function unstorableReason(e: UsageEvent): string | null {
  if (!KINDS.has(e.kind)) return "unknown kind";
  if (!Number.isSafeInteger(e.quantity) || e.quantity < 0) return "quantity is not a whole number from 0 to 2^53";
  if (typeof e.costPico !== "bigint" || e.costPico < 0n || e.costPico > MAX_BIGINT) return "cost is out of the ledger's range";
  if (!(e.occurredAt instanceof Date) || Number.isNaN(e.occurredAt.getTime())) return "no valid time";
  if (e.model !== undefined && (typeof e.model !== "string" || e.model.includes("\u0000"))) return "model name cannot be stored";
  return null;
}

/**
 * SQLSTATE classes that blame the rows, not the connection: data exceptions (22: out of range,
 * bad encoding), integrity violations (23) and the like. Anything else (no code, connection
 * errors 08, shutdown 57, resources 53, deadlocks 40) is worth retrying as it is.
 */
const blamesTheRows = (err: unknown) => {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" && /^(22|23|42|XX)/.test(code);
};

const quantityText = (q: number) => (Number.isFinite(q) ? String(q) : null);

/**
 * The durable usage ledger. Events are buffered in memory and written in batches — one statement
 * per tenant per flush, each under that tenant's row-level-security context — every
 * `flushIntervalMs` or when `maxEvents` are waiting. Each event has an id of its own and is
 * written at most once, so a flush retried after a deadline (its outcome unknown) bills nothing
 * twice. Loss bound: a process killed between
 * flushes loses at most the events of the last interval (or of the last `maxEvents`); `close()`
 * and `flush()` write everything.
 *
 * One bad event never blocks another: an event that cannot be stored (checked before writing, or
 * refused by the database) is set aside in `usage_quarantine` and reported, and the rest are
 * written. Only a database that does not answer keeps events buffered, to retry on the next flush.
 */
export class UsageLedger {
  private buffer: UsageEvent[] = [];
  private writing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  private quarantinedCount = 0;

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
    for (const e of events) this.buffer.push(e.eventId ? e : { ...e, eventId: randomUUID() });
    if (this.buffer.length >= this.options.maxEvents) void this.flush().catch(this.options.onError);
  }

  /** Events waiting to be written. */
  get pending(): number {
    return this.buffer.length;
  }

  /** Events this process has set aside in quarantine. */
  get quarantined(): number {
    return this.quarantinedCount;
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
      // Events leave this set as they are stored or quarantined: a failure part-way re-buffers only the rest.
      const left = new Set(events);
      try {
        await this.writeTenant(tenantId, left);
      } catch (err) {
        failed.push(...left);
        firstError ??= err;
      }
    }
    if (failed.length > 0) {
      this.buffer = failed.concat(this.buffer);
      throw firstError;
    }
  }

  /**
   * One tenant's events: the storable ones in one statement. If the database refuses that
   * statement for its rows, each event is tried alone so that only the one at fault is set aside.
   * Throws only when the database did not answer (then nothing of this tenant was written).
   */
  private async writeTenant(tenantId: string, left: Set<UsageEvent>): Promise<void> {
    const good: UsageEvent[] = [];
    const bad: QuarantinedEvent[] = [];
    for (const e of left) {
      const reason = unstorableReason(e);
      if (reason) bad.push({ event: e, reason });
      else good.push(e);
    }
    if (good.length > 0) {
      try {
        await this.insert(tenantId, good);
        for (const e of good) left.delete(e);
      } catch (err) {
        if (!blamesTheRows(err)) throw err;
        for (const e of good) {
          try {
            await this.insert(tenantId, [e]);
            left.delete(e);
          } catch (one) {
            if (!blamesTheRows(one)) throw one;
            bad.push({ event: e, reason: `refused by the database (SQLSTATE ${(one as { code: string }).code})` });
          }
        }
      }
    }
    for (const q of bad) {
      await this.quarantine(q);
      left.delete(q.event);
    }
  }

  private insert(tenantId: string, events: UsageEvent[]): Promise<unknown> {
    const rows = events.map((e) => ({
      event_id: e.eventId ?? null,
      occurred_at: e.occurredAt.toISOString(),
      period: periodOf(e.occurredAt),
      kind: e.kind,
      model: e.model ?? null,
      quantity: e.quantity,
      cost_pico: e.costPico.toString(),
      estimated: e.estimated === true,
    }));
    return this.db.queryAsTenant(tenantId, INSERT, [tenantId, JSON.stringify(rows)]);
  }

  private async quarantine(q: QuarantinedEvent): Promise<void> {
    const e = q.event;
    // A time PostgreSQL cannot read (before year 1, after 9999) is replaced by now: the quarantine must take anything.
    const storableTime = e.occurredAt instanceof Date && !Number.isNaN(e.occurredAt.getTime()) && e.occurredAt.getUTCFullYear() >= 1 && e.occurredAt.getUTCFullYear() <= 9999;
    const at = storableTime ? e.occurredAt : new Date();
    const model = typeof e.model === "string" ? e.model.replace(/\u0000/g, "") : null;
    const cost = typeof e.costPico === "bigint" ? e.costPico.toString() : null;
    await this.db.queryAsTenant(e.tenantId, QUARANTINE, [e.tenantId, at.toISOString(), String(e.kind), model, quantityText(e.quantity), cost, q.reason]);
    this.quarantinedCount++;
    this.options.onQuarantine?.(q);
  }

  /** Stops the timer and writes everything. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.flush();
  }
}
