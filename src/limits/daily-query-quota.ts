import { QuotaExceededError } from "../errors.js";
import { DailyQueriesUsedUpError, type DailyQueryCount } from "../stores/store.js";

/** The UTC day of `ms` (`2026-11-27`) and the midnight that ends it. */
export function utcDay(ms: number): { day: string; resetsAt: Date } {
  const d = new Date(ms);
  return { day: d.toISOString().slice(0, 10), resetsAt: new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)) };
}

/** One query's admission: the count the store makes before it searches (see `VectorStore.query`). */
export interface QueryAdmission {
  count: DailyQueryCount;
}

/**
 * Queries per tenant per UTC day, counted by the store with one atomic conditional increment per
 * query — exact however many instances share the database. pgvector makes the increment in the
 * same round trip and transaction as the query itself; a store without transactions makes it in the
 * catalogue first. When the day is used up the search never runs.
 * Once a tenant's day is used up this instance refuses from memory until midnight UTC (or until
 * the tenant's quota changes), so refusals cost no database work.
 */
export class DailyQueryQuota {
  private readonly exhausted = new Map<string, { day: string; used: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Admits one query for today (its count still to be made), or throws `QuotaExceededError` if this instance knows the day is used up. */
  admit(tenantId: string, limit: number): QueryAdmission {
    const { day, resetsAt } = utcDay(this.now());
    const known = this.exhausted.get(tenantId);
    if (known?.day === day) throw refusal(tenantId, limit, known.used, resetsAt);
    return { count: { day, limit } };
  }

  /** The quota refusal a failed query carries, remembered until midnight; undefined for any other error. */
  refusalFrom(err: unknown, tenantId: string, limit: number): QuotaExceededError | undefined {
    if (!(err instanceof DailyQueriesUsedUpError)) return undefined;
    const { day, resetsAt } = utcDay(this.now());
    const used = err.used;
    this.exhausted.set(tenantId, { day, used });
    return refusal(tenantId, limit, used, resetsAt);
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
