import { AsyncLocalStorage } from "node:async_hooks";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier, TIERS } from "../src/config.js";
import { tierChangeMoves } from "../src/tenancy/registry.js";
import { Prng } from "./fuzz-prng.js";

/**
 * The leak fuzzer: a seeded random walk of tenant operations through the library (data manager,
 * registry, background moves, erasure) checked after every step against an in-memory model of what
 * each tenant owns. Tenants of every tier share the same document ids, filters try to name other
 * tenants, and tenants change tier (moving between a shared namespace and a dedicated index while
 * they keep working), get suspended and resumed, and are erased and registered again mid-run.
 *
 * A *leak* is any row another tenant could have written reaching the caller (wrong `tenant_id`,
 * an id the caller does not own, data surviving an erasure, or the product's own last-line check
 * firing). A *mismatch* is any other difference from the model (a missing row, a wrong count, a
 * wrong top-k for an exact-search tenant). An *error* is an exception the model did not expect.
 * The run does not stop at the first failure: it records each with the seed, the operation number
 * and the operations before it, which replays the run (`seed` fixes the operation sequence; only
 * the timing of background moves varies).
 */

/** Quotas out of the fuzzer's way: it checks isolation, not rate limits (those have their own suites). */
const UNLIMITED = { maxDocuments: 1_000_000, maxDailyQueries: 1_000_000_000, requestsPerSecond: 1_000_000, burst: 1_000_000, maxConcurrent: 1_000 };
/** The Bulkhead configuration the fuzzer expects (CI test and `npm run soak`). */
export const FUZZ_CONFIG = {
  dimension: 8,
  // Low, so that the large tenants of a run cross it and are searched through HNSW while the rest stay exact.
  annIndexThreshold: 40,
  tierQuotas: { free: UNLIMITED, pro: UNLIMITED, enterprise: UNLIMITED },
};

export interface LeakFuzzOptions {
  seed: number;
  operations: number;
  /** Tenants (≥ 40 in CI and soak): a third of each tier. */
  tenants?: number;
  /** Must equal the Bulkhead's `annIndexThreshold`: tenants that never reached it search exactly. */
  annIndexThreshold: number;
  /** Messages passed to the Bulkhead's `warn` (a failed background move is reported there). */
  warnings?: string[];
  /** Progress lines (soak). */
  log?: (line: string) => void;
  progressEvery?: number;
  /**
   * A running HTTP service on the same Bulkhead: a quarter of the data calls then go through it
   * with the tenant's own key, and keys of erased tenants are tried against the tenant registered
   * again under the same id (they must be refused: that tenant is someone else).
   */
  http?: { baseUrl: string };
  /**
   * Walks run at once (default 1), each over its own share of the tenants with its own PRNG stream
   * (seed + worker × 7919): different tenants' operations then interleave on the connection pool,
   * while each tenant's own stay in order, so the model still holds. With more than one, the seed
   * fixes each walk's operations but not how they interleave.
   */
  concurrency?: number;
}

export interface Failure {
  kind: "leak" | "mismatch" | "error";
  /** Which walk (with `concurrency` > 1) and its operation number. */
  worker: number;
  op: number;
  tenant: string;
  what: string;
  detail: string;
  /** The operations just before (and including) the failing one, for replay. */
  recent: string[];
}

export interface LeakFuzzReport {
  seed: number;
  operations: number;
  checks: number;
  leaks: number;
  mismatches: number;
  errors: number;
  byOperation: Record<string, number>;
  tenants: number;
  /** Tenants whose namespace got an HNSW index at some point (checked for ownership, not exact top-k). */
  annTenants: number;
  movesCompleted: number;
  erasures: number;
  /** Data calls made through the HTTP service with the tenant's key. */
  httpCalls: number;
  durationMs: number;
  failures: Failure[];
}

/** Document ids every tenant uses: the same names in every tenant (collisions are the point). */
const ID_POOL = [
  ...Array.from({ length: 44 }, (_, i) => `doc-${i}`),
  "shared id", "ドキュメント-1", "a'b\"c", "x;DROP TABLE vec", // odd but valid ids, also in every tenant
];
const GHOST_IDS = ["ghost-1", "doc-999", "DOC-1", "doc-1 "]; // never written by anyone
const CATEGORIES = ["a", "b", "c"];
const TAGS = ["x", "y", "z"];
const DIM = 8;
const EPS = 1e-4;

type Json = string | number | boolean | string[];
interface Doc {
  values: number[];
  metadata: Record<string, Json>;
}
interface ModelTenant {
  id: string;
  tier: TenantTier;
  status: "active" | "suspended" | "erased";
  docs: Map<string, Doc>;
  /** Ids it draws from: small tenants stay below the ANN threshold, large ones cross it. */
  pool: readonly string[];
  /** The namespace may have an HNSW index (the model reached the threshold since registration). */
  maybeAnn: boolean;
  everAnn: boolean;
  /** Tier a background move is taking it to. */
  movingTo?: TenantTier;
  /** The audit log's last id when that move began: its run has ended once a later `tenant.move` entry names the tenant. */
  moveAuditFrom?: number;
}

const canonical = (v: unknown): string =>
  Array.isArray(v) ? `[${v.map(canonical).join(",")}]` : v && typeof v === "object" ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(",")}}` : JSON.stringify(v);
const truncate = (s: string, n = 400) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);
const codeOf = (err: unknown) => (err as { code?: string })?.code ?? (err as Error)?.name ?? "unknown";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = Math.fround(a[i]!);
    const y = Math.fround(b[i]!);
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return dot / Math.sqrt(na * nb);
}

/** Pinecone `$eq` as Bulkhead compiles it (jsonb containment): equal, or a list containing the value. */
function eq(field: Json | undefined, v: unknown): boolean {
  if (field === undefined) return false;
  return Array.isArray(field) ? field.some((x) => x === v) : field === v;
}

/** The model's reading of a filter (the semantics documented in src/stores/filter.ts). */
export function matches(metadata: Record<string, Json>, filter: Record<string, unknown>): boolean {
  for (const [key, spec] of Object.entries(filter)) {
    if (key === "$and") {
      if (!(spec as Record<string, unknown>[]).every((f) => matches(metadata, f))) return false;
      continue;
    }
    if (key === "$or") {
      if (!(spec as Record<string, unknown>[]).some((f) => matches(metadata, f))) return false;
      continue;
    }
    const value = metadata[key];
    const ops = spec !== null && typeof spec === "object" && !Array.isArray(spec) ? (spec as Record<string, unknown>) : { $eq: spec };
    for (const [op, arg] of Object.entries(ops)) {
      let ok: boolean;
      switch (op) {
        case "$eq": ok = eq(value, arg); break;
        case "$ne": ok = !eq(value, arg); break;
        case "$in": ok = (arg as unknown[]).some((x) => eq(value, x)); break;
        case "$nin": ok = !(arg as unknown[]).some((x) => eq(value, x)); break;
        case "$exists": ok = (value !== undefined) === arg; break;
        case "$gt": ok = typeof value === "number" && value > (arg as number); break;
        case "$gte": ok = typeof value === "number" && value >= (arg as number); break;
        case "$lt": ok = typeof value === "number" && value < (arg as number); break;
        case "$lte": ok = typeof value === "number" && value <= (arg as number); break;
        default: throw new Error(`model: unknown operator ${op}`);
      }
      if (!ok) return false;
    }
  }
  return true;
}

/** Runs the fuzzer on an open Bulkhead (dimension 8, cosine, rate limits out of the way). */
export async function runLeakFuzz(bh: Bulkhead, options: LeakFuzzOptions): Promise<LeakFuzzReport> {
  /** One walk: its PRNG, its operation number and its last operations. */
  interface Lane {
    worker: number;
    prng: Prng;
    op: number;
    recent: string[];
  }
  const lanes = new AsyncLocalStorage<Lane>();
  const root: Lane = { worker: 0, prng: new Prng(options.seed), op: 0, recent: [] };
  const lane = () => lanes.getStore() ?? root;
  /** The current walk's PRNG. */
  const rng = {
    next: () => lane().prng.next(),
    int: (min: number, max: number) => lane().prng.int(min, max),
    chance: (p: number) => lane().prng.chance(p),
    pick: <T>(items: readonly T[]) => lane().prng.pick(items),
    sample: <T>(items: readonly T[], n: number) => lane().prng.sample(items, n),
    weighted: <K extends string>(weights: Readonly<Record<K, number>>) => lane().prng.weighted(weights),
  };
  const started = Date.now();
  const tenantCount = options.tenants ?? 42;
  const ids = Array.from({ length: tenantCount }, (_, i) => `fz-${options.seed % 1000}-${String(i).padStart(2, "0")}`);
  const model = new Map<string, ModelTenant>();
  const report: LeakFuzzReport = {
    seed: options.seed, operations: 0, checks: 0, leaks: 0, mismatches: 0, errors: 0, byOperation: {},
    tenants: tenantCount, annTenants: 0, movesCompleted: 0, erasures: 0, httpCalls: 0, durationMs: 0, failures: [],
  };
  let current = "";
  const warningsSeen = () => options.warnings?.length ?? 0;
  let warningsChecked = 0;

  const fail = (kind: Failure["kind"], tenant: string, what: string, detail: unknown) => {
    report[kind === "leak" ? "leaks" : kind === "mismatch" ? "mismatches" : "errors"]++;
    const text = typeof detail === "string" ? detail : detail instanceof Error ? `${codeOf(detail)}: ${detail.message}` : JSON.stringify(detail);
    const { worker, op, recent } = lane();
    if (report.failures.length < 50) report.failures.push({ kind, worker, op, tenant, what, detail: truncate(text, 1500), recent: [...recent] });
    options.log?.(`FAILURE ${kind} walk ${worker} op #${op} tenant ${tenant} ${what}: ${truncate(text, 300)}`);
  };
  /** One comparison; false means `fail` was called. */
  const check = (ok: boolean, kind: "leak" | "mismatch", tenant: string, what: string, detail: () => unknown): boolean => {
    report.checks++;
    if (!ok) fail(kind, tenant, what, detail());
    return ok;
  };
  const note = (line: string) => {
    const l = lane();
    current = line;
    l.recent.push(`#${l.op} ${truncate(line, 300)}`);
    if (l.recent.length > 25) l.recent.shift();
  };

  // ---- generators -------------------------------------------------------------------------------
  const vector = () => {
    const v = Array.from({ length: DIM }, () => Math.round((rng.next() * 2 - 1) * 1000) / 1000);
    if (!v.some((x) => x !== 0)) v[0] = 0.5; // cosine has no all-zero vector
    return v;
  };
  const metadata = (self: string): Record<string, Json> => ({
    category: rng.pick(CATEGORIES),
    n: rng.int(0, 9),
    flag: rng.chance(0.5),
    tags: rng.sample(TAGS, rng.int(0, 3)),
    owner: rng.pick(ids), // another tenant's id in a field of one's own: filters on it must not widen anything
    ...(rng.chance(0.5) ? { opt: "o" } : {}),
    ...(rng.chance(0.2) ? { tenant_id: self } : {}), // a caller may repeat its own id
    text: `a document of ${self}`,
  });
  const others = (self: string) => ids.filter((i) => i !== self);
  const fieldCondition = (self: string): Record<string, unknown> => {
    switch (rng.int(0, 15)) {
      case 0: return { category: rng.pick(CATEGORIES) };
      case 1: return { category: { [rng.pick(["$eq", "$ne"])]: rng.pick(CATEGORIES) } };
      case 2: return { category: { [rng.pick(["$in", "$nin"])]: rng.sample(CATEGORIES, rng.int(1, 3)) } };
      case 3: return { n: { [rng.pick(["$gt", "$gte", "$lt", "$lte"])]: rng.int(0, 9) } };
      case 4: return { n: { $gte: rng.int(0, 5), $lte: rng.int(4, 9) } };
      case 5: return { n: rng.int(0, 9) };
      case 6: return { flag: rng.chance(0.5) };
      case 7: return { tags: rng.chance(0.5) ? rng.pick(TAGS) : { $in: rng.sample(TAGS, rng.int(1, 2)) } };
      case 8: return { opt: { $exists: rng.chance(0.5) } };
      case 9: return { owner: { $in: rng.sample(ids, rng.int(1, 4)) } };
      // tenant_id tricks: each may only narrow the caller's own documents
      case 10: return { tenant_id: rng.pick(others(self)) };
      case 11: return { tenant_id: { $ne: self } };
      case 12: return { tenant_id: { $in: [...rng.sample(others(self), rng.int(1, 5)), ...(rng.chance(0.5) ? [self] : [])] } };
      case 13: return { tenant_id: rng.chance(0.5) ? { $nin: [self] } : { $exists: true } };
      case 14: return { tenant_id: self };
      default: return { $or: [{ tenant_id: rng.pick(others(self)) }, { tenant_id: { $ne: self } }, ...(rng.chance(0.5) ? [{ category: rng.pick(CATEGORIES) }] : [])] };
    }
  };
  const filterNode = (self: string, depth: number): Record<string, unknown> => {
    const r = rng.int(0, depth >= 3 ? 1 : 4);
    if (r === 0) return fieldCondition(self);
    if (r === 1) return { ...fieldCondition(self), ...fieldCondition(self) }; // implicit AND (a repeated key keeps the last)
    const parts = Array.from({ length: rng.int(1, 3) }, () => filterNode(self, depth + 1));
    return { [rng.chance(0.5) ? "$or" : "$and"]: parts };
  };

  // ---- the two ways in: the library, and the HTTP service with the tenant's key -----------------
  type Rows = { id: string; score: number; metadata: Record<string, unknown> }[];
  type Docs = { id: string; values: number[]; metadata: Record<string, unknown> }[];
  interface Channel {
    name: "lib" | "http";
    upsert(t: ModelTenant, docs: { id: string; values: number[]; metadata?: Record<string, unknown> }[]): Promise<{ upserted: number }>;
    query(t: ModelTenant, q: number[], o: { topK: number; filter?: Record<string, unknown> }): Promise<{ matches: Rows }>;
    fetch(t: ModelTenant, ids: string[]): Promise<{ documents: Docs }>;
    delete(t: ModelTenant, ids: string[]): Promise<{ deleted: number }>;
  }
  const keys = new Map<string, string>();
  const oldKeys = new Map<string, string[]>();
  const lib: Channel = {
    name: "lib",
    upsert: (t, docs) => bh.dataManager.upsertDocuments(t.id, docs),
    query: (t, q, o) => bh.dataManager.queryDocuments(t.id, q, o),
    fetch: (t, ids) => bh.dataManager.fetchDocuments(t.id, ids),
    delete: (t, ids) => bh.dataManager.deleteDocuments(t.id, ids),
  };
  /** POSTs with a key; a problem+json answer is thrown as an error carrying its code, like the library's. */
  const post = async (key: string | undefined, path: string, body: unknown): Promise<any> => {
    report.httpCalls++;
    const res = await fetch(options.http!.baseUrl + path, { method: "POST", headers: { authorization: `Bearer ${key ?? "none"}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    const json = (await res.json()) as { code?: string; detail?: string };
    if (res.status >= 400) throw Object.assign(new Error(`HTTP ${res.status}: ${json.detail}`), { code: json.code, status: res.status });
    return json;
  };
  const http: Channel = {
    name: "http",
    upsert: (t, documents) => post(keys.get(t.id), "/v1/documents", { documents }),
    query: (t, q, o) => post(keys.get(t.id), "/v1/query", { vector: q, ...o }),
    fetch: (t, ids) => post(keys.get(t.id), "/v1/documents/fetch", { ids }),
    delete: (t, ids) => post(keys.get(t.id), "/v1/documents/delete", { ids }),
  };
  const channel = (): Channel => (options.http && rng.chance(0.25) ? http : lib);
  const newKey = async (t: string) => {
    if (options.http) keys.set(t, (await bh.keys.createKey("tenant", { tenantId: t, name: "leak fuzz" }, "fuzz")).key);
  };

  // ---- checks on results ------------------------------------------------------------------------
  /** Every row must carry the caller's tenant id and be one of the caller's documents. */
  const owned = (t: ModelTenant, what: string, rows: readonly { id: string; metadata: Record<string, unknown> }[]) => {
    let ok = true;
    for (const row of rows) {
      ok = check(row.metadata?.tenant_id === t.id, "leak", t.id, `${what}: row tenant_id`, () => ({ id: row.id, tenant_id: row.metadata?.tenant_id })) && ok;
      ok = check(t.docs.has(row.id), "leak", t.id, `${what}: id not in the caller's model`, () => ({ id: row.id, metadata: row.metadata })) && ok;
    }
    return ok;
  };
  const sameDoc = (t: ModelTenant, what: string, id: string, got: { metadata: Record<string, unknown>; values?: number[] }) => {
    const want = t.docs.get(id);
    if (!want) return;
    check(canonical(got.metadata) === canonical(want.metadata), "mismatch", t.id, `${what}: metadata of ${id}`, () => ({ got: got.metadata, want: want.metadata }));
    if (got.values) {
      const close = got.values.length === DIM && got.values.every((v, i) => Math.abs(v - Math.fround(want.values[i]!)) <= 1e-6);
      check(close, "mismatch", t.id, `${what}: values of ${id}`, () => ({ got: got.values, want: want.values }));
    }
  };

  /** Erased or suspended tenants must be refused with the right code; active ones must succeed. */
  const expectRefusal = async (t: ModelTenant, what: string, call: () => Promise<unknown>, via: Channel = lib) => {
    // Through HTTP an erased tenant's key was erased with it: the key itself is refused.
    const code = t.status === "erased" ? (via === http ? "UNAUTHENTICATED" : "TENANT_NOT_FOUND") : "TENANT_SUSPENDED";
    try {
      const result = (await call()) as { matches?: { id: string; metadata: Record<string, unknown> }[]; documents?: { id: string; metadata: Record<string, unknown> }[] };
      // Answering at all is wrong; answering with rows of an erased tenant would be a leak.
      const rows = result?.matches ?? result?.documents ?? [];
      check(false, rows.length > 0 ? "leak" : "mismatch", t.id, `${what} on a ${t.status} tenant answered`, () => truncate(JSON.stringify(result)));
    } catch (err) {
      check(codeOf(err) === code, "mismatch", t.id, `${what} on a ${t.status} tenant`, () => `expected ${code}, got ${codeOf(err)}: ${(err as Error).message}`);
    }
  };

  /** After an unexpected error the model may be stale: read the tenant's status and documents back. */
  const resync = async (t: ModelTenant) => {
    try {
      const row = await bh.registry.getTenant(t.id).catch((err) => {
        if (codeOf(err) === "TENANT_NOT_FOUND") return null;
        throw err;
      });
      if (!row) {
        t.status = "erased";
        t.docs.clear();
        return;
      }
      t.status = row.status === "active" ? "active" : "suspended";
      t.tier = row.tier;
      if (t.status !== "active") return;
      const got = await bh.dataManager.fetchDocuments(t.id, [...ID_POOL]);
      for (const d of got.documents) check(d.metadata.tenant_id === t.id, "leak", t.id, "resync: row tenant_id", () => ({ id: d.id, tenant_id: d.metadata.tenant_id }));
      t.docs = new Map(got.documents.map((d) => [d.id, { values: d.values, metadata: d.metadata as Record<string, Json> }]));
    } catch {
      /* the next operations will say more */
    }
  };

  /** Fetches every id there is and compares with the model: nothing more, nothing less. */
  const verifyAll = async (t: ModelTenant, what: string) => {
    if (t.status !== "active") return;
    const got = await bh.dataManager.fetchDocuments(t.id, [...ID_POOL, ...GHOST_IDS]);
    owned(t, what, got.documents);
    const gotIds = got.documents.map((d) => d.id).sort();
    const wantIds = [...t.docs.keys()].sort();
    check(canonical(gotIds) === canonical(wantIds), "mismatch", t.id, `${what}: ids`, () => ({ missing: wantIds.filter((i) => !gotIds.includes(i)), extra: gotIds.filter((i) => !wantIds.includes(i)) }));
    for (const d of got.documents) sameDoc(t, what, d.id, d);
    const count = await bh.dataManager.countDocuments(t.id);
    check(count === t.docs.size, "mismatch", t.id, `${what}: count`, () => ({ got: count, want: t.docs.size }));
  };

  // ---- moves ------------------------------------------------------------------------------------
  const settleMove = async (t: ModelTenant, wait: boolean) => {
    if (!t.movingTo) return;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const move = await bh.registry.getMove(t.id);
      // Switched in the catalogue is not yet finished: the background run still reads the tenant and
      // writes its audit entry afterwards. Erasing the tenant in between makes that run fail (a
      // finding of its own); wait for the entry instead.
      const finished = move ? false : (await bh.audit.list(500)).some((e) => e.id > (t.moveAuditFrom ?? 0) && e.action === "tenant.move" && e.target === t.id);
      if (!move && !finished && wait && Date.now() < deadline) {
        await sleep(10);
        continue;
      }
      if (!move) {
        if (!finished) {
          if (!wait) return;
          fail("error", t.id, "background move switched but its run never wrote its audit entry", "");
        }
        const tier = (await bh.registry.getTenant(t.id)).tier;
        check(tier === t.movingTo, "mismatch", t.id, "tier after the move", () => ({ got: tier, want: t.movingTo }));
        t.tier = tier;
        t.movingTo = undefined;
        report.movesCompleted++;
        return;
      }
      const status = await bh.moves.status(t.id).catch(() => null);
      if (status?.error && !status.running) {
        fail("error", t.id, "background move failed", status.error);
        await bh.moves.rollback(t.id, "fuzz").catch((err) => fail("error", t.id, "rollback after a failed move", err));
        t.movingTo = undefined;
        return;
      }
      if (!wait) return;
      if (Date.now() > deadline) {
        fail("error", t.id, "background move did not finish in 60 s", JSON.stringify(status));
        await bh.moves.rollback(t.id, "fuzz").catch(() => {});
        t.movingTo = undefined;
        return;
      }
      await sleep(10); // lets the move's timers run (an embedded database can otherwise starve them)
    }
  };
  const settleAllMoves = async () => {
    for (const t of model.values()) await settleMove(t, true);
  };

  // ---- setup ------------------------------------------------------------------------------------
  for (const [i, id] of ids.entries()) {
    const tier = TIERS[i % TIERS.length]!;
    await bh.registry.registerTenant(id, `Fuzz tenant ${i}`, tier);
    await newKey(id);
    // Every seventh tenant draws from all ids and crosses the ANN threshold; the rest stay exact.
    const pool = i % 7 === 3 ? ID_POOL : ID_POOL.slice(0, Math.max(1, Math.min(ID_POOL.length, options.annIndexThreshold - 8)));
    model.set(id, { id, tier, status: "active", docs: new Map(), pool, maybeAnn: false, everAnn: false });
  }

  // ---- the walk ---------------------------------------------------------------------------------
  const WEIGHTS: Record<string, number> = { upsert: 28, query: 30, fetch: 14, delete: 8, count: 3, forge: 2, verify: 1, suspend: 0.8, tier: 1.2, erase: 0.4, ...(options.http ? { keys: 1 } : {}) };
  const workers = Math.max(1, Math.floor(options.concurrency ?? 1));
  let done = 0;
  const walk = async (l: Lane, mine: readonly string[]) => {
    const large = mine.filter((id) => model.get(id)!.pool === ID_POOL);
    const count = Math.floor(options.operations / workers) + (l.worker < options.operations % workers ? 1 : 0);
    for (l.op = 1; l.op <= count; l.op++) {
      // Large tenants are picked more often, so that they do cross the ANN threshold in a short run.
      const t = large.length && rng.chance(0.2) ? model.get(rng.pick(large))! : model.get(rng.pick(mine))!;
      let kind: string = rng.weighted(WEIGHTS);
      if (t.status === "erased" && rng.chance(0.4)) kind = "register";
      else if (t.status === "suspended" && rng.chance(0.3)) kind = "resume";
      report.byOperation[kind] = (report.byOperation[kind] ?? 0) + 1;
      try {
        await step(t, kind);
      } catch (err) {
        fail(codeOf(err) === "ISOLATION_VIOLATION" ? "leak" : "error", t.id, `${kind} threw`, err);
        await resync(t);
      }
      report.operations = ++done;
      if (warningsSeen() > warningsChecked) {
        const fresh = options.warnings!.slice(warningsChecked);
        warningsChecked += fresh.length;
        for (const w of fresh) if (/move/.test(w)) fail("error", "-", "warning", w);
      }
      if (l.op % 97 === 0) for (const id of mine) await settleMove(model.get(id)!, false);
      if (options.progressEvery && done % options.progressEvery === 0) {
        const s = (Date.now() - started) / 1000;
        options.log?.(`${done} ops, ${report.checks} checks, leaks ${report.leaks}, mismatches ${report.mismatches}, errors ${report.errors}, ${Math.round(done / s)} ops/s`);
      }
    }
  };
  await Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const l: Lane = { worker: w, prng: new Prng(options.seed + w * 7919), op: 0, recent: [] };
      return lanes.run(l, () => walk(l, ids.filter((_, i) => i % workers === w)));
    }),
  );

  async function step(t: ModelTenant, kind: string): Promise<void> {
    const usable = t.status === "active";
    switch (kind) {
      case "upsert": {
        const chosen = rng.sample(t.pool, rng.int(1, 6));
        const docs = chosen.map((id) => ({ id, values: vector(), metadata: metadata(t.id) }));
        const via = channel();
        note(`upsert (${via.name}) ${t.id} ${canonical(docs.map((d) => d.id))}`);
        if (!usable) return expectRefusal(t, "upsert", () => via.upsert(t, docs), via);
        const res = await via.upsert(t, docs);
        check(res.upserted === docs.length, "mismatch", t.id, "upserted count", () => ({ got: res.upserted, want: docs.length }));
        for (const d of docs) t.docs.set(d.id, { values: d.values, metadata: { ...d.metadata, tenant_id: t.id } });
        if (t.docs.size >= options.annIndexThreshold && !t.maybeAnn) {
          t.maybeAnn = true;
          if (!t.everAnn) report.annTenants++;
          t.everAnn = true;
        }
        return;
      }
      case "query": {
        const q = vector();
        const topK = rng.pick([1, 3, 5, 10, 20, 60]);
        const filter = rng.chance(0.6) ? filterNode(t.id, 1) : undefined;
        const via = channel();
        note(`query (${via.name}) ${t.id} topK=${topK} filter=${filter ? canonical(filter) : "-"} vector=${canonical(q)}`);
        if (!usable) return expectRefusal(t, "query", () => via.query(t, q, { topK, filter }), via);
        const res = await via.query(t, q, { topK, filter });
        if (!owned(t, "query", res.matches)) return;
        const eligible = [...t.docs.entries()].filter(([, d]) => !filter || matches(d.metadata, filter)).map(([id, d]) => ({ id, score: cosine(q, d.values) }));
        const scoreOf = new Map(eligible.map((e) => [e.id, e.score]));
        const seen = new Set<string>();
        for (const m of res.matches) {
          check(!seen.has(m.id), "mismatch", t.id, "query: duplicate id", () => m.id);
          seen.add(m.id);
          check(scoreOf.has(m.id), "mismatch", t.id, "query: row does not satisfy the filter", () => ({ id: m.id, metadata: m.metadata, filter }));
          const want = scoreOf.get(m.id);
          if (want !== undefined) check(Math.abs(want - m.score) <= EPS, "mismatch", t.id, "query: score", () => ({ id: m.id, got: m.score, want }));
          sameDoc(t, "query", m.id, m);
        }
        check(res.matches.length <= topK, "mismatch", t.id, "query: more than topK", () => res.matches.length);
        if (!t.maybeAnn) {
          // Exact search: exactly min(topK, eligible) rows, and nothing left out scores higher than the last returned.
          check(res.matches.length === Math.min(topK, eligible.length), "mismatch", t.id, "query: exact top-k size", () => ({ got: res.matches.length, want: Math.min(topK, eligible.length), filter }));
          const last = Math.min(...res.matches.map((m) => m.score));
          const better = eligible.filter((e) => !seen.has(e.id) && e.score > last + EPS);
          check(better.length === 0, "mismatch", t.id, "query: exact top-k left out better documents", () => ({ better, last, filter }));
          for (let i = 1; i < res.matches.length; i++) check(res.matches[i - 1]!.score >= res.matches[i]!.score - EPS, "mismatch", t.id, "query: order", () => res.matches.map((m) => m.score));
        }
        return;
      }
      case "fetch": {
        const asked = [...rng.sample(ID_POOL, rng.int(1, 10)), ...(rng.chance(0.3) ? [rng.pick(GHOST_IDS)] : [])];
        const unique = [...new Set(asked)];
        const via = channel();
        note(`fetch (${via.name}) ${t.id} ${canonical(unique)}`);
        if (!usable) return expectRefusal(t, "fetch", () => via.fetch(t, unique), via);
        const res = await via.fetch(t, unique);
        if (!owned(t, "fetch", res.documents)) return;
        const want = unique.filter((i) => t.docs.has(i)).sort();
        const got = res.documents.map((d) => d.id).sort();
        check(canonical(got) === canonical(want), "mismatch", t.id, "fetch: ids", () => ({ got, want }));
        for (const d of res.documents) sameDoc(t, "fetch", d.id, d);
        return;
      }
      case "delete": {
        const chosen = rng.sample(ID_POOL, rng.int(1, 4));
        const via = channel();
        note(`delete (${via.name}) ${t.id} ${canonical(chosen)}`);
        if (!usable) return expectRefusal(t, "delete", () => via.delete(t, chosen), via);
        const before = await bh.registry.getTenant(t.id).catch(() => undefined);
        const res = await via.delete(t, chosen);
        const after = await bh.registry.getTenant(t.id).catch(() => undefined);
        const want = chosen.filter((i) => t.docs.has(i)).length;
        // More deleted than the caller owns would mean another tenant's rows were touched.
        check(res.deleted <= want, "leak", t.id, "delete: deleted more than the caller owns", () => ({ got: res.deleted, want }));
        // A store without transactions can report a delete that raced a move's switch as fewer
        // (the switch applied it, its redo found it done: README, Pinecone's known limits); the
        // documents themselves are checked like any others.
        const raced = before && after && before.placement.epoch !== after.placement.epoch && [before.store, after.store].some((s) => !bh.storeCapabilities[s]?.transactional);
        if (!raced) check(res.deleted >= want, "mismatch", t.id, "delete: count", () => ({ got: res.deleted, want }));
        for (const i of chosen) t.docs.delete(i);
        return;
      }
      case "count": {
        note(`count ${t.id}`);
        if (!usable) return expectRefusal(t, "count", () => bh.dataManager.countDocuments(t.id));
        const n = await bh.dataManager.countDocuments(t.id);
        check(n === t.docs.size, "mismatch", t.id, "count", () => ({ got: n, want: t.docs.size }));
        return;
      }
      case "forge": {
        // Writing a document stamped with another tenant's id must be refused, and change nothing.
        const victim = rng.pick(others(t.id));
        const id = rng.pick(t.pool);
        note(`forge ${t.id} writes ${id} with tenant_id=${victim}`);
        if (!usable) return;
        try {
          await bh.dataManager.upsertDocuments(t.id, [{ id, values: vector(), metadata: { tenant_id: victim, text: "forged" } }]);
          check(false, "leak", t.id, "forge: a document stamped with another tenant's id was accepted", () => ({ id, victim }));
          await resync(t);
        } catch (err) {
          check(codeOf(err) === "VALIDATION_FAILED", "mismatch", t.id, "forge: refusal code", () => `${codeOf(err)}: ${(err as Error).message}`);
        }
        return;
      }
      case "verify": {
        note(`verify ${t.id}`);
        return verifyAll(t, "verify");
      }
      case "suspend": {
        if (t.status === "erased") return step(t, "upsert");
        note(`suspend ${t.id}`);
        const s = await bh.registry.suspendTenant(t.id);
        check(s.status === "suspended", "mismatch", t.id, "suspend: status", () => s.status);
        t.status = "suspended";
        return;
      }
      case "resume": {
        note(`resume ${t.id}`);
        const s = await bh.registry.resumeTenant(t.id);
        check(s.status === "active", "mismatch", t.id, "resume: status", () => s.status);
        t.status = "active";
        return verifyAll(t, "after resume"); // suspension must not have lost or added anything
      }
      case "tier": {
        if (t.status === "erased") return step(t, "query");
        await settleMove(t, true);
        const to = rng.pick(TIERS.filter((x) => x !== t.tier));
        const background = tierChangeMoves(t.tier, to) && rng.chance(0.6);
        note(`tier ${t.id} ${t.tier} -> ${to}${background ? " (background move)" : ""}`);
        if (background) {
          t.moveAuditFrom = (await bh.audit.list(1))[0]?.id ?? 0;
          await bh.moves.start(t.id, { tier: to }, "fuzz");
          t.movingTo = to; // it keeps being used while its vectors move
          return;
        }
        const moved = tierChangeMoves(t.tier, to);
        const changed = await bh.registry.changeTier(t.id, to);
        check(changed.tier === to, "mismatch", t.id, "tier: after change", () => changed.tier);
        t.tier = to;
        if (moved) report.movesCompleted++;
        if (moved || rng.chance(0.3)) return verifyAll(t, "after tier change");
        return;
      }
      case "erase": {
        if (t.status === "erased") return step(t, "register");
        // Its own move must have finished (see settleMove); other tenants' moves may be dropping tables meanwhile.
        await settleMove(t, true);
        note(`erase ${t.id}`);
        const r = await bh.eraseTenant(t.id, "fuzz");
        const clean = Object.values(r.remaining).every((n) => n === 0);
        check(clean, "leak", t.id, "erase: rows left", () => r.remaining);
        if (r.proofError || (clean && !r.verified)) fail("error", t.id, "erase: proof not completed", r.proofError ?? "verified false with no row left");
        t.status = "erased";
        t.docs.clear();
        t.maybeAnn = false;
        report.erasures++;
        if (keys.has(t.id)) oldKeys.set(t.id, [...(oldKeys.get(t.id) ?? []), keys.get(t.id)!]);
        keys.delete(t.id);
        return;
      }
      case "register": {
        const tier = rng.pick(TIERS);
        note(`register ${t.id} again as ${tier}`);
        await bh.registry.registerTenant(t.id, `Fuzz tenant ${t.id} again`, tier);
        await newKey(t.id);
        t.status = "active";
        t.tier = tier;
        // Nothing of the erased tenant may come back under the same id.
        const got = await bh.dataManager.fetchDocuments(t.id, [...ID_POOL]);
        check(got.documents.length === 0, "leak", t.id, "register again: documents of the erased tenant came back", () => got.documents.map((d) => d.id));
        const q = await bh.dataManager.queryDocuments(t.id, vector(), { topK: 50 });
        check(q.matches.length === 0, "leak", t.id, "register again: query found documents", () => q.matches.map((m) => m.id));
        return;
      }
      case "keys": {
        // A key answers for its own tenant only: naming another tenant in the body is refused, and
        // the key of an erased tenant does not open the tenant registered again under its id.
        const old = oldKeys.get(t.id);
        if (old?.length && rng.chance(0.6)) {
          note(`old key of an erased ${t.id} queries`);
          try {
            const res = await post(rng.pick(old), "/v1/query", { vector: vector(), topK: 50 });
            check(false, "leak", t.id, "keys: the key of an erased tenant still works", () => ({ matches: (res as { matches: unknown[] }).matches.length }));
          } catch (err) {
            check(codeOf(err) === "UNAUTHENTICATED", "mismatch", t.id, "keys: old key refusal code", () => `${codeOf(err)}: ${(err as Error).message}`);
          }
          return;
        }
        if (t.status === "erased") return;
        const victim = rng.pick(others(t.id));
        note(`key of ${t.id} names ${victim} in the body`);
        try {
          const res = rng.chance(0.5) ? await post(keys.get(t.id), "/v1/query", { vector: vector(), tenantId: victim }) : await post(keys.get(t.id), "/v1/documents/fetch", { ids: ["doc-1"], tenantId: victim });
          check(false, "leak", t.id, "keys: a body naming another tenant was answered", () => truncate(JSON.stringify(res)));
        } catch (err) {
          // Suspended: refused before the body is looked at, which is as good.
          const want = t.status === "suspended" ? ["FORBIDDEN", "TENANT_SUSPENDED"] : ["FORBIDDEN"];
          check(want.includes(codeOf(err)), "mismatch", t.id, "keys: refusal code for another tenant's id", () => `${codeOf(err)}: ${(err as Error).message}`);
        }
        return;
      }
      default:
        throw new Error(`unknown operation ${kind}`);
    }
  }

  // ---- the end: every tenant read back whole ----------------------------------------------------
  root.op = options.operations + 1;
  current = "final verification";
  await settleAllMoves();
  for (const t of model.values()) {
    if (t.status === "suspended") {
      await bh.registry.resumeTenant(t.id);
      t.status = "active";
    }
    try {
      await verifyAll(t, "final");
    } catch (err) {
      fail("error", t.id, `final verification threw (${current})`, err);
    }
  }
  report.durationMs = Date.now() - started;
  return report;
}

/** One line per failure, for test output and the soak log. */
export function describeFailures(report: LeakFuzzReport): string {
  return report.failures
    .map((f) => `[${f.kind}] seed ${report.seed} walk ${f.worker} op #${f.op} tenant ${f.tenant}: ${f.what}\n  ${f.detail}\n  recent operations:\n    ${f.recent.join("\n    ")}`)
    .join("\n\n");
}
