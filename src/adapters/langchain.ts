import { randomUUID } from "node:crypto";
import { Document, type DocumentInterface } from "@langchain/core/documents";
import type { EmbeddingsInterface } from "@langchain/core/embeddings";
import { VectorStore } from "@langchain/core/vectorstores";
import { tenantCalls, type BulkheadFilter, type BulkheadTarget, type TenantCalls } from "./tenant-target.js";

export type { BulkheadFilter, BulkheadTarget } from "./tenant-target.js";

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
  private readonly tenant: TenantCalls;

  constructor(embeddings: EmbeddingsInterface, target: BulkheadTarget) {
    super(embeddings, target);
    this.tenant = tenantCalls(target);
  }

  _vectorstoreType(): string {
    return "bulkhead";
  }

  async addVectors(vectors: number[][], documents: DocumentInterface[], options: { ids?: string[] } = {}): Promise<string[]> {
    if (vectors.length !== documents.length) throw new Error(`addVectors got ${vectors.length} vectors for ${documents.length} documents`);
    const ids = documents.map((d, i) => options.ids?.[i] ?? d.id ?? randomUUID());
    const records = documents.map((d, i) => ({ id: ids[i]!, values: vectors[i]!, metadata: { ...d.metadata, [PAGE_CONTENT]: d.pageContent } }));
    await this.tenant.upsert(records);
    return ids;
  }

  async addDocuments(documents: DocumentInterface[], options: { ids?: string[] } = {}): Promise<string[]> {
    return this.addVectors(await this.embeddings.embedDocuments(documents.map((d) => d.pageContent)), documents, options);
  }

  async similaritySearchVectorWithScore(query: number[], k: number, filter?: BulkheadFilter): Promise<[DocumentInterface, number][]> {
    const matches = await this.tenant.query(query, k, filter);
    return matches.map((m) => {
      const { [PAGE_CONTENT]: pageContent, ...metadata } = m.metadata;
      return [new Document({ id: m.id, pageContent: typeof pageContent === "string" ? pageContent : "", metadata }), m.score];
    });
  }

  override async delete(params: { ids?: string[] } = {}): Promise<void> {
    if (!params.ids?.length) throw new Error("BulkheadVectorStore.delete needs { ids }: a tenant's documents are deleted by id");
    await this.tenant.delete(params.ids);
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
