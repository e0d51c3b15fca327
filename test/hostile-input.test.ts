import { Writable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { UsageLedger, type UsageEvent } from "../src/costs/usage-ledger.js";
import type { Db } from "../src/db/db.js";
import { ValidationError } from "../src/errors.js";
import { buildServer } from "../src/server/app.js";
import { callAt } from "./http-call.js";
import { asOwner, BACKENDS, dropTestSchemas, vec } from "./backends.js";

afterAll(dropTestSchemas);

/** Every log line the server wrote, raw and parsed. */
class Lines extends Writable {
  readonly raw: string[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.raw.push(...chunk.toString().split("\n").filter(Boolean));
    done();
  }
  get parsed(): Record<string, any>[] {
    return this.raw.map((l) => JSON.parse(l));
  }
}

const NUL = "a\u0000b";
const LONE = "a\ud800b";

for (const backend of BACKENDS) {
  describe(`${backend.name}: hostile input ends as a 4xx for its tenant alone`, () => {
    let bh: Bulkhead;
    let db: Db;
    let app: FastifyInstance;
    let base: string;
    let logs: Lines;
    let admin: string;
    const warnings: string[] = [];
    const keys: Record<string, string> = {};

    async function start() {
      ({ bulkhead: bh, db } = await backend.open({ config: { dimension: 8 }, warn: (m) => warnings.push(m) }));
      logs = new Lines();
      app = await buildServer(bh, { logDestination: logs });
      base = await app.listen({ host: "127.0.0.1", port: 0 });
      admin = (await bh.keys.createKey("admin", { name: "test admin" }, "test")).key;
      for (const [id, tier] of [["tenant-a", TenantTier.FREE], ["tenant-b", TenantTier.PRO]] as const) {
        await bh.registry.registerTenant(id, id, tier);
        keys[id] = (await bh.keys.createKey("tenant", { tenantId: id }, "test")).key;
      }
    }
    afterEach(async () => {
      await app?.close();
      await bh?.close();
      warnings.length = 0;
    });

    const call = (method: string, path: string, key: string | undefined, body?: unknown, headers: Record<string, string> = {}) => callAt(base, method, path, key, body, headers);

    const doc = (id: string, metadata: Record<string, unknown> = {}, seed = 1) => ({ id, values: vec(seed), metadata });

    it("bounds every metered and monetary input: 1e15 tokens, 1e308 weights and totals are a 400 naming the field, and nothing is metered", async () => {
      await start();
      await call("POST", "/v1/documents", keys["tenant-a"], { documents: [doc("d1")] });
      const before = (await call("GET", "/v1/costs", keys["tenant-a"])).body;

      const huge = await call("POST", "/v1/query", keys["tenant-a"], { vector: vec(1), embedTokens: 1e15 });
      expect(huge).toMatchObject({ status: 400, body: { code: "VALIDATION_FAILED", field: "embedTokens" } });
      await expect(bh.dataManager.queryDocuments("tenant-a", vec(1), { embedTokens: 1e15 })).rejects.toMatchObject({ field: "embedTokens" });
      for (const field of ["embedTokens", "llmTokens", "vectorQueries"] as const) {
        await expect(bh.costEngine.trackQueryCost("tenant-a", { [field]: 1e15 })).rejects.toMatchObject({ field: `usage.${field}` });
      }
      await expect(bh.costEngine.trackQueryCost("tenant-a", { embedTokens: 2 ** 53 + 2 })).rejects.toBeInstanceOf(ValidationError);
      const after = (await call("GET", "/v1/costs", keys["tenant-a"])).body;
      expect(after.usage.embedTokens).toBe(before.usage.embedTokens);
      expect(after.queryCount).toBe(before.queryCount);

      for (const body of [{ basis: { "tenant-a": 1e308, "tenant-b": 1 } }, { total: 1e308 }, { total: 100, basis: { "tenant-a": 1e13 } }]) {
        const res = await call("POST", "/admin/costs/allocate", admin, body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(JSON.stringify(res.body)).not.toMatch(/BigInt|Infinity/);
      }
      await expect(bh.costEngine.allocateFixedCosts(100, { "tenant-a": 1e308 })).rejects.toMatchObject({ field: "basis.tenant-a" });
      await expect(bh.costEngine.allocateFixedCosts(1e308, "equal")).rejects.toMatchObject({ field: "monthlyFixedCost" });
      await expect(bh.costEngine.reconcile("2026-11", { postgres: 1e308 })).rejects.toMatchObject({ field: "actual.postgres" });
      // Months that cannot have a bill are refused, whatever the route.
      for (const period of ["9999-12", "0000-01"]) {
        expect((await call("POST", "/admin/costs/allocate", admin, { total: 115, basis: "equal", period })).status, period).toBe(400);
        expect((await call("GET", `/admin/costs/report?period=${period}`, admin)).status, period).toBe(400);
        expect((await call("GET", `/v1/costs?period=${period}`, keys["tenant-b"])).status, period).toBe(400);
      }
      // A quota a PostgreSQL integer cannot hold is refused when set, not failing every query after.
      expect(await call("PUT", "/admin/tenants/tenant-b/quota", admin, { quota: { maxDailyQueries: 2 ** 31 } })).toMatchObject({ status: 400, body: { field: "quota.maxDailyQueries" } });
      await expect(bh.registry.setQuota("tenant-b", { maxDailyQueries: 2 ** 31 })).rejects.toMatchObject({ field: "quota.maxDailyQueries" });
      expect((await call("POST", "/v1/query", keys["tenant-b"], { vector: vec(1) })).status).toBe(200);
      // A month before the deployment bills nobody (it used to bill today's tenants).
      const past = await call("GET", "/admin/costs/report?period=1999-01", admin);
      expect(past).toMatchObject({ status: 200, body: { tenants: [], totals: { revenue: 0, totalCost: 0 } } });
      // A bounded allocation still works, and its shares still add up.
      const shares = await bh.costEngine.allocateFixedCosts(1_000_000_000, { "tenant-a": 1e12, "tenant-b": 1 });
      expect(Math.round((shares["tenant-a"]! + shares["tenant-b"]!) * 100)).toBe(100_000_000_000);
    });

    it("quarantines a poisoned usage event and flushes every other one: costs keep answering for every tenant", async () => {
      await start();
      const quarantined: string[] = [];
      const ledger = new UsageLedger(db, { flushIntervalMs: 60_000, maxEvents: 10_000, onError: () => {}, onQuarantine: (q) => quarantined.push(`${q.event.tenantId}:${q.reason}`) });
      const now = new Date();
      const event = (tenantId: string, over: Partial<UsageEvent> = {}): UsageEvent => ({ tenantId, kind: "embedding", quantity: 10, costPico: 1_000n, occurredAt: now, ...over });
      ledger.record([
        event("tenant-a"),
        event("tenant-a", { costPico: 2n ** 70n }), // past bigint: caught before writing
        event("tenant-a", { quantity: 1e300 }), // not a safe integer
        event("tenant-a", { occurredAt: new Date("+010000-01-01T00:00:00Z") }), // passes the checks, refused by the period CHECK in the database
        event("tenant-b"),
      ]);
      await ledger.flush(); // does not throw: nothing is left to retry
      expect(ledger.pending).toBe(0);
      expect(ledger.quarantined).toBe(3);
      expect(quarantined).toHaveLength(3);
      expect(quarantined.every((q) => q.startsWith("tenant-a:"))).toBe(true);
      expect(quarantined.some((q) => /refused by the database \(SQLSTATE 2\d/.test(q))).toBe(true);

      // The good events of both tenants were written; the quarantine holds A's three, visible to A only.
      const sumOf = async (tenantId: string) => Number((await db.queryAsTenant<{ n: string }>(tenantId, "SELECT COALESCE(sum(quantity), 0)::text AS n FROM usage_events WHERE tenant_id = $1 AND kind = 'embedding'", [tenantId]))[0]!.n);
      expect(await sumOf("tenant-a")).toBe(10);
      expect(await sumOf("tenant-b")).toBe(10);
      const inQuarantine = await db.queryAsTenant<{ cost_pico: string; reason: string }>("tenant-a", "SELECT cost_pico::text, reason FROM usage_quarantine ORDER BY id");
      expect(inQuarantine).toHaveLength(3);
      expect(inQuarantine[0]!.cost_pico).toBe((2n ** 70n).toString());
      expect(await db.queryAsTenant("tenant-b", "SELECT * FROM usage_quarantine")).toEqual([]);
      // A flush retried after an unknown outcome (its first attempt committed) sends the same events
      // again: each is written once.
      const retried = event("tenant-b", { eventId: "7d0f5a52-8f7e-4c55-9d57-3f1f6a0e0b11", quantity: 5 });
      ledger.record([retried]);
      await ledger.flush();
      ledger.record([retried]);
      await ledger.flush();
      expect(await sumOf("tenant-b")).toBe(15);
      await ledger.close();

      // Every tenant's costs, the report and an allocation still answer.
      for (const id of ["tenant-a", "tenant-b"]) expect((await call("GET", "/v1/costs", keys[id])).status).toBe(200);
      expect((await call("GET", "/admin/costs/report", admin)).status).toBe(200);
      expect((await call("POST", "/admin/costs/allocate", admin, { basis: "equal" })).status).toBe(200);
    });

    it("refuses text PostgreSQL cannot store (NUL, lone surrogates) in every field with a 400 naming it, writing nothing", async () => {
      await start();
      // Every request spends a point of the rate limit at the door, refused or not: this test sends many.
      await bh.registry.setQuota("tenant-a", { requestsPerSecond: 10_000 });
      await call("POST", "/v1/documents", keys["tenant-a"], { documents: [doc("kept")] });
      const a = keys["tenant-a"];
      const cases: [string, string, string, unknown, string][] = [];
      for (const [label, bad] of [["NUL", NUL], ["lone surrogate", LONE]] as const) {
        cases.push(
          [label, "POST", "/v1/documents", { documents: [doc("x", { title: bad })] }, "documents[0].metadata.title"],
          [label, "POST", "/v1/documents", { documents: [doc("x", { tags: ["ok", bad] })] }, "documents[0].metadata.tags[1]"],
          [label, "POST", "/v1/documents", { documents: [doc("x", { [bad]: "v" })] }, "documents[0].metadata"],
          [label, "POST", "/v1/documents", { documents: [doc(bad)] }, "documents[0].id"],
          [label, "POST", "/v1/documents/fetch", { ids: ["kept", bad] }, "ids[1]"],
          [label, "POST", "/v1/documents/delete", { ids: [bad] }, "ids[0]"],
          [label, "POST", "/v1/query", { vector: vec(1), filter: { title: bad } }, "filter.title"],
          [label, "POST", "/v1/query", { vector: vec(1), filter: { [bad]: "x" } }, "filter"],
          [label, "POST", "/v1/query", { vector: vec(1), filter: { title: { $in: ["ok", bad] } } }, "filter.title.$in[1]"],
          [label, "POST", "/admin/tenants", { tenantId: "tenant-c", name: bad, tier: "free" }, "name"],
          [label, "POST", "/admin/tenants/tenant-a/keys", { name: bad }, "name"],
        );
      }
      for (const [label, method, path, body, field] of cases) {
        const res = await call(method, path, path.startsWith("/admin") ? admin : a, body);
        expect(res.status, `${label} ${path} ${field}`).toBe(400);
        expect(res.headers.get("content-type")).toContain("application/problem+json");
        expect(res.body.field, `${label} ${path}`).toBe(field);
      }
      // The same through the library, which has no JSON parser in front of it.
      for (const bad of [NUL, LONE]) {
        await expect(bh.dataManager.upsertDocuments("tenant-a", [doc("x", { title: bad })])).rejects.toMatchObject({ field: "documents[0].metadata.title" });
        await expect(bh.dataManager.upsertDocuments("tenant-a", [doc("x", { [bad]: 1 })])).rejects.toBeInstanceOf(ValidationError);
        await expect(bh.dataManager.fetchDocuments("tenant-a", [bad])).rejects.toMatchObject({ field: "ids[0]" });
        await expect(bh.dataManager.queryDocuments("tenant-a", vec(1), { filter: { t: { $nin: [bad] } } })).rejects.toMatchObject({ field: "filter.t.$nin" });
        await expect(bh.dataManager.queryDocuments("tenant-a", vec(1), { filter: { [bad]: 1 } })).rejects.toBeInstanceOf(ValidationError);
        await expect(bh.registry.registerTenant("tenant-d", bad, TenantTier.FREE)).rejects.toMatchObject({ field: "tenantName" });
        await expect(bh.keys.createKey("tenant", { tenantId: "tenant-a", name: bad }, "test")).rejects.toMatchObject({ field: "name" });
      }
      // Vectors pgvector cannot score in single precision (null scores rank first): too small for a cosine, too long for any metric.
      for (const values of [vec(1).map(() => 1e-50), vec(1).map(() => 3.4e38), vec(1).map((v, i) => (i === 0 ? 2e19 : v))]) {
        expect((await call("POST", "/v1/documents", a, { documents: [{ id: "tiny", values }] })).body.field).toBe("documents[0].values");
        expect((await call("POST", "/v1/query", a, { vector: values })).body.field).toBe("queryVector");
      }
      // Unknown query parameters are refused on every route, not ignored.
      expect(await call("GET", "/v1/usage?tenant=tenant-b", a)).toMatchObject({ status: 400, body: { field: "tenant" } });
      // Bytes that are not UTF-8 are refused, not turned into U+FFFD (which would make distinct ids one).
      const badBytes = await fetch(`${base}/v1/documents/fetch`, {
        method: "POST",
        headers: { authorization: `Bearer ${a}`, "content-type": "application/json" },
        body: Buffer.concat([Buffer.from('{"ids":["'), Buffer.from([0xff, 0xfe, 0xc0]), Buffer.from('"]}')]),
      });
      expect(badBytes.status).toBe(400);
      expect(await badBytes.json()).toMatchObject({ field: "body" });
      // A surrogate pair (an emoji) is fine text, escaped or not.
      expect((await call("POST", "/v1/documents", a, '{"documents":[{"id":"emoji","values":' + JSON.stringify(vec(2)) + ',"metadata":{"t":"\\ud83d\\ude00 😀"}}]}')).status).toBe(200);

      // Nothing was written: A holds its two documents, no tenant-c or tenant-d exists.
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(2);
      expect((await bh.registry.listTenants()).map((t) => t.tenantId).sort()).toEqual(["tenant-a", "tenant-b"]);
    });

    it("answers problem+json 400s for out-of-range numbers, long path parameters, __proto__ keys and deep nesting", async () => {
      await start();
      await bh.moves.start("tenant-a", { tier: TenantTier.ENTERPRISE }, "test").catch(() => {});
      const limit = await call("PUT", "/admin/moves/tenant-a/write-limit", admin, { vectorsPerSecond: 2 ** 31 });
      expect(limit).toMatchObject({ status: 400, body: { field: "vectorsPerSecond" } });
      const long = "t".repeat(101);
      for (const path of [`/admin/tenants/${long}`, `/admin/moves/${long}`, `/admin/tenants/${"x".repeat(5000)}/keys`]) {
        const res = await call("GET", path, admin);
        expect(res.status, path.slice(0, 40)).toBe(400);
        expect(res.headers.get("content-type")).toContain("application/problem+json");
        expect(res.body.field).toBe("tenantId");
      }
      const proto = await call("POST", "/v1/documents", keys["tenant-a"], '{"documents":[{"id":"p","values":' + JSON.stringify(vec(1)) + ',"metadata":{"__proto__":{"x":1}}}]}');
      expect(proto).toMatchObject({ status: 400, body: { field: "documents[0].metadata.__proto__" } });
      const deep = await call("POST", "/v1/query", keys["tenant-a"], `{"vector":${JSON.stringify(vec(1))},"filter":${"[".repeat(5000)}${"]".repeat(5000)}}`);
      expect(deep.status).toBe(400);
      expect(deep.headers.get("content-type")).toContain("application/problem+json");
    });

    it("keeps HTTP doors shut: unknown paths need a key before any body is read, the bearer scheme is case-insensitive, an unknown move is a 404", async () => {
      await start();
      for (const key of [undefined, "bh_tenant_nobody_xxxx"]) {
        const probe = await call("POST", "/v1/no-such-route", key, "{not json");
        expect(probe.status).toBe(401);
      }
      expect((await call("POST", "/v1/no-such-route", keys["tenant-a"], {})).status).toBe(404);
      for (const scheme of ["bearer", "BEARER", "Bearer"]) {
        expect((await call("GET", "/v1/usage", undefined, undefined, { authorization: `${scheme} ${keys["tenant-a"]}` })).status, scheme).toBe(200);
      }
      expect(await call("GET", "/admin/moves/tenant-b", admin)).toMatchObject({ status: 404, body: { code: "MOVE_NOT_FOUND" } });
      // A client sending made-up keys gets 20 lookups a second; after that only keys already known are
      // checked (no database lookup per made-up id), and a key in use keeps working from the same address.
      const statuses: number[] = [];
      for (let i = 0; i < 40; i++) statuses.push((await call("GET", "/v1/usage", `bh_tenant_${String(i).padStart(16, "f")}_${"x".repeat(43)}`)).status);
      expect(statuses.filter((st) => st === 401).length).toBeGreaterThanOrEqual(20);
      const throttled = await call("GET", "/v1/usage", `bh_tenant_${"e".repeat(16)}_${"x".repeat(43)}`);
      if (throttled.status === 429) expect(throttled.body.code).toBe("AUTHENTICATION_THROTTLED");
      expect(statuses.includes(429) || throttled.status === 429).toBe(true);
      expect((await call("GET", "/v1/usage", keys["tenant-a"])).status).toBe(200);
      expect(await call("GET", "/admin/moves/nobody-here", admin)).toMatchObject({ status: 404 });
    });

    it("refuses a tenant over its rate limit from its key alone, before its body is read; its neighbour is served", async () => {
      await start();
      // Tenant A (free) spends its rate limit and burst; from then on its refusals come from memory.
      let refused = 0;
      let served = 0;
      for (let i = 0; i < 200 && refused === 0; i++) {
        const status = (await call("POST", "/v1/query", keys["tenant-a"], { vector: vec(i) })).status;
        if (status === 429) refused++;
        else if (status === 200) served++;
      }
      expect(refused).toBe(1);
      // The door spends the request's point and the query does not spend another: the free tier's
      // 10/s + 20 burst serve about 30 (spending twice would serve about 15).
      expect(served).toBeGreaterThanOrEqual(25);
      // A malformed body is not even parsed: while the tenant is over its limit, the answer is the 429,
      // with Retry-After. (Under a loaded machine the limit's window may pass between two requests,
      // so the tenant is put over a 1/s limit again until the malformed request lands inside it.)
      await bh.registry.setQuota("tenant-a", { requestsPerSecond: 1, burst: 0 });
      let early = await call("POST", "/v1/query", keys["tenant-a"], "{this is not json");
      for (let i = 0; i < 5 && early.status !== 429; i++) {
        while ((await call("POST", "/v1/query", keys["tenant-a"], { vector: vec(i) })).status !== 429);
        early = await call("POST", "/v1/query", keys["tenant-a"], "{this is not json");
      }
      expect(early.status).toBe(429);
      expect(Number(early.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(early.body).toMatchObject({ code: "RATE_LIMITED" });
      const huge = await call("POST", "/v1/documents", keys["tenant-a"], JSON.stringify({ documents: Array.from({ length: 2000 }, (_, i) => doc(`d${i}`)) }));
      expect(huge.status).toBe(429);
      // The refusals are counted as the tenant's, and B is unaffected.
      expect(bh.monitor.getTenantStats("tenant-a").refused).toBeGreaterThanOrEqual(3);
      expect((await call("POST", "/v1/query", keys["tenant-b"], { vector: vec(1) })).status).toBe(200);
    });

    it("drops an erased tenant's metric series and statistics (probe tenants and erased customers do not pile up in every scrape)", async () => {
      await start();
      await call("POST", "/v1/documents", keys["tenant-a"], { documents: [doc("d1")] });
      await call("POST", "/v1/query", keys["tenant-a"], { vector: vec(1) });
      await call("POST", "/v1/query", keys["tenant-b"], { vector: vec(1) });
      expect(await bh.monitor.metricsText()).toContain('tenant="tenant-a"');
      expect((await call("DELETE", "/admin/tenants/tenant-a", admin)).status).toBe(200);
      const text = await bh.monitor.metricsText();
      expect(text).not.toContain('tenant="tenant-a"');
      expect(text).toContain('tenant="tenant-b"');
      expect(bh.monitor.getTenantStats("tenant-a").requests).toBe(0);
    });

    it("logs a failed write with ids, method, route and status — never its vectors, metadata text or SQL", async () => {
      await start();
      const canary = "CANARY-text-of-tenant-a-7f3e9";
      const values = vec(4242).map((v) => Number(v.toFixed(9)));
      const { placement } = await bh.registry.getTenant("tenant-a");
      await asOwner(db, `CREATE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full (test) while writing "%"', NEW.metadata; END $$`);
      await asOwner(db, `CREATE TRIGGER refuse_writes BEFORE INSERT OR UPDATE ON vec_${placement.indexId} FOR EACH ROW EXECUTE FUNCTION refuse_writes()`);
      const res = await call("POST", "/v1/documents", keys["tenant-a"], { documents: [{ id: "secret-doc", values, metadata: { body: canary } }] }, { "x-request-id": "req-log-test" });
      expect(res.status).toBe(500);
      expect(JSON.stringify(res.body)).not.toContain(canary);

      const text = logs.raw.join("\n");
      expect(text).not.toContain(canary);
      expect(text).not.toContain(String(values[3]));
      expect(text).not.toMatch(/INSERT INTO|SELECT .* FROM|jsonb_to_recordset/i);
      expect(text).not.toContain(keys["tenant-a"]!.split("_").slice(3).join("_"));
      const mine = logs.parsed.filter((l) => l.request_id === "req-log-test");
      const failed = mine.find((l) => l.msg === "request failed");
      expect(failed).toMatchObject({ tenant_id: "tenant-a", err: { type: expect.any(String), message: expect.stringContaining("disk full (test)") } });
      expect(mine.find((l) => l.msg === "request completed")).toMatchObject({ method: "POST", route: "/v1/documents", status: 500, tenant_id: "tenant-a" });
      // Every request line names its method, route and status.
      for (const l of logs.parsed.filter((x) => x.msg === "request completed")) expect(l).toMatchObject({ method: expect.any(String), route: expect.any(String), status: expect.any(Number) });
      // A refusal names the field's place, not the tenant's words: metadata keys are the tenant's content.
      const refusedKey = await call("POST", "/v1/documents", keys["tenant-a"], { documents: [doc("k", { CANARYKEY_patient_ssn: "x\u0000" })] });
      expect(refusedKey).toMatchObject({ status: 400, body: { field: "documents[0].metadata.CANARYKEY_patient_ssn" } }); // the caller is told
      expect(logs.raw.join("\n")).not.toContain("CANARYKEY");
      expect(logs.parsed.find((l) => l.msg === "request refused" && l.code === "VALIDATION_FAILED")).toMatchObject({ field: "documents[0].metadata.*" });
      // Requests without a valid key, which anyone can send as fast as they like, are summarised, not logged one by one.
      const before = logs.raw.length;
      for (let i = 0; i < 40; i++) expect((await call("GET", "/v1/usage", `bh_tenant_nobody${i}_${"x".repeat(20)}`)).status).toBe(401);
      expect(logs.raw.length - before).toBeLessThanOrEqual(1);
      // Tenant B is untouched by A's failure.
      expect((await call("POST", "/v1/query", keys["tenant-b"], { vector: vec(1) })).status).toBe(200);
    });
  });
}
