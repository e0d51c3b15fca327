import type { Db, Queryable, Transaction } from "../../db/db.js";
import type { CellClaim, IndexSpec, ReconcileReport } from "../store.js";
import type { PgvectorStore } from "./pgvector-store.js";
import { sql } from "./pgvector-sql.js";
import { ConfigError } from "../../errors.js";

/**
 * Records which store `db` is at its first open, and refuses it if it is already another store's
 * (a cell configured with the home database's URL, or two cells with one database).
 */
export async function claimStoreIdentity(db: Db, name: string): Promise<void> {
  await db.query("INSERT INTO store_identity (name) VALUES ($1) ON CONFLICT (singleton) DO NOTHING", [name]);
  const [row] = await db.query<{ name: string }>("SELECT name FROM store_identity");
  if (row!.name !== name) {
    throw new ConfigError(`the database configured for store "${name}" is the database of store "${row!.name}" (schema ${db.schema}); every store needs a database of its own — check BULKHEAD_CELLS and DATABASE_URL`);
  }
}

/**
 * Another database (a cell) holding some tenants' vectors, with the same schema as the home one.
 * Its `indexes` and `tenants` tables mirror only what it holds: the mirrored tenant row's
 * `placement_epoch` is the fence `check_placement` reads here, exactly as the home catalogue's row
 * is at home. The home catalogue decides; `reconcile` makes the cell agree with it.
 */
export class PgvectorCell {
  constructor(
    readonly name: string,
    readonly db: Db,
    /** The pgvector store over this cell's database. */
    readonly store: PgvectorStore,
  ) {}

  /** Creates the index's table here and mirrors its catalogue row (with the id the home database gave it). */
  async createIndex(index: IndexSpec): Promise<void> {
    await this.db.transaction(async (tx) => {
      // A mirror of the same name under another id was left by a provisioning whose home transaction
      // rolled back (the home catalogue just gave the name out again): nothing claims it.
      for (const { id } of await tx.query<{ id: number }>("SELECT id FROM indexes WHERE name = $1 AND id <> $2", [index.name, index.id])) {
        await tx.query(sql.dropStorage, [id, null]);
        await tx.query("DELETE FROM indexes WHERE id = $1", [id]);
      }
      // Capacity is decided at home; the mirror's max_namespaces is only there to satisfy the column.
      const added = await tx.query(
        "INSERT INTO indexes (id, name, kind, dimension, metric, max_namespaces, store) VALUES ($1, $2, $3, $4, $5, 1, $6) ON CONFLICT (id) DO NOTHING RETURNING id",
        [index.id, index.name, index.kind, index.dimension, index.metric, this.name],
      );
      if (added.length > 0) await this.store.createIndex(tx, index);
    });
  }

  /**
   * Creates a namespace (partition) of a shared index here; the tenant's mirror row comes with
   * `reconcile`. The home catalogue just gave this slot out under its placement lock, so whatever a
   * table of that name still holds here is left over from an earlier tenant (not yet reconciled): dropped first.
   */
  async createNamespace(indexId: number, slot: number, tenantId: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(sql.dropStorage, [indexId, slot]);
      await tx.query(sql.createNamespace, [indexId, slot, tenantId]);
    });
  }

  /**
   * Runs `fn` in a transaction of the tenant's holding its placement lock here exclusively: the
   * tenant's data calls in this cell wait until it commits (the switch of a move).
   */
  hold<T>(tenantId: string, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.db.withTenant(tenantId, async (tx) => {
      await tx.query(sql.holdPlacement, [tenantId, this.db.schema]);
      return fn(tx);
    });
  }

  /** Points the tenant's mirror at another index and slot here, fenced at `epoch` (in a `hold` transaction). */
  async setMirror(tx: Queryable, tenantId: string, indexId: number, slot: number | null, epoch: number): Promise<void> {
    await tx.query("UPDATE tenants SET index_id = $2, slot = $3, placement_epoch = $4 WHERE id = $1", [tenantId, indexId, slot, epoch]);
  }

  /** Refuses every data call of the tenant here (in a `hold` transaction): it is leaving this cell. */
  async retire(tx: Queryable, tenantId: string): Promise<void> {
    await tx.query("UPDATE tenants SET placement_epoch = -1 WHERE id = $1", [tenantId]);
  }

  /**
   * Makes this cell agree with the home catalogue (called under its placement lock): mirror rows
   * for exactly the tenants claimed, at their current epochs (each changed under the tenant's lock,
   * so no data call is in flight); a dropped mirror takes the tenant's counters and change log with
   * it (foreign keys); a tenant no longer moving has no change log; and every vector table or
   * namespace no index or tenant claims any more is dropped — what a switch, rollback or deletion
   * left behind, or a crash between two of its steps.
   */
  async reconcile(claims: readonly CellClaim[], indexes: readonly IndexSpec[]): Promise<ReconcileReport> {
    const report: ReconcileReport = { mirrorsChanged: [], mirrorsDropped: [], storageDropped: [] };
    await this.db.transaction(async (tx) => {
      const mirrors = new Map((await tx.query<{ id: string; index_id: number; slot: number | null; placement_epoch: number }>("SELECT id, index_id, slot, placement_epoch FROM tenants")).map((m) => [m.id, m]));
      // One mirror per tenant: where it is placed, else where its move goes.
      const wanted = new Map<string, CellClaim>();
      for (const c of claims) if (c.placed || !wanted.has(c.tenant)) wanted.set(c.tenant, c);
      const dropped = [...mirrors.keys()].filter((id) => !wanted.has(id));
      const changed = [...wanted.values()].filter((c) => {
        const m = mirrors.get(c.tenant);
        return !(m && m.index_id === c.indexId && m.slot === c.slot && m.placement_epoch === c.epoch);
      });
      // Every lock before any row is touched: a data call in flight holds its tenant's lock shared and
      // may need the mirror row (its counter's foreign key); touching the row first would deadlock.
      for (const id of [...dropped, ...changed.map((c) => c.tenant)].sort()) await tx.query(sql.holdPlacement, [id, this.db.schema]);
      for (const id of dropped) await tx.query("DELETE FROM tenants WHERE id = $1", [id]);
      // Slots first released, then taken: two mirrors may be trading places (UNIQUE (index_id, slot)).
      await tx.query("UPDATE tenants SET slot = NULL WHERE id = ANY($1::text[])", [changed.map((c) => c.tenant)]);
      for (const c of changed) {
        await tx.query(
          `INSERT INTO tenants (id, name, tier, index_id, slot, placement_epoch) VALUES ($1, $1, 'pro', $2, $3, $4)
           ON CONFLICT (id) DO UPDATE SET index_id = EXCLUDED.index_id, slot = EXCLUDED.slot, placement_epoch = EXCLUDED.placement_epoch`,
          [c.tenant, c.indexId, c.slot, c.epoch],
        );
        if (!c.moving) await tx.inTenant(c.tenant, () => tx.query("DELETE FROM move_changes WHERE tenant_id = $1", [c.tenant]));
      }
      report.mirrorsDropped.push(...dropped);
      report.mirrorsChanged.push(...changed.map((c) => c.tenant));
      const indexIds = new Set(indexes.map((i) => i.id));
      const namespaces = new Set(claims.filter((c) => c.slot !== null).map((c) => `vec_${c.indexId}_${c.slot}`));
      const relations = await tx.query<{ relname: string }>(
        `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname ~ '^vec_[0-9]+(_[0-9]+)?$' ORDER BY c.relname`,
        [this.db.schema],
      );
      for (const { relname } of relations) {
        const [, indexId, slot] = relname.split("_");
        const claimed = slot === undefined ? indexIds.has(Number(indexId)) : indexIds.has(Number(indexId)) && namespaces.has(relname);
        if (claimed) continue;
        await tx.query(sql.dropStorage, [Number(indexId), slot === undefined ? null : Number(slot)]);
        report.storageDropped.push(relname);
      }
      await tx.query("DELETE FROM indexes WHERE NOT (id = ANY($1::int[]))", [[...indexIds]]);
    });
    return report;
  }
}
