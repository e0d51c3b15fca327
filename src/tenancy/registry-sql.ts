import { HOLD_PLACEMENT_SQL } from "../db/placement-lock.js";

/** All control-plane SQL of the tenant registry, as named statements. */

const TENANT_COLUMNS = `
  t.id, t.name, t.tier, t.status, t.quota_overrides, t.slot, t.ann_indexed, t.ef_search, t.created_at, t.updated_at, t.placement_epoch,
  EXISTS (SELECT 1 FROM placement_moves m WHERE m.tenant = t.id) AS moving,
  (SELECT m.write_limit FROM placement_moves m WHERE m.tenant = t.id) AS move_write_limit,
  i.id AS index_id, i.name AS index_name, i.kind AS index_kind, i.store AS index_store, i.dimension, i.metric`;

const MOVE_COLUMNS = `
  m.tenant, m.to_tier, m.to_slot, m.phase, m.copy_cursor, m.copied::int, m.total::int, m.to_ann_indexed, m.write_limit, m.started_at, m.updated_at,
  i.id AS to_index_id, i.name AS to_index_name, i.kind AS to_index_kind, i.store AS to_store`;

export const registrySql = {
  /** Serialises placement decisions across processes for one schema. */
  lockPlacement: "SELECT pg_advisory_xact_lock(hashtext('bulkhead.placement.' || current_schema()))",
  tenantExists: "SELECT 1 FROM tenants WHERE id = $1",
  getTenant: `SELECT ${TENANT_COLUMNS} FROM tenants t JOIN indexes i ON i.id = t.index_id WHERE t.id = $1`,
  listTenants: `SELECT ${TENANT_COLUMNS} FROM tenants t JOIN indexes i ON i.id = t.index_id
                 WHERE ($1::text IS NULL OR t.tier = $1) AND ($2::text IS NULL OR t.status = $2) ORDER BY t.id`,
  /** The tenant's placement lock, exclusively. $1 tenant, $2 schema. */
  lockTenantPlacement: HOLD_PLACEMENT_SQL,
  /**
   * Shared indexes ($1: of a dimension, $2: in a store; null for any) with their namespaces in use
   * (tenants plus slots reserved by moves), oldest first.
   */
  sharedIndexes: `SELECT i.id, i.name, i.store, i.dimension, i.metric, i.max_namespaces,
                         ((SELECT count(*) FROM tenants t WHERE t.index_id = i.id) +
                          (SELECT count(*) FROM placement_moves m WHERE m.to_index_id = i.id))::int AS used
                    FROM indexes i
                   WHERE i.kind = 'shared' AND ($1::int IS NULL OR i.dimension = $1) AND ($2::text IS NULL OR i.store = $2)
                   ORDER BY i.id`,
  /** Every pool and how many tenants it holds. */
  pools: `SELECT i.name AS index, i.store, (SELECT count(*) FROM tenants t WHERE t.index_id = i.id)::int AS tenants
            FROM indexes i WHERE i.kind = 'pool' ORDER BY i.id`,
  /** The pool of a store ($1) for a dimension ($2) and metric ($3). */
  poolIndex: "SELECT id FROM indexes WHERE kind = 'pool' AND store = $1 AND dimension = $2 AND metric = $3 ORDER BY id LIMIT 1",
  nextSharedNumber: "SELECT count(*)::int + 1 AS n FROM indexes WHERE kind = 'shared' AND store = $1",
  insertIndex: `INSERT INTO indexes (name, kind, dimension, metric, max_namespaces, store) VALUES ($1, $2, $3, $4, $5, $6)
                RETURNING id, name, kind, dimension, metric, store`,
  deleteIndex: "DELETE FROM indexes WHERE id = $1",
  /** Lowest free namespace slot of an index. */
  freeSlot: `SELECT s AS slot FROM generate_series(1, $2::int) AS s
              WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE index_id = $1 AND slot = s)
                AND NOT EXISTS (SELECT 1 FROM placement_moves WHERE to_index_id = $1 AND to_slot = s) ORDER BY s LIMIT 1`,
  insertTenant: `INSERT INTO tenants (id, name, tier, quota_overrides, index_id, slot) VALUES ($1, $2, $3, $4, $5, $6)`,
  /** The switch of a move: $1 tenant, $2 tier, $3 index, $4 slot, $5 whether the target has its ANN index. */
  movePlacement: `UPDATE tenants SET tier = $2, index_id = $3, slot = $4, ann_indexed = $5, ef_search = NULL,
                    placement_epoch = placement_epoch + 1, updated_at = now() WHERE id = $1`,
  bumpEpoch: "UPDATE tenants SET placement_epoch = placement_epoch + 1, updated_at = now() WHERE id = $1",
  getMove: `SELECT ${MOVE_COLUMNS} FROM placement_moves m JOIN indexes i ON i.id = m.to_index_id WHERE m.tenant = $1`,
  listMoves: `SELECT ${MOVE_COLUMNS} FROM placement_moves m JOIN indexes i ON i.id = m.to_index_id ORDER BY m.started_at`,
  insertMove: "INSERT INTO placement_moves (tenant, to_tier, to_index_id, to_slot, phase, total) VALUES ($1, $2, $3, $4, 'copying', $5)",
  saveMove: `UPDATE placement_moves SET phase = $2, copy_cursor = $3, copied = $4, to_ann_indexed = $5, updated_at = now() WHERE tenant = $1`,
  deleteMove: "DELETE FROM placement_moves WHERE tenant = $1",
  /** $1 tenant, $2 vectors per second it may write while it moves, or null. */
  setMoveWriteLimit: "UPDATE placement_moves SET write_limit = $2, updated_at = now() WHERE tenant = $1 RETURNING tenant",
  indexByName: "SELECT id, name, kind, store, dimension, max_namespaces FROM indexes WHERE name = $1",
  setTier: "UPDATE tenants SET tier = $2, updated_at = now() WHERE id = $1 RETURNING id",
  setStatus: "UPDATE tenants SET status = $2, updated_at = now() WHERE id = $1 RETURNING id",
  setQuota: "UPDATE tenants SET quota_overrides = $2, updated_at = now() WHERE id = $1 RETURNING id",
  setEfSearch: "UPDATE tenants SET ef_search = $2, updated_at = now() WHERE id = $1 RETURNING id",
  /** $2: the placement epoch the index was built for (a move may have switched since). */
  markAnnIndexed: "UPDATE tenants SET ann_indexed = true WHERE id = $1 AND placement_epoch = $2 RETURNING id",
  deleteTenant: "DELETE FROM tenants WHERE id = $1",
  /**
   * What a cell ($1) must hold: each tenant placed there and each move going there, at the tenant's
   * current placement epoch (see PgvectorCell.reconcile).
   */
  cellClaims: `SELECT t.id AS tenant, t.index_id, t.slot, t.placement_epoch AS epoch, true AS placed,
                      EXISTS (SELECT 1 FROM placement_moves m WHERE m.tenant = t.id) AS moving
                 FROM tenants t JOIN indexes i ON i.id = t.index_id WHERE i.store = $1
               UNION ALL
               SELECT t.id, m.to_index_id, m.to_slot, t.placement_epoch, false, true
                 FROM placement_moves m JOIN indexes i ON i.id = m.to_index_id JOIN tenants t ON t.id = m.tenant WHERE i.store = $1`,
  cellIndexes: "SELECT id, name, kind, dimension, metric, store FROM indexes WHERE store = $1 ORDER BY id",
  /** A tenant's counters and change log at home, cleared when it moves to a cell (the cell keeps its own). */
  clearHomeCounters: [
    "DELETE FROM document_counts WHERE tenant_id = $1",
    "DELETE FROM daily_query_counts WHERE tenant_id = $1",
    "DELETE FROM move_changes WHERE tenant_id = $1",
  ],
};
