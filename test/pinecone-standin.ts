import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";

/**
 * A local stand-in for Pinecone's HTTP API (serverless indexes, API version 2026-04), for tests
 * only: the official SDK talks to it unchanged (`controllerHostUrl` points here; index hosts it
 * returns point back here). Requests are checked against the wire models of the SDK's generated
 * client (`pinecone-generated-ts-fetch/db_control` and `db_data`, strict: an unknown field is a
 * 400) and the published limits; behaviour follows Pinecone's documentation where it matters to
 * Bulkhead: namespaces appear on first upsert, metadata filters are MongoDB-style with Pinecone's
 * operators, `list` pages in bitwise order, euclidean scores are squared distances.
 *
 * Knobs for fault tests: `failNext` (answer the next requests with a status), `delayMs`,
 * `namespaceRate` (429 past that many data requests per second per namespace) and
 * `consistencyDelayMs` (writes become visible to reads only that long after they are acknowledged).
 * It is not Pinecone: what it cannot show (real latencies, real eventual consistency, read units
 * as billed) is what the opt-in live suite is for.
 */

export const STANDIN_LIMITS = {
  upsertVectors: 1000,
  upsertBytes: 2 * 1024 * 1024,
  metadataBytes: 40 * 1024,
  topK: 10_000,
  fetchIds: 100,
  deleteIds: 1000,
  listLimit: 100,
  idBytes: 512,
  maxDimension: 20_000,
} as const;

type Metadata = Record<string, string | number | boolean | string[]>;
interface StoredRecord {
  id: string;
  values: number[];
  metadata?: Metadata;
}
interface Index {
  name: string;
  dimension: number;
  metric: "cosine" | "euclidean" | "dotproduct";
  spec: unknown;
  deletionProtection: string;
  tags?: Record<string, string>;
  namespaces: Map<string, Map<string, StoredRecord>>;
  /** Acknowledged writes not yet visible (consistencyDelayMs > 0). */
  pending: { at: number; apply: () => void }[];
}

const metadataValue = z.union([z.string(), z.number().finite(), z.boolean(), z.array(z.string())]);
const vectorModel = z.strictObject({
  id: z.string().min(1),
  values: z.array(z.number().finite()).optional(),
  sparseValues: z.unknown().optional(),
  metadata: z.record(z.string(), metadataValue).optional(),
});
const models = {
  createIndex: z.strictObject({
    name: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,43}[a-z0-9])?$/, "index names are 1-45 lowercase letters, digits or hyphens"),
    dimension: z.number().int().min(1).max(STANDIN_LIMITS.maxDimension),
    metric: z.enum(["cosine", "euclidean", "dotproduct"]).optional(),
    deletion_protection: z.enum(["enabled", "disabled"]).optional(),
    tags: z.record(z.string(), z.string()).optional(),
    spec: z.strictObject({ serverless: z.strictObject({ cloud: z.enum(["aws", "gcp", "azure"]), region: z.string().min(1), read_capacity: z.unknown().optional() }) }),
    vector_type: z.literal("dense").optional(),
  }),
  upsert: z.strictObject({ vectors: z.array(vectorModel).min(1).max(STANDIN_LIMITS.upsertVectors), namespace: z.string().optional() }),
  query: z.strictObject({
    namespace: z.string().optional(),
    topK: z.number().int().min(1).max(STANDIN_LIMITS.topK),
    filter: z.record(z.string(), z.unknown()).optional(),
    includeValues: z.boolean().optional(),
    includeMetadata: z.boolean().optional(),
    vector: z.array(z.number().finite()).optional(),
    id: z.string().optional(),
    scanFactor: z.number().optional(),
    maxCandidates: z.number().optional(),
  }),
  delete: z.strictObject({
    ids: z.array(z.string().min(1)).max(STANDIN_LIMITS.deleteIds).optional(),
    deleteAll: z.boolean().optional(),
    namespace: z.string().optional(),
    filter: z.record(z.string(), z.unknown()).optional(),
  }),
  describeIndexStats: z.strictObject({ filter: z.record(z.string(), z.unknown()).optional() }),
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code = status === 404 ? "NOT_FOUND" : status === 409 ? "ALREADY_EXISTS" : status === 429 ? "RESOURCE_EXHAUSTED" : status >= 500 ? "UNAVAILABLE" : "INVALID_ARGUMENT",
  ) {
    super(message);
  }
}

/** gRPC status numbers the data plane answers with (RpcStatus.code). */
const RPC_CODES: Record<string, number> = { INVALID_ARGUMENT: 3, NOT_FOUND: 5, ALREADY_EXISTS: 6, RESOURCE_EXHAUSTED: 8, UNAVAILABLE: 14, UNAUTHENTICATED: 16, INTERNAL: 13 };

export interface StandinOptions {
  apiKey?: string;
  /** Data requests per second per namespace before 429 (default: unlimited). */
  namespaceRate?: number;
  /** Writes become visible to reads this long after they are acknowledged (default 0: at once). */
  consistencyDelayMs?: number;
}

export class PineconeStandin {
  readonly indexes = new Map<string, Index>();
  /** Every request, as `METHOD /path` (no query, no body): tests read which calls were made. */
  readonly requests: string[] = [];
  /** Answers the next `count` requests with `status` (optionally only those whose path contains `path`, after letting `skip` of them through). */
  failures: { count: number; status: number; path?: string; skip?: number }[] = [];
  delayMs = 0;
  namespaceRate: number;
  consistencyDelayMs: number;
  private readonly apiKey: string;
  private server?: Server;
  private base = "";
  private readonly window = new Map<string, { second: number; n: number }>();

  constructor(options: StandinOptions = {}) {
    this.apiKey = options.apiKey ?? "standin-key";
    this.namespaceRate = options.namespaceRate ?? Infinity;
    this.consistencyDelayMs = options.consistencyDelayMs ?? 0;
  }

  get key(): string {
    return this.apiKey;
  }

  /** The control plane's URL (the SDK's `controllerHostUrl`). */
  get url(): string {
    return this.base;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  failNext(count: number, status: number, path?: string, skip = 0): void {
    this.failures.push({ count, status, path, skip });
  }

  /** Ends every failure `failNext` set up. */
  clearFailures(): void {
    this.failures.length = 0;
  }

  /** Records of a namespace as a read would see them now. */
  records(index: string, namespace: string): StoredRecord[] {
    const ix = this.indexes.get(index);
    if (!ix) return [];
    this.settle(ix);
    return [...(ix.namespaces.get(namespace)?.values() ?? [])];
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.base);
    this.requests.push(`${req.method} ${url.pathname}`);
    const dataPlane = url.pathname.startsWith("/data/");
    try {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of req as AsyncIterable<Buffer>) {
        size += c.length;
        if (size > STANDIN_LIMITS.upsertBytes) throw new HttpError(413, `request exceeds ${STANDIN_LIMITS.upsertBytes} bytes`, "INVALID_ARGUMENT");
        chunks.push(c);
      }
      if (req.headers["api-key"] !== this.apiKey) throw new HttpError(401, "invalid API key", "UNAUTHENTICATED");
      if (!req.headers["x-pinecone-api-version"]) throw new HttpError(400, "missing X-Pinecone-Api-Version header");
      const failure = this.failures.find((f) => f.count > 0 && (!f.path || url.pathname.includes(f.path)));
      if (failure?.skip) failure.skip--;
      else if (failure) {
        failure.count--;
        throw new HttpError(failure.status, `injected failure ${failure.status}`);
      }
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      const text = Buffer.concat(chunks).toString("utf8");
      let body: unknown = undefined;
      if (text.length > 0) {
        try {
          body = JSON.parse(text);
        } catch {
          throw new HttpError(400, "request body is not JSON");
        }
      }
      const [status, answer] = dataPlane ? this.data(req.method!, url, body) : this.control(req.method!, url, body);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(answer === undefined ? "" : JSON.stringify(answer));
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(500, String((err as Error)?.message ?? err), "INTERNAL");
      res.writeHead(e.status, { "content-type": "application/json" });
      // Control-plane errors are ErrorResponse; data-plane errors are RpcStatus.
      res.end(JSON.stringify(dataPlane ? { code: RPC_CODES[e.code] ?? 2, message: e.message, details: [] } : { status: e.status, error: { code: e.code, message: e.message } }));
    }
  }

  private control(method: string, url: URL, body: unknown): [number, unknown] {
    const parts = url.pathname.split("/").filter(Boolean);
    if (parts[0] !== "indexes") throw new HttpError(404, `no route ${method} ${url.pathname}`);
    if (parts.length === 1 && method === "GET") return [200, { indexes: [...this.indexes.values()].map((i) => this.model(i)) }];
    if (parts.length === 1 && method === "POST") {
      const r = parse(models.createIndex, body);
      if (this.indexes.has(r.name)) throw new HttpError(409, `index ${r.name} already exists`);
      const index: Index = { name: r.name, dimension: r.dimension, metric: r.metric ?? "cosine", spec: r.spec, deletionProtection: r.deletion_protection ?? "disabled", tags: r.tags, namespaces: new Map(), pending: [] };
      this.indexes.set(r.name, index);
      return [201, this.model(index)];
    }
    const index = this.indexes.get(decodeURIComponent(parts[1] ?? ""));
    if (parts.length !== 2) throw new HttpError(404, `no route ${method} ${url.pathname}`);
    if (!index) throw new HttpError(404, `index ${parts[1]} not found`);
    if (method === "GET") return [200, this.model(index)];
    if (method === "DELETE") {
      if (index.deletionProtection === "enabled") throw new HttpError(412, "deletion protection is enabled", "FAILED_PRECONDITION");
      this.indexes.delete(index.name);
      return [202, undefined];
    }
    throw new HttpError(405, `${method} not allowed`);
  }

  private model(i: Index) {
    return {
      name: i.name,
      dimension: i.dimension,
      metric: i.metric,
      host: `${this.base}/data/${i.name}`,
      deletion_protection: i.deletionProtection,
      tags: i.tags,
      spec: i.spec,
      status: { ready: true, state: "Ready" },
      vector_type: "dense",
    };
  }

  private data(method: string, url: URL, body: unknown): [number, unknown] {
    const [, , name, ...rest] = url.pathname.split("/");
    const index = this.indexes.get(name ?? "");
    if (!index) throw new HttpError(404, `index ${name} not found`);
    this.settle(index);
    const route = `${method} /${rest.join("/")}`;
    const ns = (namespace: string | undefined | null) => {
      const key = namespace ?? "";
      this.limitRate(index.name, key);
      return key;
    };
    switch (route) {
      case "POST /vectors/upsert": {
        const r = parse(models.upsert, body);
        const namespace = ns(r.namespace);
        for (const v of r.vectors) {
          if (!v.values) throw new HttpError(400, `vector ${v.id}: this dense index needs values`);
          if (v.values.length !== index.dimension) throw new HttpError(400, `Vector dimension ${v.values.length} does not match the dimension of the index ${index.dimension}`);
          if (Buffer.byteLength(v.id) > STANDIN_LIMITS.idBytes) throw new HttpError(400, `vector id exceeds ${STANDIN_LIMITS.idBytes} bytes`);
          if (v.metadata && Buffer.byteLength(JSON.stringify(v.metadata)) > STANDIN_LIMITS.metadataBytes) throw new HttpError(400, `Metadata size exceeds the limit of ${STANDIN_LIMITS.metadataBytes} bytes per vector`);
        }
        this.write(index, () => {
          const records = index.namespaces.get(namespace) ?? new Map<string, StoredRecord>();
          index.namespaces.set(namespace, records);
          for (const v of r.vectors) records.set(v.id, { id: v.id, values: v.values!, metadata: v.metadata as Metadata | undefined });
        });
        return [200, { upsertedCount: r.vectors.length }];
      }
      case "POST /query": {
        const r = parse(models.query, body);
        if (!r.vector === !r.id) throw new HttpError(400, "exactly one of vector and id is required");
        const records = index.namespaces.get(ns(r.namespace));
        const all = [...(records?.values() ?? [])];
        const vector = r.vector ?? records?.get(r.id!)?.values;
        if (!vector) return [200, { matches: [], namespace: r.namespace ?? "", usage: { readUnits: 1 } }];
        if (vector.length !== index.dimension) throw new HttpError(400, `Query vector dimension ${vector.length} does not match the dimension of the index ${index.dimension}`);
        const filter = r.filter && compileStandinFilter(r.filter);
        const scored = all.filter((x) => !filter || filter(x.metadata ?? {})).map((x) => ({ x, score: score(index.metric, vector, x.values) }));
        scored.sort((a, b) => (index.metric === "euclidean" ? a.score - b.score : b.score - a.score) || (a.x.id < b.x.id ? -1 : 1));
        const matches = scored.slice(0, r.topK).map(({ x, score }) => ({
          id: x.id,
          score,
          ...(r.includeValues ? { values: x.values } : {}),
          ...(r.includeMetadata && x.metadata ? { metadata: x.metadata } : {}),
        }));
        // Serverless bills about 1 read unit per 1 GB scanned, at least 1 (5 with a filter on small namespaces).
        return [200, { matches, namespace: r.namespace ?? "", usage: { readUnits: Math.max(1, Math.ceil(all.length / 10_000)) } }];
      }
      case "GET /vectors/fetch": {
        const ids = url.searchParams.getAll("ids");
        if (ids.length === 0) throw new HttpError(400, "ids are required");
        if (ids.length > STANDIN_LIMITS.fetchIds) throw new HttpError(400, `at most ${STANDIN_LIMITS.fetchIds} ids per fetch`);
        const namespace = ns(url.searchParams.get("namespace"));
        const records = index.namespaces.get(namespace);
        const vectors: Record<string, StoredRecord> = {};
        for (const id of ids) {
          const found = records?.get(id);
          if (found) vectors[id] = { id, values: found.values, ...(found.metadata ? { metadata: found.metadata } : {}) };
        }
        return [200, { vectors, namespace, usage: { readUnits: 1 } }];
      }
      case "POST /vectors/delete": {
        const r = parse(models.delete, body);
        if (r.filter) throw new HttpError(400, "delete by metadata filter is not supported on serverless indexes");
        if (!r.deleteAll === !r.ids) throw new HttpError(400, "exactly one of ids and deleteAll is required");
        const namespace = ns(r.namespace);
        this.write(index, () => {
          if (r.deleteAll) index.namespaces.delete(namespace);
          else for (const id of r.ids!) index.namespaces.get(namespace)?.delete(id);
        });
        return [200, {}];
      }
      case "GET /vectors/list": {
        const limit = Number(url.searchParams.get("limit") ?? STANDIN_LIMITS.listLimit);
        if (!Number.isInteger(limit) || limit < 1 || limit > STANDIN_LIMITS.listLimit) throw new HttpError(400, `limit must be from 1 to ${STANDIN_LIMITS.listLimit}`);
        const namespace = ns(url.searchParams.get("namespace"));
        const prefix = url.searchParams.get("prefix") ?? "";
        const after = url.searchParams.get("paginationToken");
        const afterId = after === null ? null : Buffer.from(after, "base64url").toString("utf8");
        // Bitwise ("C") order: compare UTF-8 bytes, not UTF-16 code units.
        const ids = [...(index.namespaces.get(namespace)?.keys() ?? [])].filter((id) => id.startsWith(prefix)).sort(bytewise);
        const rest = afterId === null ? ids : ids.filter((id) => bytewise(id, afterId) > 0);
        const page = rest.slice(0, limit);
        const next = rest.length > limit ? Buffer.from(page.at(-1)!, "utf8").toString("base64url") : undefined;
        return [200, { vectors: page.map((id) => ({ id })), ...(next ? { pagination: { next } } : {}), namespace, usage: { readUnits: 1 } }];
      }
      case "POST /describe_index_stats": {
        parse(models.describeIndexStats, body ?? {});
        const namespaces = Object.fromEntries([...index.namespaces].filter(([, r]) => r.size > 0).map(([n, r]) => [n, { vectorCount: r.size }]));
        const total = [...index.namespaces.values()].reduce((n, r) => n + r.size, 0);
        return [200, { namespaces, dimension: index.dimension, indexFullness: 0, totalVectorCount: total, metric: index.metric, vectorType: "dense" }];
      }
      case "GET /namespaces":
        return [200, { namespaces: [...index.namespaces].map(([name, r]) => ({ name, record_count: r.size })), total_count: index.namespaces.size }];
      default: {
        if (method === "DELETE" && rest[0] === "namespaces" && rest.length === 2) {
          const namespace = decodeURIComponent(rest[1]!);
          if (!index.namespaces.has(namespace)) throw new HttpError(404, `namespace ${namespace} not found`);
          this.write(index, () => index.namespaces.delete(namespace));
          return [202, {}];
        }
        throw new HttpError(404, `no route ${route}`);
      }
    }
  }

  private write(index: Index, apply: () => void): void {
    if (this.consistencyDelayMs <= 0) return apply();
    index.pending.push({ at: Date.now() + this.consistencyDelayMs, apply });
  }

  private settle(index: Index): void {
    const now = Date.now();
    while (index.pending.length > 0 && index.pending[0]!.at <= now) index.pending.shift()!.apply();
  }

  private limitRate(index: string, namespace: string): void {
    if (!Number.isFinite(this.namespaceRate)) return;
    const key = `${index}/${namespace}`;
    const second = Math.floor(Date.now() / 1000);
    const w = this.window.get(key);
    const current = w && w.second === second ? w : { second, n: 0 };
    current.n++;
    this.window.set(key, current);
    if (current.n > this.namespaceRate) throw new HttpError(429, `Request rate exceeded for namespace ${namespace}`);
  }
}

function parse<T>(model: z.ZodType<T>, body: unknown): T {
  const r = model.safeParse(body);
  if (!r.success) throw new HttpError(400, `invalid request: ${r.error.issues.map((i) => `${i.path.join(".") || "body"}: ${i.message}`).join("; ")}`);
  return r.data;
}

const bytewise = (a: string, b: string) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));

function score(metric: Index["metric"], q: readonly number[], v: readonly number[]): number {
  let dot = 0;
  let qq = 0;
  let vv = 0;
  let d2 = 0;
  for (let i = 0; i < q.length; i++) {
    dot += q[i]! * v[i]!;
    qq += q[i]! * q[i]!;
    vv += v[i]! * v[i]!;
    d2 += (q[i]! - v[i]!) ** 2;
  }
  if (metric === "dotproduct") return dot;
  if (metric === "euclidean") return d2; // Pinecone reports the squared distance
  return dot / Math.sqrt(qq * vv);
}

type Predicate = (m: Metadata) => boolean;
const scalar = (v: unknown): v is string | number | boolean => typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v));

/**
 * Pinecone's filter language: `$eq $ne $gt $gte $lt $lte $in $nin $exists $and $or`. On a list
 * field `$eq`/`$in` match when the list holds the value; `$ne`/`$nin` match records without the
 * field (MongoDB's rule, which Pinecone's language follows); comparisons are numeric only.
 */
export function compileStandinFilter(filter: unknown): Predicate {
  if (typeof filter !== "object" || filter === null || Array.isArray(filter)) throw new HttpError(400, "filter must be an object");
  const parts: Predicate[] = [];
  for (const [key, spec] of Object.entries(filter)) {
    if (key === "$and" || key === "$or") {
      if (!Array.isArray(spec) || spec.length === 0) throw new HttpError(400, `${key} takes a non-empty array`);
      const inner = spec.map(compileStandinFilter);
      parts.push(key === "$and" ? (m) => inner.every((p) => p(m)) : (m) => inner.some((p) => p(m)));
      continue;
    }
    if (key.startsWith("$")) throw new HttpError(400, `unknown operator ${key}`);
    const ops = typeof spec === "object" && spec !== null && !Array.isArray(spec) ? (spec as Record<string, unknown>) : { $eq: spec };
    for (const [op, value] of Object.entries(ops)) {
      const has = (m: Metadata, x: unknown) => {
        const v = m[key];
        return Array.isArray(v) ? v.includes(x as string) : v === x;
      };
      switch (op) {
        case "$eq":
        case "$ne":
          if (!scalar(value)) throw new HttpError(400, `${op} takes a string, number or boolean`);
          parts.push(op === "$eq" ? (m) => has(m, value) : (m) => !has(m, value));
          break;
        case "$in":
        case "$nin":
          if (!Array.isArray(value) || !value.every(scalar)) throw new HttpError(400, `${op} takes an array`);
          parts.push(op === "$in" ? (m) => value.some((x) => has(m, x)) : (m) => !value.some((x) => has(m, x)));
          break;
        case "$exists":
          if (typeof value !== "boolean") throw new HttpError(400, "$exists takes a boolean");
          parts.push((m) => (key in m) === value);
          break;
        case "$gt":
        case "$gte":
        case "$lt":
        case "$lte": {
          if (typeof value !== "number") throw new HttpError(400, `${op} takes a number`);
          const cmp = { $gt: (a: number) => a > value, $gte: (a: number) => a >= value, $lt: (a: number) => a < value, $lte: (a: number) => a <= value }[op];
          parts.push((m) => typeof m[key] === "number" && cmp(m[key] as number));
          break;
        }
        default:
          throw new HttpError(400, `unknown operator ${op}`);
      }
    }
  }
  return (m) => parts.every((p) => p(m));
}
