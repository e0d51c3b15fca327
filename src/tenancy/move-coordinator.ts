import { HOME_STORE, type BulkheadConfig, type TenantTier } from "../config.js";
import type { Db, Queryable, Transaction } from "../db/db.js";
import { MoveConflictError, MoveNotFoundError, ValidationError } from "../errors.js";
import type { Placement } from "../stores/store.js";
import type { StoreRouter } from "../stores/store-router.js";
import { copyOnline, type MoveOptions, type MovePhase, type PlacementMove } from "./placement-move.js";
import { catalogueSql } from "../stores/catalogue-sql.js";
import { registrySql as sql } from "./registry-sql.js";
import type { SlotAllocation } from "./slot-allocation.js";
import type { StoreReconciliation } from "./store-reconciliation.js";
import { describeError } from "../monitoring/safe-error.js";
import { assertTenantId, isDedicatedTier, storeOfTier, type Tenant } from "./tenant.js";

export interface MoveRow {
  tenant: string;
  to_tier: TenantTier;
  to_slot: number | null;
  phase: MovePhase;
  copy_cursor: string | null;
  copied: number;
  total: number;
  to_ann_indexed: boolean;
  write_limit: number | null;
  started_at: Date | string;
  updated_at: Date | string;
  to_index_id: number;
  to_index_name: string;
  to_index_kind: "shared" | "dedicated";
  to_store: string;
}

/** Where to move a tenant: a new tier (to or from enterprise moves it), another shared index, and/or another store (cell). */
export interface MoveTarget {
  tier?: TenantTier;
  /** Name of the shared index to move to; by default the oldest with room (in the target store). */
  index?: string;
  /** Store to move to: "home" or a configured cell; by default the named index's, else the tenant's current one. */
  store?: string;
}

/** What the move coordinator needs of the registry: tenants read and locked, changes announced. */
export interface RegistryHost {
  getTenant(tenantId: string): Promise<Tenant>;
  /** The placement lock and the tenant's placement lock exclusively, then the tenant (see the registry). */
  lockForPlacementChange(tx: Queryable, tenantId: string): Promise<Tenant>;
  /** NOTIFY in the changing transaction. */
  announce(tx: Queryable, tenantId: string): Promise<void>;
  /** Drops cached state of the tenant after a commit. */
  forget(tenantId: string): void;
  ensureAnnIndex(tenant: Tenant): Promise<boolean>;
  assertTier(tier: unknown): asserts tier is TenantTier;
  /** Where failures after a commit are logged (they are not thrown: the change happened). */
  warn(message: string): void;
}


/**
 * Online moves of a tenant's vectors (see `TenantRegistry.moveTenant`): the target claimed and the
 * move recorded (begin), copied while the tenant works (`copyOnline`), switched under the tenant's
 * placement lock — within a store, or across two stores' fences — or rolled back. Every step is
 * recorded, so a crashed move resumes.
 */
export class MoveCoordinator {
  constructor(
    private readonly db: Db,
    private readonly store: StoreRouter,
    private readonly config: Pick<BulkheadConfig, "dimension" | "annIndexThreshold" | "tierStores">,
    private readonly slots: SlotAllocation,
    private readonly reconciliation: StoreReconciliation,
    private readonly host: RegistryHost,
  ) {}

  /**
   * The first step of `moveTenant` alone: the target claimed and the move recorded, ready for
   * `resumeMove` (which the service runs in the background, see `BackgroundMoves`).
   */
  async beginMove(tenantId: string, target: MoveTarget): Promise<PlacementMove> {
    assertTenantId(tenantId);
    if (target.tier !== undefined) this.host.assertTier(target.tier);
    if (target.index !== undefined && (typeof target.index !== "string" || target.index.length === 0)) throw new ValidationError("index", "must be the name of a shared index");
    if (target.store !== undefined) this.store.assertStore(target.store);
    // Sizes the progress bar; read before the placement lock, which holds the tenant's data calls.
    const total = await this.store.count((await this.host.getTenant(tenantId)).placement).catch(() => 0);
    await this.db.transaction(async (tx) => {
      const current = await this.host.lockForPlacementChange(tx, tenantId);
      if (current.placement.moving) throw new MoveConflictError(tenantId, `tenant "${tenantId}" is already being moved; resume or roll back that move first`);
      const tier = target.tier ?? current.tier;
      const [indexId, slot, store] = await this.placeMoveTarget(tx, current, tier, target);
      await tx.query(sql.insertMove, [tenantId, tier, indexId, slot, total]);
      const to = this.moveTargetPlacement(current, { to_index_id: indexId, to_slot: slot, to_ann_indexed: false, to_store: store });
      await this.store.createNamespace(tx, to);
      await tx.query(sql.bumpEpoch, [tenantId]);
      await this.host.announce(tx, tenantId);
    });
    this.host.forget(tenantId);
    return toMove(await this.loadMove(tenantId));
  }

  /** Continues a recorded move from its last checkpoint to the switch. */
  async resumeMove(tenantId: string, options: MoveOptions = {}): Promise<Tenant> {
    assertTenantId(tenantId);
    const from = await this.host.getTenant(tenantId);
    const row = await this.loadMove(tenantId);
    const to = this.moveTargetPlacement(from, row);
    // Cells fenced at the move's epoch (source) and holding the target's mirror before any copy.
    await this.reconciliation.reconcile(cellsOf(from.placement, to));
    const { targetIndexed } = await copyOnline(
      this.store,
      from.placement,
      to,
      { phase: row.phase, cursor: row.copy_cursor, copied: row.copied, targetIndexed: row.to_ann_indexed, total: row.total },
      {
        annIndexThreshold: this.config.annIndexThreshold,
        save: async (c) => void (await this.db.query(sql.saveMove, [tenantId, c.phase, c.cursor, c.copied, c.targetIndexed])),
        limitWrites: async (vectorsPerSecond) => void (await this.limitMoveWrites(tenantId, vectorsPerSecond)),
      },
      options,
    );
    const left = await this.db.transaction(async (tx) => {
      const current = await this.host.lockForPlacementChange(tx, tenantId);
      if (current.placement.epoch !== from.placement.epoch) throw new MoveConflictError(tenantId, `tenant "${tenantId}" changed while it was being moved (rolled back or deleted elsewhere)`);
      const src = current.placement;
      const counts = this.store.fencedAtHome(src.store) ? await this.finishSwitch(tx, tx, src, to) : await this.store.cell(src.store).hold(tenantId, (held) => this.finishSwitch(held, tx, src, to));
      if (counts.from !== counts.to) {
        throw new MoveConflictError(tenantId, `move of "${tenantId}" not switched: ${counts.from} vectors in the current placement but ${counts.to} copied; resume or roll it back`);
      }
      await tx.query(sql.movePlacement, [tenantId, row.to_tier, row.to_index_id, row.to_slot, targetIndexed]);
      await tx.query(sql.deleteMove, [tenantId]);
      if (src.store === HOME_STORE) await this.store.dropStorage(tx, src);
      if (this.store.fencedAtHome(src.store) && !this.store.fencedAtHome(to.store)) {
        await tx.inTenant(tenantId, async () => {
          for (const statement of sql.clearHomeCounters) await tx.query(statement, [tenantId]);
        });
      }
      // Leaving a store outside PostgreSQL: the catalogue's record of the tenant's ids there goes too.
      if (this.store.isRemote(src.store) && !this.store.isRemote(to.store)) await tx.inTenant(tenantId, () => tx.query(catalogueSql.forgetAllIds, [tenantId]));
      if (current.dedicatedIndex) await tx.query(sql.deleteIndex, [src.indexId]);
      await this.host.announce(tx, tenantId);
      return src;
    });
    this.host.forget(tenantId);
    await this.cleanUp(tenantId, cellsOf(from.placement, to), [left]); // what the tenant left in a cell or a remote store
    const moved = await this.host.getTenant(tenantId);
    options.onProgress?.({ tenantId, phase: "switched", copied: row.total, total: row.total, caughtUp: 0 });
    await this.host.ensureAnnIndex(moved);
    return this.host.getTenant(tenantId);
  }

  /** Discards a recorded move: the copy and its change log are dropped, the tenant stays where it is. */
  async rollbackMove(tenantId: string): Promise<Tenant> {
    assertTenantId(tenantId);
    const [cells, target] = await this.db.transaction(async (tx) => {
      const current = await this.host.lockForPlacementChange(tx, tenantId);
      const row = await this.loadMove(tenantId, tx);
      const target = await this.dropMoveTarget(tx, current, row);
      await tx.query(sql.bumpEpoch, [tenantId]);
      await this.host.announce(tx, tenantId);
      return [cellsOf(current.placement, { store: row.to_store }), target] as const;
    });
    this.host.forget(tenantId);
    await this.cleanUp(tenantId, cells, [target]); // the source fenced at the new epoch, the target's copy dropped
    return this.host.getTenant(tenantId);
  }

  /**
   * Limits how many vectors per second a tenant being moved may write (upserts and deletes) until
   * its move switches or is rolled back; `null` lifts the limit. The move sets one itself when the
   * tenant writes faster than it can catch up; an operator can set or lift it. Writes over it are
   * refused with `RateLimitedError` (HTTP 429 with Retry-After), like any rate limit.
   */
  async limitMoveWrites(tenantId: string, vectorsPerSecond: number | null): Promise<Tenant> {
    assertTenantId(tenantId);
    if (vectorsPerSecond !== null && (!Number.isSafeInteger(vectorsPerSecond) || vectorsPerSecond < 1)) {
      throw new ValidationError("vectorsPerSecond", `must be a whole number >= 1 (or null to lift the limit), got ${JSON.stringify(vectorsPerSecond)}`);
    }
    await this.db.transaction(async (tx) => {
      if ((await tx.query(sql.setMoveWriteLimit, [tenantId, vectorsPerSecond])).length === 0) {
        throw new MoveNotFoundError(tenantId);
      }
      await this.host.announce(tx, tenantId);
    });
    this.host.forget(tenantId);
    return this.host.getTenant(tenantId);
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

  /**
   * Claims the place a move goes to: a dedicated index (enterprise) or a namespace in a shared
   * index, in the store asked for (else the named index's, else the tenant's current one); never a pool.
   */
  private async placeMoveTarget(tx: Queryable, current: Tenant, tier: TenantTier, target: MoveTarget): Promise<[number, number | null, string]> {
    const named = target.index === undefined ? undefined : (await tx.query<{ store: string }>(sql.indexByName, [target.index]))[0];
    if (target.index !== undefined && !named) throw new ValidationError("index", `no shared index named ${JSON.stringify(target.index)} (see capacity)`);
    // Where the tier lives (BULKHEAD_TIER_STORES) when the tier changes, unless a store or index is named.
    const mapped = target.tier !== undefined && target.tier !== current.tier ? storeOfTier(this.config.tierStores, target.tier) : undefined;
    const store = target.store ?? named?.store ?? mapped ?? current.store;
    if (named && named.store !== store) throw new ValidationError("index", `${target.index} is in store ${named.store}, not ${store}`);
    const changesStore = store !== current.store;
    if (isDedicatedTier(tier)) {
      if (target.index !== undefined) throw new ValidationError("index", "an enterprise tenant gets a dedicated index; a shared index cannot be chosen");
      if (current.dedicatedIndex && !changesStore) throw new ValidationError(target.store === undefined ? "tier" : "store", `tenant "${current.tenantId}" already has a dedicated index in store ${store}`);
      return [await this.slots.createDedicatedIndex(tx, current.tenantId, current.dimension, store), null, store];
    }
    if (current.dimension !== this.config.dimension) {
      throw new ValidationError("tier", `the tenant's vectors have dimension ${current.dimension}; shared indexes hold ${this.config.dimension}`);
    }
    if (target.index === current.index) throw new ValidationError("index", `tenant "${current.tenantId}" is already in ${target.index}`);
    // Out of a pool, a move with nothing named goes to a namespace of the store (how a pooled tenant
    // that outgrew exact search leaves it); a move never goes into a pool.
    if (target.index === undefined && !current.dedicatedIndex && !changesStore && current.isolation !== "pooled") {
      throw new ValidationError(target.store === undefined ? "index" : "store", `tenant "${current.tenantId}" is already in store ${store}: name the shared index to move to (or change the tier to enterprise)`);
    }
    return [...(await this.slots.claimNamespace(tx, store, target.index)), store];
  }

  /**
   * The switch's work in the source database, with the tenant held there (`held`: the home
   * transaction, or the source cell's holding its placement lock): the last logged changes copied,
   * both sides counted, and — if they agree — the target cell fenced at the new epoch and the
   * source cell fenced off (or, moving within a cell, its mirror pointed at the target).
   */
  private async finishSwitch(held: Transaction, home: Transaction, src: Placement, to: Placement): Promise<{ from: number; to: number }> {
    const epoch = src.epoch + 1;
    let counts: { from: number; to: number };
    if (src.store === to.store) {
      counts = await this.store.of(src).finishCopy(held, src, to);
    } else {
      // Across stores: the target is written in the home transaction when the home catalogue fences
      // it (that holds its placement lock), else behind the target cell's own fence.
      const target = this.store.of(to);
      const targetTx = this.store.fencedAtHome(to.store) ? home : undefined;
      while ((await this.store.of(src).drainChanges(src, 10_000, (rows, gone) => target.writeCopies(to, rows, gone, targetTx), held)) > 0);
      counts = { from: await this.store.of(src).countIn(held, src), to: targetTx ? await target.countIn(targetTx, to) : await target.count(to) };
      if (counts.from === counts.to) await this.carryCounters(held, targetTx, src, to, counts.to);
    }
    if (counts.from !== counts.to) return counts;
    if (this.store.isCell(to.store) && to.store !== src.store) {
      const cell = this.store.cell(to.store);
      await cell.hold(src.tenantId, (t) => cell.setMirror(t, src.tenantId, to.indexId, to.slot, epoch));
    }
    if (this.store.isCell(src.store)) {
      const cell = this.store.cell(src.store);
      if (to.store === src.store) await cell.setMirror(held, src.tenantId, to.indexId, to.slot, epoch);
      else await cell.retire(held, src.tenantId);
    }
    return counts;
  }

  /**
   * When the tenant's counters live in another catalogue after the move (home ↔ a cell), the day's
   * query counts go with it, so a move does not reset its daily quota; moving into a store the home
   * catalogue counts for (Pinecone), its document count is set to what was copied.
   */
  private async carryCounters(held: Transaction, targetTx: Transaction | undefined, src: Placement, to: Placement, documents: number): Promise<void> {
    const tenantId = src.tenantId;
    if (this.store.fencedAtHome(src.store) && this.store.fencedAtHome(to.store)) return; // the same catalogue keeps them
    if (targetTx && !this.store.of(to).capabilities.transactional) {
      await targetTx.inTenant(tenantId, () => targetTx.query(catalogueSql.setDocumentCount, [tenantId, documents]));
    }
    const days = await held.inTenant(tenantId, () => held.query<{ day: string; queries: number }>("SELECT day::text, queries FROM daily_query_counts WHERE tenant_id = $1", [tenantId]));
    if (days.length === 0) return;
    const upsert = (q: Queryable) =>
      q.query(
        `INSERT INTO daily_query_counts (tenant_id, day, queries) SELECT $1, d.day, d.queries FROM jsonb_to_recordset($2::jsonb) AS d(day date, queries int)
         ON CONFLICT (tenant_id, day) DO UPDATE SET queries = GREATEST(daily_query_counts.queries, EXCLUDED.queries)`,
        [tenantId, JSON.stringify(days)],
      );
    if (targetTx) await targetTx.inTenant(tenantId, () => upsert(targetTx));
    else await this.store.cell(to.store).db.withTenant(tenantId, upsert);
  }

  /**
   * Drops what a move created (its target namespace or index and the change log) and forgets the
   * move. In a cell, the copy and the change log go when the caller reconciles the cells after its commit.
   */
  async dropMoveTarget(tx: Transaction, current: Tenant, row: MoveRow): Promise<Placement> {
    const target = this.moveTargetPlacement(current, row);
    if (this.store.fencedAtHome(current.placement.store)) await tx.inTenant(current.tenantId, () => tx.query("DELETE FROM move_changes WHERE tenant_id = $1", [current.tenantId]));
    // A copy into a store outside PostgreSQL recorded its ids; the tenant stays where it is.
    if (this.store.isRemote(row.to_store) && !this.store.isRemote(current.placement.store)) await tx.inTenant(current.tenantId, () => tx.query(catalogueSql.forgetAllIds, [current.tenantId]));
    await tx.query(sql.deleteMove, [current.tenantId]);
    if (row.to_store === HOME_STORE) await this.store.dropStorage(tx, target);
    if (row.to_index_kind === "dedicated") await tx.query(sql.deleteIndex, [row.to_index_id]);
    return target;
  }

  /**
   * After a placement change committed: the storage it left in a remote store deleted, and the
   * cells and remote stores involved reconciled. Failures are logged, not thrown — the change has
   * happened; reconciliation repairs what is left at the next change, refusal or start.
   */
  async cleanUp(tenantId: string, stores: readonly string[], left: readonly Placement[]): Promise<void> {
    for (const p of left) {
      await this.store.dropAfterCommit(p).catch((err) => this.host.warn(`bulkhead: deleting what tenant ${tenantId} left in store ${p.store} failed; reconciliation will: ${describeError(err)}`));
    }
    await this.reconciliation.reconcile(stores).catch((err) => this.host.warn(`bulkhead: reconciling ${stores.join(", ")} after a change of tenant ${tenantId} failed; it is retried at the next change, refusal or start: ${describeError(err)}`));
  }

  async loadMove(tenantId: string, q: Queryable = this.db): Promise<MoveRow> {
    const [row] = await q.query<MoveRow>(sql.getMove, [tenantId]);
    if (!row) throw new MoveNotFoundError(tenantId);
    return row;
  }

  /** The placement a move fills: the target index and slot, under the tenant's current epoch. */
  private moveTargetPlacement(current: Tenant, row: Pick<MoveRow, "to_index_id" | "to_slot" | "to_ann_indexed" | "to_store"> & { to_index_name?: string }): Placement {
    return Object.freeze({
      ...current.placement,
      store: row.to_store,
      indexId: row.to_index_id,
      index: row.to_index_name ?? "",
      slot: row.to_slot,
      isolation: row.to_slot === null ? "dedicated-index" : "namespace",
      annIndexed: row.to_ann_indexed,
      // A new graph: its search width starts from the store's default again.
      efSearch: null,
      moving: false,
    });
  }
}

/** The stores reconciled after a placement change (cells and remote stores: not home) among a move's source and target. */
export const cellsOf = (...places: { store: string }[]) => [...new Set(places.map((p) => p.store).filter((s) => s !== HOME_STORE))];

export function toMove(r: MoveRow): PlacementMove {
  return {
    tenantId: r.tenant,
    toTier: r.to_tier,
    toStore: r.to_store,
    toIndex: r.to_index_name,
    toSlot: r.to_slot,
    phase: r.phase,
    copied: r.copied,
    total: r.total,
    writeLimit: r.write_limit,
    startedAt: new Date(r.started_at),
    updatedAt: new Date(r.updated_at),
  };
}
