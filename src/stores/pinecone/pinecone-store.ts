import { Pinecone, type Index, type RecordMetadata } from "@pinecone-database/pinecone";
import type { Queryable, TenantDb, Transaction } from "../../db/db.js";
import { MoveConflictError, PlacementMovedError, QuotaExceededError, StoreUnavailableError } from "../../errors.js";
import { catalogueSql as sql } from "../catalogue-sql.js";
import { compileFilter, type MetadataFilter } from "../filter.js";
import {
  DailyQueriesUsedUpError,
  type CellClaim,
  type DailyQueryCount,
  type IndexSpec,
  type Match,
  type MovedRow,
  type Placement,
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
  /** Deadline of every call to Pinecone, retries included. */
  timeoutMs: number;
  /** Retries of a call Pinecone answered 5xx (every call Bulkhead makes is idempotent). */
  maxRetries: number;
}

/** Pinecone's published limits that shape calls: records per upsert, ids per fetch, ids per list page. */
const UPSERT_RECORDS = 1000;
const UPSERT_BYTES = 2 * 1024 * 1024 - 64 * 1024; // 2 MB per request, less room for the envelope
const FETCH_IDS = 100;
const LIST_PAGE = 100;
const DELETE_IDS = 1000;

/**
 * Vectors in Pinecone serverless indexes: a namespace per tenant in a shared index, or a dedicated
 * index. Pinecone cannot join a PostgreSQL transaction, so every data call is fenced by the home
 * catalogue instead: a catalogue transaction (data-plane role, tenant context proved) checks the
 * placement epoch and holds the tenant's placement lock shared around the remote call — a move's
 * switch waits for calls in flight and a stale placement is refused, exactly as in pgvector —
 * and keeps the tenant's document counter, daily query count and a move's change log. The remote
 * call runs inside that transaction, so the counters commit only if Pinecone acknowledged it.
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
  /** Where the last page of a namespace listing ended: a page read after `lastId` continues from there. */
  private readonly cursors = new Map<string, string>();

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

  /** Storage outside the catalogue's database is dropped by `reconcile`, after the catalogue commits. */
  dropStorage(): Promise<void> {
    return Promise.reject(new Error(`internal: storage in store ${this.name} is dropped by reconciling it`));
  }

  async upsert(p: Placement, records: readonly VectorRecord[], maxDocuments: number): Promise<UpsertOutcome> {
    return this.fenced(p, true, async (tx) => {
      const existing = await this.existingIds(p, records.map((r) => r.id));
      const added = records.length - existing.size;
      let documents: number;
      try {
        documents = (await tx.query<{ documents: number }>(sql.addDocuments, [p.tenantId, added, maxDocuments]))[0]!.documents;
      } catch (err) {
        if ((err as { code?: string }).code !== "BHQ01") throw err;
        const current = Number((err as { detail?: string }).detail);
        throw new QuotaExceededError("maxDocuments", maxDocuments, current, `tenant "${p.tenantId}" stores ${current} of its ${maxDocuments} documents; this batch would add more than the ${maxDocuments - current} left, so none of it was written`);
      }
      if (p.moving) await tx.query(sql.logUpserted, [p.tenantId, JSON.stringify(records.map((r) => ({ id: r.id })))]);
      await this.write(p, records);
      return { upserted: records.length, added, documents };
    });
  }

  async query(p: Placement, vector: readonly number[], topK: number, filter: MetadataFilter | undefined, count?: DailyQueryCount): Promise<{ matches: Match[]; queriesToday?: number }> {
    compileFilter(filter, 1); // validates it with the same rules and limits as every store; throws ValidationError
    const scoped = filter && Object.keys(filter).length > 0 ? { $and: [{ tenant_id: { $eq: p.tenantId } }, filter] } : { tenant_id: { $eq: p.tenantId } };
    return this.fenced(p, false, async (tx) => {
      let queriesToday: number | undefined;
      if (count) {
        try {
          queriesToday = (await tx.query<{ queries: number }>(sql.countDailyQuery, [p.tenantId, count.day, count.limit]))[0]!.queries;
        } catch (err) {
          if ((err as { code?: string }).code === "BHQ02") throw new DailyQueriesUsedUpError(Number((err as { detail?: string }).detail));
          throw err;
        }
      }
      const answer = await this.remote("querying", () => this.ns(p).query({ vector: [...vector], topK, filter: scoped, includeMetadata: true }));
      const matches = answer.matches.map((m) => ({
        id: m.id,
        // Pinecone reports euclidean as the squared distance; Bulkhead's scores are distances in every store.
        score: p.metric === "euclidean" ? Math.sqrt(m.score ?? 0) : (m.score ?? 0),
        metadata: (m.metadata ?? {}) as Record<string, unknown>,
        tenantId: String((m.metadata as { tenant_id?: unknown } | undefined)?.tenant_id ?? ""),
      }));
      return { matches, queriesToday };
    });
  }

  async fetch(p: Placement, ids: readonly string[]): Promise<StoredVector[]> {
    return this.fenced(p, false, () => this.fetchRows(p, ids));
  }

  async delete(p: Placement, ids: readonly string[]): Promise<number> {
    return this.fenced(p, true, async (tx) => {
      const existing = await this.existingIds(p, ids);
      if (p.moving) await tx.query(sql.logDeleted, [p.tenantId, JSON.stringify(ids)]);
      for (let i = 0; i < ids.length; i += DELETE_IDS) await this.remote("deleting", () => this.ns(p).deleteMany({ ids: ids.slice(i, i + DELETE_IDS) as string[] }));
      if (existing.size > 0) await tx.query(sql.removeDocuments, [p.tenantId, existing.size]);
      return existing.size;
    });
  }

  /** Pinecone's namespace count (describe_index_stats): cheap, and — like everything Pinecone reads — eventually consistent. */
  async count(p: Placement): Promise<number> {
    return this.fenced(p, false, async () => {
      const stats = await this.remote("counting", () => this.index(p).describeIndexStats());
      return stats.namespaces?.[p.namespace]?.recordCount ?? 0;
    });
  }

  async page(p: Placement, afterId: string | null, limit: number): Promise<StoredVector[]> {
    return this.fenced(p, false, async () => this.fetchRows(p, await this.listIds(p, afterId, limit)));
  }

  /**
   * Pinecone cannot swap a namespace's contents at once. The batches go to a staging namespace
   * first (a failure there — the backup file failing its re-check — leaves the tenant untouched);
   * then, with the tenant's writes held, the live namespace is cleared and the staged records
   * copied in, and the staging namespace deleted. A failure during that last copy is reported
   * (nothing acknowledged) and leaves the tenant partly restored: restore again.
   */
  async replaceAll(p: Placement, batches: AsyncIterable<readonly VectorRecord[]>): Promise<number> {
    if (p.moving) throw new MoveConflictError(p.tenantId, `tenant "${p.tenantId}" is being moved; finish or roll back the move before replacing its data`);
    const staging = { ...p, namespace: `${p.namespace}.restore` };
    await this.dropNamespace(staging);
    try {
      let n = 0;
      for await (const batch of batches) {
        if (batch.length === 0) continue;
        await this.write(staging, batch);
        n += batch.length;
      }
      return await this.fenced(p, true, async (tx) => {
        await this.dropNamespace(p);
        for (let after: string | null = null; ; ) {
          const ids = await this.listIds(staging, after, LIST_PAGE);
          if (ids.length === 0) break;
          await this.write(p, await this.fetchRows(staging, ids));
          after = ids.at(-1)!;
        }
        await tx.query(sql.setDocumentCount, [p.tenantId, n]);
        return n;
      });
    } finally {
      await this.dropNamespace(staging).catch((err) => this.warn(`bulkhead: deleting the restore staging namespace of tenant ${p.tenantId} in store ${this.name} failed (reconciliation removes it): ${(err as Error).name}`));
    }
  }

  /** Pinecone indexes every record as it is written: there is no index to build. */
  async buildAnnIndex(): Promise<boolean> {
    return false;
  }

  // ---- Moves (see StoreRouter): this store as a move's source or target, through the catalogue's change log.

  async copyPage(from: Placement, to: Placement, afterId: string | null, limit: number): Promise<{ copied: number; lastId: string | null }> {
    const rows = await this.copySource(from, afterId, limit);
    await this.writeCopies(to, rows, []);
    return { copied: rows.length, lastId: rows.at(-1)?.id ?? null };
  }

  async copySource(p: Placement, afterId: string | null, limit: number): Promise<MovedRow[]> {
    const rows = await this.fenced(p, false, async () => this.fetchRows(p, await this.listIds(p, afterId, Math.min(limit, LIST_PAGE))), this.mover);
    return rows.map(toMoved);
  }

  /** Overwrites `rows` and removes `gone` in the target (idempotent; the catalogue's change log says what to re-copy). */
  async writeCopies(p: Placement, rows: readonly MovedRow[], gone: readonly string[]): Promise<void> {
    if (rows.length > 0) await this.write(p, rows.map(fromMoved));
    for (let i = 0; i < gone.length; i += DELETE_IDS) await this.remote("deleting", () => this.ns(p).deleteMany({ ids: gone.slice(i, i + DELETE_IDS) as string[] }));
  }

  catchUp(from: Placement, to: Placement, limit: number): Promise<number> {
    return this.drainChanges(from, limit, (rows, gone) => this.writeCopies(to, rows, gone));
  }

  async pendingChanges(from: Placement): Promise<number> {
    return this.fenced(from, false, async (tx) => (await tx.query<{ n: number }>(sql.pendingChanges, [from.tenantId]))[0]!.n, this.mover);
  }

  /** Within this store, the switch's last changes and counts (the registry's transaction holds the tenant). */
  async finishCopy(tx: Transaction, from: Placement, to: Placement): Promise<{ from: number; to: number }> {
    while ((await this.drainChanges(from, 10_000, (rows, gone) => this.writeCopies(to, rows, gone), tx)) > 0);
    return { from: await this.countIn(tx, from), to: await this.countIn(tx, to) };
  }

  /**
   * Claims up to `limit` ids the tenant's writes logged in the catalogue, reads them here (or finds
   * them gone), hands both to `write` and only then clears them from the log. In `tx` during the switch.
   */
  async drainChanges(from: Placement, limit: number, write: (rows: MovedRow[], gone: string[], held: Transaction) => Promise<void>, tx?: Transaction): Promise<number> {
    const run = async (q: Transaction) => {
      const ids = (await q.query<{ id: string }>(sql.claimChanges, [from.tenantId, limit])).map((r) => r.id);
      if (ids.length === 0) return 0;
      const rows = (await this.fetchRows(from, ids)).map(toMoved);
      const present = new Set(rows.map((r) => r.id));
      await write(rows, ids.filter((id) => !present.has(id)), q);
      await q.query(sql.forgetChanges, [from.tenantId, JSON.stringify(ids)]);
      return ids.length;
    };
    if (tx) return tx.inTenant(from.tenantId, () => run(tx));
    return this.fenced(from, false, run, this.mover);
  }

  /** The switch's count: exact, by listing every id (describe_index_stats may lag). */
  async countIn(_tx: Transaction, p: Placement): Promise<number> {
    let n = 0;
    for (let after: string | null = null; ; ) {
      const ids = await this.listIds(p, after, LIST_PAGE);
      n += ids.length;
      if (ids.length < LIST_PAGE) return n;
      after = ids.at(-1)!;
    }
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
        if (claimed.has(namespace)) continue;
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
        const page = await this.remote("listing", () => index.namespace(namespace).listPaginated({ limit: LIST_PAGE }));
        n += page.vectors?.length ?? 0;
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
   * Runs `fn` in a catalogue transaction of the tenant that passed the placement check (so it holds
   * the tenant's placement lock shared: a switch waits for it) and, for writes, holds the tenant's
   * write lock (its writes are serialised, so counting new ids cannot race).
   */
  private async fenced<T>(p: Placement, write: boolean, fn: (tx: Transaction) => Promise<T>, db: TenantDb = this.catalogue): Promise<T> {
    try {
      return await db.withTenant(p.tenantId, async (tx) => {
        await tx.query(sql.checkPlacement, [p.tenantId, p.epoch]);
        if (write) await tx.query(sql.lockTenantWrites, [p.tenantId]);
        return fn(tx);
      });
    } catch (err) {
      if ((err as { code?: string }).code === "BHP01") throw new PlacementMovedError(p.tenantId);
      throw err;
    }
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

  /** Upserts in requests of at most 1,000 records and ~2 MB. Idempotent (same ids, same values), so a retried request is safe. */
  private async write(p: Placement, records: readonly VectorRecord[]): Promise<void> {
    let chunk: VectorRecord[] = [];
    let bytes = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      const batch = chunk.map((r) => ({ id: r.id, values: [...r.values], metadata: r.metadata as RecordMetadata }));
      chunk = [];
      bytes = 0;
      await this.remote("writing", () => this.ns(p).upsert({ records: batch }));
    };
    for (const r of records) {
      const size = r.id.length * 3 + r.values.length * 24 + Buffer.byteLength(JSON.stringify(r.metadata));
      if (chunk.length === UPSERT_RECORDS || (chunk.length > 0 && bytes + size > UPSERT_BYTES)) await flush();
      chunk.push(r);
      bytes += size;
    }
    await flush();
  }

  private async fetchRows(p: Placement, ids: readonly string[]): Promise<StoredVector[]> {
    const rows: StoredVector[] = [];
    for (let i = 0; i < ids.length; i += FETCH_IDS) {
      const answer = await this.remote("reading", () => this.ns(p).fetch({ ids: ids.slice(i, i + FETCH_IDS) as string[] }));
      for (const id of ids.slice(i, i + FETCH_IDS)) {
        const r = answer.records[id];
        if (!r) continue;
        const metadata = (r.metadata ?? {}) as Record<string, unknown>;
        rows.push({ id, values: r.values ?? [], metadata, tenantId: String(metadata.tenant_id ?? "") });
      }
    }
    return rows;
  }

  private async existingIds(p: Placement, ids: readonly string[]): Promise<Set<string>> {
    return new Set((await this.fetchRows(p, ids)).map((r) => r.id));
  }

  /**
   * Up to `limit` ids after `afterId`, in Pinecone's (bytewise) order. Pinecone pages with opaque
   * tokens, not ids: the token that followed the previous page is remembered by its last id, so a
   * streaming reader (backup, a move's copy) continues where it was; otherwise the listing starts
   * over and skips to `afterId`.
   */
  private async listIds(p: Placement, afterId: string | null, limit: number): Promise<string[]> {
    const key = (id: string) => `${this.indexName(p)}\u0000${p.namespace}\u0000${id}`;
    let token = afterId === null ? undefined : this.cursors.get(key(afterId));
    const ids: string[] = [];
    const skip = afterId !== null && token === undefined ? Buffer.from(afterId, "utf8") : null;
    for (;;) {
      const page = await this.remote("listing", () => this.ns(p).listPaginated({ limit: LIST_PAGE, ...(token ? { paginationToken: token } : {}) }));
      for (const v of page.vectors ?? []) if (v.id && (!skip || Buffer.compare(Buffer.from(v.id, "utf8"), skip) > 0) && ids.length < limit) ids.push(v.id);
      token = page.pagination?.next;
      if (!token || ids.length >= limit) break;
    }
    if (afterId !== null) this.cursors.delete(key(afterId));
    // Only a page that ended exactly at a page boundary has a token that continues right after it.
    if (token && ids.length > 0 && ids.length === limit && limit === LIST_PAGE) {
      if (this.cursors.size > 1000) this.cursors.clear();
      this.cursors.set(key(ids.at(-1)!), token);
    }
    return ids;
  }

  private async namespacesOf(indexName: string): Promise<string[]> {
    const stats = await this.remote("describing an index", () => this.pc.index({ name: indexName }).describeIndexStats());
    return Object.keys(stats.namespaces ?? {});
  }

  private async dropNamespace(p: Placement): Promise<void> {
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

/** Pinecone's errors as Bulkhead's: 429 throttled, everything else unavailable; `missing` for a 404. */
function toStoreError(store: string, what: string, err: unknown): StoreUnavailableError & { missing: boolean } {
  const e = err as { name?: string; status?: number; message?: string; cause?: unknown };
  const status = typeof e?.status === "number" ? e.status : statusIn(e?.message);
  const timedOut = e?.name === "TimeoutError" || e?.name === "AbortError" || (e?.cause as { name?: string } | undefined)?.name === "TimeoutError";
  if (status === 429) return Object.assign(new StoreUnavailableError(store, `Pinecone throttled ${what} (429); retry shortly`, { throttled: true, cause: err }), { missing: false });
  const reason = timedOut ? "did not answer in time" : status ? `answered ${status}` : `could not be reached (${e?.name ?? "error"})`;
  return Object.assign(new StoreUnavailableError(store, `store ${store} (Pinecone) ${reason} while ${what}; nothing was acknowledged — retry later`, { cause: err }), { missing: status === 404 || e?.name === "PineconeNotFoundError" });
}

const statusIn = (message: string | undefined) => {
  const m = /Status: (\d{3})/.exec(message ?? "") ?? /status (\d{3})/.exec(message ?? "");
  return m ? Number(m[1]) : undefined;
};
