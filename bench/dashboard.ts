/**
 * bench:dashboard — issue 16: what the operator's tenant table costs as tenants grow.
 *
 * Registers small tenants in a pool (as bench:tenants does) up to each size, gives each one minute
 * of activity and one metered query, and times, with the bare database in the same run:
 * - reference: the raw statement listing every tenant (what any tenant table must read at least);
 * - `tenant_overview` (migration 23): every tenant's counters and minutes, each read in its own context;
 * - the monthly report (revenue, cost and margin per tenant);
 * - `overview.tenants()`: both together, what the dashboard's table reads;
 * - GET /dashboard and GET /dashboard/tenants/{id} through HTTP with a signed-in session (the
 *   table's 2-second cache waited out before each).
 *
 *   npm run bench:dashboard                          # 1,000 and 10,000 tenants
 *   npm run bench:dashboard -- --sizes 1000,10000,50000
 */
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import pg from "pg";
import { openBulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { buildServer } from "../src/server/app.js";

const { values: args } = parseArgs({ options: { sizes: { type: "string", default: "1000,10000" }, reps: { type: "string", default: "5" }, out: { type: "string", default: "bench/results/dashboard-postgres.json" } } });
const SIZES = args.sizes.split(",").map(Number);
const REPS = Number(args.reps);
const log = (m: string) => process.stderr.write(`${m}\n`);
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const { DATABASE_URL: url, DATABASE_OWNER_URL: ownerUrl, DATABASE_DATA_URL: dataUrl } = process.env;
if (!url?.startsWith("postgres") || !ownerUrl || !dataUrl) {
  log('bench:dashboard runs against the PostgreSQL server: set DATABASE_URL, DATABASE_DATA_URL and DATABASE_OWNER_URL (eval "$(bash scripts/setup-postgres.sh)")');
  process.exit(2);
}
const schema = "bench_dashboard";
const admin = new pg.Client({ connectionString: ownerUrl });
await admin.connect();
await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);

const { bulkhead: bh, db } = await openBulkhead({
  database: url,
  databaseOwnerUrl: ownerUrl,
  databaseDataUrl: dataUrl,
  env: {},
  warn: () => {},
  config: { schema, dimension: 8, smallTenants: "pool", poolSize: 10 },
});
const app = await buildServer(bh, { logDestination: false });
const base = await app.listen({ host: "127.0.0.1", port: 0 });
const key = await bh.keys.createKey("admin", { name: "bench" }, "bench");
const signIn = await fetch(`${base}/dashboard/sign-in`, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `key=${key.key}` });
const cookie = signIn.headers.get("set-cookie")!.split(";")[0]!;

async function time(fn: () => Promise<unknown>, pauseMs = 0): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < REPS; i++) {
    if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
    const t = performance.now();
    await fn();
    xs.push(performance.now() - t);
  }
  return round(median(xs));
}
const page = async (path: string) => {
  const res = await fetch(base + path, { headers: { cookie } });
  if (res.status !== 200) throw new Error(`${path} → ${res.status}`);
  return res.text();
};

const results: Record<string, unknown>[] = [];
let registered = 0;
for (const size of SIZES) {
  log(`registering up to ${size} tenants…`);
  const started = performance.now();
  while (registered < size) {
    const batch = Array.from({ length: Math.min(8, size - registered) }, (_, i) => `t-${String(registered + i).padStart(6, "0")}`);
    await Promise.all(batch.map((id) => bh.registry.registerTenant(id, id, TenantTier.FREE)));
    // One minute of activity each, and one metered query: every tenant has a row in each table the table reads.
    const minute = new Date(Math.floor(Date.now() / 60_000) * 60_000).toISOString();
    await db.query("SELECT write_tenant_minutes($1::jsonb)", [JSON.stringify(batch.map((tenant_id) => ({ tenant_id, minute, ok: 10, errors: 0, invalid: 0, refused: 1, rate_limited: 1, quota_exceeded: 0, concurrency_limited: 0, latency: [2, 5, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] })))]);
    await Promise.all(batch.map((id) => bh.costEngine.trackQueryCost(id, {})));
    registered += batch.length;
  }
  await bh.costEngine.flush();
  log(`  ${size} tenants in ${round((performance.now() - started) / 1000)} s; timing…`);
  const now = new Date();
  const row = {
    tenants: size,
    rawTenantListMs: await time(() => db.query("SELECT id, name, tier, status FROM tenants ORDER BY id")),
    tenantOverviewSqlMs: await time(() => db.query("SELECT * FROM tenant_overview($1, $2, $3)", [new Date(now.getTime() - 86_400_000), new Date(now.getTime() - 300_000), now.toISOString().slice(0, 10)])),
    monthlyReportMs: await time(() => bh.costEngine.monthlyReport()),
    overviewMs: await time(() => bh.overview.tenants()),
    tenantsPageMs: await time(() => page("/dashboard"), 2_100),
    tenantPageMs: await time(() => page("/dashboard/tenants/t-000000"), 2_100),
    seriesMs: await time(() => bh.overview.series("t-000000", "24h")),
  };
  log(`  ${JSON.stringify(row)}`);
  results.push(row);
}

writeFileSync(
  args.out,
  JSON.stringify({ bench: "dashboard", date: new Date().toISOString(), machine: { cpus: cpus().length, memoryGiB: round(totalmem() / 2 ** 30) }, reps: REPS, statistic: "median", results }, null, 2),
);
log(`wrote ${args.out}`);
await app.close();
await bh.close();
await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
await admin.end();
