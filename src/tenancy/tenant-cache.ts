/**
 * A small TTL cache with single-flight loading: concurrent misses for one key share one lookup.
 * The registry invalidates entries it changes; the TTL bounds how stale another process's view can be.
 */
export class TenantCache<V> {
  private readonly entries = new Map<string, { value: V | undefined; expires: number }>();
  private readonly loading = new Map<string, Promise<V | undefined>>();
  private generation = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async get(key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const hit = this.entries.get(key);
    if (hit && hit.expires > this.now()) return hit.value;
    let pending = this.loading.get(key);
    if (!pending) {
      const generation = this.generation;
      pending = load()
        .then((value) => {
          // An invalidation during the load means the value may already be stale: don't keep it.
          if (generation === this.generation && this.ttlMs > 0) this.entries.set(key, { value, expires: this.now() + this.ttlMs });
          return value;
        })
        .finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
    }
    return pending;
  }

  invalidate(key: string): void {
    this.generation++;
    this.entries.delete(key);
    this.loading.delete(key);
  }
}
