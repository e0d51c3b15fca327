import type { Bulkhead } from "../bulkhead.js";
import type { BulkheadClient } from "../client/index.js";

/** A metadata filter as Bulkhead takes it: `{ field: value }`, `$eq`, `$in`, `$gt`… `$and`, `$or`. */
export type BulkheadFilter = Record<string, unknown>;

/** Where an adapter's tenant lives: a Bulkhead in this process and a tenant id, or a client with the tenant's key. */
export type BulkheadTarget = { bulkhead: Bulkhead; tenantId: string } | { client: BulkheadClient };

/** A vector as the adapters write it and read it back. */
export interface TargetRecord {
  id: string;
  values: number[];
  metadata: Record<string, unknown>;
}

/**
 * The data calls the framework adapters make, the same whichever way the tenant is reached: the
 * library's data manager (tenant id fixed here, once) or the HTTP client (tenant fixed by its key).
 * Either way every call passes the tenant's isolation, limits and metering.
 */
export interface TenantCalls {
  upsert(records: TargetRecord[]): Promise<void>;
  query(vector: number[], topK: number, filter?: BulkheadFilter): Promise<{ id: string; score: number; metadata: Record<string, unknown> }[]>;
  delete(which: string[] | { filter: BulkheadFilter }): Promise<number>;
}

/** The data calls of the tenant `target` reaches (see `TenantCalls`). */
export function tenantCalls(target: BulkheadTarget): TenantCalls {
  const withFilter = (topK: number, filter?: BulkheadFilter) => ({ topK, ...(filter && Object.keys(filter).length > 0 ? { filter } : {}) });
  if ("client" in target) {
    const { client } = target;
    return {
      upsert: async (records) => void (await client.upsert(records)),
      query: async (vector, topK, filter) => (await client.query(vector, withFilter(topK, filter))).matches,
      delete: async (which) => (await client.deleteDocuments(which)).deleted,
    };
  }
  const { bulkhead, tenantId } = target;
  return {
    upsert: async (records) => void (await bulkhead.dataManager.upsertDocuments(tenantId, records)),
    query: async (vector, topK, filter) => (await bulkhead.dataManager.queryDocuments(tenantId, vector, withFilter(topK, filter))).matches,
    delete: async (which) => (await bulkhead.dataManager.deleteDocuments(tenantId, which)).deleted,
  };
}
