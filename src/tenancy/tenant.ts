import { HOME_STORE, TenantTier, type Metric, type TenantQuota } from "../config.js";
import { shown, ValidationError } from "../errors.js";
import type { Isolation, Placement } from "../stores/store.js";

/** `^[a-z0-9][a-z0-9-]{1,62}$`: safe in URLs, namespaces, logs and SQL literals. */
export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{1,62}$/;

export type TenantStatus = "active" | "suspended";

/** A registered tenant, with the reference notebook's field names. */
export interface Tenant {
  readonly tenantId: string;
  readonly tenantName: string;
  readonly tier: TenantTier;
  readonly status: TenantStatus;
  /** Effective quota: the tier's defaults with this tenant's overrides on top. */
  readonly quota: Readonly<TenantQuota>;
  readonly quotaOverrides: Readonly<Partial<TenantQuota>>;
  /** Store (cell) holding the tenant's index: "home" or a configured cell. */
  readonly store: string;
  /** Index holding the tenant's vectors (shared or dedicated). */
  readonly index: string;
  /** The tenant's namespace; in a dedicated index it is the tenant's only one. */
  readonly namespace: string;
  /** Name of the tenant's own index (enterprise), or null in a shared index. */
  readonly dedicatedIndex: string | null;
  readonly isolation: Isolation;
  readonly dimension: number;
  readonly metric: Metric;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  /**
   * Vectors per second the tenant may write while a move catches up with it (the move sets it when
   * the tenant writes faster than it can copy); null when not limited.
   */
  readonly moveWriteLimit: number | null;
  /** Where the data lives; what data code scopes every operation by. */
  readonly placement: Placement;
}

/** Throws a `ValidationError` unless `id` is a valid tenant id. */
export function assertTenantId(id: unknown, field = "tenantId"): asserts id is string {
  if (typeof id !== "string" || !TENANT_ID_PATTERN.test(id)) {
    throw new ValidationError(field, `must match ${TENANT_ID_PATTERN.source} (2-63 lower-case letters, digits and hyphens, starting with a letter or digit), got ${shown(id)}`);
  }
}

/** Enterprise tenants get an index of their own; the other tiers a namespace in a shared index. */
export const isDedicatedTier = (tier: TenantTier) => tier === TenantTier.ENTERPRISE;

/** Whether changing between these tiers moves the tenant's vectors (to or from a dedicated index). */
export const tierChangeMoves = (from: TenantTier, to: TenantTier) => isDedicatedTier(from) !== isDedicatedTier(to);

/**
 * The store a tier lives in under `BULKHEAD_TIER_STORES`: the one named, home for tiers not named
 * — or undefined when no tier is mapped (tenants then stay in whatever store they are in).
 */
export const storeOfTier = (tierStores: Readonly<Partial<Record<TenantTier, string>>>, tier: TenantTier): string | undefined =>
  Object.keys(tierStores).length === 0 ? undefined : (tierStores[tier] ?? HOME_STORE);
