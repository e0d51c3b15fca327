import { randomUUID } from "node:crypto";
import { Document, type DocumentInterface } from "@langchain/core/documents";
import type { EmbeddingsInterface } from "@langchain/core/embeddings";
import { VectorStore } from "@langchain/core/vectorstores";
import type { Bulkhead } from "../bulkhead.js";
import type { BulkheadClient } from "../client/index.js";

/** A metadata filter as Bulkhead takes it: `{ field: value }`, `$eq`, `$in`, `$gt`… `$and`, `$or`. */
export type BulkheadFilter = Record<string, unknown>;

/** Where the store's tenant lives: a Bulkhead in this process and a tenant id, or a client with the tenant's key. */
export type BulkheadTarget = { bulkhead: Bulkhead; tenantId: string } | { client: BulkheadClient };

/** The metadata key a document's text is kept under (metadata values are strings, numbers, booleans or lists of strings). */
const PAGE_CONTENT = "page_content";

/**
 * LangChain.js's `VectorStore`, bound to one tenant of Bulkhead: documents are embedded by the
 * LangChain `Embeddings` you give it and stored as that tenant's vectors — through the library
 * (`{ bulkhead, tenantId }`) or over HTTP with the tenant's key (`{ client }`) — so every write,
 * search and delete passes the tenant's isolation, quotas and metering like any other. A store
 * cannot be pointed at another tenant once made, and `asRetriever()` gives LangChain's retriever.
 *
 * @example
 * const store = new BulkheadVectorStore(embeddings, { bulkhead: bh, tenantId: "acme" });
 * await store.addDocuments([new Document({ pageContent: "Ferries leave at noon.", metadata: { source: "faq" } })]);
 * const docs = await store.asRetriever(4).invoke("when do ferries leave?");
 */
export class BulkheadVectorStore extends VectorStore {
  declare FilterType: BulkheadFilter;
  private readonly target: BulkheadTarget;

  constructor(embeddings: EmbeddingsInterface, target: BulkheadTarget) {
    super(embeddings, target);
    this.target = target;
  }

  _vectorstoreType(): string {
    return "bulkhead";
  }

  async addVectors(vectors: number[][], documents: DocumentInterface[], options: { ids?: string[] } = {}): Promise<string[]> {
    if (vectors.length !== documents.length) throw new Error(`addVectors got ${vectors.length} vectors for ${documents.length} documents`);
    const ids = documents.map((d, i) => options.ids?.[i] ?? d.id ?? randomUUID());
    const records = documents.map((d, i) => ({ id: ids[i]!, values: vectors[i]!, metadata: { ...d.metadata, [PAGE_CONTENT]: d.pageContent } }));
    if ("client" in this.target) await this.target.client.upsert(records);
    else await this.target.bulkhead.dataManager.upsertDocuments(this.target.tenantId, records);
    return ids;
  }

  async addDocuments(documents: DocumentInterface[], options: { ids?: string[] } = {}): Promise<string[]> {
    return this.addVectors(await this.embeddings.embedDocuments(documents.map((d) => d.pageContent)), documents, options);
  }

  async similaritySearchVectorWithScore(query: number[], k: number, filter?: BulkheadFilter): Promise<[DocumentInterface, number][]> {
    const options = { topK: k, ...(filter && Object.keys(filter).length > 0 ? { filter } : {}) };
    const { matches } = "client" in this.target ? await this.target.client.query(query, options) : await this.target.bulkhead.dataManager.queryDocuments(this.target.tenantId, query, options);
    return matches.map((m) => {
      const { [PAGE_CONTENT]: pageContent, ...metadata } = m.metadata;
      return [new Document({ id: m.id, pageContent: typeof pageContent === "string" ? pageContent : "", metadata }), m.score];
    });
  }

  override async delete(params: { ids?: string[] } = {}): Promise<void> {
    if (!params.ids?.length) throw new Error("BulkheadVectorStore.delete needs { ids }: a tenant's documents are deleted by id");
    if ("client" in this.target) await this.target.client.deleteDocuments(params.ids);
    else await this.target.bulkhead.dataManager.deleteDocuments(this.target.tenantId, params.ids);
  }

  static override async fromDocuments(documents: DocumentInterface[], embeddings: EmbeddingsInterface, target: BulkheadTarget): Promise<BulkheadVectorStore> {
    const store = new BulkheadVectorStore(embeddings, target);
    await store.addDocuments(documents);
    return store;
  }

  static override async fromTexts(texts: string[], metadatas: object[] | object, embeddings: EmbeddingsInterface, target: BulkheadTarget): Promise<BulkheadVectorStore> {
    const docs = texts.map((text, i) => new Document({ pageContent: text, metadata: (Array.isArray(metadatas) ? metadatas[i] : metadatas) ?? {} }));
    return BulkheadVectorStore.fromDocuments(docs, embeddings, target);
  }
}
