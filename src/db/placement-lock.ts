/**
 * A tenant's placement lock, exclusively: waits for the tenant's data calls in flight and holds new
 * ones until the transaction ends (each data transaction takes it shared in `check_placement`,
 * migrations 6 and 13, whose key this must match). Taken by the registry around a placement change
 * in the catalogue database, and by a store in a cell's database during a move's switch. $1 tenant,
 * $2 schema.
 */
export const HOLD_PLACEMENT_SQL = "SELECT pg_advisory_xact_lock(hashtext('bulkhead.tenant-placement.' || $2 || '.' || $1))";
