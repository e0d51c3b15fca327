import type { Metric } from "../../config.js";
import type { Placement } from "../store.js";

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

export const sql = {
  createIndex: "SELECT create_vector_table($1, $2, $3)",
  createNamespace: "SELECT create_namespace($1, $2, $3)",
  dropStorage: "SELECT drop_vector_storage($1, $2)",
  buildAnnIndex: "SELECT build_ann_index($1, $2, $3, $4, $5)",

  /** $1 tenant, $2 JSON array of {id, embedding, metadata}. One statement: the batch is all or nothing. */
  upsert: (p: Placement) => `
    INSERT INTO ${tableOf(p)} AS t (tenant_id, id, embedding, metadata)
    SELECT $1, r.id, r.embedding::vector, r.metadata
      FROM jsonb_to_recordset($2::jsonb) AS r(id text, embedding text, metadata jsonb)
    ON CONFLICT (tenant_id, id) DO UPDATE
      SET embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata, updated_at = now()`,

  /** $1 tenant, $2 query vector, $3 topK, then the filter's parameters. */
  query: (p: Placement, filterSql: string) => {
    const m = METRIC_SQL[p.metric];
    return `
    SELECT tenant_id, id, metadata, ${m.score(`embedding ${m.op} $2::vector`)} AS score
      FROM ${tableOf(p)}
     WHERE tenant_id = $1 AND ${filterSql}
     ORDER BY embedding ${m.op} $2::vector
     LIMIT $3`;
  },

  /** $1 tenant, $2 JSON array of ids. */
  fetch: (p: Placement) => `
    SELECT tenant_id, id, embedding::text AS embedding, metadata
      FROM ${tableOf(p)}
     WHERE tenant_id = $1 AND id IN (SELECT jsonb_array_elements_text($2::jsonb))`,

  delete: (p: Placement) => `
    WITH gone AS (DELETE FROM ${tableOf(p)} WHERE tenant_id = $1 AND id IN (SELECT jsonb_array_elements_text($2::jsonb)) RETURNING 1)
    SELECT count(*)::int AS n FROM gone`,

  count: (p: Placement) => `SELECT count(*)::int AS n FROM ${tableOf(p)} WHERE tenant_id = $1`,

  /** Copies a tenant's rows between two indexes (tier change); runs in a tenant-scoped transaction. */
  copy: (from: Placement, to: Placement) => `
    WITH moved AS (
      INSERT INTO ${tableOf(to)} (tenant_id, id, embedding, metadata, updated_at)
      SELECT tenant_id, id, embedding, metadata, updated_at FROM ${tableOf(from)} WHERE tenant_id = $1
      RETURNING 1)
    SELECT count(*)::int AS n FROM moved`,
};
