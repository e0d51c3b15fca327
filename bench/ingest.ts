/**
 * bench:ingest — one tenant's vectors to a fully indexed namespace on the PostgreSQL server, with
 * what the machine can do in the same run: the same vectors loaded by `psql \copy` into a plain
 * table (no tenant context, no RLS, no quota) and indexed by a bare `CREATE INDEX … USING hnsw`.
 *
 * For each HNSW setting (m, ef_construction) it reports the raw build time and recall@10 against
 * brute force at several ef_search values: the numbers Bulkhead's defaults are chosen by. Then
 * Bulkhead's documented bulk path with its defaults: `upsertDocuments` in batches of 500 through
 * the library (the tenant context, RLS, the quota and the counters all apply), then the one build
 * (`registry.ensureAnnIndex`), then recall through `queryDocuments`.
 *
 *   npm run bench:ingest                        # 100,000 × 384-d (~6 min)
 *   npm run bench:ingest -- --vectors 20000
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import pg from "pg";
import { openBulkhead } from "../src/bulkhead.js";
import { loadConfig, TenantTier } from "../src/config.js";
import { DEFAULT_SPEC, EmbeddingSpace, exactTopK, rng } from "./dataset.js";

const { values: args } = parseArgs({
  options: {
    vectors: { type: "string", default: "100000" },
    queries: { type: "string", default: "100" },
    settings: { type: "string", default: "16/64,32/200" },
    // Bulkhead's own settings, when not its defaults (e.g. the defaults before they were chosen: 32/200 and 256).
    hnsw: { type: "string" },
    "build-memory-mb": { type: "string" },
    out: { type: "string", default: "bench/results/ingest-postgres.json" },
  },
});
const N = Number(args.vectors);
const Q = Number(args.queries);
const K = 10;
const EF_SEARCH = [40, 100, 200];
const schema = "bench_ingest";
const rawSchema = "bench_ingest_raw";
const log = (m: string) => process.stderr.write(`${m}\n`);
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)]!;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const seconds = (since: number) => round((performance.now() - since) / 1000, 1);

const { DATABASE_URL: url, DATABASE_OWNER_URL: ownerUrl, DATABASE_DATA_URL: dataUrl } = process.env;
// The reference connects as the superuser: nothing between it and the table.
const superUrl = process.env.BENCH_SUPERUSER_URL ?? "postgres://postgres@127.0.0.1:5432/bulkhead";
if (!url?.startsWith("postgres") || !ownerUrl) {
  log('bench:ingest runs against the PostgreSQL server: set DATABASE_URL, DATABASE_DATA_URL and DATABASE_OWNER_URL (eval "$(bash scripts/setup-postgres.sh)")');
  process.exit(2);
}

async function main() {
  const defaults = loadConfig({ env: {} });
  const space = new EmbeddingSpace(DEFAULT_SPEC);
  const random = rng(7);
  const topics = space.topicsFor(0);
  log(`generating ${N.toLocaleString("en")} vectors and ${Q} held-out queries…`);
  const data = Array.from({ length: N }, () => space.sample(topics, random));
  const ids = data.map((_, i) => `doc-${String(i).padStart(6, "0")}`);
  const queries = Array.from({ length: Q }, () => space.sample(topics, random));
  const truth = queries.map((q) => new Set(exactTopK(data, ids, q, K)));
  const recallOf = (got: string[][]) => round(mean(got.map((g, i) => g.filter((id) => truth[i]!.has(id)).length / K)));
  const literal = (v: Float32Array) => JSON.stringify(Array.from(v));

  // --- The reference: psql \copy into a plain table, then a bare CREATE INDEX per setting. ---
  const su = new pg.Client({ connectionString: superUrl });
  await su.connect();
  await su.query(`DROP SCHEMA IF EXISTS ${rawSchema} CASCADE; CREATE SCHEMA ${rawSchema}; CREATE TABLE ${rawSchema}.v (id text PRIMARY KEY, embedding vector(${DEFAULT_SPEC.dimension}))`);
  const dir = mkdtempSync(join(tmpdir(), "bench-ingest-"));
  const tsv = join(dir, "vectors.tsv");
  writeFileSync(tsv, "");
  for (let i = 0; i < N; i += 5000) appendFileSync(tsv, data.slice(i, i + 5000).map((v, j) => `${ids[i + j]}\t${literal(v)}\n`).join(""));
  let t = performance.now();
  execFileSync("psql", [superUrl, "-q", "-c", `\\copy ${rawSchema}.v FROM '${tsv}'`]);
  const rawLoadSeconds = seconds(t);
  rmSync(dir, { recursive: true, force: true });
  log(`raw: \\copy ${N} vectors in ${rawLoadSeconds} s (${Math.round(N / rawLoadSeconds)} vec/s)`);
  // The build memory Bulkhead's build function gives itself; parallel workers are the server's default for both.
  const buildMemoryMb = Number(args["build-memory-mb"] ?? defaults.annBuildMemoryMb);
  const [bhM, bhEfc] = args.hnsw ? (args.hnsw.split("/").map(Number) as [number, number]) : [defaults.hnswM, defaults.hnswEfConstruction];
  await su.query(`SET maintenance_work_mem = '${buildMemoryMb}MB'`);
  const settings = [];
  for (const s of args.settings.split(",").filter(Boolean)) {
    const [m, efc] = s.split("/").map(Number) as [number, number];
    await su.query(`DROP INDEX IF EXISTS ${rawSchema}.v_hnsw`);
    t = performance.now();
    await su.query(`CREATE INDEX v_hnsw ON ${rawSchema}.v USING hnsw (embedding vector_cosine_ops) WITH (m = ${m}, ef_construction = ${efc})`);
    const buildSeconds = seconds(t);
    const recall: Record<number, number> = {};
    for (const ef of EF_SEARCH) {
      await su.query(`SET hnsw.ef_search = ${ef}`);
      const got: string[][] = [];
      for (const q of queries) got.push((await su.query(`SELECT id FROM ${rawSchema}.v ORDER BY embedding <=> $1 LIMIT ${K}`, [literal(q)])).rows.map((r: { id: string }) => r.id));
      recall[ef] = recallOf(got);
    }
    settings.push({ m, efConstruction: efc, rawBuildSeconds: buildSeconds, recallAtEfSearch: recall });
    log(`raw: hnsw m=${m} ef_construction=${efc}: built in ${buildSeconds} s; recall@10 ${EF_SEARCH.map((ef) => `ef_search ${ef} → ${recall[ef]}`).join(", ")}`);
  }
  await su.query(`DROP SCHEMA ${rawSchema} CASCADE`);

  // --- Bulkhead: the documented bulk path with its defaults. ---
  await su.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await su.end();
  const { bulkhead } = await openBulkhead({ database: url, databaseOwnerUrl: ownerUrl, databaseDataUrl: dataUrl, env: {}, warn: log, config: { schema, dimension: DEFAULT_SPEC.dimension, annIndexThreshold: 1_000_000_000, recallSampleRate: 0, hnswM: bhM, hnswEfConstruction: bhEfc, annBuildMemoryMb: buildMemoryMb } });
  // The ordinary path: an instance with the default threshold, where a namespace gets its graph at
  // BULKHEAD_ANN_INDEX_THRESHOLD vectors and every later upsert inserts into it.
  const ordinary = (await openBulkhead({ database: url, databaseOwnerUrl: ownerUrl, databaseDataUrl: dataUrl, env: {}, warn: log, config: { schema, dimension: DEFAULT_SPEC.dimension, recallSampleRate: 0, hnswM: bhM, hnswEfConstruction: bhEfc, annBuildMemoryMb: buildMemoryMb } })).bulkhead;
  try {
    const lifted = { maxDocuments: N + 1000, maxDailyQueries: 1_000_000, requestsPerSecond: 100_000, burst: 100_000 };
    await bulkhead.registry.registerTenant("big", "Big", TenantTier.PRO, { quota: lifted });
    await bulkhead.registry.registerTenant("steady", "Steady", TenantTier.PRO, { quota: lifted });
    await bulkhead.registry.registerTenant("neighbour", "Neighbour", TenantTier.PRO, { quota: lifted });
    const neighbourTopics = space.topicsFor(1);
    const neighbourRandom = rng(9);
    await bulkhead.dataManager.upsertDocuments("neighbour", Array.from({ length: 1000 }, (_, i) => ({ id: `n${i}`, values: Array.from(space.sample(neighbourTopics, neighbourRandom)) })));
    const neighbourQueries = Array.from({ length: 50 }, () => Array.from(space.sample(neighbourTopics, neighbourRandom)));
    // A neighbour querying every 20 ms, sequentially, while `work` runs (or for `ms` when alone).
    const neighbour = async (work: Promise<unknown> | number) => {
      const latencies: number[] = [];
      let done = false;
      const finished = typeof work === "number" ? new Promise((r) => setTimeout(r, work)) : work;
      void finished.finally(() => (done = true));
      for (let i = 0; !done; i++) {
        const q0 = performance.now();
        await bulkhead.dataManager.queryDocuments("neighbour", neighbourQueries[i % neighbourQueries.length]!, { topK: K });
        latencies.push(performance.now() - q0);
        await new Promise((r) => setTimeout(r, 20));
      }
      await finished;
      return { queries: latencies.length, p50Ms: round(quantile(latencies, 0.5), 2), p95Ms: round(quantile(latencies, 0.95), 2) };
    };
    const neighbourAlone = await neighbour(10_000);
    log(`neighbour alone: p95 ${neighbourAlone.p95Ms} ms`);

    // 1. The bulk path: load with no graph (searched exactly meanwhile), then one build.
    t = performance.now();
    const loading = (async () => {
      for (let i = 0; i < N; i += 500) {
        await bulkhead.dataManager.upsertDocuments("big", data.slice(i, i + 500).map((v, j) => ({ id: ids[i + j]!, values: Array.from(v) })));
        if (process.stderr.isTTY) process.stderr.write(`\r  loaded ${i + 500} of ${N}…\x1b[K`);
      }
    })();
    const neighbourDuringLoad = await neighbour(loading);
    const loadSeconds = seconds(t);
    log(`\nbulkhead: loaded ${N} vectors in ${loadSeconds} s (${Math.round(N / loadSeconds)} vec/s); neighbour p95 meanwhile ${neighbourDuringLoad.p95Ms} ms`);
    const searchBefore = await timedQueries("big", queries.slice(0, 20));
    log(`bulkhead: before the build (exact search): recall@10 ${searchBefore.recall}, p50 ${searchBefore.p50Ms} ms`);
    t = performance.now();
    const building = bulkhead.registry.ensureAnnIndex(await bulkhead.registry.getTenant("big"), 1);
    const neighbourDuringBuild = await neighbour(building);
    const buildSeconds = seconds(t);
    if (!(await building)) throw new Error("the HNSW build did not happen");
    log(`bulkhead: hnsw m=${bhM} ef_construction=${bhEfc} (${buildMemoryMb} MB) built in ${buildSeconds} s; neighbour p95 meanwhile ${neighbourDuringBuild.p95Ms} ms`);
    const searchAfter = await timedQueries("big", queries);
    const endToEnd = round(loadSeconds + buildSeconds, 1);
    log(`bulkhead: recall@10 at ef_search ${defaults.hnswEfSearch} → ${searchAfter.recall} (p50 ${searchAfter.p50Ms} ms); fully indexed in ${endToEnd} s (${Math.round(N / endToEnd)} vec/s end to end)`);

    // 2. The ordinary path: 20,000 vectors in batches of 500, the graph built at the threshold.
    const steadyN = Math.min(N, 20_000);
    const batches: number[] = [];
    t = performance.now();
    const steadyLoading = (async () => {
      for (let i = 0; i < steadyN; i += 500) {
        const b0 = performance.now();
        await ordinary.dataManager.upsertDocuments("steady", data.slice(i, i + 500).map((v, j) => ({ id: ids[i + j]!, values: Array.from(v) })));
        batches.push(performance.now() - b0);
      }
    })();
    const neighbourDuringSteady = await neighbour(steadyLoading);
    const steadySeconds = seconds(t);
    // Vectors written ahead of the graph (migration 18) are added to it in the background: until
    // none is left, searches read them exactly. The superuser is not subject to row-level security.
    const pendingLeft = async () => {
      const c = new pg.Client({ connectionString: superUrl });
      await c.connect();
      try {
        return Number((await c.query(`SELECT count(*) AS n FROM ${schema}.vec_${(await ordinary.registry.getTenant("steady")).placement.indexId} WHERE tenant_id = 'steady' AND pending IS NOT NULL`)).rows[0].n);
      } finally {
        await c.end();
      }
    };
    const pendingAtEnd = await pendingLeft();
    const searchWhilePending = await timedQueries("steady", queries.slice(0, 20), ordinary, steadyN);
    const catchingUp = (async () => {
      while ((await pendingLeft()) > 0) await new Promise((r) => setTimeout(r, 200));
    })();
    const neighbourDuringCatchUp = await neighbour(catchingUp);
    const caughtUpSeconds = seconds(t);
    const afterGraph = batches.slice(Math.ceil(defaults.annIndexThreshold / 500) + 1);
    const steady = {
      vectors: steadyN,
      seconds: steadySeconds,
      vectorsPerSecond: Math.round(steadyN / steadySeconds),
      batchP50Ms: round(quantile(afterGraph, 0.5), 1),
      batchP95Ms: round(quantile(afterGraph, 0.95), 1),
      vectorsPerSecondOnceIndexed: Math.round((afterGraph.length * 500) / (afterGraph.reduce((a, b) => a + b, 0) / 1000)),
      neighbour: neighbourDuringSteady,
      pendingWhenAcknowledged: pendingAtEnd,
      searchWhilePending,
      fullyIndexedSeconds: caughtUpSeconds,
      neighbourWhileCatchingUp: neighbourDuringCatchUp,
    };
    log(`bulkhead, ordinary upserts: ${steadyN} vectors in ${steadySeconds} s (${steady.vectorsPerSecond} vec/s; ${steady.vectorsPerSecondOnceIndexed} vec/s once the graph exists, batch p95 ${steady.batchP95Ms} ms); neighbour p95 meanwhile ${neighbourDuringSteady.p95Ms} ms; ${pendingAtEnd} vectors not in the graph yet when the last batch was acknowledged (searched meanwhile: recall@10 ${searchWhilePending.recall}, p50 ${searchWhilePending.p50Ms} ms); all in the graph after ${caughtUpSeconds} s (neighbour p95 meanwhile ${neighbourDuringCatchUp.p95Ms} ms)`);

    const result = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      vectors: N,
      dimension: DEFAULT_SPEC.dimension,
      queries: Q,
      raw: { maintenanceWorkMemMb: buildMemoryMb, loadSeconds: rawLoadSeconds, loadVectorsPerSecond: Math.round(N / rawLoadSeconds), settings },
      bulkhead: {
        hnsw: { m: bhM, efConstruction: bhEfc, efSearch: defaults.hnswEfSearch, buildMemoryMb },
        bulk: {
          batch: 500,
          loadSeconds,
          loadVectorsPerSecond: Math.round(N / loadSeconds),
          searchBeforeBuild: searchBefore,
          buildSeconds,
          fullyIndexedSeconds: endToEnd,
          searchAfterBuild: searchAfter,
        },
        ordinary: steady,
        neighbour: { alone: neighbourAlone, duringLoad: neighbourDuringLoad, duringBuild: neighbourDuringBuild },
      },
    };
    writeFileSync(args.out, JSON.stringify(result, null, 2) + "\n");
    log(`wrote ${args.out}`);
  } finally {
    await bulkhead.close();
    await ordinary.close();
  }

  /**
   * Recall@10 and the latency of `qs` through queryDocuments. Recall is against brute force over the
   * first `among` vectors of the data set (what the tenant holds), for the first `qs.length` queries.
   */
  async function timedQueries(tenant: string, qs: Float32Array[], through = bulkhead, among = N) {
    const got: string[][] = [];
    const latencies: number[] = [];
    for (const q of qs) {
      const q0 = performance.now();
      got.push((await through.dataManager.queryDocuments(tenant, Array.from(q), { topK: K })).matches.map((m) => m.id));
      latencies.push(performance.now() - q0);
    }
    const truthAmong = among === N ? truth : qs.map((q) => new Set(exactTopK(data.slice(0, among), ids.slice(0, among), q, K)));
    const recall = round(mean(got.map((g, i) => g.filter((id) => truthAmong[i]!.has(id)).length / K)));
    return { queries: qs.length, recall, p50Ms: round(quantile(latencies, 0.5), 1) };
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
