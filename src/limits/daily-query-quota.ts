import type { TenantDb } from "../db/db.js";
import { QuotaExceededError } from "../errors.js";

/** Adds one query to today's count unless the limit is reached; no row back means refused. */
const COUNT_QUERY = `
  INSERT INTO daily_query_counts AS c (tenant_id, day, queries)
  SELECT $1, $2::date, 1 WHERE $3::int > 0
  ON CONFLICT (tenant_id, day) DO UPDATE SET queries = c.queries + 1 WHERE c.queries < $3::int
  RETURNING queries`;

/**
 * The count is committed without waiting for its WAL flush: a crash may forget the last fraction of
 * a second of counts (a tenant gets a few extra queries that day), and in exchange a query does not
 * pay a disk flush. Billing does not depend on it — the usage ledger does.
 */
const COUNT_SETTINGS = { synchronous_commit: "off" } as const;

const READ_COUNT = "SELECT queries FROM daily_query_counts WHERE tenant_id = $1 AND day = $2::date";

/** The UTC day of `ms` (`2026-11-27`) and the midnight that ends it. */
export function utcDay(ms: number): { day: string; resetsAt: Date } {
  const d = new Date(ms);
  return { day: d.toISOString().slice(0, 10), resetsAt: new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)) };
}

/**
 * Queries per tenant per UTC day, counted in PostgreSQL with one atomic conditional increment per
 * query — exact however many instances share the database. Once a tenant's day is used up this
 * instance refuses from memory until midnight UTC (or until the tenant's quota changes), so
 * refusals cost no database work.
 */
export class DailyQueryQuota {
  private readonly exhausted = new Map<string, { day: string; used: number }>();

  constructor(
    private readonly db: TenantDb,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one query for today; returns the day's count, or throws `QuotaExceededError`. */
  async consume(tenantId: string, limit: number): Promise<number> {
    const { day, resetsAt } = utcDay(this.now());
    const known = this.exhausted.get(tenantId);
    if (known?.day === day) throw refusal(tenantId, limit, known.used, resetsAt);
    const [row] = await this.db.queryAsTenant<{ queries: number }>(tenantId, COUNT_QUERY, [tenantId, day, limit], COUNT_SETTINGS);
    if (row) return row.queries;
    const [current] = await this.db.queryAsTenant<{ queries: number }>(tenantId, READ_COUNT, [tenantId, day]);
    const used = current?.queries ?? 0;
    this.exhausted.set(tenantId, { day, used });
    throw refusal(tenantId, limit, used, resetsAt);
  }

  /** Today's count, without counting. */
  async used(tenantId: string): Promise<number> {
    const [row] = await this.db.queryAsTenant<{ queries: number }>(tenantId, READ_COUNT, [tenantId, utcDay(this.now()).day]);
    return row?.queries ?? 0;
  }

  /** Drops what this instance remembers of the tenant (its quota may have been raised), or of all with null. */
  forget(tenantId: string | null): void {
    if (tenantId === null) this.exhausted.clear();
    else this.exhausted.delete(tenantId);
  }
}

function refusal(tenantId: string, limit: number, used: number, resetsAt: Date): QuotaExceededError {
  return new QuotaExceededError(
    "maxDailyQueries",
    limit,
    used,
    `tenant "${tenantId}" has used ${used} of its ${limit} queries today; the count resets at ${resetsAt.toISOString()}`,
    resetsAt,
  );
}
