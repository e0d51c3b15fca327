import type { RemoteStore } from "../stores/store.js";
import { relationVanished, type Db } from "../db/db.js";
import type { ApiKeyStore } from "../tenancy/api-keys.js";
import type { AuditLog } from "../tenancy/audit-log.js";
import type { TenantRegistry } from "../tenancy/registry.js";
import { assertTenantId } from "../tenancy/tenant.js";
import { describeError } from "../monitoring/safe-error.js";

/** A cell's database, where an erased tenant's rows are looked for too. */
type ErasureCell = { readonly name: string; readonly db: Db };
type ErasureRemote = { readonly name: string; readonly store: Pick<RemoteStore, "remaining"> };

/**
 * Billing records kept after erasure: usage quantities and amounts per month, no content, needed
 * to invoice and to account for the month. Everything else of the tenant is erased.
 */
export const RETAINED_BILLING_TABLES: readonly string[] = ["usage_events", "usage_quarantine", "cost_allocations"];

/** What erasing a tenant did, and the proof that nothing else is left. */
export interface ErasureReport {
  tenantId: string;
  erasedAt: Date;
  /** Rows still found per table holding the tenant's id (every one must be 0), from a catalog scan. */
  remaining: Record<string, number>;
  /** Billing rows kept by the retention rule, per table. */
  retained: Record<string, number>;
  /** True when no row of the tenant is left outside the retained billing tables. */
  verified: boolean;
  /**
   * Set when the tenant was erased but the proof could not be completed (e.g. the database stopped
   * answering half-way): `verified` is then false, and the audit entry records why.
   */
  proofError?: string;
}

/**
 * Right to be forgotten: deletes the tenant (vectors, namespace — freed for reuse — or dedicated
 * index, keys, quota counters, cached entries in every instance), then proves it: every table in
 * the schema with a `tenant_id` column (found in the catalog, not listed by hand) is counted under
 * the tenant's own row-level-security context, and the control-plane tables by id. The erasure and
 * its report are written to the audit log. Every cell is scanned the same way.
 */
export async function eraseTenant(
  deps: { db: Db; cells: readonly ErasureCell[]; remotes: readonly ErasureRemote[]; registry: TenantRegistry; keys: ApiKeyStore; audit: AuditLog },
  tenantId: string,
  actor: string,
): Promise<ErasureReport> {
  assertTenantId(tenantId);
  const { registry, audit } = deps;
  await registry.deleteTenant(tenantId);

  // The tenant is gone from here on: whatever happens to the proof, the erasure is reported and audited.
  const remaining: Record<string, number> = {};
  const retained: Record<string, number> = {};
  let proofError: string | undefined;
  try {
    await proveErased(deps, tenantId, remaining, retained);
  } catch (err) {
    proofError = `the tenant was erased but the proof could not be completed: ${describeError(err)}`;
  }
  const verified = proofError === undefined && Object.values(remaining).every((n) => n === 0);
  const report: ErasureReport = { tenantId, erasedAt: new Date(), remaining, retained, verified, ...(proofError ? { proofError } : {}) };
  await audit.record(actor, "tenant.erase", tenantId, { remaining, retained, verified, ...(proofError ? { proofError } : {}) });
  return report;
}

async function proveErased(deps: { db: Db; cells: readonly ErasureCell[]; remotes: readonly ErasureRemote[] }, tenantId: string, remaining: Record<string, number>, retained: Record<string, number>): Promise<void> {
  const { db } = deps;
  await countTenantRows(db, tenantId, "", remaining, retained);
  // Control-plane rows that name the tenant in other columns.
  remaining.tenants = (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM tenants WHERE id = $1", [tenantId]))[0]!.n;
  remaining.api_keys = (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM api_keys WHERE tenant = $1", [tenantId]))[0]!.n;
  remaining.placement_moves = (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM placement_moves WHERE tenant = $1", [tenantId]))[0]!.n;
  // Every cell too, whether or not the tenant ever lived there: its tables, and its mirror of the tenant.
  for (const cell of deps.cells) {
    await countTenantRows(cell.db, tenantId, `${cell.name}/`, remaining, retained);
    remaining[`${cell.name}/tenants`] = (await cell.db.query<{ n: number }>("SELECT count(*)::int AS n FROM tenants WHERE id = $1", [tenantId]))[0]!.n;
  }
  // Every remote store, by listing the tenant's namespace in each of the deployment's indexes.
  for (const remote of deps.remotes) remaining[`${remote.name}/records`] = await remote.store.remaining(tenantId);
}

/** Counts the tenant's rows in every table of the database's schema that has a `tenant_id` column (found in the catalog). */
async function countTenantRows(db: Db, tenantId: string, prefix: string, remaining: Record<string, number>, retained: Record<string, number>): Promise<void> {
  const tables = await db.query<{ relname: string }>(
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
      ORDER BY c.relname`,
    [db.schema],
  );
  // One transaction per table: another tenant's table may be dropped between the catalogue read and
  // its count (its tenant erased, its namespace freed), and a failed statement would abort the rest.
  for (const { relname } of tables) {
    let n: number;
    try {
      [{ n }] = (await db.queryAsTenant<{ n: number }>(tenantId, `SELECT count(*)::int AS n FROM "${relname}" WHERE tenant_id = $1`, [tenantId])) as [{ n: number }];
    } catch (err) {
      if (relationVanished(err)) continue; // dropped meanwhile: it holds nothing of anyone's
      throw err;
    }
    (RETAINED_BILLING_TABLES.includes(relname) ? retained : remaining)[prefix + relname] = n;
  }
}
