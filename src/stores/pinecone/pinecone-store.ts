import { Pinecone, type Index, type RecordMetadata } from "@pinecone-database/pinecone";
import type { Queryable, TenantDb, Transaction } from "../../db/db.js";
import { BulkheadError, MoveConflictError, PlacementMovedError, StoreRejectedError, StoreUnavailableError, ValidationError } from "../../errors.js";
import { catalogueSql as sql } from "../catalogue-sql.js";
import { compileFilter, type MetadataFilter } from "../filter.js";
import {
  DailyQueriesUsedUpError,
  documentQuotaRefusal,
  type CellClaim,
  type CopiedPage,
  type DailyQueryCount,
  type IndexSpec,
  type Match,
  type MovedRow,
  type Placement,
  type QueryAnswer,
  type ReconcileReport,
  type StoredVector,
  type StoreCapabilities,
  type UpsertOutcome,
  type VectorRecord,
  type RemoteStore,
} from "../store.js";

/** What a Pinecone store needs to know: the project, where new indexes go, and its plan's limits. */
export interface PineconeSettings {
  apiKey: string;
  /** Pinecone's control plane; only a stand-in (tests) sets it. Default: the SDK's, api.pinecone.io. */
  controllerHostUrl?: string;
  /** Where serverless indexes are created. */
  cloud: "aws" | "gcp" | "azure";
  region: string;
  /** Index names are `<prefix>-<index id>`; every index with the prefix belongs to this deployment. */
  indexPrefix: string;
  /** Namespaces per serverless index on the plan (Starter 100, Standard 1,000, Enterprise 100,000). */
  maxNamespacesPerIndex: number;
  /** Deadline of each request to Pinecone (a retried request gets it again). */
  timeoutMs: number;
  /** Retries of a call Pinecone answered 5xx (every call Bulkhead makes is idempotent). */
  maxRetries: number;
}

/** Pinecone's published limits that shape calls: records per upsert, ids per fetch, ids per list page. */
const UPSERT_RECORDS = 1000;
const UPSERT_BYTES = 2 * 1024 * 1024 - 64 * 1024; // 2 MB per request, less room for the envelope
const LIST_PAGE = 100;
const DELETE_IDS = 1000;
/** Ids per fetch, and the most characters of ids in one fetch's query string. */
const FETCH_IDS = 100;
const FETCH_URL_CHARS = 6_000;
/** The most a query's filter (with the tenant scope) may be as JSON: larger requests are refused before they are sent. */
const MAX_FILTER_BYTES = 64 * 1024;
/** Most matches one query may return when it asks for ids only (no values, no metadata). */
const QUERY_IDS = 10_000;

/**
 * `filter` (validated with the same rules and limits as every store's) under the tenant's scope,
 * as Pinecone takes it; refused when larger than Pinecone accepts.
 */
function scopedFilter(p: Placement, filter: MetadataFilter | undefined): Record<string, unknown> {
  compileFilter(filter, 1); // throws ValidationError
  const scoped = filter && Object.keys(filter).length > 0 ? { $and: [{ tenant_id: { $eq: p.tenantId } }, filter] } : { tenant_id: { $eq: p.tenantId } };
  if (Buffer.byteLength(JSON.stringify(scoped)) > MAX_FILTER_BYTES) throw new ValidationError("filter", `is larger than the ${MAX_FILTER_BYTES} bytes this store (Pinecone) takes as JSON`);
  return scoped;
}

/** A tenant's restore staging namespace (tenant ids cannot hold ".", so no tenant's namespace is one). */
const staging = (p: Placement): Placement => ({ ...p, namespace: `${p.namespace}.restore` });

/** Ids in batches for GET requests: at most FETCH_IDS, and at most FETCH_URL_CHARS of encoded ids. */
function urlBatches(ids: readonly string[]): string[][] {
  const batches: string[][] = [];
  let batch: string[] = [];
  let chars = 0;
  for (const id of ids) {
    const size = encodeURIComponent(id).length + 5;
    if (batch.length > 0 && (batch.length === FETCH_IDS || chars + size > FETCH_URL_CHARS)) {
      batches.push(batch);
      batch = [];
      chars = 0;
    }
    batch.push(id);
    chars += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/** An error's class name only: what a log line may say of a failure whose message could carry a URL or ids. */
const safeName = (err: unknown) => (err as { code?: string; name?: string })?.code ?? (err as Error)?.name ?? "error";

/**
 * Vectors in Pinecone serverless indexes: a namespace per tenant in a shared index, or a dedicated
 * index. Pinecone cannot join a PostgreSQL transaction, so every data call is fenced by the home
 * catalogue instead, in short catalogue transactions (data-plane role, tenant context proved) and
 * never one held while Pinecone works: the placement epoch is checked after the remote call (and
 * before a write), so a call that raced a move's switch is refused with `PlacementMovedError` and
 * redone on the new placement. The catalogue also keeps the tenant's document counter, daily
 * query count, a move's change log and the record of which ids the tenant has here (`remote_ids`).
 *
 * Tenant scope is never taken from input: the namespace is the placement's, every record carries
 * `tenant_id` in its metadata, every query's filter is ANDed under `tenant_id = <tenant>`, and every
 * row read back is returned with the tenant id it carries (the data manager withholds the answer
 * if any is another's).
 */
export class PineconeStore implements RemoteStore {
  readonly capabilities: StoreCapabilities;
  private readonly pc: Pinecone;
  private readonly indexes = new Map<string, Index<RecordMetadata>>();

  constructor(
    readonly name: string,
    private readonly settings: PineconeSettings,
    /** The home catalogue's data plane: fence, counters and change log of every data call. */
    private readonly catalogue: TenantDb,
    /** The home catalogue's control plane (long deadline): a move's reads and clears of the change log. */
    private readonly mover: TenantDb,
    private readonly warn: (message: string) => void = (m) => console.warn(m),
  ) {
    this.capabilities = Object.freeze({
      rowLevelSecurity: false,
      namespaces: true,
      dedicatedIndexes: true,
      maxBatch: UPSERT_RECORDS,
      maxNamespacesPerIndex: settings.maxNamespacesPerIndex,
      transactional: false,
      annIndexes: false,
      pools: false,
    });
    const timeoutMs = settings.timeoutMs;
    this.pc = new Pinecone({
      apiKey: settings.apiKey,
      ...(settings.controllerHostUrl ? { controllerHostUrl: settings.controllerHostUrl } : {}),
      maxRetries: settings.maxRetries,
      // Every request gets the deadline; the SDK's own retries of a 5xx each get it again, so the
      // call as a whole is bounded by (retries + 1) deadlines plus backoff.
      fetchApi: (url: string | URL, init?: RequestInit) => fetch(url, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs) }),
    } as ConstructorParameters<typeof Pinecone>[0]);
  }

  /** The Pinecone index name of a Bulkhead index: derived from its integer id, never from input. */
  indexName(p: { indexId: number }): string {
    return `${this.settings.indexPrefix}-${p.indexId}`;
  }

  async createIndex(_tx: Queryable, index: IndexSpec): Promise<void> {
    await this.remote("creating an index", async () => {
      try {
        await this.pc.createIndex({
          name: this.indexName({ indexId: index.id }),
          dimension: index.dimension,
          metric: index.metric,
          spec: { serverless: { cloud: this.settings.cloud, region: this.settings.region } },
          waitUntilReady: true,
          timeout: Math.ceil(this.settings.timeoutMs / 1000) * 10,
          tags: { bulkhead: this.settings.indexPrefix },
        });
      } catch (err) {
        // Left by a provisioning whose catalogue transaction rolled back: same id, so same shape — reuse it.
        if ((err as Error).name !== "PineconeConflictError") throw err;
        const existing = await this.pc.describeIndex(this.indexName({ indexId: index.id }));
        if (existing.dimension !== index.dimension || existing.metric !== index.metric) throw err;
      }
    });
  }

  /**
   * Namespaces appear on first upsert. Whatever the namespace still holds is left over from an
   * earlier placement of this tenant id that reconciliation has not removed yet: deleted first.
   */
  async createNamespace(_tx: Queryable, p: Placement): Promise<void> {
    if (p.slot !== null) await this.dropNamespace(p);
  }

  /**
   * Deletes a placement's storage: the tenant's namespace (and any restore staging) in a shared
   * index, or the dedicated index. Called after the catalogue committed the change; reconciliation
   * is the backstop when this fails.
   */
  async dropStorage(_tx: Queryable | undefined, p: Placement): Promise<void> {
    if (p.slot === null) {
      await this.removeIfThere("deleting an index", () => this.pc.deleteIndex(this.indexName(p)));
      this.indexes.delete(this.indexName(p));
      return;
    }
    await this.dropNamespace(p);
    await this.dropNamespace(staging(p));
  }

  /**
   * 1. In the catalogue (fenced, committed): the batch's ids recorded — those new to the tenant are
   *    counted against its quota (refused whole past it) — and, during a move, logged.
   * 2. The records written to Pinecone (idempotent; several requests past 1,000 records or 2 MB).
   * 3. In the catalogue again: the placement checked once more (a move that switched meanwhile
   *    means the write is redone on the new placement), and logged again during a move.
   * No catalogue transaction is held while Pinecone works. If the write fails, the new ids of the
   * records not written are forgotten again (the error carries `written`: how many were).
   */
  async upsert(p: Placement, records: readonly VectorRecord[], maxDocuments: number): Promise<UpsertOutcome> {
    const ids = JSON.stringify(records.map((r) => r.id));
    const logged = JSON.stringify(records.map((r) => ({ id: r.id })));
    const { added, documents } = await this.fenced(p, async (tx) => {
      const fresh = new Set((await tx.query<{ id: string }>(sql.recordIds, [p.tenantId, ids])).map((r) => r.id));
      let documents: number;
      try {
        documents = (await tx.query<{ documents: number }>(sql.addDocuments, [p.tenantId, fresh.size, maxDocuments]))[0]!.documents;
      } catch (err) {
        if ((err as { code?: string }).code !== "BHQ01") throw err;
        throw documentQuotaRefusal(p.tenantId, maxDocuments, Number((err as { detail?: string }).detail));
      }
      if (p.moving) await tx.query(sql.logUpserted, [p.tenantId, logged]);
      return { added: fresh, documents };
    });
    try {
      await this.write(p, records);
    } catch (err) {
      const written = (err as { written?: number }).written ?? 0;
      const unwritten = records.slice(written).map((r) => r.id).filter((id) => added.has(id));
      if (unwritten.length > 0) {
        await this.fenced(p, async (tx) => {
          await tx.query(sql.forgetIds, [p.tenantId, JSON.stringify(unwritten)]);
          await tx.query(sql.removeDocuments, [p.tenantId, unwritten.length]);
        }, { checked: false }).catch((e) => this.warn(`bulkhead: after a failed write of tenant ${p.tenantId} to store ${this.name}, forgetting its unwritten ids failed (its document count may be high by ${unwritten.length}): ${safeName(e)}`));
      }
      throw err;
    }
    await this.fenced(p, async (tx) => {
      if (p.moving) await tx.query(sql.logUpserted, [p.tenantId, logged]);
    });
    return { upserted: records.length, added: added.size, documents };
  }

  async query(p: Placement, vector: readonly number[], topK: number, filter: MetadataFilter | undefined, count?: DailyQueryCount): Promise<QueryAnswer> {
    const scoped = scopedFilter(p, filter);
    const counted = count && await this.fenced(p, async (tx) => {
      try {
        return (await tx.query<{ queries: number; granted: number }>(sql.leaseDailyQueries, [p.tenantId, count.day, count.limit, count.lease]))[0]!;
      } catch (err) {
        if ((err as { code?: string }).code === "BHQ02") throw new DailyQueriesUsedUpError(Number((err as { detail?: string }).detail));
        throw err;
      }
    });
    let answer;
    try {
      answer = await this.remote("querying", () => this.ns(p).query({ vector: [...vector], topK, filter: scoped, includeMetadata: true }));
      await this.recheck(p);
    } catch (err) {
      // The count committed before Pinecone failed: the lease it took beyond this query goes back
      // (this one stays counted, as a failed query always was), or an outage would spend the day.
      if (count && counted && counted.granted > 1) await this.releaseDailyQueries(p, count.day, counted.granted - 1).catch(() => {});
      throw err;
    }
    const matches = answer.matches.map((m) => ({
      id: m.id,
      // Pinecone reports euclidean as the squared distance; Bulkhead's scores are distances in every store.
      score: p.metric === "euclidean" ? Math.sqrt(m.score ?? 0) : (m.score ?? 0),
      metadata: (m.metadata ?? {}) as Record<string, unknown>,
      tenantId: String((m.metadata as { tenant_id?: unknown } | undefined)?.tenant_id ?? ""),
    }));
    return { matches, queriesToday: counted?.queries, queriesGranted: counted?.granted, readUnits: answer.usage?.readUnits };
  }

  async releaseDailyQueries(p: Placement, day: string, n: number): Promise<void> {
    await this.catalogue.withTenant(p.tenantId, (tx) => tx.query(sql.releaseDailyQueries, [p.tenantId, day, n]));
  }

  /** Read, then the placement checked: a read that raced a switch is redone on the new placement. */
  async fetch(p: Placement, ids: readonly string[]): Promise<StoredVector[]> {
    const rows = await this.fetchRows(p, ids);
    await this.recheck(p);
    return rows;
  }

  /**
   * Deleted in Pinecone first, then forgotten in the catalogue's record (only ids the tenant had
   * count) behind a second placement check: when a move switched meanwhile, nothing is forgotten
   * and the delete is redone on the new placement — counted there once. A failed delete changes no count.
   */
  async delete(p: Placement, ids: readonly string[]): Promise<number> {
    const json = JSON.stringify(ids);
    await this.fenced(p, async (tx) => {
      if (p.moving) await tx.query(sql.logDeleted, [p.tenantId, json]);
    });
    for (let i = 0; i < ids.length; i += DELETE_IDS) await this.remote("deleting", () => this.ns(p).deleteMany({ ids: ids.slice(i, i + DELETE_IDS) as string[] }));
    return this.fenced(p, async (tx) => {
      const gone = (await tx.query<{ id: string }>(sql.forgetIds, [p.tenantId, json])).length;
      if (gone > 0) await tx.query(sql.removeDocuments, [p.tenantId, gone]);
      if (p.moving) await tx.query(sql.logDeleted, [p.tenantId, json]);
      return gone;
    });
  }

  /**
   * Pinecone can delete by filter itself, but would not say which records went — and the
   * catalogue's record of the tenant's ids must (it counts the quota, and moves and backups wait for
   * every recorded id to be readable). So the matches are found by filtered searches for ids only
   * (any probe vector: every match is wanted, in any order) and deleted by id through `delete`, round
   * after round until a search finds nothing not deleted yet. Reads lag writes: a record written a
   * moment before may not be found yet, and stays (delete again).
   */
  async deleteMatching(p: Placement, filter: MetadataFilter): Promise<number> {
    const scoped = scopedFilter(p, filter);
    const probe = Array.from({ length: p.dimension }, (_, i) => (i === 0 ? 1 : 0));
    const done = new Set<string>();
    let deleted = 0;
    for (;;) {
      const answer = await this.remote("querying", () => this.ns(p).query({ vector: probe, topK: QUERY_IDS, filter: scoped, includeMetadata: false, includeValues: false }));
      const ids = answer.matches.map((m) => m.id).filter((id) => !done.has(id));
      if (ids.length === 0) return deleted;
      deleted += await this.delete(p, ids);
      for (const id of ids) done.add(id);
    }
  }

  /** The tenant's ids as the catalogue records them (exact; Pinecone's own statistics lag behind writes). */
  async count(p: Placement): Promise<number> {
    return this.fenced(p, async (tx) => (await tx.query<{ n: number }>(sql.countIds, [p.tenantId]))[0]!.n);
  }

  /**
   * Which records the tenant has is the catalogue's record (exact); their values are read from
   * Pinecone, waiting briefly for any that are not readable yet (see `settledRows`).
   */
  async page(p: Placement, afterId: string | null, limit: number): Promise<StoredVector[]> {
    const ids = await this.fenced(p, async (tx) => (await tx.query<{ id: string }>(sql.pageIds, [p.tenantId, afterId, limit])).map((r) => r.id));
    const rows = await this.settledRows(p, ids, this.recordedIn(p));
    await this.recheck(p);
    return rows;
  }

  /**
   * Pinecone cannot swap a namespace's contents at once. The batches go to a staging namespace
   * first; its listing must then hold exactly what was staged (a failure so far — the backup file
   * failing its re-check, a staging record missing — leaves the tenant untouched). Then the swap:
   * the catalogue's record of the tenant emptied, the live namespace emptied, and the staged
   * records copied in page by page, each page recorded and counted as it lands — so a failure
   * during the swap leaves the tenant partly restored with true counts, the staged copy kept, and
   * says so: restore again. (A write the tenant makes while the swap runs may be replaced by it.)
   */
  async replaceAll(p: Placement, batches: AsyncIterable<readonly VectorRecord[]>): Promise<number> {
    if (p.moving) throw new MoveConflictError(p.tenantId, `tenant "${p.tenantId}" is being moved; finish or roll back the move before replacing its data`);
    const side = staging(p);
    await this.dropNamespace(side);
    let keepStaging = false;
    try {
      let staged = 0;
      for await (const batch of batches) {
        if (batch.length === 0) continue;
        await this.write(side, batch);
        staged += batch.length;
      }
      const listed = await this.countListed(side);
      if (listed !== staged) {
        throw new StoreUnavailableError(this.name, `the restore staged ${staged} records in store ${this.name} (Pinecone) but ${listed} are listed there (still settling, or removed meanwhile); nothing was changed — retry the restore`);
      }
      await this.fenced(p, async (tx) => {
        await tx.query(sql.forgetAllIds, [p.tenantId]);
        await tx.query(sql.setDocumentCount, [p.tenantId, 0]);
      }, { db: this.mover });
      keepStaging = true;
      let restored = 0;
      try {
        await this.dropNamespace(p);
        for await (const page of this.listPages(side)) {
          // Listed in staging, so every one of them must be read: none is "deleted meanwhile".
          await this.write(p, await this.settledRows(side, page, async (missing) => missing));
          await this.fenced(p, async (tx) => {
            await tx.query(sql.recordIds, [p.tenantId, JSON.stringify(page)]);
            await tx.query(sql.restoreDocuments, [p.tenantId, page.length]);
          }, { db: this.mover, checked: false });
          restored += page.length;
        }
      } catch (err) {
        throw new StoreUnavailableError(this.name, `the restore of tenant "${p.tenantId}" failed while swapping in the staged copy (${safeName(err)}): the tenant is partly restored, ${restored} of ${staged} records, counted as such; the staged copy is kept — restore again`);
      }
      keepStaging = false;
      return staged;
    } finally {
      if (!keepStaging) await this.dropNamespace(side).catch((err) => this.warn(`bulkhead: deleting the restore staging namespace of tenant ${p.tenantId} in store ${this.name} failed (reconciliation removes it): ${safeName(err)}`));
    }
  }

  /** Pinecone indexes every record as it is written: there is no index to build. */
  async buildAnnIndex(): Promise<boolean> {
    return false;
  }

  // ---- Moves (see StoreRouter): this store as a move's source or target, through the catalogue's change log.

  async copyPage(from: Placement, to: Placement, afterId: string | null, limit: number): Promise<CopiedPage> {
    const page = await this.copySource(from, afterId, limit);
    await this.writeCopies(to, page.rows, []);
    return { copied: page.rows.length, lastId: page.lastId, done: page.done };
  }

  /** A page of the tenant's recorded ids with their records (the catalogue decides what exists, not a lagging listing). */
  async copySource(p: Placement, afterId: string | null, limit: number): Promise<{ rows: MovedRow[]; lastId: string | null; done: boolean }> {
    const ids = await this.fenced(p, async (tx) => (await tx.query<{ id: string }>(sql.pageIds, [p.tenantId, afterId, limit])).map((r) => r.id), { db: this.mover });
    const rows = (await this.settledRows(p, ids, this.recordedIn(p, undefined, this.mover))).map(toMoved);
    return { rows, lastId: ids.at(-1) ?? afterId, done: ids.length < limit };
  }

  /**
   * Overwrites `rows` and removes `gone` in the target, keeping the catalogue's record of the
   * tenant's ids in step (recorded before writing: a copy that fails is redone, or rolled back).
   */
  async writeCopies(p: Placement, rows: readonly MovedRow[], gone: readonly string[], tx?: Transaction): Promise<void> {
    const record = async (q: Queryable) => {
      if (rows.length > 0) await q.query(sql.recordIds, [p.tenantId, JSON.stringify(rows.map((r) => r.id))]);
      if (gone.length > 0) await q.query(sql.forgetIds, [p.tenantId, JSON.stringify(gone)]);
    };
    if (tx) await tx.inTenant(p.tenantId, () => record(tx));
    else await this.mover.withTenant(p.tenantId, record);
    if (rows.length > 0) await this.write(p, rows.map(fromMoved));
    for (let i = 0; i < gone.length; i += DELETE_IDS) await this.remote("deleting", () => this.ns(p).deleteMany({ ids: gone.slice(i, i + DELETE_IDS) as string[] }));
  }

  catchUp(from: Placement, to: Placement, limit: number): Promise<number> {
    return this.drainChanges(from, limit, (rows, gone, held) => this.writeCopies(to, rows, gone, held));
  }

  async pendingChanges(from: Placement): Promise<number> {
    return this.fenced(from, async (tx) => (await tx.query<{ n: number }>(sql.pendingChanges, [from.tenantId]))[0]!.n, { db: this.mover });
  }

  /** Within this store, the switch's last changes and counts (the registry's transaction holds the tenant). */
  async finishCopy(tx: Transaction, from: Placement, to: Placement): Promise<{ from: number; to: number }> {
    while ((await this.drainChanges(from, 10_000, (rows, gone) => this.writeCopies(to, rows, gone, tx), tx)) > 0);
    return { from: await this.countIn(tx, from), to: await this.countIn(tx, to) };
  }

  /**
   * Claims up to `limit` ids the tenant's writes logged in the catalogue, reads them here (or finds
   * them gone), hands both to `write` and only then clears them from the log. The claim holds the
   * logged ids: a write of one of them that is still between Pinecone and its second catalogue step
   * waits for the claim, so its record can be recorded yet not (or no longer) in Pinecone:
   * - in a catch-up round such ids stay logged for the next round (nothing is decided on them);
   * - at the switch (`tx`) they are copied as gone: that write's second step then finds the
   *   placement switched and redoes it on the target; a write whose acknowledgement Pinecone does
   *   not show yet is caught by the switch's count (listing against the record).
   */
  async drainChanges(from: Placement, limit: number, write: (rows: MovedRow[], gone: string[], held: Transaction) => Promise<void>, tx?: Transaction): Promise<number> {
    const run = async (q: Transaction) => {
      const ids = (await q.query<{ id: string }>(sql.claimChanges, [from.tenantId, limit])).map((r) => r.id);
      if (ids.length === 0) return 0;
      const recorded = new Set((await q.query<{ id: string }>(sql.recordedAmong, [from.tenantId, JSON.stringify(ids)])).map((r) => r.id));
      const rows = (await this.fetchRows(from, [...recorded])).map(toMoved);
      const found = new Set(rows.map((r) => r.id));
      const unsettled = new Set(tx ? [] : [...recorded].filter((id) => !found.has(id)));
      const gone = ids.filter((id) => !found.has(id) && !unsettled.has(id));
      const done = ids.filter((id) => !unsettled.has(id));
      await write(rows, gone, q);
      await q.query(sql.forgetChanges, [from.tenantId, JSON.stringify(done)]);
      return done.length;
    };
    if (tx) return tx.inTenant(from.tenantId, () => run(tx));
    return this.fenced(from, run, { db: this.mover });
  }

  /**
   * The switch's count, by listing every id in Pinecone (what is really there). For the tenant's
   * current placement (the move's source) the listing must also equal the catalogue's record: while
   * Pinecone has not settled, the switch is refused (resume the move later) rather than decided on a lagging read.
   */
  async countIn(tx: Transaction, p: Placement): Promise<number> {
    const listed = await this.countListed(p);
    if (p.moving) {
      const recorded = await tx.inTenant(p.tenantId, async () => (await tx.query<{ n: number }>(sql.countIds, [p.tenantId]))[0]!.n);
      if (recorded !== listed) throw new StoreUnavailableError(this.name, `store ${this.name} (Pinecone) lists ${listed} of the ${recorded} records tenant "${p.tenantId}" has: it has not settled; the move was not switched — resume it shortly`);
    }
    return listed;
  }

  // ---- Reconciliation and erasure: this store agrees with the catalogue.

  /**
   * Deletes what no claim needs: this deployment's indexes (by prefix) the catalogue does not list
   * in this store, and namespaces of its shared indexes no tenant is placed in or moving to.
   */
  async reconcile(claims: readonly CellClaim[], indexes: readonly IndexSpec[]): Promise<ReconcileReport> {
    const report: ReconcileReport = { mirrorsChanged: [], mirrorsDropped: [], storageDropped: [] };
    const wanted = new Map(indexes.map((i) => [this.indexName({ indexId: i.id }), i]));
    const listed = await this.remote("listing indexes", () => this.pc.listIndexes());
    for (const ix of listed.indexes ?? []) {
      if (!ix.name.startsWith(`${this.settings.indexPrefix}-`) || !/^\d+$/.test(ix.name.slice(this.settings.indexPrefix.length + 1))) continue;
      if (wanted.has(ix.name)) continue;
      await this.remote("deleting an index", () => this.pc.deleteIndex(ix.name));
      this.indexes.delete(ix.name);
      report.storageDropped.push(ix.name);
    }
    for (const [name, spec] of wanted) {
      if (spec.kind !== "shared") continue;
      const claimed = new Set(claims.filter((c) => c.indexId === spec.id).map((c) => c.tenant));
      for (const namespace of await this.namespacesOf(name)) {
        // A claimed tenant's own namespace, or its restore being staged (a restore in progress).
        if (claimed.has(namespace) || claimed.has(namespace.replace(/\.restore$/, ""))) continue;
        await this.removeIfThere("deleting a namespace", () => this.index({ indexId: spec.id }).deleteNamespace(namespace));
        report.storageDropped.push(`${name}/${namespace}`);
      }
    }
    return report;
  }

  /** Records of `tenantId` left anywhere in this deployment's indexes, by listing: erasure's proof (0 when erased). */
  async remaining(tenantId: string): Promise<number> {
    const listed = await this.remote("listing indexes", () => this.pc.listIndexes());
    let n = 0;
    for (const ix of listed.indexes ?? []) {
      if (!ix.name.startsWith(`${this.settings.indexPrefix}-`)) continue;
      const index = this.pc.index({ name: ix.name, host: ix.host });
      for (const namespace of [tenantId, `${tenantId}.restore`]) {
        try {
          const page = await this.remote("listing", () => index.namespace(namespace).listPaginated({ limit: LIST_PAGE }));
          n += page.vectors?.length ?? 0;
        } catch (err) {
          // An index deleted since it was listed (another tenant's dedicated index, erased meanwhile) holds nothing.
          if (!(err as { missing?: boolean }).missing) throw err;
        }
      }
    }
    return n;
  }

  /** Reachable, and each index the catalogue lists here exists with the dimension and metric it says. */
  async verify(indexes: readonly IndexSpec[]): Promise<string[]> {
    const problems: string[] = [];
    const listed = new Map(((await this.remote("listing indexes", () => this.pc.listIndexes())).indexes ?? []).map((i) => [i.name, i]));
    for (const spec of indexes) {
      const name = this.indexName({ indexId: spec.id });
      const ix = listed.get(name);
      if (!ix) problems.push(`index ${name} (${spec.name}) is missing`);
      else if (ix.dimension !== spec.dimension || ix.metric !== spec.metric) problems.push(`index ${name} is ${ix.dimension}/${ix.metric}, the catalogue says ${spec.dimension}/${spec.metric}`);
    }
    return problems;
  }

  // ---- Internals.

  /**
   * Runs `fn` in a short catalogue transaction of the tenant behind the placement check (so a
   * switch in progress is waited for, and a stale placement refused with `PlacementMovedError`).
   * Never held across a call to Pinecone on the data path: an embedded database has one connection.
   */
  private async fenced<T>(p: Placement, fn: (tx: Transaction) => Promise<T>, options: { db?: TenantDb; checked?: boolean } = {}): Promise<T> {
    try {
      return await (options.db ?? this.catalogue).withTenant(p.tenantId, async (tx) => {
        if (options.checked !== false) await tx.query(sql.checkPlacement, [p.tenantId, p.epoch]);
        return fn(tx);
      });
    } catch (err) {
      if ((err as { code?: string }).code === "BHP01") throw new PlacementMovedError(p.tenantId);
      throw err;
    }
  }

  /** The placement check alone: before a read (a switch in progress is waited for) and after it (a switch meanwhile means the read may have seen a dropped placement: redone). */
  private recheck(p: Placement): Promise<void> {
    return this.fenced(p, async () => undefined);
  }

  private index(p: { indexId: number }): Index<RecordMetadata> {
    const name = this.indexName(p);
    let index = this.indexes.get(name);
    if (!index) this.indexes.set(name, (index = this.pc.index({ name })));
    return index;
  }

  private ns(p: Placement): Index<RecordMetadata> {
    return this.index(p).namespace(p.namespace);
  }

  /**
   * Upserts in requests of at most 1,000 records and 2 MB, each record measured as the JSON it is
   * sent as. Idempotent (same ids, same values), so a retried request is safe. A failure carries
   * `written`: how many of `records` (in order) had been acknowledged before it.
   */
  private async write(p: Placement, records: readonly VectorRecord[]): Promise<void> {
    let written = 0;
    let chunk: { id: string; values: number[]; metadata: RecordMetadata }[] = [];
    let bytes = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      const batch = chunk;
      chunk = [];
      bytes = 0;
      try {
        await this.remote("writing", () => this.ns(p).upsert({ records: batch }));
      } catch (err) {
        throw Object.assign(err as Error, { written });
      }
      written += batch.length;
    };
    for (const r of records) {
      const record = { id: r.id, values: [...r.values], metadata: r.metadata as RecordMetadata };
      const size = Buffer.byteLength(JSON.stringify(record)) + 1;
      if (size > UPSERT_BYTES) throw Object.assign(new ValidationError("documents", `a record of ${size} bytes as JSON is larger than a Pinecone request may be (${UPSERT_BYTES})`), { written });
      if (chunk.length === UPSERT_RECORDS || bytes + size > UPSERT_BYTES) await flush();
      chunk.push(record);
      bytes += size;
    }
    await flush();
  }

  /** Fetches by id, in GET requests whose query string stays short (ids are up to 512 bytes; URLs are not). */
  private async fetchRows(p: Placement, ids: readonly string[]): Promise<StoredVector[]> {
    const rows: StoredVector[] = [];
    for (const batch of urlBatches(ids)) {
      const answer = await this.remote("reading", () => this.ns(p).fetch({ ids: batch }));
      for (const id of batch) {
        const r = answer.records[id];
        if (!r) continue;
        const metadata = (r.metadata ?? {}) as Record<string, unknown>;
        rows.push({ id, values: r.values ?? [], metadata, tenantId: String(metadata.tenant_id ?? "") });
      }
    }
    return rows;
  }

  /**
   * The records of `ids`, all of them: ids the catalogue records but Pinecone does not return yet
   * (its reads lag its writes) are asked for again, a few times over ~3 s; then the read is refused
   * as not settled — never answered with records missing.
   */
  private async settledRows(p: Placement, ids: readonly string[], recorded: (ids: string[]) => Promise<string[]>): Promise<StoredVector[]> {
    const found = new Map<string, StoredVector>();
    let missing = [...ids];
    for (let attempt = 0; ; attempt++) {
      for (const r of await this.fetchRows(p, missing)) found.set(r.id, r);
      missing = missing.filter((id) => !found.has(id));
      // A record deleted meanwhile is not missing: its delete reached Pinecone before the catalogue forgot it.
      if (missing.length > 0) missing = await recorded(missing);
      if (missing.length === 0) return ids.filter((id) => found.has(id)).map((id) => found.get(id)!);
      if (attempt === 4) throw new StoreUnavailableError(this.name, `store ${this.name} (Pinecone) does not return ${missing.length} record(s) of tenant "${p.tenantId}" yet (its reads lag its writes); retry shortly`);
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }

  /** Which of `ids` the catalogue records as the tenant's, read in `q` or in a transaction of its own. */
  private recordedIn(p: Placement, q?: Queryable, db: TenantDb = this.catalogue): (ids: string[]) => Promise<string[]> {
    const read = async (on: Queryable, ids: string[]) => (await on.query<{ id: string }>(sql.recordedAmong, [p.tenantId, JSON.stringify(ids)])).map((r) => r.id);
    return (ids) => (q ? read(q, ids) : db.withTenant(p.tenantId, (tx) => read(tx, ids)));
  }

  /** Every id listed in a namespace, counted. */
  private async countListed(p: Placement): Promise<number> {
    let n = 0;
    for await (const ids of this.listPages(p)) n += ids.length;
    return n;
  }

  /** A namespace's ids, page by page (Pinecone's bytewise order), from the first to the last. */
  private async *listPages(p: Placement): AsyncGenerator<string[]> {
    for (let token: string | undefined; ; ) {
      const page = await this.remote("listing", () => this.ns(p).listPaginated({ limit: LIST_PAGE, ...(token ? { paginationToken: token } : {}) }));
      const ids = (page.vectors ?? []).flatMap((v) => (v.id ? [v.id] : []));
      if (ids.length > 0) yield ids;
      token = page.pagination?.next;
      if (!token) return;
    }
  }

  private async namespacesOf(indexName: string): Promise<string[]> {
    const stats = await this.remote("describing an index", () => this.pc.index({ name: indexName }).describeIndexStats());
    return Object.keys(stats.namespaces ?? {});
  }

  /**
   * Empties and deletes a namespace. The delete-all goes first: it is a write, ordered after every
   * write Pinecone acknowledged — also those not visible yet, of a namespace that may not even be
   * listed yet (a namespace delete would find nothing and leave them to appear later).
   */
  private async dropNamespace(p: Placement): Promise<void> {
    await this.removeIfThere("emptying a namespace", () => this.ns(p).deleteAll());
    await this.removeIfThere("deleting a namespace", () => this.ns(p).deleteNamespace(p.namespace));
  }

  /**
   * Runs one call to Pinecone; whatever it throws becomes a `StoreUnavailableError` naming the
   * status only (never Pinecone's body). With `missingOk`, a 404 (deleting what is not there) is success.
   */
  private async remote<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw toStoreError(this.name, what, err);
    }
  }

  /** A delete of what may not be there: a 404 is success. */
  private async removeIfThere(what: string, call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (err) {
      const e = toStoreError(this.name, what, err);
      if (!e.missing) throw e;
    }
  }
}

/** A record as a move carries it (Pinecone keeps no write time: the copy is stamped now). */
const toMoved = (r: StoredVector): MovedRow => ({ id: r.id, embedding: JSON.stringify(r.values), metadata: r.metadata, updated_at: new Date().toISOString() });
const fromMoved = (r: MovedRow): VectorRecord => ({ id: r.id, values: JSON.parse(r.embedding) as number[], metadata: r.metadata });

/**
 * Pinecone's errors as Bulkhead's: 429 throttled; a refusal of what was sent (400, 413, 414, 422,
 * 431) `StoreRejectedError`; everything else unavailable; `missing` for a 404. The SDK's error is
 * not kept as the cause: its message holds the request URL (index host, document ids) and
 * Pinecone's body, which no log line may carry.
 */
function toStoreError(store: string, what: string, err: unknown): BulkheadError & { missing: boolean } {
  if (err instanceof BulkheadError) return Object.assign(err, { missing: false });
  const e = err as { name?: string; status?: number; message?: string; cause?: unknown };
  const status = typeof e?.status === "number" ? e.status : (SDK_ERROR_STATUS[e?.name ?? ""] ?? statusIn(e?.message));
  const timedOut = e?.name === "TimeoutError" || e?.name === "AbortError" || (e?.cause as { name?: string } | undefined)?.name === "TimeoutError" || /timed? ?out|aborted/i.test(e?.message ?? "");
  const missing = status === 404 || e?.name === "PineconeNotFoundError";
  if (status === 429) return Object.assign(new StoreUnavailableError(store, `Pinecone throttled ${what} (429); retry shortly`, { throttled: true }), { missing });
  if (status !== undefined && [400, 413, 414, 422, 431].includes(status)) return Object.assign(new StoreRejectedError(store, `store ${store} (Pinecone) refused ${what} (${status}): the request is more than it takes; nothing was written`), { missing });
  const reason = timedOut
    ? "did not answer in time"
    : status
      ? `answered ${status}`
      : e?.name === "PineconeMaxRetriesExceededError"
        ? "kept failing (5xx, retried)"
        : `could not be reached (${e?.name ?? "error"})`;
  return Object.assign(new StoreUnavailableError(store, `store ${store} (Pinecone) ${reason} while ${what}; retry later`), { missing });
}

/** The SDK's error classes for the statuses it maps (others are PineconeUnmappedHttpError, status in the message). */
const SDK_ERROR_STATUS: Record<string, number> = {
  PineconeBadRequestError: 400,
  PineconeAuthorizationError: 401,
  PineconeNotFoundError: 404,
  PineconeMethodNotAllowedError: 405,
  PineconeConflictError: 409,
  PineconeUnprocessableEntityError: 422,
  PineconeInternalServerError: 500,
  PineconeNotImplementedError: 501,
  PineconeUnavailableError: 503,
};

const statusIn = (message: string | undefined) => {
  const m = /Status: (\d{3})/.exec(message ?? "") ?? /status (\d{3})/.exec(message ?? "");
  return m ? Number(m[1]) : undefined;
};
