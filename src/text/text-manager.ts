import type { BulkheadConfig } from "../config.js";
import type { Row, TenantDb } from "../db/db.js";
import { IsolationViolationError, QuotaExceededError, shown, ValidationError } from "../errors.js";
import type { UsageMeter } from "../costs/cost-engine.js";
import { tokenizer } from "../costs/token-counter.js";
import { validateId, validateIds, validateMetadata, validateTopK, type Limits } from "../data/validation.js";
import type { OperationGate } from "../limits/performance-gate.js";
import type { QueryAdmission } from "../limits/daily-query-quota.js";
import { assertStorableText } from "../storable-text.js";
import { catalogueSql } from "../stores/catalogue-sql.js";
import { compileFilter, type MetadataFilter } from "../stores/filter.js";
import type { TenantRegistry } from "../tenancy/registry.js";
import type { Tenant } from "../tenancy/tenant.js";
import { chunkText, TEXT_FORMATS, type Chunk, type TextFormat } from "./chunker.js";
import { textSql as sql } from "./text-sql.js";

/** A document as callers give it to `ingestDocuments`. */
export interface TextDocumentInput {
  id: string;
  text: string;
  /** How `text` is written (default "text"): Markdown and HTML keep their sections and code blocks together. */
  format?: TextFormat;
  metadata?: Record<string, unknown>;
}

export interface TextIngestResult {
  documents: number;
  chunks: number;
  /** Documents that existed and were replaced whole. */
  replaced: number;
}

export interface TextSearchOptions {
  topK?: number;
  filter?: MetadataFilter;
}

/** A chunk found by a search, with what found it. */
export interface TextMatch {
  documentId: string;
  position: number;
  section: string | null;
  text: string;
  metadata: Record<string, unknown>;
  score: number;
  retrievers: ("fulltext" | "vector")[];
}

export interface TextSearchResult {
  matches: TextMatch[];
  /** How this deployment searches: full text alone until an embedder is configured. */
  mode: "fulltext";
}

export interface StoredTextDocument {
  id: string;
  format: TextFormat;
  metadata: Record<string, unknown>;
  chunks: number;
  characters: number;
  updatedAt: Date;
}

/** Bounds of the text path's input, each refused with a 400 naming its field. */
export const TEXT_LIMITS = Object.freeze({ documentsPerCall: 100, charactersPerDocument: 1_000_000, chunksPerDocument: 10_000, queryCharacters: 1_000 });

/** Chunks per insert statement (~1 MB of JSON at the default chunk size). */
const CHUNKS_PER_STATEMENT = 500;

export type TextSettings = Limits & Pick<BulkheadConfig, "chunkTokens" | "chunkOverlapTokens" | "textSearchConfig">;

/**
 * Text documents of a tenant: chunked, stored and searched inside its isolation boundary. Every
 * call resolves the tenant, validates everything before anything is written, passes the tenant's
 * performance gate (a write as an upsert, a search as a query: rate limit, concurrency, daily
 * quota) and runs in the tenant's own proved context on the data plane, under forced RLS; every
 * row a search returns is checked to be the tenant's before it is answered.
 */
export class TenantTextManager {
  constructor(
    private readonly registry: TenantRegistry,
    private readonly db: TenantDb,
    private readonly settings: TextSettings,
    private readonly gate?: OperationGate,
    private readonly meter?: UsageMeter,
  ) {}

  /**
   * Stores documents, each cut into chunks; a document that exists is replaced whole, atomically
   * (readers see its old chunks or its new ones, never a mix). All or nothing: one invalid
   * document, or a batch that would take the tenant past `maxTextChunks`, writes nothing.
   *
   * @example
   * await bh.text.ingestDocuments("tenant-001", [{ id: "guide", format: "markdown", text: "# Install\n\nRun npm ci." }]);
   */
  async ingestDocuments(tenantId: string, documents: TextDocumentInput[]): Promise<TextIngestResult> {
    const tenant = await this.registry.resolveActive(tenantId);
    const valid = this.validateDocuments(documents, tenant.tenantId);
    const enc = await tokenizer("cl100k_base");
    const chunked: { doc: (typeof valid)[number]; chunks: Chunk[] }[] = [];
    for (const [i, doc] of valid.entries()) {
      const chunks = await chunkText(doc.text, doc.format, { maxTokens: this.settings.chunkTokens, overlapTokens: this.settings.chunkOverlapTokens }, enc);
      if (chunks.length > TEXT_LIMITS.chunksPerDocument) {
        throw new ValidationError(`documents[${i}].text`, `makes ${chunks.length} chunks of ${this.settings.chunkTokens} tokens; at most ${TEXT_LIMITS.chunksPerDocument} per document`);
      }
      chunked.push({ doc, chunks });
    }
    const total = chunked.reduce((n, c) => n + c.chunks.length, 0);
    return this.admit(tenant, "upsert", () =>
      this.db.withTenant(tenant.tenantId, async (tx) => {
        // One writer per tenant at a time (shared with its vector writes): the quota sees every chunk.
        await tx.query(catalogueSql.lockTenantWrites, [tenant.tenantId]);
        const [{ n: before }] = (await tx.query<{ n: string }>(sql.chunksStored, [tenant.tenantId])) as [{ n: string }];
        const gone = await tx.query<{ id: string; chunks: number }>(sql.deleteDocuments, [tenant.tenantId, JSON.stringify(valid.map((d) => d.id))]);
        const removed = gone.reduce((n, g) => n + g.chunks, 0);
        const docs = chunked.map(({ doc, chunks }) => ({ id: doc.id, format: doc.format, metadata: doc.metadata, chunks: chunks.length, characters: doc.text.length }));
        await tx.query(sql.insertDocuments, [tenant.tenantId, JSON.stringify(docs)]);
        const rows = chunked.flatMap(({ doc, chunks }) => chunks.map((c) => ({ document_id: doc.id, position: c.position, section: c.section, body: c.text, metadata: doc.metadata })));
        for (let i = 0; i < rows.length; i += CHUNKS_PER_STATEMENT) {
          await tx.query(sql.insertChunks, [tenant.tenantId, JSON.stringify(rows.slice(i, i + CHUNKS_PER_STATEMENT)), this.settings.textSearchConfig]);
        }
        const after = Number(before) - removed + total;
        try {
          await tx.query(sql.enforceQuota, [after, total - removed, tenant.quota.maxTextChunks]);
        } catch (err) {
          if ((err as { code?: string }).code !== "BHQ01") throw err;
          throw new QuotaExceededError("maxTextChunks", tenant.quota.maxTextChunks, Number(before), `tenant "${tenant.tenantId}" stores ${before} of its ${tenant.quota.maxTextChunks} text chunks; these documents would take it to ${after}, so none of them was written`);
        }
        return { documents: valid.length, chunks: total, replaced: gone.length };
      }),
    );
  }

  /**
   * The tenant's chunks that match `query`, best first. Full-text search (PostgreSQL's, with the
   * configured language's stemming); the query is read like a web search box: words, "quoted
   * phrases", OR, -excluded. Counts as a query against the daily quota.
   */
  async searchText(tenantId: string, query: string, options: TextSearchOptions = {}): Promise<TextSearchResult> {
    const tenant = await this.registry.resolveActive(tenantId);
    if (typeof query !== "string" || query.trim().length === 0) throw new ValidationError("query", "must be a non-empty string");
    if (query.length > TEXT_LIMITS.queryCharacters) throw new ValidationError("query", `must be at most ${TEXT_LIMITS.queryCharacters} characters`);
    assertStorableText(query, "query");
    const topK = validateTopK(options.topK ?? 10, this.settings);
    if (options.filter !== undefined && (typeof options.filter !== "object" || options.filter === null || Array.isArray(options.filter))) throw new ValidationError("filter", "must be an object");
    const filter = compileFilter(options.filter, 5, "c.metadata");
    return this.admit(tenant, "query", async (admission?: QueryAdmission) => {
      const search = { text: sql.search(filter.sql), params: [tenant.tenantId, this.settings.textSearchConfig, query, topK, ...filter.params] };
      const count = admission?.count && { text: catalogueSql.leaseDailyQueries, params: [tenant.tenantId, admission.count.day, admission.count.limit, admission.count.lease] };
      const all = await this.db.pipelineAsTenant(tenant.tenantId, count ? [count, search] : [search], count ? { synchronous_commit: "off" } : undefined);
      if (count) {
        const [counted] = all[0] as { queries: number; granted: number }[];
        admission!.counted(counted!.queries, counted!.granted);
      }
      const rows = all.at(-1) as (Row & { tenant_id: string; document_id: string; position: number; section: string | null; body: string; metadata: Record<string, unknown>; score: number })[];
      for (const r of rows) {
        if (r.tenant_id !== tenant.tenantId || r.metadata.tenant_id !== tenant.tenantId) {
          throw new IsolationViolationError(`text search for tenant "${tenant.tenantId}" returned a chunk of another tenant; the response was withheld`);
        }
      }
      this.meter?.meterVectorQuery(tenant.tenantId);
      this.gate?.observe(tenant, { operation: "query", dailyQueries: admission?.usedToday() });
      return {
        mode: "fulltext" as const,
        matches: rows.map((r) => ({ documentId: r.document_id, position: r.position, section: r.section, text: r.body, metadata: r.metadata, score: Number(r.score), retrievers: ["fulltext" as const] })),
      };
    });
  }

  /** Deletes documents and all their chunks; ids the tenant does not have are ignored. */
  async deleteDocuments(tenantId: string, ids: string[]): Promise<{ deleted: number; chunks: number }> {
    const tenant = await this.registry.resolveActive(tenantId);
    const valid = validateIds(ids, this.settings);
    return this.admit(tenant, "delete", async () => {
      const [gone] = (await this.db.pipelineAsTenant(tenant.tenantId, [
        { text: catalogueSql.lockTenantWrites, params: [tenant.tenantId] },
        { text: sql.deleteDocuments, params: [tenant.tenantId, JSON.stringify(valid)] },
      ])).slice(1) as [{ chunks: number }[]];
      return { deleted: gone.length, chunks: gone.reduce((n, g) => n + g.chunks, 0) };
    });
  }

  /** The tenant's documents in id order, `limit` (1–1,000) after `after`. */
  async listDocuments(tenantId: string, options: { after?: string; limit?: number } = {}): Promise<StoredTextDocument[]> {
    const tenant = await this.registry.resolveActive(tenantId);
    const after = options.after === undefined ? null : validateId(options.after, "after", this.settings);
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ValidationError("limit", `must be a whole number from 1 to 1000, got ${shown(limit)}`);
    return this.admit(tenant, "fetch", async () => {
      const rows = await this.db.queryAsTenant<{ id: string; format: TextFormat; metadata: Record<string, unknown>; chunks: number; characters: number; updated_at: Date | string }>(tenant.tenantId, sql.listDocuments, [tenant.tenantId, after, limit]);
      return rows.map((r) => ({ id: r.id, format: r.format, metadata: r.metadata, chunks: r.chunks, characters: r.characters, updatedAt: new Date(r.updated_at) }));
    });
  }

  private validateDocuments(documents: unknown, tenantId: string): { id: string; text: string; format: TextFormat; metadata: Record<string, unknown> }[] {
    if (!Array.isArray(documents) || documents.length === 0) throw new ValidationError("documents", "must be a non-empty array of documents");
    if (documents.length > TEXT_LIMITS.documentsPerCall) throw new ValidationError("documents", `holds ${documents.length} documents; at most ${TEXT_LIMITS.documentsPerCall} per call`);
    const seen = new Set<string>();
    return documents.map((d: unknown, i) => {
      const at = `documents[${i}]`;
      if (typeof d !== "object" || d === null || Array.isArray(d)) throw new ValidationError(at, "must be an object with id and text");
      const { id, text, format = "text", metadata } = d as Record<string, unknown>;
      const validId = validateId(id, `${at}.id`, this.settings);
      if (seen.has(validId)) throw new ValidationError(`${at}.id`, "appears twice in this call");
      seen.add(validId);
      if (typeof text !== "string" || text.trim().length === 0) throw new ValidationError(`${at}.text`, "must be a non-empty string");
      if (text.length > TEXT_LIMITS.charactersPerDocument) throw new ValidationError(`${at}.text`, `must be at most ${TEXT_LIMITS.charactersPerDocument} characters (split the document)`);
      assertStorableText(text, `${at}.text`);
      if (!TEXT_FORMATS.includes(format as TextFormat)) throw new ValidationError(`${at}.format`, `must be one of ${TEXT_FORMATS.join(", ")}, got ${shown(format)}`);
      return { id: validId, text, format: format as TextFormat, metadata: validateMetadata(metadata, tenantId, `${at}.metadata`, this.settings) };
    });
  }

  private admit<T>(tenant: Tenant, operation: "upsert" | "query" | "delete" | "fetch", fn: (admission?: QueryAdmission) => Promise<T>): Promise<T> {
    return this.gate ? this.gate.run(tenant, operation, fn) : fn();
  }
}
