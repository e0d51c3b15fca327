import { describeError } from "../monitoring/safe-error.js";

/** How long a tenant whose recall sample failed is left out of sampling. */
export const PAUSE_AFTER_FAILURE_MS = 60_000;

/**
 * Per-tenant recall you can watch: a fraction (`rate`) of each tenant's ANN queries is run again
 * exactly, in the background after its answer was sent, and recall@k — the share of the exact top k
 * the ANN answer had — goes to `record` (the monitor's per-tenant window, metric and alert).
 *
 * One exact query at a time per process, and a sample offered while one runs is dropped: the cost is
 * bounded whatever the traffic (an exact query reads the namespace's partition in full; the store
 * cuts it short). A tenant whose sample failed — typically a filter too heavy to run exactly in
 * time — is not sampled again for PAUSE_AFTER_FAILURE_MS, so its queries cannot keep the one slot
 * from its neighbours. A query whose store cannot search exactly (Pinecone) is never sampled.
 */
export class RecallSampler {
  private running: Promise<void> | undefined;
  /** Tenants whose last sample failed, until when they are not sampled. */
  private readonly paused = new Map<string, number>();

  constructor(
    private readonly rate: number,
    private readonly record: (tenantId: string, recall: number) => void,
    private readonly warn: (message: string) => void,
    private readonly random: () => number = Math.random,
    private readonly now: () => number = Date.now,
  ) {}

  /** Offers one answered ANN query: `exact` runs it again exactly and gives the exact top k's ids (undefined: cannot). */
  offer(tenantId: string, annIds: readonly string[], exact: () => Promise<readonly string[] | undefined>): void {
    if (this.rate <= 0 || this.running || this.random() >= this.rate) return;
    const pausedUntil = this.paused.get(tenantId);
    if (pausedUntil !== undefined) {
      if (this.now() < pausedUntil) return;
      this.paused.delete(tenantId);
    }
    this.running = exact()
      .then(
        (ids) => {
          if (!ids || ids.length === 0) return;
          const found = new Set(annIds);
          this.record(tenantId, ids.filter((id) => found.has(id)).length / ids.length);
        },
        (err: unknown) => {
          this.paused.set(tenantId, this.now() + PAUSE_AFTER_FAILURE_MS);
          this.warn(`bulkhead: a recall sample of tenant ${tenantId} failed (not sampled again for ${PAUSE_AFTER_FAILURE_MS / 1000} s): ${describeError(err)}`);
        },
      )
      .finally(() => {
        this.running = undefined;
      });
  }

  /** Waits for the sample in flight, if any (before the database closes). */
  async drain(): Promise<void> {
    await this.running;
  }
}
