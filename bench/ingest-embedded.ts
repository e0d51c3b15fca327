/**
 * bench:ingest-embedded — issue 14's target 3 on the embedded database (PGlite, a data directory):
 * 30 tenants of 50 … 20,000 vectors (384 d, power-law sizes), loaded through the library in
 * batches of 500, end to end until every vector is in its namespace's HNSW graph; with the raw
 * reference in the same run: the same vectors by plain SQL into one table per tenant in a bare
 * PGlite (no roles, no RLS, no quota), then `CREATE INDEX … USING hnsw` on each table of 2,000 or
 * more. A neighbour tenant (1,000 vectors) queries every 20 ms throughout. Each side runs in a
 * process of its own, whose peak RSS is sampled every 100 ms.
 *
 *   npm run bench:ingest-embedded                 # ~5 min
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { openBulkhead } from "../src/bulkhead.js";
import { loadConfig, TenantTier } from "../src/config.js";
import type { PgliteDb } from "../src/db/pglite-db.js";
import { DEFAULT_SPEC, EmbeddingSpace, rng, tenantSizes } from "./dataset.js";

const { values: args } = parseArgs({ options: { out: { type: "string", default: "bench/results/ingest-pglite.json" }, side: { type: "string" } } });
const log = (m: string) => process.stderr.write(`${m}\n`);
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const THRESHOLD = loadConfig({ env: {} }).annIndexThreshold;

const spec = { ...DEFAULT_SPEC, tenants: 30, largest: 20_000, smallest: 50 };
const sizes = tenantSizes(spec);
const total = sizes.reduce((a, b) => a + b, 0);
const space = new EmbeddingSpace(spec);
if (args.side) log(`${args.side}: generating ${total.toLocaleString("en")} vectors for ${sizes.length} tenants…`);
const data = (args.side ? sizes : []).map((n, t) => {
  const r = rng(100 + t);
  const topics = space.topicsFor(t);
  return Array.from({ length: n }, () => Array.from(space.sample(topics, r)));
});
const neighbourTopics = space.topicsFor(99);
const nr = rng(99);
const neighbourData = Array.from({ length: 1000 }, () => Array.from(space.sample(neighbourTopics, nr)));
const neighbourQueries = Array.from({ length: 50 }, () => Array.from(space.sample(neighbourTopics, nr)));

let peakRss = 0;
const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);

/** A neighbour querying every 20 ms while `work` runs; its latencies. */
async function neighbourDuring<T>(query: (q: number[]) => Promise<unknown>, work: Promise<T>): Promise<{ result: T; p50Ms: number; p95Ms: number; maxMs: number; queries: number }> {
  const latencies: number[] = [];
  let done = false;
  void work.finally(() => (done = true)).catch(() => {});
  for (let i = 0; !done; i++) {
    const t = performance.now();
    await query(neighbourQueries[i % neighbourQueries.length]!);
    latencies.push(performance.now() - t);
    await sleep(20);
  }
  return { result: await work, queries: latencies.length, p50Ms: round(quantile(latencies, 0.5), 2), p95Ms: round(quantile(latencies, 0.95), 2), maxMs: round(Math.max(...latencies), 1) };
}

async function raw() {
  const dir = mkdtempSync(join(tmpdir(), "bench-raw-pglite-"));
  const db = await PGlite.create(dir, { extensions: { vector } });
  try {
    await db.exec("CREATE EXTENSION IF NOT EXISTS vector");
    const table = (t: number) => `t${t}`;
    for (const t of [...sizes.keys(), 99]) await db.exec(`CREATE TABLE ${table(t)} (id text PRIMARY KEY, embedding vector(384) NOT NULL, metadata jsonb NOT NULL DEFAULT '{}')`);
    const insert = (t: number, rows: number[][], from: number) =>
      db.query(`INSERT INTO ${table(t)} (id, embedding) SELECT r.id, r.embedding::vector FROM jsonb_to_recordset($1::jsonb) AS r(id text, embedding text)`, [
        JSON.stringify(rows.map((v, i) => ({ id: `d${from + i}`, embedding: JSON.stringify(v) }))),
      ]);
    await insert(99, neighbourData, 0);
    const query = (q: number[]) => db.query(`SELECT id FROM ${table(99)} ORDER BY embedding <=> $1::vector LIMIT 10`, [JSON.stringify(q)]);
    const alone = await neighbourDuring(query, sleep(5_000));
    const started = performance.now();
    const load = await neighbourDuring(query, (async () => {
      for (const [t, rows] of data.entries()) for (let i = 0; i < rows.length; i += 500) await insert(t, rows.slice(i, i + 500), i);
    })());
    const loadSeconds = (performance.now() - started) / 1000;
    const build = await neighbourDuring(query, (async () => {
      for (const [t, n] of sizes.entries()) if (n >= THRESHOLD) await db.exec(`CREATE INDEX ON ${table(t)} USING hnsw (embedding vector_cosine_ops)`);
    })());
    const seconds = (performance.now() - started) / 1000;
    return { loadSeconds: round(loadSeconds), loadVectorsPerSecond: Math.round(total / loadSeconds), fullyIndexedSeconds: round(seconds), vectorsPerSecond: Math.round(total / seconds), neighbour: { alone, duringLoad: { ...load, result: undefined }, duringBuilds: { ...build, result: undefined } } };
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function bulkhead() {
  const dir = mkdtempSync(join(tmpdir(), "bench-bh-pglite-"));
  const { bulkhead: bh, db } = await openBulkhead({ database: dir, env: {}, warn: () => {}, config: { dimension: 384, recallSampleRate: 0 } });
  try {
    const quota = { maxDocuments: 1_000_000, maxDailyQueries: 10_000_000, requestsPerSecond: 1_000_000, burst: 1_000_000, requestBytesPerSecond: 1_000_000_000 };
    for (const t of sizes.keys()) await bh.registry.registerTenant(`tenant-${t}`, `T${t}`, TenantTier.PRO, { quota });
    await bh.registry.registerTenant("neighbour", "N", TenantTier.PRO, { quota });
    for (let i = 0; i < 1000; i += 500) await bh.dataManager.upsertDocuments("neighbour", neighbourData.slice(i, i + 500).map((v, j) => ({ id: `n${i + j}`, values: v })));
    const query = (q: number[]) => bh.dataManager.queryDocuments("neighbour", q, { topK: 10 });
    const alone = await neighbourDuring(query, sleep(5_000));
    // Every vector of an indexed namespace in its graph: none left beside it (the superuser is not subject to RLS).
    const owner = (db as PgliteDb).owner;
    const pendingLeft = async () => {
      let n = 0;
      for (const { relname } of await owner.query<{ relname: string }>(`SELECT relname FROM pg_class WHERE relnamespace = 'bulkhead'::regnamespace AND relkind = 'p' AND relname ~ '^vec_[0-9]+$'`)) {
        n += (await owner.query<{ n: number }>(`SELECT count(*)::int AS n FROM bulkhead.${relname} WHERE pending IS NOT NULL`))[0]!.n;
      }
      return n;
    };
    const started = performance.now();
    const load = await neighbourDuring(query, (async () => {
      for (const [t, rows] of data.entries()) for (let i = 0; i < rows.length; i += 500) await bh.dataManager.upsertDocuments(`tenant-${t}`, rows.slice(i, i + 500).map((v, j) => ({ id: `d${i + j}`, values: v })));
    })());
    const loadSeconds = (performance.now() - started) / 1000;
    const pendingAtLoadEnd = await pendingLeft();
    const catchUp = await neighbourDuring(query, (async () => {
      while ((await pendingLeft()) > 0) await sleep(1000);
    })());
    const seconds = (performance.now() - started) / 1000;
    const indexed = (await Promise.all(sizes.map((_, t) => bh.registry.getTenant(`tenant-${t}`)))).filter((t) => t.placement.annIndexed).length;
    return {
      loadSeconds: round(loadSeconds),
      acknowledgedVectorsPerSecond: Math.round(total / loadSeconds),
      pendingAtLoadEnd,
      fullyIndexedSeconds: round(seconds),
      vectorsPerSecond: Math.round(total / seconds),
      namespacesIndexed: indexed,
      neighbour: { alone, duringLoad: { ...load, result: undefined }, duringCatchUp: { ...catchUp, result: undefined } },
    };
  } finally {
    await bh.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (args.side) {
  // One side, in this process: its result as JSON on stdout.
  const result = args.side === "raw" ? await raw() : await bulkhead();
  clearInterval(rssTimer);
  process.stdout.write(JSON.stringify({ ...result, peakRssMiB: Math.round(peakRss / 2 ** 20) }));
} else {
  clearInterval(rssTimer);
  const run = (side: string) => JSON.parse(execFileSync(process.execPath, [...process.execArgv, process.argv[1]!, "--side", side], { stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 }).toString());
  const rawResult = run("raw");
  log(`raw PGlite: loaded in ${rawResult.loadSeconds} s (${rawResult.loadVectorsPerSecond} vec/s), indexed in ${rawResult.fullyIndexedSeconds} s end to end (${rawResult.vectorsPerSecond} vec/s); neighbour p95 alone ${rawResult.neighbour.alone.p95Ms} ms, during builds ${rawResult.neighbour.duringBuilds.p95Ms} ms (max ${rawResult.neighbour.duringBuilds.maxMs}); peak RSS ${rawResult.peakRssMiB} MiB`);
  const bhResult = run("bulkhead");
  log(`bulkhead: acknowledged in ${bhResult.loadSeconds} s (${bhResult.acknowledgedVectorsPerSecond} vec/s), ${bhResult.pendingAtLoadEnd} beside the graph then; all in the graph after ${bhResult.fullyIndexedSeconds} s (${bhResult.vectorsPerSecond} vec/s end to end); neighbour p95 alone ${bhResult.neighbour.alone.p95Ms} ms, during the load ${bhResult.neighbour.duringLoad.p95Ms} ms (max ${bhResult.neighbour.duringLoad.maxMs}), during catch-up ${bhResult.neighbour.duringCatchUp.p95Ms} ms; peak RSS ${bhResult.peakRssMiB} MiB`);
  writeFileSync(
    args.out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
        tenants: sizes.length,
        sizes,
        vectors: total,
        dimension: spec.dimension,
        annIndexThreshold: THRESHOLD,
        raw: rawResult,
        bulkhead: bhResult,
      },
      null,
      2,
    ) + "\n",
  );
  log(`wrote ${args.out}`);
}
