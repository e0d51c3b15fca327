/**
 * bench:storage — retrieval quality and isolation overhead in shared indexes.
 *
 * One shared index of 90 tenants with power-law sizes (50,000 … 50 vectors), 384 dimensions.
 * Per tenant, 100 held-out queries; recall@10 against exact search over that tenant's vectors,
 * latency of Bulkhead's `queryDocuments`, of the same search as plain SQL over the same tables with
 * no isolation (a superuser connection: no RLS, no tenant context, no application checks), and of
 * the naive design (one HNSW index over all tenants' vectors, `WHERE tenant_id = …`).
 *
 *   npm run bench:storage                      # server when DATABASE_URL is set, else PGlite
 *   npm run bench:storage -- --backend pglite --largest 10000 --skip-naive
 */
import { cpus, totalmem } from "node:os";
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import pg from "pg";
import { openBulkhead } from "../src/bulkhead.js";
import { loadConfig, TenantTier, TIERS } from "../src/config.js";
import type { Queryable } from "../src/db/db.js";
import type { PgliteDb } from "../src/db/pglite-db.js";
import { DEFAULT_SPEC, EmbeddingSpace, exactTopK, rng, tenantSizes, type DatasetSpec } from "./dataset.js";

const { values: args } = parseArgs({
  options: {
    backend: { type: "string" },
    largest: { type: "string" },
    queries: { type: "string", default: "100" },
    out: { type: "string" },
    "skip-naive": { type: "boolean", default: false },
  },
});
const backend = args.backend ?? (process.env.DATABASE_URL?.startsWith("postgres") ? "postgres" : "pglite");
const spec: DatasetSpec = { ...DEFAULT_SPEC, largest: Number(args.largest ?? DEFAULT_SPEC.largest) };
const QUERIES = Number(args.queries);
const WARMUP = 5;
const K = 10;
const schema = "bench_storage";
const DEFAULT_ANN_THRESHOLD = loadConfig({ env: {} }).annIndexThreshold;
const log = (m: string) => process.stderr.write(`${m}\n`);
// On a terminal one line updated in place; otherwise (CI, a log file) a line every few seconds.
let lastProgress = 0;
const progress = (m: string) => {
  if (process.stderr.isTTY) process.stderr.write(`\r${m}\x1b[K`);
  else if (performance.now() - lastProgress > 5000) {
    lastProgress = performance.now();
    process.stderr.write(`${m}\n`);
  }
};

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
// What a plain-SQL caller sends: pgvector's own toSql() is JSON.stringify of the number array.
const literal = (v: Float32Array | number[]) => JSON.stringify(Array.isArray(v) ? v : Array.from(v));

async function main() {
  const sizes = tenantSizes(spec);
  const total = sizes.reduce((a, b) => a + b, 0);
  log(`bench:storage on ${backend}: ${spec.tenants} tenants, ${total} vectors (${sizes[0]} … ${sizes.at(-1)}), ${spec.dimension} d, ${QUERIES} queries each`);

  let superuser: Queryable;
  let closeSuperuser = async () => {};
  const UNLIMITED = { maxDocuments: 1e9, maxDailyQueries: 1e9, requestsPerSecond: 1e6, burst: 0, maxConcurrent: 1e6 };
  if (backend === "postgres") {
    const owner = new pg.Client({ connectionString: process.env.DATABASE_OWNER_URL });
    await owner.connect();
    await owner.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await owner.end();
  }
  const { bulkhead: bh, db } = await openBulkhead({
    database: backend === "postgres" ? process.env.DATABASE_URL! : "memory://",
    databaseOwnerUrl: backend === "postgres" ? process.env.DATABASE_OWNER_URL : undefined,
    env: {},
    // Bulk import: load with ANN indexing deferred, then index every namespace over the threshold at once.
    // Limits high enough that the performance gate admits everything: this benchmark measures storage.
    config: { schema, dimension: spec.dimension, annIndexThreshold: 1_000_000_000, tierQuotas: Object.fromEntries(TIERS.map((t) => [t, UNLIMITED])) },
  });
  if (backend === "postgres") {
    const client = new pg.Client({ connectionString: process.env.SUPERUSER_URL ?? "postgres://postgres@127.0.0.1:5432/bulkhead", options: `-c search_path=${schema},public` });
    await client.connect();
    superuser = { query: async (text, params = []) => (await client.query(text, params as unknown[])).rows };
    closeSuperuser = () => client.end();
  } else {
    superuser = (db as PgliteDb).owner;
  }

  // ---- data
  const space = new EmbeddingSpace(spec);
  const tenants = sizes.map((size, i) => ({ id: `tenant-${String(i + 1).padStart(3, "0")}`, size, topics: space.topicsFor(i), vectors: [] as Float32Array[], ids: [] as string[] }));
  const loadStart = performance.now();
  let loaded = 0;
  for (const [i, t] of tenants.entries()) {
    await bh.registry.registerTenant(t.id, `Tenant ${i + 1}`, i % 2 ? TenantTier.PRO : TenantTier.FREE);
    const rand = rng(spec.seed * 7919 + i);
    for (let n = 0; n < t.size; n++) {
      t.vectors.push(space.sample(t.topics, rand));
      t.ids.push(`${t.id}-doc-${n}`);
    }
    for (let start = 0; start < t.size; start += 500) {
      const batch = t.ids.slice(start, start + 500).map((id, j) => ({ id, values: Array.from(t.vectors[start + j]!), metadata: { n: start + j } }));
      await bh.dataManager.upsertDocuments(t.id, batch);
      loaded += batch.length;
      progress(`loading ${loaded}/${total} vectors (${((performance.now() - loadStart) / 1000).toFixed(0)} s)`);
    }
  }
  const loadSeconds = (performance.now() - loadStart) / 1000;
  log(`\nloaded in ${loadSeconds.toFixed(1)} s`);
  const annStart = performance.now();
  const annThreshold = DEFAULT_ANN_THRESHOLD;
  let annBuilt = 0;
  for (const t of tenants) if (await bh.registry.ensureAnnIndex(await bh.registry.getTenant(t.id), annThreshold)) annBuilt++;
  const annBuildSeconds = (performance.now() - annStart) / 1000;
  log(`HNSW (m=${bh.config.hnswM}, ef_construction=${bh.config.hnswEfConstruction}) built for ${annBuilt} namespaces over ${annThreshold} vectors in ${annBuildSeconds.toFixed(1)} s`);

  // ---- naive design: every tenant's vectors in one table under one HNSW index
  const naive = !args["skip-naive"];
  const naiveStart = performance.now();
  if (naive) {
  await superuser.query("DROP TABLE IF EXISTS naive_vectors");
  await superuser.query("CREATE TABLE naive_vectors AS SELECT tenant_id, id, embedding, metadata FROM vec_1");
  await superuser.query("SET maintenance_work_mem = '512MB'");
  await superuser.query("CREATE INDEX ON naive_vectors USING hnsw (embedding vector_cosine_ops)");
  await superuser.query("ANALYZE naive_vectors");
  }
  const naiveBuildSeconds = (performance.now() - naiveStart) / 1000;
  if (naive) log(`naive shared HNSW index (m=16, ef_construction=64) built in ${naiveBuildSeconds.toFixed(1)} s`);

  const plainSql = `SELECT id, metadata, 1 - (embedding <=> $2::vector) AS score FROM vec_1 WHERE tenant_id = $1 ORDER BY embedding <=> $2::vector LIMIT ${K}`;
  const naiveSql = `SELECT id FROM naive_vectors WHERE tenant_id = $1 ORDER BY embedding <=> $2::vector LIMIT ${K}`;
  const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
    const s = performance.now();
    const r = await fn();
    return [r, performance.now() - s];
  };

  // ---- measure
  const results = [];
  for (const [ti, t] of tenants.entries()) {
    const tenant = await bh.registry.getTenant(t.id);
    const rand = rng(spec.seed * 104729 + ti);
    const queries = Array.from({ length: QUERIES + WARMUP }, () => space.sample(t.topics, rand));
    const truth = queries.map((q) => exactTopK(t.vectors, t.ids, q, K));
    const recall = (got: string[], i: number) => got.filter((id) => truth[i]!.includes(id)).length / Math.min(K, t.size);
    const m = { bulkhead: [] as number[], plain: [] as number[], naive: [] as number[], naiveIter: [] as number[], rB: [] as number[], rP: [] as number[], rN: [] as number[], rNI: [] as number[] };

    await superuser.query(`SET hnsw.ef_search = ${bh.config.hnswEfSearch}`);
    await superuser.query("SET hnsw.iterative_scan = off");
    await superuser.query("SET enable_seqscan = on");
    for (const [i, q] of queries.entries()) {
      const vector = Array.from(q);
      // Both sides start from the same number[] and serialise it inside the timed call.
      // Alternate the order so neither side always runs on a warmer cache.
      const runB = () => timed(() => bh.dataManager.queryDocuments(t.id, vector, { topK: K }));
      const runP = () => timed(() => superuser.query<{ id: string }>(plainSql, [t.id, literal(vector)]));
      let b: Awaited<ReturnType<typeof runB>>, p: Awaited<ReturnType<typeof runP>>;
      if (i % 2) { b = await runB(); p = await runP(); } else { p = await runP(); b = await runB(); }
      if (i < WARMUP) continue;
      m.bulkhead.push(b[1]); m.plain.push(p[1]);
      m.rB.push(recall(b[0].matches.map((x) => x.id), i));
      m.rP.push(recall(p[0].map((x) => x.id), i));
    }
    // Naive: the planner is kept on the shared HNSW index (as it is for a large mixed table).
    await superuser.query("SET enable_seqscan = off");
    for (const [mode, lat, rec] of naive ? ([["off", m.naive, m.rN], ["relaxed_order", m.naiveIter, m.rNI]] as const) : []) {
      await superuser.query("SET hnsw.ef_search = 40");
      await superuser.query(`SET hnsw.iterative_scan = ${mode}`);
      for (const [i, q] of queries.entries()) {
        const [rows, ms] = await timed(() => superuser.query<{ id: string }>(naiveSql, [t.id, literal(q)]));
        if (i < WARMUP) continue;
        lat.push(ms);
        rec.push(recall(rows.map((x) => x.id), i));
      }
    }
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
    const row = {
      tenant: t.id,
      vectors: t.size,
      search: tenant.placement.annIndexed ? "hnsw" : "exact",
      recall: round(mean(m.rB)),
      recallPlainSql: round(mean(m.rP)),
      p50Ms: round(quantile(m.bulkhead, 0.5)),
      p95Ms: round(quantile(m.bulkhead, 0.95)),
      plainP50Ms: round(quantile(m.plain, 0.5)),
      plainP95Ms: round(quantile(m.plain, 0.95)),
      overheadRatioP50: round(quantile(m.bulkhead, 0.5) / quantile(m.plain, 0.5)),
      naiveRecall: round(mean(m.rN)),
      naiveP95Ms: round(quantile(m.naive, 0.95)),
      naiveIterativeRecall: round(mean(m.rNI)),
      naiveIterativeP95Ms: round(quantile(m.naiveIter, 0.95)),
    };
    results.push(row);
    progress(`measured ${ti + 1}/${tenants.length}: ${t.id} (${t.size}) recall ${row.recall} p95 ${row.p95Ms} ms ratio ${row.overheadRatioP50}`);
  }
  log("");

  const small = results.filter((r) => r.vectors <= 1000);
  const large = results.filter((r) => r.vectors >= 10_000);
  const summary = {
    minRecall: Math.min(...results.map((r) => r.recall)),
    maxP95Ms: Math.max(...results.map((r) => r.p95Ms)),
    smallTenants: small.length,
    medianOverheadRatioP50Small: round(quantile(small.map((r) => r.overheadRatioP50), 0.5)),
    maxOverheadRatioP50Small: Math.max(...small.map((r) => r.overheadRatioP50)),
    overheadRatioP50Large: large.map((r) => ({ tenant: r.tenant, vectors: r.vectors, ratio: r.overheadRatioP50 })),
    naiveRecallRange: [Math.min(...results.map((r) => r.naiveRecall)), Math.max(...results.map((r) => r.naiveRecall))],
    naiveIterativeRecallRange: [Math.min(...results.map((r) => r.naiveIterativeRecall)), Math.max(...results.map((r) => r.naiveIterativeRecall))],
    naiveIterativeMaxP95Ms: Math.max(...results.map((r) => r.naiveIterativeP95Ms)),
    naiveMeasured: naive,
  };
  const targets = {
    "minimum recall@10 >= 0.99": summary.minRecall >= 0.99,
    "p95 <= 10 ms for every tenant up to 50,000 vectors": summary.maxP95Ms <= 10,
    "overhead ratio at p50 <= 1.10 (small tenants, median)": summary.medianOverheadRatioP50Small <= 1.1,
    "overhead ratio at p50 <= 1.10 (large tenants)": large.every((r) => r.overheadRatioP50 <= 1.1),
  };
  const [versions] = await superuser.query<{ pg: string; vector: string }>("SELECT current_setting('server_version') AS pg, (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS vector");
  const report = {
    benchmark: "storage",
    date: new Date().toISOString(),
    backend,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, postgres: versions!.pg, pgvector: versions!.vector },
    dataset: { ...spec, totalVectors: total, queriesPerTenant: QUERIES, k: K },
    settings: { annIndexThreshold: annThreshold, annIndexesBuilt: annBuilt, annBuildSeconds: round(annBuildSeconds, 1), hnswM: bh.config.hnswM, hnswEfConstruction: bh.config.hnswEfConstruction, hnswEfSearch: bh.config.hnswEfSearch, naive: "one HNSW over all tenants, m=16, ef_construction=64, ef_search=40, seqscan disabled" },
    loadSeconds: round(loadSeconds, 1),
    naiveBuildSeconds: naive ? round(naiveBuildSeconds, 1) : null,
    summary,
    targets,
    tenants: results,
  };
  const out = args.out ?? `bench/results/storage-${backend}.json`;
  writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
  console.log(JSON.stringify({ summary, targets }, null, 2));
  log(`wrote ${out}`);
  if (naive) await superuser.query("DROP TABLE IF EXISTS naive_vectors");
  await closeSuperuser();
  await bh.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
