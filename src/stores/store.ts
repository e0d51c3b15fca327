import type { Metric } from "../config.js";
import type { Queryable, Transaction } from "../db/db.js";
import { QuotaExceededError } from "../errors.js";
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
  /** Most namespaces one shared index may hold in this store (the plan's limit), if it has one. */
  readonly maxNamespacesPerIndex?: number;
  /**
   * Writes commit with the catalogue's transaction (pgvector). Without, a batch is written in
   * several remote requests and the catalogue's counters commit after the store acknowledged.
   */
  readonly transactional: boolean;
  /** Namespaces get an ANN index once they outgrow exact search (`buildAnnIndex`); false when the store always has one. */
  readonly annIndexes: boolean;
  /** Small tenants can share one table, keyed by tenant (a pool, `BULKHEAD_SMALL_TENANTS=pool`). */
  readonly pools: boolean;
}

/** What an index is: partitioned by tenant (namespaces), one tenant's, or a pool of small tenants' rows. */
export type IndexKind = "shared" | "dedicated" | "pool";

export type Isolation = "namespace" | "dedicated-index" | "pooled";

/** How a tenant in an index of `kind` is isolated. */
export const isolationOf = (kind: IndexKind): Isolation => (kind === "dedicated" ? "dedicated-index" : kind === "pool" ? "pooled" : "namespace");

/** Where one tenant's vectors live. Resolved by the registry; the only thing data code scopes by. */
export interface Placement {
  readonly tenantId: string;
  /** The store (cell) holding the index: "home" or a configured cell's name. */
  readonly store: string;
  readonly indexId: number;
  readonly index: string;
  readonly namespace: string;
  /** Namespace slot in a shared index; null for a dedicated index or a pool. */
  readonly slot: number | null;
  /** A partition of a shared index, a table of its own, or rows in a pool shared with other small tenants. */
  readonly isolation: Isolation;
  readonly dimension: number;
  readonly metric: Metric;
  /** Whether an ANN (HNSW) index serves this namespace; without one, search is exact. */
  readonly annIndexed: boolean;
  /** How wide the ANN search of this namespace is (HNSW `ef_search`), when tuned for it; null: the store's default. */
  readonly efSearch: number | null;
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
  readonly kind: IndexKind;
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

/**
 * A vector as a move carries it between stores: the vector in pgvector's text form (`[0.1,0.2]`,
 * so a copy between two PostgreSQL stores re-rounds nothing) and when it was last written.
 */
export interface MovedRow {
  id: string;
  embedding: string;
  metadata: Record<string, unknown>;
  updated_at: Date | string;
}

/** One page of a move's copy: rows copied, the cursor after it, and whether the source is exhausted. */
export interface CopiedPage {
  copied: number;
  lastId: string | null;
  done: boolean;
}

/** What an upsert did: records written, how many ids were new to the tenant, and its document count after. */
export interface UpsertOutcome {
  upserted: number;
  added: number;
  documents: number;
  /** The batch was written ahead of the namespace's ANN index: `indexPending` should catch it up. */
  pending?: boolean;
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
  /** Removes a namespace or dedicated index and all its vectors (in a pool: the tenant's rows). */
  dropStorage(tx: Transaction, placement: Placement): Promise<void>;
  /**
   * Online move, step 1: copies up to `limit` of the tenant's vectors with ids after `afterId` from
   * `from` to `to`, in id order, overwriting what `to` holds for them. Idempotent, so a crashed move resumes.
   */
  copyPage(from: Placement, to: Placement, afterId: string | null, limit: number): Promise<CopiedPage>;
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
   * A store with ANN indexes may write it ahead of the namespace's index (`pending` in the outcome)
   * unless `deferIndexing` is false.
   */
  upsert(placement: Placement, records: readonly VectorRecord[], maxDocuments: number, options?: { deferIndexing?: boolean }): Promise<UpsertOutcome>;
  /**
   * The tenant's nearest neighbours. With `count`, up to `count.lease` queries (this one included)
   * are first counted against the tenant's daily quota, atomically with every other instance's
   * counts and never past it; when the day is used up the store throws `DailyQueriesUsedUpError`
   * and the search does not run. `queriesToday` is the count after, `queriesGranted` how many were
   * counted; `readUnits`, what the search cost in a store that reports it (Pinecone), for metering.
   */
  query(placement: Placement, vector: readonly number[], topK: number, filter: MetadataFilter | undefined, count?: DailyQueryCount): Promise<QueryAnswer>;
  /**
   * The same search answered exactly, without the ANN index: what a recall sample compares an ANN
   * answer with (data/recall-sampler.ts). Absent, or undefined, where the placement's store cannot
   * search exactly (Pinecone).
   */
  exactQuery?(placement: Placement, vector: readonly number[], topK: number, filter: MetadataFilter | undefined): Promise<QueryAnswer | undefined>;
  /** Gives back `n` queries of `day` counted by a lease and not spent (an instance closing). */
  releaseDailyQueries(placement: Placement, day: string, n: number): Promise<void>;
  fetch(placement: Placement, ids: readonly string[]): Promise<StoredVector[]>;
  delete(placement: Placement, ids: readonly string[]): Promise<number>;
  /**
   * Deletes the tenant's vectors whose metadata matches `filter` (already checked by
   * `assertSelective`: never empty), counted and change-logged like `delete`; returns how many.
   */
  deleteMatching(placement: Placement, filter: MetadataFilter): Promise<number>;
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
  /**
   * Adds up to `limit` of the vectors written ahead of the namespace's ANN index (an upsert that
   * answered `pending`) to the index, and says how many it added: fewer than `limit` when it caught
   * up. Absent where writes go to the index at once (Pinecone).
   */
  indexPending?(placement: Placement, limit: number): Promise<number>;
}

/** The refusal of a batch that would take the tenant past its document quota (SQLSTATE BHQ01's detail: its count before). */
export function documentQuotaRefusal(tenantId: string, maxDocuments: number, current: number): QuotaExceededError {
  return new QuotaExceededError(
    "maxDocuments",
    maxDocuments,
    current,
    `tenant "${tenantId}" stores ${current} of its ${maxDocuments} documents; this batch would add more than the ${maxDocuments - current} left, so none of it was written`,
  );
}

/** A query to count against the tenant's daily quota: the UTC day (`2026-11-30`) and the quota. */
export interface DailyQueryCount {
  day: string;
  limit: number;
  /** Queries to take at once (this one included): the rest are spent from memory (see `DailyQueryQuota`). */
  lease: number;
}

/** What `query` answers. */
export interface QueryAnswer {
  matches: Match[];
  queriesToday?: number;
  queriesGranted?: number;
  readUnits?: number;
}

/** Thrown by `query` when the tenant's daily quota is used up: `used` queries today, nothing searched. */
export class DailyQueriesUsedUpError extends Error {
  constructor(readonly used: number) {
    super(`the daily query quota is used up (${used} queries today)`);
    this.name = "DailyQueriesUsedUpError";
  }
}

/**
 * What a move needs of a store beyond `VectorStore`: pages read as stored, copies written,
 * the change log drained and the tenant counted under the switch's lock (see `StoreRouter`).
 */
export interface MovableStore extends VectorStore {
  /**
   * Up to `limit` rows after `afterId`, in id order, as stored; `lastId` is where the next page
   * starts and `done` whether nothing follows (a page can hold fewer rows than ids it covered).
   */
  copySource(p: Placement, afterId: string | null, limit: number): Promise<{ rows: MovedRow[]; lastId: string | null; done: boolean }>;
  /** Overwrites `rows` and removes `gone` (in `tx` when the caller holds this store's fence for the tenant). */
  writeCopies(p: Placement, rows: readonly MovedRow[], gone: readonly string[], tx?: Transaction): Promise<void>;
  /**
   * Claims logged ids, reads them (or finds them gone), hands both to `write` with the transaction
   * holding the claim (a target fenced by the same catalogue writes in it), then clears them from the log.
   */
  drainChanges(from: Placement, limit: number, write: (rows: MovedRow[], gone: string[], held: Transaction) => Promise<void>, tx?: Transaction): Promise<number>;
  /** The tenant's vectors in `p`, counted exactly while `tx` holds its fence. */
  countIn(tx: Transaction, p: Placement): Promise<number>;
}

/**
 * A store outside PostgreSQL (Pinecone): fenced, counted and change-logged through the home
 * catalogue, its storage removed by reconciling it with the catalogue after each commit.
 */
export interface RemoteStore extends MovableStore {
  /** Deletes a placement's storage after the catalogue committed its change (no transaction to join). */
  dropStorage(tx: Queryable | undefined, placement: Placement): Promise<void>;
  /** Deletes indexes and namespaces no claim needs. */
  reconcile(claims: readonly CellClaim[], indexes: readonly IndexSpec[]): Promise<ReconcileReport>;
  /** Records the tenant still has anywhere in this store, found by listing: erasure's proof. */
  remaining(tenantId: string): Promise<number>;
  /** Problems with the indexes the catalogue lists in this store (missing, wrong dimension or metric); [] when none. */
  verify(indexes: readonly IndexSpec[]): Promise<string[]>;
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
