import type { BulkheadConfig, Metric, TenantQuota } from "../config.js";
import { QUOTA_MINIMUMS, TenantTier, TIERS } from "../config.js";
import type { Db, Queryable } from "../db/db.js";
import { TenantAlreadyExistsError, TenantNotFoundError, TenantSuspendedError, ValidationError } from "../errors.js";
import type { IndexSpec, Placement, VectorStore } from "../stores/store.js";
import { describeCapacity, thresholdCount, type IndexCapacity } from "./capacity.js";
import { registrySql as sql } from "./registry-sql.js";
import { assertTenantId, type Tenant, type TenantStatus } from "./tenant.js";
import { TenantCache } from "./tenant-cache.js";
import { changeChannel, type ChangeFeedHandlers } from "./change-feed.js";

interface TenantRow {
  id: string;
  name: string;
  tier: TenantTier;
  status: TenantStatus;
  quota_overrides: Partial<TenantQuota>;
  slot: number | null;
  ann_indexed: boolean;
  created_at: Date | string;
  updated_at: Date | string;
  index_id: number;
  index_name: string;
  index_kind: "shared" | "dedicated";
  dimension: number;
  metric: Metric;
}

interface SharedIndexRow {
  id: number;
  name: string;
  dimension: number;
  metric: Metric;
  max_namespaces: number;
  used: number;
}

/** Options for `registerTenant`. */
export interface RegisterOptions {
  /** Per-tenant quota overrides on top of the tier's defaults. */
  quota?: Partial<TenantQuota>;
  /** Vector dimension of an enterprise tenant's dedicated index (shared indexes use the configured one). */
  dimension?: number;
}

/** Registry settings taken from the configuration. */
export type RegistryConfig = Pick<
  BulkheadConfig,
  "dimension" | "metric" | "maxNamespacesPerIndex" | "namespaceAlertThreshold" | "namespaceProvisionThreshold" | "tierQuotas" | "annIndexThreshold"
>;

const isDedicatedTier = (tier: TenantTier) => tier === TenantTier.ENTERPRISE;

function assertTier(tier: unknown): asserts tier is TenantTier {
  if (!TIERS.includes(tier as TenantTier)) throw new ValidationError("tier", `must be one of ${TIERS.join(", ")}, got ${JSON.stringify(tier)}`);
}

function assertQuota(quota: unknown): asserts quota is Partial<TenantQuota> {
  if (quota === undefined) return;
  if (typeof quota !== "object" || quota === null || Array.isArray(quota)) throw new ValidationError("quota", "must be an object");
  for (const [key, value] of Object.entries(quota)) {
    const minimum = QUOTA_MINIMUMS[key as keyof TenantQuota];
    if (minimum === undefined) throw new ValidationError(`quota.${key}`, `unknown quota (known: ${Object.keys(QUOTA_MINIMUMS).join(", ")})`);
    if (!Number.isSafeInteger(value) || (value as number) < minimum) throw new ValidationError(`quota.${key}`, `must be a whole number >= ${minimum}, got ${JSON.stringify(value)}`);
  }
}

/**
 * Tenants, tiers and placement. Free and pro tenants get a namespace in a shared index (filled
 * oldest-first, never past `maxNamespacesPerIndex`, the next index provisioned when one reaches
 * the provisioning threshold); enterprise tenants get a dedicated index. Placement decisions take
 * a transaction-scoped advisory lock, so concurrent registrations — in this process or others —
 * can neither over-fill an index nor share a namespace (also enforced by a unique constraint).
 */
export class TenantRegistry {
  private readonly cache: TenantCache<Tenant>;
  private readonly listeners: ((tenantId: string | null) => void)[] = [];
  private readonly channel: string;

  constructor(
    private readonly db: Db,
    private readonly store: VectorStore,
    private readonly config: RegistryConfig,
    cacheTtlMs = 300_000,
  ) {
    this.cache = new TenantCache<Tenant>(cacheTtlMs);
    this.channel = changeChannel(db.schema);
  }

  /**
   * Calls `listener` after a tenant changed (here or, through the change feed, in another instance);
   * `null` means any tenant may have changed (the feed reconnected).
   */
  onChange(listener: (tenantId: string | null) => void): void {
    this.listeners.push(listener);
  }

  /** What the change feed drives: invalidations from other instances, and distrust while disconnected. */
  readonly feedHandlers: ChangeFeedHandlers = {
    changed: (tenantId) => this.forget(tenantId),
    lost: () => {
      this.cache.bypass = true;
      this.forget(null);
    },
    restored: () => {
      this.cache.bypass = false;
      this.forget(null);
    },
  };

  /**
   * Registers a tenant and gives it a place to store vectors.
   *
   * @example
   * const t = await registry.registerTenant("tenant-001", "Acme Corp", TenantTier.FREE);
   * t.namespace; // "tenant-001" in "shared-index-1"
   */
  async registerTenant(tenantId: string, tenantName: string, tier: TenantTier, options: RegisterOptions = {}): Promise<Tenant> {
    assertTenantId(tenantId);
    if (typeof tenantName !== "string" || tenantName.trim().length === 0 || tenantName.length > 200) {
      throw new ValidationError("tenantName", "must be a non-empty string of at most 200 characters");
    }
    assertTier(tier);
    assertQuota(options.quota);
    const dimension = options.dimension ?? this.config.dimension;
    if (!Number.isInteger(dimension) || dimension < 1 || dimension > 16_000) throw new ValidationError("dimension", "must be a whole number from 1 to 16000");
    if (options.dimension !== undefined && options.dimension !== this.config.dimension && !isDedicatedTier(tier)) {
      throw new ValidationError("dimension", `shared indexes use dimension ${this.config.dimension}; only enterprise tenants may choose another`);
    }
    await this.db.transaction(async (tx) => {
      await tx.query(sql.lockPlacement);
      if ((await tx.query(sql.tenantExists, [tenantId])).length > 0) throw new TenantAlreadyExistsError(tenantId);
      const [indexId, slot] = isDedicatedTier(tier) ? [await this.createDedicatedIndex(tx, tenantId, dimension), null] : await this.claimNamespace(tx);
      await tx.query(sql.insertTenant, [tenantId, tenantName.trim(), tier, JSON.stringify(options.quota ?? {}), indexId, slot]);
      const tenant = await this.load(tx, tenantId);
      await this.store.createNamespace(tx, tenant!.placement);
      await this.announce(tx, tenantId); // another instance may have cached "no such tenant"
    });
    this.forget(tenantId);
    return this.getTenant(tenantId);
  }

  /** The tenant, whatever its status. Throws `TenantNotFoundError`. */
  async getTenant(tenantId: string): Promise<Tenant> {
    assertTenantId(tenantId);
    const tenant = await this.load(this.db, tenantId);
    if (!tenant) throw new TenantNotFoundError(tenantId);
    return tenant;
  }

  /** All tenants, optionally of one tier or status, ordered by id. */
  async listTenants(filter: { tier?: TenantTier; status?: TenantStatus } = {}): Promise<Tenant[]> {
    if (filter.tier !== undefined) assertTier(filter.tier);
    const rows = await this.db.query<TenantRow>(sql.listTenants, [filter.tier ?? null, filter.status ?? null]);
    return rows.map((r) => this.toTenant(r));
  }

  /**
   * The tenant if it may use its data now: exists and is active. This is what every data
   * operation calls; it is served from a cache (`tenantCacheTtlMs`, 5 minutes by default) that every
   * change invalidates at commit, in this instance and — through the change feed — in the others.
   */
  async resolveActive(tenantId: string): Promise<Tenant> {
    assertTenantId(tenantId);
    const tenant = await this.cache.get(tenantId, () => this.load(this.db, tenantId));
    if (!tenant) throw new TenantNotFoundError(tenantId);
    if (tenant.status !== "active") throw new TenantSuspendedError(tenantId);
    return tenant;
  }

  /**
   * Changes a tenant's tier. Between free and pro only the quota changes; to or from enterprise the
   * tenant's vectors move between a shared namespace and a dedicated index in one transaction, so
   * the switch is atomic (writes made during the move wait for it, then land in the new place).
   */
  async changeTier(tenantId: string, tier: TenantTier): Promise<Tenant> {
    assertTenantId(tenantId);
    assertTier(tier);
    await this.db.transaction(async (tx) => {
      await tx.query(sql.lockPlacement);
      const current = await this.load(tx, tenantId);
      if (!current) throw new TenantNotFoundError(tenantId);
      await this.announce(tx, tenantId);
      if (isDedicatedTier(current.tier) === isDedicatedTier(tier)) {
        await tx.query(sql.setTier, [tenantId, tier]);
        return;
      }
      if (!isDedicatedTier(tier) && current.dimension !== this.config.dimension) {
        throw new ValidationError("tier", `the tenant's vectors have dimension ${current.dimension}; shared indexes hold ${this.config.dimension}`);
      }
      const [indexId, slot] = isDedicatedTier(tier) ? [await this.createDedicatedIndex(tx, tenantId, current.dimension), null] : await this.claimNamespace(tx);
      await tx.query(sql.movePlacement, [tenantId, tier, indexId, slot]);
      const moved = (await this.load(tx, tenantId))!;
      await this.store.createNamespace(tx, moved.placement);
      await this.store.copyTenant(tx, current.placement, moved.placement);
      await this.store.dropStorage(tx, current.placement);
      if (current.dedicatedIndex) await tx.query(sql.deleteIndex, [current.placement.indexId]);
    });
    this.forget(tenantId);
    const tenant = await this.getTenant(tenantId);
    await this.ensureAnnIndex(tenant);
    return this.getTenant(tenantId);
  }

  /** Refuses the tenant's data operations until resumed. Data is kept. */
  suspendTenant(tenantId: string): Promise<Tenant> {
    return this.setStatus(tenantId, "suspended");
  }

  resumeTenant(tenantId: string): Promise<Tenant> {
    return this.setStatus(tenantId, "active");
  }

  /** Replaces the tenant's quota overrides (an empty object returns it to its tier's defaults). */
  async setQuota(tenantId: string, quota: Partial<TenantQuota>): Promise<Tenant> {
    assertTenantId(tenantId);
    assertQuota(quota);
    await this.update(tenantId, sql.setQuota, [tenantId, JSON.stringify(quota)]);
    return this.getTenant(tenantId);
  }

  /** Deletes the tenant, its vectors and its namespace or dedicated index; the namespace slot is freed. */
  async deleteTenant(tenantId: string): Promise<void> {
    assertTenantId(tenantId);
    await this.db.transaction(async (tx) => {
      await tx.query(sql.lockPlacement);
      const tenant = await this.load(tx, tenantId);
      if (!tenant) throw new TenantNotFoundError(tenantId);
      await this.store.dropStorage(tx, tenant.placement);
      await tx.query(sql.deleteTenant, [tenantId]);
      if (tenant.dedicatedIndex) await tx.query(sql.deleteIndex, [tenant.placement.indexId]);
      await this.announce(tx, tenantId);
    });
    this.forget(tenantId);
  }

  /** Namespaces in use per shared index, e.g. `{ "shared-index-1": 2 }`. */
  async getNamespaceUsage(): Promise<Record<string, number>> {
    const rows = await this.db.query<SharedIndexRow>(sql.sharedIndexes, [null]);
    return Object.fromEntries(rows.map((r) => [r.name, r.used]));
  }

  /** Live capacity of every shared index. */
  async getCapacity(): Promise<IndexCapacity[]> {
    const rows = await this.db.query<SharedIndexRow>(sql.sharedIndexes, [null]);
    return rows.map((r) => describeCapacity(r.name, r.used, r.max_namespaces, this.config.namespaceAlertThreshold, this.config.namespaceProvisionThreshold));
  }

  /**
   * Gives a namespace that has outgrown exact search its own HNSW index. Called after upserts;
   * cheap when nothing is to be done. Bulk imports load with a high threshold and call this once
   * afterwards: one CREATE INDEX is far faster than inserting row by row into a live HNSW graph.
   * `knownCount` (the document count an upsert just returned) spares a count query.
   */
  async ensureAnnIndex(tenant: Tenant, minimumVectors = this.config.annIndexThreshold, knownCount?: number): Promise<boolean> {
    if (tenant.placement.annIndexed) return false;
    if ((knownCount ?? (await this.store.count(tenant.placement))) < minimumVectors) return false;
    await this.store.buildAnnIndex(tenant.placement);
    await this.update(tenant.tenantId, sql.markAnnIndexed, [tenant.tenantId]);
    return true;
  }

  private async setStatus(tenantId: string, status: TenantStatus): Promise<Tenant> {
    assertTenantId(tenantId);
    await this.update(tenantId, sql.setStatus, [tenantId, status]);
    return this.getTenant(tenantId);
  }

  /** One UPDATE of a tenant row, announced to every instance in the same transaction. */
  private async update(tenantId: string, statement: string, params: unknown[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      const rows = await tx.query(statement, params);
      if (rows.length === 0) throw new TenantNotFoundError(tenantId);
      await this.announce(tx, tenantId);
    });
    this.forget(tenantId);
  }

  /** NOTIFY inside the changing transaction: PostgreSQL delivers it at commit, and only if it commits. */
  private async announce(tx: Queryable, tenantId: string): Promise<void> {
    await tx.query("SELECT pg_notify($1, $2)", [this.channel, tenantId]);
  }

  /** Drops cached state of one tenant (or of all, with null) here and tells the listeners. */
  private forget(tenantId: string | null): void {
    if (tenantId === null) this.cache.clear();
    else this.cache.invalidate(tenantId);
    for (const listener of this.listeners) listener(tenantId);
  }

  /** Picks the oldest shared index with room and its lowest free slot; provisions ahead of need. */
  private async claimNamespace(tx: Queryable): Promise<[number, number]> {
    const indexes = await tx.query<SharedIndexRow>(sql.sharedIndexes, [this.config.dimension]);
    let target = indexes.find((i) => i.used < i.max_namespaces);
    if (!target) target = { ...(await this.provisionSharedIndex(tx)), used: 0 };
    const [free] = await tx.query<{ slot: number }>(sql.freeSlot, [target.id, target.max_namespaces]);
    const usedAfter = target.used + 1;
    const roomElsewhere = indexes.some((i) => i.id !== target!.id && i.used < i.max_namespaces);
    if (usedAfter >= thresholdCount(target.max_namespaces, this.config.namespaceProvisionThreshold) && !roomElsewhere) {
      await this.provisionSharedIndex(tx);
    }
    return [target.id, free!.slot];
  }

  private async provisionSharedIndex(tx: Queryable): Promise<SharedIndexRow> {
    const [{ n }] = (await tx.query<{ n: number }>(sql.nextSharedNumber)) as [{ n: number }];
    const [index] = await tx.query<IndexSpec>(sql.insertIndex, [`shared-index-${n}`, "shared", this.config.dimension, this.config.metric, this.config.maxNamespacesPerIndex]);
    await this.store.createIndex(tx, index!);
    return { ...index!, max_namespaces: this.config.maxNamespacesPerIndex, used: 0 };
  }

  private async createDedicatedIndex(tx: Queryable, tenantId: string, dimension: number): Promise<number> {
    const [index] = await tx.query<IndexSpec>(sql.insertIndex, [`dedicated-${tenantId}`, "dedicated", dimension, this.config.metric, 1]);
    await this.store.createIndex(tx, index!);
    return index!.id;
  }

  private async load(q: Queryable, tenantId: string): Promise<Tenant | undefined> {
    const [row] = await q.query<TenantRow>(sql.getTenant, [tenantId]);
    return row && this.toTenant(row);
  }

  private toTenant(r: TenantRow): Tenant {
    const dedicated = r.index_kind === "dedicated";
    const placement: Placement = Object.freeze({
      tenantId: r.id,
      indexId: r.index_id,
      index: r.index_name,
      namespace: r.id,
      slot: r.slot,
      isolation: dedicated ? "dedicated-index" : "namespace",
      dimension: r.dimension,
      metric: r.metric,
      annIndexed: r.ann_indexed,
    });
    return Object.freeze({
      tenantId: r.id,
      tenantName: r.name,
      tier: r.tier,
      status: r.status,
      quota: Object.freeze({ ...this.config.tierQuotas[r.tier], ...r.quota_overrides }),
      quotaOverrides: Object.freeze({ ...r.quota_overrides }),
      index: r.index_name,
      namespace: r.id,
      dedicatedIndex: dedicated ? r.index_name : null,
      isolation: placement.isolation,
      dimension: r.dimension,
      metric: r.metric,
      createdAt: new Date(r.created_at),
      updatedAt: new Date(r.updated_at),
      placement,
    });
  }
}
