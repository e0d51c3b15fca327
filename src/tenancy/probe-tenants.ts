import { randomBytes } from "node:crypto";
import { TenantTier } from "../config.js";

/**
 * Tenants the readiness checks register for themselves. The checks plant canaries, create keys and
 * run metered queries; doing that in a customer's tenant grew the customer's ledger and key list.
 * Ids with this prefix are Bulkhead's own: reports and allocations leave them out.
 */
export const PROBE_TENANT_PREFIX = "bh-probe-";

/** Whether `tenantId` is one of the readiness checks' own tenants (never billed, never reported). */
export const isProbeTenant = (tenantId: string): boolean => tenantId.startsWith(PROBE_TENANT_PREFIX);

/** Quota of a probe tenant: the checks' few dozen operations must not wait on a free tier's 10/s. */
const PROBE_QUOTA = { requestsPerSecond: 1_000, burst: 1_000, maxConcurrent: 8 };

/** A fresh pair of probe tenant ids (not registered yet). */
export function newProbeTenantIds(): [string, string] {
  const tag = randomBytes(4).toString("hex");
  return [`${PROBE_TENANT_PREFIX}${tag}-a`, `${PROBE_TENANT_PREFIX}${tag}-b`];
}

/** Registers one probe tenant (free tier, a namespace); erase it when the checks are done, whatever their outcome. */
export async function registerProbeTenant(
  // What it needs of the registry (which imports this module: no type import back, no cycle).
  registry: { registerTenant(tenantId: string, name: string, tier: TenantTier, options: { quota: typeof PROBE_QUOTA; probe: true }): Promise<unknown> },
  tenantId: string,
): Promise<void> {
  await registry.registerTenant(tenantId, "readiness probe (erased after the check)", TenantTier.FREE, { quota: PROBE_QUOTA, probe: true });
}
