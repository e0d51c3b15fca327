import type { BulkheadConfig, Metric, TenantQuota } from "../config.js";
import { HOME_STORE, QUOTA_MAXIMUM, QUOTA_MINIMUMS, TenantTier, TIERS } from "../config.js";
import type { Db, Queryable } from "../db/db.js";
import { MoveConflictError, PlacementMovedError, shown, TenantAlreadyExistsError, TenantNotFoundError, TenantSuspendedError, ValidationError } from "../errors.js";
import { assertStorableText } from "../storable-text.js";
import { isolationOf, type IndexKind, type Placement, type ReconcileReport } from "../stores/store.js";
import type { StoreRouter } from "../stores/store-router.js";
import { describeCapacity, type IndexCapacity } from "./capacity.js";
import { SlotAllocation, type SharedIndexRow } from "./slot-allocation.js";
import { registrySql as sql } from "./registry-sql.js";
import { describeError } from "../monitoring/safe-error.js";
import { assertTenantId, isDedicatedTier, storeOfTier, tierChangeMoves, type Tenant, type TenantStatus } from "./tenant.js";
import { TenantCache } from "./tenant-cache.js";
import { changeChannel, type ChangeFeedHandlers } from "./change-feed.js";
import type { MoveOptions, PlacementMove } from "./placement-move.js";
import { cellsOf, MoveCoordinator, type MoveTarget } from "./move-coordinator.js";
import { StoreReconciliation } from "./store-reconciliation.js";

export type { MoveTarget };
import { isProbeTenant, PROBE_TENANT_PREFIX } from "./probe-tenants.js";

interface TenantRow {
  id: string;
  name: string;
  tier: TenantTier;
  status: TenantStatus;
  quota_overrides: Partial<TenantQuota>;
  slot: number | null;
  ann_indexed: boolean;
  ef_search: number | null;
  created_at: Date | string;
  updated_at: Date | string;
  placement_epoch: number;
  moving: boolean;
  move_write_limit: number | null;
  index_id: number;
  index_name: string;
  index_kind: IndexKind;
  index_store: string;
  dimension: number;
  metric: Metric;
}



/** A pool of small tenants and how many it holds. */
export interface PoolUsage {
  index: string;
  store: string;
  tenants: number;
}

/** Options for `registerTenant`. */
export interface RegisterOptions {
  /** Per-tenant quota overrides on top of the tier's defaults. */
  quota?: Partial<TenantQuota>;
  /** Vector dimension of an enterprise tenant's dedicated index (shared indexes use the configured one). */
  dimension?: number;
  /** Store (cell) to place the tenant in: "home" (default) or a configured cell. */
  store?: string;
  /** Internal: a readiness probe tenant (`bh-probe-…`), the only ones allowed that reserved, never-billed prefix. */
  probe?: boolean;
}

/** Registry settings taken from the configuration. */
export type RegistryConfig = Pick<
  BulkheadConfig,
  "dimension" | "metric" | "maxNamespacesPerIndex" | "namespaceAlertThreshold" | "namespaceProvisionThreshold" | "tierQuotas" | "annIndexThreshold" | "tierStores" | "smallTenants"
>;

export { tierChangeMoves };

function assertTier(tier: unknown): asserts tier is TenantTier {
  if (!TIERS.includes(tier as TenantTier)) throw new ValidationError("tier", `must be one of ${TIERS.join(", ")}, got ${JSON.stringify(tier)}`);
}

function assertQuota(quota: unknown): asserts quota is Partial<TenantQuota> {
  if (quota === undefined) return;
  if (typeof quota !== "object" || quota === null || Array.isArray(quota)) throw new ValidationError("quota", "must be an object");
  for (const [key, value] of Object.entries(quota)) {
    const minimum = QUOTA_MINIMUMS[key as keyof TenantQuota];
    if (minimum === undefined) throw new ValidationError(`quota.${key}`, `unknown quota (known: ${Object.keys(QUOTA_MINIMUMS).join(", ")})`);
    if (!Number.isSafeInteger(value) || (value as number) < minimum || (value as number) > QUOTA_MAXIMUM) {
      throw new ValidationError(`quota.${key}`, `must be a whole number from ${minimum} to ${QUOTA_MAXIMUM}, got ${shown(value)}`);
    }
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
  private readonly slots: SlotAllocation;
  private readonly reconciliation: StoreReconciliation;
  private readonly moves: MoveCoordinator;

  constructor(
    private readonly db: Db,
    private readonly store: StoreRouter,
    private readonly config: RegistryConfig,
    cacheTtlMs = 300_000,
    private readonly warn: (message: string) => void = (m) => console.warn(m),
  ) {
    this.cache = new TenantCache<Tenant>(cacheTtlMs);
    this.channel = changeChannel(db.schema);
    this.slots = new SlotAllocation(store, config);
    this.reconciliation = new StoreReconciliation(db, store);
    this.moves = new MoveCoordinator(db, store, config, this.slots, this.reconciliation, {
      getTenant: (id) => this.getTenant(id),
      lockForPlacementChange: (tx, id) => this.lockForPlacementChange(tx, id),
      announce: (tx, id) => this.announce(tx, id),
      forget: (id) => this.forget(id),
      ensureAnnIndex: (t) => this.ensureAnnIndex(t),
      assertTier,
      warn: (m) => this.warn(m),
    });
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
    if (isProbeTenant(tenantId) && !options.probe) throw new ValidationError("tenantId", `the "${PROBE_TENANT_PREFIX}" prefix is reserved for the readiness checks' own tenants (never billed)`);
    if (typeof tenantName !== "string" || tenantName.trim().length === 0 || tenantName.length > 200) {
      throw new ValidationError("tenantName", "must be a non-empty string of at most 200 characters");
    }
    assertStorableText(tenantName, "tenantName");
    assertTier(tier);
    assertQuota(options.quota);
    const dimension = options.dimension ?? this.config.dimension;
    if (!Number.isInteger(dimension) || dimension < 1 || dimension > 16_000) throw new ValidationError("dimension", "must be a whole number from 1 to 16000");
    if (options.dimension !== undefined && options.dimension !== this.config.dimension && !isDedicatedTier(tier)) {
      throw new ValidationError("dimension", `shared indexes use dimension ${this.config.dimension}; only enterprise tenants may choose another`);
    }
    const store = options.store ?? storeOfTier(this.config.tierStores, tier) ?? HOME_STORE;
    this.store.assertStore(store);
    // Pools are at home only: a cell's reconciliation drops storage by relation, and a pool's table is shared.
    const pooled = !isDedicatedTier(tier) && store === HOME_STORE && this.placesSmallTenantsInPools;
    const created = await this.db.transaction(async (tx) => {
      // A place in a pool is not counted against a capacity: no placement decision to serialise
      // (the lock made registrations queue behind each other), and two registrations of one id
      // meet at the tenants table's primary key.
      if (!pooled) await tx.query(sql.lockPlacement);
      if ((await tx.query(sql.tenantExists, [tenantId])).length > 0) throw new TenantAlreadyExistsError(tenantId);
      const [indexId, slot] = pooled
        ? [await this.slots.claimPool(tx, store), null]
        : isDedicatedTier(tier)
          ? [await this.slots.createDedicatedIndex(tx, tenantId, dimension, store), null]
          : await this.slots.claimNamespace(tx, store);
      await tx.query(sql.insertTenant, [tenantId, tenantName.trim(), tier, JSON.stringify(options.quota ?? {}), indexId, slot]).catch((err: { code?: string; constraint?: string }) => {
        throw err.code === "23505" && err.constraint === "tenants_pkey" ? new TenantAlreadyExistsError(tenantId) : err;
      });
      const tenant = await this.load(tx, tenantId);
      await this.store.createNamespace(tx, tenant!.placement);
      await this.announce(tx, tenantId); // another instance may have cached "no such tenant"
      return tenant!;
    });
    this.forget(tenantId);
    if (this.store.isCell(store)) await this.reconcileCells([store]); // the cell's mirror of the tenant, which fences its data there
    // As committed: no read after the commit that could fail a registration that happened.
    return created;
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
        // Refused twice: a cell's fence may disagree with the catalogue (a crash between the two
        // commits of a move between stores); reconciling the cells repairs it, then try once more.
        if (attempt === 2) await this.reconcileCells();
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
    if (this.tierChangeMoves(current, tier)) return this.moveTenant(tenantId, { tier }, options);
    await this.update(tenantId, sql.setTier, [tenantId, tier]);
    return this.getTenant(tenantId);
  }

  /**
   * Whether changing the tenant to `tier` moves its vectors: the placement kind changes (to or from
   * a dedicated index), or the new tier lives in another store (`BULKHEAD_TIER_STORES`).
   */
  tierChangeMoves(tenant: Tenant, tier: TenantTier): boolean {
    const store = storeOfTier(this.config.tierStores, tier);
    return tierChangeMoves(tenant.tier, tier) || (store !== undefined && store !== tenant.store);
  }

  /**
   * Moves a tenant's vectors to another place while it keeps working: from a shared namespace to a
   * dedicated index or back (with `tier`), to another shared index (`index`), or to another store
   * (`store`: a cell — another database; the catalogue, keys and usage stay at home).
   * 1. begin — in one transaction that waits for the tenant's operations in flight: the target is
   *    created and its slot reserved, and the placement epoch bumped, so from then on every write
   *    also logs the ids it touches;
   * 2. copy, index and catch up online (`copyOnline`), recording progress after every step;
   * 3. switch — in one transaction holding the tenant's placement lock (its operations wait
   *    milliseconds): the last logged changes are applied, both sides counted (must be equal),
   *    the placement switched and the old namespace or index dropped, its slot free for reuse.
   * Between two stores the switch spans both databases: the source's own placement lock holds the
   * tenant there while the last changes are copied and the source is fenced off, then the catalogue
   * switches; the cells are reconciled with the catalogue afterwards (and whenever a data call is
   * refused twice), which also repairs a crash between those commits.
   * Reads use the old placement until the switch and the new one after; an instance with a stale
   * placement is refused by the epoch check and reloads. A crashed or aborted move stays recorded:
   * `resumeMove` continues it, `rollbackMove` discards the copy.
   */
  async moveTenant(tenantId: string, target: MoveTarget, options: MoveOptions = {}): Promise<Tenant> {
    await this.beginMove(tenantId, target);
    return this.resumeMove(tenantId, options);
  }

  /**
   * The first step of `moveTenant` alone: the target claimed and the move recorded, ready for
   * `resumeMove` (which the service runs in the background, see `BackgroundMoves`).
   */
  beginMove(tenantId: string, target: MoveTarget): Promise<PlacementMove> {
    return this.moves.beginMove(tenantId, target);
  }

  /** Continues a recorded move from its last checkpoint to the switch. */
  resumeMove(tenantId: string, options: MoveOptions = {}): Promise<Tenant> {
    return this.moves.resumeMove(tenantId, options);
  }

  /** Discards a recorded move: the copy and its change log are dropped, the tenant stays where it is. */
  rollbackMove(tenantId: string): Promise<Tenant> {
    return this.moves.rollbackMove(tenantId);
  }

  /**
   * Limits how many vectors per second a tenant being moved may write (upserts and deletes) until
   * its move switches or is rolled back; `null` lifts the limit. The move sets one itself when the
   * tenant writes faster than it can catch up; an operator can set or lift it. Writes over it are
   * refused with `RateLimitedError` (HTTP 429 with Retry-After), like any rate limit.
   */
  limitMoveWrites(tenantId: string, vectorsPerSecond: number | null): Promise<Tenant> {
    return this.moves.limitMoveWrites(tenantId, vectorsPerSecond);
  }

  /** The tenant's move in progress, or null. */
  getMove(tenantId: string): Promise<PlacementMove | null> {
    return this.moves.getMove(tenantId);
  }

  /** Every move in progress (an interrupted one stays listed until resumed or rolled back). */
  listMoves(): Promise<PlacementMove[]> {
    return this.moves.listMoves();
  }

  /**
   * Makes every cell and remote store (or those named) agree with the catalogue: fences at the
   * current epochs, mirrors of exactly the tenants placed or moving there, and nothing else left in
   * them. Called after every placement change that touches one, when a data call is refused twice, and at start-up.
   */
  reconcileCells(names?: readonly string[]): Promise<Record<string, ReconcileReport>> {
    return this.reconciliation.reconcile(names);
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

  /**
   * Sets how wide the ANN search of the tenant's namespace is (HNSW `ef_search`, 1 to 1,000; null:
   * the store's default). The recall monitor raises it when a namespace's measured recall is low.
   */
  async setEfSearch(tenantId: string, efSearch: number | null): Promise<Tenant> {
    assertTenantId(tenantId);
    if (efSearch !== null && (!Number.isInteger(efSearch) || efSearch < 1 || efSearch > 1000)) throw new ValidationError("efSearch", `must be a whole number from 1 to 1000, got ${shown(efSearch)}`);
    await this.update(tenantId, sql.setEfSearch, [tenantId, efSearch]);
    return this.getTenant(tenantId);
  }

  /** Deletes the tenant, its vectors and its namespace or dedicated index; the namespace slot is freed. */
  async deleteTenant(tenantId: string): Promise<void> {
    assertTenantId(tenantId);
    const [stores, left] = await this.db.transaction(async (tx) => {
      const tenant = await this.lockForPlacementChange(tx, tenantId);
      const move = tenant.placement.moving ? await this.moves.loadMove(tenantId, tx) : undefined;
      const target = move ? await this.moves.dropMoveTarget(tx, tenant, move) : undefined;
      if (tenant.placement.store === HOME_STORE) await this.store.dropStorage(tx, tenant.placement);
      await tx.query(sql.deleteTenant, [tenantId]);
      if (tenant.dedicatedIndex) await tx.query(sql.deleteIndex, [tenant.placement.indexId]);
      await this.announce(tx, tenantId);
      return [cellsOf(tenant.placement, { store: move?.to_store ?? HOME_STORE }), [tenant.placement, ...(target ? [target] : [])]] as const;
    });
    this.forget(tenantId);
    // Its vectors in a remote store, and its vectors, counters and mirror in a cell. The deletion has
    // committed: a failure here is logged, and erasure's proof reports what is left.
    await this.moves.cleanUp(tenantId, stores, left);
  }


  /** Namespaces in use per shared index, e.g. `{ "shared-index-1": 2 }`. */
  async getNamespaceUsage(): Promise<Record<string, number>> {
    const rows = await this.db.query<SharedIndexRow>(sql.sharedIndexes, [null, null]);
    return Object.fromEntries(rows.map((r) => [r.name, r.used]));
  }

  /** Whether new free and pro tenants of the home store start in a pool (`BULKHEAD_SMALL_TENANTS=pool` and a store that has pools). */
  get placesSmallTenantsInPools(): boolean {
    return this.config.smallTenants === "pool" && this.store.capabilitiesOf(HOME_STORE).pools;
  }

  /** Every pool of small tenants (`BULKHEAD_SMALL_TENANTS=pool`) and how many tenants it holds: a pool has no namespace limit. */
  async getPools(): Promise<PoolUsage[]> {
    return this.db.query<PoolUsage>(sql.pools);
  }

  /** Live capacity of every shared index. */
  async getCapacity(): Promise<IndexCapacity[]> {
    const rows = await this.db.query<SharedIndexRow>(sql.sharedIndexes, [null, null]);
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
      if (tenant.placement.isolation === "pooled") return await this.leavePool(tenant);
      if (!(await this.store.buildAnnIndex(tenant.placement))) return false; // being built elsewhere, or failed (logged): the next write retries
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

  /**
   * A pooled tenant that outgrew exact search moves online to a namespace of a shared index (the
   * move builds its HNSW index before switching). Runs in the call that crossed the threshold, as a
   * build does; a failed move is rolled back and logged, and the tenant's next write tries again.
   */
  private async leavePool(tenant: Tenant): Promise<boolean> {
    if (tenant.placement.moving) return false; // a move is under way (this one, elsewhere, or an operator's)
    try {
      await this.beginMove(tenant.tenantId, {});
    } catch (err) {
      if (err instanceof MoveConflictError || err instanceof TenantNotFoundError) return false; // begun elsewhere, or gone
      throw err;
    }
    try {
      await this.resumeMove(tenant.tenantId);
      return true;
    } catch (err) {
      this.warn(`bulkhead: moving tenant ${tenant.tenantId} out of its pool failed; rolled back, its next write tries again: ${describeError(err)}`);
      await this.rollbackMove(tenant.tenantId).catch(() => undefined);
      return false;
    }
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




  private async load(q: Queryable, tenantId: string): Promise<Tenant | undefined> {
    const [row] = await q.query<TenantRow>(sql.getTenant, [tenantId]);
    return row && this.toTenant(row);
  }

  private toTenant(r: TenantRow): Tenant {
    const dedicated = r.index_kind === "dedicated";
    const placement: Placement = Object.freeze({
      tenantId: r.id,
      store: r.index_store,
      indexId: r.index_id,
      index: r.index_name,
      namespace: r.id,
      slot: r.slot,
      isolation: isolationOf(r.index_kind),
      dimension: r.dimension,
      metric: r.metric,
      annIndexed: r.ann_indexed,
      efSearch: r.ef_search,
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
      moveWriteLimit: r.move_write_limit,
      store: r.index_store,
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



