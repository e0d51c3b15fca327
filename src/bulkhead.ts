import { loadConfig, type BulkheadConfig, type ConfigSources } from "./config.js";
import type { Db } from "./db/db.js";
import { openDatabase } from "./db/open.js";
import { CostAllocationEngine } from "./costs/cost-engine.js";
import { UsageLedger } from "./costs/usage-ledger.js";
import { ANSWER_OUTPUT_TOKENS, TenantTextManager } from "./text/text-manager.js";
import { TextJobs } from "./text/text-jobs.js";
import type { Embedder } from "./text/embedder.js";
import { OpenAIEmbedder } from "./text/openai-embedder.js";
import { OpenAIChatModel, type ChatModel } from "./text/chat-model.js";
import { countTokens } from "./costs/token-counter.js";
import { describeError } from "./monitoring/safe-error.js";
import { TenantDataManager } from "./data/data-manager.js";
import { RecallSampler } from "./data/recall-sampler.js";
import { PENDING_BATCH, PENDING_BATCH_EMBEDDED, PendingIndexer } from "./data/pending-indexer.js";
import { ClosedError } from "./errors.js";
import { runReadinessChecks, type CheckResult, type ReadinessOptions } from "./readiness/checks.js";
import { openStores, type StoreFactory } from "./stores/open-stores.js";
import type { StoreCapabilities, VectorStore } from "./stores/store.js";
import { TenantRegistry } from "./tenancy/registry.js";
import { TenantChangeFeed, changeChannel } from "./tenancy/change-feed.js";
import { ApiKeyStore } from "./tenancy/api-keys.js";
import { AuditLog } from "./tenancy/audit-log.js";
import { eraseTenant, type ErasureReport } from "./operations/erasure.js";
import { backupTenant, restoreTenant, type BackupSummary, type RestoreSummary } from "./operations/backup.js";
import { BackgroundMoves } from "./operations/background-moves.js";
import { DailyQueryQuota } from "./limits/daily-query-quota.js";
import { PerformanceGate } from "./limits/performance-gate.js";
import { TenantRateLimiter } from "./limits/rate-limiter.js";
import { connectRedis } from "./limits/redis-connection.js";
import { TenantBulkheads } from "./limits/tenant-bulkheads.js";
import { BulkheadMetrics } from "./monitoring/metrics.js";
import { TenantMonitor } from "./monitoring/tenant-monitor.js";
import { MinuteRollups } from "./monitoring/minute-rollups.js";
import { TenantOverview } from "./operations/tenant-overview.js";
import { DashboardSessions } from "./tenancy/dashboard-sessions.js";

/** Options of `createBulkhead`. Anything not given comes from the environment and `BULKHEAD_CONFIG`. */
export interface BulkheadOptions {
  /** `memory://`, a directory (embedded PGlite), or `postgres://…` (runtime role). Default: `DATABASE_URL` or `memory://`. */
  database?: string;
  /** Owner role's URL; on a server, migrations run over it. Default: `DATABASE_OWNER_URL`. */
  databaseOwnerUrl?: string;
  /** Data-plane role's URL on a server: tenant data requests connect as it. Default: `DATABASE_DATA_URL`. */
  databaseDataUrl?: string;
  /** Any other configuration value. */
  config?: ConfigSources["overrides"];
  /** Environment to read instead of `process.env`. */
  env?: Record<string, string | undefined>;
  /** Where warnings, alerts and degradations are logged. Default: `console.warn`. */
  warn?: (message: string) => void;
  /** Clock (ms since the epoch) for daily quotas and statistics; tests inject one. Default `Date.now`. */
  now?: () => number;
  /**
   * More stores by name, besides home and the cells, e.g. `{ pc: pinecone({ apiKey, cloud: "aws", region: "us-east-1" }) }`.
   * Tenants are placed in one with `registerTenant(…, { store })`, by tier with `tierStores`, or moved there.
   */
  stores?: Readonly<Record<string, StoreFactory>>;
  /** The embedder of text chunks and searches, instead of the one `BULKHEAD_EMBEDDINGS_URL` configures. */
  embedder?: Embedder;
  /** The chat model of `answer`, instead of the one `BULKHEAD_CHAT_URL` configures. */
  chat?: ChatModel;
}

/** A running Bulkhead: registry, data manager and the configuration they use. */
export interface Bulkhead {
  readonly config: BulkheadConfig;
  readonly registry: TenantRegistry;
  readonly dataManager: TenantDataManager;
  /** Text documents: chunked, stored and searched per tenant (full text; hybrid with an embedder). `POST /v1/documents/text`, `POST /v1/search`. */
  readonly text: TenantTextManager;
  /** Large text ingests in the background, with progress (`POST /v1/documents/text/jobs`, `GET /v1/jobs/{id}`). */
  readonly textJobs: TextJobs;
  /** Metering, fixed-cost allocation, summaries, reports and reconciliation. */
  readonly costEngine: CostAllocationEngine;
  /** The vector store's name and capabilities. */
  readonly store: Pick<VectorStore, "name" | "capabilities">;
  /** Names of the stores tenants can live in: "home", the configured cells (`BULKHEAD_CELLS`) and remote stores (`BULKHEAD_PINECONE`, `stores`). */
  readonly stores: readonly string[];
  /** What each store can do, by name (code and tests read these, never a store's name). */
  readonly storeCapabilities: Readonly<Record<string, StoreCapabilities>>;
  /** Which database engine is underneath. */
  readonly databaseKind: Db["kind"];
  /** Per-tenant statistics (`getTenantStats`), alerts (`on("alert")`) and Prometheus metrics (`metricsText()`). */
  readonly monitor: TenantMonitor;
  /** API keys: tenant keys (scoped to one tenant) and admin keys, stored as hashes. */
  readonly keys: ApiKeyStore;
  /** Dashboard sign-ins (an admin key exchanged for a session cookie). */
  readonly dashboardSessions: DashboardSessions;
  /** What operators look at: every tenant's quota use, activity and month, and a tenant's history minute by minute. */
  readonly overview: TenantOverview;
  /** Admin actions and key events, in the database. */
  readonly audit: AuditLog;
  /** Tenant moves run in the background (the service's admin API): start, resume, rollback, progress. */
  readonly moves: BackgroundMoves;
  /**
   * Erases a tenant (right to be forgotten) and proves it: a catalog scan of every table holding
   * `tenant_id` finds no row left; billing records are kept by the documented retention rule.
   */
  eraseTenant(tenantId: string, actor: string): Promise<ErasureReport>;
  /** Writes one tenant's vectors, metadata, settings and optionally usage to a checksummed, gzipped file (streamed). */
  backupTenant(tenantId: string, file: string, options?: { includeUsage?: boolean; onProgress?: (documents: number) => void }): Promise<BackupSummary>;
  /** Verifies a backup, then replaces the tenant's vectors with it in one transaction (into another id only with `into`). */
  restoreTenant(file: string, options?: { into?: string; onProgress?: (documents: number) => void }): Promise<RestoreSummary>;
  /** Runs the production-readiness checklist as live checks. */
  readiness(options?: ReadinessOptions): Promise<CheckResult[]>;
  close(): Promise<void>;
}

/**
 * Opens (and migrates) the database and wires the registry and the data manager.
 *
 * @example
 * const bh = await createBulkhead({ database: "memory://" });
 * await bh.registry.registerTenant("tenant-001", "Acme Corp", TenantTier.FREE);
 * await bh.close();
 */
export async function createBulkhead(options: BulkheadOptions = {}): Promise<Bulkhead> {
  return (await openBulkhead(options)).bulkhead;
}

/** Internal: the Bulkhead together with its raw database handle (tests attack the database directly). */
export async function openBulkhead(options: BulkheadOptions = {}): Promise<{ bulkhead: Bulkhead; db: Db; cells: Awaited<ReturnType<typeof openStores>>["cells"]; store: VectorStore; pendingIndexer: PendingIndexer }> {
  const overrides = { ...options.config };
  if (options.database !== undefined) overrides.databaseUrl = options.database;
  if (options.databaseOwnerUrl !== undefined) overrides.databaseOwnerUrl = options.databaseOwnerUrl;
  if (options.databaseDataUrl !== undefined) overrides.databaseDataUrl = options.databaseDataUrl;
  const config = loadConfig({ env: options.env ?? process.env, overrides });
  const warn = options.warn ?? ((m) => console.warn(m));
  const now = options.now ?? Date.now;
  const db = await openDatabase(config, warn);
  let opened: Awaited<ReturnType<typeof openStores>>;
  try {
    opened = await openStores(db, config, warn, options.stores);
  } catch (err) {
    await db.close();
    throw err;
  }
  const { router: store, cells } = opened;
  const closeDatabases = async () => {
    for (const c of cells) await c.db.close();
    await db.close();
  };
  const registry = new TenantRegistry(db, store, config, config.tenantCacheTtlMs, warn);
  const ledger = new UsageLedger(db, {
    flushIntervalMs: config.usageFlushIntervalMs,
    maxEvents: config.usageFlushMaxEvents,
    onError: (err) => warn(`bulkhead: writing usage events failed, will retry: ${describeError(err)}`),
    onQuarantine: ({ event, reason }) => warn(`bulkhead: usage event quarantined (tenant ${event.tenantId}, kind ${String(event.kind)}): ${reason}; the other events were written — see usage_quarantine`),
  });
  const costEngine = new CostAllocationEngine(db, registry, store, ledger, config);
  const metrics = new BulkheadMetrics(() => registry.getCapacity(), () => registry.getPools());
  const rollups = new MinuteRollups(db, db.withTimeout(config.dbLongTimeoutMs), {
    flushIntervalMs: config.seriesFlushIntervalMs,
    retentionMs: config.seriesRetentionHours * 3_600_000,
    onError: (err) => warn(`bulkhead: writing per-tenant minute rollups failed, will retry: ${describeError(err)}`),
    now,
  });
  const monitor = new TenantMonitor(metrics, config, warn, now, rollups);
  const audit = new AuditLog(db);
  const keys = new ApiKeyStore(db, audit, config.tenantCacheTtlMs, now);
  // Other instances' tenant and key changes arrive over LISTEN/NOTIFY; an embedded database has no other instances.
  const feed =
    db.kind === "postgres"
      ? new TenantChangeFeed(
          config.databaseUrl,
          changeChannel(db.schema),
          {
            changed: (id) => (id.startsWith("key:") ? keys.feedHandlers.changed(id.slice(4)) : registry.feedHandlers.changed(id)),
            lost: () => [registry, keys].forEach((c) => c.feedHandlers.lost()),
            restored: () => [registry, keys].forEach((c) => c.feedHandlers.restored()),
          },
          warn,
        )
      : undefined;
  const redisConnection = config.redisUrl ? await connectRedis(config.redisUrl, config.redisTimeoutMs, (up) => metrics.redisUp.set(up ? 1 : 0), warn) : undefined;
  try {
    await feed?.start();
    // Whatever a crash left in a cell (a half-done switch, a copy nobody claims) is put right first.
    await registry.reconcileCells();
  } catch (err) {
    await feed?.close();
    await redisConnection?.close();
    await closeDatabases();
    throw err;
  }
  const redis = redisConnection?.redis;
  let insuranceLoggedAt = -Infinity;
  const onInsurance = () => {
    metrics.insuranceDecisions.inc();
    // A slow Redis raises no connection event, so say it here — once a minute, not once a request.
    if (now() - insuranceLoggedAt < 60_000) return;
    insuranceLoggedAt = now();
    warn(`bulkhead: rate-limit decisions are being made in memory: Redis is down or slower than ${config.redisTimeoutMs} ms (limits are per instance meanwhile)`);
  };
  const rateLimiter = new TenantRateLimiter({ redis, keyPrefix: `bulkhead:${db.schema}`, onInsurance, now });
  const connectionSlots = Math.max(1, Math.floor(config.poolSize * config.tenantPoolShare));
  const dailyQueries = new DailyQueryQuota(now);
  const gate = new PerformanceGate(rateLimiter, new TenantBulkheads(connectionSlots), dailyQueries, monitor);
  registry.onChange((tenantId) => {
    gate.forget(tenantId);
    // A deleted tenant's keys are gone from the database; their cached lookups must go too.
    keys.forgetAll();
  });
  const recall = new RecallSampler(config.recallSampleRate, (tenantId, value) => monitor.recordRecall(tenantId, value), warn);
  // Vectors written ahead of a namespace's HNSW graph are added to it in the background, in turn.
  const pendingIndexer = new PendingIndexer(
    async (tenantId, limit) => registry.withPlacement(await registry.getTenant(tenantId), ({ placement }) => store.indexPending(placement, limit)),
    warn,
    db.kind === "pglite" ? PENDING_BATCH_EMBEDDED : PENDING_BATCH,
    config.maxPendingVectors,
  );
  registry.onChange((tenantId) => pendingIndexer.forget(tenantId));
  const dataManager = new TenantDataManager(registry, store, config, costEngine, gate, recall, pendingIndexer);
  const embedder =
    options.embedder ??
    (config.embeddingsUrl ? new OpenAIEmbedder({ baseUrl: config.embeddingsUrl, apiKey: config.embeddingsApiKey, model: config.embeddingsModel, dimension: config.dimension }) : undefined);
  const chat =
    options.chat ??
    (config.chatUrl ? new OpenAIChatModel({ baseUrl: config.chatUrl, apiKey: config.chatApiKey, model: config.chatModel, maxOutputTokens: ANSWER_OUTPUT_TOKENS, countTokens: (t) => countTokens(t, "o200k_base") }) : undefined);
  // The embedder's own model and dimension are what tiers without their own embed with: those of
  // BULKHEAD_EMBEDDINGS_MODEL and BULKHEAD_DIMENSION, or of the embedder given in code.
  const textSettings = embedder ? { ...config, embeddingsModel: embedder.model, dimension: embedder.dimension } : config;
  const text = new TenantTextManager(registry, db.dataPlane, textSettings, gate, costEngine, embedder, chat);
  const textJobs = new TextJobs(registry, db, text, warn);
  // A namespace whose measured recall is low gets a wider search (HNSW ef_search doubled, up to
  // pgvector's 1,000), audited; its recall is then measured afresh and widened again if still low.
  let widening = Promise.resolve();
  monitor.on("lowRecall", ({ tenantId, recall: measured, samples }) => {
    widening = widening.then(async () => {
      if (closed) return;
      const tenant = await registry.getTenant(tenantId);
      const from = tenant.placement.efSearch ?? config.hnswEfSearch;
      if (from >= 1000) {
        warn(`bulkhead: tenant ${tenantId}'s recall is ${measured.toFixed(3)} with its search at pgvector's widest (ef_search 1000): rebuild its index with more connections (BULKHEAD_HNSW_M, BULKHEAD_HNSW_EF_CONSTRUCTION)`);
        return;
      }
      const to = Math.min(1000, from * 2);
      await registry.setEfSearch(tenantId, to);
      await audit.record("bulkhead:recall-monitor", "tenant.search_widened", tenantId, { efSearch: { from, to }, recall: measured, samples });
      warn(`bulkhead: tenant ${tenantId}'s recall was ${measured.toFixed(3)} over ${samples} sampled queries: its search widened from ef_search ${from} to ${to}`);
    }).catch((err: unknown) => warn(`bulkhead: widening tenant ${tenantId}'s search failed: ${describeError(err)}`));
  });
  const moves = new BackgroundMoves(registry, audit, (tenantId, err) => warn(`bulkhead: the move of ${tenantId} stopped: ${describeError(err)}; it stays recorded — resume or roll it back`));
  const overview = new TenantOverview({ db, cells, slowTimeoutMs: config.dbLongTimeoutMs, registry, costEngine, now, unspentQueries: (tenantId) => dailyQueries.unspent(tenantId), flush: async () => void (await Promise.all([rollups.flush(), ledger.flush()])) });
  let closed = false;
  const bulkhead: Bulkhead = {
    config,
    registry,
    dataManager,
    text,
    textJobs,
    costEngine,
    store: { name: store.name, capabilities: store.capabilities },
    stores: store.storeNames(),
    storeCapabilities: Object.freeze(Object.fromEntries(store.storeNames().map((name) => [name, store.capabilitiesOf(name)]))),
    databaseKind: db.kind,
    monitor,
    keys,
    overview,
    dashboardSessions: new DashboardSessions(db, config.dashboardSessionMs),
    audit,
    moves,
    eraseTenant: (tenantId, actor) => {
      if (closed) throw new ClosedError("Bulkhead");
      return eraseTenant({ db, cells, remotes: store.allRemotes(), registry, keys, audit }, tenantId, actor).then(async (report) => {
        await monitor.forgetTenant(tenantId); // its metric series and latency window go with it
        return report;
      });
    },
    backupTenant: (tenantId, file, o) => {
      if (closed) throw new ClosedError("Bulkhead");
      return backupTenant({ db, registry, store, textSearchConfig: config.textSearchConfig }, tenantId, file, o);
    },
    restoreTenant: (file, o) => {
      if (closed) throw new ClosedError("Bulkhead");
      return restoreTenant({ db, registry, store, textSearchConfig: config.textSearchConfig }, file, o);
    },
    readiness: (o) => {
      if (closed) throw new ClosedError("Bulkhead");
      return runReadinessChecks({ db, cells, remotes: store.allRemotes(), registry, dataManager, costEngine }, o);
    },
    async close() {
      if (closed) return;
      closed = true;
      // Usage first: close() is the point after which no metered event may be lost.
      try {
        await moves.close(); // stopped between two steps; they stay recorded, resumable
        await textJobs.close(); // stopped between two steps: what they stored stays, the rest is reported
        await recall.drain();
        await pendingIndexer.close();
        await widening;
        await ledger.close();
        await rollups.close().catch((err: unknown) => warn(`bulkhead: the last minute rollups were not written: ${describeError(err)}`));
        // Queries this instance counted in leases and did not spend go back to their tenants' days.
        for (const { tenantId, day, queries } of dailyQueries.takeUnspent()) {
          const tenant = await registry.getTenant(tenantId).catch(() => undefined); // gone: nothing to give back to
          if (tenant) await store.releaseDailyQueries(tenant.placement, day, queries).catch((err: unknown) => warn(`bulkhead: could not give back ${queries} unspent queries of ${tenantId}'s day: ${describeError(err)}`));
        }
      } finally {
        await feed?.close();
        await redisConnection?.close();
        await closeDatabases();
      }
    },
  };
  return { bulkhead, db, cells, store, pendingIndexer };
}
