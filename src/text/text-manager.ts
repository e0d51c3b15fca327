import { textSettingsOf, type BulkheadConfig, type TextTierSettings } from "../config.js";
import type { Row, Statement, TenantDb } from "../db/db.js";
import { ConcurrencyLimitError, IsolationViolationError, NotConfiguredError, ProviderError, QuotaExceededError, shown, ValidationError } from "../errors.js";
import type { UsageMeter } from "../costs/cost-engine.js";
import { countTokens, tokenizer } from "../costs/token-counter.js";
import { validateId, validateIds, validateMetadata, validateTopK, type Limits } from "../data/validation.js";
import type { OperationGate } from "../limits/performance-gate.js";
import type { QueryAdmission } from "../limits/daily-query-quota.js";
import { assertStorableText } from "../storable-text.js";
import { catalogueSql } from "../stores/catalogue-sql.js";
import { compileFilter, type MetadataFilter } from "../stores/filter.js";
import type { TenantRegistry } from "../tenancy/registry.js";
import type { Tenant } from "../tenancy/tenant.js";
import { chunkText, TEXT_FORMATS, type Chunk, type TextFormat } from "./chunker.js";
import type { Embedder } from "./embedder.js";
import { answerMessages, citationsOf, type Citation, type TextMatch } from "./answer-prompt.js";
import type { ChatMessage, ChatModel, ChatUsage, Completion } from "./chat-model.js";
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
  /** How much each retriever's ranking counts in the fusion (default 1 each; 0 leaves one out). */
  weights?: { fulltext?: number; vector?: number };
}

export type { TextMatch };

export interface TextSearchResult {
  matches: TextMatch[];
  /** How this deployment searches: full text alone until an embedder is configured, then both, fused. */
  mode: "fulltext" | "hybrid";
}

export interface StoredTextDocument {
  id: string;
  format: TextFormat;
  metadata: Record<string, unknown>;
  chunks: number;
  characters: number;
  updatedAt: Date;
}

type ChunkRow = Row & { tenant_id: string; document_id: string; position: number; section: string | null; body: string; metadata: Record<string, unknown>; score: number };

const toMatch = (r: ChunkRow, score: number, retrievers: TextMatch["retrievers"]): TextMatch => ({
  documentId: r.document_id,
  position: r.position,
  section: r.section,
  text: r.body,
  metadata: r.metadata,
  score,
  retrievers,
});

/** Reciprocal rank fusion's constant (Cormack et al.): a rank's weight is 1 / (60 + rank). */
const RRF_K = 60;

function fusionWeights(weights: TextSearchOptions["weights"]): { fulltext: number; vector: number } {
  if (weights === undefined) return { fulltext: 1, vector: 1 };
  if (typeof weights !== "object" || weights === null || Array.isArray(weights)) throw new ValidationError("weights", "must be an object like { fulltext: 1, vector: 1 }");
  const out = { fulltext: 1, vector: 1 };
  for (const [key, value] of Object.entries(weights)) {
    if (key !== "fulltext" && key !== "vector") throw new ValidationError(`weights.${key}`, "unknown retriever (fulltext, vector)");
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 100) throw new ValidationError(`weights.${key}`, `must be a number from 0 to 100, got ${shown(value)}`);
    out[key] = value;
  }
  if (out.fulltext === 0 && out.vector === 0) throw new ValidationError("weights", "cannot leave out every retriever");
  return out;
}

/**
 * Reciprocal rank fusion: each chunk scores the sum over the retrievers that found it of
 * weight / (60 + its rank there), so what both rank high comes first, and neither retriever's raw
 * scores (ts_rank and cosine similarity, on different scales) need to be comparable.
 */
function fuse(ranked: { fulltext: ChunkRow[]; vector: ChunkRow[] }, weights: { fulltext: number; vector: number }, topK: number): TextMatch[] {
  const byChunk = new Map<string, { row: ChunkRow; score: number; retrievers: TextMatch["retrievers"] }>();
  for (const name of ["fulltext", "vector"] as const) {
    ranked[name].forEach((row, i) => {
      const key = JSON.stringify([row.document_id, row.position]);
      const entry = byChunk.get(key) ?? { row, score: 0, retrievers: [] };
      entry.score += weights[name] / (RRF_K + i + 1);
      entry.retrievers.push(name);
      byChunk.set(key, entry);
    });
  }
  return [...byChunk.values()]
    .sort((a, b) => b.score - a.score || a.row.document_id.localeCompare(b.row.document_id) || a.row.position - b.row.position)
    .slice(0, topK)
    .map((e) => toMatch(e.row, e.score, e.retrievers));
}

/** An answer with the sources it was given and the ones it cited (by number, document and position). */
export interface TextAnswer {
  answer: string;
  citations: Citation[];
  sources: TextMatch[];
  model: string;
  usage: ChatUsage;
}

/** What `answerStream` yields as it goes. */
export type AnswerEvent = { type: "sources"; sources: TextMatch[] } | { type: "delta"; text: string };

/** Bounds of the text path's input, each refused with a 400 naming its field. */
export const TEXT_LIMITS = Object.freeze({ documentsPerCall: 100, charactersPerDocument: 1_000_000, chunksPerDocument: 10_000, queryCharacters: 1_000, answerSources: 20 });

/** One tenant's answers being written at once, per process. */
const ANSWERS_IN_FLIGHT = 2;

/** Most tokens an answer may write (the chat model's max_tokens), counted against the budget before the call. */
export const ANSWER_OUTPUT_TOKENS = 1_024;

/** Chunks per insert statement (~1 MB of JSON at the default chunk size). */
const CHUNKS_PER_STATEMENT = 500;

export type TextSettings = Limits & Pick<BulkheadConfig, "chunkTokens" | "chunkOverlapTokens" | "textSearchConfig" | "tierText" | "embeddingsModel" | "dimension">;

/**
 * Text documents of a tenant: chunked, stored and searched inside its isolation boundary. Every
 * call resolves the tenant, validates everything before anything is written, passes the tenant's
 * performance gate (a write as an upsert, a search as a query: rate limit, concurrency, daily
 * quota) and runs in the tenant's own proved context on the data plane, under forced RLS; every
 * row a search returns is checked to be the tenant's before it is answered. Chunk sizes and the
 * embedding model are the tenant's tier's (`BULKHEAD_TIER_TEXT`), read at each call.
 */
export class TenantTextManager {
  constructor(
    private readonly registry: TenantRegistry,
    private readonly db: TenantDb,
    private readonly settings: TextSettings,
    private readonly gate?: OperationGate,
    private readonly meter?: UsageMeter,
    /** Vectors for chunks and queries; without one, search is full text alone. */
    private readonly embedder?: Embedder,
    /** The model answers are written by; without one, `answer` is refused. */
    private readonly chat?: ChatModel,
  ) {}

  /** Answers being written per tenant in this process. */
  private readonly answering = new Map<string, number>();

  /** Whether this deployment answers questions (a chat model is configured). */
  get answers(): boolean {
    return this.chat !== undefined;
  }

  /** How searches run in this deployment. */
  get mode(): TextSearchResult["mode"] {
    return this.embedder ? "hybrid" : "fulltext";
  }

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
    const tier = textSettingsOf(this.settings, tenant.tier);
    const enc = await tokenizer("cl100k_base");
    const chunked: { doc: (typeof valid)[number]; chunks: Chunk[] }[] = [];
    for (const [i, doc] of valid.entries()) {
      const chunks = await chunkText(doc.text, doc.format, { maxTokens: tier.chunkTokens, overlapTokens: tier.chunkOverlapTokens }, enc);
      // A document of markup or whitespace alone would be stored with no chunk, outside every quota.
      if (chunks.length === 0) throw new ValidationError(`documents[${i}].text`, "holds no text to store (only markup or whitespace)");
      if (chunks.length > TEXT_LIMITS.chunksPerDocument) {
        throw new ValidationError(`documents[${i}].text`, `makes ${chunks.length} chunks of ${tier.chunkTokens} tokens; at most ${TEXT_LIMITS.chunksPerDocument} per document`);
      }
      chunked.push({ doc, chunks });
    }
    const total = chunked.reduce((n, c) => n + c.chunks.length, 0);
    // Vectors first, outside any transaction (a provider may take seconds): a failure writes nothing.
    const embedded = await this.embedChunks(tenant.tenantId, tier, chunked.flatMap(({ chunks }) => chunks));
    return this.admit(tenant, "upsert", () =>
      this.db.withTenant(tenant.tenantId, async (tx) => {
        // One writer per tenant at a time (shared with its vector writes): the quota sees every chunk.
        await tx.query(catalogueSql.lockTenantWrites, [tenant.tenantId]);
        const [{ n: before }] = (await tx.query<{ n: string }>(sql.chunksStored, [tenant.tenantId])) as [{ n: string }];
        const gone = await tx.query<{ id: string; chunks: number }>(sql.deleteDocuments, [tenant.tenantId, JSON.stringify(valid.map((d) => d.id))]);
        const removed = gone.reduce((n, g) => n + g.chunks, 0);
        const docs = chunked.map(({ doc, chunks }) => ({ id: doc.id, format: doc.format, metadata: doc.metadata, chunks: chunks.length, characters: doc.text.length }));
        await tx.query(sql.insertDocuments, [tenant.tenantId, JSON.stringify(docs)]);
        let k = 0;
        const rows = chunked.flatMap(({ doc, chunks }) =>
          chunks.map((c) => ({ document_id: doc.id, position: c.position, section: c.section, body: c.text, metadata: doc.metadata, embedding: embedded ? JSON.stringify(embedded.vectors[k++]) : null })),
        );
        for (let i = 0; i < rows.length; i += CHUNKS_PER_STATEMENT) {
          await tx.query(sql.insertChunks, [tenant.tenantId, JSON.stringify(rows.slice(i, i + CHUNKS_PER_STATEMENT)), this.settings.textSearchConfig, embedded?.model ?? null]);
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
   * phrases", OR, -excluded. Counts as a query against the daily quota. With an embedder, the query
   * is embedded with the model of the tenant's tier and compared only with chunks that model
   * embedded: chunks of another model (written before a tier change) are found by full text alone.
   */
  async searchText(tenantId: string, query: string, options: TextSearchOptions = {}): Promise<TextSearchResult> {
    const tenant = await this.registry.resolveActive(tenantId);
    if (typeof query !== "string" || query.trim().length === 0) throw new ValidationError("query", "must be a non-empty string");
    if (query.length > TEXT_LIMITS.queryCharacters) throw new ValidationError("query", `must be at most ${TEXT_LIMITS.queryCharacters} characters`);
    assertStorableText(query, "query");
    const topK = validateTopK(options.topK ?? 10, this.settings);
    if (options.filter !== undefined && (typeof options.filter !== "object" || options.filter === null || Array.isArray(options.filter))) throw new ValidationError("filter", "must be an object");
    const filter = compileFilter(options.filter, 5, "c.metadata");
    const weights = fusionWeights(options.weights);
    if (!this.embedder && weights.fulltext === 0) throw new ValidationError("weights.fulltext", "cannot be 0: no embedder is configured, full text is the only retriever");
    return this.admit(tenant, "query", async (admission?: QueryAdmission) => {
      // Inside the gate, so the tenant's rate and concurrency limits bound its provider calls too;
      // before the database's transaction, which is not held while the provider answers.
      const tier = textSettingsOf(this.settings, tenant.tier);
      const queryVector = this.embedder && weights.vector > 0 ? (await this.embedChunks(tenant.tenantId, tier, [{ text: query, section: null }]))!.vectors[0]! : undefined;
      // Candidates per retriever: more than topK, so the fusion can promote what both found.
      const depth = Math.min(this.settings.maxTopK, Math.max(topK * 2, 20));
      const statements: Statement[] = [];
      const count = admission?.count && { text: catalogueSql.leaseDailyQueries, params: [tenant.tenantId, admission.count.day, admission.count.limit, admission.count.lease] };
      if (count) statements.push(count);
      if (weights.fulltext > 0) statements.push({ text: sql.search(filter.sql), params: [tenant.tenantId, this.settings.textSearchConfig, query, depth, ...filter.params] });
      if (queryVector) statements.push({ text: sql.nearest(filter.sql), params: [tenant.tenantId, JSON.stringify(queryVector), depth, tier.embeddingsModel, ...filter.params] });
      const all = await this.db.pipelineAsTenant(tenant.tenantId, statements, count ? { synchronous_commit: "off" } : undefined).catch((err: { code?: string; message?: string }) => {
        // PostgreSQL's parser of search-box syntax gives up on a query of many operators ("- - - …"):
        // the caller's input, not a failure of the service.
        if ((err.code === "XX000" || err.code === "54000") && /tsquery/i.test(err.message ?? "")) throw new ValidationError("query", "has too many operators for full-text search; use fewer - and OR");
        throw err;
      });
      if (count) {
        const [counted] = all.shift() as { queries: number; granted: number }[];
        admission!.counted(counted!.queries, counted!.granted);
      }
      const fulltext = (weights.fulltext > 0 ? all.shift() : []) as ChunkRow[];
      const vector = (queryVector ? all.shift() : []) as ChunkRow[];
      for (const r of [...fulltext, ...vector]) {
        if (r.tenant_id !== tenant.tenantId || r.metadata.tenant_id !== tenant.tenantId) {
          throw new IsolationViolationError(`text search for tenant "${tenant.tenantId}" returned a chunk of another tenant; the response was withheld`);
        }
      }
      this.meter?.meterVectorQuery(tenant.tenantId);
      this.gate?.observe(tenant, { operation: "query", dailyQueries: admission?.usedToday() });
      const matches = this.embedder ? fuse({ fulltext, vector }, weights, topK) : fulltext.slice(0, topK).map((r) => toMatch(r, Number(r.score), ["fulltext"]));
      return { mode: this.mode, matches };
    });
  }

  /**
   * Answers a question from the tenant's own text: retrieves its best chunks (as `searchText`),
   * asks the chat model with them as numbered sources, and returns the answer with the sources it
   * cited — always chunks of this tenant. Refused with 429 before the model is called when the
   * tenant's LLM tokens of the day (`maxDailyLlmTokens`) are used up; tokens are metered from the
   * provider's usage at the model's prices.
   */
  async answer(tenantId: string, question: string, options: TextSearchOptions = {}): Promise<TextAnswer> {
    const stream = this.answerStream(tenantId, question, options);
    for (;;) {
      const next = await stream.next();
      if (next.done) return next.value;
    }
  }

  /**
   * `answer`, as it is written: first the sources, then the answer in pieces, and at the end (the
   * generator's return value) the whole answer with its citations and usage.
   */
  async *answerStream(tenantId: string, question: string, options: TextSearchOptions = {}): AsyncGenerator<AnswerEvent, TextAnswer> {
    const topK = options.topK ?? 5;
    if (!Number.isInteger(topK) || topK < 1 || topK > TEXT_LIMITS.answerSources) throw new ValidationError("topK", `must be a whole number from 1 to ${TEXT_LIMITS.answerSources} (sources given to the model), got ${shown(options.topK)}`);
    if (!this.chat) throw new NotConfiguredError("no chat model is configured: set BULKHEAD_CHAT_URL (an OpenAI-compatible API) to answer questions; search works without one");
    const tenant = await this.registry.resolveActive(tenantId);
    if (typeof question !== "string" || question.trim().length === 0) throw new ValidationError("question", "must be a non-empty string");
    if (question.length > TEXT_LIMITS.queryCharacters) throw new ValidationError("question", `must be at most ${TEXT_LIMITS.queryCharacters} characters`);
    assertStorableText(question, "question");
    // One tenant's answers in flight in this process: each may spend up to its prompt and output.
    const inFlight = this.answering.get(tenant.tenantId) ?? 0;
    if (inFlight >= ANSWERS_IN_FLIGHT) throw new ConcurrencyLimitError(tenant.tenantId, ANSWERS_IN_FLIGHT, "answers being written");
    this.answering.set(tenant.tenantId, inFlight + 1);
    try {
      const used = (await this.meter?.llmTokensToday(tenant.tenantId)) ?? 0;
      const refuse = (needed: number) =>
        new QuotaExceededError("maxDailyLlmTokens", tenant.quota.maxDailyLlmTokens, used, `tenant "${tenant.tenantId}" used ${used} of its ${tenant.quota.maxDailyLlmTokens} LLM tokens today (UTC)${needed > 0 ? `; this answer needs about ${needed} more` : ""}; answering resumes tomorrow`);
      if (used >= tenant.quota.maxDailyLlmTokens) throw refuse(0);
      const { matches: sources } = await this.searchText(tenant.tenantId, question, { topK, filter: options.filter, weights: options.weights });
      const messages = answerMessages(question, sources);
      // The prompt is known before the call: an answer that cannot fit the day's budget is refused
      // before the provider is paid (its output is bounded by the model's max_tokens).
      const prompt = (await countTokens(messages.map((m) => m.content).join("\n"), "o200k_base")) + ANSWER_OUTPUT_TOKENS;
      if (used + prompt > tenant.quota.maxDailyLlmTokens) throw refuse(prompt);
      yield { type: "sources", sources };
      return yield* this.write(tenant.tenantId, messages, sources);
    } finally {
      const left = (this.answering.get(tenant.tenantId) ?? 1) - 1;
      if (left > 0) this.answering.set(tenant.tenantId, left);
      else this.answering.delete(tenant.tenantId);
    }
  }

  /** The model writes the answer; its usage is metered as the provider reports it. */
  private async *write(tenantId: string, messages: ChatMessage[], sources: TextMatch[]): AsyncGenerator<AnswerEvent, TextAnswer> {
    const generation = this.chat!.stream(messages);
    let completion: Completion;
    for (;;) {
      const next = await generation.next();
      if (next.done) {
        completion = next.value;
        break;
      }
      yield { type: "delta", text: next.value };
    }
    this.meter?.meterCompletion(tenantId, completion.model, completion.usage.inputTokens, completion.usage.outputTokens, completion.usage.estimated);
    return { answer: completion.text, citations: citationsOf(completion.text, sources), sources, model: completion.model, usage: completion.usage };
  }

  /**
   * Vectors of chunks (with their section's headings, which give them context) by the tier's model,
   * metered to the tenant; undefined without an embedder.
   */
  private async embedChunks(tenantId: string, tier: TextTierSettings, chunks: readonly { text: string; section: string | null }[]): Promise<{ vectors: number[][]; model: string } | undefined> {
    if (!this.embedder || chunks.length === 0) return undefined;
    const model = tier.embeddingsModel;
    const texts = chunks.map((c) => (c.section && !c.text.startsWith(c.section) ? `${c.section}\n\n${c.text}` : c.text));
    const out = await this.embedder.embed(texts, { model, dimension: tier.embeddingsDimension });
    // Metered first: the provider was paid whatever the check below finds.
    this.meter?.meterEmbedding(tenantId, out.tokens, out.model, out.estimated);
    // An embedder that ignores the model it is asked for (one written before tiers had models)
    // would file one model's vectors under another's name, to be compared with the wrong ones.
    if (out.model !== model) throw new ProviderError("refused", `the embedder answered with the model ${out.model} when ${model} was asked for; nothing was written`);
    return { vectors: out.vectors, model };
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

  /**
   * Every document checked before anything is written, the first problem named with its position:
   * `ingestDocuments` checks its call, a background job all of its documents before its first step.
   */
  validateDocuments(documents: unknown, tenantId: string, most: number = TEXT_LIMITS.documentsPerCall): { id: string; text: string; format: TextFormat; metadata: Record<string, unknown> }[] {
    if (!Array.isArray(documents) || documents.length === 0) throw new ValidationError("documents", "must be a non-empty array of documents");
    if (documents.length > most) throw new ValidationError("documents", `holds ${documents.length} documents; at most ${most} per ${most === TEXT_LIMITS.documentsPerCall ? "call" : "job"}`);
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
