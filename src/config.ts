import { readFileSync } from "node:fs";
import { ConfigError } from "./errors.js";

/** Subscription tier; decides default quotas and isolation strategy. */
export enum TenantTier {
  FREE = "free",
  PRO = "pro",
  ENTERPRISE = "enterprise",
}

export const TIERS: readonly TenantTier[] = [TenantTier.FREE, TenantTier.PRO, TenantTier.ENTERPRISE];

/** Per-tenant resource limits. A tenant's effective quota is its tier's, then its own overrides. */
export interface TenantQuota {
  /** Vectors the tenant may store. */
  maxDocuments: number;
  /** Chunks of text documents the tenant may store (`POST /v1/documents/text`). */
  maxTextChunks: number;
  /** LLM tokens (input and output) the tenant's answers may use per UTC day (`POST /v1/answer`). */
  maxDailyLlmTokens: number;
  /** Queries per UTC day (resets at midnight UTC). */
  maxDailyQueries: number;
  /** Sustained data operations per second. */
  requestsPerSecond: number;
  /** Extra operations allowed above `requestsPerSecond`, at most this many per 10 seconds. */
  burst: number;
  /** Data operations in flight at once (running or waiting for the tenant's share of connections). */
  maxConcurrent: number;
  /**
   * Request-body bytes per second the HTTP service takes from the tenant (counted over 10-second
   * windows, so one large batch passes when the window has room): what parsing, validating and
   * writing its batches may cost the service, whatever its request rate allows.
   */
  requestBytesPerSecond: number;
}

/** Every quota field with its smallest allowed value (a rate or concurrency of 0 would be a suspension: use that instead). */
export const QUOTA_MINIMUMS: Readonly<Record<keyof TenantQuota, number>> = Object.freeze({
  maxDocuments: 0,
  maxTextChunks: 0,
  maxDailyLlmTokens: 0,
  maxDailyQueries: 0,
  requestsPerSecond: 1,
  burst: 0,
  maxConcurrent: 1,
  requestBytesPerSecond: 1_024,
});

/**
 * The largest value of any quota field: counts are compared with PostgreSQL integers (the daily
 * query count is an int), so a larger quota would make every query of the tenant fail.
 */
export const QUOTA_MAXIMUM = 2_147_483_647;

/** Vector similarity metric, with Pinecone's names. */
export type Metric = "cosine" | "euclidean" | "dotproduct";

/** Input and output price of one LLM model, USD per 1,000 tokens. */
export interface ModelPrice {
  inputPer1KTokens: number;
  outputPer1KTokens: number;
}

/**
 * What things cost, in USD (defaults from the reference notebook). Variable prices are metered per
 * event; monthly prices are fixed costs allocated across tenants.
 */
export interface PriceBook {
  embeddingPer1KTokens: number;
  /** LLM price for calls that name no model (or a model not in `llmModels`). */
  llmPer1KTokens: number;
  /** Per-model input/output prices, e.g. `{ "gpt-4o-mini": { inputPer1KTokens: 0.00015, outputPer1KTokens: 0.0006 } }`. */
  llmModels: Readonly<Record<string, Readonly<ModelPrice>>>;
  vectorQuery: number;
  /**
   * USD per read unit a store reports for a query (Pinecone serverless: $16 per million on the
   * Standard plan — check yours). A query whose store reports read units is priced by them instead
   * of `vectorQuery`.
   */
  storeReadUnit: number;
  /** Base cost of one vector index per month (shared or dedicated). */
  vectorIndexMonthly: number;
  postgresMonthly: number;
  loadBalancerMonitoringMonthly: number;
  /** Planner only: one small managed PostgreSQL database per tenant (tenant-per-database strategy). */
  dedicatedDatabaseMonthly: number;
  /** Planner only: the application stack of one isolated single-tenant deployment (compute, networking). */
  dedicatedComputeMonthly: number;
}

/** One more store (cell): a database like the home one (same schema), reached with these URLs. */
export interface CellConfig {
  /** Runtime connection, like `databaseUrl`. */
  readonly url: string;
  /** Owner connection that migrates the cell on a server, like `databaseOwnerUrl`. */
  readonly ownerUrl?: string;
  /** Data-plane connection on a server, like `databaseDataUrl`. */
  readonly dataUrl?: string;
}

/** A Pinecone project as a store (`BULKHEAD_PINECONE`; the API key comes from `PINECONE_API_KEY`). */
export interface PineconeConfig {
  /** The store's name, as tenants' `store` and `tierStores` name it. Default "pinecone". */
  readonly name: string;
  readonly cloud: "aws" | "gcp" | "azure";
  readonly region: string;
  /** Index names are `<prefix>-<index id>`; one prefix per deployment sharing a project. Default "bulkhead". */
  readonly indexPrefix: string;
  /** Namespaces per index the plan allows (Starter 100, Standard 1,000, Enterprise 100,000). Default 1,000. */
  readonly maxNamespacesPerIndex: number;
  /** Deadline of each call to Pinecone (ms). Default 10,000. */
  readonly timeoutMs: number;
  /** Retries of a call Pinecone answered 5xx. Default 2. */
  readonly maxRetries: number;
  /** Pinecone's control plane: only for a local stand-in (tests). */
  readonly controllerHostUrl?: string;
}

/** What `BULKHEAD_PINECONE` and `pinecone({…})` fall back to. */
export const PINECONE_DEFAULTS = Object.freeze({
  name: "pinecone",
  cloud: "aws" as const,
  region: "us-east-1",
  indexPrefix: "bulkhead",
  maxNamespacesPerIndex: 1000,
  timeoutMs: 10_000,
  maxRetries: 2,
});

/**
 * A tier's own text settings (`BULKHEAD_TIER_TEXT`); what a tier does not set comes from the global
 * `BULKHEAD_CHUNK_TOKENS`, `BULKHEAD_CHUNK_OVERLAP_TOKENS`, `BULKHEAD_EMBEDDINGS_MODEL` and `BULKHEAD_DIMENSION`.
 */
export interface TierTextSettings {
  readonly chunkTokens?: number;
  readonly chunkOverlapTokens?: number;
  /** The embedding model of the tier's chunks and queries, on the one configured embeddings API. */
  readonly embeddingsModel?: string;
  /** Dimension of that model's vectors (one dimension per model across all tiers). */
  readonly embeddingsDimension?: number;
}

/** The text settings a tenant of a tier gets: its tier's, else the global ones. */
export type TextTierSettings = Required<TierTextSettings>;

/**
 * What a tier's tenants chunk and embed with.
 *
 * @example
 * textSettingsOf(config, TenantTier.ENTERPRISE); // { chunkTokens: 800, chunkOverlapTokens: 100, embeddingsModel: "text-embedding-3-large", embeddingsDimension: 3072 }
 */
export function textSettingsOf(config: Pick<BulkheadConfig, "tierText" | "chunkTokens" | "chunkOverlapTokens" | "embeddingsModel" | "dimension">, tier: TenantTier): TextTierSettings {
  const own = config.tierText[tier] ?? {};
  return {
    chunkTokens: own.chunkTokens ?? config.chunkTokens,
    chunkOverlapTokens: own.chunkOverlapTokens ?? config.chunkOverlapTokens,
    embeddingsModel: own.embeddingsModel ?? config.embeddingsModel,
    embeddingsDimension: own.embeddingsDimension ?? config.dimension,
  };
}

/** Name of the database Bulkhead's control plane lives in; the first store. */
export const HOME_STORE = "home";

/** The resolved configuration: defaults, then the JSON file named by `BULKHEAD_CONFIG`, then the environment, then code. */
export interface BulkheadConfig {
  /** Vector dimension of shared indexes (and the default for dedicated ones). */
  readonly dimension: number;
  readonly metric: Metric;
  /** Namespaces one shared index may hold (the reference's Pinecone-derived 90). */
  readonly maxNamespacesPerIndex: number;
  /** Utilisation at which an index reports `warning` (0.8 → 72 of 90). */
  readonly namespaceAlertThreshold: number;
  /** Utilisation at which the next shared index is provisioned ahead of need (0.9 → 81 of 90). */
  readonly namespaceProvisionThreshold: number;
  /** A namespace or dedicated index gets an HNSW index once it holds this many vectors; below, search is exact. */
  readonly annIndexThreshold: number;
  /**
   * Where free and pro tenants start. "namespace": a partition of a shared index each (the
   * reference's design). "pool": rows in one table shared by many small tenants, keyed by tenant
   * and searched exactly — no relation per tenant, so one database holds 100,000 tenants — until
   * a tenant reaches `annIndexThreshold` vectors and moves online to a namespace with its own graph.
   */
  readonly smallTenants: "namespace" | "pool";
  /** Most tokens of one text chunk (counted with cl100k, the tokenizer of OpenAI's embedding models). */
  readonly chunkTokens: number;
  /** Tokens consecutive chunks of one section share. */
  readonly chunkOverlapTokens: number;
  /** PostgreSQL text-search configuration of the text path (`english`, `simple`, `german`, …): stemming and stop words. */
  readonly textSearchConfig: string;
  readonly hnswM: number;
  readonly hnswEfConstruction: number;
  readonly hnswEfSearch: number;
  /** maintenance_work_mem of an HNSW build, in MB: a ceiling (a small namespace uses what its graph needs). */
  readonly annBuildMemoryMb: number;
  /** Most vectors of one tenant that may wait beside its HNSW graph (per process); past it, writes go into the graph. 0: never beside. */
  readonly maxPendingVectors: number;
  readonly maxTopK: number;
  readonly maxBatchSize: number;
  readonly maxIdLength: number;
  /** Serialized JSON size limit of one document's metadata (Pinecone: 40 KB). */
  readonly maxMetadataBytes: number;
  readonly tierQuotas: Readonly<Record<TenantTier, Readonly<TenantQuota>>>;
  readonly prices: Readonly<PriceBook>;
  /** Monthly plan price per tier (revenue), for margins. */
  readonly planPrices: Readonly<Record<TenantTier, number>>;
  /** How often buffered usage events are written to the ledger (ms); at most this much is lost on a crash. */
  readonly usageFlushIntervalMs: number;
  /** Buffered events that trigger an early flush. */
  readonly usageFlushMaxEvents: number;
  /** Allocated-vs-actual deviation beyond which reconciliation flags a category (0.05 = ±5 %). */
  readonly reconciliationTolerance: number;
  /** Runtime (control-plane) connection: `memory://`, a directory for embedded PGlite, or `postgres://…`. */
  readonly databaseUrl: string;
  /** Owner connection that runs migrations on a server; the runtime role never owns tables. */
  readonly databaseOwnerUrl: string | undefined;
  /**
   * Data-plane connection on a server: the role tenant data requests run as, granted tenant data
   * under forced RLS and nothing else. Without it they run as the control-plane role (start-up warns).
   */
  readonly databaseDataUrl: string | undefined;
  /** PostgreSQL schema holding Bulkhead's tables. */
  readonly schema: string;
  /**
   * More stores (cells) besides the home database, by name: each another database (`postgres://…`,
   * a directory or `memory://`) holding the vectors of the tenants placed there. The tenant
   * catalogue, keys, usage and moves stay in the home database. `BULKHEAD_CELLS` takes JSON like
   * `{"cell-2":{"url":"postgres://app@db2/bulkhead","ownerUrl":"postgres://owner@db2/bulkhead","dataUrl":"postgres://data@db2/bulkhead"}}`.
   */
  readonly cells: Readonly<Record<string, CellConfig>>;
  /** Pinecone as a store, or undefined. `BULKHEAD_PINECONE` takes JSON like `{"cloud":"aws","region":"us-east-1","maxNamespacesPerIndex":1000}`. */
  readonly pinecone: PineconeConfig | undefined;
  /** `PINECONE_API_KEY`: required with `pinecone`; never logged. */
  readonly pineconeApiKey: string | undefined;
  /**
   * An OpenAI-compatible embeddings API (`https://api.openai.com/v1`, an Ollama or vLLM server, …):
   * with it, text chunks get vectors and searches are hybrid; without, search is full text alone.
   * Its vectors have `dimension` dimensions.
   */
  readonly embeddingsUrl: string | undefined;
  readonly embeddingsModel: string;
  readonly embeddingsApiKey: string | undefined;
  /** An OpenAI-compatible chat completions API for `POST /v1/answer`; unset: answering is off (search still works). */
  readonly chatUrl: string | undefined;
  /** The chat model; priced by `prices.llmModels` when listed there, else at the flat LLM price. */
  readonly chatModel: string;
  readonly chatApiKey: string | undefined;
  /**
   * The store a tier's new tenants are placed in (and an upgrade to it moves to), e.g.
   * `{"enterprise":"pinecone"}`; tiers not named use home. `BULKHEAD_TIER_STORES`.
   */
  readonly tierStores: Readonly<Partial<Record<TenantTier, string>>>;
  /**
   * Chunk sizes and embedding model per tier, e.g. `{"enterprise":{"chunkTokens":800,"embeddingsModel":"text-embedding-3-large","embeddingsDimension":3072}}`;
   * tiers and keys not named use the global settings. `BULKHEAD_TIER_TEXT`.
   */
  readonly tierText: Readonly<Partial<Record<TenantTier, Readonly<TierTextSettings>>>>;
  readonly poolSize: number;
  /**
   * Deadline of each database call of the request path on a server (ms; a statement or a pipeline),
   * including the wait for a connection: then the caller gets `DatabaseError` (HTTP 503 +
   * Retry-After), the connection is discarded, and the server cancels the statement too (statement_timeout).
   */
  readonly dbTimeoutMs: number;
  /**
   * The same for each statement of an explicit transaction (registry, keys, moves, restores: control
   * plane and bulk work, which queue behind each other's locks) and for HNSW builds and move copies.
   */
  readonly dbLongTimeoutMs: number;
  /** Share of the connection pool one tenant's operations may hold at once (0.5 → 5 of 10). */
  readonly tenantPoolShare: number;
  /** How long a resolved tenant (tier, quota, placement) is reused; changes invalidate it everywhere at once. */
  readonly tenantCacheTtlMs: number;
  /** Redis shared by several instances for rate limiting; without it limits are per process. */
  readonly redisUrl: string | undefined;
  /** A Redis command slower than this counts as a Redis failure: the in-memory insurance limiter decides. */
  readonly redisTimeoutMs: number;
  /** Largest HTTP request body (bytes); larger ones are refused with 413. */
  readonly httpBodyLimit: number;
  /**
   * A request of a tenant that ignored its Retry-After (it is still over its rate limit) is answered
   * after holding it this long at most (ms; never longer than the wait left): a client flooding in
   * closed loops is slowed to its own pace instead of costing the service a refusal per round trip.
   * 0 answers at once.
   */
  readonly httpRefusalHoldMs: number;
  /**
   * Worker threads that parse and validate large request bodies (64 KiB and up), each tenant's in
   * turn: a tenant's batches then never hold the event loop its neighbours' requests run on. 0
   * parses every body on the event loop.
   */
  readonly httpBodyWorkers: number;
  /** Longest a request may take to arrive, headers and body (ms); then 408 and the connection is closed. */
  readonly httpRequestTimeoutMs: number;
  /** Sliding window of `getTenantStats` and of the alerts (ms). */
  readonly statsWindowMs: number;
  /** How often each instance writes its per-tenant minute rollups (the dashboard's charts, `GET /admin/tenants/{id}/series`), ms. */
  readonly seriesFlushIntervalMs: number;
  /** How long per-tenant minute rollups are kept, in hours. */
  readonly seriesRetentionHours: number;
  /** How long a dashboard sign-in lasts (ms). */
  readonly dashboardSessionMs: number;
  /** A tenant whose p95 latency exceeds this (ms) raises an alert. */
  readonly alertP95Ms: number;
  /** A tenant whose error rate exceeds this raises an alert (0.05 = 5 %). */
  readonly alertErrorRate: number;
  /** Operations in the window before a tenant's alerts are judged (a few slow calls are not a trend); also recall samples before recall is. */
  readonly alertMinRequests: number;
  /**
   * Share of each tenant's ANN queries run again exactly in the background to measure its recall
   * (0 turns it off; one exact query at a time per process, samples offered meanwhile are dropped).
   */
  readonly recallSampleRate: number;
  /** A tenant whose measured recall@k falls below this raises an alert, and its namespace's search is widened. */
  readonly alertRecall: number;
}

type Parser<T> = (raw: unknown, name: string) => T;

const int = (min: number, max: number): Parser<number> => (raw, name) => {
  const n = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
};

const fractionFrom =
  (zero: boolean): Parser<number> =>
  (raw, name) => {
    const n = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
    if (!((zero ? n >= 0 : n > 0) && n <= 1)) throw new ConfigError(`${name} must be a number ${zero ? "from 0 to 1" : "above 0 and at most 1"}, got ${JSON.stringify(raw)}`);
    return n;
  };
const fraction = fractionFrom(false);
/** A fraction where 0 turns the feature off. */
const share = fractionFrom(true);

const oneOf = <T extends string>(values: readonly T[]): Parser<T> => (raw, name) => {
  if (typeof raw !== "string" || !values.includes(raw as T)) {
    throw new ConfigError(`${name} must be one of ${values.join(", ")}, got ${JSON.stringify(raw)}`);
  }
  return raw as T;
};

const usd: Parser<number> = (raw, name) => {
  const n = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
  if (!Number.isFinite(n) || n < 0) throw new ConfigError(`${name} must be a price in USD (a number >= 0), got ${JSON.stringify(raw)}`);
  return n;
};

const modelPrices: Parser<Record<string, ModelPrice>> = (raw, name) => {
  let value = raw;
  if (typeof raw === "string") {
    try {
      value = JSON.parse(raw);
    } catch {
      throw new ConfigError(`${name} must be JSON like {"gpt-4o-mini":{"inputPer1KTokens":0.00015,"outputPer1KTokens":0.0006}}`);
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ConfigError(`${name} must be an object of model prices`);
  const out: Record<string, ModelPrice> = {};
  for (const [model, price] of Object.entries(value as Record<string, Record<string, unknown>>)) {
    out[model] = Object.freeze({
      inputPer1KTokens: usd(price?.inputPer1KTokens, `${name}.${model}.inputPer1KTokens`),
      outputPer1KTokens: usd(price?.outputPer1KTokens, `${name}.${model}.outputPer1KTokens`),
    });
  }
  return Object.freeze(out);
};

const text: Parser<string> = (raw, name) => {
  if (typeof raw !== "string" || raw.trim() === "") throw new ConfigError(`${name} must be a non-empty string`);
  return raw;
};

const identifier: Parser<string> = (raw, name) => {
  if (typeof raw !== "string" || !/^[a-z_][a-z0-9_]{0,40}$/.test(raw)) {
    throw new ConfigError(`${name} must be a lower-case SQL identifier (letters, digits, _), got ${JSON.stringify(raw)}`);
  }
  return raw;
};

const cells: Parser<Readonly<Record<string, CellConfig>>> = (raw, name) => {
  let value = raw;
  if (typeof raw === "string") {
    try {
      value = JSON.parse(raw);
    } catch {
      throw new ConfigError(`${name} must be JSON like {"cell-2":{"url":"postgres://…","ownerUrl":"postgres://…"}}`);
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ConfigError(`${name} must be an object of cells by name`);
  const out: Record<string, CellConfig> = {};
  for (const [cell, settings] of Object.entries(value as Record<string, Record<string, unknown>>)) {
    if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(cell) || cell === HOME_STORE) {
      throw new ConfigError(`${name}: cell name ${JSON.stringify(cell)} must be a slug of lower-case letters, digits and - (at most 31) and not "${HOME_STORE}"`);
    }
    const url = text(settings?.url, `${name}.${cell}.url`);
    const optional = (key: "ownerUrl" | "dataUrl") => (settings?.[key] === undefined ? {} : { [key]: text(settings[key], `${name}.${cell}.${key}`) });
    out[cell] = Object.freeze({ url, ...optional("ownerUrl"), ...optional("dataUrl") });
  }
  return Object.freeze(out);
};

const jsonObject = (raw: unknown, name: string, example: string): Record<string, unknown> => {
  let value = raw;
  if (typeof raw === "string") {
    try {
      value = JSON.parse(raw);
    } catch {
      throw new ConfigError(`${name} must be JSON like ${example}`);
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ConfigError(`${name} must be a JSON object like ${example}`);
  return value as Record<string, unknown>;
};

const pinecone: Parser<PineconeConfig | undefined> = (raw, name) => {
  if (raw === undefined) return undefined;
  const v = jsonObject(raw, name, `{"cloud":"aws","region":"us-east-1"}`);
  const known = ["name", "cloud", "region", "indexPrefix", "maxNamespacesPerIndex", "timeoutMs", "maxRetries", "controllerHostUrl"];
  for (const key of Object.keys(v)) if (!known.includes(key)) throw new ConfigError(`${name}.${key} is not a setting (known: ${known.join(", ")}; the API key goes in PINECONE_API_KEY)`);
  const storeName = v.name === undefined ? PINECONE_DEFAULTS.name : text(v.name, `${name}.name`);
  if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(storeName) || storeName === HOME_STORE) throw new ConfigError(`${name}.name must be a slug of lower-case letters, digits and - (at most 31) and not "${HOME_STORE}"`);
  const indexPrefix = v.indexPrefix === undefined ? PINECONE_DEFAULTS.indexPrefix : text(v.indexPrefix, `${name}.indexPrefix`);
  if (!/^[a-z0-9][a-z0-9-]{0,29}$/.test(indexPrefix)) throw new ConfigError(`${name}.indexPrefix must be 1-30 lower-case letters, digits and - (Pinecone index names)`);
  return Object.freeze({
    name: storeName,
    cloud: oneOf<"aws" | "gcp" | "azure">(["aws", "gcp", "azure"])(v.cloud ?? PINECONE_DEFAULTS.cloud, `${name}.cloud`),
    region: text(v.region ?? PINECONE_DEFAULTS.region, `${name}.region`),
    indexPrefix,
    maxNamespacesPerIndex: int(1, 100_000)(v.maxNamespacesPerIndex ?? PINECONE_DEFAULTS.maxNamespacesPerIndex, `${name}.maxNamespacesPerIndex`),
    timeoutMs: int(100, 600_000)(v.timeoutMs ?? PINECONE_DEFAULTS.timeoutMs, `${name}.timeoutMs`),
    maxRetries: int(0, 10)(v.maxRetries ?? PINECONE_DEFAULTS.maxRetries, `${name}.maxRetries`),
    ...(v.controllerHostUrl === undefined ? {} : { controllerHostUrl: text(v.controllerHostUrl, `${name}.controllerHostUrl`) }),
  });
};

const tierStores: Parser<Readonly<Partial<Record<TenantTier, string>>>> = (raw, name) => {
  const v = jsonObject(raw, name, `{"enterprise":"pinecone"}`);
  const out: Partial<Record<TenantTier, string>> = {};
  for (const [tier, store] of Object.entries(v)) {
    if (!TIERS.includes(tier as TenantTier)) throw new ConfigError(`${name}: ${JSON.stringify(tier)} is not a tier (tiers: ${TIERS.join(", ")})`);
    out[tier as TenantTier] = text(store, `${name}.${tier}`);
  }
  return Object.freeze(out);
};

const TIER_TEXT_KEYS = ["chunkTokens", "chunkOverlapTokens", "embeddingsModel", "embeddingsDimension"] as const;

const tierText: Parser<Readonly<Partial<Record<TenantTier, Readonly<TierTextSettings>>>>> = (raw, name) => {
  const example = `{"enterprise":{"chunkTokens":800,"chunkOverlapTokens":100,"embeddingsModel":"text-embedding-3-large","embeddingsDimension":3072}}`;
  const v = jsonObject(raw, name, example);
  const out: Partial<Record<TenantTier, TierTextSettings>> = {};
  for (const [tier, settings] of Object.entries(v)) {
    if (!TIERS.includes(tier as TenantTier)) throw new ConfigError(`${name}: ${JSON.stringify(tier)} is not a tier (tiers: ${TIERS.join(", ")})`);
    const t = jsonObject(settings, `${name}.${tier}`, example);
    for (const key of Object.keys(t)) {
      if (!(TIER_TEXT_KEYS as readonly string[]).includes(key)) throw new ConfigError(`${name}.${tier}.${key} is not a text setting (known: ${TIER_TEXT_KEYS.join(", ")})`);
    }
    // The same bounds as the global settings each one stands in for.
    const parsed: Record<string, unknown> = {};
    if (t.chunkTokens !== undefined) parsed.chunkTokens = SETTINGS.chunkTokens[2](t.chunkTokens, `${name}.${tier}.chunkTokens`);
    if (t.chunkOverlapTokens !== undefined) parsed.chunkOverlapTokens = SETTINGS.chunkOverlapTokens[2](t.chunkOverlapTokens, `${name}.${tier}.chunkOverlapTokens`);
    if (t.embeddingsModel !== undefined) parsed.embeddingsModel = embeddingModel(t.embeddingsModel, `${name}.${tier}.embeddingsModel`);
    if (t.embeddingsDimension !== undefined) parsed.embeddingsDimension = SETTINGS.dimension[2](t.embeddingsDimension, `${name}.${tier}.embeddingsDimension`);
    out[tier as TenantTier] = Object.freeze(parsed as TierTextSettings);
  }
  return Object.freeze(out);
};

/** A model name as it goes into a provider's request and the chunks' records: printable, at most 200 characters. */
const embeddingModel: Parser<string> = (raw, name) => {
  if (typeof raw !== "string" || !/^[\x21-\x7e]{1,200}$/.test(raw)) throw new ConfigError(`${name} must be a model name of 1-200 printable characters without spaces, got ${JSON.stringify(raw)?.slice(0, 80)}`);
  return raw;
};

/**
 * Each tier's resolved text settings are coherent: an overlap shorter than its chunks, and one
 * dimension per model — vectors of one model are compared with each other whatever tier wrote them.
 */
function checkTierText(config: BulkheadConfig): void {
  const dimensions = new Map<string, { dimension: number; tier: TenantTier }>();
  for (const tier of TIERS) {
    const t = textSettingsOf(config, tier);
    const own = config.tierText[tier] ?? {};
    if (t.chunkOverlapTokens >= t.chunkTokens) {
      const names = [own.chunkOverlapTokens === undefined ? "BULKHEAD_CHUNK_OVERLAP_TOKENS" : `BULKHEAD_TIER_TEXT.${tier}.chunkOverlapTokens`, own.chunkTokens === undefined ? "BULKHEAD_CHUNK_TOKENS" : `BULKHEAD_TIER_TEXT.${tier}.chunkTokens`];
      throw new ConfigError(`${names[0]} (${t.chunkOverlapTokens}) must be less than ${names[1]} (${t.chunkTokens}) for tier ${tier}: set a smaller overlap or larger chunks`);
    }
    const seen = dimensions.get(t.embeddingsModel);
    if (seen && seen.dimension !== t.embeddingsDimension) {
      throw new ConfigError(
        `BULKHEAD_TIER_TEXT: the model ${JSON.stringify(t.embeddingsModel)} has ${seen.dimension} dimensions for tier ${seen.tier} and ${t.embeddingsDimension} for tier ${tier}; give it one embeddingsDimension (BULKHEAD_DIMENSION is the global model's)`,
      );
    }
    dimensions.set(t.embeddingsModel, { dimension: t.embeddingsDimension, tier });
  }
}

/** Scalar settings: config key → environment variable, default and parser. */
const SETTINGS = {
  dimension: ["BULKHEAD_DIMENSION", 384, int(1, 16_000)],
  metric: ["BULKHEAD_METRIC", "cosine", oneOf<Metric>(["cosine", "euclidean", "dotproduct"])],
  maxNamespacesPerIndex: ["BULKHEAD_MAX_NAMESPACES_PER_INDEX", 90, int(1, 100_000)],
  namespaceAlertThreshold: ["BULKHEAD_NAMESPACE_ALERT_THRESHOLD", 0.8, fraction],
  namespaceProvisionThreshold: ["BULKHEAD_NAMESPACE_PROVISION_THRESHOLD", 0.9, fraction],
  annIndexThreshold: ["BULKHEAD_ANN_INDEX_THRESHOLD", 2_000, int(1, 1_000_000_000)],
  chunkTokens: ["BULKHEAD_CHUNK_TOKENS", 400, int(16, 8_000)],
  chunkOverlapTokens: ["BULKHEAD_CHUNK_OVERLAP_TOKENS", 50, int(0, 4_000)],
  textSearchConfig: ["BULKHEAD_TEXT_SEARCH_CONFIG", "english", identifier],
  smallTenants: ["BULKHEAD_SMALL_TENANTS", "namespace", oneOf<"namespace" | "pool">(["namespace", "pool"])],
  // pgvector's own defaults, chosen by measured recall (bench:ingest, 100,000 × 384-d: recall@10
  // 0.99 at ef_search 40 and 1.0 at 100, like m = 32 / ef_construction = 200, built 3.7× faster);
  // the recall monitor widens ef_search for a namespace whose measured recall falls short.
  hnswM: ["BULKHEAD_HNSW_M", 16, int(2, 100)],
  hnswEfConstruction: ["BULKHEAD_HNSW_EF_CONSTRUCTION", 64, int(4, 1000)],
  annBuildMemoryMb: ["BULKHEAD_ANN_BUILD_MEMORY_MB", 1024, int(64, 65_536)],
  maxPendingVectors: ["BULKHEAD_MAX_PENDING_VECTORS", 20_000, int(0, 100_000_000)],
  hnswEfSearch: ["BULKHEAD_HNSW_EF_SEARCH", 100, int(1, 1000)],
  maxTopK: ["BULKHEAD_MAX_TOP_K", 1000, int(1, 10_000)],
  maxBatchSize: ["BULKHEAD_MAX_BATCH_SIZE", 1000, int(1, 100_000)],
  maxIdLength: ["BULKHEAD_MAX_ID_LENGTH", 512, int(1, 4096)],
  maxMetadataBytes: ["BULKHEAD_MAX_METADATA_BYTES", 40_960, int(2, 10_000_000)],
  databaseUrl: ["DATABASE_URL", "memory://", text],
  databaseOwnerUrl: ["DATABASE_OWNER_URL", undefined, text],
  databaseDataUrl: ["DATABASE_DATA_URL", undefined, text],
  schema: ["BULKHEAD_SCHEMA", "bulkhead", identifier],
  cells: ["BULKHEAD_CELLS", {}, cells],
  pinecone: ["BULKHEAD_PINECONE", undefined, pinecone],
  pineconeApiKey: ["PINECONE_API_KEY", undefined, text],
  embeddingsUrl: ["BULKHEAD_EMBEDDINGS_URL", undefined, text],
  embeddingsModel: ["BULKHEAD_EMBEDDINGS_MODEL", "text-embedding-3-small", embeddingModel],
  embeddingsApiKey: ["BULKHEAD_EMBEDDINGS_API_KEY", undefined, text],
  chatUrl: ["BULKHEAD_CHAT_URL", undefined, text],
  chatModel: ["BULKHEAD_CHAT_MODEL", "gpt-4o-mini", text],
  chatApiKey: ["BULKHEAD_CHAT_API_KEY", undefined, text],
  tierStores: ["BULKHEAD_TIER_STORES", {}, tierStores],
  tierText: ["BULKHEAD_TIER_TEXT", {}, tierText],
  poolSize: ["BULKHEAD_POOL_SIZE", 10, int(1, 1000)],
  dbTimeoutMs: ["BULKHEAD_DB_TIMEOUT_MS", 5_000, int(100, 3_600_000)],
  dbLongTimeoutMs: ["BULKHEAD_DB_LONG_TIMEOUT_MS", 300_000, int(100, 86_400_000)],
  tenantPoolShare: ["BULKHEAD_TENANT_POOL_SHARE", 0.5, fraction],
  tenantCacheTtlMs: ["BULKHEAD_TENANT_CACHE_TTL_MS", 300_000, int(0, 86_400_000)],
  redisUrl: ["REDIS_URL", undefined, text],
  redisTimeoutMs: ["BULKHEAD_REDIS_TIMEOUT_MS", 50, int(1, 60_000)],
  httpBodyLimit: ["BULKHEAD_HTTP_BODY_LIMIT", 16 * 1024 * 1024, int(1_024, 1_073_741_824)],
  httpRefusalHoldMs: ["BULKHEAD_HTTP_REFUSAL_HOLD_MS", 250, int(0, 10_000)],
  httpBodyWorkers: ["BULKHEAD_HTTP_BODY_WORKERS", 1, int(0, 16)],
  httpRequestTimeoutMs: ["BULKHEAD_HTTP_REQUEST_TIMEOUT_MS", 60_000, int(1_000, 3_600_000)],
  statsWindowMs: ["BULKHEAD_STATS_WINDOW_MS", 300_000, int(1_000, 86_400_000)],
  seriesFlushIntervalMs: ["BULKHEAD_SERIES_FLUSH_INTERVAL_MS", 10_000, int(100, 60_000)],
  seriesRetentionHours: ["BULKHEAD_SERIES_RETENTION_HOURS", 168, int(1, 24 * 400)],
  dashboardSessionMs: ["BULKHEAD_DASHBOARD_SESSION_MS", 8 * 3_600_000, int(60_000, 30 * 86_400_000)],
  alertP95Ms: ["BULKHEAD_ALERT_P95_MS", 200, int(1, 3_600_000)],
  alertErrorRate: ["BULKHEAD_ALERT_ERROR_RATE", 0.05, fraction],
  alertMinRequests: ["BULKHEAD_ALERT_MIN_REQUESTS", 20, int(1, 1_000_000)],
  recallSampleRate: ["BULKHEAD_RECALL_SAMPLE_RATE", 0.01, share],
  alertRecall: ["BULKHEAD_ALERT_RECALL", 0.99, share],
  usageFlushIntervalMs: ["BULKHEAD_USAGE_FLUSH_INTERVAL_MS", 1000, int(10, 3_600_000)],
  usageFlushMaxEvents: ["BULKHEAD_USAGE_FLUSH_MAX_EVENTS", 5000, int(1, 1_000_000)],
  reconciliationTolerance: ["BULKHEAD_RECONCILIATION_TOLERANCE", 0.05, fraction],
} as const satisfies Record<string, readonly [string, unknown, Parser<unknown>]>;

/** Documented default quotas per tier. */
export const DEFAULT_TIER_QUOTAS: Readonly<Record<TenantTier, Readonly<TenantQuota>>> = Object.freeze({
  free: Object.freeze({ maxDocuments: 10_000, maxTextChunks: 10_000, maxDailyLlmTokens: 100_000, maxDailyQueries: 1_000, requestsPerSecond: 10, burst: 20, maxConcurrent: 4, requestBytesPerSecond: 1_048_576 }),
  pro: Object.freeze({ maxDocuments: 250_000, maxTextChunks: 250_000, maxDailyLlmTokens: 2_000_000, maxDailyQueries: 50_000, requestsPerSecond: 50, burst: 100, maxConcurrent: 16, requestBytesPerSecond: 4_194_304 }),
  enterprise: Object.freeze({ maxDocuments: 10_000_000, maxTextChunks: 10_000_000, maxDailyLlmTokens: 50_000_000, maxDailyQueries: 1_000_000, requestsPerSecond: 500, burst: 1_000, maxConcurrent: 64, requestBytesPerSecond: 16_777_216 }),
});

/** Price book entries: key → environment variable and default (USD). */
const PRICE_SETTINGS: Record<Exclude<keyof PriceBook, "llmModels">, [string, number]> = {
  embeddingPer1KTokens: ["BULKHEAD_PRICE_EMBEDDING_PER_1K_TOKENS", 0.0001],
  llmPer1KTokens: ["BULKHEAD_PRICE_LLM_PER_1K_TOKENS", 0.002],
  vectorQuery: ["BULKHEAD_PRICE_VECTOR_QUERY", 0.00001],
  storeReadUnit: ["BULKHEAD_PRICE_STORE_READ_UNIT", 0.000016],
  vectorIndexMonthly: ["BULKHEAD_PRICE_VECTOR_INDEX_MONTHLY", 50],
  postgresMonthly: ["BULKHEAD_PRICE_POSTGRES_MONTHLY", 30],
  loadBalancerMonitoringMonthly: ["BULKHEAD_PRICE_LOAD_BALANCER_MONITORING_MONTHLY", 35],
  dedicatedDatabaseMonthly: ["BULKHEAD_PRICE_DEDICATED_DATABASE_MONTHLY", 7],
  dedicatedComputeMonthly: ["BULKHEAD_PRICE_DEDICATED_COMPUTE_MONTHLY", 385],
};

/** Default monthly plan prices per tier (revenue). */
export const DEFAULT_PLAN_PRICES: Readonly<Record<TenantTier, number>> = Object.freeze({ free: 0, pro: 99, enterprise: 1500 });

const QUOTA_ENV: Record<keyof TenantQuota, string> = {
  maxDocuments: "MAX_DOCUMENTS",
  maxTextChunks: "MAX_TEXT_CHUNKS",
  maxDailyLlmTokens: "MAX_DAILY_LLM_TOKENS",
  maxDailyQueries: "MAX_DAILY_QUERIES",
  requestsPerSecond: "REQUESTS_PER_SECOND",
  burst: "BURST",
  maxConcurrent: "MAX_CONCURRENT",
  requestBytesPerSecond: "REQUEST_BYTES_PER_SECOND",
};

/** What `loadConfig` reads. Everything is optional; tests pass their own `env`. */
export interface ConfigSources {
  env?: Record<string, string | undefined>;
  /** Overrides from code, applied last. */
  overrides?: Partial<Omit<BulkheadConfig, "tierQuotas" | "prices" | "planPrices">> & {
    tierQuotas?: Partial<Record<TenantTier, Partial<TenantQuota>>>;
    prices?: Partial<PriceBook>;
    planPrices?: Partial<Record<TenantTier, number>>;
  };
}

function readFileSettings(path: string | undefined): Record<string, unknown> {
  if (!path) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ConfigError(`BULKHEAD_CONFIG=${path} could not be read as JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`BULKHEAD_CONFIG=${path} must hold a JSON object`);
  }
  const known = new Set([...Object.keys(SETTINGS), "tierQuotas", "prices", "planPrices"]);
  for (const key of Object.keys(parsed)) {
    if (!known.has(key)) throw new ConfigError(`BULKHEAD_CONFIG=${path}: unknown key "${key}" (known: ${[...known].join(", ")})`);
  }
  return parsed as Record<string, unknown>;
}

/**
 * Builds the frozen configuration. Precedence: defaults < `BULKHEAD_CONFIG` file < environment < `overrides`.
 * Throws `ConfigError` naming the offending variable or key.
 */
export function loadConfig(sources: ConfigSources = {}): BulkheadConfig {
  const env = sources.env ?? process.env;
  const file = readFileSettings(env.BULKHEAD_CONFIG);
  const overrides = (sources.overrides ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, [envName, fallback, parse]] of Object.entries(SETTINGS)) {
    const fromCode = overrides[key];
    const fromEnv = env[envName];
    const fromFile = file[key];
    const [raw, label] =
      fromCode !== undefined ? [fromCode, `option ${key}`]
      : fromEnv !== undefined && fromEnv !== "" ? [fromEnv, envName]
      : fromFile !== undefined ? [fromFile, `${env.BULKHEAD_CONFIG}: ${key}`]
      : [fallback, key];
    out[key] = raw === undefined ? undefined : (parse as Parser<unknown>)(raw, label);
  }
  const tierQuotas = {} as Record<TenantTier, TenantQuota>;
  const fileQuotas = (file.tierQuotas ?? {}) as Record<string, Record<string, unknown>>;
  const codeQuotas = (sources.overrides?.tierQuotas ?? {}) as Record<string, Record<string, unknown>>;
  for (const tier of TIERS) {
    const quota = { ...DEFAULT_TIER_QUOTAS[tier] };
    for (const field of Object.keys(quota) as (keyof TenantQuota)[]) {
      const envName = `BULKHEAD_TIER_${tier.toUpperCase()}_${QUOTA_ENV[field]}`;
      const candidates: [unknown, string][] = [
        [fileQuotas[tier]?.[field], `${env.BULKHEAD_CONFIG}: tierQuotas.${tier}.${field}`],
        [env[envName] === "" ? undefined : env[envName], envName],
        [codeQuotas[tier]?.[field], `option tierQuotas.${tier}.${field}`],
      ];
      for (const [raw, label] of candidates) if (raw !== undefined) quota[field] = int(QUOTA_MINIMUMS[field], QUOTA_MAXIMUM)(raw, label);
    }
    tierQuotas[tier] = Object.freeze(quota);
  }
  out.tierQuotas = Object.freeze(tierQuotas);

  const filePrices = (file.prices ?? {}) as Record<string, unknown>;
  const codePrices = (sources.overrides?.prices ?? {}) as Record<string, unknown>;
  const prices: Record<string, unknown> = {};
  for (const [key, [envName, fallback]] of Object.entries(PRICE_SETTINGS)) {
    let value: number = fallback;
    for (const [raw, label] of [
      [filePrices[key], `${env.BULKHEAD_CONFIG}: prices.${key}`],
      [env[envName] === "" ? undefined : env[envName], envName],
      [codePrices[key], `option prices.${key}`],
    ] as [unknown, string][]) if (raw !== undefined) value = usd(raw, label);
    prices[key] = value;
  }
  let models: Record<string, ModelPrice> = {};
  for (const [raw, label] of [
    [filePrices.llmModels, `${env.BULKHEAD_CONFIG}: prices.llmModels`],
    [env.BULKHEAD_PRICE_LLM_MODELS === "" ? undefined : env.BULKHEAD_PRICE_LLM_MODELS, "BULKHEAD_PRICE_LLM_MODELS"],
    [codePrices.llmModels, "option prices.llmModels"],
  ] as [unknown, string][]) if (raw !== undefined) models = { ...models, ...modelPrices(raw, label) };
  prices.llmModels = Object.freeze(models);
  out.prices = Object.freeze(prices);

  const filePlans = (file.planPrices ?? {}) as Record<string, unknown>;
  const codePlans = (sources.overrides?.planPrices ?? {}) as Record<string, unknown>;
  const plans = { ...DEFAULT_PLAN_PRICES } as Record<TenantTier, number>;
  for (const tier of TIERS) {
    const envName = `BULKHEAD_PLAN_PRICE_${tier.toUpperCase()}`;
    for (const [raw, label] of [
      [filePlans[tier], `${env.BULKHEAD_CONFIG}: planPrices.${tier}`],
      [env[envName] === "" ? undefined : env[envName], envName],
      [codePlans[tier], `option planPrices.${tier}`],
    ] as [unknown, string][]) if (raw !== undefined) plans[tier] = usd(raw, label);
  }
  out.planPrices = Object.freeze(plans);
  const config = out as unknown as BulkheadConfig;
  if (config.namespaceProvisionThreshold < config.namespaceAlertThreshold) {
    throw new ConfigError(
      `BULKHEAD_NAMESPACE_PROVISION_THRESHOLD (${config.namespaceProvisionThreshold}) must not be below BULKHEAD_NAMESPACE_ALERT_THRESHOLD (${config.namespaceAlertThreshold})`,
    );
  }
  checkTierText(config);
  return Object.freeze(config);
}

/**
 * The database the service and the operator's commands use: the one given, else `DATABASE_URL`,
 * else `./bulkhead-data` (embedded, kept on disk). The library itself defaults to `memory://`.
 */
export const serviceDatabase = (given?: string, env: Readonly<Record<string, string | undefined>> = process.env): string => given ?? (env.DATABASE_URL || "./bulkhead-data");

let processConfig: BulkheadConfig | undefined;
const current = () => (processConfig ??= loadConfig());

/**
 * The process-wide configuration, with the reference notebook's names.
 * Read lazily so a bad environment variable fails at first use with a message naming it.
 *
 * @example
 * Config.MAX_NAMESPACES_PER_INDEX; // 90
 * Config.NAMESPACE_ALERT_THRESHOLD; // 0.8
 */
export const Config = {
  get MAX_NAMESPACES_PER_INDEX(): number {
    return current().maxNamespacesPerIndex;
  },
  get NAMESPACE_ALERT_THRESHOLD(): number {
    return current().namespaceAlertThreshold;
  },
  get NAMESPACE_PROVISION_THRESHOLD(): number {
    return current().namespaceProvisionThreshold;
  },
  get DIMENSION(): number {
    return current().dimension;
  },
  /**
   * The reference's monthly fixed cost for one shared index: vector index base + PostgreSQL +
   * load balancer and monitoring (115 USD with the defaults). The cost engine derives the real
   * figure from the indexes that exist (`costEngine.getFixedCosts()`).
   */
  getTotalFixedCosts(): number {
    const p = current().prices;
    return p.vectorIndexMonthly + p.postgresMonthly + p.loadBalancerMonitoringMonthly;
  },
  /** The whole resolved configuration. */
  get(): BulkheadConfig {
    return current();
  },
};
