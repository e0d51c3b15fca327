import type { Metric } from "../config.js";
import type { Queryable, Row, Statement, Transaction } from "../db/db.js";
import type { MetadataFilter } from "./filter.js";

/** What a store can do; code asks these flags, never `instanceof`. */
export interface StoreCapabilities {
  /** Data is additionally guarded by PostgreSQL row-level security. */
  readonly rowLevelSecurity: boolean;
  /** Many tenants can share one index, each in its own namespace. */
  readonly namespaces: boolean;
  /** A tenant can have an index of its own. */
  readonly dedicatedIndexes: boolean;
  /** Most records one upsert call may carry. */
  readonly maxBatch: number;
}

/** Where one tenant's vectors live. Resolved by the registry; the only thing data code scopes by. */
export interface Placement {
  readonly tenantId: string;
  /** The store (cell) holding the index: "home" or a configured cell's name. */
  readonly store: string;
  readonly indexId: number;
  readonly index: string;
  readonly namespace: string;
  /** Namespace slot in a shared index; null for a dedicated index. */
  readonly slot: number | null;
  readonly isolation: "namespace" | "dedicated-index";
  readonly dimension: number;
  readonly metric: Metric;
  /** Whether an ANN (HNSW) index serves this namespace; without one, search is exact. */
  readonly annIndexed: boolean;
  /**
   * Version of the tenant's placement; every data transaction checks it is still current (and waits
   * while a move switches), so a stale placement is refused with `PlacementMovedError`, never used.
   */
  readonly epoch: number;
  /** A move is copying this tenant elsewhere: writes also log the ids they touch, for it to re-copy. */
  readonly moving: boolean;
}

/** An index as the registry records it. */
export interface IndexSpec {
  readonly id: number;
  readonly name: string;
  /** The store (cell) it lives in. */
  readonly store: string;
  readonly kind: "shared" | "dedicated";
  readonly dimension: number;
  readonly metric: Metric;
}

export interface VectorRecord {
  id: string;
  values: number[];
  metadata: Record<string, unknown>;
}

export interface StoredVector extends VectorRecord {
  tenantId: string;
}

/** What an upsert did: records written, how many ids were new to the tenant, and its document count after. */
export interface UpsertOutcome {
  upserted: number;
  added: number;
  documents: number;
}

export interface Match {
  id: string;
  score: number;
  metadata: Record<string, unknown>;
  tenantId: string;
}

/**
 * A vector store: the physical layer of isolation. Provisioning calls receive the registry's
 * control-plane transaction so a store that lives in PostgreSQL changes placement and storage
 * atomically; a remote store (Pinecone) ignores it. Data calls take a `Placement` and must scope
 * every read and write to it.
 */
export interface VectorStore {
  readonly name: string;
  readonly capabilities: StoreCapabilities;
  createIndex(tx: Queryable, index: IndexSpec): Promise<void>;
  createNamespace(tx: Queryable, placement: Placement): Promise<void>;
  /** Removes a namespace or dedicated index and all its vectors. */
  dropStorage(tx: Queryable, placement: Placement): Promise<void>;
  /**
   * Online move, step 1: copies up to `limit` of the tenant's vectors with ids after `afterId` from
   * `from` to `to`, in id order, overwriting what `to` holds for them. Idempotent, so a crashed move resumes.
   */
  copyPage(from: Placement, to: Placement, afterId: string | null, limit: number): Promise<{ copied: number; lastId: string | null }>;
  /**
   * Online move, step 2: takes up to `limit` ids that writes logged since the move began and makes
   * `to` equal `from` for them (copied again, or removed when deleted). Returns how many it took.
   */
  catchUp(from: Placement, to: Placement, limit: number): Promise<number>;
  /**
   * Online move, the switch: inside the registry's transaction (which holds the tenant's placement
   * lock, so no write is in flight) applies every change still logged and counts both sides.
   */
  finishCopy(tx: Transaction, from: Placement, to: Placement): Promise<{ from: number; to: number }>;
  /** Online move: how many ids writes have logged that the catch-up has not re-copied yet. */
  pendingChanges(from: Placement): Promise<number>;
  /**
   * Writes the batch, all or nothing. Refuses it whole with `QuotaExceededError` when its new ids
   * would take the tenant past `maxDocuments`, atomically with respect to the tenant's other writers.
   */
  upsert(placement: Placement, records: readonly VectorRecord[], maxDocuments: number): Promise<UpsertOutcome>;
  /**
   * The tenant's nearest neighbours. `first`, when given, runs before the search in the same
   * transaction (the daily query count); if it fails, the search does not run. Its rows come back as `firstRows`.
   */
  query(placement: Placement, vector: readonly number[], topK: number, filter: MetadataFilter | undefined, first?: Statement): Promise<{ matches: Match[]; firstRows?: Row[] }>;
  fetch(placement: Placement, ids: readonly string[]): Promise<StoredVector[]>;
  delete(placement: Placement, ids: readonly string[]): Promise<number>;
  count(placement: Placement): Promise<number>;
  /** Up to `limit` of the tenant's vectors with ids after `afterId`, in id order (for streaming exports). */
  page(placement: Placement, afterId: string | null, limit: number): Promise<StoredVector[]>;
  /**
   * Replaces all of the tenant's vectors with `batches`, in one transaction: all or nothing — if
   * the iterable throws (a restore re-checking its file as it goes), nothing changes.
   */
  replaceAll(placement: Placement, batches: AsyncIterable<readonly VectorRecord[]>): Promise<number>;
  /** Builds the ANN index for a namespace that has outgrown exact search. Returns true if one was built. */
  buildAnnIndex(placement: Placement): Promise<boolean>;
}

/** A tenant a cell must hold, as the home database's catalogue says: where, and at which placement epoch. */
export interface CellClaim {
  tenant: string;
  indexId: number;
  slot: number | null;
  epoch: number;
  /** Placed here (true) or the target of a move into or within this cell (false). */
  placed: boolean;
  moving: boolean;
}

/** What `reconcile` changed, for logs and tests. */
export interface ReconcileReport {
  mirrorsChanged: string[];
  mirrorsDropped: string[];
  storageDropped: string[];
}
