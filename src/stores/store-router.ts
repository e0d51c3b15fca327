import { HOME_STORE } from "../config.js";
import type { Queryable, Transaction } from "../db/db.js";
import { shown, ValidationError } from "../errors.js";
import type { MetadataFilter } from "./filter.js";
import type { PgvectorCell } from "./pgvector/pgvector-cell.js";
import type { PgvectorStore } from "./pgvector/pgvector-store.js";
import type { CellClaim, CopiedPage, DailyQueryCount, IndexSpec, Match, MovableStore, Placement, QueryAnswer, ReconcileReport, RemoteStore, StoredVector, StoreCapabilities, UpsertOutcome, VectorRecord, VectorStore } from "./store.js";

/**
 * The stores of a deployment behind one `VectorStore`: every call goes to the store its placement
 * (or index) names, so data code never chooses a store itself. Three kinds:
 * - home: pgvector in the home database, in the catalogue's own transactions;
 * - cells: pgvector in other databases, each fenced by its own mirror of the catalogue;
 * - remote stores (Pinecone): fenced, counted and change-logged by the home catalogue.
 * A move between two stores copies through here: pages read on one side, written on the other.
 */
export class StoreRouter implements VectorStore {
  readonly name: string;
  readonly capabilities: StoreCapabilities;

  constructor(
    readonly home: PgvectorStore,
    private readonly cells: ReadonlyMap<string, PgvectorCell>,
    private readonly remotes: ReadonlyMap<string, RemoteStore> = new Map(),
  ) {
    this.name = home.name;
    this.capabilities = home.capabilities;
  }

  /** Every store's name, home first. */
  storeNames(): string[] {
    return [HOME_STORE, ...this.cells.keys(), ...this.remotes.keys()];
  }

  /** Refuses (`ValidationError` naming the known stores) a store that is not configured. */
  assertStore(name: string): void {
    if (name !== HOME_STORE && !this.remotes.has(name)) this.cell(name);
  }

  /** A configured cell; throws a `ValidationError` naming the known stores otherwise. */
  cell(name: string): PgvectorCell {
    const cell = this.cells.get(name);
    if (!cell) throw new ValidationError("store", `no store named ${shown(name)} is configured (stores: ${this.storeNames().join(", ")}; see BULKHEAD_CELLS and BULKHEAD_PINECONE)`);
    return cell;
  }

  /** Whether `name` is a pgvector cell (another database with its own fence), not home or a remote store. */
  isCell(name: string): boolean {
    return this.cells.has(name);
  }

  /**
   * Whether the home catalogue fences `name`'s data calls and keeps its tenants' counters and
   * change logs (home and remote stores), rather than a cell's own mirror.
   */
  fencedAtHome(name: string): boolean {
    return !this.cells.has(name);
  }

  /** The cells, by name. */
  allCells(): PgvectorCell[] {
    return [...this.cells.values()];
  }

  /** The remote stores. */
  allRemotes(): { name: string; store: RemoteStore }[] {
    return [...this.remotes].map(([name, store]) => ({ name, store }));
  }

  /** Names of the stores reconciled with the catalogue after placement changes: cells and remote stores. */
  reconciledStores(): string[] {
    return [...this.cells.keys(), ...this.remotes.keys()];
  }

  /** Makes store `name` (a cell or a remote store) agree with the catalogue's claims on it. */
  reconcile(name: string, claims: readonly CellClaim[], indexes: readonly IndexSpec[]): Promise<ReconcileReport> {
    return (this.remotes.get(name) ?? this.cell(name)).reconcile(claims, indexes);
  }

  /** The store of a placement (or index). */
  of(p: { store: string }): MovableStore {
    return p.store === HOME_STORE ? this.home : (this.remotes.get(p.store) ?? this.cell(p.store).store);
  }

  /** Capabilities of one store. */
  capabilitiesOf(store: string): StoreCapabilities {
    return this.of({ store }).capabilities;
  }

  /** In a cell the index is created in the cell's own transaction (before the caller's commits; an orphan is reconciled away). */
  createIndex(tx: Queryable, index: IndexSpec): Promise<void> {
    return this.isCell(index.store) ? this.cell(index.store).createIndex(index) : this.of(index).createIndex(tx, index);
  }

  createNamespace(tx: Queryable, p: Placement): Promise<void> {
    if (!this.isCell(p.store)) return this.of(p).createNamespace(tx, p);
    return p.slot === null ? Promise.resolve() : this.cell(p.store).createNamespace(p.indexId, p.slot, p.tenantId);
  }

  /** Home only, in the catalogue's transaction: other stores' storage goes after the commit (`dropAfterCommit`). */
  dropStorage(tx: Transaction, p: Placement): Promise<void> {
    if (p.store !== HOME_STORE) return Promise.reject(new Error(`internal: storage in store ${p.store} is dropped after the catalogue commits`));
    return this.home.dropStorage(tx, p);
  }

  /**
   * Storage a committed placement change left: deleted now in a remote store; a cell's goes when
   * the cell is reconciled; home's went in the catalogue's transaction.
   */
  async dropAfterCommit(p: Placement): Promise<void> {
    await this.remotes.get(p.store)?.dropStorage(undefined, p);
  }

  /** Whether `name` is a store outside PostgreSQL (its tenants' ids recorded in the catalogue). */
  isRemote(name: string): boolean {
    return this.remotes.has(name);
  }

  upsert(p: Placement, records: readonly VectorRecord[], maxDocuments: number, options?: { deferIndexing?: boolean }): Promise<UpsertOutcome> {
    return this.of(p).upsert(p, records, maxDocuments, options);
  }

  query(p: Placement, vector: readonly number[], topK: number, filter: MetadataFilter | undefined, count?: DailyQueryCount): Promise<QueryAnswer> {
    return this.of(p).query(p, vector, topK, filter, count);
  }

  async exactQuery(p: Placement, vector: readonly number[], topK: number, filter: MetadataFilter | undefined): Promise<QueryAnswer | undefined> {
    return this.of(p).exactQuery?.(p, vector, topK, filter);
  }
  releaseDailyQueries(p: Placement, day: string, n: number): Promise<void> {
    return this.of(p).releaseDailyQueries(p, day, n);
  }


  fetch(p: Placement, ids: readonly string[]): Promise<StoredVector[]> {
    return this.of(p).fetch(p, ids);
  }

  delete(p: Placement, ids: readonly string[]): Promise<number> {
    return this.of(p).delete(p, ids);
  }

  deleteMatching(p: Placement, filter: MetadataFilter): Promise<number> {
    return this.of(p).deleteMatching(p, filter);
  }

  count(p: Placement): Promise<number> {
    return this.of(p).count(p);
  }

  page(p: Placement, afterId: string | null, limit: number): Promise<StoredVector[]> {
    return this.of(p).page(p, afterId, limit);
  }

  replaceAll(p: Placement, batches: AsyncIterable<readonly VectorRecord[]>): Promise<number> {
    return this.of(p).replaceAll(p, batches);
  }

  buildAnnIndex(p: Placement): Promise<boolean> {
    return this.of(p).buildAnnIndex(p);
  }

  async indexPending(p: Placement, limit: number): Promise<number> {
    return (await this.of(p).indexPending?.(p, limit)) ?? 0;
  }

  async copyPage(from: Placement, to: Placement, afterId: string | null, limit: number): Promise<CopiedPage> {
    if (from.store === to.store) return this.of(from).copyPage(from, to, afterId, limit);
    const page = await this.of(from).copySource(from, afterId, limit);
    await this.of(to).writeCopies(to, page.rows, []);
    return { copied: page.rows.length, lastId: page.lastId, done: page.done };
  }

  catchUp(from: Placement, to: Placement, limit: number): Promise<number> {
    if (from.store === to.store) return this.of(from).catchUp(from, to, limit);
    // When the home catalogue fences both sides (Pinecone ↔ home), the target is written in the
    // source's claim transaction: a second home transaction would wait for it (embedded: one connection).
    const shared = this.fencedAtHome(from.store) && this.fencedAtHome(to.store);
    return this.of(from).drainChanges(from, limit, (rows, gone, held) => this.of(to).writeCopies(to, rows, gone, shared ? held : undefined));
  }

  pendingChanges(from: Placement): Promise<number> {
    return this.of(from).pendingChanges(from);
  }

  /** Within one store only: a switch between stores is the registry's (it spans two databases' transactions). */
  finishCopy(tx: Transaction, from: Placement, to: Placement): Promise<{ from: number; to: number }> {
    if (from.store !== to.store) return Promise.reject(new Error("internal: finishCopy across stores"));
    return this.of(from).finishCopy(tx, from, to);
  }
}
