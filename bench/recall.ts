/**
 * bench:recall — per-tenant recall you can watch (issue 14, target 5), on the PostgreSQL server.
 *
 * One tenant of `--vectors` embeddings (384 d, normalised, around a few topics) with its HNSW
 * index, its search narrowed to `ef_search` 10 so that its recall is visibly below 0.99. Then:
 *  1. accuracy — every query sampled (rate 1, never acted on): the monitor's recall@10 against the
 *     same queries' recall computed here by brute force over the vectors in memory (the reference);
 *  2. the loop — queries sampled at 10 % until the recall alert resolves: each widening (from the
 *     audit log), the queries and seconds it took, and the true recall after, by brute force;
 *  3. cost — query latency of instances sampling 0 %, 1 % and 10 %, alternated, same queries.
 *
 *   npm run bench:recall                  # needs DATABASE_URL, DATABASE_DATA_URL, DATABASE_OWNER_URL
 *   npm run bench:recall -- --vectors 20000 --out bench/results/recall-postgres.json
 */
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import pg from "pg";
import { openBulkhead, type Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { DEFAULT_SPEC, EmbeddingSpace, exactTopK, rng } from "./dataset.js";

const { values: args } = parseArgs({
  options: {
    vectors: { type: "string", default: "10000" },
    out: { type: "string", default: "bench/results/recall-postgres.json" },
  },
});
const N = Number(args.vectors);
const K = 10;
const schema = "bench_recall";
const log = (m: string) => process.stderr.write(`${m}\n`);
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)]!;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const { DATABASE_URL: url, DATABASE_OWNER_URL: ownerUrl, DATABASE_DATA_URL: dataUrl } = process.env;
if (!url?.startsWith("postgres") || !ownerUrl) {
  log('bench:recall runs against the PostgreSQL server: set DATABASE_URL, DATABASE_DATA_URL and DATABASE_OWNER_URL (eval "$(bash scripts/setup-postgres.sh)")');
  process.exit(2);
}

const open = async (recallSampleRate: number, alertRecall: number): Promise<Bulkhead> =>
  (await openBulkhead({ database: url, databaseOwnerUrl: ownerUrl, databaseDataUrl: dataUrl, env: {}, warn: () => {}, config: { schema, dimension: 384, recallSampleRate, alertRecall } })).bulkhead;

async function main() {
  const owner = new pg.Client({ connectionString: ownerUrl });
  await owner.connect();
  await owner.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await owner.end();

  const space = new EmbeddingSpace(DEFAULT_SPEC);
  const random = rng(11);
  const topics = space.topicsFor(0);
  const data = Array.from({ length: N }, () => space.sample(topics, random));
  const ids = data.map((_, i) => `doc-${i}`);
  const query = () => space.sample(topics, random);
  const trueRecall = (q: Float32Array, got: string[]) => {
    const exact = new Set(exactTopK(data, ids, q, K));
    return got.filter((id) => exact.has(id)).length / K;
  };

  const loader = await open(0, 0);
  await loader.registry.registerTenant("big", "Big", TenantTier.ENTERPRISE, { quota: { maxDailyQueries: 10_000_000, requestsPerSecond: 100_000, burst: 100_000 } });
  const t0 = performance.now();
  for (let i = 0; i < N; i += 500) await loader.dataManager.upsertDocuments("big", data.slice(i, i + 500).map((v, j) => ({ id: ids[i + j]!, values: Array.from(v) })));
  log(`loaded ${N} vectors in ${round((performance.now() - t0) / 1000, 1)} s; ANN index: ${(await loader.registry.getTenant("big")).placement.annIndexed}`);
  await loader.registry.setEfSearch("big", 10);
  await loader.close();

  // 1. Accuracy: every query sampled and waited for; nothing acted on (threshold 0).
  const measuring = await open(1, 0);
  const truth: number[] = [];
  const samplesTaken = async () => (await measuring.monitor.metrics.recallSamples.get()).values.find((v) => v.labels.tenant === "big")?.value ?? 0;
  for (let i = 0; i < 200; i++) {
    const q = query();
    const before = await samplesTaken();
    const r = await measuring.dataManager.queryDocuments("big", Array.from(q), { topK: K });
    truth.push(trueRecall(q, r.matches.map((m) => m.id)));
    // Its exact run finishes in the background: wait for it, so that the next query is sampled too.
    for (let w = 0; w < 1000 && (await samplesTaken()) === before; w++) await sleep(5);
  }
  const measured = measuring.monitor.getTenantStats("big");
  const accuracy = { queries: 200, monitorRecall: round(measured.recall!), monitorSamples: measured.recallSamples, bruteForceRecallSameQueries: round(mean(truth.slice(-measured.recallSamples))) };
  log(`accuracy at ef_search 10: monitor ${accuracy.monitorRecall} over its last ${accuracy.monitorSamples} samples, brute force ${accuracy.bruteForceRecallSameQueries} over the same queries`);
  await measuring.close();

  // 2. The loop: sampled at 10 %, acted on below 0.99, until the alert resolves.
  const acting = await open(0.1, 0.99);
  let resolved = false;
  acting.monitor.on("alert", (a) => {
    if (a.tenantId === "big" && a.kind === "recall" && a.state === "resolved") resolved = true;
  });
  const loopStarted = performance.now();
  let queries = 0;
  while (!resolved && queries < 20_000) {
    await acting.dataManager.queryDocuments("big", Array.from(query()), { topK: K });
    queries++;
  }
  const loopSeconds = (performance.now() - loopStarted) / 1000;
  const widenings = (await acting.audit.list(100))
    .filter((e) => e.action === "tenant.search_widened")
    .reverse()
    .map((e) => ({ at: e.at.toISOString(), ...(e.details as { efSearch: { from: number; to: number }; recall: number; samples: number }) }));
  const finalEf = (await acting.registry.getTenant("big")).placement.efSearch;
  const after: number[] = [];
  for (let i = 0; i < 100; i++) {
    const q = query();
    after.push(trueRecall(q, (await acting.dataManager.queryDocuments("big", Array.from(q), { topK: K })).matches.map((m) => m.id)));
  }
  const loop = { resolved, queries, seconds: round(loopSeconds, 1), widenings, finalEfSearch: finalEf, bruteForceRecallAfter: round(mean(after)) };
  log(`loop: ${resolved ? "resolved" : "NOT resolved"} after ${queries} queries (${loop.seconds} s): ef_search ${widenings.map((w) => w.efSearch.to).join(" → ")}; true recall after ${loop.bruteForceRecallAfter}`);
  await acting.close();

  // 3. Cost: the same queries through instances sampling 0 %, 1 % and 10 %, alternated.
  const rates = [0, 0.01, 0.1];
  const instances = await Promise.all(rates.map((r) => open(r, 0)));
  const queriesForCost = Array.from({ length: 300 }, () => Array.from(query()));
  const latencies = new Map<number, number[]>(rates.map((r) => [r, []]));
  for (let roundNo = 0; roundNo < 3; roundNo++) {
    for (const [i, rate] of rates.entries()) {
      for (const q of queriesForCost) {
        const started = performance.now();
        await instances[i]!.dataManager.queryDocuments("big", q, { topK: K });
        latencies.get(rate)!.push(performance.now() - started);
      }
    }
  }
  const cost = rates.map((rate) => ({ sampleRate: rate, queries: latencies.get(rate)!.length, p50Ms: round(quantile(latencies.get(rate)!, 0.5), 2), p95Ms: round(quantile(latencies.get(rate)!, 0.95), 2) }));
  for (const c of cost) log(`cost: sampling ${c.sampleRate * 100} %: p50 ${c.p50Ms} ms, p95 ${c.p95Ms} ms`);
  for (const b of instances) await b.close();

  const report = {
    benchmark: "recall",
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    config: { vectors: N, dimension: 384, k: K, startingEfSearch: 10, threshold: 0.99 },
    accuracy,
    loop,
    cost,
    targets: { "recall below 0.99 detected and acted on": widenings.length > 0, "alert resolved": resolved, "true recall after ≥ 0.99": mean(after) >= 0.99 },
  };
  writeFileSync(args.out!, JSON.stringify(report, null, 2) + "\n");
  log(`wrote ${args.out}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
