/**
 * bench:tenant-context — what proving the tenant context costs (issue 12, item 7's stretch).
 *
 * Since migration 13 every row-level-security policy admits a tenant context only with its proof
 * (`current_tenant()`: one SECURITY DEFINER function per statement, a read of the secret and two
 * SHA-256), and `check_placement`, sent first in every data transaction, checks it too. Before, a
 * policy compared `tenant_id` with the setting alone. Same run, same server, same rows, alternated:
 *
 *   setting only — a table under the pre-13 policy, `tenant_id = (SELECT current_setting(…))`;
 *   proved       — the same rows under today's policy, `tenant_id = (SELECT current_tenant())`;
 *   bare         — the same rows in a table without RLS, the statement alone (reference).
 *
 * Each statement goes the way the service sends a data request (`PostgresDb.pipelineAsTenant`:
 * context and statement in one round trip), as the data-plane role: a primary-key lookup of 10 ids
 * among 20 tenants × 500 rows, and the placement check old and new. Reports per-statement medians
 * and means, and the proof's cost in Node (SHA-256 twice, then cached).
 *
 *   npm run bench:tenant-context                 # needs DATABASE_URL, DATABASE_DATA_URL, DATABASE_OWNER_URL
 *   npm run bench:tenant-context -- --rounds 6 --statements 3000 --out bench/results/tenant-context-postgres.json
 */
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import pg from "pg";
import { openBulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import type { TenantDb } from "../src/db/db.js";
import { TenantProofs } from "../src/db/tenant-proofs.js";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "4" },
    statements: { type: "string", default: "2000" },
    out: { type: "string" },
  },
});
const ROUNDS = Number(args.rounds);
const STATEMENTS = Number(args.statements);
const TENANTS = 20;
const ROWS = 500;
const { DATABASE_URL, DATABASE_DATA_URL, DATABASE_OWNER_URL } = process.env;
if (!DATABASE_URL?.startsWith("postgres") || !DATABASE_DATA_URL || !DATABASE_OWNER_URL) {
  console.error("bench:tenant-context needs DATABASE_URL, DATABASE_DATA_URL and DATABASE_OWNER_URL (eval \"$(bash scripts/setup-postgres.sh)\")");
  process.exit(2);
}

const schema = `bench_ctx_${process.pid}`;
const owner = new pg.Client({ connectionString: DATABASE_OWNER_URL });
await owner.connect();
const { bulkhead: bh, db } = await openBulkhead({ database: DATABASE_URL, databaseOwnerUrl: DATABASE_OWNER_URL, databaseDataUrl: DATABASE_DATA_URL, env: {}, config: { schema, dimension: 8 }, warn: () => {} });
try {
  const tenants = Array.from({ length: TENANTS }, (_, i) => `tenant-${String(i).padStart(2, "0")}`);
  for (const t of tenants) await bh.registry.registerTenant(t, t, TenantTier.PRO);
  const dataRole = db.dataPlaneRole!;
  // Three copies of the same rows, made by the owner: the pre-13 policy, today's, and no RLS at all.
  await owner.query(`SET search_path = "${schema}"`);
  const policy = { setting: "tenant_id = (SELECT current_setting('bulkhead.tenant_id', true))", proved: `tenant_id = (SELECT "${schema}".current_tenant())` };
  for (const name of ["setting", "proved", "bare"] as const) {
    await owner.query(`CREATE TABLE ctx_${name} (tenant_id text NOT NULL, id text NOT NULL, body text NOT NULL, PRIMARY KEY (tenant_id, id))`);
    await owner.query(`INSERT INTO ctx_${name} SELECT 'tenant-' || lpad(t::text, 2, '0'), 'doc-' || d, md5(t::text || d::text) FROM generate_series(0, ${TENANTS - 1}) t, generate_series(1, ${ROWS}) d`);
    if (name !== "bare") {
      await owner.query(`ALTER TABLE ctx_${name} ENABLE ROW LEVEL SECURITY; ALTER TABLE ctx_${name} FORCE ROW LEVEL SECURITY`);
      await owner.query(`CREATE POLICY p ON ctx_${name} USING (${policy[name]}) WITH CHECK (${policy[name]})`);
    }
    await owner.query(`GRANT SELECT ON ctx_${name} TO "${dataRole}"`);
    await owner.query(`ANALYZE ctx_${name}`);
  }
  // The placement check as it was before migration 13 (invoker, no proof), for comparison.
  await owner.query(`CREATE FUNCTION check_placement_setting_only(p_tenant text, p_epoch int) RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = "${schema}", pg_catalog AS $$
    BEGIN
      PERFORM pg_advisory_xact_lock_shared(hashtext('bulkhead.tenant-placement.' || current_schema() || '.' || p_tenant));
      IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant AND placement_epoch = p_epoch) THEN RAISE EXCEPTION 'moved' USING ERRCODE = 'BHP01'; END IF;
    END $$`);
  await owner.query(`GRANT EXECUTE ON FUNCTION check_placement_setting_only(text, int) TO "${dataRole}"`);

  const data: TenantDb = db.dataPlane;
  const ids = JSON.stringify(Array.from({ length: 10 }, (_, i) => `doc-${i * 37 + 1}`));
  const lookup = (table: string) => `SELECT id, body FROM ${table} WHERE tenant_id = $1 AND id IN (SELECT jsonb_array_elements_text($2::jsonb))`;
  const variants: Record<string, (tenant: string) => Promise<unknown>> = {
    "lookup, bare (no RLS)": (t) => data.queryAsTenant(t, lookup("ctx_bare"), [t, ids]),
    "lookup, setting only": (t) => data.queryAsTenant(t, lookup("ctx_setting"), [t, ids]),
    "lookup, proved": (t) => data.queryAsTenant(t, lookup("ctx_proved"), [t, ids]),
    "placement check, setting only": (t) => data.queryAsTenant(t, "SELECT check_placement_setting_only($1, 0)", [t]),
    "placement check, proved": (t) => data.queryAsTenant(t, "SELECT check_placement($1, 0)", [t]),
  };
  // Each variant must do its job before it is timed: 10 rows back where RLS lets the tenant see them.
  for (const [name, run] of Object.entries(variants)) {
    const rows = (await run("tenant-03")) as unknown[];
    if (name.startsWith("lookup") && rows.length !== 10) throw new Error(`${name}: ${rows.length} rows, expected 10`);
  }

  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? Object.keys(variants) : Object.keys(variants).reverse();
    for (const name of order) {
      for (let i = 0; i < STATEMENTS; i++) {
        const t = tenants[i % TENANTS]!;
        const started = performance.now();
        await variants[name]!(t);
        samples[name]!.push((performance.now() - started) * 1000);
      }
    }
    process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
  }
  const stat = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { median_us: Math.round(s[Math.floor(s.length / 2)]!), p95_us: Math.round(s[Math.floor(s.length * 0.95)]!), mean_us: Math.round(s.reduce((a, b) => a + b, 0) / s.length) };
  };
  const results = Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, { statements: xs.length, ...stat(xs) }]));

  // The proof in Node: two SHA-256, then a Map lookup.
  const proofs = await TenantProofs.load(db);
  const N = 100_000;
  let started = performance.now();
  for (let i = 0; i < N; i++) proofs.prove(`fresh-${i}`);
  const uncached = ((performance.now() - started) * 1000) / N;
  started = performance.now();
  for (let i = 0; i < N; i++) proofs.prove(tenants[i % TENANTS]!);
  const cached = ((performance.now() - started) * 1000) / N;

  const r = results as Record<string, { median_us: number; mean_us: number }>;
  const out = {
    bench: "tenant-context",
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memory_gib: Math.round(totalmem() / 2 ** 30) },
    setup: { tenants: TENANTS, rows_per_tenant: ROWS, rounds: ROUNDS, statements_per_variant_per_round: STATEMENTS, role: dataRole },
    results,
    proof_cost_per_statement_us: {
      lookup_median: r["lookup, proved"]!.median_us - r["lookup, setting only"]!.median_us,
      lookup_mean: r["lookup, proved"]!.mean_us - r["lookup, setting only"]!.mean_us,
      placement_check_median: r["placement check, proved"]!.median_us - r["placement check, setting only"]!.median_us,
      rls_vs_bare_median: r["lookup, proved"]!.median_us - r["lookup, bare (no RLS)"]!.median_us,
    },
    node_proof_us: { uncached: Number(uncached.toFixed(3)), cached: Number(cached.toFixed(3)) },
  };
  console.log(JSON.stringify(out, null, 2));
  if (args.out) writeFileSync(args.out, JSON.stringify(out, null, 2) + "\n");
} finally {
  await bh.close();
  await owner.query(`DROP SCHEMA "${schema}" CASCADE`).catch(() => {});
  await owner.end();
}
