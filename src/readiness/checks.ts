import { relationVanished, TENANT_PROOF_SETTING, type Db } from "../db/db.js";
import { checkDataRole, checkRuntimeRole, checkServerVersion, ownerFunctionExposures } from "../db/server-checks.js";
import type { TenantDataManager } from "../data/data-manager.js";
import { probeCrossTenantIsolation } from "../isolation/cross-tenant-probe.js";
import type { TenantRegistry } from "../tenancy/registry.js";
import type { IndexSpec, RemoteStore } from "../stores/store.js";
import type { CostAllocationEngine } from "../costs/cost-engine.js";
import { EMBEDDED_RUNTIME_ROLE } from "../db/pglite-db.js";
import { whenAllowed } from "../limits/when-allowed.js";
import { describeError } from "../monitoring/safe-error.js";

export interface CheckResult {
  category: "Security" | "Capacity" | "Cost tracking" | "Performance";
  name: string;
  passed: boolean;
  /** Why it passed or failed, from what was just observed. */
  detail: string;
}

export interface ReadinessOptions {
  /** Two tenants to run the cross-tenant probe between; without them the probe is reported as not run (failed). */
  probeTenants?: [string, string];
  /** A tenant to time a query for; the check fails when its overhead exceeds `maxOverheadMs`. */
  sampleTenant?: string;
  maxOverheadMs?: number;
}

interface Deps {
  db: Db;
  /** The cells' databases, checked like the home one. */
  cells: readonly { name: string; db: Db }[];
  /** Stores outside PostgreSQL (Pinecone): reachable, with the indexes the catalogue lists. */
  remotes: readonly { name: string; store: Pick<RemoteStore, "verify"> }[];
  registry: TenantRegistry;
  dataManager: TenantDataManager;
  costEngine: CostAllocationEngine;
}

/**
 * The reference notebook's production checklist, each line a live check against the running
 * database and data path (the notebook hard-codes most of them as `True`).
 */
export async function runReadinessChecks({ db: home, cells, remotes, registry, dataManager, costEngine }: Deps, options: ReadinessOptions = {}): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const add = (category: CheckResult["category"], name: string, passed: boolean, detail: string) => results.push({ category, name, passed, detail });
  const attempt = async (category: CheckResult["category"], name: string, fn: () => Promise<[boolean, string]>) => {
    try {
      const [passed, detail] = await fn();
      add(category, name, passed, detail);
    } catch (err) {
      add(category, name, false, `check failed to run: ${describeError(err)}`);
    }
  };

  // The database-level checks run in the home database and in every cell; a cell's results are prefixed with its name.
  const databases = [{ name: "", db: home }, ...cells.map((c) => ({ name: c.name, db: c.db }))];
  const inEvery = (check: (db: Db) => Promise<[boolean, string]>) => async (): Promise<[boolean, string]> => {
    const verdicts = [];
    for (const { name, db } of databases) verdicts.push([...(await check(db)), name] as const);
    return [verdicts.every(([ok]) => ok), verdicts.map(([, detail, name]) => (name ? `${name}: ${detail}` : detail)).join("; ")];
  };

  await attempt("Security", "Row-level security enabled and forced on every table holding tenant_id", inEvery(async (db) => {
    const rows = await db.query<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean; policies: number }>(
      `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)`,
      [db.schema],
    );
    const bad = rows.filter((r) => !r.relrowsecurity || !r.relforcerowsecurity || r.policies === 0).map((r) => r.relname);
    return [rows.length > 0 && bad.length === 0, bad.length ? `unprotected: ${bad.join(", ")}` : `${rows.length} tables and partitions checked in the catalog`];
  }));

  await attempt("Security", "Runtime role is not superuser, owner or BYPASSRLS", inEvery(async (db) => {
    const verdict = await checkRuntimeRole(db, db.schema, db.kind === "pglite" ? EMBEDDED_RUNTIME_ROLE : undefined);
    return [verdict.ok, verdict.ok ? `role ${verdict.role}` : verdict.problems.join("; ")];
  }));

  await attempt("Security", "Tenant requests run as a data-plane role that cannot reach the control plane", inEvery(async (db) => {
    if (db.dataPlaneRole === null) return [false, "DATABASE_DATA_URL is not set: tenant requests run as the control-plane role (keys, tenants, DDL)"];
    const [{ role: control }] = (await db.query<{ role: string }>("SELECT current_user AS role")) as [{ role: string }];
    const verdict = await checkDataRole(db, db.schema, db.dataPlaneRole, control);
    // Embedded, nobody can connect: there is no credential to steal, so the catalogue functions stay as they are.
    const problems = [...verdict.problems, ...(db.kind === "pglite" ? [] : verdict.exposures)];
    if (problems.length) return [false, problems.join("; ")];
    return [true, `role ${verdict.role}: tenant data under RLS only${db.kind === "pglite" ? "" : "; no advisory locks or per-table statistics"}`];
  }));

  await attempt("Security", "A tenant context without its proof shows no rows", inEvery(async (db) => {
    // One of this store's tenants (the probe tenant if it lives here): as the data plane, in a
    // transaction rolled back at the end, plant a row, count it with the proved context, then with
    // the same tenant id and a forged proof.
    const [t] = await db.query<{ id: string; index_id: number; dimension: number }>(
      `SELECT t.id, t.index_id, i.dimension FROM tenants t JOIN indexes i ON i.id = t.index_id
        WHERE t.placement_epoch >= 0 AND to_regclass(format('vec_%s', t.index_id)) IS NOT NULL -- its vectors live in this database
        ORDER BY (t.id = $1) DESC, t.id LIMIT 1`,
      [options.probeTenants?.[0] ?? options.sampleTenant ?? null],
    );
    if (!t) return [true, "no tenant in this store yet: no rows to protect"];
    const seen: number[] = [];
    const rolledBack = new Error("rolled back on purpose");
    const count = async (q: { query: Db["query"] }) => seen.push((await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM vec_${t.index_id} WHERE id = 'bh-readiness-proof'`))[0]!.n);
    await db.dataPlane
      .withTenant(t.id, async (tx) => {
        await tx.query(`INSERT INTO vec_${t.index_id} (tenant_id, id, embedding, metadata) VALUES ($1, 'bh-readiness-proof', array_fill(1, ARRAY[$2::int])::real[]::vector, '{}')`, [t.id, t.dimension]);
        await count(tx);
        await tx.query("SELECT set_config($1, $2, true)", [TENANT_PROOF_SETTING, "0".repeat(64)]);
        await count(tx);
        throw rolledBack;
      })
      .catch((err) => {
        if (err !== rolledBack) throw err;
      });
    const [proved, forged] = seen as [number, number];
    return [proved === 1 && forged === 0, `a row planted in ${t.id}'s context: seen ${proved} time(s) with its proof, ${forged} with a forged one (rolled back)`];
  }));

  await attempt("Security", "Without tenant context the runtime role sees no rows", inEvery(async (db) => {
    const tables = await db.query<{ relname: string }>(
      "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname ~ '^vec_[0-9]+$'",
      [db.schema],
    );
    let visible = 0;
    for (const t of tables) {
      try {
        visible += Number((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${t.relname}"`))[0]!.n);
      } catch (err) {
        if (!relationVanished(err)) throw err; // dropped since the catalogue was read (its tenant erased): nothing to see
      }
    }
    return [visible === 0, `${visible} rows visible across ${tables.length} vector tables`];
  }));

  await attempt("Security", "Namespace partitions cannot be read around the policies", inEvery(async (db) => {
    // Every partition, for both runtime roles, from the catalogue: a privilege on one would let
    // that role read it without the parent's policy (RLS stays forced on it, but defence in depth).
    const [row] = await db.query<{ partitions: number; readable: string[] }>(
      `SELECT count(*)::int AS partitions,
              coalesce(array_agg(c.relname::text ORDER BY c.relname) FILTER (WHERE has_table_privilege(current_user, c.oid, 'SELECT')
                OR ($2::text IS NOT NULL AND has_table_privilege($2::text, c.oid, 'SELECT'))), '{}') AS readable
         FROM pg_class c WHERE c.relnamespace = $1::text::regnamespace AND c.relispartition AND c.relkind = 'r'`,
      [db.schema, db.dataPlaneRole],
    );
    return [row!.readable.length === 0, row!.readable.length ? `readable directly: ${row!.readable.join(", ")}` : `none of ${row!.partitions} partitions is granted to the runtime roles`];
  }));

  await attempt("Security", "Functions that run as the owner cannot be led to a caller's objects", inEvery(async (db) => {
    const [{ role: control }] = (await db.query<{ role: string }>("SELECT current_user AS role")) as [{ role: string }];
    const problems = await ownerFunctionExposures(db, db.schema, [control, ...(db.dataPlaneRole ? [db.dataPlaneRole] : [])]);
    return [problems.length === 0, problems.length ? problems.join("; ") : "search paths pinned (<schema>, pg_catalog, …, pg_temp); nobody but their owners creates in the schemas they name"];
  }));

  await attempt("Security", "PostgreSQL release has the row-level-security fixes", inEvery(async (db) => {
    const v = await checkServerVersion(db);
    return [v.ok, v.reason];
  }));

  for (const remote of remotes) {
    await attempt("Security", `Store ${remote.name} is reachable and holds the indexes the catalogue lists, with their dimensions and metrics`, async () => {
      const indexes = await home.query<IndexSpec>("SELECT id, name, kind, dimension, metric, store FROM indexes WHERE store = $1 ORDER BY id", [remote.name]);
      const problems = await remote.store.verify(indexes);
      return [problems.length === 0, problems.length ? problems.join("; ") : `${indexes.length} indexes checked; tenants isolated by namespace or dedicated index, tenant_id filter on every query`];
    });
  }

  await attempt("Security", "Cross-tenant isolation probe", async () => {
    if (!options.probeTenants) return [false, "not run: no pair of tenants given"];
    const report = await probeCrossTenantIsolation(dataManager, ...options.probeTenants);
    const failed = report.attempts.filter((a) => !a.passed);
    return [report.passed, failed.length ? failed.map((a) => `${a.name}: ${a.detail}`).join("; ") : `${report.attempts.length} attacks by ${options.probeTenants[1]} on ${options.probeTenants[0]}, all refused`];
  });

  const capacity = await registry.getCapacity();
  const pools = await registry.getPools();
  await attempt("Capacity", "Namespace usage monitored", async () => [
    capacity.length + pools.length > 0,
    [...capacity.map((c) => `${c.index} ${c.used}/${c.max}`), ...pools.map((p) => `${p.index} ${p.tenants} pooled tenants`)].join(", ") || "no shared index",
  ]);
  await attempt("Capacity", "Room for new tenants without exceeding any index", async () => {
    const over = capacity.filter((c) => c.used > c.max);
    const free = capacity.reduce((n, c) => n + c.free, 0);
    // Small tenants start in a pool, which has no namespace limit (and is created on first need).
    const pooled = registry.placesSmallTenantsInPools;
    return [over.length === 0 && (free > 0 || pooled), `${pooled ? "new small tenants go to a pool (no namespace limit); " : ""}${free} free namespaces; ${over.length} indexes over their maximum`];
  });
  await attempt("Capacity", "Next shared index provisioned before the last one fills", async () => {
    const pressed = capacity.filter((c) => c.used >= c.provisionAt);
    const spare = capacity.filter((c) => c.used < c.provisionAt);
    return [pressed.length === 0 || spare.length > 0, pressed.length === 0 ? "no index at its provisioning threshold" : `${pressed.length} at threshold, ${spare.length} with room`];
  });

  await attempt("Performance", "Isolation overhead acceptable", async () => {
    if (!options.sampleTenant) return [false, "not run: no sample tenant given"];
    const { dimension } = await dataManager.describePlacement(options.sampleTenant);
    const vector = Array.from({ length: dimension }, (_, i) => Math.cos(i + 1));
    const samples: number[] = [];
    for (let i = 0; i < 10; i++) samples.push((await whenAllowed(() => dataManager.queryDocuments(options.sampleTenant!, vector, { topK: 5 }))).overheadMs);
    samples.sort((a, b) => a - b);
    const p50 = samples[Math.floor(samples.length / 2)]!;
    const limit = options.maxOverheadMs ?? 30;
    return [p50 < limit, `median ${p50.toFixed(3)} ms of application-side isolation work over 10 queries (limit ${limit} ms)`];
  });

  await attempt("Cost tracking", "Queries are metered into the usage ledger", async () => {
    if (!options.sampleTenant) return [false, "not run: no sample tenant given"];
    const tenant = options.sampleTenant;
    const before = (await costEngine.getTenantCostSummary(tenant)).queryCount;
    const { dimension } = await dataManager.describePlacement(tenant);
    await whenAllowed(() => dataManager.queryDocuments(tenant, Array.from({ length: dimension }, (_, i) => Math.sin(i + 1)), { topK: 1 }));
    const after = await costEngine.getTenantCostSummary(tenant);
    return [after.queryCount === before + 1, `one query of ${tenant} moved its ledger count from ${before} to ${after.queryCount} (${after.period}, $${after.variableCost.toFixed(6)})`];
  });
  await attempt("Cost tracking", "Fixed costs allocated for this month", async () => {
    const run = await costEngine.getAllocation();
    return [run !== null, run ? `$${run.total.toFixed(2)} allocated (${run.method})` : "no allocation for this month: run costEngine.allocateFixedCosts()"];
  });

  return results;
}
