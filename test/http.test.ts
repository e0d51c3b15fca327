import { Writable } from "node:stream";
import { Validator } from "@seriousme/openapi-schema-validator";
import type { FastifyInstance } from "fastify";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { buildServer } from "../src/server/app.js";
import { openBulkhead } from "../src/bulkhead.js";
import { callAt } from "./http-call.js";
import { BACKENDS, dropTestSchemas, newTestSchema, vec, waitFor } from "./backends.js";
import { seed } from "./live-traffic.js";

afterAll(dropTestSchemas);

/** Every JSON log line the server wrote. */
class Lines extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  readonly raw: string[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    for (const l of chunk.toString().split("\n").filter(Boolean)) {
      this.raw.push(l);
      this.lines.push(JSON.parse(l));
    }
    done();
  }
}

for (const backend of BACKENDS) {
  describe(`${backend.name}: HTTP service`, () => {
    let bh: Bulkhead;
    let app: FastifyInstance;
    let base: string;
    let logs: Lines;
    let admin: string;
    const keys: Record<string, string> = {};

    async function start(options: { bodyLimit?: number } = {}) {
      ({ bulkhead: bh } = await backend.open({ config: { dimension: 8 } }));
      logs = new Lines();
      app = await buildServer(bh, { logDestination: logs, ...options });
      base = await app.listen({ host: "127.0.0.1", port: 0 });
      admin = (await bh.keys.createKey("admin", { name: "test admin" }, "test")).key;
      for (const [id, tier] of [["tenant-a", TenantTier.FREE], ["tenant-b", TenantTier.PRO]] as const) {
        await call("POST", "/admin/tenants", admin, { tenantId: id, name: id, tier });
        keys[id] = (await call("POST", `/admin/tenants/${id}/keys`, admin, {})).body.key;
      }
    }
    afterEach(async () => {
      await app?.close();
      await bh?.close();
    });

    const call = (method: string, path: string, key: string | undefined, body?: unknown, headers: Record<string, string> = {}) => callAt(base, method, path, key, body, headers);

    it("refuses every route but /healthz and /readyz without a key — enumerated from the OpenAPI document", async () => {
      await start();
      const doc = (await call("GET", "/openapi.json", admin)).body;
      const operations = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => [m.toUpperCase(), path] as const));
      expect(operations.length).toBeGreaterThan(25);
      for (const [method, path] of operations) {
        const url = path.replace("{tenantId}", "tenant-a").replace("{keyId}", "0123456789abcdef").replace("{jobId}", "00000000-0000-0000-0000-000000000000");
        const res = await call(method, url, undefined, method === "GET" ? undefined : {});
        if (path === "/healthz" || path === "/readyz") expect(res.status, `${method} ${path}`).toBe(200);
        else {
          expect(res.status, `${method} ${path}`).toBe(401);
          expect(res.headers.get("content-type")).toContain("application/problem+json");
          expect(res.body).toMatchObject({ status: 401, code: "UNAUTHENTICATED", title: "Unauthorized", instance: url });
        }
      }
      expect((await call("GET", "/v1/usage", "bh_tenant_nonsense")).status).toBe(401);
      // Unknown paths tell nothing to a caller without a key, and a plain 404 to one with a key.
      expect((await call("GET", "/v1/nope", undefined)).status).toBe(401);
      expect(await call("GET", "/v1/nope", admin)).toMatchObject({ status: 404, body: { code: "NOT_FOUND" } });
      const real = keys["tenant-a"]!;
      const forged = real.slice(0, -1) + (real.endsWith("A") ? "B" : "A"); // right id, wrong secret
      expect((await call("GET", "/v1/usage", forged)).body.code).toBe("UNAUTHENTICATED");
    });

    it("scopes every tenant route to the key's tenant: B's key cannot read, change or name A's data", async () => {
      await start();
      const [a, b] = [keys["tenant-a"]!, keys["tenant-b"]!];
      expect((await call("POST", "/v1/documents", a, { documents: [{ id: "secret", values: vec(1), metadata: { text: "A only" } }] })).status).toBe(200);
      const q = await call("POST", "/v1/query", b, { vector: vec(1), topK: 10 });
      expect(q.status).toBe(200);
      expect(q.body.matches).toEqual([]);
      expect((await call("POST", "/v1/documents/fetch", b, { ids: ["secret"] })).body.documents).toEqual([]);
      expect((await call("POST", "/v1/documents/delete", b, { ids: ["secret"] })).body.deleted).toBe(0);
      const named = await call("POST", "/v1/query", b, { vector: vec(1), tenantId: "tenant-a" });
      expect(named).toMatchObject({ status: 403, body: { code: "FORBIDDEN" } });
      expect((await call("POST", "/v1/query", b, { vector: vec(1), filter: { tenant_id: "tenant-a" } })).body.matches).toEqual([]);
      // Tenant keys are not admin keys, and admin keys do not act as a tenant.
      expect((await call("GET", "/admin/tenants", b)).status).toBe(403);
      expect((await call("GET", `/admin/tenants/tenant-a/keys`, b)).status).toBe(403);
      expect((await call("POST", "/v1/query", admin, { vector: vec(1) })).status).toBe(403);
      // A still has its document.
      expect((await call("POST", "/v1/documents/fetch", a, { ids: ["secret"] })).body.documents).toHaveLength(1);
    });

    it("enforces scopes, and revocation and rotation take effect at once", async () => {
      await start();
      const readOnly = await call("POST", "/admin/tenants/tenant-a/keys", admin, { scopes: ["read"], name: "search UI" });
      expect(readOnly.status).toBe(201);
      expect(readOnly.body.key).toMatch(/^bh_tenant_[a-f0-9]{16}_/);
      const ro = readOnly.body.key as string;
      expect((await call("POST", "/v1/query", ro, { vector: vec(1) })).status).toBe(200);
      expect(await call("POST", "/v1/documents", ro, { documents: [{ id: "x", values: vec(1) }] })).toMatchObject({ status: 403, body: { code: "FORBIDDEN" } });

      const listed = (await call("GET", "/admin/tenants/tenant-a/keys", admin)).body as Record<string, unknown>[];
      expect(listed).toHaveLength(2);
      for (const k of listed) expect(k).not.toHaveProperty("key");
      // The secret is everything after the key id: base64url, so it may itself contain "_".
      expect(JSON.stringify(listed)).not.toContain(ro.split("_").slice(3).join("_"));
      expect(listed.find((k) => k.keyId === readOnly.body.keyId)!.lastUsedAt).not.toBeNull();

      expect((await call("DELETE", `/admin/keys/${readOnly.body.keyId}`, admin)).body.revokedAt).not.toBeNull();
      expect(await call("POST", "/v1/query", ro, { vector: vec(1) })).toMatchObject({ status: 401, body: { detail: "the API key has been revoked" } });

      const old = keys["tenant-a"]!;
      const oldId = old.split("_")[2];
      const rotated = await call("POST", `/admin/keys/${oldId}/rotate`, admin);
      expect(rotated.status).toBe(201);
      expect((await call("POST", "/v1/query", old, { vector: vec(1) })).status).toBe(401);
      expect((await call("POST", "/v1/query", rotated.body.key, { vector: vec(1) })).status).toBe(200);

      const audit = (await call("GET", "/admin/audit?limit=50", admin)).body as { actor: string; action: string; target: string }[];
      const adminId = admin.split("_")[2];
      expect(audit.map((e) => e.action)).toEqual(expect.arrayContaining(["tenant.register", "key.create", "key.revoke", "key.rotate"]));
      expect(audit.find((e) => e.action === "key.revoke")).toMatchObject({ actor: `admin:${adminId}`, target: "tenant-a" });
    });

    it("changes tenants through the admin API, audited, taking effect for the tenant's key at once", async () => {
      await start();
      const a = keys["tenant-a"]!;
      expect((await call("POST", "/admin/tenants/tenant-a/suspend", admin)).body.status).toBe("suspended");
      expect(await call("POST", "/v1/query", a, { vector: vec(1) })).toMatchObject({ status: 403, body: { code: "TENANT_SUSPENDED" } });
      expect((await call("POST", "/admin/tenants/tenant-a/resume", admin)).body.status).toBe("active");
      expect((await call("POST", "/v1/query", a, { vector: vec(1) })).status).toBe(200);
      expect((await call("POST", "/v1/documents", a, { documents: [{ id: "kept", values: vec(3) }] })).status).toBe(200);
      // To enterprise the vectors move: the move begins, runs in the background, and the answer says where to follow it.
      const tier = await call("POST", "/admin/tenants/tenant-a/tier", admin, { tier: "enterprise" });
      expect(tier).toMatchObject({ status: 202, body: { tenantId: "tenant-a" } });
      expect(tier.headers.get("location")).toBe("/admin/moves/tenant-a");
      await waitFor("the move to switch", async () => (await call("GET", "/admin/moves/tenant-a", admin)).status === 404);
      expect((await call("GET", "/admin/tenants/tenant-a", admin)).body).toMatchObject({ tier: "enterprise", isolation: "dedicated-index", store: "home", moving: false });
      expect((await call("POST", "/v1/query", a, { vector: vec(3), topK: 1 })).body).toMatchObject({ matches: [{ id: "kept" }], isolation: "dedicated-index" });
      expect((await call("GET", "/admin/moves", admin)).body).toEqual([]);
      // Between free and pro only the quota changes: answered at once.
      expect(await call("POST", "/admin/tenants/tenant-b/tier", admin, { tier: "free" })).toMatchObject({ status: 200, body: { tier: "free", moving: false } });
      expect((await call("GET", "/admin/moves", keys["tenant-b"]!)).status).toBe(403); // a tenant key sees no one's moves
      const actions = ((await call("GET", "/admin/audit", admin)).body as { action: string; target: string; details: Record<string, unknown> }[]).filter((e) => e.target === "tenant-a");
      expect(actions.map((e) => e.action)).toEqual(expect.arrayContaining(["tenant.suspend", "tenant.resume", "tenant.tier"]));
      expect(actions.find((e) => e.action === "tenant.tier")!.details).toEqual({ tier: "enterprise" });
    });

    const moveOf = async (tenantId: string) => (await call("GET", `/admin/moves/${tenantId}`, admin)).body;

    it("moves a tenant in the background over the admin API while it writes and reads: 202, progress, nothing lost, nothing foreign", async () => {
      await start();
      const [a, b] = [keys["tenant-a"]!, keys["tenant-b"]!];
      await call("PUT", "/admin/tenants/tenant-a/quota", admin, { quota: { requestsPerSecond: 1000, burst: 2000 } });
      await seed(bh, "tenant-a", 400);
      await seed(bh, "tenant-b", 50); // the same ids as A's first 50: two tenants, two documents each

      // Bad targets are refused at once, naming the field, and nothing begins.
      expect(await call("POST", "/admin/tenants/tenant-a/move", admin, {})).toMatchObject({ status: 400, body: { field: "tier", detail: expect.stringContaining("at least one of tier, index and store") } });
      expect(await call("POST", "/admin/tenants/tenant-a/move", admin, { store: "nowhere" })).toMatchObject({ status: 400, body: { field: "store", detail: expect.stringContaining("home") } });
      expect(await call("POST", "/admin/tenants/tenant-a/move", admin, { index: "shared-index-1" })).toMatchObject({ status: 400, body: { field: "index" } });
      expect(await call("POST", "/admin/tenants/tenant-a/move", admin, { tier: "enterprise", batchSize: 0 })).toMatchObject({ status: 400, body: { field: "batchSize" } });
      expect((await call("GET", "/admin/moves", admin)).body).toEqual([]);

      const started = await call("POST", "/admin/tenants/tenant-a/move", admin, { tier: "enterprise", batchSize: 5 });
      expect(started).toMatchObject({ status: 202, body: { tenantId: "tenant-a", toTier: "enterprise", toStore: "home", phase: "copying", copied: 0, total: 400, percent: 0, running: true, error: null } });
      expect(started.headers.get("location")).toBe("/admin/moves/tenant-a");
      expect(await call("POST", "/admin/tenants/tenant-a/move", admin, { tier: "enterprise" })).toMatchObject({ status: 409, body: { code: "MOVE_CONFLICT" } });
      // What B's key (or A's own) tries against the move: every move route is admin-only.
      for (const key of [b, a]) {
        for (const [method, path, body] of [
          ["GET", "/admin/moves", undefined],
          ["GET", "/admin/moves/tenant-a", undefined],
          ["POST", "/admin/tenants/tenant-a/move", { tier: "free" }],
          ["POST", "/admin/moves/tenant-a/rollback", undefined],
          ["POST", "/admin/moves/tenant-a/resume", {}],
          ["PUT", "/admin/moves/tenant-a/write-limit", { vectorsPerSecond: 1 }],
        ] as const) {
          expect((await call(method, path, key, body)).status, `${method} ${path}`).toBe(403);
        }
      }

      // A keeps writing and reading while the move runs; every acknowledged write must survive it.
      const acknowledged: string[] = [];
      const seen: number[] = [];
      let i = 0;
      while ((await call("GET", "/admin/moves/tenant-a", admin)).status === 200 && i < 2_000) {
        const id = `w${i++}`;
        if ((await call("POST", "/v1/documents", a, { documents: [{ id, values: vec(1_000 + i) }] })).status === 200) acknowledged.push(id);
        const q = await call("POST", "/v1/query", a, { vector: vec(7), topK: 10 });
        expect(q.status).toBe(200);
        for (const m of q.body.matches) expect(m.metadata.tenant_id).toBe("tenant-a");
        const move = await moveOf("tenant-a");
        if (move.copied !== undefined) seen.push(move.copied);
      }
      expect(acknowledged.length).toBeGreaterThan(0);
      expect(seen).toEqual([...seen].sort((x, y) => x - y)); // progress only grows
      expect((await call("GET", "/admin/tenants/tenant-a", admin)).body).toMatchObject({ tier: "enterprise", isolation: "dedicated-index", moving: false });
      const ids = [...Array.from({ length: 400 }, (_, j) => `d${String(j).padStart(5, "0")}`), ...acknowledged];
      expect((await call("POST", "/v1/documents/fetch", a, { ids })).body.documents).toHaveLength(ids.length);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(ids.length);
      // B saw nothing of it, and has all of its own.
      expect((await call("POST", "/v1/documents/fetch", b, { ids: ["w0", "d00399"] })).body.documents).toEqual([]);
      expect((await call("POST", "/v1/query", b, { vector: vec(7), topK: 100 })).body.matches.map((m: { metadata: { tenant_id: string } }) => m.metadata.tenant_id)).toEqual(Array(50).fill("tenant-b"));
      expect(await bh.dataManager.countDocuments("tenant-b")).toBe(50);
      const auditOf = async () => ((await call("GET", "/admin/audit", admin)).body as { action: string; actor: string; target: string }[]).filter((e) => e.target === "tenant-a");
      // The move's own entry is written once its switch has committed, a moment after the move is gone.
      await waitFor("the move's audit entry", async () => (await auditOf()).some((e) => e.action === "tenant.move"));
      const actions = await auditOf();
      expect(actions.map((e) => e.action)).toEqual(expect.arrayContaining(["tenant.move.start", "tenant.move"]));
      expect(new Set(actions.filter((e) => e.action.startsWith("tenant.move")).map((e) => e.actor)).size).toBe(1); // the admin who asked
    });

    it("rolls back a running move, and resumes one its service stopped, over the admin API", async () => {
      await start();
      await seed(bh, "tenant-a", 500);
      expect(await call("POST", "/admin/moves/tenant-a/resume", admin, {})).toMatchObject({ status: 404, body: { code: "MOVE_NOT_FOUND" } });
      expect(await call("PUT", "/admin/moves/tenant-a/write-limit", admin, { vectorsPerSecond: 5 })).toMatchObject({ status: 404, body: { code: "MOVE_NOT_FOUND" } });

      // Rollback of a move running in this instance: it is stopped first, then its copy dropped.
      expect((await call("POST", "/admin/tenants/tenant-a/move", admin, { tier: "enterprise", batchSize: 1 })).status).toBe(202);
      const rolled = await call("POST", "/admin/moves/tenant-a/rollback", admin);
      expect(rolled).toMatchObject({ status: 200, body: { tier: "free", isolation: "namespace", moving: false } });
      expect((await call("GET", "/admin/moves", admin)).body).toEqual([]);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(500);

      // A move stopped with its service (between two steps) stays recorded, not running, and resumable.
      expect((await call("POST", "/admin/tenants/tenant-a/move", admin, { tier: "enterprise", batchSize: 1 })).status).toBe(202);
      await waitFor("some vectors copied", async () => (await moveOf("tenant-a")).copied > 0);
      await bh.moves.close(); // what closing Bulkhead does first
      const stopped = await moveOf("tenant-a");
      expect(stopped).toMatchObject({ running: false, error: null, phase: "copying" });
      expect(stopped.copied).toBeGreaterThan(0);
      expect(stopped.copied).toBeLessThan(500);
      expect(await call("PUT", "/admin/moves/tenant-a/write-limit", admin, { vectorsPerSecond: 0 })).toMatchObject({ status: 400, body: { field: "vectorsPerSecond" } });
      expect((await call("PUT", "/admin/moves/tenant-a/write-limit", admin, { vectorsPerSecond: 50 })).body).toMatchObject({ moving: true, moveWriteLimit: 50 });
      expect(await moveOf("tenant-a")).toMatchObject({ writeLimit: 50 });
      expect((await call("PUT", "/admin/moves/tenant-a/write-limit", admin, { vectorsPerSecond: null })).body).toMatchObject({ moveWriteLimit: null });

      const resumed = await call("POST", "/admin/moves/tenant-a/resume", admin, { batchSize: 100 });
      expect(resumed).toMatchObject({ status: 202, body: { running: true, copied: stopped.copied } });
      await waitFor("the resumed move to switch", async () => (await call("GET", "/admin/moves/tenant-a", admin)).status === 404, 60_000);
      expect((await call("GET", "/admin/tenants/tenant-a", admin)).body).toMatchObject({ tier: "enterprise", isolation: "dedicated-index", moving: false });
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(500);
      const actionsOf = async () => ((await call("GET", "/admin/audit", admin)).body as { action: string; target: string }[]).filter((e) => e.target === "tenant-a").map((e) => e.action);
      await waitFor("the move's audit entry", async () => (await actionsOf()).includes("tenant.move"));
      expect(await actionsOf()).toEqual(expect.arrayContaining(["tenant.move.start", "tenant.move.rollback", "tenant.move.limit-writes", "tenant.move.resume", "tenant.move"]));
    });

    it("answers problem+json: 400 naming the field, 404, 409, 413 for an oversized body, 429 with Retry-After", async () => {
      await start({ bodyLimit: 20_000 });
      const a = keys["tenant-a"]!;
      const bad = await call("POST", "/v1/documents", a, { documents: [{ id: "ok", values: vec(1) }, { id: "bad", values: [1, 2, "x"] }] });
      expect(bad).toMatchObject({ status: 400, body: { code: "VALIDATION_FAILED", field: "documents[1].values[2]" } });
      expect((await call("POST", "/v1/documents/fetch", a, { ids: ["ok"] })).body.documents).toEqual([]); // nothing written
      expect((await call("POST", "/v1/query", a, "{not json")).status).toBe(400);
      expect(await call("GET", "/admin/tenants/nobody", admin)).toMatchObject({ status: 404, body: { code: "TENANT_NOT_FOUND" } });
      expect(await call("POST", "/admin/tenants", admin, { tenantId: "tenant-a", name: "again", tier: "pro" })).toMatchObject({ status: 409, body: { code: "TENANT_EXISTS" } });
      expect(await call("POST", "/admin/tenants", admin, { tenantId: "Bad Id", name: "x", tier: "pro" })).toMatchObject({ status: 400, body: { field: "tenantId" } });
      expect(await call("POST", "/admin/tenants", admin, { tenantId: "tenant-c", name: "c", tier: "pro", store: "cell-9" })).toMatchObject({ status: 400, body: { field: "store" } });
      expect((await call("GET", "/admin/tenants/tenant-c", admin)).status).toBe(404); // nothing registered
      const big = { documents: Array.from({ length: 200 }, (_, i) => ({ id: `d${i}`, values: vec(i) })) };
      const tooLarge = await call("POST", "/v1/documents", a, big);
      expect(tooLarge).toMatchObject({ status: 413, body: { code: "BODY_TOO_LARGE", status: 413 } });
      expect(tooLarge.headers.get("content-type")).toContain("application/problem+json");

      await call("PUT", "/admin/tenants/tenant-a/quota", admin, { quota: { maxDailyQueries: 1 } });
      expect((await call("POST", "/v1/query", a, { vector: vec(1) })).status).toBe(200);
      const quota = await call("POST", "/v1/query", a, { vector: vec(1) });
      expect(quota).toMatchObject({ status: 429, body: { code: "QUOTA_EXCEEDED", quota: "maxDailyQueries", limit: 1, current: 1 } });
      expect(Number(quota.headers.get("retry-after"))).toBeGreaterThan(0);

      await call("PUT", "/admin/tenants/tenant-a/quota", admin, { quota: { requestsPerSecond: 1, burst: 0 } });
      const burst = await Promise.all(Array.from({ length: 5 }, () => call("POST", "/v1/documents/fetch", a, { ids: ["x"] })));
      const limited = burst.filter((r) => r.status === 429);
      expect(limited.length).toBeGreaterThanOrEqual(4);
      expect(limited[0]!.body.code).toBe("RATE_LIMITED");
      expect(Number(limited[0]!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    });

    it("logs every line of a tenant request with request_id and tenant_id, and never a key or a vector", async () => {
      await start();
      const a = keys["tenant-a"]!;
      await call("POST", "/v1/documents", a, { documents: [{ id: "d", values: vec(3), metadata: { text: "private words" } }] }, { "x-request-id": "req-upsert-1" });
      await call("POST", "/v1/query", a, { vector: [1, 2] }, { "x-request-id": "req-bad-1" });
      for (const id of ["req-upsert-1", "req-bad-1"]) {
        const lines = logs.lines.filter((l) => l.request_id === id);
        expect(lines.length).toBeGreaterThan(0);
        for (const l of lines) expect(l.tenant_id).toBe("tenant-a");
      }
      const all = logs.raw.join("\n");
      for (const k of [admin, a, keys["tenant-b"]!]) expect(all).not.toContain(k);
      expect(all).not.toContain("private words");
      expect(all).not.toContain(String(vec(3)[0]));
    });

    it("serves a valid OpenAPI 3.1 document, Prometheus metrics to admins, and a live readiness checklist", async () => {
      await start();
      const doc = (await call("GET", "/openapi.json", keys["tenant-a"])).body;
      const result = await new Validator().validate(doc);
      expect(result).toEqual({ valid: true });
      expect(doc.openapi).toBe("3.1.0");
      expect(doc.paths["/v1/query"].post.requestBody.content["application/json"].schema.required).toEqual(["vector"]);

      await call("POST", "/v1/query", keys["tenant-a"], { vector: vec(1) });
      expect((await call("GET", "/metrics", keys["tenant-a"])).status).toBe(403);
      const metrics = await call("GET", "/metrics", admin);
      expect(metrics.headers.get("content-type")).toContain("text/plain");
      expect(metrics.body).toContain('bulkhead_operations_total{tenant="tenant-a",operation="query",outcome="ok"} 1');
      expect(metrics.body).toMatch(/bulkhead_http_requests_total\{route="\/v1\/query",method="POST",status="200"\} 1/);

      await call("POST", "/admin/costs/allocate", admin, { basis: "equal" });
      const checks = (await call("GET", "/admin/readiness", admin)).body as { name: string; passed: boolean; detail: string }[];
      const failed = checks.filter((c) => !c.passed);
      expect(failed).toEqual([]);
      expect(checks.map((c) => c.name)).toEqual(expect.arrayContaining([
        "Every route but /healthz, /readyz and the dashboard's sign-in refuses a request without a key",
        "Request logs carry tenant_id and never a key",
        "Cross-tenant isolation probe",
      ]));
    });
  });
}

/** A TCP proxy in front of PostgreSQL that the test can cut and restore: the database "goes away" for this service only. */
async function startProxy(target: { host: string; port: number }) {
  const { createServer, connect } = await import("node:net");
  const sockets = new Set<import("node:net").Socket>();
  let up = true;
  const server = createServer((client) => {
    if (!up) return client.destroy();
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    cut() {
      up = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      up = true;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe.runIf(process.env.DATABASE_URL?.startsWith("postgres") && process.env.DATABASE_OWNER_URL)("postgres: HTTP service when the database goes away", () => {
  it("answers 503 with Retry-After while PostgreSQL is unreachable, and recovers by itself", async () => {
    const runtime = new URL(process.env.DATABASE_URL!);
    const proxy = await startProxy({ host: runtime.hostname, port: Number(runtime.port || 5432) });
    const viaProxy = new URL(runtime);
    viaProxy.port = String(proxy.port);
    const dataUrl = process.env.DATABASE_DATA_URL;
    // Migrations go straight to the server as the owner; the service's runtime connections (both planes) go through the proxy.
    const { bulkhead: bh } = await openBulkhead({
      database: viaProxy.toString(),
      databaseOwnerUrl: process.env.DATABASE_OWNER_URL,
      databaseDataUrl: dataUrl ? Object.assign(new URL(dataUrl), { port: String(proxy.port) }).toString() : undefined,
      env: {},
      config: { dimension: 8, schema: newTestSchema() },
      warn: () => {},
    });
    const app = await buildServer(bh, { logDestination: false });
    const base = await app.listen({ host: "127.0.0.1", port: 0 });
    try {
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
      const key = (await bh.keys.createKey("tenant", { tenantId: "tenant-a" }, "test")).key;
      const query = () => fetch(`${base}/v1/query`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify({ vector: vec(1) }) });
      expect((await query()).status).toBe(200);

      proxy.cut();
      const down = await query();
      expect(down.status).toBe(503);
      expect(down.headers.get("retry-after")).toBe("5");
      expect(await down.json()).toMatchObject({ code: "DATABASE_UNAVAILABLE", status: 503 });
      expect((await fetch(`${base}/readyz`)).status).toBe(503);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);

      proxy.restore();
      let status = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        status = (await query()).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
    } finally {
      await app.close();
      await bh.close();
      await proxy.close();
    }
  });
});
