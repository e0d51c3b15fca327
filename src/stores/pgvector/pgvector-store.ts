import type { BulkheadConfig } from "../../config.js";
import type { LocalSettings, Queryable, Row, Statement, TenantDb, Transaction } from "../../db/db.js";
import { compileFilter, type MetadataFilter } from "../filter.js";
import { MoveConflictError, PlacementMovedError } from "../../errors.js";
import { DailyQueriesUsedUpError, documentQuotaRefusal, type DailyQueryCount, type QueryAnswer, type CopiedPage, type IndexSpec, type Match, type MovedRow, type Placement, type StoredVector, type StoreCapabilities, type UpsertOutcome, type VectorRecord, type MovableStore } from "../store.js";
import { describeError } from "../../monitoring/safe-error.js";
import { METRIC_SQL, rowsJson, sql, vectorLiteral } from "./pgvector-sql.js";

/** Longest an exact search for a recall sample may run. */
const EXACT_SEARCH_TIMEOUT_MS = 1_000;

type StoredRow = { tenant_id: string; id: string; embedding: string; metadata: Record<string, unknown> };


/** SQLSTATE BHQ02 (raised by count_daily_query, its detail the day's count) becomes the typed refusal. */
const dailyQuotaError = (err: unknown) => ((err as { code?: string }).code === "BHQ02" ? new DailyQueriesUsedUpError(Number((err as { detail?: string }).detail)) : err);

/** SQLSTATE BHP01 (raised by check_placement) becomes the typed error data code retries on. */
const placementError = (err: unknown, p: Placement) => ((err as { code?: string }).code === "BHP01" ? new PlacementMovedError(p.tenantId) : err);

type HnswSettings = Pick<BulkheadConfig, "hnswM" | "hnswEfConstruction" | "hnswEfSearch" | "annBuildMemoryMb" | "maxBatchSize" | "dbLongTimeoutMs">;

/** SQLSTATE BHA01 (build_ann_index, migration 11): another transaction is building this table's HNSW index right now. */
const BUILD_IN_PROGRESS = "BHA01";

/**
 * Vectors in PostgreSQL + pgvector. A shared index is a table partitioned by tenant, one
 * partition per namespace; a dedicated index is a table of its own. Small namespaces are searched
 * exactly (every tenant gets exact-search recall); once one outgrows `annIndexThreshold` it gets an
 * HNSW index of its own, so a small tenant's results never depend on a graph built over others.
 */
export class PgvectorStore implements MovableStore {
  readonly name = "postgres";
  readonly capabilities: StoreCapabilities;

  /** The control plane with the long deadline, for the calls that are slow by nature (builds, moves, bulk loads). */
  private readonly slowDb: TenantDb;

  constructor(
    /** Control-plane connections: provisioning, HNSW builds, moves, bulk replaces. */
    control: TenantDb,
    /** Data-plane connections (a role with tenant data only): the tenant's own requests. */
    private readonly data: TenantDb,
    private readonly settings: HnswSettings,
    /** Where failures that do not fail the caller are logged (an HNSW build after a committed write). */
    private readonly warn: (message: string) => void = (m) => console.warn(m),
  ) {
    this.slowDb = control.withTimeout(settings.dbLongTimeoutMs);
    this.capabilities = Object.freeze({ rowLevelSecurity: true, namespaces: true, dedicatedIndexes: true, maxBatch: settings.maxBatchSize, transactional: true, annIndexes: true, pools: true });
  }

  async createIndex(tx: Queryable, index: IndexSpec): Promise<void> {
    // A pool is a plain table like a dedicated index's, holding many tenants' rows.
    await tx.query(sql.createIndex, [index.id, index.dimension, index.kind === "shared"]);
  }

  async createNamespace(tx: Queryable, p: Placement): Promise<void> {
    if (p.slot !== null) await tx.query(sql.createNamespace, [p.indexId, p.slot, p.tenantId]);
  }

  async dropStorage(tx: Transaction, p: Placement): Promise<void> {
    // A pool's table holds other tenants: only this tenant's rows go, in its own context (RLS).
    if (p.isolation === "pooled") return void (await tx.inTenant(p.tenantId, () => tx.query(sql.deleteAll(p), [p.tenantId])));
    await tx.query(sql.dropStorage, [p.indexId, p.slot]);
  }

  async upsert(p: Placement, records: readonly VectorRecord[], maxDocuments: number, options: { deferIndexing?: boolean } = {}): Promise<UpsertOutcome> {
    const json = await rowsJson(records);
    const pending = p.annIndexed && options.deferIndexing !== false;
    try {
      const [, [row]] = (await this.guarded(p, [
        { text: sql.lockTenantWrites, params: [p.tenantId] },
        { text: sql.upsert(p, pending), params: [p.tenantId, json, maxDocuments] },
        ...(p.moving ? [{ text: sql.logUpserted, params: [p.tenantId, json] }] : []),
      ])) as [unknown, { documents: number; added: number }[]];
      return { upserted: records.length, added: row!.added, documents: row!.documents, pending };
    } catch (err) {
      const e = err as { code?: string; detail?: string };
      if (e.code !== "BHQ01") throw err;
      throw documentQuotaRefusal(p.tenantId, maxDocuments, Number(e.detail));
    }
  }

  async query(p: Placement, vector: readonly number[], topK: number, filter: MetadataFilter | undefined, count?: DailyQueryCount): Promise<QueryAnswer> {
    const search = searchStatement(p, vector, topK, filter);
    const settings = this.searchSettings(p);
    // The count runs first in the same transaction (a used-up day aborts it before the search). It
    // is the transaction's only write: its commit need not wait for a WAL flush (a crash forgets at
    // most a fraction of a second of counts; billing relies on the usage ledger).
    const first = count && { text: sql.leaseDailyQueries, params: [p.tenantId, count.day, count.limit, count.lease] };
    let all: Row[][];
    try {
      all = await this.guarded(p, first ? [first, search] : [search], first ? { ...settings, synchronous_commit: "off" } : settings);
    } catch (err) {
      throw dailyQuotaError(err);
    }
    const counted = first ? (all[0]![0] as { queries: number; granted: number }) : undefined;
    let rows = all.at(-1)!;
    // The iterative scan gives up after hnsw.max_scan_tuples (20,000) or its memory: a selective
    // filter whose matches lie far along the graph comes back short, even empty. Short answers of
    // an indexed namespace are searched again exactly (the partition read in full, with the filter),
    // within the request's deadline; the count above already covered this query.
    if (p.annIndexed && rows.length < topK) [rows] = (await this.guarded(p, [searchStatement(p, vector, topK, filter, true)])) as [Row[]];
    return { matches: toMatches(rows), queriesToday: counted?.queries, queriesGranted: counted?.granted };
  }

  async exactQuery(p: Placement, vector: readonly number[], topK: number, filter: MetadataFilter | undefined): Promise<QueryAnswer> {
    // No index scan: the namespace's partition is read in full and every distance computed. Cut
    // short: a sample that costs more (a huge namespace, a heavy filter) is not worth measuring.
    const [rows] = await this.guarded(p, [searchStatement(p, vector, topK, filter, true)], { statement_timeout: String(EXACT_SEARCH_TIMEOUT_MS) });
    return { matches: toMatches(rows!) };
  }

  async releaseDailyQueries(p: Placement, day: string, n: number): Promise<void> {
    await this.data.pipelineAsTenant(p.tenantId, [{ text: sql.releaseDailyQueries, params: [p.tenantId, day, n] }]);
  }

  async fetch(p: Placement, ids: readonly string[]): Promise<StoredVector[]> {
    const [rows] = (await this.guarded(p, [{ text: sql.fetch(p), params: [p.tenantId, JSON.stringify(ids)] }])) as [StoredRow[]];
    return rows.map((r) => ({ id: r.id, values: JSON.parse(r.embedding) as number[], metadata: r.metadata, tenantId: r.tenant_id }));
  }

  async delete(p: Placement, ids: readonly string[]): Promise<number> {
    const json = JSON.stringify(ids);
    const [, [row]] = (await this.guarded(p, [
      { text: sql.lockTenantWrites, params: [p.tenantId] },
      { text: sql.delete(p), params: [p.tenantId, json] },
      ...(p.moving ? [{ text: sql.logDeleted, params: [p.tenantId, json] }] : []),
    ])) as [unknown, { n: number }[]];
    return row!.n;
  }

  async deleteMatching(p: Placement, filter: MetadataFilter): Promise<number> {
    const compiled = compileFilter(filter, 2);
    const [, [row]] = (await this.guarded(p, [
      { text: sql.lockTenantWrites, params: [p.tenantId] },
      { text: sql.deleteMatching(p, compiled.sql), params: [p.tenantId, ...compiled.params] },
    ])) as [unknown, { n: number }[]];
    return row!.n;
  }

  async count(p: Placement): Promise<number> {
    const [[row]] = (await this.guarded(p, [{ text: sql.count(p), params: [p.tenantId] }])) as [{ n: number }[]];
    return row!.n;
  }

  async page(p: Placement, afterId: string | null, limit: number): Promise<StoredVector[]> {
    const [rows] = (await this.guarded(p, [{ text: sql.page(p), params: [p.tenantId, afterId, limit] }])) as [StoredRow[]];
    return rows.map((r) => ({ id: r.id, values: JSON.parse(r.embedding) as number[], metadata: r.metadata, tenantId: r.tenant_id }));
  }

  replaceAll(p: Placement, batches: AsyncIterable<readonly VectorRecord[]>): Promise<number> {
    // A bulk replace writes no change log: the move would miss it.
    if (p.moving) return Promise.reject(new MoveConflictError(p.tenantId, `tenant "${p.tenantId}" is being moved; finish or roll back the move before replacing its data`));
    return this.slowDb.withTenant(p.tenantId, async (tx) => {
      await this.check(tx, p);
      await tx.query(sql.lockTenantWrites, [p.tenantId]);
      await tx.query(sql.deleteAll(p), [p.tenantId]);
      let n = 0;
      for await (const batch of batches) {
        if (batch.length === 0) continue;
        await tx.query(sql.insertBatch(p), [p.tenantId, await rowsJson(batch)]);
        n += batch.length;
      }
      await tx.query(sql.setDocumentCount, [p.tenantId, n]);
      return n;
    });
  }

  /**
   * Builds the namespace's (or dedicated index's) HNSW index. Called after a write committed, so it
   * never fails that write: true when the index exists now; false when another transaction is
   * building it (that one marks it) or the build failed — logged with the ids, and the next write
   * that finds the namespace unindexed tries again. Only a changed placement is thrown (the caller
   * reloads; a move builds its target's index itself).
   */
  async buildAnnIndex(p: Placement): Promise<boolean> {
    // A pool's graph would be built over every pooled tenant's vectors: a pooled tenant that
    // outgrows exact search moves to a namespace instead (the registry's ensureAnnIndex).
    if (p.annIndexed || p.isolation === "pooled") return false;
    try {
      await this.guarded(p, [{ text: sql.buildAnnIndex, params: [p.indexId, p.slot, METRIC_SQL[p.metric].opclass, this.settings.hnswM, this.settings.hnswEfConstruction, this.settings.annBuildMemoryMb] }], undefined, this.slowDb);
      return true;
    } catch (err) {
      if (err instanceof PlacementMovedError) throw err;
      const code = (err as { code?: string }).code;
      if (code === BUILD_IN_PROGRESS) return false;
      this.warn(`bulkhead: building the HNSW index of tenant ${p.tenantId} (index ${p.indexId}${p.slot === null ? "" : `, namespace ${p.slot}`}) failed; the tenant's next write retries it: ${describeError(err)}`);
      return false;
    }
  }

  async indexPending(p: Placement, limit: number): Promise<number> {
    if (!p.annIndexed) return 0;
    // Background work, as builds are: on the control plane's connections, never one of the data
    // plane's that tenants' requests wait for; still in the tenant's context, behind the placement check.
    const [[row]] = (await this.guarded(p, [{ text: sql.indexPending(p), params: [p.tenantId, limit] }], undefined, this.slowDb)) as [{ n: number }[]];
    return row!.n;
  }

  async copyPage(from: Placement, to: Placement, afterId: string | null, limit: number): Promise<CopiedPage> {
    const [[row]] = (await this.guarded(from, [{ text: sql.copyPage(from, to), params: [from.tenantId, afterId, limit] }], undefined, this.slowDb)) as [{ copied: number; last_id: string | null }[]];
    return { copied: row!.copied, lastId: row!.last_id, done: row!.copied < limit };
  }

  catchUp(from: Placement, to: Placement, limit: number): Promise<number> {
    return this.slowDb.withTenant(from.tenantId, async (tx) => {
      await this.check(tx, from);
      return this.applyChanges(tx, from, to, limit);
    });
  }

  async finishCopy(tx: Transaction, from: Placement, to: Placement): Promise<{ from: number; to: number }> {
    // The registry's transaction has no tenant context (RLS hides every row); enter it for exactly this tenant.
    return tx.inTenant(from.tenantId, async () => {
      while ((await this.applyChanges(tx, from, to, 10_000)) > 0);
      const [a] = await tx.query<{ n: number }>(sql.count(from), [from.tenantId]);
      const [b] = await tx.query<{ n: number }>(sql.count(to), [from.tenantId]);
      return { from: a!.n, to: b!.n };
    });
  }

  async pendingChanges(from: Placement): Promise<number> {
    const [[row]] = (await this.guarded(from, [{ text: sql.pendingChanges, params: [from.tenantId] }], undefined, this.slowDb)) as [{ n: number }[]];
    return row!.n;
  }

  /** A move to another store, step 1 on the source: up to `limit` rows after `afterId`, in id order, as stored. */
  async copySource(p: Placement, afterId: string | null, limit: number): Promise<{ rows: MovedRow[]; lastId: string | null; done: boolean }> {
    const [rows] = (await this.guarded(p, [{ text: sql.copySource(p), params: [p.tenantId, afterId, limit] }], undefined, this.slowDb)) as unknown as [MovedRow[]];
    return { rows, lastId: rows.at(-1)?.id ?? afterId, done: rows.length < limit };
  }

  /**
   * A move to another store, on the target: overwrites `rows` and removes `gone`. In `tx` when the
   * caller holds this database's placement lock for the tenant (the switch), else behind the check.
   */
  async writeCopies(p: Placement, rows: readonly MovedRow[], gone: readonly string[], tx?: Transaction): Promise<void> {
    const statements: Statement[] = [];
    if (rows.length > 0) statements.push({ text: sql.writeCopies(p), params: [p.tenantId, JSON.stringify(rows)] });
    if (gone.length > 0) statements.push({ text: sql.removeCopies(p), params: [p.tenantId, JSON.stringify(gone)] });
    if (statements.length === 0) return;
    if (!tx) return void (await this.guarded(p, statements, undefined, this.slowDb));
    await tx.inTenant(p.tenantId, async () => {
      for (const s of statements) await tx.query(s.text, s.params);
    });
  }

  /**
   * A move to another store, catching up on the source: claims up to `limit` logged ids, reads
   * their rows (or finds them deleted), hands both to `write` (the target) and only then clears them
   * from the log, so a failure anywhere leaves them logged for the next round. In `tx` during the switch.
   */
  async drainChanges(from: Placement, limit: number, write: (rows: MovedRow[], gone: string[], held: Transaction) => Promise<void>, tx?: Transaction): Promise<number> {
    const run = async (q: Transaction) => {
      const ids = (await q.query<{ id: string }>(sql.claimChanges, [from.tenantId, limit])).map((r) => r.id);
      if (ids.length === 0) return 0;
      const rows = await q.query<MovedRow>(sql.rowsOf(from), [from.tenantId, JSON.stringify(ids)]);
      const present = new Set(rows.map((r) => r.id));
      await write(rows, ids.filter((id) => !present.has(id)), q);
      await q.query(sql.forgetChanges, [from.tenantId, JSON.stringify(ids)]);
      return ids.length;
    };
    if (tx) return tx.inTenant(from.tenantId, () => run(tx));
    return this.slowDb.withTenant(from.tenantId, async (q) => {
      await this.check(q, from);
      return run(q);
    });
  }

  /** The tenant's vectors in `p`, counted in a transaction that holds the placement lock. */
  countIn(tx: Transaction, p: Placement): Promise<number> {
    return tx.inTenant(p.tenantId, async () => (await tx.query<{ n: number }>(sql.count(p), [p.tenantId]))[0]!.n);
  }

  /** Claims up to `limit` logged ids, then makes `to` equal `from` for them (two statements: see `sql.catchUp`). */
  private async applyChanges(tx: Queryable, from: Placement, to: Placement, limit: number): Promise<number> {
    const ids = (await tx.query<{ id: string }>(sql.claimChanges, [from.tenantId, limit])).map((r) => r.id);
    if (ids.length > 0) await tx.query(sql.catchUp(from, to), [from.tenantId, JSON.stringify(ids)]);
    return ids.length;
  }

  /**
   * Runs statements in one tenant transaction behind the placement check: they wait while the
   * tenant's placement is being switched and never run against a placement that is no longer current.
   */
  private async guarded(p: Placement, statements: readonly Statement[], settings?: LocalSettings, db: TenantDb = this.data): Promise<Row[][]> {
    try {
      const [, ...rows] = await db.pipelineAsTenant(p.tenantId, [{ text: sql.checkPlacement, params: [p.tenantId, p.epoch] }, ...statements], settings);
      return rows;
    } catch (err) {
      throw placementError(err, p);
    }
  }

  private async check(tx: Queryable, p: Placement): Promise<void> {
    try {
      await tx.query(sql.checkPlacement, [p.tenantId, p.epoch]);
    } catch (err) {
      throw placementError(err, p);
    }
  }

  private searchSettings(p: Placement): LocalSettings | undefined {
    if (!p.annIndexed) return undefined;
    return {
      // An HNSW scan yields at most ef_search rows, and fewer reach the query when some are
      // filtered out: by a metadata filter, or as dead versions of re-upserted vectors not vacuumed
      // yet (every re-upsert leaves some in the graph). The iterative scan (pgvector 0.8) keeps
      // walking the graph, in exact distance order, until the query has its topK rows.
      "hnsw.ef_search": String(p.efSearch ?? this.settings.hnswEfSearch),
      "hnsw.iterative_scan": "strict_order",
      // A namespace has an HNSW index because exact search got too slow for it, but pgvector costs
      // HNSW scans of tables this small above a full scan: on the benchmark the planner scanned
      // 6,000 vectors exactly (12 ms p50) instead of using the index (3 ms). Steer it, for this
      // transaction only.
      enable_seqscan: "off",
      enable_bitmapscan: "off",
    };
  }
}

/** The search statement of a query (its filter compiled after the three fixed parameters). */
function searchStatement(p: Placement, vector: readonly number[], topK: number, filter: MetadataFilter | undefined, exact = false): Statement {
  const compiled = compileFilter(filter, 4);
  return { text: sql.query(p, compiled.sql, exact), params: [p.tenantId, vectorLiteral(vector), topK, ...compiled.params] };
}

function toMatches(rows: Row[]): Match[] {
  return (rows as { tenant_id: string; id: string; metadata: Record<string, unknown>; score: number }[]).map((r) => ({ id: r.id, score: Number(r.score), metadata: r.metadata, tenantId: r.tenant_id }));
}
