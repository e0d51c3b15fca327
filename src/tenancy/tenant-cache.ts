/**
 * A TTL cache with single-flight loading: concurrent misses for one key share one lookup.
 * The registry invalidates entries on every change, here and (through the change feed) in every
 * other instance; the TTL only bounds staleness if a change notification is ever missed. While
 * notifications cannot be trusted (feed disconnected), `bypass` turns caching off.
 */
export class TenantCache<V> {
  private readonly entries = new Map<string, { value: V | undefined; expires: number }>();
  private readonly loading = new Map<string, Promise<V | undefined>>();
  private generation = 0;
  /** When true every lookup loads afresh and nothing is kept. */
  bypass = false;

  /**
   * @param keepMisses whether "not found" is cached too. Off where callers choose the keys freely
   *   (API key ids from any request): otherwise random ids would fill the cache.
   */
  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    private readonly keepMisses = true,
  ) {}

  /** Whether `key` has a fresh entry (a hit would not load). */
  has(key: string): boolean {
    const hit = this.entries.get(key);
    return hit !== undefined && hit.expires > this.now() && !this.bypass;
  }

  async get(key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const hit = this.entries.get(key);
    if (hit && hit.expires > this.now() && !this.bypass) return hit.value;
    let pending = this.loading.get(key);
    if (!pending) {
      const generation = this.generation;
      pending = load()
        .then((value) => {
          // An invalidation during the load means the value may already be stale: don't keep it.
          const keep = generation === this.generation && this.ttlMs > 0 && !this.bypass && (value !== undefined || this.keepMisses);
          if (keep) this.entries.set(key, { value, expires: this.now() + this.ttlMs });
          return value;
        })
        .finally(() => {
          if (this.loading.get(key) === pending) this.loading.delete(key);
        });
      this.loading.set(key, pending);
    }
    return pending;
  }

  invalidate(key: string): void {
    this.generation++;
    this.entries.delete(key);
    this.loading.delete(key);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
    this.loading.clear();
  }
}
