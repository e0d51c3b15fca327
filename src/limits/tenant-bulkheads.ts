import { ConcurrencyLimitError } from "../errors.js";

interface Compartment {
  /** Operations admitted and not yet finished (running or queued). */
  inFlight: number;
  /** Operations holding one of the tenant's connection slots. */
  running: number;
  /** Queued operations, first come first served. */
  queue: (() => void)[];
}

/**
 * Concurrency bulkheads: each tenant may have `maxConcurrent` operations in flight (more are refused
 * at once, not queued without end), and at most `connectionSlots` of them use a database connection at
 * a time — the rest wait in the tenant's own queue. A tenant that floods therefore queues behind
 * itself and can hold at most its share of the pool; other tenants always find connections.
 */
export class TenantBulkheads {
  private readonly compartments = new Map<string, Compartment>();

  /** @param connectionSlots connections one tenant may hold at once (its fair share of the pool) */
  constructor(readonly connectionSlots: number) {}

  /** Admits one operation; resolves when it may use the database, with the function that ends it. */
  async enter(tenantId: string, maxConcurrent: number): Promise<() => void> {
    let c = this.compartments.get(tenantId);
    if (!c) this.compartments.set(tenantId, (c = { inFlight: 0, running: 0, queue: [] }));
    if (c.inFlight >= maxConcurrent) throw new ConcurrencyLimitError(tenantId, maxConcurrent);
    c.inFlight++;
    if (c.running < this.connectionSlots) c.running++;
    else await new Promise<void>((resolve) => c.queue.push(resolve));
    let done = false;
    return () => {
      if (done) return;
      done = true;
      c.inFlight--;
      // The slot passes straight to the next queued operation.
      const next = c.queue.shift();
      if (next) next();
      else c.running--;
      if (c.inFlight === 0) this.compartments.delete(tenantId);
    };
  }

  /** Operations the tenant has in flight now. */
  inFlight(tenantId: string): number {
    return this.compartments.get(tenantId)?.inFlight ?? 0;
  }
}
