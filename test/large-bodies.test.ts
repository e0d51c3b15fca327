import { connect } from "node:net";
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { BodyParserPool, MAX_BODIES_PER_CALLER, OFFLOAD_BYTES } from "../src/server/body-parser-pool.js";
import { buildServer } from "../src/server/app.js";
import { ClosedError, ValidationError } from "../src/errors.js";
import { callAt } from "./http-call.js";
import { BACKENDS, dropTestSchemas, vec } from "./backends.js";

afterAll(dropTestSchemas);

const DIM = 8;
const ROOMY = { maxDocuments: 1_000_000, requestsPerSecond: 10_000, burst: 10_000, maxConcurrent: 64 };
/** A batch of `n` documents whose JSON is well over OFFLOAD_BYTES (long ids make it large at 8 d). */
const batch = (n: number, prefix = "doc") => ({ documents: Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}-${"x".repeat(200)}`, values: vec(i, DIM), metadata: { i } })) });

describe("body workers: large bodies are parsed and validated off the event loop, each caller in turn", () => {
  it("answer exactly what the event loop would: the validated body, or a 400 naming the same field", async () => {
    const pool = new BodyParserPool(1);
    try {
      const body = batch(400);
      // The bytes are handed to the worker, not copied: the caller cannot use them afterwards.
      const bytes = () => Buffer.from(JSON.stringify(body));
      expect(bytes().byteLength).toBeGreaterThan(OFFLOAD_BYTES);
      expect(await pool.parse("tenant-a", bytes(), "upsertBody")).toEqual(body);

      const bad = batch(400);
      (bad.documents[150]!.values as unknown[])[3] = "1";
      await expect(pool.parse("tenant-a", Buffer.from(JSON.stringify(bad)), "upsertBody")).rejects.toThrow(new ValidationError("documents[150].values[3]", "Invalid input: expected number, received string"));
      // The checks every body gets, whatever its schema: UTF-8, NUL, lone surrogates, __proto__.
      await expect(pool.parse("tenant-a", Buffer.concat([bytes().subarray(0, 1000), Buffer.from([0xff]), bytes().subarray(1000)]), "upsertBody")).rejects.toThrow(/body: is not valid UTF-8 text/);
      const nul = JSON.stringify(batch(400)).replace("doc-7-", "doc-\\u0000-");
      await expect(pool.parse("tenant-a", Buffer.from(nul), "upsertBody")).rejects.toThrow(ValidationError);
      await expect(pool.parse("tenant-a", Buffer.from('{"documents":[' + "1,".repeat(40_000)), "upsertBody")).rejects.toThrow(/body: is not valid JSON/);
    } finally {
      await pool.close();
    }
  });

  it("serve callers in turn, hold at most two bodies per caller, and refuse what is left at close", async () => {
    const pool = new BodyParserPool(1);
    const bytes = () => Buffer.from(JSON.stringify(batch(2_000)));
    const done: string[] = [];
    const track = (name: string, p: Promise<unknown>) => p.then(() => void done.push(name));
    const a1 = track("a1", pool.parse("tenant-a", bytes(), "upsertBody"));
    const a2 = track("a2", pool.parse("tenant-a", bytes(), "upsertBody"));
    // A third body of the same caller is refused at once; a neighbour's is taken.
    await expect(pool.parse("tenant-a", bytes(), "upsertBody")).rejects.toMatchObject({ code: "CONCURRENCY_LIMITED", status: 429 });
    const b1 = track("b1", pool.parse("tenant-b", bytes(), "upsertBody"));
    await Promise.all([a1, a2, b1]);
    // tenant-b's body was parsed before tenant-a's second: one body of each caller, in turn.
    expect(done).toEqual(["a1", "b1", "a2"]);
    // Its share is given back once its bodies are done.
    await expect(pool.parse("tenant-a", bytes(), "upsertBody")).resolves.toBeDefined();

    const waiting = pool.parse("tenant-c", bytes(), "upsertBody");
    const queued = pool.parse("tenant-d", bytes(), "upsertBody");
    await pool.close();
    await expect(waiting).rejects.toThrow(ClosedError);
    await expect(queued).rejects.toThrow(ClosedError);
    await expect(pool.parse("tenant-a", bytes(), "upsertBody")).rejects.toThrow(ClosedError);
  });
});

for (const backend of BACKENDS) {
  describe(`${backend.name}: large bodies through the HTTP service`, () => {
    let bh: Bulkhead;
    let app: FastifyInstance;
    let base: string;
    const keys: Record<string, string> = {};
    afterEach(async () => {
      await app?.close();
      await bh?.close();
    });

    async function start(httpBodyWorkers: number) {
      ({ bulkhead: bh } = await backend.open({ config: { dimension: DIM, httpBodyWorkers } }));
      app = await buildServer(bh, { logDestination: false });
      base = await app.listen({ host: "127.0.0.1", port: 0 });
      for (const id of ["tenant-a", "tenant-b"]) {
        await bh.registry.registerTenant(id, id, TenantTier.PRO, { quota: ROOMY });
        keys[id] = (await bh.keys.createKey("tenant", { tenantId: id }, "test")).key;
      }
    }

    it("a tenant's large batches are written, its invalid ones refused as on the event loop, and its flood refused for it alone", async () => {
      const answers: Record<number, { status: number; body: any }[]> = {};
      for (const workers of [0, 1]) {
        await start(workers);
        const ok = await callAt(base, "POST", "/v1/documents", keys["tenant-a"], batch(300));
        expect(ok.status).toBe(200);
        expect(ok.body.upserted).toBe(300);
        expect(await bh.dataManager.countDocuments("tenant-a")).toBe(300);
        const bad = batch(300);
        (bad.documents[299]!.values as unknown[])[0] = null;
        const refused = await callAt(base, "POST", "/v1/documents", keys["tenant-a"], bad);
        // Another tenant's id in a large body is refused as in a small one.
        const foreign = await callAt(base, "POST", "/v1/documents", keys["tenant-a"], { ...batch(300), tenantId: "tenant-b" });
        answers[workers] = [refused, foreign].map((r) => ({ status: r.status, body: { ...r.body, instance: undefined } }));
        expect(await bh.dataManager.countDocuments("tenant-b")).toBe(0);
        await app.close();
        await bh.close();
      }
      expect(answers[1]).toEqual(answers[0]);
      expect(answers[1]![0]).toMatchObject({ status: 400, body: { code: "VALIDATION_FAILED", field: "documents[299].values[0]" } });
      expect(answers[1]![1]).toMatchObject({ status: 403 });

      // Six large batches of tenant-a at once: two are taken, the rest refused 429 for it alone;
      // tenant-b's large batch sent meanwhile is written.
      await start(1);
      const big = JSON.stringify({ documents: batch(1_000, "flood").documents.map((d) => ({ ...d, metadata: { pad: "p".repeat(3_000) } })) }); // ~3 MB
      const flood = Array.from({ length: 6 }, () => callAt(base, "POST", "/v1/documents", keys["tenant-a"], big));
      const neighbour = callAt(base, "POST", "/v1/documents", keys["tenant-b"], batch(300, "b"));
      const statuses = (await Promise.all(flood)).map((r) => r.status);
      expect((await neighbour).status).toBe(200);
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(MAX_BODIES_PER_CALLER);
      expect(statuses.filter((s) => s !== 200).every((s) => s === 429)).toBe(true);
      expect(statuses).toContain(429);
      expect(await bh.dataManager.countDocuments("tenant-b")).toBe(300);
    }, 120_000);

    it("a tenant's request bytes are budgeted before its body is read or parsed, for it alone; a body must say its length", async () => {
      await start(1);
      // 100 KB per 10-second window for tenant-a.
      await bh.registry.setQuota("tenant-a", { requestBytesPerSecond: 10_000 });
      const body = JSON.stringify(batch(300, "a")); // ~80 KB
      expect((await callAt(base, "POST", "/v1/documents", keys["tenant-a"], body)).status).toBe(200);
      const refused = await callAt(base, "POST", "/v1/documents", keys["tenant-a"], JSON.stringify(batch(300, "again")));
      expect(refused.status).toBe(429);
      expect(refused.body).toMatchObject({ code: "RATE_LIMITED" });
      expect(refused.body.detail).toContain("10000 request-body bytes per second");
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      // A body without a length (chunked) could not be charged before it is read: 411, for any tenant.
      for (const tenant of ["tenant-a", "tenant-b"]) {
        const chunked = await fetch(`${base}/v1/documents`, {
          method: "POST",
          headers: { authorization: `Bearer ${keys[tenant]}`, "content-type": "application/json" },
          body: new Blob([JSON.stringify(batch(300, "chunked"))]).stream(),
          duplex: "half",
        } as RequestInit);
        expect(chunked.status).toBe(411);
        expect(((await chunked.json()) as { code: string }).code).toBe("LENGTH_REQUIRED");
      }
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(300); // nothing of the refused batches
      // tenant-b's budget is its own.
      expect((await callAt(base, "POST", "/v1/documents", keys["tenant-b"], body)).status).toBe(200);
      expect((await callAt(base, "POST", "/v1/documents", keys["tenant-b"], JSON.stringify(batch(300, "b2")))).status).toBe(200);
    });

    it("a deeply nested or escaped-__proto__ body is a 400 at once on either path; reading costs spends the rate limit", async () => {
      await start(1);
      const deepFilter = (levels: number) => '{"vector":[' + vec(1, DIM).join(",") + '],"filter":' + '{"$and":['.repeat(levels) + '{"a":1}' + "]}".repeat(levels) + "}";
      for (const body of [deepFilter(6_000), deepFilter(30) + " ".repeat(OFFLOAD_BYTES)]) {
        expect(body.length).toBeGreaterThan(OFFLOAD_BYTES); // through a body worker
        const started = Date.now();
        const r = await callAt(base, "POST", "/v1/query", keys["tenant-a"], body);
        expect(r.status).toBe(400);
        expect(r.body).toMatchObject({ code: "VALIDATION_FAILED", field: "body", detail: "body: nests deeper than 32 levels" });
        expect(Date.now() - started).toBeLessThan(5_000); // not the worker's 10 s deadline
      }
      // The worker is free: a neighbour's large batch goes through at once.
      expect((await callAt(base, "POST", "/v1/documents", keys["tenant-b"], batch(300, "b"))).status).toBe(200);
      // `__proto__` spelt with an escape is refused like the plain key, in metadata and in a filter, small or large.
      const escaped = (json: string) => json.replace('"pad"', '"\\u005f_proto__"');
      for (const pad of [1, OFFLOAD_BYTES]) {
        const docs = escaped(JSON.stringify({ documents: [{ id: "p", values: vec(1, DIM), metadata: { pad: "x".repeat(pad) } }] }));
        expect((await callAt(base, "POST", "/v1/documents", keys["tenant-a"], docs)).body).toMatchObject({ code: "VALIDATION_FAILED" });
        const query = escaped(JSON.stringify({ vector: vec(1, DIM), filter: { pad: { $exists: true } }, tenantId: "tenant-a" }) + " ".repeat(pad));
        expect((await callAt(base, "POST", "/v1/query", keys["tenant-a"], query)).status).toBe(400);
      }
      // A body refused before it is read — no key here — is not read to keep the connection: it is closed.
      const socket = connect(new URL(base).port ? Number(new URL(base).port) : 80, "127.0.0.1");
      await new Promise((r) => socket.once("connect", r));
      let answer = "";
      socket.on("data", (d) => (answer += d));
      const closed = new Promise((r) => socket.once("close", r));
      socket.on("error", () => {});
      socket.write("POST /v1/documents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n");
      for (let i = 0; i < 50 && !socket.destroyed; i++) socket.write("x".repeat(65_536));
      await closed;
      expect(answer).toMatch(/^HTTP\/1\.1 401/);
      expect(answer.toLowerCase()).toContain("connection: close");
      // GET /v1/costs spends the tenant's rate limit like every tenant route.
      await bh.registry.setQuota("tenant-a", { requestsPerSecond: 1, burst: 0 });
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await callAt(base, "GET", "/v1/costs", keys["tenant-a"])).status);
      expect(statuses).toContain(429);
      expect((await callAt(base, "GET", "/v1/costs", keys["tenant-b"])).status).toBe(200);
    });
  });
}
