import type { Metric } from "../../config.js";
import type { Placement, VectorRecord } from "../store.js";
import { catalogueSql } from "../catalogue-sql.js";

/**
 * All SQL of the pgvector store, as named functions. Table names are derived from integer ids
 * (`vec_<index id>`), never from user input. Statements go through the parent table: the runtime
 * role has no privileges on partitions, and row-level security applies on top of `tenant_id = $1`.
 */

/** Distance operator, HNSW operator class and how a distance becomes a Pinecone-style score. */
export const METRIC_SQL: Record<Metric, { op: string; opclass: string; score: (distance: string) => string }> = {
  cosine: { op: "<=>", opclass: "vector_cosine_ops", score: (d) => `1 - (${d})` },
  euclidean: { op: "<->", opclass: "vector_l2_ops", score: (d) => d },
  dotproduct: { op: "<#>", opclass: "vector_ip_ops", score: (d) => `-(${d})` },
};

export const tableOf = (p: { indexId: number }) => `vec_${p.indexId}`;

/**
 * Text form of a vector, e.g. `[0.1,0.2]`, parsed by pgvector's input function. JSON.stringify is
 * the native (fastest) way to print a number array; values were validated finite beforehand.
 */
export const vectorLiteral = (values: readonly number[]) => JSON.stringify(values);

/** Records per slice of `rowsJson`: ~200 KB of JSON at 384 d, ~2 ms to print. */
const ROWS_PER_SLICE = 25;

/**
 * Records as the JSON array the write statements read: `{id, embedding, metadata}`, the embedding
 * as pgvector's text in a JSON string (as a JSON array instead, PostgreSQL parses every number
 * into jsonb and prints it again: twice the statement's time for a 1,000-vector batch). Printed a
 * slice at a time, yielding to the event loop in between: a 1,000-vector batch at 384 d is ~8 MB,
 * and printing it in one go held every other tenant's requests for ~70 ms.
 */
export async function rowsJson(records: readonly VectorRecord[]): Promise<string> {
  const slices: string[] = [];
  for (let i = 0; i < records.length; i += ROWS_PER_SLICE) {
    if (i > 0) await new Promise((resolve) => setImmediate(resolve));
    const slice = records.slice(i, i + ROWS_PER_SLICE).map((r) => ({ id: r.id, embedding: vectorLiteral(r.values), metadata: r.metadata }));
    slices.push(JSON.stringify(slice).slice(1, -1));
  }
  return `[${slices.join(",")}]`;
}

/**
 * A row's vector: `embedding` once the namespace's HNSW index covers it, `pending` while it waits
 * for the pending indexer (migration 18; exactly one of the two is set). Every read of a row's
 * value goes through this; only the ANN search reads `embedding` alone.
 */
const VALUE = "coalesce(embedding, pending)";

const overwrite = "ON CONFLICT (tenant_id, id) DO UPDATE SET embedding = EXCLUDED.embedding, pending = NULL, metadata = EXCLUDED.metadata, updated_at = EXCLUDED.updated_at";

export const sql = {
  ...catalogueSql,
  createIndex: "SELECT create_vector_table($1, $2, $3)",
  createNamespace: "SELECT create_namespace($1, $2, $3)",
  dropStorage: "SELECT drop_vector_storage($1, $2)",
  buildAnnIndex: "SELECT build_ann_index($1, $2, $3, $4, $5, $6)",

  /**
   * $1 tenant, $2 JSON array of {id, embedding, metadata}, $3 the tenant's document quota. One
   * statement, so the batch is all or nothing: it writes the rows, adds the ids that were new to the
   * tenant's document counter and aborts with SQLSTATE BHQ01 if that takes the tenant past its
   * quota. A tenant without a counter yet has its rows counted once (the ELSE branch only runs then).
   */
  upsert: (p: Placement, pending: boolean) => {
    // Once the namespace has its graph, a write goes to `pending`: acknowledged without inserting
    // into the graph (pgvector skips NULLs), searched exactly until the pending indexer moves it.
    const [column, other] = pending ? ["pending", "embedding"] : ["embedding", "pending"];
    return `
    WITH existing AS (
      SELECT count(*) AS n FROM ${tableOf(p)}
       WHERE tenant_id = $1 AND id IN (SELECT r.id FROM jsonb_to_recordset($2::jsonb) AS r(id text))),
    written AS (
      INSERT INTO ${tableOf(p)} AS t (tenant_id, id, ${column}, metadata)
      SELECT $1, r.id, r.embedding::vector, r.metadata
        FROM jsonb_to_recordset($2::jsonb) AS r(id text, embedding text, metadata jsonb)
      ON CONFLICT (tenant_id, id) DO UPDATE
        SET ${column} = EXCLUDED.${column}, ${other} = NULL, metadata = EXCLUDED.metadata, updated_at = now()
      RETURNING 1),
    added AS (SELECT (SELECT count(*) FROM written) - (SELECT n FROM existing) AS n),
    counted AS (
      INSERT INTO document_counts AS c (tenant_id, documents)
      SELECT $1, CASE WHEN EXISTS (SELECT 1 FROM document_counts WHERE tenant_id = $1) THEN n
                      ELSE n + (SELECT count(*) FROM ${tableOf(p)} WHERE tenant_id = $1) END
        FROM added
      ON CONFLICT (tenant_id) DO UPDATE SET documents = c.documents + EXCLUDED.documents
      RETURNING c.documents)
    SELECT enforce_document_quota(counted.documents, added.n, $3)::int AS documents, added.n::int AS added
      FROM counted, added`;
  },

  /**
   * $1 tenant, $2 query vector, $3 topK, then the filter's parameters. With an HNSW index: its
   * nearest rows, and the nearest of the rows written since that it does not cover yet (`pending`,
   * found through their partial index and compared exactly), merged by distance. `exact`: every
   * row compared, whatever indexes the namespace has (ordered by an expression no index serves:
   * `enable_indexscan = off` alone did not stop PGlite's planner from taking the HNSW index).
   */
  query: (p: Placement, filterSql: string, exact = false) => {
    const m = METRIC_SQL[p.metric];
    const nearest = (value: string, where: string) => `
    SELECT tenant_id, id, metadata, ${value} ${m.op} $2::vector AS distance
      FROM ${tableOf(p)}
     WHERE tenant_id = $1 AND ${where} AND ${filterSql}
     ORDER BY ${value} ${m.op} $2::vector
     LIMIT $3`;
    if (exact || !p.annIndexed) return `SELECT tenant_id, id, metadata, ${m.score("distance")} AS score FROM (${nearest(VALUE, "true")}) exact`;
    return `
    SELECT tenant_id, id, metadata, ${m.score("distance")} AS score
      FROM ((${nearest("embedding", "embedding IS NOT NULL")}) UNION ALL (${nearest("pending", "pending IS NOT NULL")})) both_parts
     ORDER BY distance
     LIMIT $3`;
  },

  /**
   * Moves up to $2 of the tenant's pending rows into `embedding` (and so into the graph): $1 tenant.
   * Rows a writer holds are skipped, not waited for; the row's value and updated_at do not change.
   */
  indexPending: (p: Placement) => `
    WITH picked AS (
      SELECT id FROM ${tableOf(p)} WHERE tenant_id = $1 AND pending IS NOT NULL LIMIT $2 FOR UPDATE SKIP LOCKED),
    moved AS (
      UPDATE ${tableOf(p)} t SET embedding = t.pending, pending = NULL
        FROM picked WHERE t.tenant_id = $1 AND t.id = picked.id
      RETURNING 1)
    SELECT count(*)::int AS n FROM moved`,

  /** $1 tenant, $2 JSON array of ids. */
  fetch: (p: Placement) => `
    SELECT tenant_id, id, ${VALUE}::text AS embedding, metadata
      FROM ${tableOf(p)}
     WHERE tenant_id = $1 AND id IN (SELECT jsonb_array_elements_text($2::jsonb))`,

  /** $1 tenant, $2 JSON array of ids; the tenant's document counter follows in the same statement (after `lockTenantWrites`). */
  delete: (p: Placement) => `
    WITH gone AS (DELETE FROM ${tableOf(p)} WHERE tenant_id = $1 AND id IN (SELECT jsonb_array_elements_text($2::jsonb)) RETURNING 1),
    removed AS (SELECT count(*)::int AS n FROM gone),
    counted AS (UPDATE document_counts SET documents = documents - (SELECT n FROM removed) WHERE tenant_id = $1 AND (SELECT n FROM removed) > 0 RETURNING 1)
    SELECT n FROM removed`,

  /**
   * $1 tenant, then the filter's parameters: the tenant's rows whose metadata matches, deleted and
   * counted as `delete` does (after `lockTenantWrites`). During a move the ids go to its change log
   * in the same statement, since only this statement knows which they were.
   */
  deleteMatching: (p: Placement, filterSql: string) => `
    WITH gone AS (DELETE FROM ${tableOf(p)} WHERE tenant_id = $1 AND ${filterSql} RETURNING id),
    removed AS (SELECT count(*)::int AS n FROM gone),
    counted AS (UPDATE document_counts SET documents = documents - (SELECT n FROM removed) WHERE tenant_id = $1 AND (SELECT n FROM removed) > 0 RETURNING 1)${
      p.moving ? `,
    logged AS (INSERT INTO move_changes (tenant_id, id) SELECT $1, id FROM gone ON CONFLICT (tenant_id, id) DO UPDATE SET id = EXCLUDED.id RETURNING 1)` : ""
    }
    SELECT n FROM removed`,

  /** $1 tenant, $2 the last id of the previous page (or null), $3 page size. */
  page: (p: Placement) => `
    SELECT tenant_id, id, ${VALUE}::text AS embedding, metadata FROM ${tableOf(p)}
     WHERE tenant_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3`,

  deleteAll: (p: Placement) => `DELETE FROM ${tableOf(p)} WHERE tenant_id = $1`,

  /** $1 tenant, $2 JSON array of {id, embedding, metadata}: plain inserts (the tenant's rows were just cleared). */
  insertBatch: (p: Placement) => `
    INSERT INTO ${tableOf(p)} (tenant_id, id, embedding, metadata)
    SELECT $1, r.id, r.embedding::vector, r.metadata FROM jsonb_to_recordset($2::jsonb) AS r(id text, embedding text, metadata jsonb)`,

  count: (p: Placement) => `SELECT count(*)::int AS n FROM ${tableOf(p)} WHERE tenant_id = $1`,

  /** A move between stores reads rows as stored: $1 tenant, $2 the last id read (or null), $3 page size. */
  copySource: (p: Placement) => `
    SELECT id, ${VALUE}::text AS embedding, metadata, updated_at FROM ${tableOf(p)}
     WHERE tenant_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3`,

  /** The rows of some ids, as stored: $1 tenant, $2 JSON array of ids. */
  rowsOf: (p: Placement) => `
    SELECT id, ${VALUE}::text AS embedding, metadata, updated_at FROM ${tableOf(p)}
     WHERE tenant_id = $1 AND id IN (SELECT jsonb_array_elements_text($2::jsonb))`,

  /** ...and writes them on the other side, overwriting: $1 tenant, $2 JSON array of rows read by copySource or rowsOf. */
  writeCopies: (p: Placement) => `
    INSERT INTO ${tableOf(p)} AS t (tenant_id, id, embedding, metadata, updated_at)
    SELECT $1, r.id, r.embedding::vector, r.metadata, r.updated_at
      FROM jsonb_to_recordset($2::jsonb) AS r(id text, embedding text, metadata jsonb, updated_at timestamptz)
    ${overwrite}`,

  /** $1 tenant, $2 JSON array of ids that are gone on the other side. */
  removeCopies: (p: Placement) => `DELETE FROM ${tableOf(p)} WHERE tenant_id = $1 AND id IN (SELECT jsonb_array_elements_text($2::jsonb))`,

  /** A move's copy: $1 tenant, $2 the last id copied (or null), $3 page size. Returns how many and the new last id. */
  copyPage: (from: Placement, to: Placement) => `
    WITH page AS (
      SELECT tenant_id, id, ${VALUE} AS embedding, metadata, updated_at FROM ${tableOf(from)}
       WHERE tenant_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3),
    written AS (
      INSERT INTO ${tableOf(to)} AS t (tenant_id, id, embedding, metadata, updated_at) SELECT * FROM page
      ${overwrite}
      RETURNING t.id)
    SELECT count(*)::int AS copied, max(id) AS last_id FROM written`,

  /**
   * Second statement, in the same transaction (so with a snapshot taken after the claim): $1 tenant,
   * $2 JSON array of the claimed ids. Copies each again from `from`, or removes it from `to` if it
   * is gone, and clears it from the log. A write that commits later logs its id again (its log row
   * is locked by us until then), so no change is missed and writers are never blocked for long.
   */
  catchUp: (from: Placement, to: Placement) => `
    WITH taken AS (
      DELETE FROM move_changes WHERE tenant_id = $1 AND id IN (SELECT jsonb_array_elements_text($2::jsonb))
      RETURNING id),
    copied AS (
      INSERT INTO ${tableOf(to)} AS t (tenant_id, id, embedding, metadata, updated_at)
      SELECT f.tenant_id, f.id, coalesce(f.embedding, f.pending), f.metadata, f.updated_at FROM ${tableOf(from)} f
       WHERE f.tenant_id = $1 AND f.id IN (SELECT id FROM taken)
      ${overwrite}
      RETURNING 1),
    removed AS (
      DELETE FROM ${tableOf(to)} t WHERE t.tenant_id = $1 AND t.id IN (SELECT id FROM taken)
         AND NOT EXISTS (SELECT 1 FROM ${tableOf(from)} f WHERE f.tenant_id = $1 AND f.id = t.id)
      RETURNING 1)
    SELECT count(*)::int AS n FROM taken`,
};
