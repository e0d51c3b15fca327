import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead, BulkheadOptions } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { StoreUnavailableError, ValidationError } from "../src/errors.js";
import { describeError } from "../src/monitoring/safe-error.js";
import { buildServer } from "../src/server/index.js";
import type { MoveProgress } from "../src/tenancy/placement-move.js";
import { pglite, standinConfig, vec } from "./backends.js";
import { expectEqualsModel, liveTraffic, seed, UNLIMITED, type Model } from "./live-traffic.js";
import { PineconeStandin, STANDIN_LIMITS } from "./pinecone-standin.js";

/**
 * The Pinecone store's own behaviour, against the local stand-in of Pinecone's API (the shared
 * behaviour is in store-conformance.test.ts): moves into and out of Pinecone while the tenant
 * works, Pinecone's failures as Bulkhead's errors, the plan's namespace limit, and the stand-in
 * itself holding to Pinecone's request models and limits.
 */
const standins: PineconeStandin[] = [];
afterAll(async () => {
  for (const s of standins) await s.close();
});

async function openWithPinecone(options: { config?: BulkheadOptions["config"]; cell?: boolean; pinecone?: Record<string, unknown> } = {}) {
  const standin = await new PineconeStandin().start();
  standins.push(standin);
  const config = {
    dimension: 8,
    annIndexThreshold: 300,
    ...options.config,
    ...standinConfig(standin, { timeoutMs: 1_000, ...options.pinecone }),
  } as BulkheadOptions["config"];
  const opened = options.cell ? await pglite.openWithCell({ config }) : await pglite.open({ config });
  return { bh: opened.bulkhead, standin, db: opened.db };
}

/** Backs the tenant up to a file in a fresh directory, runs `fn` with it, and removes the directory. */
async function withBackup(bh: Bulkhead, tenantId: string, fn: (file: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "bh-pc-"));
  try {
    const file = join(dir, `${tenantId}.bhb`);
    await bh.backupTenant(tenantId, file);
    await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("pinecone store", () => {
  let bh: Bulkhead;
  let standin: PineconeStandin;
  afterEach(() => bh?.close());

  it("moves a tenant home → Pinecone → a dedicated Pinecone index → a cell → home while it writes and reads: nothing lost, nothing foreign", async () => {
    ({ bh, standin } = await openWithPinecone({ cell: true }));
    expect(bh.stores).toEqual(["home", "cell-2", "pinecone"]);
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNLIMITED });
    await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO);
    await bh.dataManager.upsertDocuments("tenant-b", [{ id: "b1", values: vec(1) }]);
    const model: Model = new Map();
    await seed(bh, "tenant-a", 400, model);
    await bh.registry.setQuota("tenant-a", { ...UNLIMITED, maxDailyQueries: 100_000 });
    let phase = "before";
    const options = { batchSize: 20, onProgress: (p: MoveProgress) => (phase = p.phase) };
    const steps: [() => Promise<unknown>, { store: string; isolation: string }][] = [
      [() => bh.registry.moveTenant("tenant-a", { store: "pinecone" }, options), { store: "pinecone", isolation: "namespace" }],
      [() => bh.registry.changeTier("tenant-a", TenantTier.ENTERPRISE, options), { store: "pinecone", isolation: "dedicated-index" }],
      [() => bh.registry.moveTenant("tenant-a", { store: "cell-2", tier: TenantTier.PRO }, options), { store: "cell-2", isolation: "namespace" }],
      [() => bh.registry.moveTenant("tenant-a", { store: "pinecone" }, options), { store: "pinecone", isolation: "namespace" }],
      [() => bh.registry.moveTenant("tenant-a", { store: "home" }, options), { store: "home", isolation: "namespace" }],
    ];
    for (const [step, [move, expected]] of steps.entries()) {
      let moving = true;
      const traffic = liveTraffic(bh, model, () => !moving, () => phase);
      await move();
      await new Promise((r) => setTimeout(r, 30));
      moving = false;
      await traffic.finished;
      expect(traffic.stats.errors).toEqual([]);
      expect(traffic.stats.foreign).toEqual([]);
      expect(traffic.stats.writes).toBeGreaterThan(0);
      const t = await bh.registry.getTenant("tenant-a");
      expect({ store: t.store, isolation: t.isolation }).toEqual(expected);
      await expectEqualsModel(bh, model);
      // The document quota counts from the right number wherever the tenant now lives.
      await bh.registry.setQuota("tenant-a", { ...UNLIMITED, maxDocuments: model.size + 1 });
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: `quota-probe-${step}`, values: vec(7) }]);
      model.set(`quota-probe-${step}`, { values: vec(7), metadata: { tenant_id: "tenant-a" } });
      await expect(bh.dataManager.upsertDocuments("tenant-a", [{ id: "one-too-many", values: vec(8) }])).rejects.toMatchObject({ quota: "maxDocuments" });
      await bh.registry.setQuota("tenant-a", { ...UNLIMITED, maxDailyQueries: 100_000 });
      if (t.store !== "pinecone") {
        // Nothing of the tenant is left in Pinecone once it has left.
        expect([...standin.indexes.values()].flatMap((i) => [...i.namespaces.keys()])).not.toContain("tenant-a");
      }
    }
    expect((await bh.dataManager.fetchDocuments("tenant-b", ["b1"])).documents).toHaveLength(1);
  }, 180_000); // five moves under live traffic: ~20 s alone, several times that on a loaded 2-core machine

  it("rolls back a move into Pinecone: the copy is deleted, the tenant stays and keeps its data", async () => {
    ({ bh, standin } = await openWithPinecone());
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNLIMITED });
    const model: Model = new Map();
    await seed(bh, "tenant-a", 250, model);
    const stop = new AbortController();
    await expect(bh.registry.moveTenant("tenant-a", { store: "pinecone" }, { batchSize: 50, signal: stop.signal, onProgress: (p) => p.copied >= 100 && stop.abort() })).rejects.toThrow(/abort/i);
    expect(standin.records(`bh-2`, "tenant-a").length).toBeGreaterThan(0);
    await bh.registry.rollbackMove("tenant-a");
    expect(standin.records(`bh-2`, "tenant-a")).toEqual([]);
    expect((await bh.registry.getTenant("tenant-a")).store).toBe("home");
    await expectEqualsModel(bh, model);
  });

  it("answers Pinecone's throttling as the tenant's 429 and its outages as 503, nothing counted, no payload in the message", async () => {
    ({ bh, standin } = await openWithPinecone({ config: { tierStores: { pro: "pinecone" } } }));
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
    await bh.dataManager.upsertDocuments("tenant-a", [{ id: "1", values: vec(1) }]);
    const secret = "a-secret-payload-value";

    standin.failNext(1, 429, "/vectors/upsert");
    const throttled = await bh.dataManager.upsertDocuments("tenant-a", [{ id: "2", values: vec(2), metadata: { secret } }]).catch((e) => e);
    expect(throttled).toBeInstanceOf(StoreUnavailableError);
    expect(throttled).toMatchObject({ status: 429, code: "STORE_THROTTLED" });
    expect(throttled.message).not.toContain(secret);
    expect(await bh.dataManager.countDocuments("tenant-a")).toBe(1);

    // One 503 is retried by the SDK (upserts are idempotent): the write goes through.
    standin.failNext(1, 503, "/vectors/upsert");
    await bh.dataManager.upsertDocuments("tenant-a", [{ id: "2", values: vec(2) }]);
    // More 503s than retries: refused, and the counter did not move.
    standin.failNext(5, 503, "/vectors/upsert");
    const down = await bh.dataManager.upsertDocuments("tenant-a", [{ id: "3", values: vec(3), metadata: { secret } }]).catch((e) => e);
    expect(down).toMatchObject({ status: 503, code: "STORE_UNAVAILABLE" });
    expect(down.message).not.toContain(secret);
    standin.failures.length = 0;
    await bh.registry.setQuota("tenant-a", { maxDocuments: 3 });
    await bh.dataManager.upsertDocuments("tenant-a", [{ id: "3", values: vec(3) }]); // 3 of 3: the refused write was not counted

    // A Pinecone slower than the deadline: refused in bounded time.
    standin.delayMs = 3_000;
    const started = Date.now();
    const slow = await bh.dataManager.queryDocuments("tenant-a", vec(1)).catch((e) => e);
    expect(slow).toMatchObject({ status: 503, code: "STORE_UNAVAILABLE" });
    expect(slow.message).toMatch(/did not answer in time/);
    expect(Date.now() - started).toBeLessThan(2_900);
    standin.delayMs = 0;
  });

  it("serves the failure over HTTP as problem+json with Retry-After, for that tenant only", async () => {
    ({ bh, standin } = await openWithPinecone());
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { store: "pinecone" });
    await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO);
    const keyA = (await bh.keys.createKey("tenant", { tenantId: "tenant-a" }, "test")).key;
    const keyB = (await bh.keys.createKey("tenant", { tenantId: "tenant-b" }, "test")).key;
    const app = await buildServer(bh, { logDestination: false });
    try {
      const doc = { documents: [{ id: "1", values: vec(1) }] };
      standin.failNext(1, 429);
      const a = await app.inject({ method: "POST", url: "/v1/documents", headers: { authorization: `Bearer ${keyA}` }, payload: doc });
      expect(a.statusCode).toBe(429);
      expect(a.headers["content-type"]).toMatch(/problem\+json/);
      expect(a.headers["retry-after"]).toBeDefined();
      expect(a.json()).toMatchObject({ code: "STORE_THROTTLED" });
      const b = await app.inject({ method: "POST", url: "/v1/documents", headers: { authorization: `Bearer ${keyB}` }, payload: doc });
      expect(b.statusCode).toBe(200); // B lives at home: Pinecone's trouble is not B's
    } finally {
      await app.close();
    }
  });

  it("places and moves tenants by tier: enterprise lives in Pinecone, the other tiers at home", async () => {
    ({ bh, standin } = await openWithPinecone({ config: { tierStores: { enterprise: "pinecone" } } }));
    expect((await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO)).store).toBe("home");
    expect((await bh.registry.registerTenant("tenant-e", "E", TenantTier.ENTERPRISE)).store).toBe("pinecone");
    await bh.dataManager.upsertDocuments("tenant-a", [{ id: "1", values: vec(1) }]);
    const up = await bh.registry.changeTier("tenant-a", TenantTier.ENTERPRISE);
    expect({ store: up.store, isolation: up.isolation }).toEqual({ store: "pinecone", isolation: "dedicated-index" });
    const down = await bh.registry.changeTier("tenant-a", TenantTier.FREE);
    expect({ store: down.store, isolation: down.isolation }).toEqual({ store: "home", isolation: "namespace" });
    expect((await bh.dataManager.fetchDocuments("tenant-a", ["1"])).documents).toHaveLength(1);
    expect((await bh.registry.changeTier("tenant-a", TenantTier.PRO)).store).toBe("home"); // free → pro: both at home, quota only
  });

  // ---- Found by an outside attack run on the first version (each failed then).

  it("a restore survives the store being reconciled meanwhile, and refuses a staged copy that came out short", async () => {
    ({ bh, standin } = await openWithPinecone({ config: { tierStores: { pro: "pinecone" } }, pinecone: { timeoutMs: 5_000 } }));
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNLIMITED });
    await bh.registry.registerTenant("tenant-c", "C", TenantTier.PRO);
    const model: Model = new Map();
    await seed(bh, "tenant-a", 600, model);
    await withBackup(bh, "tenant-a", async (file) => {
      standin.delayMs = 20;
      const restore = bh.restoreTenant(file);
      while (standin.records("bh-1", "tenant-a.restore").length === 0) await new Promise((r) => setTimeout(r, 5));
      await bh.registry.deleteTenant("tenant-c"); // reconciles the Pinecone store mid-restore
      expect((await restore).documents).toBe(600);
      standin.delayMs = 0;
      await expectEqualsModel(bh, model);
      expect(standin.records("bh-1", "tenant-a.restore")).toEqual([]);

      // A staged copy that does not list whole (records lost or not yet visible): nothing changes.
      await bh.dataManager.deleteDocuments("tenant-a", ["d00000"]);
      model.delete("d00000");
      standin.consistencyDelayMs = 60_000;
      await expect(bh.restoreTenant(file)).rejects.toThrow(/nothing was changed/);
      standin.consistencyDelayMs = 0;
      await expectEqualsModel(bh, model);
    });
  });

  it("erasure deletes the tenant's namespace however late its writes become visible, and reports (never throws) when Pinecone fails", async () => {
    ({ bh, standin } = await openWithPinecone({ config: { tierStores: { pro: "pinecone" } } }));
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
    await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO);
    standin.consistencyDelayMs = 200;
    await bh.dataManager.upsertDocuments("tenant-a", [{ id: "pii", values: vec(1), metadata: { email: "alice@example.com" } }]);
    await bh.eraseTenant("tenant-a", "test");
    await new Promise((r) => setTimeout(r, 300)); // every acknowledged write visible by now
    standin.consistencyDelayMs = 0;
    expect(standin.records("bh-1", "tenant-a")).toEqual([]);

    await bh.dataManager.upsertDocuments("tenant-b", [{ id: "1", values: vec(1) }]);
    standin.failNext(20, 503); // Pinecone down through the deletion and the proof
    const report = await bh.eraseTenant("tenant-b", "test");
    expect(report.verified).toBe(false);
    expect(report.proofError).toMatch(/STORE_UNAVAILABLE|Pinecone/);
    expect((await bh.audit.list()).filter((e) => e.action === "tenant.erase").map((e) => e.target)).toContain("tenant-b");
    standin.failures.length = 0;
    await bh.registry.reconcileCells(); // the backstop deletes what the failed deletion left
    expect(standin.records("bh-1", "tenant-b")).toEqual([]);
  });

  it("keeps the document quota exact when a batch spans several Pinecone requests and one of them fails", async () => {
    ({ bh, standin } = await openWithPinecone({ config: { dimension: 384, tierStores: { pro: "pinecone" } } }));
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: { ...UNLIMITED, maxDocuments: 500 } });
    // Values that print long (25 bytes each): 300 such records are more than one 2 MB request.
    const heavy = (i: number) => ({ id: `h${i}`, values: Array.from({ length: 384 }, (_, k) => (k === 0 ? 1 : -1.2345678901234567e-300)) });
    await bh.dataManager.upsertDocuments("tenant-a", Array.from({ length: 300 }, (_, i) => heavy(i)));
    expect(standin.records("bh-1", "tenant-a")).toHaveLength(300);
    expect(standin.requests.filter((r) => r.endsWith("/vectors/upsert")).length).toBeGreaterThan(1);
    await bh.dataManager.deleteDocuments("tenant-a", Array.from({ length: 300 }, (_, i) => `h${i}`));

    // The batch's first request goes through; the next ones fail (the SDK's retry included).
    standin.failNext(5, 500, "/vectors/upsert", 1);
    await expect(bh.dataManager.upsertDocuments("tenant-a", Array.from({ length: 300 }, (_, i) => heavy(1000 + i)))).rejects.toMatchObject({ code: "STORE_UNAVAILABLE" });
    standin.failures.length = 0;
    const stored = standin.records("bh-1", "tenant-a").length;
    expect(stored).toBeGreaterThan(0); // written in part ...
    expect(stored).toBeLessThan(300);
    expect(await bh.dataManager.countDocuments("tenant-a")).toBe(stored); // ... and counted as exactly that
    // So the quota still holds: 300 more would pass 500; what is left fits exactly.
    await expect(bh.dataManager.upsertDocuments("tenant-a", Array.from({ length: 300 }, (_, i) => heavy(2000 + i)))).rejects.toMatchObject({ quota: "maxDocuments" });
    await bh.dataManager.upsertDocuments("tenant-a", Array.from({ length: 500 - stored }, (_, i) => heavy(3000 + i)));
    expect(standin.records("bh-1", "tenant-a")).toHaveLength(500);
  });

  it("keeps the document quota exact however stale Pinecone's reads are: deletes and re-upserts, double deletes", async () => {
    ({ bh, standin } = await openWithPinecone({ config: { tierStores: { pro: "pinecone" } } }));
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: { ...UNLIMITED, maxDocuments: 5 } });
    await bh.dataManager.upsertDocuments("tenant-a", Array.from({ length: 5 }, (_, i) => ({ id: `d${i}`, values: vec(i) })));
    standin.consistencyDelayMs = 150;
    for (let i = 0; i < 10; i++) {
      await bh.dataManager.deleteDocuments("tenant-a", ["d0"]);
      expect((await bh.dataManager.deleteDocuments("tenant-a", ["d0"])).deleted).toBe(0); // gone already: counted once
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "d0", values: vec(i) }]);
      await expect(bh.dataManager.upsertDocuments("tenant-a", [{ id: `extra-${i}`, values: vec(i) }])).rejects.toMatchObject({ quota: "maxDocuments" });
    }
    await new Promise((r) => setTimeout(r, 200));
    standin.consistencyDelayMs = 0;
    expect(standin.records("bh-1", "tenant-a")).toHaveLength(5);
    expect(await bh.dataManager.countDocuments("tenant-a")).toBe(5);
  });

  it("never holds the catalogue while Pinecone works: another tenant's requests finish while A's slow calls are in flight", async () => {
    ({ bh, standin } = await openWithPinecone());
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { store: "pinecone", quota: UNLIMITED });
    await bh.registry.registerTenant("tenant-b", "B", TenantTier.FREE);
    await bh.dataManager.upsertDocuments("tenant-a", [{ id: "1", values: vec(1) }]);
    await bh.dataManager.upsertDocuments("tenant-b", [{ id: "1", values: vec(1) }]);
    standin.delayMs = 800;
    const order: string[] = [];
    const slow = Array.from({ length: 4 }, () => bh.dataManager.queryDocuments("tenant-a", vec(1)).then(() => order.push("a")));
    await new Promise((r) => setTimeout(r, 50)); // A's calls are at Pinecone now
    for (let i = 0; i < 5; i++) await bh.dataManager.queryDocuments("tenant-b", vec(i)).then(() => order.push("b"));
    await Promise.all(slow);
    standin.delayMs = 0;
    expect(order.slice(0, 5)).toEqual(["b", "b", "b", "b", "b"]);
  });

  it("refuses what Pinecone cannot take before sending it, and answers its refusals as the caller's 4xx: long ids, huge filters, oversized records", async () => {
    ({ bh, standin } = await openWithPinecone({ config: { tierStores: { pro: "pinecone" } } }));
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNLIMITED });
    await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO);
    // 100 ids of 300 bytes: fetched in several short requests, written, read back, moved out and in.
    const docs = Array.from({ length: 100 }, (_, i) => ({ id: `${"x".repeat(295)}${String(i).padStart(5, "0")}`, values: vec(i) }));
    await bh.dataManager.upsertDocuments("tenant-a", docs);
    expect((await bh.dataManager.fetchDocuments("tenant-a", docs.map((d) => d.id))).documents).toHaveLength(100);
    await bh.registry.moveTenant("tenant-a", { store: "home" });
    await bh.registry.moveTenant("tenant-a", { store: "pinecone" });
    expect(await bh.dataManager.countDocuments("tenant-a")).toBe(100);
    // A filter within Bulkhead's limits but far past what a request should carry: 400, and B is unaffected.
    const huge = Object.fromEntries(Array.from({ length: 8 }, (_, f) => [`f${f}`, { $in: Array.from({ length: 1000 }, (_, i) => `${"v".repeat(290)}${i}`) }]));
    await expect(bh.dataManager.queryDocuments("tenant-a", vec(1), { filter: huge })).rejects.toBeInstanceOf(ValidationError);
    await bh.dataManager.upsertDocuments("tenant-b", [{ id: "1", values: vec(1) }]);
    expect((await bh.dataManager.fetchDocuments("tenant-b", ["1"])).documents).toHaveLength(1);
    // Pinecone refusing a request is the caller's 400, not an outage.
    standin.failNext(1, 400, "/query");
    await expect(bh.dataManager.queryDocuments("tenant-b", vec(1))).rejects.toMatchObject({ status: 400, code: "STORE_REJECTED" });
  });

  it("says only the status of a Pinecone failure: no URL, no document id, no body, in the error or in what is logged", async () => {
    const logged: string[] = [];
    const standin = await new PineconeStandin().start();
    standins.push(standin);
    const opened = await pglite.open({
      warn: (m) => logged.push(m),
      config: { dimension: 8, ...standinConfig(standin, { timeoutMs: 1_000, maxRetries: 0 }), tierStores: { pro: "pinecone" } },
    });
    bh = opened.bulkhead;
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
    await bh.dataManager.upsertDocuments("tenant-a", [{ id: "canary-7f3a9", values: vec(1) }]);
    for (const status of [409, 500, 503]) {
      standin.failNext(1, status, "/vectors/fetch");
      const err = await bh.dataManager.fetchDocuments("tenant-a", ["canary-7f3a9"]).catch((e) => e);
      for (const text of [err.message, describeError(err), ...logged]) {
        expect(text).not.toContain("canary-7f3a9");
        expect(text).not.toContain("127.0.0.1");
        expect(text).not.toContain("injected failure");
        expect(text).not.toContain(standin.key);
      }
    }
  });

  it("counts a query that Pinecone failed once, giving back the rest of the lease its count took", async () => {
    const opened = await openWithPinecone({ config: { tierStores: { pro: "pinecone" } } });
    ({ bh, standin } = opened);
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: { maxDailyQueries: 1_000 } });
    await bh.dataManager.upsertDocuments("tenant-a", [{ id: "1", values: vec(1) }]);
    standin.failNext(5 * 10, 503, "/query"); // more than the SDK's retries, five queries in a row
    for (let i = 0; i < 5; i++) await expect(bh.dataManager.queryDocuments("tenant-a", vec(1))).rejects.toMatchObject({ status: 503 });
    standin.clearFailures();
    const [row] = await opened.db.queryAsTenant<{ queries: number }>("tenant-a", "SELECT queries FROM daily_query_counts");
    expect(row!.queries).toBe(5); // each lease of 20 went back but the failed query itself
    await bh.dataManager.queryDocuments("tenant-a", vec(1));
  });

  it("meters a Pinecone query by the read units Pinecone reports, a pgvector query at the flat price", async () => {
    ({ bh, standin } = await openWithPinecone({ config: { usageFlushIntervalMs: 20, prices: { vectorQuery: 0.5, storeReadUnit: 0.001 } } as BulkheadOptions["config"] }));
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { store: "pinecone" });
    await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO);
    for (const t of ["tenant-a", "tenant-b"]) {
      await bh.dataManager.upsertDocuments(t, [{ id: "1", values: vec(1) }]);
      await bh.dataManager.queryDocuments(t, vec(1));
    }
    await bh.costEngine.flush();
    expect((await bh.costEngine.getTenantCostSummary("tenant-a")).breakdown.vectorQueries).toBe(0.001); // 1 read unit
    expect((await bh.costEngine.getTenantCostSummary("tenant-b")).breakdown.vectorQueries).toBe(0.5);
  });

  // ---- Found by a second outside attack run.

  it("moves out of Pinecone with the default batch size, and when the tenant deletes during the copy", async () => {
    ({ bh, standin } = await openWithPinecone({ config: { tierStores: { pro: "pinecone" } } }));
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNLIMITED });
    const model: Model = new Map();
    await seed(bh, "tenant-a", 250, model);
    await bh.registry.moveTenant("tenant-a", { store: "home" }); // default batch: 1,000 (Pinecone lists 100 at a time)
    await expectEqualsModel(bh, model);
    await bh.registry.moveTenant("tenant-a", { store: "pinecone" });
    let deleted = false;
    await bh.registry.changeTier("tenant-a", TenantTier.ENTERPRISE, {
      batchSize: 50,
      onProgress: (p) => {
        if (p.phase === "copying" && p.copied === 50 && !deleted) {
          deleted = true;
          void bh.dataManager.deleteDocuments("tenant-a", ["d00075"]).then(() => model.delete("d00075"));
        }
      },
    });
    expect(deleted).toBe(true);
    expect((await bh.registry.getTenant("tenant-a")).isolation).toBe("dedicated-index");
    await expectEqualsModel(bh, model);
  });

  it("moves out of Pinecone while its reads lag its writes: nothing acknowledged lost, nothing deleted back, counts exact", async () => {
    ({ bh, standin } = await openWithPinecone({ config: { tierStores: { pro: "pinecone" } } }));
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: { ...UNLIMITED, maxDocuments: 30 } });
    const model: Model = new Map();
    await seed(bh, "tenant-a", 10, model);
    standin.consistencyDelayMs = 1_000;
    await bh.dataManager.upsertDocuments("tenant-a", Array.from({ length: 15 }, (_, i) => ({ id: `new${i}`, values: vec(100 + i) })));
    for (let i = 0; i < 15; i++) model.set(`new${i}`, { values: vec(100 + i), metadata: { tenant_id: "tenant-a" } });
    expect((await bh.dataManager.deleteDocuments("tenant-a", ["d00000", "d00001"])).deleted).toBe(2);
    model.delete("d00000");
    model.delete("d00001");
    // Either the move waits for Pinecone to settle, or it is refused and resumed: never decided on a lagging read.
    await bh.registry.moveTenant("tenant-a", { store: "home" }, { batchSize: 20 }).catch(async (err) => {
      expect(String(err.message)).toMatch(/settled|lag/);
      await new Promise((r) => setTimeout(r, 1_100));
      return bh.registry.resumeMove("tenant-a");
    });
    standin.consistencyDelayMs = 0;
    expect((await bh.registry.getTenant("tenant-a")).store).toBe("home");
    await expectEqualsModel(bh, model);
    await bh.dataManager.upsertDocuments("tenant-a", Array.from({ length: 30 - model.size }, (_, i) => ({ id: `fill${i}`, values: vec(i) })));
    await expect(bh.dataManager.upsertDocuments("tenant-a", [{ id: "over", values: vec(1) }])).rejects.toMatchObject({ quota: "maxDocuments" });
  });

  it("a restore that fails while swapping says the tenant is partly restored, with true counts; restoring again completes it", async () => {
    ({ bh, standin } = await openWithPinecone({ config: { tierStores: { pro: "pinecone" } } }));
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNLIMITED });
    const model: Model = new Map();
    await seed(bh, "tenant-a", 250, model);
    await withBackup(bh, "tenant-a", async (file) => {
      await bh.dataManager.deleteDocuments("tenant-a", ["d00000"]);
      // Staging takes one upsert (250 records); the swap's first page goes through, the second fails.
      standin.failNext(5, 503, "/vectors/upsert", 2);
      await expect(bh.restoreTenant(file)).rejects.toThrow(/partly restored, 100 of 250/);
      standin.failures.length = 0;
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(standin.records("bh-1", "tenant-a").length);
      expect((await bh.restoreTenant(file)).documents).toBe(250);
      await expectEqualsModel(bh, model);
    });
  });

  it("bills a move's target dedicated index to the tenant moving, not to everyone", async () => {
    ({ bh, standin } = await openWithPinecone());
    for (const id of ["tenant-a", "tenant-b", "tenant-c"]) await bh.registry.registerTenant(id, id, TenantTier.PRO);
    await bh.registry.beginMove("tenant-a", { tier: TenantTier.ENTERPRISE });
    const shares = await bh.costEngine.allocateFixedCosts(undefined, "equal");
    expect(Math.abs(shares["tenant-b"]! - shares["tenant-c"]!)).toBeLessThanOrEqual(0.011); // cents split by largest remainder
    expect(Math.abs(shares["tenant-a"]! - shares["tenant-b"]! - bh.config.prices.vectorIndexMonthly)).toBeLessThanOrEqual(0.011);
    await bh.registry.rollbackMove("tenant-a");
  });

  it("keeps shared indexes within the plan's namespace limit and provisions the next one ahead of need", async () => {
    ({ bh, standin } = await openWithPinecone({ pinecone: { maxNamespacesPerIndex: 2 }, config: { tierStores: { free: "pinecone" } } }));
    for (const id of ["t-1", "t-2", "t-3"]) await bh.registry.registerTenant(id, id, TenantTier.FREE);
    const capacity = (await bh.registry.getCapacity()).filter((c) => c.index.startsWith("pinecone/"));
    expect(capacity.map((c) => [c.index, c.used, c.max])).toEqual([
      ["pinecone/shared-index-1", 2, 2],
      ["pinecone/shared-index-2", 1, 2],
      ["pinecone/shared-index-3", 0, 2],
    ]);
    expect(standin.indexes.size).toBe(3);
  });

  it("starts only with an API key, and refuses a tier mapped to a store that does not exist", async () => {
    await expect(pglite.open({ config: { pinecone: { name: "pinecone", cloud: "aws", region: "us-east-1", indexPrefix: "bh", maxNamespacesPerIndex: 100, timeoutMs: 1000, maxRetries: 1 } } })).rejects.toThrow(/PINECONE_API_KEY/);
    await expect(pglite.open({ config: { tierStores: { enterprise: "nowhere" } } })).rejects.toThrow(/tier enterprise names store "nowhere"/);
    // An unknown store named with a huge or hostile string: a 400 that does not echo it back.
    const { bulkhead } = await pglite.open();
    try {
      const err = await bulkhead.registry.registerTenant("tenant-x", "X", TenantTier.PRO, { store: `\u0000${"x".repeat(1_000_000)}` }).catch((e) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect(err.message.length).toBeLessThan(300);
    } finally {
      await bulkhead.close();
    }
  });
});

describe("pinecone stand-in", () => {
  let standin: PineconeStandin;
  afterEach(() => standin?.close());

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(standin.url + path, {
      method,
      headers: { "api-key": standin.key, "x-pinecone-api-version": "2026-04", "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
  };
  const index = async () => {
    standin = await new PineconeStandin().start();
    expect((await call("POST", "/indexes", { name: "ix", dimension: 2, metric: "cosine", spec: { serverless: { cloud: "aws", region: "us-east-1" } } })).status).toBe(201);
  };

  it("holds requests to Pinecone's models and limits", async () => {
    await index();
    expect((await call("GET", "/indexes", undefined, { "api-key": "wrong" })).status).toBe(401);
    expect((await call("POST", "/indexes", { name: "Bad_Name", dimension: 2, spec: { serverless: { cloud: "aws", region: "x" } } })).status).toBe(400);
    expect((await call("POST", "/indexes", { name: "ix", dimension: 2, spec: { serverless: { cloud: "aws", region: "x" } } })).status).toBe(409);
    const v = (id: string) => ({ id, values: [1, 0] });
    expect((await call("POST", "/data/ix/vectors/upsert", { vectors: [v("a")], namespace: "n", surprise: 1 })).status).toBe(400); // unknown field
    expect((await call("POST", "/data/ix/vectors/upsert", { vectors: [{ id: "a", values: [1, 0, 0] }], namespace: "n" })).status).toBe(400); // dimension
    expect((await call("POST", "/data/ix/vectors/upsert", { vectors: Array.from({ length: STANDIN_LIMITS.upsertVectors + 1 }, (_, i) => v(`v${i}`)), namespace: "n" })).status).toBe(400);
    expect((await call("POST", "/data/ix/vectors/upsert", { vectors: [{ ...v("a"), metadata: { big: "x".repeat(STANDIN_LIMITS.metadataBytes) } }], namespace: "n" })).status).toBe(400);
    expect((await call("POST", "/data/ix/vectors/upsert", { vectors: [{ ...v("a"), metadata: { nested: { no: 1 } } }], namespace: "n" })).status).toBe(400);
    expect((await call("POST", "/data/ix/query", { topK: STANDIN_LIMITS.topK + 1, vector: [1, 0], namespace: "n" })).status).toBe(400);
    const ids = Array.from({ length: STANDIN_LIMITS.fetchIds + 1 }, (_, i) => `ids=v${i}`).join("&");
    expect((await call("GET", `/data/ix/vectors/fetch?${ids}&namespace=n`)).status).toBe(400);
    expect((await call("POST", "/data/ix/vectors/delete", { namespace: "n", filter: { a: 1 } })).status).toBe(400); // serverless: no delete by filter
  });

  it("creates namespaces on first upsert, pages ids in bytewise order, applies writes late when asked and throttles per namespace", async () => {
    await index();
    expect((await call("GET", "/data/ix/namespaces")).body.namespaces).toEqual([]);
    await call("POST", "/data/ix/vectors/upsert", { vectors: ["b", "a", "é", "Z"].map((id) => ({ id, values: [1, 0] })), namespace: "n" });
    const first = await call("GET", "/data/ix/vectors/list?namespace=n&limit=2");
    expect(first.body.vectors.map((v: { id: string }) => v.id)).toEqual(["Z", "a"]);
    const second = await call("GET", `/data/ix/vectors/list?namespace=n&limit=2&paginationToken=${first.body.pagination.next}`);
    expect(second.body.vectors.map((v: { id: string }) => v.id)).toEqual(["b", "é"]);
    expect(second.body.pagination).toBeUndefined();

    standin.consistencyDelayMs = 200;
    await call("POST", "/data/ix/vectors/upsert", { vectors: [{ id: "late", values: [0, 1] }], namespace: "n" });
    expect((await call("GET", "/data/ix/vectors/fetch?ids=late&namespace=n")).body.vectors).toEqual({});
    await new Promise((r) => setTimeout(r, 250));
    expect(Object.keys((await call("GET", "/data/ix/vectors/fetch?ids=late&namespace=n")).body.vectors)).toEqual(["late"]);

    standin.namespaceRate = 3;
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await call("POST", "/data/ix/query", { topK: 1, vector: [1, 0], namespace: "n" })).status);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect((await call("POST", "/data/ix/query", { topK: 1, vector: [1, 0], namespace: "other" })).status).toBe(200);
  });
});
