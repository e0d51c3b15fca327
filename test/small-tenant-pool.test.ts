import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import type { Db } from "../src/db/db.js";
import { TenantAlreadyExistsError } from "../src/errors.js";
import { BACKENDS, dropTestSchemas, vec, waitFor } from "./backends.js";
import { expectEqualsModel, liveTraffic, seed, UNLIMITED, type Model } from "./live-traffic.js";

afterAll(dropTestSchemas);

for (const backend of BACKENDS) {
  describe(`${backend.name}: small tenants in a pool (BULKHEAD_SMALL_TENANTS=pool)`, () => {
    let bh: Bulkhead;
    let db: Db;
    afterEach(() => bh?.close());

    const open = async (config = {}) => {
      ({ bulkhead: bh, db } = await backend.open({ config: { dimension: 8, annIndexThreshold: 300, smallTenants: "pool", ...config } }));
    };
    const relations = async () => (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1", [db.schema]))[0]!.n;
    /** Rows of `owner` in the pool's table, counted in `asTenant`'s context (RLS decides what it sees). */
    const poolRows = async (indexId: number, asTenant: string, owner: string) =>
      (await db.queryAsTenant<{ n: number }>(asTenant, `SELECT count(*)::int AS n FROM vec_${indexId} WHERE tenant_id = $1`, [owner]))[0]!.n;

    it("registers free and pro tenants into one pool without creating a relation per tenant; enterprise still gets its own index", async () => {
      await open();
      const first = await bh.registry.registerTenant("pool-0", "P0", TenantTier.FREE);
      expect(first.isolation).toBe("pooled");
      expect(first.index).toBe("pool-1");
      const before = await relations();
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) => bh.registry.registerTenant(`pool-${i + 1}`, `P${i + 1}`, i % 2 ? TenantTier.PRO : TenantTier.FREE)));
      expect(new Set(many.map((t) => t.placement.indexId))).toEqual(new Set([first.placement.indexId]));
      expect(await relations()).toBe(before);
      await expect(bh.registry.registerTenant("pool-3", "again", TenantTier.FREE)).rejects.toBeInstanceOf(TenantAlreadyExistsError);
      const big = await bh.registry.registerTenant("big", "Big", TenantTier.ENTERPRISE);
      expect(big.isolation).toBe("dedicated-index");
      expect(await relations()).toBeGreaterThan(before);

      // What operators watch: the pool's tenants as a metric, and a capacity checklist that passes
      // with no shared index at all (a pool has no namespace limit).
      expect(await bh.registry.getPools()).toEqual([{ index: "pool-1", store: "home", tenants: 21 }]);
      expect(await bh.registry.getCapacity()).toEqual([]);
      expect(await bh.monitor.metricsText()).toMatch(/^bulkhead_pool_tenants\{index="pool-1"\} 21$/m);
      const capacityChecks = (await bh.readiness()).filter((c) => c.category === "Capacity");
      expect(capacityChecks.map((c) => [c.name, c.passed])).toEqual(capacityChecks.map((c) => [c.name, true]));
      expect(capacityChecks.find((c) => c.name === "Namespace usage monitored")?.detail).toBe("pool-1 21 pooled tenants");
    });

    it("two registrations of one id at once: one wins, the other is told it exists (no lock serialises pooled registrations)", async () => {
      await open();
      await bh.registry.registerTenant("warm", "W", TenantTier.FREE); // the pool exists
      const outcomes = await Promise.allSettled(Array.from({ length: 4 }, () => bh.registry.registerTenant("twin", "T", TenantTier.FREE)));
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
      for (const o of outcomes) if (o.status === "rejected") expect(o.reason).toBeInstanceOf(TenantAlreadyExistsError);
    });

    it("pooled tenants sharing one table never read, change or count each other's vectors, also through raw SQL in a tenant's context", async () => {
      await open();
      const a = await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNLIMITED });
      await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO, { quota: UNLIMITED });
      // The same ids in both tenants, B's nearer to every query.
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "x", values: vec(1), metadata: { who: "A" } }, { id: "y", values: vec(2), metadata: { who: "A" } }]);
      await bh.dataManager.upsertDocuments("tenant-b", [{ id: "x", values: vec(5), metadata: { who: "B", secret: true } }, { id: "b-only", values: vec(5), metadata: { who: "B", secret: true } }]);

      const found = await bh.dataManager.queryDocuments("tenant-a", vec(5), { topK: 10 });
      expect(found.matches.map((m) => [m.id, m.metadata.who])).toEqual(expect.arrayContaining([["x", "A"], ["y", "A"]]));
      expect(found.matches).toHaveLength(2);
      expect((await bh.dataManager.queryDocuments("tenant-a", vec(5), { topK: 10, filter: { secret: true } })).matches).toEqual([]);
      expect((await bh.dataManager.fetchDocuments("tenant-a", ["x", "b-only"])).documents.map((d) => [d.id, d.metadata.who])).toEqual([["x", "A"]]);
      expect(await bh.dataManager.deleteDocuments("tenant-a", ["b-only"])).toMatchObject({ deleted: 0 });
      await bh.dataManager.deleteDocuments("tenant-a", ["x"]);
      expect((await bh.dataManager.fetchDocuments("tenant-b", ["x", "b-only"])).documents).toHaveLength(2);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(1);
      expect(await bh.dataManager.countDocuments("tenant-b")).toBe(2);

      // Under the application: the pool's table in A's context shows A's rows and nothing of B's.
      const pool = a.placement.indexId;
      expect(await poolRows(pool, "tenant-a", "tenant-b")).toBe(0);
      expect((await db.queryAsTenant<{ n: number }>("tenant-a", `SELECT count(*)::int AS n FROM vec_${pool}`))[0]!.n).toBe(1);
      expect((await db.queryAsTenant("tenant-a", `UPDATE vec_${pool} SET metadata = '{"who":"A"}' WHERE tenant_id = 'tenant-b' RETURNING id`))).toEqual([]);
      await expect(db.queryAsTenant("tenant-a", `INSERT INTO vec_${pool} (tenant_id, id, embedding, metadata) VALUES ('tenant-b', 'planted', $1, '{}')`, [JSON.stringify(vec(3))])).rejects.toThrow(/row-level security/);
      expect(await poolRows(pool, "tenant-b", "tenant-b")).toBe(2);
    });

    it("the pool's table can be neither dropped whole nor given a graph over every tenant's vectors, even by the control-plane role", async () => {
      await open();
      const a = await bh.registry.registerTenant("tenant-a", "A", TenantTier.FREE);
      await expect(db.query("SELECT drop_vector_storage($1, NULL)", [a.placement.indexId])).rejects.toThrow(/pool of tenants/);
      await expect(db.query("SELECT build_ann_index($1, NULL, 'vector_cosine_ops', 16, 64, 64)", [a.placement.indexId])).rejects.toThrow(/pool of tenants/);
      // Nor by first making the pool look like another kind of index (found by an outside attack).
      await expect(db.query("UPDATE indexes SET kind = 'dedicated' WHERE id = $1", [a.placement.indexId])).rejects.toThrow(/permission denied/);
    });

    it("a pooled tenant that outgrows exact search moves online to a namespace with its own graph while it writes and reads; its neighbours stay", async () => {
      await open();
      const pooled = await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNLIMITED });
      await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO, { quota: UNLIMITED });
      await bh.dataManager.upsertDocuments("tenant-b", [{ id: "b1", values: vec(1), metadata: { secret: "B" } }]);
      const model: Model = new Map();
      await seed(bh, "tenant-a", 280, model);
      expect((await bh.registry.getTenant("tenant-a")).isolation).toBe("pooled");

      let done = false;
      const traffic = liveTraffic(bh, model, () => done, () => "live");
      // The writer's own upserts cross the threshold (300): the upsert that does moves the tenant.
      await waitFor("tenant-a to leave the pool", async () => (await bh.registry.getTenant("tenant-a")).isolation === "namespace", 60_000);
      done = true;
      await traffic.finished;
      expect(traffic.stats.errors).toEqual([]);
      expect(traffic.stats.foreign).toEqual([]);
      const moved = await bh.registry.getTenant("tenant-a");
      expect(moved.placement.annIndexed).toBe(true);
      expect(moved.index).toMatch(/shared-index-1$/);
      await expectEqualsModel(bh, model);
      expect(await poolRows(pooled.placement.indexId, "tenant-a", "tenant-a")).toBe(0);
      expect((await bh.dataManager.fetchDocuments("tenant-b", ["b1"])).documents).toHaveLength(1);
      expect(await bh.registry.getMove("tenant-a")).toBeNull();
    });

    it("erasing a pooled tenant deletes its rows only, proved; backup and restore bring them back into the pool", async () => {
      await open();
      const a = await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNLIMITED });
      await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO, { quota: UNLIMITED });
      await seed(bh, "tenant-a", 50);
      await seed(bh, "tenant-b", 40);
      const file = join(mkdtempSync(join(tmpdir(), "bh-pool-")), "a.bhb");
      await bh.backupTenant("tenant-a", file);
      const report = await bh.eraseTenant("tenant-a", "admin:test");
      expect(report.verified).toBe(true);
      expect(await poolRows(a.placement.indexId, "tenant-a", "tenant-a")).toBe(0);
      expect(await poolRows(a.placement.indexId, "tenant-b", "tenant-b")).toBe(40);
      const restored = await bh.restoreTenant(file);
      expect(restored.documents).toBe(50);
      expect((await bh.registry.getTenant("tenant-a")).isolation).toBe("pooled");
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(50);
    });
  });
}
