import { performance } from "node:perf_hooks";
import { IsolationViolationError, ValidationError } from "../errors.js";
import type { UsageMeter } from "../costs/cost-engine.js";
import { LIMITS } from "../costs/money.js";
import type { Operation, OperationGate } from "../limits/performance-gate.js";
import type { QueryAdmission } from "../limits/daily-query-quota.js";
import type { RateLimitRefusal } from "../limits/rate-limiter.js";
import type { RecallSampler } from "./recall-sampler.js";
import type { PendingIndexer } from "./pending-indexer.js";
import { assertSelective, type MetadataFilter } from "../stores/filter.js";
import type { VectorStore } from "../stores/store.js";
import type { TenantRegistry } from "../tenancy/registry.js";
import type { Tenant } from "../tenancy/tenant.js";
import { validateDocuments, validateIds, validateTopK, validateVector, type DocumentInput, type Limits } from "./validation.js";

type Isolation = Tenant["isolation"];

export interface UpsertResult {
  upserted: number;
  namespace: string;
  index: string;
  isolation: Isolation;
}

export interface QueryOptions {
  /** Matches to return, 1..maxTopK (default 10). */
  topK?: number;
  /** Pinecone-style metadata filter; it can only narrow the tenant's own documents. */
  filter?: MetadataFilter;
  /** Tokens embedded to make `queryVector`, if known: metered as embedding cost. */
  embedTokens?: number;
}

export interface QueryMatch {
  id: string;
  score: number;
  metadata: Record<string, unknown>;
}

export interface QueryResult {
  matches: QueryMatch[];
  namespace: string;
  index: string;
  isolation: Isolation;
  /**
   * Time this call spent on isolation work in the application (tenant resolution, validation,
   * filter compilation, checking every result's owner), measured. Time spent in the performance
   * gate (rate limit, queueing for the tenant's connection share) is in `latencyMs`. The tenant context itself
   * travels in the same round trip as the query; its cost is measured by `bench:storage`.
   */
  overheadMs: number;
  /** Wall time of the whole call. */
  latencyMs: number;
}

export interface FetchedDocument {
  id: string;
  values: number[];
  metadata: Record<string, unknown>;
}

export interface FetchResult {
  documents: FetchedDocument[];
  namespace: string;
  index: string;
}

export interface DeleteResult {
  deleted: number;
  namespace: string;
  index: string;
}

/**
 * The only way to reach tenant data. Every method takes the tenant id first, resolves it to an
 * active tenant and its placement (refusing unknown and suspended tenants), and scopes the store
 * call to that placement; the store in turn runs under the tenant's row-level-security context.
 * Every row that comes back is checked to carry the caller's tenant id. Valid operations pass the
 * performance gate (rate limit, concurrency, daily queries, metrics) when one is given; queries and
 * writes are reported to the usage meter (the cost engine's ledger) when one is given.
 */
export class TenantDataManager {
  constructor(
    private readonly registry: TenantRegistry,
    private readonly store: VectorStore,
    private readonly limits: Limits,
    private readonly meter?: UsageMeter,
    private readonly gate?: OperationGate,
    private readonly recall?: RecallSampler,
    private readonly pendingIndexer?: PendingIndexer,
  ) {}

  /**
   * Inserts or replaces documents. The batch is validated whole and written in one statement:
   * one bad document means nothing is written. `tenant_id` is stamped into each document's metadata.
   */
  async upsertDocuments(tenantId: string, documents: DocumentInput[]): Promise<UpsertResult> {
    const tenant = await this.registry.resolveActive(tenantId);
    const records = validateDocuments(documents, tenant.tenantId, tenant.dimension, tenant.metric, this.limits, this.store.capabilities.maxBatch);
    return this.admit(tenant, "upsert", () =>
      this.registry.withPlacement(tenant, async (current) => {
        const { placement } = current;
        const deferIndexing = this.pendingIndexer?.mayDefer(tenant.tenantId, records.length) ?? false;
        const outcome = await this.store.upsert(placement, records, current.quota.maxDocuments, { deferIndexing });
        this.meter?.meterVectorWrite(tenant.tenantId, outcome.upserted);
        this.gate?.observe(current, { operation: "upsert", documents: outcome.documents });
        // The write is committed: indexing after it must never make it look failed. A failed build is
        // logged by the store; ann_indexed stays false either way and the tenant's next write retries.
        if (!placement.annIndexed) await this.registry.ensureAnnIndex(current, undefined, outcome.documents).catch(() => false);
        if (outcome.pending) this.pendingIndexer?.offer(tenant.tenantId, outcome.upserted);
        return { upserted: outcome.upserted, namespace: placement.namespace, index: placement.index, isolation: placement.isolation };
      }),
      records.length,
    );
  }

  /** Nearest neighbours of `queryVector` among the tenant's own documents. */
  async queryDocuments(tenantId: string, queryVector: number[], options: QueryOptions = {}): Promise<QueryResult> {
    const started = performance.now();
    const tenant = await this.registry.resolveActive(tenantId);
    const vector = validateVector(queryVector, tenant.dimension, "queryVector", tenant.metric);
    const topK = validateTopK(options.topK ?? 10, this.limits);
    if (options.embedTokens !== undefined && (!Number.isSafeInteger(options.embedTokens) || options.embedTokens < 0 || options.embedTokens > LIMITS.tokensPerCall)) {
      throw new ValidationError("embedTokens", `must be a whole number from 0 to ${LIMITS.tokensPerCall}`);
    }
    if (options.filter !== undefined && (typeof options.filter !== "object" || options.filter === null || Array.isArray(options.filter))) {
      throw new ValidationError("filter", "must be an object");
    }
    const validated = performance.now();
    return this.admit(tenant, "query", async (admission) => {
      // Time spent in the gate (rate limit, bulkhead queue) is not isolation work.
      const admitted = performance.now();
      const { placement, matches: rows, queriesToday, queriesGranted, readUnits } = await this.registry.withPlacement(tenant, async ({ placement }) => ({
        placement,
        ...(await this.store.query(placement, vector, topK, options.filter, admission?.count)),
      }));
      if (queriesToday !== undefined) admission?.counted(queriesToday, queriesGranted ?? 1);
      const storeMs = performance.now() - admitted;
      assertOwned(rows, tenant.tenantId, "query");
      // Vectors an earlier process left beside the graph are caught up once this process sees the tenant.
      if (placement.annIndexed) this.pendingIndexer?.offerOnce(tenant.tenantId);
      if (placement.annIndexed && this.recall && this.store.exactQuery) {
        const exactQuery = this.store.exactQuery.bind(this.store);
        this.recall.offer(tenant.tenantId, rows.map((r) => r.id), async () => {
          const exact = await this.registry.withPlacement(tenant, ({ placement: current }) => exactQuery(current, vector, topK, options.filter));
          if (exact) assertOwned(exact.matches, tenant.tenantId, "recall sample");
          return exact?.matches.map((m) => m.id);
        });
      }
      this.meter?.meterVectorQuery(tenant.tenantId, options.embedTokens, readUnits);
      const matches = rows.map((r) => ({ id: r.id, score: r.score, metadata: r.metadata }));
      const finished = performance.now();
      const overheadMs = validated - started + (finished - admitted - storeMs);
      this.gate?.observe(tenant, { operation: "query", overheadMs, dailyQueries: admission?.usedToday() ?? queriesToday });
      return { matches, namespace: placement.namespace, index: placement.index, isolation: placement.isolation, overheadMs, latencyMs: finished - started };
    });
  }

  /** The tenant's documents with these ids; ids it does not have are simply absent. */
  async fetchDocuments(tenantId: string, ids: string[]): Promise<FetchResult> {
    const tenant = await this.registry.resolveActive(tenantId);
    const valid = validateIds(ids, this.limits);
    return this.admit(tenant, "fetch", () =>
      this.registry.withPlacement(tenant, async ({ placement }) => {
        const rows = await this.store.fetch(placement, valid);
        assertOwned(rows, tenant.tenantId, "fetch");
        return { documents: rows.map((r) => ({ id: r.id, values: r.values, metadata: r.metadata })), namespace: placement.namespace, index: placement.index };
      }),
    );
  }

  /**
   * Deletes the tenant's documents with these ids, or those whose metadata matches `{ filter }`
   * (the query filter language; an empty filter, or an empty group in one, is refused rather than
   * read as "everything"). Another tenant's documents are never touched: the filter only narrows
   * the tenant's own.
   *
   * @example
   * await dataManager.deleteDocuments("acme", ["doc-1", "doc-2"]);
   * await dataManager.deleteDocuments("acme", { filter: { source: "handbook.md" } });
   */
  async deleteDocuments(tenantId: string, which: string[] | { filter: MetadataFilter }): Promise<DeleteResult> {
    const tenant = await this.registry.resolveActive(tenantId);
    if (!Array.isArray(which)) {
      const filter = assertSelective(which?.filter);
      return this.admit(tenant, "delete", () =>
        this.registry.withPlacement(tenant, async ({ placement }) => ({ deleted: await this.store.deleteMatching(placement, filter), namespace: placement.namespace, index: placement.index })),
      );
    }
    const valid = validateIds(which, this.limits);
    return this.admit(tenant, "delete", () =>
      this.registry.withPlacement(tenant, async ({ placement }) => ({ deleted: await this.store.delete(placement, valid), namespace: placement.namespace, index: placement.index })),
      valid.length,
    );
  }

  /** Where the tenant's vectors live (index, namespace, isolation, dimension, metric). */
  async describePlacement(tenantId: string): Promise<Pick<Tenant["placement"], "index" | "namespace" | "isolation" | "dimension" | "metric">> {
    const { placement: p } = await this.registry.resolveActive(tenantId);
    return { index: p.index, namespace: p.namespace, isolation: p.isolation, dimension: p.dimension, metric: p.metric };
  }

  /**
   * The door's decision for a tenant's operation, made from its id and its input's declared size
   * before any input is read: the rate limit, then — for `bytes` > 0 — the request-body budget.
   * Null when admitted (the rate point is spent; run the operation inside `withDoorAdmission` so it
   * is not spent twice), or the refusal. A tenant already known to be over its limit is refused
   * from memory. The HTTP service asks this before a request's body is parsed, so refused requests
   * stay cheap for everyone else. Unknown and suspended tenants are refused as in every operation.
   */
  async admitAtDoor(tenantId: string, operation: Operation, bytes: number): Promise<RateLimitRefusal | null> {
    if (!this.gate) return null;
    const tenant = await this.registry.resolveActive(tenantId);
    const refusal = (await this.gate.admitRate?.(tenant, operation)) ?? null;
    if (refusal || bytes <= 0 || !this.gate.admitRequestBytes) return refusal;
    return this.gate.admitRequestBytes(tenant, operation, bytes);
  }

  /** Runs a validated operation through the performance gate, when there is one. */
  private admit<T>(tenant: Tenant, operation: Operation, fn: (admission?: QueryAdmission) => Promise<T>, vectorsWritten?: number): Promise<T> {
    return this.gate ? this.gate.run(tenant, operation, fn, vectorsWritten) : fn();
  }

  /** Number of documents the tenant stores. */
  async countDocuments(tenantId: string): Promise<number> {
    const tenant = await this.registry.resolveActive(tenantId);
    return this.admit(tenant, "count", () => this.registry.withPlacement(tenant, ({ placement }) => this.store.count(placement)));
  }
}

/** The last line of defence: withhold the whole answer if any row belongs to someone else. */
function assertOwned(rows: readonly { tenantId: string; metadata: Record<string, unknown> }[], tenantId: string, op: string): void {
  for (const row of rows) {
    if (row.tenantId !== tenantId || row.metadata.tenant_id !== tenantId) {
      throw new IsolationViolationError(`${op} for tenant "${tenantId}" returned a row of another tenant; the response was withheld`);
    }
  }
}
