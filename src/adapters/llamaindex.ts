import type { BaseNode } from "@llamaindex/core/schema";
import {
  BaseVectorStore,
  metadataDictToNode,
  nodeToMetadata,
  VectorStoreQueryMode,
  type MetadataFilter,
  type MetadataFilters,
  type VectorStoreBaseParams,
  type VectorStoreQuery,
  type VectorStoreQueryResult,
} from "@llamaindex/core/vector-store";
import { tenantCalls, type BulkheadFilter, type BulkheadTarget, type TenantCalls } from "./tenant-target.js";

export type { BulkheadFilter, BulkheadTarget } from "./tenant-target.js";

/**
 * Nodes per write. `VectorStoreIndex` hands a store every node of an ingestion at once; Bulkhead
 * takes at most `BULKHEAD_MAX_BATCH_SIZE` (1,000) per call and an HTTP body of bounded size, and a
 * node with a 1,536-d embedding is ~35 KB as JSON.
 */
const NODES_PER_WRITE = 100;

/** LlamaIndex's operators as Bulkhead's. `any` and `contains` are `$in` / `$eq`, which on a list field match when the list holds the value. */
const OPERATORS: Partial<Record<MetadataFilter["operator"], string>> = {
  "==": "$eq",
  "!=": "$ne",
  ">": "$gt",
  ">=": "$gte",
  "<": "$lt",
  "<=": "$lte",
  in: "$in",
  nin: "$nin",
  any: "$in",
  contains: "$eq",
};

/**
 * LlamaIndex's `MetadataFilters` as a Bulkhead filter. `all` becomes one `$eq` per value, ANDed.
 * `text_match` and `is_empty` have no equivalent and are refused: a filter is never widened.
 */
export function toBulkheadFilter(filters: MetadataFilters | undefined): BulkheadFilter | undefined {
  const parts = (filters?.filters ?? []).map((f): BulkheadFilter => {
    if (f.operator === "all") {
      if (!Array.isArray(f.value) || f.value.length === 0) throw new TypeError(`the "all" filter on "${f.key}" needs a non-empty list of values`);
      return { $and: (f.value as (string | number)[]).map((v) => ({ [f.key]: { $eq: v } })) };
    }
    const op = OPERATORS[f.operator];
    if (!op) throw new TypeError(`the LlamaIndex filter operator "${f.operator}" (on "${f.key}") has no Bulkhead equivalent; refused rather than widened`);
    return { [f.key]: { [op]: f.value } };
  });
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0] : { [filters?.condition === "or" ? "$or" : "$and"]: parts };
}

/**
 * LlamaIndex.TS's vector store, bound to one tenant of Bulkhead: nodes (with their embeddings,
 * made by LlamaIndex) are stored as that tenant's vectors — through the library
 * (`{ bulkhead, tenantId }`) or over HTTP with the tenant's key (`{ client }`) — so every write,
 * search and delete passes the tenant's isolation, quotas and metering. It stores text: each node
 * is kept whole in its metadata (`_node_content`, as LlamaIndex's own stores do), beside its own
 * metadata and `ref_doc_id`, the document it came from. `delete(refDocId)` deletes every node of
 * that document — the tenant's own only.
 *
 * @example
 * const store = new BulkheadVectorStore({ bulkhead: bh, tenantId: "acme", embedModel });
 * const index = await VectorStoreIndex.fromDocuments(documents, { storageContext: await storageContextFromDefaults({ vectorStore: store }) });
 * const nodes = await index.asRetriever({ similarityTopK: 4 }).retrieve({ query: "when do ferries leave?" });
 * await index.deleteRefDoc(documents[0].id_);
 */
export class BulkheadVectorStore extends BaseVectorStore<BulkheadTarget> {
  storesText = true;
  private readonly target: BulkheadTarget;
  private readonly tenant: TenantCalls;

  constructor(params: BulkheadTarget & VectorStoreBaseParams) {
    super(params);
    this.target = "client" in params ? { client: params.client } : { bulkhead: params.bulkhead, tenantId: params.tenantId };
    this.tenant = tenantCalls(this.target);
  }

  /** Where this store's tenant is reached: the Bulkhead and tenant id, or the HTTP client. */
  client(): BulkheadTarget {
    return this.target;
  }

  /**
   * Writes the nodes (a node with an id already stored replaces it). Past 100 nodes the writes are
   * several calls, each all or nothing: a refusal midway (a quota) leaves the earlier ones written.
   */
  async add(nodes: BaseNode[]): Promise<string[]> {
    for (let i = 0; i < nodes.length; i += NODES_PER_WRITE) {
      // nodeToMetadata keeps the node whole (text, relationships) in `_node_content`; Bulkhead
      // checks the node's own metadata like any other (strings, numbers, booleans, lists of strings).
      await this.tenant.upsert(nodes.slice(i, i + NODES_PER_WRITE).map((node) => ({ id: node.id_, values: node.getEmbedding(), metadata: nodeToMetadata(node) })));
    }
    return nodes.map((n) => n.id_);
  }

  /** Deletes every node of the source document `refDocId` (a filter on `ref_doc_id`): the tenant's own, never another's. */
  async delete(refDocId: string): Promise<void> {
    await this.tenant.delete({ filter: { ref_doc_id: { $eq: refDocId } } });
  }

  /**
   * The tenant's nearest nodes to `queryEmbedding`, narrowed by `filters` and by `docIds` (source
   * documents). Only the default (dense) mode: the others are refused, not answered differently.
   */
  async query(query: VectorStoreQuery): Promise<VectorStoreQueryResult> {
    if ((query.mode ?? VectorStoreQueryMode.DEFAULT) !== VectorStoreQueryMode.DEFAULT) throw new TypeError(`BulkheadVectorStore answers the default (dense) query mode only, not "${query.mode}"`);
    if (!query.queryEmbedding) throw new TypeError("BulkheadVectorStore.query needs a queryEmbedding");
    const filters = toBulkheadFilter(query.filters);
    const docs = query.docIds?.length ? { ref_doc_id: { $in: query.docIds } } : undefined;
    const filter = filters && docs ? { $and: [filters, docs] } : (filters ?? docs);
    const matches = await this.tenant.query(query.queryEmbedding, query.similarityTopK, filter);
    return {
      ids: matches.map((m) => m.id),
      similarities: matches.map((m) => m.score),
      // A vector written without LlamaIndex (no `_node_content`) comes back as a text node without text.
      nodes: matches.map((m) => ("_node_content" in m.metadata ? metadataDictToNode(m.metadata) : metadataDictToNode({}, { fallback: { id_: m.id, text: "", metadata: m.metadata } }))),
    };
  }
}
