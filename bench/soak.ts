/**
 * soak — the leak fuzzer (test/fuzz-leak.ts) at length: ≥ 100,000 seeded random operations of 42
 * tenants of every tier with colliding ids on each database (embedded PGlite and, when
 * DATABASE_URL / DATABASE_OWNER_URL are set, the PostgreSQL server), every answer checked against an
 * in-memory model. Writes bench/results/soak-<backend>.json (operations, checks, leaks, mismatches,
 * errors, seed, duration, the first failures with the operations before them) and exits 1 if any
 * check failed.
 *
 *   npm run soak                                    # both databases, 100,000 operations each
 *   npm run soak -- --backend pglite --operations 20000 --seed 42
 *   npm run soak -- --out-dir /tmp                  # results elsewhere
 *   npm run soak -- --concurrency 4                 # four walks at once over disjoint tenants
 *   npm run soak -- --no-http                       # library calls only (by default a quarter go through HTTP)
 *
 * Replaying a failure: the same --seed gives the same sequence of operations (only the timing of
 * background moves varies); the report names the operation number.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { openBulkhead } from "../src/bulkhead.js";
import { buildServer } from "../src/server/app.js";
import { describeFailures, FUZZ_CONFIG, runLeakFuzz } from "../test/fuzz-leak.js";

const { values: args } = parseArgs({
  options: {
    backend: { type: "string", default: "all" },
    operations: { type: "string", default: "100000" },
    seed: { type: "string", default: "20261130" },
    tenants: { type: "string", default: "42" },
    // Walks at once over disjoint tenants (1: one walk, every operation fixed by the seed).
    concurrency: { type: "string", default: "1" },
    "out-dir": { type: "string", default: "bench/results" },
    // A quarter of the data calls through the HTTP service with the tenant's key (--no-http: library only).
    http: { type: "boolean", default: true },
    "no-http": { type: "boolean", default: false },
  },
});
const log = (m: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${m}\n`);
const serverUrl = process.env.DATABASE_URL?.startsWith("postgres") ? process.env.DATABASE_URL : undefined;
const ownerUrl = process.env.DATABASE_OWNER_URL;
const schema = "bench_soak";

const backends = args.backend === "all" ? ["pglite", ...(serverUrl && ownerUrl ? ["postgres"] : [])] : [args.backend];
if (backends.includes("postgres") && !(serverUrl && ownerUrl)) {
  log('the postgres soak needs DATABASE_URL and DATABASE_OWNER_URL (eval "$(bash scripts/setup-postgres.sh)")');
  process.exit(2);
}

async function dropSchema(): Promise<void> {
  const owner = new pg.Client({ connectionString: ownerUrl });
  await owner.connect();
  await owner.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await owner.end();
}

async function soak(backend: string): Promise<boolean> {
  if (backend === "postgres") await dropSchema();
  const warnings: string[] = [];
  const { bulkhead: bh } = await openBulkhead({
    database: backend === "postgres" ? serverUrl : "memory://",
    databaseOwnerUrl: backend === "postgres" ? ownerUrl : undefined,
    databaseDataUrl: backend === "postgres" ? process.env.DATABASE_DATA_URL : undefined,
    env: {},
    config: { ...FUZZ_CONFIG, ...(backend === "postgres" ? { schema } : {}) },
    warn: (m) => {
      warnings.push(m);
      log(`warning: ${m}`);
    },
  });
  const operations = Number(args.operations);
  const app = args.http && !args["no-http"] ? await buildServer(bh, { logDestination: false }) : undefined;
  const baseUrl = app ? await app.listen({ host: "127.0.0.1", port: 0 }) : undefined;
  log(`${backend}: ${operations} operations, seed ${args.seed}, ${args.tenants} tenants`);
  let report;
  try {
    report = await runLeakFuzz(bh, {
      seed: Number(args.seed),
      operations,
      tenants: Number(args.tenants),
      annIndexThreshold: FUZZ_CONFIG.annIndexThreshold,
      warnings,
      log: (l) => log(`${backend}: ${l}`),
      progressEvery: 5000,
      http: baseUrl ? { baseUrl } : undefined,
      concurrency: Number(args.concurrency),
    });
  } finally {
    await app?.close();
    await bh.close();
    if (backend === "postgres") await dropSchema();
  }
  const result = {
    benchmark: "soak",
    command: `npm run soak -- --backend ${backend} --operations ${operations} --seed ${args.seed}${args.concurrency !== "1" ? ` --concurrency ${args.concurrency}` : ""}${app ? "" : " --no-http"}`,
    concurrency: Number(args.concurrency),
    date: new Date().toISOString(),
    backend,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    config: { dimension: FUZZ_CONFIG.dimension, annIndexThreshold: FUZZ_CONFIG.annIndexThreshold, metric: "cosine" },
    seed: report.seed,
    operations: report.operations,
    checks: report.checks,
    leaks: report.leaks,
    mismatches: report.mismatches,
    errors: report.errors,
    tenants: report.tenants,
    annTenants: report.annTenants,
    movesCompleted: report.movesCompleted,
    erasures: report.erasures,
    httpCalls: report.httpCalls,
    byOperation: report.byOperation,
    durationSeconds: Math.round(report.durationMs / 100) / 10,
    operationsPerSecond: Math.round(report.operations / (report.durationMs / 1000)),
    failures: report.failures,
  };
  mkdirSync(args["out-dir"], { recursive: true });
  const file = join(args["out-dir"], `soak-${backend}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + "\n");
  log(
    `${backend}: ${result.operations} operations, ${result.checks} checks, leaks ${result.leaks}, mismatches ${result.mismatches}, errors ${result.errors}, ` +
      `${result.durationSeconds} s (${result.operationsPerSecond} ops/s) → ${file}`,
  );
  if (report.failures.length) log(describeFailures(report));
  return report.leaks === 0 && report.mismatches === 0 && report.errors === 0;
}

let ok = true;
for (const backend of backends) ok = (await soak(backend)) && ok;
process.exit(ok ? 0 : 1);
