import { QuotaExceededError } from "../errors.js";
import { DailyQueriesUsedUpError, type DailyQueryCount } from "../stores/store.js";

/** The UTC day of `ms` (`2026-11-27`) and the midnight that ends it. */
export function utcDay(ms: number): { day: string; resetsAt: Date } {
  const d = new Date(ms);
  return { day: d.toISOString().slice(0, 10), resetsAt: new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)) };
}

/**
 * One query's admission. With `count`, the store counts the query (and takes a lease of more)
 * before it searches, and the data manager reports what it counted through `counted`; without,
 * the query is spent from this instance's lease and the store counts nothing.
 */
export interface QueryAdmission {
  count?: DailyQueryCount;
  /** What the store counted: the day's count after, and how many queries it granted (this one included). */
  counted(queriesToday: number, granted: number): void;
  /** The tenant's queries today as far as this instance knows (counted, less its own not yet spent). */
  usedToday(): number | undefined;
}

/** Most queries one count takes at once; and never more than a tenth of what is left of the day. */
export const MAX_DAILY_QUERY_LEASE = 20;

interface Lease {
  day: string;
  limit: number;
  /** Counted in the database, not spent yet by this instance. */
  left: number;
  /** The day's count in the database when this instance last counted. */
  known: number;
}

/**
 * Queries per tenant per UTC day, counted by the store with one atomic conditional increment —
 * never past the limit however many instances share the database. pgvector makes the increment in
 * the same round trip and transaction as the query itself; a store without transactions makes it
 * in the catalogue first. When the day is used up the search never runs.
 *
 * The count is leased: one count takes up to MAX_DAILY_QUERY_LEASE queries (at most a tenth of
 * what is left of the day, at least one), and this instance spends the rest from memory, so the
 * database is written once per lease instead of once per query. What an instance has not spent it
 * gives back when it closes; an instance that crashes loses at most its leases (each under 20
 * queries of that tenant's day), and another instance may refuse a tenant while one still holds a
 * lease of it (at most a tenth of what was left). A query the database refuses while queries racing
 * it have just leased some spends one of those instead: within one instance the quota is exact.
 * Once a tenant's day is used up this instance refuses from memory until midnight UTC (or until
 * the tenant's quota changes), so refusals cost no database work.
 */
export class DailyQueryQuota {
  private readonly exhausted = new Map<string, { day: string; used: number }>();
  private readonly leases = new Map<string, Lease>();
  /** Counts in flight per tenant (each settles once its query has reported what it counted). */
  private readonly counting = new Map<string, Set<Promise<void>>>();

  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Runs one query of the tenant within its daily quota: `fn` gets the admission and makes the
   * count it asks for. Throws `QuotaExceededError` if this instance knows the day is used up.
   */
  async run<T>(tenantId: string, limit: number, fn: (admission: QueryAdmission) => Promise<T>): Promise<T> {
    const admission = this.admit(tenantId, limit);
    let settle = admission.count ? this.startCount(tenantId) : () => {};
    try {
      return await fn(admission);
    } catch (err) {
      if (!(err instanceof DailyQueriesUsedUpError) || !admission.count) throw err;
      // Counts racing this one may have leased what the database now refuses: spend one of those.
      settle();
      settle = () => {};
      await this.countsSettled(tenantId);
      const spare = this.spend(tenantId, admission.count.day, limit);
      if (!spare) throw err;
      return await fn(spare);
    } finally {
      settle();
    }
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

  /** Queries of the tenant's day this instance has counted in leases and not spent yet (still its to spend). */
  unspent(tenantId: string): number {
    const lease = this.leases.get(tenantId);
    return lease && lease.day === utcDay(this.now()).day ? lease.left : 0;
  }

  /** Queries counted by this instance's leases and not spent, to give back when it closes; forgotten here. */
  takeUnspent(): { tenantId: string; day: string; queries: number }[] {
    const today = utcDay(this.now()).day;
    const unspent = [...this.leases].filter(([, l]) => l.left > 0 && l.day === today).map(([tenantId, l]) => ({ tenantId, day: l.day, queries: l.left }));
    this.leases.clear();
    return unspent;
  }

  private admit(tenantId: string, limit: number): QueryAdmission {
    const { day, resetsAt } = utcDay(this.now());
    const known = this.exhausted.get(tenantId);
    if (known?.day === day) throw refusal(tenantId, limit, known.used, resetsAt);
    const spent = this.spend(tenantId, day, limit);
    if (spent) return spent;
    const lease = this.leases.get(tenantId);
    const before = lease?.day === day ? lease.known : 0;
    const n = Math.max(1, Math.min(MAX_DAILY_QUERY_LEASE, Math.ceil((limit - before) / 10)));
    return {
      count: { day, limit, lease: n },
      counted: (queriesToday, granted) => {
        const current = this.leaseOf(tenantId, day, limit);
        current.left += Math.max(0, granted - 1);
        current.known = Math.max(current.known, queriesToday);
      },
      usedToday: () => this.usedToday(tenantId, day),
    };
  }

  /** One query from the tenant's lease of today, if it has one left. */
  private spend(tenantId: string, day: string, limit: number): QueryAdmission | undefined {
    const lease = this.currentLease(tenantId, day, limit);
    if (!lease || lease.left <= 0) return undefined;
    lease.left--;
    return { counted: () => {}, usedToday: () => this.usedToday(tenantId, day) };
  }

  private leaseOf(tenantId: string, day: string, limit: number): Lease {
    let lease = this.currentLease(tenantId, day, limit);
    if (!lease) this.leases.set(tenantId, (lease = { day, limit, left: 0, known: 0 }));
    return lease;
  }

  /** The tenant's lease of `day` under `limit`; a lease of another day or limit is dropped (it stays counted). */
  private currentLease(tenantId: string, day: string, limit: number): Lease | undefined {
    const lease = this.leases.get(tenantId);
    if (lease && (lease.day !== day || lease.limit !== limit)) this.leases.delete(tenantId);
    return lease?.day === day && lease.limit === limit ? lease : undefined;
  }

  private usedToday(tenantId: string, day: string): number | undefined {
    const lease = this.leases.get(tenantId);
    return lease?.day === day ? lease.known - lease.left : undefined;
  }

  /** Marks a count in flight for the tenant; returns its settle (idempotent). */
  private startCount(tenantId: string): () => void {
    let inFlight = this.counting.get(tenantId);
    if (!inFlight) this.counting.set(tenantId, (inFlight = new Set()));
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    inFlight.add(settled);
    return () => {
      settle();
      inFlight.delete(settled);
      if (inFlight.size === 0 && this.counting.get(tenantId) === inFlight) this.counting.delete(tenantId);
    };
  }

  /** Resolves once every count of the tenant in flight now has settled (not those started later: no starving). */
  private async countsSettled(tenantId: string): Promise<void> {
    await Promise.all([...(this.counting.get(tenantId) ?? [])]);
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
