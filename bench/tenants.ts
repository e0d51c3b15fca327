/**
 * bench:tenants — issue 14, target 4: how many tenants one PostgreSQL server database holds.
 *
 * Registers tenants through the library the way the admin API does (registry + a tenant key), 8 at
 * a time, each then given a few vectors, and measures along the way and at the end:
 * - registration latency (tenant + key) per window of tenants, first window against last;
 * - a small tenant's query p50 with 100 tenants registered, and again at the end (same tenants,
 *   same queries, nothing else running), plus the last 100 tenants registered;
 * - start-up: a new instance opened on the full database and its first query;
 * - a data-plane backend's private memory after touching 10,000 tenants (from /proc: run it on the
 *   database's machine);
 * - every operation that spans tenants, run once at full size, with the server's own
 *   max_locks_per_transaction: capacity, the tenant list, cost allocation and the monthly report,
 *   the readiness checklist, erasure with its proof, a backup, a move out of the pool and a tier
 *   change to enterprise, and the schema migration check of a start.
 *
 *   npm run bench:tenants                                                 # 100,000 tenants in a pool
 *   npm run bench:tenants -- --small-tenants namespace --tenants 10000    # a partition per tenant
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import pg from "pg";
import { openBulkhead, type Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { DEFAULT_SPEC, EmbeddingSpace, rng } from "./dataset.js";

const { values: args } = parseArgs({
  options: {
    tenants: { type: "string", default: "100000" },
    "small-tenants": { type: "string", default: "pool" },
    concurrency: { type: "string", default: "8" },
    vectors: { type: "string", default: "5" },
    window: { type: "string", default: "10000" },
    touch: { type: "string", default: "10000" },
    out: { type: "string" },
    // Only the service's start-up, on the schema a previous run left (appended to its results).
    "startup-only": { type: "boolean", default: false },
    // Only the migration-shaped transaction, on the schema a previous run left (added to its results).
    "migration-only": { type: "boolean", default: false },
  },
});
const N = Number(args.tenants);
const MODE = args["small-tenants"] as "pool" | "namespace";
const CONCURRENCY = Number(args.concurrency);
const VECTORS = Number(args.vectors);
const WINDOW = Math.min(Number(args.window), N);
const TOUCH = Math.min(Number(args.touch), N);
const out = args.out ?? `bench/results/tenants-${MODE}-postgres.json`;
const schema = `bench_tenants_${MODE}`;
const log = (m: string) => process.stderr.write(`${m}\n`);
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)]!;
const idOf = (i: number) => `t-${String(i).padStart(6, "0")}`;

const { DATABASE_URL: url, DATABASE_OWNER_URL: ownerUrl, DATABASE_DATA_URL: dataUrl } = process.env;
const superUrl = process.env.BENCH_SUPERUSER_URL ?? "postgres://postgres@127.0.0.1:5432/bulkhead";
if (!url?.startsWith("postgres") || !ownerUrl || !dataUrl) {
  log('bench:tenants runs against the PostgreSQL server: set DATABASE_URL, DATABASE_DATA_URL and DATABASE_OWNER_URL (eval "$(bash scripts/setup-postgres.sh)")');
  process.exit(2);
}
// Tags this run's data-plane connections, so their backends can be found in pg_stat_activity.
const APP = `bench-tenants-${process.pid}`;
const tagged = (u: string) => `${u}${u.includes("?") ? "&" : "?"}application_name=${APP}`;

const space = new EmbeddingSpace(DEFAULT_SPEC);
const random = rng(11);
const topics = space.topicsFor(0);
const vector = () => Array.from(space.sample(topics, random));

const open = (poolSize = 10, inSchema = schema) =>
  openBulkhead({
    database: url,
    databaseOwnerUrl: ownerUrl,
    databaseDataUrl: tagged(dataUrl),
    env: {},
    warn: () => {},
    config: { schema: inSchema, smallTenants: MODE, dimension: DEFAULT_SPEC.dimension, poolSize, tierQuotas: { free: { requestsPerSecond: 100_000, burst: 100_000, maxDailyQueries: 1_000_000 }, pro: { requestsPerSecond: 100_000, burst: 100_000, maxDailyQueries: 1_000_000 } } },
  });

/** One query per tenant, in order, with one vector: the times in ms. */
async function queryRound(bh: Bulkhead, tenants: string[], query: number[]): Promise<number[]> {
  const times: number[] = [];
  for (const t of tenants) {
    const start = performance.now();
    await bh.dataManager.queryDocuments(t, query, { topK: 10 });
    times.push(performance.now() - start);
  }
  return times;
}

const summary = (times: number[]) => ({ p50: round(quantile(times, 0.5), 3), p95: round(quantile(times, 0.95), 3), n: times.length });

/** Sequential queries over `tenants`, one round per query vector: the p50 and p95 in ms. */
async function queryLatency(bh: Bulkhead, tenants: string[], queries: number[][]): Promise<{ p50: number; p95: number; n: number }> {
  const times: number[] = [];
  for (const q of queries) times.push(...(await queryRound(bh, tenants, q)));
  return summary(times);
}

/**
 * Memory (kB) of each backend serving this run's data-plane connections: `Anonymous` is the
 * backend's own heap (its caches and memory contexts); shared buffers it touched are not in it.
 */
async function backendMemory(su: pg.Client): Promise<{ pid: number; privateKb: number; rssKb: number }[]> {
  const { rows } = await su.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = $1", [APP]);
  return rows.map(({ pid }) => {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(rollup)?.[1] ?? 0);
    return { pid, privateKb: kb("Anonymous"), rssKb: kb("Rss") };
  });
}

/**
 * `bulkhead serve` (the built CLI) started on the full database, timed from spawn to its first
 * 200 from /readyz (which checks the database): the best of three starts.
 */
async function serviceStartup(): Promise<{ readyMs: number[]; bestMs: number }> {
  const cli = new URL("../dist/cli/main.js", import.meta.url).pathname;
  if (!existsSync(cli)) throw new Error("build first: npm run build");
  const readyMs: number[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const env = { ...process.env, BULKHEAD_SCHEMA: schema, BULKHEAD_SMALL_TENANTS: MODE, BULKHEAD_DIMENSION: String(DEFAULT_SPEC.dimension), PORT: String(port), BULKHEAD_ADMIN_KEY: undefined };
    const start = performance.now();
    const child = spawn(process.execPath, [cli, "serve"], { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += String(d)));
    try {
      for (;;) {
        if (child.exitCode !== null) throw new Error(`serve exited: ${stderr.slice(0, 500)}`);
        if (performance.now() - start > 60_000) throw new Error("serve not ready within 60 s");
        const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false);
        if (ok) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      readyMs.push(round(performance.now() - start, 0));
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
  }
  return { readyMs, bestMs: Math.min(...readyMs) };
}

/**
 * What a migration that changes every vector table does (migration 18 added a column to each), in
 * one transaction as the schema's owner would run it, rolled back: on a partitioned table the
 * ALTER recurses into every partition and locks each one, so the lock count is what it measures.
 */
async function migrationShaped(su: pg.Client): Promise<string> {
  const { rows } = await su.query<{ relname: string }>(
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname ~ '^vec_[0-9]+$' AND NOT c.relispartition",
    [schema],
  );
  await su.query("BEGIN");
  try {
    for (const { relname } of rows) await su.query(`ALTER TABLE ${schema}."${relname}" ADD COLUMN bench_migration_probe int`);
    const { rows: locks } = await su.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE pid = pg_backend_pid()");
    return `${rows.length} vector tables altered in one transaction, holding ${locks[0]!.n} locks`;
  } finally {
    await su.query("ROLLBACK");
  }
}

async function timed<T>(what: string, fn: () => Promise<T>): Promise<{ what: string; ms: number; ok: boolean; detail: string }> {
  const start = performance.now();
  try {
    const result = await fn();
    const ms = round(performance.now() - start, 1);
    const detail = typeof result === "string" ? result : "";
    log(`  ${what}: ${ms} ms ${detail}`);
    return { what, ms, ok: true, detail };
  } catch (err) {
    const ms = round(performance.now() - start, 1);
    log(`  ${what}: FAILED after ${ms} ms: ${(err as Error).message}`);
    return { what, ms, ok: false, detail: (err as Error).message.slice(0, 300) };
  }
}

async function main() {
  if (args["migration-only"]) {
    const result = JSON.parse(readFileSync(out, "utf8"));
    const su = new pg.Client({ connectionString: superUrl });
    await su.connect();
    result.operations = [...result.operations.filter((o: { what: string }) => !o.what.startsWith("a migration")), await timed("a migration changing every vector table (one transaction, rolled back)", () => migrationShaped(su))];
    await su.end();
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  if (args["startup-only"]) {
    const result = JSON.parse(readFileSync(out, "utf8"));
    result.serviceStartup = { date: new Date().toISOString(), ...(await serviceStartup()) };
    log(`  service start-up (spawn to /readyz 200): ${result.serviceStartup.readyMs.join(", ")} ms`);
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const su = new pg.Client({ connectionString: superUrl });
  await su.connect();
  await su.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  const maxLocks = (await su.query<{ max_locks_per_transaction: string }>("SHOW max_locks_per_transaction")).rows[0]!.max_locks_per_transaction;
  const server = (await su.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
  log(`${MODE}: registering ${N.toLocaleString("en")} tenants, ${CONCURRENCY} at a time, ${VECTORS} vectors each (max_locks_per_transaction ${maxLocks})`);

  let { bulkhead: bh } = await open();
  const queries = Array.from({ length: 5 }, vector);
  const first100 = Array.from({ length: Math.min(100, N) }, (_, i) => idOf(i));
  const registration: number[] = [];
  const windows: { upTo: number; p50: number; p95: number; perSecond: number }[] = [];
  let at100: Awaited<ReturnType<typeof queryLatency>> | undefined;
  let registering = 0;
  const started = performance.now();

  const register = async (i: number) => {
    const id = idOf(i);
    const t0 = performance.now();
    await bh.registry.registerTenant(id, `Tenant ${i}`, i % 2 ? TenantTier.PRO : TenantTier.FREE);
    await bh.keys.createKey("tenant", { tenantId: id }, "admin:bench");
    registration[i] = performance.now() - t0;
  };
  const load = async (i: number) => {
    if (VECTORS > 0) await bh.dataManager.upsertDocuments(idOf(i), Array.from({ length: VECTORS }, (_, j) => ({ id: `d${j}`, values: vector(), metadata: { j } })));
  };
  /** Runs `step` for [from, to) with CONCURRENCY workers. */
  const each = async (from: number, to: number, step: (i: number) => Promise<void>) => {
    let next = from;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < to) await step(next++);
    }));
  };
  /**
   * Registers tenants [from, to), CONCURRENCY at a time, a window at a time: the window's
   * registrations are timed alone, then its tenants get their vectors (not timed), so every window
   * is measured under the same load.
   */
  const registerRange = async (from: number, to: number) => {
    for (let start = from; start < to; start = Math.min(to, Math.floor(start / WINDOW) * WINDOW + WINDOW)) {
      const end = Math.min(to, Math.floor(start / WINDOW) * WINDOW + WINDOW);
      const t0 = performance.now();
      await each(start, end, register);
      registering += performance.now() - t0;
      await each(start, end, load);
      if (end % WINDOW === 0 || end === N) {
        const slice = registration.slice(end - WINDOW, end).filter((x) => x !== undefined);
        const w = { upTo: end, p50: round(quantile(slice, 0.5)), p95: round(quantile(slice, 0.95)), perSecond: round(slice.length / (registering / 1000), 0) };
        registering = 0;
        windows.push(w);
        log(`  ${end.toLocaleString("en")} tenants: registration p50 ${w.p50} ms, p95 ${w.p95} ms, ${w.perSecond}/s (${round((performance.now() - started) / 1000, 0)} s)`);
      }
    }
  };

  // The reference, alive in the same run: a schema of its own holding only the first 100 tenants.
  await su.query(`DROP SCHEMA IF EXISTS ${schema}_100 CASCADE`);
  const { bulkhead: small } = await open(10, `${schema}_100`);
  const bulk = bh;
  bh = small;
  await registerRange(0, first100.length);
  bh = bulk;
  registration.length = 0;
  windows.length = 0;

  await registerRange(0, first100.length);
  at100 = await queryLatency(bh, first100, queries);
  log(`  query p50 with ${first100.length} tenants: ${at100.p50} ms (p95 ${at100.p95})`);
  await registerRange(first100.length, N);
  const registerSeconds = round((performance.now() - started) / 1000, 1);

  const last100 = Array.from({ length: Math.min(100, N) }, (_, i) => idOf(N - 1 - i));
  // Fresh planner statistics on both sides, as autovacuum would have gathered (this machine runs
  // with autovacuum off).
  for (const s of [schema, `${schema}_100`]) {
    for (const { tablename } of (await su.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = $1", [s])).rows) await su.query(`ANALYZE ${s}."${tablename}"`);
  }
  // Interleaved rounds, in alternating order: the 100-tenant schema, then the full one's first and
  // last 100 tenants, each with the same query vectors.
  const ref: number[] = [];
  const first: number[] = [];
  const last: number[] = [];
  for (let r = 0; r < 4; r++) {
    for (const q of queries) {
      const sides: [Bulkhead, string[], number[]][] = [[small, first100, ref], [bh, first100, first], [bh, last100, last]];
      for (const [b, ts, into] of r % 2 ? sides.reverse() : sides) into.push(...(await queryRound(b, ts, q)));
    }
  }
  const reference = summary(ref);
  const atEnd = summary(first);
  const lastEnd = summary(last);
  log(`  query p50, interleaved: ${reference.p50} ms with 100 tenants; with ${N.toLocaleString("en")}: ${atEnd.p50} ms (first 100), ${lastEnd.p50} ms (last 100)`);
  await small.close();
  await bh.close();

  // Start-up on the full database: open (migrations checked), then one tenant's first query.
  let t = performance.now();
  ({ bulkhead: bh } = await open(2));
  const openMs = round(performance.now() - t, 1);
  await bh.dataManager.queryDocuments(idOf(Math.floor(N / 2)), queries[0]!, { topK: 10 });
  const startupMs = round(performance.now() - t, 1);
  log(`  start-up: open ${openMs} ms, with the first query ${startupMs} ms`);

  // Backend memory: touch TOUCH distinct tenants through a pool of two data-plane connections.
  const memBefore = await backendMemory(su);
  t = performance.now();
  for (let i = 0; i < TOUCH; i++) await bh.dataManager.queryDocuments(idOf(Math.floor((i * N) / TOUCH)), queries[i % queries.length]!, { topK: 10 });
  const touchSeconds = round((performance.now() - t) / 1000, 1);
  const memAfter = await backendMemory(su);
  const sum = (xs: { privateKb: number }[]) => xs.reduce((a, b) => a + b.privateKb, 0);
  const memory = {
    backends: memAfter.length,
    tenantsTouched: TOUCH,
    touchSeconds,
    privateMiBBefore: round(sum(memBefore) / 1024, 1),
    privateMiBAfter: round(sum(memAfter) / 1024, 1),
    maxBackendPrivateMiB: round(Math.max(...memAfter.map((m) => m.privateKb)) / 1024, 1),
    growthKbPerTenant: round((sum(memAfter) - sum(memBefore)) / TOUCH, 2),
  };
  log(`  ${TOUCH.toLocaleString("en")} tenants touched by ${memory.backends} backends: heap ${memory.privateMiBBefore} → ${memory.privateMiBAfter} MiB (${memory.growthKbPerTenant} kB per tenant)`);
  await bh.close();

  // Every operation spanning tenants, once, at full size.
  ({ bulkhead: bh } = await open());
  const dir = mkdtempSync(join(tmpdir(), "bench-tenants-"));
  const operations = [
    await timed("migrations checked at start (open)", async () => void (await (await open(1)).bulkhead.close())),
    await timed("capacity", async () => `${(await bh.registry.getCapacity()).length} shared indexes`),
    await timed("list every tenant", async () => `${(await bh.registry.listTenants()).length} tenants`),
    await timed("cost allocation (fixed costs over every tenant)", async () => `${Object.keys(await bh.costEngine.allocateFixedCosts()).length} tenants allocated`),
    await timed("monthly cost report", async () => `${(await bh.costEngine.monthlyReport()).tenants.length} tenants reported`),
    await timed("readiness checklist", async () => {
      const results = await bh.readiness({ probeTenants: [idOf(1), idOf(2)], sampleTenant: idOf(1) });
      const failed = results.filter((r) => !r.passed).map((r) => `${r.name}: ${r.detail}`);
      return `${results.length} checks, failed: ${failed.join("; ") || "none"}`;
    }),
    await timed("backup of one tenant", async () => `${(await bh.backupTenant(idOf(3), join(dir, "t3.bhb"))).documents} vectors`),
    await timed("erasure of one tenant, with its proof", async () => `verified ${(await bh.eraseTenant(idOf(5), "admin:bench")).verified}`),
    await timed("move of one tenant out of its place (to a namespace, or another shared index)", async () => {
      const before = await bh.registry.getTenant(idOf(7));
      const moved = await bh.registry.moveTenant(idOf(7), MODE === "pool" ? {} : { index: (await bh.registry.getCapacity()).find((c) => c.index !== before.index && c.free > 0)?.index });
      return `${before.isolation} in ${before.index} → ${moved.isolation} in ${moved.index}`;
    }),
    await timed("tier change to enterprise (a move to a dedicated index)", async () => `${(await bh.registry.changeTier(idOf(9), TenantTier.ENTERPRISE)).isolation}`),
    await timed("a migration changing every vector table (one transaction, rolled back)", () => migrationShaped(su)),
  ];
  await bh.close();
  const service = await serviceStartup();
  log(`  service start-up (spawn to /readyz 200): ${service.readyMs.join(", ")} ms`);

  const { rows: size } = await su.query<{ relations: number; bytes: string }>(
    `SELECT count(*)::int AS relations, pg_size_pretty(sum(pg_total_relation_size(c.oid))::bigint) AS bytes
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`,
    [schema],
  );
  const { rows: all } = await su.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1", [schema]);
  await su.end();

  const result = {
    benchmark: "bench:tenants",
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, memoryGiB: round(totalmem() / 2 ** 30, 0), node: process.version, postgres: server, maxLocksPerTransaction: Number(maxLocks) },
    settings: { tenants: N, smallTenants: MODE, concurrency: CONCURRENCY, vectorsPerTenant: VECTORS, dimension: DEFAULT_SPEC.dimension },
    registration: { seconds: registerSeconds, windows, firstWindow: windows[0], lastWindow: windows.at(-1) },
    query: {
      // In the full schema when it held 100 tenants (earlier in the run: context only).
      whenItHeld100: at100,
      // Interleaved at the end: a schema of 100 tenants against the full one.
      reference100: reference,
      firstHundred: atEnd,
      lastHundred: lastEnd,
      ratio: round(Math.max(atEnd.p50, lastEnd.p50) / reference.p50, 3),
    },
    startup: { openMs, withFirstQueryMs: startupMs },
    serviceStartup: service,
    memory,
    operations,
    catalogue: { tables: size[0]!.relations, relations: all[0]!.n, size: size[0]!.bytes },
  };
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${out}`);
}

main().catch((err) => {
  log(String(err?.stack ?? err));
  process.exit(1);
});
