import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import type { Db } from "../src/db/db.js";
import { IsolationViolationError, TenantAlreadyExistsError, TenantNotFoundError, TenantSuspendedError, ValidationError } from "../src/errors.js";
import { probeCrossTenantIsolation, testCrossTenantIsolation } from "../src/isolation/cross-tenant-probe.js";
import { indexName } from "../src/tenancy/slot-allocation.js";
import { capabilitiesOf, dropTestSchemas, STORES, vec } from "./backends.js";

afterAll(dropTestSchemas);

for (const backend of STORES) {
  describe(`${backend.name}: tenant isolation`, () => {
    let bh: Bulkhead;
    let db: Db;
    /** An index's catalogue name in the store under test. */
    let ix: (name: string) => string;

    beforeEach(async () => {
      ({ bulkhead: bh, db } = await backend.open({ config: { dimension: 8, poolSize: 2 } }));
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.FREE);
      await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO);
      await bh.registry.registerTenant("tenant-e", "E", TenantTier.ENTERPRISE);
      const { store } = await bh.registry.getTenant("tenant-a");
      ix = (name) => indexName(store, name);
    });
    afterEach(() => bh.close());

    it("places free and pro tenants in a shared index and enterprise in a dedicated one", async () => {
      const [a, b, e] = await Promise.all(["tenant-a", "tenant-b", "tenant-e"].map((t) => bh.registry.getTenant(t)));
      expect([a!.index, a!.namespace, a!.dedicatedIndex, a!.isolation]).toEqual([ix("shared-index-1"), "tenant-a", null, "namespace"]);
      expect(b!.index).toBe(ix("shared-index-1"));
      expect([e!.index, e!.dedicatedIndex, e!.isolation]).toEqual([ix("dedicated-tenant-e"), ix("dedicated-tenant-e"), "dedicated-index"]);
      expect(await bh.registry.getNamespaceUsage()).toEqual({ [ix("shared-index-1")]: 2 });
      expect(a!.quota).toEqual({ maxDocuments: 10_000, maxTextChunks: 10_000, maxDailyLlmTokens: 100_000, maxDailyQueries: 1_000, requestsPerSecond: 10, burst: 20, maxConcurrent: 4, requestBytesPerSecond: 1_048_576 });
    });

    it("refuses a duplicate registration without overwriting, and invalid ids", async () => {
      await expect(bh.registry.registerTenant("tenant-a", "Impostor", TenantTier.ENTERPRISE)).rejects.toBeInstanceOf(TenantAlreadyExistsError);
      const a = await bh.registry.getTenant("tenant-a");
      expect([a.tenantName, a.tier]).toEqual(["A", "free"]);
      for (const bad of ["A-upper", "-lead", "x", "a".repeat(64), "tenant_a", "ten ant"]) {
        await expect(bh.registry.registerTenant(bad, "x", TenantTier.FREE)).rejects.toBeInstanceOf(ValidationError);
      }
    });

    it("keeps the same document id in two tenants as two documents", async () => {
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "doc-1", values: vec(1), metadata: { owner: "a" } }]);
      await bh.dataManager.upsertDocuments("tenant-b", [{ id: "doc-1", values: vec(2), metadata: { owner: "b" } }]);
      await bh.dataManager.upsertDocuments("tenant-e", [{ id: "doc-1", values: vec(3), metadata: { owner: "e" } }]);
      for (const [t, owner] of [["tenant-a", "a"], ["tenant-b", "b"], ["tenant-e", "e"]] as const) {
        const { documents } = await bh.dataManager.fetchDocuments(t, ["doc-1"]);
        expect(documents).toHaveLength(1);
        expect(documents[0]!.metadata).toEqual({ owner, tenant_id: t });
      }
      await bh.dataManager.deleteDocuments("tenant-b", ["doc-1"]);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(1);
      expect(await bh.dataManager.countDocuments("tenant-b")).toBe(0);
    });

    it("stamps tenant_id and refuses a caller's attempt to set another", async () => {
      await expect(bh.dataManager.upsertDocuments("tenant-b", [{ id: "x", values: vec(1), metadata: { tenant_id: "tenant-a" } }])).rejects.toThrow(/documents\[0\]\.metadata\.tenant_id/);
      await bh.dataManager.upsertDocuments("tenant-b", [{ id: "x", values: vec(1), metadata: { tenant_id: "tenant-b", k: 1 } }]);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(0);
    });

    it("never lets a filter widen the scope (tenant_id keys, $or, $ne, $exists)", async () => {
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "a1", values: vec(1), metadata: { secret: "a" } }]);
      await bh.dataManager.upsertDocuments("tenant-b", [{ id: "b1", values: vec(2), metadata: { secret: "b" } }]);
      const attacks = [
        { tenant_id: "tenant-a" },
        { tenant_id: { $ne: "tenant-b" } },
        { $or: [{ tenant_id: "tenant-a" }, { secret: { $exists: true } }] },
        { $or: [{ secret: "a" }, { secret: { $ne: "zzz" } }] },
        { tenant_id: { $in: ["tenant-a", "tenant-b"] } },
        { "tenant_id') OR true --": "x" },
        { secret: "a' OR '1'='1" },
      ];
      for (const filter of attacks) {
        const r = await bh.dataManager.queryDocuments("tenant-b", vec(1), { topK: 50, filter });
        expect(r.matches.every((m) => m.metadata.tenant_id === "tenant-b"), JSON.stringify(filter)).toBe(true);
        expect(r.matches.map((m) => m.id)).not.toContain("a1");
      }
    });

    it("implements Pinecone's filter operators", async () => {
      await bh.dataManager.upsertDocuments("tenant-a", [
        { id: "d1", values: vec(1), metadata: { genre: "drama", year: 2019, tags: ["x", "y"], draft: false } },
        { id: "d2", values: vec(2), metadata: { genre: "comedy", year: 2021, tags: ["y"] } },
        { id: "d3", values: vec(3), metadata: { genre: "drama", year: 2023, draft: true } },
      ]);
      const ids = async (filter: Record<string, unknown>) =>
        (await bh.dataManager.queryDocuments("tenant-a", vec(1), { topK: 10, filter })).matches.map((m) => m.id).sort();
      expect(await ids({ genre: "drama" })).toEqual(["d1", "d3"]);
      expect(await ids({ genre: { $ne: "drama" } })).toEqual(["d2"]);
      expect(await ids({ year: { $gte: 2021 } })).toEqual(["d2", "d3"]);
      expect(await ids({ year: { $gt: 2019, $lt: 2023 } })).toEqual(["d2"]);
      expect(await ids({ year: { $lte: 2019 } })).toEqual(["d1"]);
      expect(await ids({ genre: { $in: ["comedy", "horror"] } })).toEqual(["d2"]);
      expect(await ids({ genre: { $nin: ["comedy"] } })).toEqual(["d1", "d3"]);
      expect(await ids({ tags: "x" })).toEqual(["d1"]);
      expect(await ids({ tags: { $in: ["y"] } })).toEqual(["d1", "d2"]);
      expect(await ids({ draft: { $exists: false } })).toEqual(["d2"]);
      expect(await ids({ draft: true })).toEqual(["d3"]);
      expect(await ids({ $or: [{ year: 2019 }, { genre: "comedy" }] })).toEqual(["d1", "d2"]);
      expect(await ids({ $and: [{ genre: "drama" }, { year: { $gt: 2020 } }] })).toEqual(["d3"]);
      await expect(ids({ year: { $regex: ".*" } })).rejects.toThrow(/filter\.year\.\$regex: unknown operator/);
      await expect(ids({ $or: [] })).rejects.toBeInstanceOf(ValidationError);
      // Empty objects count too: `{}` compiles to TRUE, and 300 of them were once SQL of any length.
      await expect(ids({ $or: Array.from({ length: 300 }, () => ({})) })).rejects.toThrow(/at most 256 conditions/);
      expect(await ids({ $or: [{}, { genre: "comedy" }] })).toEqual(["d1", "d2", "d3"]);
      await expect(ids({ year: { $gt: "2020" } })).rejects.toThrow(/finite number/);
    });

    it("rejects bad input naming the field, and a batch with one bad row writes nothing", async () => {
      const dm = bh.dataManager;
      const cases: [unknown[], RegExp][] = [
        [[{ id: "ok", values: vec(1) }, { id: "bad", values: [1, 2, 3] }], /documents\[1\]\.values: has 3 dimensions; this tenant's index has 8/],
        [[{ id: "ok", values: vec(1) }, { id: "nan", values: [...vec(1).slice(1), NaN] }], /documents\[1\]\.values\[7\]: must be a finite number/],
        [[{ id: "inf", values: [Infinity, ...vec(1).slice(1)] }], /documents\[0\]\.values\[0\]/],
        [[{ id: "", values: vec(1) }], /documents\[0\]\.id: must be a non-empty string/],
        [[{ id: "x".repeat(513), values: vec(1) }], /documents\[0\]\.id: must be at most 512 bytes/],
        [[{ id: "big", values: vec(1), metadata: { text: "x".repeat(50_000) } }], /documents\[0\]\.metadata: is \d+ bytes as JSON; the limit is 40960/],
        [[{ id: "dup", values: vec(1) }, { id: "dup", values: vec(2) }], /documents\[1\]\.id: "dup" also appears at documents\[0\]/],
        [[{ id: "z", values: vec(1).map(() => 0) }], /all zeros/],
        [[{ id: "obj", values: vec(1), metadata: { nested: { a: 1 } } }], /metadata\.nested/],
      ];
      for (const [docs, message] of cases) {
        await expect(dm.upsertDocuments("tenant-a", docs as never)).rejects.toThrow(message);
      }
      expect(await dm.countDocuments("tenant-a")).toBe(0);
      await expect(dm.queryDocuments("tenant-a", vec(1), { topK: 0 })).rejects.toThrow(/topK: must be a whole number from 1 to 1000/);
      await expect(dm.queryDocuments("tenant-a", vec(1), { topK: 1001 })).rejects.toThrow(/topK/);
      await expect(dm.queryDocuments("tenant-a", [1, 2])).rejects.toThrow(/queryVector: has 2 dimensions/);
      await expect(dm.fetchDocuments("tenant-a", [])).rejects.toThrow(/ids: must be a non-empty array/);
    });

    it("refuses unknown, suspended and deleted tenants with typed errors", async () => {
      await expect(bh.dataManager.queryDocuments("tenant-zz", vec(1))).rejects.toBeInstanceOf(TenantNotFoundError);
      await bh.registry.suspendTenant("tenant-a");
      await expect(bh.dataManager.upsertDocuments("tenant-a", [{ id: "x", values: vec(1) }])).rejects.toBeInstanceOf(TenantSuspendedError);
      await expect(bh.dataManager.fetchDocuments("tenant-a", ["x"])).rejects.toBeInstanceOf(TenantSuspendedError);
      await bh.registry.resumeTenant("tenant-a");
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "x", values: vec(1) }]);
      await bh.registry.deleteTenant("tenant-a");
      await expect(bh.dataManager.countDocuments("tenant-a")).rejects.toBeInstanceOf(TenantNotFoundError);
      expect(await bh.registry.getNamespaceUsage()).toEqual({ [ix("shared-index-1")]: 1 });
    });

    // Row-level security on the vector tables: pgvector's second wall. Pinecone's is the namespace
    // derived from the placement (test/pinecone-store.test.ts, and every other test here).
    it("shows the runtime role nothing without tenant context, and nothing of A under B's context", async (ctx) => {
      if (!(await capabilitiesOf(bh, "tenant-a")).rowLevelSecurity) ctx.skip();
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "a1", values: vec(1) }]);
      await bh.dataManager.upsertDocuments("tenant-e", [{ id: "e1", values: vec(1) }]);
      const a = (await bh.registry.getTenant("tenant-a")).placement;
      const e = (await bh.registry.getTenant("tenant-e")).placement;
      // Control-plane connection (runtime role, no tenant context): no rows at all, even with an explicit WHERE.
      expect(await db.query(`SELECT * FROM vec_${a.indexId} WHERE tenant_id = 'tenant-a'`)).toEqual([]);
      expect(await db.query(`SELECT * FROM vec_${e.indexId}`)).toEqual([]);
      // An empty context is no context.
      await expect(db.queryAsTenant("", `SELECT * FROM vec_${a.indexId}`)).resolves.toEqual([]);
      // B's context on A's shared index and on E's dedicated table: nothing.
      expect(await db.queryAsTenant("tenant-b", `SELECT * FROM vec_${a.indexId} WHERE tenant_id = 'tenant-a'`)).toEqual([]);
      expect(await db.queryAsTenant("tenant-b", `SELECT * FROM vec_${e.indexId}`)).toEqual([]);
      // Writing A's rows under B's context is refused by the policy's WITH CHECK.
      await expect(db.queryAsTenant("tenant-b", `INSERT INTO vec_${e.indexId} (tenant_id, id, embedding, metadata) VALUES ('tenant-e', 'x', $1, '{}')`, [`[${vec(5).join(",")}]`])).rejects.toThrow(/row-level security/);
      expect(await db.queryAsTenant("tenant-b", `UPDATE vec_${a.indexId} SET metadata = '{}' WHERE tenant_id = 'tenant-a' RETURNING id`)).toEqual([]);
      expect(await db.queryAsTenant("tenant-b", `DELETE FROM vec_${e.indexId} RETURNING id`)).toEqual([]);
      // The partition itself cannot be named directly.
      await expect(db.queryAsTenant("tenant-a", `SELECT * FROM vec_${a.indexId}_${a.slot}`)).rejects.toThrow(/permission denied/);
      expect(await bh.dataManager.countDocuments("tenant-e")).toBe(1);
    });

    it("never lets tenant context bleed between interleaved transactions on a pool of 2", async (ctx) => {
      if (!(await capabilitiesOf(bh, "tenant-a")).rowLevelSecurity) ctx.skip();
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "a1", values: vec(1) }]);
      await bh.dataManager.upsertDocuments("tenant-b", [{ id: "b1", values: vec(2) }]);
      const idx = (await bh.registry.getTenant("tenant-a")).placement.indexId;
      const jobs = Array.from({ length: 1000 }, (_, i) => {
        if (i % 5 === 4) return db.query<{ ctx: string | null; n: number }>(`SELECT current_setting('bulkhead.tenant_id', true) AS ctx, (SELECT count(*)::int FROM vec_${idx}) AS n`).then(([r]) => ["", r!]);
        const t = i % 2 === 0 ? "tenant-a" : "tenant-b";
        return db.queryAsTenant<{ ctx: string; ids: string[] }>(t, `SELECT current_setting('bulkhead.tenant_id') AS ctx, ARRAY(SELECT id FROM vec_${idx} ORDER BY id) AS ids`).then(([r]) => [t, r!]);
      });
      const results = await Promise.all(jobs);
      for (const [t, r] of results as [string, { ctx: string | null; ids?: string[]; n?: number }][]) {
        if (t === "") {
          expect(r.ctx ?? "").toBe("");
          expect(r.n).toBe(0);
        } else {
          expect(r.ctx).toBe(t);
          expect(r.ids).toEqual([t === "tenant-a" ? "a1" : "b1"]);
        }
      }
    });

    it("keeps a connection usable after a failed tenant statement, with the context still applied", async () => {
      const { bulkhead: one, db: oneDb } = await backend.open({ config: { dimension: 8, poolSize: 1 } });
      try {
        await one.registry.registerTenant("tenant-a", "A", TenantTier.FREE);
        // First statement on the only connection fails to parse, then one fails while executing.
        await expect(oneDb.queryAsTenant("tenant-a", "SELEC 1")).rejects.toThrow(/syntax error/);
        await expect(oneDb.queryAsTenant("tenant-a", "SELECT 1 / 0")).rejects.toThrow(/division by zero/);
        expect(await oneDb.queryAsTenant("tenant-a", "SELECT current_setting('bulkhead.tenant_id') AS t")).toEqual([{ t: "tenant-a" }]);
        expect(await oneDb.query("SELECT current_setting('bulkhead.tenant_id', true) AS t")).toEqual([{ t: "" }]);
      } finally {
        await one.close();
      }
    });

    it("passes the cross-tenant probe, which can detect a leak", async () => {
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "a1", values: vec(1) }]);
      expect(await testCrossTenantIsolation(bh.dataManager, "tenant-a", "tenant-b")).toBe(true);
      expect(await testCrossTenantIsolation(bh.dataManager, "tenant-e", "tenant-a")).toBe(true);
      // The probe cleans up after itself.
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(1);
      expect(await bh.dataManager.countDocuments("tenant-b")).toBe(0);
      // A data manager that routes B's reads to A's data must fail the probe.
      const dm = bh.dataManager;
      const leaky = Object.create(dm);
      leaky.queryDocuments = (t: string, v: number[], o: object) => dm.queryDocuments(t === "tenant-b" ? "tenant-a" : t, v, o);
      leaky.fetchDocuments = (t: string, ids: string[]) => dm.fetchDocuments(t === "tenant-b" ? "tenant-a" : t, ids);
      const report = await probeCrossTenantIsolation(leaky, "tenant-a", "tenant-b");
      expect(report.passed).toBe(false);
      expect(report.attempts.find((x) => x.name === "B fetches A's ids")!.passed).toBe(false);
    });

    it("withholds a response that carries another tenant's row", async () => {
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "a1", values: vec(1) }]);
      const store = (bh.dataManager as unknown as { store: { fetch: (...a: unknown[]) => Promise<unknown[]> } }).store;
      const realFetch = store.fetch.bind(store);
      store.fetch = async (...args) => [...(await realFetch(...args)), { id: "evil", values: vec(1), metadata: { tenant_id: "tenant-a" }, tenantId: "tenant-a" }];
      await expect(bh.dataManager.fetchDocuments("tenant-b", ["x"])).rejects.toBeInstanceOf(IsolationViolationError);
    });

    it("moves a tenant's data between shared and dedicated indexes on a tier change", async () => {
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "a1", values: vec(1), metadata: { k: 1 } }, { id: "a2", values: vec(2) }]);
      const up = await bh.registry.changeTier("tenant-a", TenantTier.ENTERPRISE);
      expect([up.index, up.isolation]).toEqual([ix("dedicated-tenant-a"), "dedicated-index"]);
      expect(await bh.registry.getNamespaceUsage()).toEqual({ [ix("shared-index-1")]: 1 });
      expect((await bh.dataManager.fetchDocuments("tenant-a", ["a1", "a2"])).documents.map((d) => d.id).sort()).toEqual(["a1", "a2"]);
      const down = await bh.registry.changeTier("tenant-a", TenantTier.PRO);
      expect([down.index, down.tier]).toEqual([ix("shared-index-1"), "pro"]);
      const r = await bh.dataManager.queryDocuments("tenant-a", vec(1), { topK: 1 });
      expect(r.matches[0]).toMatchObject({ id: "a1", metadata: { k: 1, tenant_id: "tenant-a" } });
      expect(await db.query("SELECT name FROM indexes ORDER BY id")).toEqual([{ name: ix("shared-index-1") }, { name: ix("dedicated-tenant-e") }]);
      // Between free and pro nothing moves: the tier (and with it the quota) changes in place.
      const free = await bh.registry.changeTier("tenant-a", TenantTier.FREE);
      expect([free.tier, free.index, free.namespace, free.quota.maxDocuments]).toEqual(["free", down.index, down.namespace, 10_000]);
      await expect(bh.registry.changeTier("nobody", TenantTier.PRO)).rejects.toBeInstanceOf(TenantNotFoundError);
    });

    it("gives a namespace an HNSW index once it outgrows exact search, and still finds exact matches", async (ctx) => {
      if (!(await capabilitiesOf(bh, "tenant-a")).annIndexes) ctx.skip(); // the store indexes everything itself
      const { bulkhead: small, db: smallDb } = await backend.open({ config: { dimension: 8, annIndexThreshold: 20 } });
      try {
        await small.registry.registerTenant("big", "Big", TenantTier.PRO);
        await small.dataManager.upsertDocuments("big", Array.from({ length: 25 }, (_, i) => ({ id: `d${i}`, values: vec(i) })));
        const t = await small.registry.getTenant("big");
        expect(t.placement.annIndexed).toBe(true);
        const indexes = await smallDb.query<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexdef LIKE '%hnsw%'", [smallDb.schema]);
        expect(indexes).toHaveLength(1);
        const r = await small.dataManager.queryDocuments("big", vec(7), { topK: 3 });
        expect(r.matches[0]!.id).toBe("d7");
        expect(r.matches[0]!.score).toBeCloseTo(1, 5);
      } finally {
        await small.close();
      }
    });

    it("reports every readiness check as passing on a correct deployment, and fails the ones that are not", async () => {
      const before = await bh.readiness({ probeTenants: ["tenant-a", "tenant-b"], sampleTenant: "tenant-a" });
      expect(before.filter((c) => !c.passed).map((c) => c.name)).toEqual(["Fixed costs allocated for this month"]);
      await bh.costEngine.allocateFixedCosts(undefined, "equal");
      const checks = await bh.readiness({ probeTenants: ["tenant-a", "tenant-b"], sampleTenant: "tenant-a" });
      expect(checks.filter((c) => !c.passed)).toEqual([]);
      expect(checks.length).toBeGreaterThanOrEqual(10);
    });
  });
}
