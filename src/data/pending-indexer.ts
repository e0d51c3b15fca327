import { performance } from "node:perf_hooks";
import { TenantNotFoundError } from "../errors.js";
import { describeError } from "../monitoring/safe-error.js";

/** Vectors added to a namespace's ANN index per transaction: 200 take ~0.3 s of one server connection at 384 d. */
export const PENDING_BATCH = 200;

/**
 * The same on the embedded database, where one statement runs at a time for every tenant: 25 take
 * ~50 ms at 384 d (200 took 0.76 s), the longest a neighbour's request waits behind a batch.
 */
export const PENDING_BATCH_EMBEDDED = 25;

/**
 * Catches namespaces' ANN indexes up with the vectors written ahead of them. Once a namespace has
 * its HNSW graph, an upsert is acknowledged without inserting into it (the store keeps the vectors
 * aside, searched exactly meanwhile) and offers the tenant here; `step` then adds one batch of them
 * to the graph and says how many it added.
 *
 * One batch at a time per process, tenants in turn: a tenant with more left goes to the back of
 * the line, so one tenant's bulk load never holds up another's catching up by more than a batch.
 * After each batch it rests as long as the batch took, so catching up takes at most half of one
 * database connection's time however large the backlog. A failed batch is logged with the tenant's
 * id and the tenant left out until its next write offers it again; its vectors stay searchable.
 * Vectors left waiting when a process stops are caught up after the tenant's first search or write
 * in the next one.
 */
export class PendingIndexer {
  /** Tenants with vectors waiting, in turn order. */
  private readonly waiting = new Set<string>();
  /** How many vectors of each tenant this process wrote beside the graph and has not indexed yet. */
  private readonly backlog = new Map<string, number>();
  /** Tenants offered since this process started (`offerOnce`). */
  private readonly seen = new Set<string>();
  private running: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly step: (tenantId: string, limit: number) => Promise<number>,
    private readonly warn: (message: string) => void,
    private readonly batch = PENDING_BATCH,
    private readonly maxBacklog = Number.POSITIVE_INFINITY,
  ) {}

  /**
   * Whether `n` more vectors of the tenant may wait beside its graph. Past `maxBacklog`
   * (`BULKHEAD_MAX_PENDING_VECTORS`) they are written into the graph directly, as slowly as that is:
   * the exact scan of a namespace's waiting vectors, which each of its searches pays, stays bounded
   * however much faster than the indexer a tenant writes. Counted per process.
   */
  mayDefer(tenantId: string, n: number): boolean {
    return (this.backlog.get(tenantId) ?? 0) + n <= this.maxBacklog;
  }

  /** A write left `vectors` of `tenantId` outside its index. */
  offer(tenantId: string, vectors = 0): void {
    if (this.closed) return;
    this.seen.add(tenantId);
    if (vectors > 0) this.backlog.set(tenantId, (this.backlog.get(tenantId) ?? 0) + vectors);
    this.waiting.add(tenantId);
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
  }

  /**
   * The tenant's first search in this process: vectors an earlier process left beside the graph
   * (it stopped before catching up) are caught up without waiting for the tenant's next write.
   */
  offerOnce(tenantId: string): void {
    if (this.seen.has(tenantId)) return;
    this.seen.add(tenantId);
    this.offer(tenantId);
  }

  /**
   * The tenant changed (erased, registered again, moved, suspended; null: any): what this process counted for it
   * no longer describes its namespace. A move copies waiting vectors into the target's graph; an
   * erased tenant's vectors are gone.
   */
  forget(tenantId: string | null): void {
    if (tenantId === null) {
      this.backlog.clear(); // every tenant (the registry could not say which)
      this.seen.clear();
      return;
    }
    this.backlog.delete(tenantId);
    this.seen.delete(tenantId);
  }

  /** Resolves once nothing offered is left to index (or the indexer closed). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stops after the batch in flight; what is left stays searchable and is indexed after the tenant's next write. */
  async close(): Promise<void> {
    this.closed = true;
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      const tenantId = this.waiting.values().next().value;
      if (tenantId === undefined) return;
      this.waiting.delete(tenantId);
      const started = performance.now();
      try {
        const added = await this.step(tenantId, this.batch);
        if (added >= this.batch) {
          this.waiting.add(tenantId);
          this.backlog.set(tenantId, Math.max(0, (this.backlog.get(tenantId) ?? 0) - added));
        } else {
          this.backlog.delete(tenantId); // caught up
        }
      } catch (err) {
        if (err instanceof TenantNotFoundError) this.backlog.delete(tenantId);
        else this.warn(`bulkhead: indexing the vectors tenant ${tenantId} wrote ahead of its HNSW index failed; they stay searchable (exactly) and its next write retries: ${describeError(err)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, performance.now() - started));
    }
  }
}
