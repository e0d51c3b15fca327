import type { Db } from "../db/db.js";
import type { CellClaim, IndexSpec, ReconcileReport } from "../stores/store.js";
import type { StoreRouter } from "../stores/store-router.js";
import { registrySql as sql } from "./registry-sql.js";

/**
 * Makes the stores outside the home database's transactions — cells and remote stores (Pinecone) —
 * agree with the catalogue: after every placement change that touches one, when a data call is
 * refused twice, and at start-up.
 */
export class StoreReconciliation {
  constructor(
    private readonly db: Db,
    private readonly store: StoreRouter,
  ) {}

  /**
   * Makes every cell (or those named) agree with the catalogue: fences at the current epochs,
   * mirrors of exactly the tenants placed or moving there, and nothing else left in them. Runs under
   * the placement lock, so never in the middle of a switch. Called after every placement change
   * that touches a cell, when a data call is refused twice, and at start-up.
   */
  async reconcile(names: readonly string[] = this.store.reconciledStores()): Promise<Record<string, ReconcileReport>> {
    const reports: Record<string, ReconcileReport> = {};
    for (const name of names) {
      reports[name] = await this.db.transaction(async (tx) => {
        await tx.query(sql.lockPlacement);
        const claims = await tx.query<{ tenant: string; index_id: number; slot: number | null; epoch: number; placed: boolean; moving: boolean }>(sql.cellClaims, [name]);
        const indexes = await tx.query<IndexSpec>(sql.cellIndexes, [name]);
        return this.store.reconcile(
          name,
          claims.map((c): CellClaim => ({ tenant: c.tenant, indexId: c.index_id, slot: c.slot, epoch: c.epoch, placed: c.placed, moving: c.moving })),
          indexes,
        );
      });
    }
    return reports;
  }
}
