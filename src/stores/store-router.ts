import { HOME_STORE } from "../config.js";
import type { Queryable, Row, Statement, Transaction } from "../db/db.js";
import { ValidationError } from "../errors.js";
import type { MetadataFilter } from "./filter.js";
import type { PgvectorCell } from "./pgvector/pgvector-cell.js";
import type { PgvectorStore } from "./pgvector/pgvector-store.js";
import type { IndexSpec, Match, Placement, StoredVector, StoreCapabilities, UpsertOutcome, VectorRecord, VectorStore } from "./store.js";

/**
 * The stores of a deployment behind one `VectorStore`: every call goes to the store its placement
 * (or index) names — the home database's or a cell's — so data code never chooses a database
 * itself. A move between two stores copies through here: pages read on one side, written on the other.
 */
export class StoreRouter implements VectorStore {
  readonly name: string;
  readonly capabilities: StoreCapabilities;

  constructor(
    readonly home: PgvectorStore,
    private readonly cells: ReadonlyMap<string, PgvectorCell>,
  ) {
    this.name = home.name;
    this.capabilities = home.capabilities;
  }

  /** Every store's name, home first. */
  storeNames(): string[] {
    return [HOME_STORE, ...this.cells.keys()];
  }

  /** Refuses (`ValidationError` naming the known stores) a store that is neither home nor a configured cell. */
  assertStore(name: string): void {
    if (name !== HOME_STORE) this.cell(name);
  }

  /** A configured cell; throws a `ValidationError` naming the known stores otherwise. */
  cell(name: string): PgvectorCell {
    const cell = this.cells.get(name);
    if (!cell) throw new ValidationError("store", `no cell named ${JSON.stringify(name)} is configured (stores: ${this.storeNames().join(", ")}; see BULKHEAD_CELLS)`);
    return cell;
  }

  /** The cells, by name. */
  allCells(): PgvectorCell[] {
    return [...this.cells.values()];
  }

  /** The pgvector store of a placement's (or index's) store. */
  of(p: { store: string }): PgvectorStore {
    return p.store === HOME_STORE ? this.home : this.cell(p.store).store;
  }

  /** In a cell the index is created in the cell's own transaction (before the caller's commits; an orphan is reconciled away). */
  createIndex(tx: Queryable, index: IndexSpec): Promise<void> {
    return index.store === HOME_STORE ? this.home.createIndex(tx, index) : this.cell(index.store).createIndex(index);
  }

  createNamespace(tx: Queryable, p: Placement): Promise<void> {
    if (p.store === HOME_STORE) return this.home.createNamespace(tx, p);
    return p.slot === null ? Promise.resolve() : this.cell(p.store).createNamespace(p.indexId, p.slot, p.tenantId);
  }

  /** Home only: a cell's storage is dropped by reconciling the cell once the home catalogue no longer claims it. */
  dropStorage(tx: Queryable, p: Placement): Promise<void> {
    if (p.store !== HOME_STORE) return Promise.reject(new Error(`internal: storage in cell ${p.store} is dropped by reconciling the cell`));
    return this.home.dropStorage(tx, p);
  }

  upsert(p: Placement, records: readonly VectorRecord[], maxDocuments: number): Promise<UpsertOutcome> {
    return this.of(p).upsert(p, records, maxDocuments);
  }

  query(p: Placement, vector: readonly number[], topK: number, filter: MetadataFilter | undefined, first?: Statement): Promise<{ matches: Match[]; firstRows?: Row[] }> {
    return this.of(p).query(p, vector, topK, filter, first);
  }

  fetch(p: Placement, ids: readonly string[]): Promise<StoredVector[]> {
    return this.of(p).fetch(p, ids);
  }

  delete(p: Placement, ids: readonly string[]): Promise<number> {
    return this.of(p).delete(p, ids);
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

  async copyPage(from: Placement, to: Placement, afterId: string | null, limit: number): Promise<{ copied: number; lastId: string | null }> {
    if (from.store === to.store) return this.of(from).copyPage(from, to, afterId, limit);
    const rows = await this.of(from).copySource(from, afterId, limit);
    await this.of(to).writeCopies(to, rows, []);
    return { copied: rows.length, lastId: rows.at(-1)?.id ?? null };
  }

  catchUp(from: Placement, to: Placement, limit: number): Promise<number> {
    if (from.store === to.store) return this.of(from).catchUp(from, to, limit);
    return this.of(from).drainChanges(from, limit, (rows, gone) => this.of(to).writeCopies(to, rows, gone));
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
