/**
 * bench:operations — operating one tenant of 100,000 vectors on the PostgreSQL server: bulk load,
 * HNSW build, backup, erasure, restore, and online tier moves (shared namespace → dedicated index
 * and back), each timed; a neighbour tenant queries throughout and its latency is reported per
 * step. During the moves the moving tenant itself keeps writing and reading: its latencies, its
 * longest wait (the switch) and whether every acknowledged write arrived are reported.
 *
 * With --cells the moves go between stores instead: home → the cell "cell-2" (the server's database
 * `<database>_cell`, prepared by `scripts/setup-postgres.sh bulkhead_cell`) and back.
 *
 *   npm run bench:operations                     # needs DATABASE_URL / DATABASE_OWNER_URL; ~15 min
 *   npm run bench:operations -- --vectors 20000 --out /tmp/ops.json
 *   npm run bench:operations -- --cells          # → bench/results/moves-cells-postgres.json
 */
import { statSync, rmSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import pg from "pg";
import { openBulkhead, type Bulkhead } from "../src/bulkhead.js";
import { TenantTier, type CellConfig } from "../src/config.js";
import { RateLimitedError } from "../src/errors.js";
import type { MoveProgress } from "../src/tenancy/placement-move.js";
import { DEFAULT_SPEC, EmbeddingSpace, rng } from "./dataset.js";

const { values: args } = parseArgs({
  options: {
    vectors: { type: "string", default: "100000" },
    out: { type: "string" },
    // Load, index and the two moves only (skips backup, erasure and restore).
    "moves-only": { type: "boolean", default: false },
    // Load, index, then move between the home database and a cell and back (implies --moves-only).
    cells: { type: "boolean", default: false },
    // Pause between the moving tenant's upserts of 5 vectors; 20 makes it write as fast as it can.
    "writes-every-ms": { type: "string", default: "200" },
    // Vectors per upsert of the moving tenant.
    "write-batch": { type: "string", default: "5" },
  },
});
if (args.cells) args["moves-only"] = true;
const out = args.out ?? (args.cells ? "bench/results/moves-cells-postgres.json" : "bench/results/operations-postgres.json");
/** The cell: the same server, database `<name>_cell`, as the test suites use. */
const cellUrl = (url: string) => url.replace(/\/([^/?]+)(\?|$)/, (_m, db: string, rest: string) => `/${db}_cell${rest}`);
const VECTORS = Number(args.vectors);
const schema = "bench_ops";
const log = (m: string) => process.stderr.write(`${m}\n`);
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! : NaN;
};

if (!process.env.DATABASE_URL?.startsWith("postgres") || !process.env.DATABASE_OWNER_URL) {
  log('bench:operations runs against the PostgreSQL server: set DATABASE_URL and DATABASE_OWNER_URL (eval "$(bash scripts/setup-postgres.sh)")');
  process.exit(2);
}

/** Runs `fn` while the neighbour queries every 50 ms; returns its duration and the neighbour's latencies. */
async function timed<T>(bh: Bulkhead, name: string, probe: number[], fn: () => Promise<T>): Promise<{ step: string; seconds: number; neighbour: { queries: number; p50Ms: number; p95Ms: number; failed: number }; result: T }> {
  let running = true;
  const latencies: number[] = [];
  let failed = 0;
  const neighbour = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        await bh.dataManager.queryDocuments("neighbour", probe, { topK: 10 });
        latencies.push(performance.now() - t0);
      } catch {
        failed++;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 200);
  const t0 = performance.now();
  try {
    const result = await fn();
    const seconds = (performance.now() - t0) / 1000;
    return { step: name, seconds: round(seconds), neighbour: { queries: latencies.length, p50Ms: round(quantile(latencies, 0.5), 2), p95Ms: round(quantile(latencies, 0.95), 2), failed }, result: { ...(result as object), peakRssMiB: Math.round(peakRss / 2 ** 20) } as T };
  } finally {
    running = false;
    clearInterval(sampler);
    await neighbour;
    log(`  ${name}: ${round((performance.now() - t0) / 1000)} s`);
  }
}

/**
 * The moving tenant's own traffic: an upsert of 5 new documents every 200 ms (25 vectors/s, about
 * two million a day; `--write-batch`, `--writes-every-ms`) and a query every 50 ms. An upsert refused by the move's
 * write limit (429) waits the time it was told and is sent again, as a client honouring
 * Retry-After would; those refusals are counted apart from failures. Returns a stop function that
 * reports latencies, failures, refusals and the acknowledged ids.
 */
function tenantTraffic(bh: Bulkhead, space: EmbeddingSpace, random: () => number, prefix: string) {
  let running = true;
  const writes: number[] = [];
  const reads: number[] = [];
  const acknowledged: string[] = [];
  let failed = 0;
  let limited = 0;
  const loop = async (op: (i: number) => Promise<unknown>, latencies: number[], pauseMs: number) => {
    for (let i = 0; running; i++) {
      const t0 = performance.now();
      try {
        for (;;) {
          try {
            await op(i);
            break;
          } catch (err) {
            if (!(err instanceof RateLimitedError) || !running) throw err;
            limited++;
            await new Promise((r) => setTimeout(r, err.retryAfterMs));
          }
        }
        latencies.push(performance.now() - t0);
      } catch (err) {
        failed++;
        log(`    tenant operation failed: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  };
  const both = Promise.all([
    loop(async (i) => {
      const ids = Array.from({ length: Number(args["write-batch"]) }, (_, j) => `${prefix}-${i}-${j}`);
      await bh.dataManager.upsertDocuments("big", ids.map((id) => ({ id, values: Array.from(space.sample([11], random)) })));
      acknowledged.push(...ids);
    }, writes, Number(args["writes-every-ms"])),
    loop(() => bh.dataManager.queryDocuments("big", Array.from(space.sample([3], random)), { topK: 10 }), reads, 50),
  ]);
  const summary = (xs: number[]) => ({ count: xs.length, p50Ms: round(quantile(xs, 0.5), 2), p95Ms: round(quantile(xs, 0.95), 2), maxMs: round(Math.max(...xs), 1) });
  return async () => {
    running = false;
    await both;
    return { writes: summary(writes), reads: summary(reads), failed, limitedAndRetried: limited, acknowledged };
  };
}

/** Moves "big" (to a tier, or to a store) while it keeps working; times each phase of the move and checks every acknowledged write arrived. */
async function onlineMove(bh: Bulkhead, target: { tier?: TenantTier; store?: string }, space: EmbeddingSpace, random: () => number) {
  const before = await bh.dataManager.countDocuments("big");
  const stop = tenantTraffic(bh, space, random, `during-move-to-${target.tier ?? target.store}`);
  const phases: Record<string, number> = {};
  let phase = "begin";
  let since = performance.now();
  let lastCatchUp = 0;
  let writeLimit: number | null = null;
  const onProgress = (p: MoveProgress) => {
    const now = performance.now();
    if (p.writeLimit && writeLimit === null) {
      writeLimit = p.writeLimit;
      phases.catchingUpBeforeWriteLimit = round((now - since) / 1000);
    }
    if (p.phase === "catching-up") lastCatchUp = now;
    if (p.phase === phase) return;
    phases[phase] = round((now - since) / 1000);
    [phase, since] = [p.phase, now];
    if (p.phase === "switched") phases.switchTransaction = round((now - lastCatchUp) / 1000, 3);
  };
  const moved = target.store ? await bh.registry.moveTenant("big", target, { onProgress }) : await bh.registry.changeTier("big", target.tier!, { onProgress });
  const traffic = await stop();
  const after = await bh.dataManager.countDocuments("big");
  let found = 0;
  for (let i = 0; i < traffic.acknowledged.length; i += 1000) found += (await bh.dataManager.fetchDocuments("big", traffic.acknowledged.slice(i, i + 1000))).documents.length;
  return {
    store: moved.store,
    index: moved.index,
    annIndexed: moved.placement.annIndexed,
    phaseSeconds: phases,
    tenantDuringMove: { writes: traffic.writes, reads: traffic.reads, failed: traffic.failed, limitedAndRetried: traffic.limitedAndRetried },
    writeLimit,
    acknowledgedWrites: traffic.acknowledged.length,
    acknowledgedWritesFound: found,
    documentsBefore: before,
    documentsAfter: after,
  };
}

/** Writes the results measured so far (`finalDocuments` null until the last step). */
function save(bh: Bulkhead, steps: unknown[], finalDocuments: number | null): void {
  const report = {
    benchmark: "operations",
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    config: { vectors: VECTORS, dimension: DEFAULT_SPEC.dimension, hnsw: { m: bh.config.hnswM, efConstruction: bh.config.hnswEfConstruction }, neighbourQueryEveryMs: 50, tenantWritesEveryMs: Number(args["writes-every-ms"]), tenantWriteBatch: Number(args["write-batch"]), tenantQueriesEveryMs: 50, movesOnly: args["moves-only"], cells: args.cells },
    steps,
    finalDocuments,
  };
  writeFileSync(out, JSON.stringify(report, null, 2) + "\n");
  log(`wrote ${out}${finalDocuments === null ? " (partial)" : ` (final count ${finalDocuments})`}`);
}

async function main() {
  const ownerUrl = process.env.DATABASE_OWNER_URL!;
  for (const url of args.cells ? [ownerUrl, cellUrl(ownerUrl)] : [ownerUrl]) {
    const owner = new pg.Client({ connectionString: url });
    await owner.connect();
    await owner.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await owner.end();
  }
  const cells: Record<string, CellConfig> = args.cells ? { "cell-2": { url: cellUrl(process.env.DATABASE_URL!), ownerUrl: cellUrl(ownerUrl) } } : {};
  const open = (config: Record<string, unknown> = {}) =>
    openBulkhead({ database: process.env.DATABASE_URL, databaseOwnerUrl: ownerUrl, databaseDataUrl: process.env.DATABASE_DATA_URL, env: {}, config: { schema, cells, ...config }, warn: () => {} });
  // Bulk load first, index once (see the storage benchmark's findings).
  let { bulkhead: bh } = await open({ annIndexThreshold: 1_000_000_000 });
  const file = join(tmpdir(), `bulkhead-bench-${process.pid}.bkp.gz`);
  try {
    const limits = { maxDocuments: 1_000_000, requestsPerSecond: 100_000, maxConcurrent: 1_000, maxDailyQueries: 100_000_000 };
    await bh.registry.registerTenant("big", "Big tenant", TenantTier.PRO, { quota: limits });
    await bh.registry.registerTenant("neighbour", "Neighbour", TenantTier.PRO, { quota: limits });
    const space = new EmbeddingSpace(DEFAULT_SPEC);
    const random = rng(5);
    await bh.dataManager.upsertDocuments("neighbour", Array.from({ length: 500 }, (_, i) => ({ id: `n-${i}`, values: Array.from(space.sample([3, 9], random)) })));
    const probe = Array.from(space.sample([3], random));
    const steps = [];
    log(`bench:operations: one tenant of ${VECTORS.toLocaleString("en")} vectors (384 d) on the server`);

    steps.push(await timed(bh, "bulk load (upserts of 500)", probe, async () => {
      for (let i = 0; i < VECTORS; i += 500) {
        await bh.dataManager.upsertDocuments("big", Array.from({ length: Math.min(500, VECTORS - i) }, (_, j) => ({ id: `doc-${i + j}`, values: Array.from(space.sample([(i / 500) % 64, 7], random)), metadata: { n: i + j } })));
      }
      return { documents: VECTORS };
    }));
    steps.push(await timed(bh, "HNSW index build", probe, async () => ({ built: await bh.registry.ensureAnnIndex(await bh.registry.getTenant("big"), 1) })));
    if (!args["moves-only"]) {
      steps.push(await timed(bh, "backup", probe, async () => {
        const s = await bh.backupTenant("big", file);
        return { documents: s.documents, fileMiB: round(statSync(file).size / 2 ** 20) };
      }));
      steps.push(await timed(bh, "erase", probe, async () => ({ verified: (await bh.eraseTenant("big", "bench")).verified })));
      // The bench loads with ANN indexing deferred, so each step that lays down vectors builds the index itself.
      const index = async () => bh.registry.ensureAnnIndex(await bh.registry.getTenant("big"), 1);
      steps.push(await timed(bh, "restore (verify file, load in one transaction) + HNSW build", probe, async () => ({ documents: (await bh.restoreTenant(file)).documents, indexed: await index() })));
    }
    // The moves run with the default ANN threshold, as in service: the target's HNSW index is built once, during the move.
    await bh.close();
    ({ bulkhead: bh } = await open());
    const moves: [string, { tier?: TenantTier; store?: string }][] = args.cells
      ? [
          ["online move home → cell-2 (shared namespace in another database), tenant writing and reading", { store: "cell-2" }],
          ["online move cell-2 → home, tenant writing and reading", { store: "home" }],
        ]
      : [
          ["online move pro → enterprise (dedicated index), tenant writing and reading", { tier: TenantTier.ENTERPRISE }],
          ["online move enterprise → pro (shared namespace), tenant writing and reading", { tier: TenantTier.PRO }],
        ];
    for (const [name, target] of moves) {
      steps.push(await timed(bh, name, probe, () => onlineMove(bh, target, space, random)));
      save(bh, steps, null); // a long run keeps what it measured so far
    }
    const count = await bh.dataManager.countDocuments("big");
    save(bh, steps, count);
  } finally {
    rmSync(file, { force: true });
    await bh.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
