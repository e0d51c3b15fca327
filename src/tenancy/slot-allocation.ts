import { HOME_STORE, type BulkheadConfig, type Metric } from "../config.js";
import type { Queryable } from "../db/db.js";
import { ValidationError } from "../errors.js";
import type { IndexSpec, StoreCapabilities } from "../stores/store.js";
import { thresholdCount } from "./capacity.js";
import { registrySql as sql } from "./registry-sql.js";

/** A shared index and how many of its namespaces are taken. */
export interface SharedIndexRow {
  id: number;
  name: string;
  store: string;
  dimension: number;
  metric: Metric;
  max_namespaces: number;
  used: number;
}

/** Index names are unique across stores: another store's carry its name, e.g. "cell-2/shared-index-1". */
export const indexName = (store: string, name: string) => (store === HOME_STORE ? name : `${store}/${name}`);

/**
 * Where a tenant's vectors go: a namespace slot in a shared index (provisioning the next index
 * ahead of need) or a dedicated index of its own. Runs inside the registry's transaction, which
 * holds the placement lock, so two placements never take the same slot.
 */
export class SlotAllocation {
  constructor(
    /** Creates an index's storage in its store, and knows each store's limits (the store router). */
    private readonly store: { createIndex(tx: Queryable, index: IndexSpec): Promise<void>; capabilitiesOf(store: string): StoreCapabilities },
    private readonly config: Pick<BulkheadConfig, "dimension" | "metric" | "maxNamespacesPerIndex" | "namespaceProvisionThreshold">,
  ) {}

  /**
   * Picks the oldest shared index of the store with room (or the one named) and its lowest free
   * slot; provisions ahead of need, in that store.
   */
  async claimNamespace(tx: Queryable, store: string, indexName?: string): Promise<[number, number]> {
    const indexes = await tx.query<SharedIndexRow>(sql.sharedIndexes, [this.config.dimension, store]);
    let target = indexes.find((i) => (indexName === undefined ? i.used < i.max_namespaces : i.name === indexName));
    if (indexName !== undefined) {
      if (!target) throw new ValidationError("index", `no shared index named ${JSON.stringify(indexName)} in store ${store} holds dimension ${this.config.dimension} (see capacity)`);
      if (target.used >= target.max_namespaces) throw new ValidationError("index", `${indexName} is full (${target.used} of ${target.max_namespaces} namespaces)`);
    }
    if (!target) target = { ...(await this.provisionSharedIndex(tx, store)), used: 0 };
    const [free] = await tx.query<{ slot: number }>(sql.freeSlot, [target.id, target.max_namespaces]);
    const usedAfter = target.used + 1;
    const roomElsewhere = indexes.some((i) => i.id !== target!.id && i.used < i.max_namespaces);
    if (usedAfter >= thresholdCount(target.max_namespaces, this.config.namespaceProvisionThreshold) && !roomElsewhere) {
      await this.provisionSharedIndex(tx, store);
    }
    return [target.id, free!.slot];
  }

  /**
   * The pool small tenants of `store` start in (`BULKHEAD_SMALL_TENANTS=pool`): one table for all of
   * them, so no capacity to count. Created on first need, under the placement lock.
   */
  async claimPool(tx: Queryable, store: string): Promise<number> {
    const find = async () => (await tx.query<{ id: number }>(sql.poolIndex, [store, this.config.dimension, this.config.metric]))[0]?.id;
    const found = await find();
    if (found !== undefined) return found;
    await tx.query(sql.lockPlacement);
    const raced = await find();
    if (raced !== undefined) return raced;
    const [index] = await tx.query<IndexSpec>(sql.insertIndex, [indexName(store, "pool-1"), "pool", this.config.dimension, this.config.metric, 1, store]);
    await this.store.createIndex(tx, index!);
    return index!.id;
  }

  /** A tenant's own index in `store`; returns its id. */
  async createDedicatedIndex(tx: Queryable, tenantId: string, dimension: number, store: string): Promise<number> {
    const [index] = await tx.query<IndexSpec>(sql.insertIndex, [indexName(store, `dedicated-${tenantId}`), "dedicated", dimension, this.config.metric, 1, store]);
    await this.store.createIndex(tx, index!);
    return index!.id;
  }

  private async provisionSharedIndex(tx: Queryable, store: string): Promise<SharedIndexRow> {
    const [{ n }] = (await tx.query<{ n: number }>(sql.nextSharedNumber, [store])) as [{ n: number }];
    // The configured capacity, within what the store's plan allows (Pinecone: 100 to 100,000 namespaces per index).
    const max = Math.min(this.config.maxNamespacesPerIndex, this.store.capabilitiesOf(store).maxNamespacesPerIndex ?? Infinity);
    const [index] = await tx.query<IndexSpec>(sql.insertIndex, [indexName(store, `shared-index-${n}`), "shared", this.config.dimension, this.config.metric, max, store]);
    await this.store.createIndex(tx, index!);
    return { ...index!, max_namespaces: max, used: 0 };
  }
}
