/**
 * bench:noisy — does one tenant's flood move another tenant's latency?
 *
 * Two tenants in one shared index on the PostgreSQL server, 3,000 vectors each (384 d, HNSW):
 * a victim querying at a steady rate, and an aggressor on the free tier. Phases, each of
 * `--seconds`, victim load identical in all:
 *   alone     — the victim only;
 *   flood     — the aggressor fires `--aggressor-rate` queries per second (100 × its 10/s limit),
 *               up to `--aggressor-concurrency` in flight, through the same data manager;
 *   (alone and flood twice, alternating; the victim's p95 is compared pooled over both rounds)
 *   unlimited — the same flood with the aggressor's rate limit and concurrency cap lifted (the
 *               per-tenant connection share still applies): what the limits are worth.
 * Victim latency is the wall time of `queryDocuments` as its caller sees it (open loop: requests
 * are sent on schedule whether or not earlier ones have returned). Also measured: how long a
 * suspension made in one instance takes to be enforced by another (tenant-config cache invalidation).
 *
 *   npm run bench:noisy                         # needs DATABASE_URL / DATABASE_OWNER_URL; uses REDIS_URL when set
 *   npm run bench:noisy -- --seconds 10 --out /tmp/noisy.json
 */
import { cpus, totalmem } from "node:os";
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import pg from "pg";
import { openBulkhead, type Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { BulkheadError, TenantSuspendedError } from "../src/errors.js";
import { DEFAULT_SPEC, EmbeddingSpace, rng } from "./dataset.js";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "20" },
    "victim-rate": { type: "string", default: "40" },
    "aggressor-rate": { type: "string", default: "1000" },
    "aggressor-concurrency": { type: "string", default: "64" },
    vectors: { type: "string", default: "3000" },
    out: { type: "string" },
  },
});
const SECONDS = Number(args.seconds);
const VICTIM_RATE = Number(args["victim-rate"]);
const AGGRESSOR_RATE = Number(args["aggressor-rate"]);
const AGGRESSOR_CONCURRENCY = Number(args["aggressor-concurrency"]);
const VECTORS = Number(args.vectors);
const schema = "bench_noisy";
const log = (m: string) => process.stderr.write(`${m}\n`);
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! : NaN;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!process.env.DATABASE_URL?.startsWith("postgres") || !process.env.DATABASE_OWNER_URL) {
  log("bench:noisy runs against the PostgreSQL server: set DATABASE_URL and DATABASE_OWNER_URL (eval \"$(bash scripts/setup-postgres.sh)\")");
  process.exit(2);
}

interface PhaseResult {
  phase: string;
  victim: { sent: number; ok: number; failed: Record<string, number>; p50Ms: number; p95Ms: number; p99Ms: number; maxMs: number };
  aggressor: { attempted: number; accepted: number; refused: Record<string, number>; skippedAtConcurrencyCap: number; meanRefusalUs: number | null; meanAcceptedMs: number | null };
  /** CPU time of this process per second of the phase (user + system), ms. */
  processCpuMsPerSecond: number;
}

/** Sends `fn` `rate` times a second for `seconds`, on schedule (open loop), at most `maxInFlight` at once. */
async function openLoop(rate: number, seconds: number, maxInFlight: number, fn: (i: number) => Promise<void>): Promise<{ sent: number; skipped: number }> {
  const interval = 1000 / rate;
  const started = performance.now();
  const pending = new Set<Promise<void>>();
  let sent = 0;
  let skipped = 0;
  for (let i = 0; ; i++) {
    const due = started + i * interval;
    if (due - started >= seconds * 1000) break;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    else if (i % 16 === 0) await new Promise((r) => setImmediate(r)); // let responses in when running behind
    if (pending.size >= maxInFlight) {
      skipped++;
      continue;
    }
    sent++;
    const p = fn(i).finally(() => pending.delete(p));
    pending.add(p);
  }
  await Promise.all(pending);
  return { sent, skipped };
}

/** Victim latencies of every phase, by phase name, for pooling. */
const victimSamples = new Map<string, number[]>();

async function runPhase(bh: Bulkhead, phase: string, queries: number[][], flood: boolean): Promise<PhaseResult> {
  const victimLatencies: number[] = [];
  const victimFailed: Record<string, number> = {};
  const refused: Record<string, number> = {};
  let refusalUs = 0;
  let refusals = 0;
  let acceptedMs = 0;
  let accepted = 0;
  let attempted = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const victim = openLoop(VICTIM_RATE, SECONDS, 10_000, async (i) => {
    const started = performance.now();
    try {
      await bh.dataManager.queryDocuments("victim", queries[i % queries.length]!, { topK: 10 });
      victimLatencies.push(performance.now() - started);
    } catch (err) {
      const code = err instanceof BulkheadError ? err.code : String(err);
      victimFailed[code] = (victimFailed[code] ?? 0) + 1;
    }
  });
  const aggressor = flood
    ? openLoop(AGGRESSOR_RATE, SECONDS, AGGRESSOR_CONCURRENCY, async (i) => {
        attempted++;
        const started = performance.now();
        try {
          await bh.dataManager.queryDocuments("aggressor", queries[(i * 7) % queries.length]!, { topK: 10 });
          accepted++;
          acceptedMs += performance.now() - started;
        } catch (err) {
          const code = err instanceof BulkheadError ? err.code : String(err);
          refused[code] = (refused[code] ?? 0) + 1;
          refusals++;
          refusalUs += (performance.now() - started) * 1000;
        }
      })
    : Promise.resolve({ sent: 0, skipped: 0 });
  const [, agg] = await Promise.all([victim, aggressor]);
  victimSamples.set(phase, victimLatencies);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const result: PhaseResult = {
    phase,
    victim: {
      sent: victimLatencies.length + Object.values(victimFailed).reduce((a, b) => a + b, 0),
      ok: victimLatencies.length,
      failed: victimFailed,
      p50Ms: round(quantile(victimLatencies, 0.5)),
      p95Ms: round(quantile(victimLatencies, 0.95)),
      p99Ms: round(quantile(victimLatencies, 0.99)),
      maxMs: round(Math.max(...victimLatencies)),
    },
    aggressor: {
      attempted,
      accepted,
      refused,
      skippedAtConcurrencyCap: agg.skipped,
      meanRefusalUs: refusals ? round(refusalUs / refusals, 1) : null,
      meanAcceptedMs: accepted ? round(acceptedMs / accepted) : null,
    },
    processCpuMsPerSecond: round((cpu.user + cpu.system) / 1000 / elapsed, 1),
  };
  log(`  ${phase}: victim p50 ${result.victim.p50Ms} ms, p95 ${result.victim.p95Ms} ms (${result.victim.ok}/${result.victim.sent} ok); aggressor ${accepted}/${attempted} accepted, refused ${JSON.stringify(refused)}`);
  return result;
}

/** Suspends in instance A and measures until instance B (which had the tenant cached) refuses it. */
async function propagation(a: Bulkhead, b: Bulkhead, trials: number): Promise<number[]> {
  const delays: number[] = [];
  for (let t = 0; t < trials; t++) {
    await b.dataManager.countDocuments("probe"); // cached in B
    await a.registry.suspendTenant("probe");
    const committed = performance.now();
    for (;;) {
      try {
        await b.dataManager.countDocuments("probe");
      } catch (err) {
        if (err instanceof TenantSuspendedError) break;
        throw err;
      }
      if (performance.now() - committed > 10_000) throw new Error("suspension never reached instance B");
    }
    delays.push(performance.now() - committed);
    await a.registry.resumeTenant("probe");
    for (;;) {
      try {
        await b.dataManager.countDocuments("probe");
        break;
      } catch (err) {
        if (!(err instanceof TenantSuspendedError)) throw err;
        await sleep(1);
      }
    }
  }
  return delays;
}

async function main() {
  const owner = new pg.Client({ connectionString: process.env.DATABASE_OWNER_URL });
  await owner.connect();
  await owner.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await owner.end();
  const redisUrl = process.env.REDIS_URL;
  const options = { database: process.env.DATABASE_URL, databaseOwnerUrl: process.env.DATABASE_OWNER_URL, databaseDataUrl: process.env.DATABASE_DATA_URL, env: {}, config: { schema, redisUrl } };
  const { bulkhead: bh } = await openBulkhead(options);
  const { bulkhead: other } = await openBulkhead(options);
  try {
    log(`bench:noisy on postgres (${redisUrl ? "rate limits in Redis" : "rate limits in memory"}): victim ${VICTIM_RATE} q/s, aggressor ${AGGRESSOR_RATE} q/s (${AGGRESSOR_CONCURRENCY} in flight), ${SECONDS} s per phase`);
    await bh.registry.registerTenant("victim", "Victim", TenantTier.PRO, { quota: { maxDailyQueries: 10_000_000 } });
    await bh.registry.registerTenant("aggressor", "Aggressor", TenantTier.FREE, { quota: { maxDailyQueries: 10_000_000, maxDocuments: 100_000 } });
    // Polled as fast as it answers: its limits are lifted so they cannot stand in for the suspension.
    await bh.registry.registerTenant("probe", "Propagation probe", TenantTier.FREE, { quota: { requestsPerSecond: 1_000_000, maxConcurrent: 1_000 } });
    const space = new EmbeddingSpace(DEFAULT_SPEC);
    const random = rng(7);
    const topics = (n: number) => Array.from({ length: n }, () => Math.floor(random() * DEFAULT_SPEC.topics));
    for (const [tenant, mix] of [["victim", topics(5)], ["aggressor", topics(5)]] as const) {
      // Bulk load through the data manager with generous limits, then index once.
      await bh.registry.setQuota(tenant, { requestsPerSecond: 100_000, maxConcurrent: 1_000, maxDailyQueries: 10_000_000, maxDocuments: 100_000 });
      for (let i = 0; i < VECTORS; i += 500) {
        const docs = Array.from({ length: Math.min(500, VECTORS - i) }, (_, j) => ({ id: `${tenant}-${i + j}`, values: Array.from(space.sample(mix, random)) }));
        await bh.dataManager.upsertDocuments(tenant, docs);
      }
      await bh.registry.ensureAnnIndex(await bh.registry.getTenant(tenant), 1);
    }
    await bh.registry.setQuota("victim", { maxDailyQueries: 10_000_000 });
    await bh.registry.setQuota("aggressor", { maxDailyQueries: 10_000_000, maxDocuments: 100_000 });
    const queries = Array.from({ length: 500 }, () => Array.from(space.sample(topics(1), random)));
    const aggressor = await bh.registry.getTenant("aggressor");
    log(`  loaded ${VECTORS} vectors per tenant; aggressor limit ${aggressor.quota.requestsPerSecond}/s + burst ${aggressor.quota.burst}, ${aggressor.quota.maxConcurrent} in flight`);

    // Warm-up (not counted): plans, connections, caches.
    for (let i = 0; i < 50; i++) await bh.dataManager.queryDocuments("victim", queries[i]!, { topK: 10 });

    const phases: PhaseResult[] = [];
    // Alone and flood alternate twice, so a drift of the machine over the run does not pass for an effect.
    phases.push(await runPhase(bh, "alone-1", queries, false));
    phases.push(await runPhase(bh, "flood-1", queries, true));
    phases.push(await runPhase(bh, "alone-2", queries, false));
    phases.push(await runPhase(bh, "flood-2", queries, true));
    await bh.registry.setQuota("aggressor", { maxDailyQueries: 10_000_000, maxDocuments: 100_000, requestsPerSecond: 1_000_000, maxConcurrent: 1_000_000 });
    phases.push(await runPhase(bh, "unlimited", queries, true));
    await bh.registry.setQuota("aggressor", { maxDailyQueries: 10_000_000, maxDocuments: 100_000 });
    const pooled = (...names: string[]) => names.flatMap((n) => victimSamples.get(n)!);
    const p95 = (xs: number[]) => round(quantile(xs, 0.95));

    const delays = await propagation(bh, other, 20);
    log(`  suspension propagation to a second instance: p50 ${round(quantile(delays, 0.5))} ms, max ${round(Math.max(...delays))} ms`);

    const aloneP95 = p95(pooled("alone-1", "alone-2"));
    const floodP95 = p95(pooled("flood-1", "flood-2"));
    const unlimitedP95 = p95(pooled("unlimited"));
    const ratio = floodP95 / aloneP95;
    const report = {
      benchmark: "noisy",
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      config: {
        backend: "postgres",
        rateLimiter: redisUrl ? "redis" : "memory",
        seconds: SECONDS,
        victimRate: VICTIM_RATE,
        aggressorRate: AGGRESSOR_RATE,
        aggressorConcurrency: AGGRESSOR_CONCURRENCY,
        vectorsPerTenant: VECTORS,
        dimension: DEFAULT_SPEC.dimension,
        aggressorLimit: { requestsPerSecond: aggressor.quota.requestsPerSecond, burst: aggressor.quota.burst, maxConcurrent: aggressor.quota.maxConcurrent },
        poolSize: bh.config.poolSize,
        tenantPoolShare: bh.config.tenantPoolShare,
      },
      phases,
      propagationMs: { trials: delays.length, p50: round(quantile(delays, 0.5)), p95: round(quantile(delays, 0.95)), max: round(Math.max(...delays)) },
      summary: {
        victimP95AloneMs: aloneP95,
        victimP95FloodMs: floodP95,
        victimP95UnlimitedMs: unlimitedP95,
        victimP95RatioFloodVsAlone: round(ratio),
        // Round by round: how much the comparison itself varies on this machine.
        victimP95RatioRound1: round(phases[1]!.victim.p95Ms / phases[0]!.victim.p95Ms),
        victimP95RatioRound2: round(phases[3]!.victim.p95Ms / phases[2]!.victim.p95Ms),
        victimP95RatioUnlimitedVsAlone: round(unlimitedP95 / aloneP95),
        aggressorOverLimitFactor: round(AGGRESSOR_RATE / aggressor.quota.requestsPerSecond, 1),
      },
      targets: {
        "victim p95 during the floods <= 1.25 x alone (pooled)": ratio <= 1.25,
        "victim p95 during the floods <= 1.10 x alone (pooled; aim)": ratio <= 1.1,
        "no victim request failed": phases.every((p) => Object.keys(p.victim.failed).length === 0),
        "a suspension reaches another instance within 1 s": Math.max(...delays) <= 1000,
      },
    };
    const out = args.out ?? "bench/results/noisy-postgres.json";
    writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
    log(`wrote ${out}: victim p95 ratio flood/alone ${report.summary.victimP95RatioFloodVsAlone}, unlimited/alone ${report.summary.victimP95RatioUnlimitedVsAlone}`);
  } finally {
    await other.close();
    await bh.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
