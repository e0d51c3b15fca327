import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import type { Db } from "../src/db/db.js";
import type { VectorStore } from "../src/stores/store.js";
import type { PendingIndexer } from "../src/data/pending-indexer.js";
import { BACKENDS, dropTestSchemas, vec, waitFor } from "./backends.js";

/**
 * Writes ahead of the graph (migration 18): once a namespace has its HNSW index, an upsert stores
 * its vectors in `pending` (no graph insertion), searches read them exactly at once, and the pending
 * indexer adds them to the graph in the background. The store is driven directly where the test
 * must see the rows before the indexer moves them.
 */
afterAll(dropTestSchemas);

for (const backend of BACKENDS) {
  describe(`writes ahead of the HNSW index: ${backend.name}`, () => {
    let bh: Bulkhead;
    let db: Db;
    let store: VectorStore;
    let indexer: PendingIndexer;
    afterEach(() => bh?.close());

    const open = async () => {
      ({ bulkhead: bh, db, store, pendingIndexer: indexer } = await backend.open({ config: { dimension: 8, annIndexThreshold: 20 } }));
      for (const id of ["tenant-a", "tenant-b"]) await bh.registry.registerTenant(id, id, TenantTier.PRO);
      for (const id of ["tenant-a", "tenant-b"]) {
        await bh.dataManager.upsertDocuments(id, Array.from({ length: 30 }, (_, i) => ({ id: `base-${i}`, values: vec(i), metadata: { batch: "base" } })));
        expect((await bh.registry.getTenant(id)).placement.annIndexed).toBe(true);
        // Its first search offers it to the indexer (vectors an earlier process left): let that pass,
        // so that what the tests write through the store directly stays pending until they index it.
        await bh.dataManager.queryDocuments(id, vec(0));
      }
      await indexer.idle();
    };
    const placement = async (id: string) => (await bh.registry.getTenant(id)).placement;
    // Read in the tenant's own context: the vector tables force row-level security, even on their owner.
    const pendingRows = async (tenant: string) => {
      const table = `vec_${(await placement(tenant)).indexId}`;
      return db.withTenant(tenant, async (tx) => (await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE tenant_id = $1 AND pending IS NOT NULL`, [tenant]))[0]!.n);
    };
    const write = async (tenant: string, docs: { id: string; values: number[]; metadata?: Record<string, unknown> }[]) =>
      store.upsert(await placement(tenant), docs.map((d) => ({ ...d, metadata: { ...d.metadata, tenant_id: tenant } })), 10_000);

    it("acknowledges a write without the graph, finds it at once exactly, and the indexer adds it without changing an answer", async () => {
      await open();
      const outcome = await write("tenant-a", Array.from({ length: 25 }, (_, i) => ({ id: `new-${i}`, values: vec(100 + i) })));
      expect(outcome).toMatchObject({ upserted: 25, added: 25, pending: true });
      expect(await pendingRows("tenant-a")).toBe(25);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(55);

      const before = await bh.dataManager.queryDocuments("tenant-a", vec(107), { topK: 5 });
      expect(before.matches[0]).toMatchObject({ id: "new-7" });
      expect(before.matches[0]!.score).toBeCloseTo(1, 5);
      expect((await bh.dataManager.fetchDocuments("tenant-a", ["new-7"])).documents[0]!.values.map((v) => Math.round(v * 1e4))).toEqual(vec(107).map((v) => Math.round(v * 1e4)));

      expect(await store.indexPending!(await placement("tenant-a"), 10)).toBe(10);
      expect(await pendingRows("tenant-a")).toBe(15);
      expect(await store.indexPending!(await placement("tenant-a"), 100)).toBe(15);
      expect(await pendingRows("tenant-a")).toBe(0);
      const after = await bh.dataManager.queryDocuments("tenant-a", vec(107), { topK: 5 });
      expect(after.matches.map((m) => m.id)).toEqual(before.matches.map((m) => m.id));
    });

    it("a re-upsert of an indexed vector is searched by its new value only, never twice; deleting a pending vector removes it", async () => {
      await open();
      await write("tenant-a", [{ id: "base-3", values: vec(500), metadata: { changed: true } }]);
      expect(await pendingRows("tenant-a")).toBe(1);
      const near = await bh.dataManager.queryDocuments("tenant-a", vec(500), { topK: 30 });
      expect(near.matches[0]).toMatchObject({ id: "base-3", metadata: { changed: true } });
      expect(near.matches.filter((m) => m.id === "base-3")).toHaveLength(1);
      // Near the old value, the old version is not found (its graph entry points at a dead row).
      const old = await bh.dataManager.queryDocuments("tenant-a", vec(3), { topK: 30 });
      expect(old.matches.filter((m) => m.id === "base-3")).toHaveLength(1);
      expect(old.matches[0]!.id).not.toBe("base-3");
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(30);

      await bh.dataManager.deleteDocuments("tenant-a", ["base-3"]);
      expect(await pendingRows("tenant-a")).toBe(0);
      expect((await bh.dataManager.queryDocuments("tenant-a", vec(500), { topK: 30 })).matches.map((m) => m.id)).not.toContain("base-3");
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(29);
    });

    it("keeps pending vectors to their tenant: another tenant's search, filters, fetch and indexing never reach them", async () => {
      await open();
      await write("tenant-b", [{ id: "b-secret", values: vec(900), metadata: { owner: "B" } }]);
      await write("tenant-a", [{ id: "a-new", values: vec(901), metadata: { owner: "A" } }]);
      for (const filter of [undefined, { owner: "B" }, { tenant_id: "tenant-b" }, { $or: [{ owner: "B" }, { owner: "A" }] }]) {
        const { matches } = await bh.dataManager.queryDocuments("tenant-a", vec(900), { topK: 50, filter });
        expect(matches.map((m) => m.id)).not.toContain("b-secret");
        expect(matches.every((m) => m.metadata.tenant_id === "tenant-a")).toBe(true);
      }
      expect((await bh.dataManager.fetchDocuments("tenant-a", ["b-secret"])).documents).toEqual([]);
      // A's indexing takes A's rows only.
      expect(await store.indexPending!(await placement("tenant-a"), 100)).toBe(1);
      expect(await pendingRows("tenant-b")).toBe(1);
      expect((await bh.dataManager.queryDocuments("tenant-b", vec(900), { topK: 1 })).matches[0]!.id).toBe("b-secret");
    });

    it("backs up and moves a tenant's pending vectors with their values", async () => {
      await open();
      await write("tenant-a", Array.from({ length: 12 }, (_, i) => ({ id: `p-${i}`, values: vec(300 + i) })));
      const pages = await store.page(await placement("tenant-a"), null, 1000);
      expect(pages).toHaveLength(42);
      expect(pages.find((r) => r.id === "p-4")!.values.map((v) => Math.round(v * 1e4))).toEqual(vec(304).map((v) => Math.round(v * 1e4)));

      const moved = await bh.registry.changeTier("tenant-a", TenantTier.ENTERPRISE);
      expect(moved.isolation).toBe("dedicated-index");
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(42);
      expect(await pendingRows("tenant-a")).toBe(0);
      const { matches } = await bh.dataManager.queryDocuments("tenant-a", vec(304), { topK: 1 });
      expect(matches[0]).toMatchObject({ id: "p-4" });
      expect(matches[0]!.score).toBeCloseTo(1, 5);
    });

    it("answers topK past the search width, and whole however many dead versions re-upserts left in the graph", async () => {
      await open();
      await bh.registry.setEfSearch("tenant-a", 10);
      // Each round leaves two dead versions of every vector in the graph (into `pending`, then back).
      for (let round = 0; round < 4; round++) {
        await write("tenant-a", Array.from({ length: 30 }, (_, i) => ({ id: `base-${i}`, values: vec(i + round) })));
        while ((await store.indexPending!(await placement("tenant-a"), 100)) > 0);
      }
      for (let i = 0; i < 30; i += 3) expect((await bh.dataManager.queryDocuments("tenant-a", vec(i), { topK: 10 })).matches).toHaveLength(10);
      expect((await bh.dataManager.queryDocuments("tenant-a", vec(1), { topK: 25 })).matches).toHaveLength(25);
    });

    it("writes into the graph directly once a tenant's vectors waiting beside it reach BULKHEAD_MAX_PENDING_VECTORS (0: always)", async () => {
      ({ bulkhead: bh, db, store, pendingIndexer: indexer } = await backend.open({ config: { dimension: 8, annIndexThreshold: 20, maxPendingVectors: 0 } }));
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
      await bh.dataManager.upsertDocuments("tenant-a", Array.from({ length: 30 }, (_, i) => ({ id: `base-${i}`, values: vec(i) })));
      expect((await placement("tenant-a")).annIndexed).toBe(true);
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "direct", values: vec(55) }]);
      expect(await pendingRows("tenant-a")).toBe(0);
      expect((await bh.dataManager.queryDocuments("tenant-a", vec(55), { topK: 1 })).matches[0]!.id).toBe("direct");
    });

    it("answers a selective filter whole when its matches lie beyond what the graph walk reaches (searched again exactly)", async () => {
      ({ bulkhead: bh, db, store, pendingIndexer: indexer } = await backend.open({ config: { dimension: 8, annIndexThreshold: 1_000_000 } }));
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: { maxDocuments: 30_000, requestsPerSecond: 10_000, burst: 10_000 } });
      // 21,000 vectors around one direction (more than the walk's 20,000-tuple limit) and 5 tagged ones opposite.
      for (let s = 0; s < 21_000; s += 1000) await bh.dataManager.upsertDocuments("tenant-a", Array.from({ length: 1000 }, (_, i) => ({ id: `near-${s + i}`, values: vec(s + i) })));
      await bh.dataManager.upsertDocuments("tenant-a", Array.from({ length: 5 }, (_, i) => ({ id: `rare-${i}`, values: vec(i).map((v) => -v), metadata: { tag: "rare" } })));
      expect(await bh.registry.ensureAnnIndex(await bh.registry.getTenant("tenant-a"), 1)).toBe(true);
      const { matches } = await bh.dataManager.queryDocuments("tenant-a", vec(3), { topK: 5, filter: { tag: "rare" } });
      expect(matches.map((m) => m.id).sort()).toEqual(["rare-0", "rare-1", "rare-2", "rare-3", "rare-4"]);
    }, 60_000);

    it("catches up what an earlier process left beside the graph at the tenant's first search", async () => {
      ({ bulkhead: bh, db, store, pendingIndexer: indexer } = await backend.open({ config: { dimension: 8, annIndexThreshold: 20 } }));
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
      await bh.dataManager.upsertDocuments("tenant-a", Array.from({ length: 30 }, (_, i) => ({ id: `base-${i}`, values: vec(i) })));
      await write("tenant-a", [{ id: "left", values: vec(77) }]); // as a process that stopped before its indexer ran
      expect(await pendingRows("tenant-a")).toBe(1);
      expect((await bh.dataManager.queryDocuments("tenant-a", vec(77), { topK: 1 })).matches[0]!.id).toBe("left");
      await indexer.idle();
      expect(await pendingRows("tenant-a")).toBe(0);
    });

    it("through the public API: the writes are acknowledged, searchable at once, and the indexer catches the namespace up on its own", async () => {
      await open();
      await bh.dataManager.upsertDocuments("tenant-a", Array.from({ length: 450 }, (_, i) => ({ id: `bulk-${i}`, values: vec(1000 + i) })));
      expect((await bh.dataManager.queryDocuments("tenant-a", vec(1449), { topK: 1 })).matches[0]!.id).toBe("bulk-449");
      await waitFor("the pending indexer to catch up", async () => (await pendingRows("tenant-a")) === 0);
      expect((await bh.dataManager.queryDocuments("tenant-a", vec(1449), { topK: 1 })).matches[0]!.id).toBe("bulk-449");
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(480);
    });
  });
}
