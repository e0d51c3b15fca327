import { HOLD_PLACEMENT_SQL } from "../db/placement-lock.js";

/**
 * The catalogue's side of every tenant data call, whichever store holds the vectors: the placement
 * fence, the tenant's write lock, its document and daily-query counters and a move's change log.
 * The pgvector store sends these in the same transaction as its own statements; a store outside
 * the database (Pinecone) runs them in a catalogue transaction around its remote call.
 */
export const catalogueSql = {
  /**
   * Serialises one tenant's writers (sent first, in the same transaction as the write): each write
   * then sees every earlier one committed, so its count of ids that already exist — and the lazily
   * created counter — cannot race another batch. Other tenants' writes are not held up. A function
   * (migration 13): the data-plane role takes this lock for its proved tenant only, no other.
   */
  lockTenantWrites: "SELECT lock_tenant_writes($1)",

  /** $1 tenant, $2 the placement epoch the caller resolved: sent first in every data transaction (see migration 6). */
  checkPlacement: "SELECT check_placement($1, $2)",

  /** The tenant's placement lock, exclusively (see `HOLD_PLACEMENT_SQL`). $1 tenant, $2 schema. */
  holdPlacement: HOLD_PLACEMENT_SQL,

  /**
   * While a move copies the tenant: $1 tenant, $2 JSON array of {id} (an upsert's rows), logged in
   * the write's transaction. An id already logged is updated rather than skipped, so the write holds
   * its log row locked until it commits (see `claimChanges`).
   */
  logUpserted: `INSERT INTO move_changes (tenant_id, id) SELECT $1, r.id FROM jsonb_to_recordset($2::jsonb) AS r(id text) ON CONFLICT (tenant_id, id) DO UPDATE SET id = EXCLUDED.id`,

  /** The same for a delete: $1 tenant, $2 JSON array of ids. */
  logDeleted: `INSERT INTO move_changes (tenant_id, id) SELECT $1, jsonb_array_elements_text($2::jsonb) ON CONFLICT (tenant_id, id) DO UPDATE SET id = EXCLUDED.id`,

  /** $1 tenant, $2 the tenant's document count, set outright. */
  setDocumentCount: `
    INSERT INTO document_counts (tenant_id, documents) VALUES ($1, $2)
    ON CONFLICT (tenant_id) DO UPDATE SET documents = EXCLUDED.documents`,

  /** $1 tenant: ids its writes logged that the move has not re-copied yet. */
  pendingChanges: "SELECT count(*)::int AS n FROM move_changes WHERE tenant_id = $1",

  /** $1 tenant, $2 JSON array of ids the move has re-copied. */
  forgetChanges: "DELETE FROM move_changes WHERE tenant_id = $1 AND id IN (SELECT jsonb_array_elements_text($2::jsonb))",

  /**
   * A move's catch-up, first statement: $1 tenant, $2 most ids. Locks logged ids; a write still in
   * flight on one of them holds its log row (see `logUpserted`), so this waits until it commits.
   */
  claimChanges: "SELECT id FROM move_changes WHERE tenant_id = $1 ORDER BY id LIMIT $2 FOR UPDATE",

  /**
   * $1 tenant, $2 the UTC day, $3 the daily quota, $4 queries wanted (a lease): counts up to $4 of
   * them, never past the quota — the day's count after, and how many were granted — or aborts with
   * SQLSTATE BHQ02 (detail: the day's count) when the day is used up.
   */
  leaseDailyQueries: "SELECT queries, granted FROM lease_daily_queries($1, $2::date, $3, $4)",
  /** $1 tenant, $2 day, $3 leased queries not spent, given back. */
  releaseDailyQueries: "UPDATE daily_query_counts SET queries = greatest(queries - $3, 0) WHERE tenant_id = $1 AND day = $2::date",

  /**
   * $1 tenant, $2 ids new to the tenant, $3 its document quota: adds them to its counter and aborts
   * with SQLSTATE BHQ01 if that takes it past the quota (for a store that counts outside its own writes).
   */
  addDocuments: `
    WITH counted AS (
      INSERT INTO document_counts AS c (tenant_id, documents) VALUES ($1, $2)
      ON CONFLICT (tenant_id) DO UPDATE SET documents = c.documents + EXCLUDED.documents
      RETURNING c.documents)
    SELECT enforce_document_quota(documents, $2, $3)::int AS documents FROM counted`,

  /** $1 tenant, $2 ids removed. */
  removeDocuments: "UPDATE document_counts SET documents = GREATEST(documents - $2, 0) WHERE tenant_id = $1",

  /** $1 tenant, $2 ids added without the quota check (a restore counting what it swapped in). */
  restoreDocuments: `
    INSERT INTO document_counts AS c (tenant_id, documents) VALUES ($1, $2)
    ON CONFLICT (tenant_id) DO UPDATE SET documents = c.documents + EXCLUDED.documents`,

  /**
   * A store outside PostgreSQL: $1 tenant, $2 JSON array of ids, recorded as the tenant's; returns
   * those that were new to it (what its quota counts).
   */
  recordIds: `INSERT INTO remote_ids (tenant_id, id) SELECT $1, jsonb_array_elements_text($2::jsonb) ON CONFLICT DO NOTHING RETURNING id`,

  /** $1 tenant, $2 JSON array of ids no longer the tenant's; returns those it had. */
  forgetIds: "DELETE FROM remote_ids WHERE tenant_id = $1 AND id IN (SELECT jsonb_array_elements_text($2::jsonb)) RETURNING id",

  /** $1 tenant: every id recorded for it (it left the store, or its data is being replaced). */
  forgetAllIds: "DELETE FROM remote_ids WHERE tenant_id = $1",

  /** $1 tenant, $2 the last id of the previous page (or null), $3 page size: its recorded ids, in order. */
  pageIds: "SELECT id FROM remote_ids WHERE tenant_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3",

  /** $1 tenant, $2 JSON array of ids: those recorded as the tenant's. */
  recordedAmong: "SELECT id FROM remote_ids WHERE tenant_id = $1 AND id IN (SELECT jsonb_array_elements_text($2::jsonb))",

  /** $1 tenant: how many ids it holds in the store. */
  countIds: "SELECT count(*)::int AS n FROM remote_ids WHERE tenant_id = $1",
};
