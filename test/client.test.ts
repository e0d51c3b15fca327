import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { BulkheadClient, BulkheadHttpError, CLIENT_ROUTES } from "../src/client/index.js";
import { countTokens } from "../src/costs/token-counter.js";
import { buildServer } from "../src/server/app.js";
import { OpenAIChatModel } from "../src/text/chat-model.js";
import { BACKENDS, dropTestSchemas } from "./backends.js";
import { OpenAIStandin } from "./openai-standin.js";

afterAll(dropTestSchemas);

for (const backend of BACKENDS) {
  describe(`${backend.name}: the typed HTTP client (bulkhead/client)`, () => {
    let bh: Bulkhead;
    let app: FastifyInstance;
    let standin: OpenAIStandin;
    afterEach(async () => {
      await app?.close();
      await bh?.close();
      await standin?.close();
    });

    it("calls exactly the routes /openapi.json documents, and works end to end for admin and tenant keys without crossing tenants", async () => {
      standin = await new OpenAIStandin(8).start();
      const chat = new OpenAIChatModel({ baseUrl: standin.url, model: "gpt-4o-mini", countTokens: (t) => countTokens(t) });
      ({ bulkhead: bh } = await backend.open({ config: { dimension: 8 }, chat }));
      app = await buildServer(bh, { logDestination: { write: () => true } as never });
      const baseUrl = await app.listen({ host: "127.0.0.1", port: 0 });
      const adminKey = (await bh.keys.createKey("admin", { name: "test" }, "test")).key;
      const admin = new BulkheadClient({ baseUrl, key: adminKey });

      // Every client route is documented, and every documented tenant and admin route has a client method.
      const doc = (await (await fetch(`${baseUrl}/openapi.json`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as { paths: Record<string, Record<string, unknown>> };
      const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
      expect(documented.filter((r) => / \/(v1|admin)\//.test(r) && !r.startsWith("HEAD ")).sort()).toEqual([...CLIENT_ROUTES].sort());

      await admin.admin.registerTenant({ tenantId: "tenant-a", name: "A", tier: "pro" });
      await admin.admin.registerTenant({ tenantId: "tenant-b", name: "B", tier: "pro" });
      const a = new BulkheadClient({ baseUrl, key: (await admin.admin.createTenantKey("tenant-a")).key });
      const b = new BulkheadClient({ baseUrl, key: (await admin.admin.createTenantKey("tenant-b")).key });

      expect(await a.ingestText([{ id: "ferry", text: "The ferry leaves at noon from pier four." }])).toEqual({ documents: 1, chunks: 1, replaced: 0 });
      expect(await b.ingestText([{ id: "ferry", text: "B's ferry is a secret." }])).toMatchObject({ documents: 1 });
      expect((await a.search("ferry")).matches.map((m) => m.text)).toEqual(["The ferry leaves at noon from pier four."]);
      expect((await b.search("pier noon")).matches).toEqual([]);
      expect((await b.listText()).map((d) => d.id)).toEqual(["ferry"]);
      await a.upsert([{ id: "v1", values: [1, 0, 0, 0, 0, 0, 0, 0] }]);
      expect((await b.fetchDocuments(["v1"])).documents).toEqual([]);

      // Delete by filter: only the caller's matches; an empty filter, or ids and a filter at once, is a 400 naming the field.
      await a.upsert([{ id: "v2", values: [0, 1, 0, 0, 0, 0, 0, 0], metadata: { source: "s" } }]);
      await b.upsert([{ id: "v2", values: [0, 1, 0, 0, 0, 0, 0, 0], metadata: { source: "s" } }]);
      expect(await a.deleteDocuments({ filter: {} }).catch((e) => e)).toMatchObject({ status: 400, field: "filter" });
      expect(await a.call("POST /v1/documents/delete", { body: { ids: ["v2"], filter: { source: "s" } } }).catch((e) => e)).toMatchObject({ status: 400, field: "ids" });
      expect(await a.call("POST /v1/documents/delete", { body: {} }).catch((e) => e)).toMatchObject({ status: 400, field: "ids" });
      expect(await b.deleteDocuments({ filter: { source: "s" } })).toMatchObject({ deleted: 1 });
      expect((await a.fetchDocuments(["v2"])).documents.map((d) => d.id)).toEqual(["v2"]);
      expect(await a.deleteDocuments({ filter: { source: "s" } })).toMatchObject({ deleted: 1 });
      expect((await a.fetchDocuments(["v1", "v2"])).documents.map((d) => d.id)).toEqual(["v1"]);

      const events: string[] = [];
      const stream = a.answerStream("When does the ferry leave?");
      let done;
      for (let next = await stream.next(); ; next = await stream.next()) {
        if (next.done) {
          done = next.value;
          break;
        }
        events.push(next.value.type);
      }
      expect(events[0]).toBe("sources");
      expect(events.filter((e) => e === "delta").length).toBeGreaterThan(0);
      expect(done.citations).toEqual([{ source: 1, documentId: "ferry", position: 0 }]);
      expect(done.answer).not.toMatch(/secret/);

      // Refusals arrive typed, with the field a 400 names; a tenant key cannot reach the admin API.
      const bad = await a.ingestText([{ id: "x", text: "a\u0000b" }]).catch((e) => e);
      expect(bad).toBeInstanceOf(BulkheadHttpError);
      expect(bad).toMatchObject({ status: 400, code: "VALIDATION_FAILED", field: "documents[0].text" });
      expect(await a.call("GET /admin/tenants").catch((e) => e)).toMatchObject({ status: 403 });
      await admin.admin.suspend("tenant-a");
      expect(await a.search("ferry").catch((e) => e)).toMatchObject({ status: 403, code: "TENANT_SUSPENDED" });
    });
  });
}
