import { Document } from "@langchain/core/documents";
import { Embeddings } from "@langchain/core/embeddings";
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { BulkheadVectorStore } from "../src/adapters/langchain.js";
import type { Bulkhead } from "../src/bulkhead.js";
import { BulkheadClient } from "../src/client/index.js";
import { TenantTier } from "../src/config.js";
import { buildServer } from "../src/server/app.js";
import { BACKENDS, dropTestSchemas } from "./backends.js";
import { UNLIMITED } from "./live-traffic.js";
import { OpenAIStandin } from "./openai-standin.js";

afterAll(dropTestSchemas);

/** LangChain's own Embeddings base class, with the stand-in's deterministic word-hashing vectors. */
class WordEmbeddings extends Embeddings {
  constructor() {
    super({});
  }
  async embedDocuments(texts: string[]): Promise<number[][]> {
    return texts.map((t) => OpenAIStandin.vector(t, 16));
  }
  async embedQuery(text: string): Promise<number[]> {
    return OpenAIStandin.vector(text, 16);
  }
}

for (const backend of BACKENDS) {
  describe(`${backend.name}: LangChain.js VectorStore (the real @langchain/core)`, () => {
    let bh: Bulkhead;
    let app: FastifyInstance | undefined;
    afterEach(async () => {
      await app?.close();
      app = undefined;
      await bh?.close();
    });

    it("adds, searches (with filters and scores), retrieves and deletes one tenant's documents — through the library and over HTTP with a tenant key — never another's", async () => {
      ({ bulkhead: bh } = await backend.open({ config: { dimension: 16 } }));
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNLIMITED });
      await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO, { quota: UNLIMITED });
      const embeddings = new WordEmbeddings();
      const a = await BulkheadVectorStore.fromTexts(["ferries leave at noon", "trains leave at dawn", "ferries are blue"], [{ kind: "sea" }, { kind: "land" }, { kind: "sea" }], embeddings, { bulkhead: bh, tenantId: "tenant-a" });

      app = await buildServer(bh, { logDestination: { write: () => true } as never });
      const baseUrl = await app.listen({ host: "127.0.0.1", port: 0 });
      const client = new BulkheadClient({ baseUrl, key: (await bh.keys.createKey("tenant", { tenantId: "tenant-b" }, "test")).key });
      const b = new BulkheadVectorStore(embeddings, { client });
      const [bId] = await b.addDocuments([new Document({ pageContent: "ferries of tenant b are secret", metadata: { kind: "sea" } })]);

      const found = await a.similaritySearchWithScore("when do ferries leave", 2);
      expect(found).toHaveLength(2);
      expect(found[0]![0].pageContent).toBe("ferries leave at noon");
      expect(found[0]![1]).toBeGreaterThan(found[1]![1]);
      expect(found[0]![0].metadata).toMatchObject({ kind: "sea", tenant_id: "tenant-a" });
      expect((await a.similaritySearch("leave", 5, { kind: "land" })).map((d) => d.pageContent)).toEqual(["trains leave at dawn"]);

      // LangChain's retriever (a Runnable) over each tenant's store.
      const fromA = await a.asRetriever(10).invoke("ferries secret");
      const fromB = await b.asRetriever(10).invoke("ferries leave at noon");
      expect(fromA.map((d) => d.pageContent)).not.toContain("ferries of tenant b are secret");
      expect(fromB.map((d) => d.pageContent)).toEqual(["ferries of tenant b are secret"]);

      // Deleting by B's id from A's store deletes nothing of B's.
      await a.delete({ ids: [bId!] });
      expect((await b.similaritySearch("secret", 1)).map((d) => d.id)).toEqual([bId]);
      await b.delete({ ids: [bId!] });
      expect(await b.similaritySearch("secret", 1)).toEqual([]);
    });
  });
}
