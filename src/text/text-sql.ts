/**
 * All SQL of the text path, as named statements. Every statement runs in the tenant's proved
 * context (forced RLS) and names the tenant in its own conditions as well.
 */
export const textSql = {
  /** $1 tenant: its chunks stored, before a write changes them. */
  chunksStored: "SELECT coalesce(sum(chunks), 0)::bigint AS n FROM text_documents WHERE tenant_id = $1",

  /** $1 tenant, $2 JSON array of ids: the documents go, their chunks with them (ON DELETE CASCADE). */
  deleteDocuments: "DELETE FROM text_documents WHERE tenant_id = $1 AND id IN (SELECT jsonb_array_elements_text($2::jsonb)) RETURNING id, chunks",

  /** $1 tenant: all of its documents go, their chunks with them (a restore replacing them). */
  deleteAllDocuments: "DELETE FROM text_documents WHERE tenant_id = $1",

  /** $1 tenant, $2 JSON array of {id, format, metadata, chunks, characters}. */
  insertDocuments: `
    INSERT INTO text_documents (tenant_id, id, format, metadata, chunks, characters)
    SELECT $1, d.id, d.format, d.metadata, d.chunks, d.characters
      FROM jsonb_to_recordset($2::jsonb) AS d(id text, format text, metadata jsonb, chunks int, characters int)`,

  /**
   * $1 tenant, $2 JSON array of {document_id, position, section, body, metadata, embedding}, $3 the
   * text-search configuration, $4 the model of the embeddings (null without): each chunk with its
   * full-text vector (its section's headings weigh more).
   */
  insertChunks: `
    INSERT INTO text_chunks (tenant_id, document_id, position, section, body, metadata, tsv, embedding, embedding_model)
    SELECT $1, c.document_id, c.position, c.section, c.body, c.metadata,
           setweight(to_tsvector($3::regconfig, coalesce(c.section, '')), 'A') || to_tsvector($3::regconfig, c.body),
           c.embedding::vector, CASE WHEN c.embedding IS NOT NULL THEN coalesce(c.embedding_model, $4::text) END
      FROM jsonb_to_recordset($2::jsonb) AS c(document_id text, position int, section text, body text, metadata jsonb, embedding text, embedding_model text)`,

  /**
   * $1 the tenant's chunks after the write, $2 chunks it added (net), $3 the quota: SQLSTATE BHQ01
   * (detail: the count before) when the write takes the tenant past it.
   */
  enforceQuota: "SELECT enforce_document_quota($1::bigint, $2::bigint, $3::bigint)",

  /**
   * Full-text search: $1 tenant, $2 configuration, $3 the query as a user types it (websearch
   * syntax: quotes, OR, -word; never a syntax error), $4 topK, then the filter's parameters.
   */
  search: (filterSql: string) => `
    SELECT c.tenant_id, c.document_id, c.position, c.section, c.body, c.metadata, ts_rank_cd(c.tsv, q) AS score
      FROM text_chunks c, websearch_to_tsquery($2::regconfig, $3) AS q
     WHERE c.tenant_id = $1 AND c.tsv @@ q AND ${filterSql}
     ORDER BY score DESC, c.document_id, c.position
     LIMIT $4`,

  /**
   * The chunks nearest a query vector, compared exactly (cosine) among the tenant's own chunks
   * embedded by the query's model — another model's vectors are not comparable, and a dimension
   * changed since would make `<=>` fail: $1 tenant, $2 the vector, $3 how many, $4 the model, then
   * the filter's parameters.
   */
  nearest: (filterSql: string) => `
    SELECT c.tenant_id, c.document_id, c.position, c.section, c.body, c.metadata, 1 - (c.embedding <=> $2::vector) AS score
      FROM text_chunks c
     WHERE c.tenant_id = $1 AND c.embedding_model = $4 AND vector_dims(c.embedding) = vector_dims($2::vector) AND ${filterSql}
     ORDER BY c.embedding <=> $2::vector
     LIMIT $3`,

  /** $1 tenant, $2 the last id of the previous page (or null), $3 page size. */
  listDocuments: `
    SELECT id, format, metadata, chunks, characters, updated_at FROM text_documents
     WHERE tenant_id = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3`,

  /**
   * $1 tenant, then the last chunk of the previous page ($2 document, $3 position; nulls for the
   * first page), $4 page size: chunks in key order with their vectors as text (for backups).
   */
  pageChunks: `
    SELECT document_id, position, section, body, metadata, embedding::text AS embedding, embedding_model FROM text_chunks
     WHERE tenant_id = $1 AND ($2::text IS NULL OR (document_id, position) > ($2, $3::int))
     ORDER BY document_id, position LIMIT $4`,
};
