import type { FastifyInstance } from "fastify";
import { BaseEmbedding, Document, MetadataMode, SentenceSplitter, Settings, storageContextFromDefaults, VectorStoreIndex, VectorStoreQueryMode, type MetadataFilters } from "llamaindex";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BulkheadVectorStore } from "../src/adapters/llamaindex.js";
import type { Bulkhead } from "../src/bulkhead.js";
import { BulkheadClient, BulkheadHttpError } from "../src/client/index.js";
import { TenantTier } from "../src/config.js";
import { ValidationError } from "../src/errors.js";
import { buildServer } from "../src/server/app.js";
import { BACKENDS, dropTestSchemas } from "./backends.js";
import { UNLIMITED } from "./live-traffic.js";
import { OpenAIStandin } from "./openai-standin.js";

afterAll(dropTestSchemas);

const DIM = 64;

/** LlamaIndex's own BaseEmbedding, with the stand-in's deterministic word-hashing vectors (no network). */
class WordEmbedding extends BaseEmbedding {
  constructor() {
    super();
  }
  async getTextEmbedding(text: string): Promise<number[]> {
    return OpenAIStandin.vector(text, DIM);
  }
}

const embedModel = new WordEmbedding();
beforeAll(() => {
  // VectorStoreIndex reads the embedding model from Settings (the stores are given it too).
  Settings.embedModel = embedModel;
});
/**
 * Small chunks, so that one document becomes several nodes. Given to the index as nodes: llamaindex
 * 0.12 bundles a second copy of its Settings into VectorStoreIndex's module, so `Settings.nodeParser`
 * set here would not reach `fromDocuments` (the embedding model is shared through @llamaindex/core).
 */
const splitter = new SentenceSplitter({ chunkSize: 30, chunkOverlap: 0 });

const LONG = [
  "The harbour opens at six in the morning.",
  "Cargo ships dock at the northern quay before noon.",
  "Passenger ferries use the southern piers all day long.",
  "The harbour master inspects every vessel once a month.",
  "Fishing boats return in the late afternoon with their catch.",
  "A lighthouse guards the rocks at the entrance of the bay.",
  "Pilots guide the largest ships through the narrow channel.",
  "Storm warnings close the harbour to small craft in winter.",
].join(" ");

/** The store's nodes, grouped by the document they came from (read through the store itself, as LlamaIndex does). */
async function nodesByDocument(store: BulkheadVectorStore): Promise<Record<string, number>> {
  const { nodes = [] } = await store.query({ queryEmbedding: await embedModel.getTextEmbedding("harbour"), similarityTopK: 100, mode: VectorStoreQueryMode.DEFAULT });
  const counts: Record<string, number> = {};
  for (const node of nodes) counts[node.sourceNode!.nodeId] = (counts[node.sourceNode!.nodeId] ?? 0) + 1;
  return counts;
}

for (const backend of BACKENDS) {
  describe(`${backend.name}: LlamaIndex.TS vector store (the real llamaindex + @llamaindex/core)`, () => {
    let bh: Bulkhead;
    let app: FastifyInstance | undefined;
    afterEach(async () => {
      await app?.close();
      app = undefined;
      await bh?.close();
    });

    it("indexes, retrieves (with filters and scores) and deletes whole source documents for one tenant — through the library and over HTTP with a tenant key — never another's", async () => {
      ({ bulkhead: bh } = await backend.open({ config: { dimension: DIM } }));
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNLIMITED });
      await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO, { quota: UNLIMITED });
      const storeA = new BulkheadVectorStore({ bulkhead: bh, tenantId: "tenant-a", embedModel });
      const indexA = await VectorStoreIndex.init({
        nodes: splitter.getNodesFromDocuments([
          new Document({ id_: "ferry", text: "Ferries leave at noon.", metadata: { kind: "sea" } }),
          new Document({ id_: "train", text: "Trains leave at dawn.", metadata: { kind: "land" } }),
          new Document({ id_: "harbour", text: LONG, metadata: { kind: "sea" } }),
        ]),
        storageContext: await storageContextFromDefaults({ vectorStore: storeA }),
      });

      app = await buildServer(bh, { logDestination: { write: () => true } as never });
      const client = new BulkheadClient({ baseUrl: await app.listen({ host: "127.0.0.1", port: 0 }), key: (await bh.keys.createKey("tenant", { tenantId: "tenant-b" }, "test")).key });
      const storeB = new BulkheadVectorStore({ client, embedModel });
      // B's document has the same id as one of A's.
      const indexB = await VectorStoreIndex.fromDocuments([new Document({ id_: "ferry", text: "Our ferry timetable is a secret.", metadata: { kind: "sea" } })], {
        storageContext: await storageContextFromDefaults({ vectorStore: storeB }),
      });

      const before = await nodesByDocument(storeA);
      expect(before.harbour).toBeGreaterThan(2); // one document, several nodes
      expect(before).toMatchObject({ ferry: 1, train: 1 });

      // Retrieval rebuilds nodes from what the store kept: text, metadata, source document, score.
      const found = await indexA.asRetriever({ similarityTopK: 2 }).retrieve({ query: "when do ferries leave" });
      expect(found[0]!.node.getContent(MetadataMode.NONE)).toBe("Ferries leave at noon.");
      expect(found[0]!.node.metadata).toMatchObject({ kind: "sea", tenant_id: "tenant-a" });
      expect(found[0]!.node.sourceNode?.nodeId).toBe("ferry");
      expect(found[0]!.score).toBeGreaterThan(found[1]!.score!);

      // LlamaIndex filters become Bulkhead filters: ==, in, an "or" of two, docIds.
      const texts = async (filters: MetadataFilters, store = storeA) =>
        (await store.query({ queryEmbedding: await embedModel.getTextEmbedding("leave"), similarityTopK: 10, mode: VectorStoreQueryMode.DEFAULT, filters })).nodes!.map((n) => n.getContent(MetadataMode.NONE)).sort();
      expect(await texts({ filters: [{ key: "kind", operator: "==", value: "land" }] })).toEqual(["Trains leave at dawn."]);
      expect(await texts({ filters: [{ key: "kind", operator: "in", value: ["land"] }, { key: "kind", operator: "==", value: "sea" }], condition: "or" })).toHaveLength(2 + before.harbour!);
      expect((await indexA.asRetriever({ similarityTopK: 10, filters: { filters: [{ key: "kind", operator: "!=", value: "sea" }] } }).retrieve({ query: "leave" })).map((n) => n.node.getContent(MetadataMode.NONE))).toEqual(["Trains leave at dawn."]);
      const onlyTrain = await storeA.query({ queryEmbedding: await embedModel.getTextEmbedding("leave"), similarityTopK: 10, mode: VectorStoreQueryMode.DEFAULT, docIds: ["train"] });
      expect(onlyTrain.ids).toHaveLength(1);
      // What Bulkhead cannot express is refused, never widened; a hostile value is a 400 naming the field, both ways.
      await expect(texts({ filters: [{ key: "kind", operator: "text_match", value: "sea" }] })).rejects.toThrow(/no Bulkhead equivalent/);
      expect(await texts({ filters: [{ key: "kind", operator: "==", value: "sea\u0000" }] }).catch((e) => e)).toMatchObject({ constructor: ValidationError, field: "filter.kind.$eq" });
      const overHttp = await texts({ filters: [{ key: "kind", operator: "==", value: "sea\u0000" }] }, storeB).catch((e) => e);
      expect(overHttp).toBeInstanceOf(BulkheadHttpError);
      expect(overHttp).toMatchObject({ status: 400, field: "filter.kind.$eq" });

      // Each tenant retrieves its own nodes only.
      expect((await indexA.asRetriever({ similarityTopK: 10 }).retrieve({ query: "ferry timetable secret" })).map((n) => n.node.getContent(MetadataMode.NONE))).not.toContain("Our ferry timetable is a secret.");
      expect((await indexB.asRetriever({ similarityTopK: 10 }).retrieve({ query: "ferries leave at noon" })).map((n) => n.node.getContent(MetadataMode.NONE))).toEqual(["Our ferry timetable is a secret."]);

      // delete(refDocId) with A's document ids from B's side — over HTTP and through B's index — removes only B's own.
      await storeB.delete("harbour");
      await indexB.deleteRefDoc("ferry");
      expect(await nodesByDocument(storeB)).toEqual({});
      expect(await nodesByDocument(storeA)).toEqual(before);

      // A's delete removes exactly that document's nodes, all of them, and nothing else.
      // (false: its documents never went into a docstore — it was built from nodes — and LlamaIndex's empty docstore throws on a delete.)
      await indexA.deleteRefDoc("harbour", false);
      const { harbour: _gone, ...rest } = before;
      expect(await nodesByDocument(storeA)).toEqual(rest);
      await storeA.delete("train");
      expect(await nodesByDocument(storeA)).toEqual({ ferry: 1 });
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(1);
    });
  });
}
