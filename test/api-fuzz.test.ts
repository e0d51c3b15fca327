import { writeFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { afterAll, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { buildServer } from "../src/server/app.js";
import { countTokens } from "../src/costs/token-counter.js";
import { OpenAIChatModel } from "../src/text/chat-model.js";
import { OpenAIEmbedder } from "../src/text/openai-embedder.js";
import { BACKENDS, dropTestSchemas, vec } from "./backends.js";
import { OpenAIStandin } from "./openai-standin.js";
import { operationsOf, runApiFuzz, summarize, type FuzzContext, type Operation } from "./fuzz-api.js";

afterAll(dropTestSchemas);

// Pin the seed to replay: API_FUZZ_SEED=… npx vitest run test/api-fuzz.test.ts (API_FUZZ_OUT=file.json writes the report).
const SEED = Number(process.env.API_FUZZ_SEED ?? 20261130);
const PER_OPERATION = Number(process.env.API_FUZZ_REQUESTS ?? 210);
/** Rate limits out of the way: the fuzzer must reach validation, not be refused 429 before it. */
const UNLIMITED = { maxDailyQueries: 1_000_000_000, requestsPerSecond: 1_000_000, burst: 1_000_000, maxConcurrent: 1_000 };

for (const backend of BACKENDS) {
  describe(`${backend.name}: API fuzz from /openapi.json`, () => {
    it(`every operation, ${PER_OPERATION} hostile requests each: never a 5xx, every 4xx problem+json with a code`, async () => {
      // With an embedder and a chat model (the local stand-in of their APIs): hybrid search and
      // POST /v1/answer are served and fuzzed too.
      const standin = await new OpenAIStandin(8).start();
      const embedder = new OpenAIEmbedder({ baseUrl: standin.url, apiKey: "sk-standin", model: "text-embedding-3-small", dimension: 8, backoffMs: 5 });
      const chat = new OpenAIChatModel({ baseUrl: standin.url, apiKey: "sk-standin", model: "gpt-4o-mini", backoffMs: 5, countTokens: (t) => countTokens(t, "o200k_base") });
      const { bulkhead: bh } = await backend.open({ config: { dimension: 8, tierQuotas: { free: UNLIMITED, pro: UNLIMITED, enterprise: UNLIMITED } }, embedder, chat });
      let app: FastifyInstance | undefined;
      try {
        app = await buildServer(bh, { logDestination: false });
        const base = await app.listen({ host: "127.0.0.1", port: 0 });
        const ctx = await fuzzContext(bh);
        const doc = (await (await fetch(`${base}/openapi.json`, { headers: { authorization: `Bearer ${ctx.keys.admin}` } })).json()) as Parameters<typeof operationsOf>[0];
        const report = await runApiFuzz(base, doc, ctx, { seed: SEED, perOperation: PER_OPERATION, concurrency: 4, log: process.env.API_FUZZ_VERBOSE ? (l) => console.log(l) : undefined });
        const summary = summarize(`${backend.name} (seed ${SEED})`, report);
        console.log(summary);
        if (process.env.API_FUZZ_OUT) writeFileSync(process.env.API_FUZZ_OUT.replace(".json", `-${backend.name}.json`), JSON.stringify(report, null, 2));
        expect(report.operations).toBeGreaterThan(25);
        expect(Object.keys(report.perOperation)).toContain("POST /v1/answer");
        for (const [op, s] of Object.entries(report.perOperation)) expect(s.requests, op).toBeGreaterThanOrEqual(200);
        expect(report.failures, summary).toEqual([]);
      } finally {
        await app?.close();
        await bh.close();
        await standin.close();
      }
    }, 900_000);
  });
}

/**
 * Keys of every kind and live values for the baselines: a tenant with documents for the /v1 routes,
 * and throwaway tenants and keys for the admin routes that change or destroy them (replaced as they
 * are used up, so that later requests still reach a real target).
 */
async function fuzzContext(bh: Bulkhead): Promise<FuzzContext> {
  const tenantId = "fz-tenant-a";
  await bh.registry.registerTenant(tenantId, "Fuzz tenant A", TenantTier.PRO);
  await bh.dataManager.upsertDocuments(tenantId, [1, 2, 3, 4, 5].map((i) => ({ id: `doc-${i}`, values: vec(i), metadata: { category: i % 2 ? "a" : "b", n: i, tags: ["x"] } })));
  const admin = (await bh.keys.createKey("admin", { name: "fuzz admin" }, "test")).key;
  const tenant = (await bh.keys.createKey("tenant", { tenantId, name: "fuzz rw" }, "test")).key;
  const tenantReadOnly = (await bh.keys.createKey("tenant", { tenantId, scopes: ["read"], name: "fuzz ro" }, "test")).key;
  const gone = await bh.keys.createKey("tenant", { tenantId, name: "fuzz revoked" }, "test");
  await bh.keys.revokeKey(gone.keyId, "test");

  const throwaway = Array.from({ length: 12 }, (_, i) => `fz-tmp-${String(i).padStart(2, "0")}`);
  const tiers = [TenantTier.FREE, TenantTier.PRO, TenantTier.ENTERPRISE];
  const register = async (id: string, i: number) => {
    await bh.registry.registerTenant(id, `Throwaway ${id}`, tiers[i % 3]!);
    await bh.dataManager.upsertDocuments(id, [{ id: "doc-1", values: vec(i + 10) }]);
  };
  for (const [i, id] of throwaway.entries()) await register(id, i);
  const newKey = async () => (await bh.keys.createKey("tenant", { tenantId: throwaway[0]!, name: "fuzz throwaway" }, "test")).keyId;
  const keyIds = await Promise.all(Array.from({ length: 6 }, newKey));

  let turn = 0;
  let fresh = 0;
  return {
    keys: { admin, tenant, tenantReadOnly, revoked: gone.key },
    tenantId,
    dimension: 8,
    pathValue: (_op: Operation, name: string) => (name === "keyId" ? keyIds[turn++ % keyIds.length]! : throwaway[turn++ % throwaway.length]!),
    freshTenantId: () => `fz-reg-${fresh++}`,
    heavy: ["GET /admin/readiness", "GET /admin/costs/report", "GET /metrics"],
    // Erased throwaway tenants come back before the next operation (not after each erasure: erasing is slow, and a DELETE of an erased tenant is a 404 worth sending too).
    async before() {
      for (const [i, id] of throwaway.entries()) {
        const exists = await bh.registry.getTenant(id).then(() => true, () => false);
        if (!exists) await register(id, i);
      }
    },
    async after(op, url) {
      const segment = decodeURIComponent(url.split("?")[0]!.split("/")[3] ?? "");
      if (op.path.startsWith("/admin/keys/{keyId}")) {
        const at = keyIds.indexOf(segment);
        if (at >= 0) keyIds[at] = await newKey(); // revoked or rotated: replace it
      }
    },
  };
}

describe("API fuzz: its checks can fail", () => {
  it("reports a 500 and a 4xx that is not problem+json, each with its exact request", async () => {
    // A deliberately broken service of one operation: NUL in the name is a 500, an unknown field a plain-JSON 400.
    const Fastify = (await import("fastify")).default;
    const broken = Fastify();
    broken.post("/x", async (request, reply) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      if (typeof body.name === "string" && body.name.includes("\u0000")) return reply.status(500).send({ error: "boom" });
      if (Object.keys(body).some((k) => k !== "name")) return reply.status(400).send({ error: "unknown field" });
      return { ok: true };
    });
    const base = await broken.listen({ host: "127.0.0.1", port: 0 });
    try {
      const doc = {
        paths: {
          "/x": { post: { description: "Needs an admin key.", requestBody: { content: { "application/json": { schema: { type: "object", properties: { name: { type: "string" } }, required: ["name"], additionalProperties: false } } } } } },
        },
      };
      const ctx: FuzzContext = { keys: { admin: "a", tenant: "t", tenantReadOnly: "r", revoked: "v" }, tenantId: "t", dimension: 8, pathValue: () => "x", freshTenantId: () => "t" };
      const report = await runApiFuzz(base, doc, ctx, { seed: 3, perOperation: 200 });
      const server = report.failures.find((f) => f.status === 500);
      expect(server, summarize("broken", report)).toBeDefined();
      expect(server!.inputs[0]!.body).toContain("\\u0000");
      expect(report.failures.some((f) => f.status === 400 && f.what.startsWith("4xx not problem+json"))).toBe(true);
    } finally {
      await broken.close();
    }
  });
});
