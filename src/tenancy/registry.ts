import type { BulkheadConfig, Metric, TenantQuota } from "../config.js";
import { QUOTA_MINIMUMS, TenantTier, TIERS } from "../config.js";
import { inTenantContext, type Db, type Queryable } from "../db/db.js";
import { MoveConflictError, PlacementMovedError, TenantAlreadyExistsError, TenantNotFoundError, TenantSuspendedError, ValidationError } from "../errors.js";
import type { IndexSpec, Placement, VectorStore } from "../stores/store.js";
import { describeCapacity, thresholdCount, type IndexCapacity } from "./capacity.js";
import { registrySql as sql } from "./registry-sql.js";
import { assertTenantId, type Tenant, type TenantStatus } from "./tenant.js";
import { TenantCache } from "./tenant-cache.js";
import { changeChannel, type ChangeFeedHandlers } from "./change-feed.js";
import { copyOnline, type MoveOptions, type MovePhase, type PlacementMove } from "./placement-move.js";

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
  placement_epoch: number;
  moving: boolean;
  index_id: number;
  index_name: string;
  index_kind: "shared" | "dedicated";
  dimension: number;
  metric: Metric;
}

interface MoveRow {
  tenant: string;
  to_tier: TenantTier;
  to_slot: number | null;
  phase: MovePhase;
  copy_cursor: string | null;
  copied: number;
  total: number;
  to_ann_indexed: boolean;
  started_at: Date | string;
  updated_at: Date | string;
  to_index_id: number;
  to_index_name: string;
  to_index_kind: "shared" | "dedicated";
}

/** Where to move a tenant: a new tier (to or from enterprise moves it), and/or another shared index (a cell). */
export interface MoveTarget {
  tier?: TenantTier;
  /** Name of the shared index to move to; by default the oldest with room. */
  index?: string;
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
   * Runs a data call on the tenant's placement; if a move changed it meanwhile (the store's epoch
   * check refused, nothing was done), reloads the tenant and runs the call again on the new one.
   */
  async withPlacement<T>(tenant: Tenant, fn: (tenant: Tenant) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(tenant);
      } catch (err) {
        if (!(err instanceof PlacementMovedError) || attempt === 3) throw err;
        this.forget(tenant.tenantId);
        tenant = await this.getTenant(tenant.tenantId);
      }
    }
  }

  /**
   * Changes a tenant's tier. Between free and pro only the quota changes. To or from enterprise the
   * tenant moves online between a shared namespace and a dedicated index (see `moveTenant`): it
   * keeps reading and writing throughout, and the call resolves once the placement has switched.
   */
  async changeTier(tenantId: string, tier: TenantTier, options: MoveOptions = {}): Promise<Tenant> {
    assertTenantId(tenantId);
    assertTier(tier);
    const current = await this.getTenant(tenantId);
    if (isDedicatedTier(current.tier) !== isDedicatedTier(tier)) return this.moveTenant(tenantId, { tier }, options);
    await this.update(tenantId, sql.setTier, [tenantId, tier]);
    return this.getTenant(tenantId);
  }

  /**
   * Moves a tenant's vectors to another place while it keeps working: from a shared namespace to a
   * dedicated index or back (with `tier`), or to another shared index (`index`: rebalancing cells).
   * 1. begin — in one transaction that waits for the tenant's operations in flight: the target is
   *    created and its slot reserved, and the placement epoch bumped, so from then on every write
   *    also logs the ids it touches;
   * 2. copy, index and catch up online (`copyOnline`), recording progress after every step;
   * 3. switch — in one transaction holding the tenant's placement lock (its operations wait
   *    milliseconds): the last logged changes are applied, both sides counted (must be equal),
   *    the placement switched and the old namespace or index dropped, its slot free for reuse.
   * Reads use the old placement until the switch and the new one after; an instance with a stale
   * placement is refused by the epoch check and reloads. A crashed or aborted move stays recorded:
   * `resumeMove` continues it, `rollbackMove` discards the copy.
   */
  async moveTenant(tenantId: string, target: MoveTarget, options: MoveOptions = {}): Promise<Tenant> {
    assertTenantId(tenantId);
    if (target.tier !== undefined) assertTier(target.tier);
    if (target.index !== undefined && (typeof target.index !== "string" || target.index.length === 0)) throw new ValidationError("index", "must be the name of a shared index");
    await this.db.transaction(async (tx) => {
      const current = await this.lockForPlacementChange(tx, tenantId);
      if (current.placement.moving) throw new MoveConflictError(tenantId, `tenant "${tenantId}" is already being moved; resume or roll back that move first`);
      const tier = target.tier ?? current.tier;
      const [indexId, slot] = await this.placeMoveTarget(tx, current, tier, target.index);
      // The tenant's document counter (kept by every write) sizes the progress bar.
      const [counted] = await inTenantContext(tx, tenantId, () => tx.query<{ documents: string }>("SELECT documents FROM document_counts WHERE tenant_id = $1", [tenantId]));
      await tx.query(sql.insertMove, [tenantId, tier, indexId, slot, Number(counted?.documents ?? 0)]);
      const to = this.moveTargetPlacement(current, { to_index_id: indexId, to_slot: slot, to_ann_indexed: false });
      await this.store.createNamespace(tx, to);
      await tx.query(sql.bumpEpoch, [tenantId]);
      await this.announce(tx, tenantId);
    });
    this.forget(tenantId);
    return this.resumeMove(tenantId, options);
  }

  /** Continues a recorded move from its last checkpoint to the switch. */
  async resumeMove(tenantId: string, options: MoveOptions = {}): Promise<Tenant> {
    assertTenantId(tenantId);
    const from = await this.getTenant(tenantId);
    const row = await this.loadMove(tenantId);
    const to = this.moveTargetPlacement(from, row);
    const { targetIndexed } = await copyOnline(
      this.store,
      from.placement,
      to,
      { phase: row.phase, cursor: row.copy_cursor, copied: row.copied, targetIndexed: row.to_ann_indexed, total: row.total },
      {
        annIndexThreshold: this.config.annIndexThreshold,
        save: async (c) => void (await this.db.query(sql.saveMove, [tenantId, c.phase, c.cursor, c.copied, c.targetIndexed])),
      },
      options,
    );
    await this.db.transaction(async (tx) => {
      const current = await this.lockForPlacementChange(tx, tenantId);
      if (current.placement.epoch !== from.placement.epoch) throw new MoveConflictError(tenantId, `tenant "${tenantId}" changed while it was being moved (rolled back or deleted elsewhere)`);
      const counts = await this.store.finishCopy(tx, current.placement, to);
      if (counts.from !== counts.to) {
        throw new MoveConflictError(tenantId, `move of "${tenantId}" not switched: ${counts.from} vectors in the current placement but ${counts.to} copied; resume or roll it back`);
      }
      await tx.query(sql.movePlacement, [tenantId, row.to_tier, row.to_index_id, row.to_slot, targetIndexed]);
      await tx.query(sql.deleteMove, [tenantId]);
      await this.store.dropStorage(tx, current.placement);
      if (current.dedicatedIndex) await tx.query(sql.deleteIndex, [current.placement.indexId]);
      await this.announce(tx, tenantId);
    });
    this.forget(tenantId);
    const moved = await this.getTenant(tenantId);
    options.onProgress?.({ tenantId, phase: "switched", copied: row.total, total: row.total, caughtUp: 0 });
    await this.ensureAnnIndex(moved);
    return this.getTenant(tenantId);
  }

  /** Discards a recorded move: the copy and its change log are dropped, the tenant stays where it is. */
  async rollbackMove(tenantId: string): Promise<Tenant> {
    assertTenantId(tenantId);
    await this.db.transaction(async (tx) => {
      const current = await this.lockForPlacementChange(tx, tenantId);
      const row = await this.loadMove(tenantId, tx);
      await this.dropMoveTarget(tx, current, row);
      await tx.query(sql.bumpEpoch, [tenantId]);
      await this.announce(tx, tenantId);
    });
    this.forget(tenantId);
    return this.getTenant(tenantId);
  }

  /** The tenant's move in progress, or null. */
  async getMove(tenantId: string): Promise<PlacementMove | null> {
    assertTenantId(tenantId);
    const [row] = await this.db.query<MoveRow>(sql.getMove, [tenantId]);
    return row ? toMove(row) : null;
  }

  /** Every move in progress (an interrupted one stays listed until resumed or rolled back). */
  async listMoves(): Promise<PlacementMove[]> {
    return (await this.db.query<MoveRow>(sql.listMoves)).map(toMove);
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
      const tenant = await this.lockForPlacementChange(tx, tenantId);
      if (tenant.placement.moving) await this.dropMoveTarget(tx, tenant, await this.loadMove(tenantId, tx));
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
    try {
      if ((knownCount ?? (await this.store.count(tenant.placement))) < minimumVectors) return false;
      await this.store.buildAnnIndex(tenant.placement);
    } catch (err) {
      if (err instanceof PlacementMovedError) return false; // the move builds its target's index itself
      throw err;
    }
    await this.db.transaction(async (tx) => {
      if ((await tx.query(sql.markAnnIndexed, [tenant.tenantId, tenant.placement.epoch])).length > 0) await this.announce(tx, tenant.tenantId);
    });
    this.forget(tenant.tenantId);
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

  /**
   * Picks the oldest shared index with room (or the one named) and its lowest free slot; provisions
   * ahead of need.
   */
  private async claimNamespace(tx: Queryable, indexName?: string): Promise<[number, number]> {
    const indexes = await tx.query<SharedIndexRow>(sql.sharedIndexes, [this.config.dimension]);
    let target = indexes.find((i) => (indexName === undefined ? i.used < i.max_namespaces : i.name === indexName));
    if (indexName !== undefined) {
      if (!target) throw new ValidationError("index", `no shared index named ${JSON.stringify(indexName)} holds dimension ${this.config.dimension} (see capacity)`);
      if (target.used >= target.max_namespaces) throw new ValidationError("index", `${indexName} is full (${target.used} of ${target.max_namespaces} namespaces)`);
    }
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

  /** Claims the place a move goes to: a dedicated index (enterprise) or a namespace in a shared index. */
  private async placeMoveTarget(tx: Queryable, current: Tenant, tier: TenantTier, indexName: string | undefined): Promise<[number, number | null]> {
    if (isDedicatedTier(tier)) {
      if (indexName !== undefined) throw new ValidationError("index", "an enterprise tenant gets a dedicated index; a shared index cannot be chosen");
      if (current.dedicatedIndex) throw new ValidationError("tier", `tenant "${current.tenantId}" already has a dedicated index`);
      return [await this.createDedicatedIndex(tx, current.tenantId, current.dimension), null];
    }
    if (current.dimension !== this.config.dimension) {
      throw new ValidationError("tier", `the tenant's vectors have dimension ${current.dimension}; shared indexes hold ${this.config.dimension}`);
    }
    if (indexName === current.index) throw new ValidationError("index", `tenant "${current.tenantId}" is already in ${indexName}`);
    if (indexName === undefined && !current.dedicatedIndex) throw new ValidationError("index", "name the shared index to move to (or change the tier to enterprise)");
    return this.claimNamespace(tx, indexName);
  }

  /**
   * Takes the placement lock (no concurrent placement decisions) and the tenant's placement lock
   * exclusively (waits for its operations in flight, holds new ones), then reads the tenant.
   * Throws `TenantNotFoundError`.
   */
  private async lockForPlacementChange(tx: Queryable, tenantId: string): Promise<Tenant> {
    await tx.query(sql.lockPlacement);
    await tx.query(sql.lockTenantPlacement, [tenantId, this.db.schema]);
    const tenant = await this.load(tx, tenantId);
    if (!tenant) throw new TenantNotFoundError(tenantId);
    return tenant;
  }

  /** Drops what a move created (its target namespace or index and the change log) and forgets the move. */
  private async dropMoveTarget(tx: Queryable, current: Tenant, row: MoveRow): Promise<void> {
    await inTenantContext(tx, current.tenantId, () => tx.query("DELETE FROM move_changes WHERE tenant_id = $1", [current.tenantId]));
    await tx.query(sql.deleteMove, [current.tenantId]);
    await this.store.dropStorage(tx, this.moveTargetPlacement(current, row));
    if (row.to_index_kind === "dedicated") await tx.query(sql.deleteIndex, [row.to_index_id]);
  }

  private async loadMove(tenantId: string, q: Queryable = this.db): Promise<MoveRow> {
    const [row] = await q.query<MoveRow>(sql.getMove, [tenantId]);
    if (!row) throw new MoveConflictError(tenantId, `tenant "${tenantId}" has no move in progress`);
    return row;
  }

  /** The placement a move fills: the target index and slot, under the tenant's current epoch. */
  private moveTargetPlacement(current: Tenant, row: Pick<MoveRow, "to_index_id" | "to_slot" | "to_ann_indexed"> & { to_index_name?: string }): Placement {
    return Object.freeze({
      ...current.placement,
      indexId: row.to_index_id,
      index: row.to_index_name ?? "",
      slot: row.to_slot,
      isolation: row.to_slot === null ? "dedicated-index" : "namespace",
      annIndexed: row.to_ann_indexed,
      moving: false,
    });
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
      epoch: r.placement_epoch,
      moving: r.moving,
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

function toMove(r: MoveRow): PlacementMove {
  return {
    tenantId: r.tenant,
    toTier: r.to_tier,
    toIndex: r.to_index_name,
    toSlot: r.to_slot,
    phase: r.phase,
    copied: r.copied,
    total: r.total,
    startedAt: new Date(r.started_at),
    updatedAt: new Date(r.updated_at),
  };
}
