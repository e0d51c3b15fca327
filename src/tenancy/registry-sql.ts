/** All control-plane SQL of the tenant registry, as named statements. */

const TENANT_COLUMNS = `
  t.id, t.name, t.tier, t.status, t.quota_overrides, t.slot, t.ann_indexed, t.created_at, t.updated_at,
  i.id AS index_id, i.name AS index_name, i.kind AS index_kind, i.dimension, i.metric`;

export const registrySql = {
  /** Serialises placement decisions across processes for one schema. */
  lockPlacement: "SELECT pg_advisory_xact_lock(hashtext('bulkhead.placement.' || current_schema()))",
  tenantExists: "SELECT 1 FROM tenants WHERE id = $1",
  getTenant: `SELECT ${TENANT_COLUMNS} FROM tenants t JOIN indexes i ON i.id = t.index_id WHERE t.id = $1`,
  listTenants: `SELECT ${TENANT_COLUMNS} FROM tenants t JOIN indexes i ON i.id = t.index_id
                 WHERE ($1::text IS NULL OR t.tier = $1) AND ($2::text IS NULL OR t.status = $2) ORDER BY t.id`,
  /** Shared indexes of a dimension with their live namespace counts, oldest first. */
  sharedIndexes: `SELECT i.id, i.name, i.dimension, i.metric, i.max_namespaces, count(t.id)::int AS used
                    FROM indexes i LEFT JOIN tenants t ON t.index_id = i.id
                   WHERE i.kind = 'shared' AND ($1::int IS NULL OR i.dimension = $1)
                   GROUP BY i.id ORDER BY i.id`,
  nextSharedNumber: "SELECT count(*)::int + 1 AS n FROM indexes WHERE kind = 'shared'",
  insertIndex: `INSERT INTO indexes (name, kind, dimension, metric, max_namespaces) VALUES ($1, $2, $3, $4, $5)
                RETURNING id, name, kind, dimension, metric`,
  deleteIndex: "DELETE FROM indexes WHERE id = $1",
  /** Lowest free namespace slot of an index. */
  freeSlot: `SELECT s AS slot FROM generate_series(1, $2::int) AS s
              WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE index_id = $1 AND slot = s) ORDER BY s LIMIT 1`,
  insertTenant: `INSERT INTO tenants (id, name, tier, quota_overrides, index_id, slot) VALUES ($1, $2, $3, $4, $5, $6)`,
  movePlacement: "UPDATE tenants SET tier = $2, index_id = $3, slot = $4, ann_indexed = false, updated_at = now() WHERE id = $1",
  setTier: "UPDATE tenants SET tier = $2, updated_at = now() WHERE id = $1",
  setStatus: "UPDATE tenants SET status = $2, updated_at = now() WHERE id = $1 RETURNING id",
  setQuota: "UPDATE tenants SET quota_overrides = $2, updated_at = now() WHERE id = $1 RETURNING id",
  markAnnIndexed: "UPDATE tenants SET ann_indexed = true WHERE id = $1 RETURNING id",
  deleteTenant: "DELETE FROM tenants WHERE id = $1",
};
