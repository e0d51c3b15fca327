import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import type { Db } from "../src/db/db.js";
import { AuthenticationError, TenantNotFoundError } from "../src/errors.js";
import { capabilitiesOf, dropTestSchemas, STORES, vec } from "./backends.js";

afterAll(dropTestSchemas);

for (const backend of STORES) {
  describe(`${backend.name}: erasure`, () => {
    let bh: Bulkhead;
    let db: Db;
    afterEach(() => bh?.close());

    it("erases every row of the tenant (catalog scan), keeps billing by rule, leaves others untouched, and frees the namespace", async () => {
      ({ bulkhead: bh, db } = await backend.open({ config: { dimension: 8 } }));
      for (const id of ["tenant-a", "tenant-b"]) await bh.registry.registerTenant(id, id, TenantTier.PRO);
      await bh.registry.registerTenant("tenant-e", "E", TenantTier.ENTERPRISE);
      for (const id of ["tenant-a", "tenant-b", "tenant-e"]) {
        await bh.dataManager.upsertDocuments(id, [{ id: "d1", values: vec(1), metadata: { secret: `${id} data` } }, { id: "d2", values: vec(2) }]);
        await bh.dataManager.queryDocuments(id, vec(1), { topK: 1 });
      }
      await bh.costEngine.flush();
      const { key } = await bh.keys.createKey("tenant", { tenantId: "tenant-a" }, "test");
      expect((await bh.keys.verify(key)).tenantId).toBe("tenant-a"); // cached now
      const slotBefore = (await bh.registry.getTenant("tenant-a")).placement.slot;
      const inDatabase = (await capabilitiesOf(bh, "tenant-a")).rowLevelSecurity;

      const report = await bh.eraseTenant("tenant-a", "test");
      expect(report.verified).toBe(true);
      const catalogue = { daily_query_counts: 0, document_counts: 0, move_changes: 0, remote_ids: 0, tenants: 0, api_keys: 0, placement_moves: 0 };
      expect(report.remaining).toMatchObject(catalogue);
      // The store's own proof: a scan of every vector table (pgvector), a listing of the namespace (Pinecone).
      const inStore = Object.keys(report.remaining).filter((k) => !(k in catalogue));
      expect(inStore.length).toBeGreaterThan(0);
      expect(inStore.every((k) => report.remaining[k] === 0)).toBe(true);
      expect(report.retained.usage_events).toBeGreaterThan(0);

      await expect(bh.keys.verify(key)).rejects.toBeInstanceOf(AuthenticationError);
      await expect(bh.dataManager.countDocuments("tenant-a")).rejects.toBeInstanceOf(TenantNotFoundError);
      // Nothing of A is readable even in A's own context; B and E are intact.
      if (inDatabase) expect(await db.withTenant("tenant-a", (tx) => tx.query("SELECT * FROM vec_1"))).toEqual([]);
      expect(await bh.dataManager.countDocuments("tenant-b")).toBe(2);
      expect(await bh.dataManager.countDocuments("tenant-e")).toBe(2);
      // The audit log has the erasure with its proof; the namespace is free for the next tenant.
      const [entry] = (await bh.audit.list(10)).filter((e) => e.action === "tenant.erase");
      expect(entry).toMatchObject({ actor: "test", target: "tenant-a", details: { verified: true } });
      expect((await bh.registry.registerTenant("tenant-c", "C", TenantTier.FREE)).placement.slot).toBe(slotBefore);
      // A's id registered again starts empty: nothing of the erased tenant comes back with it.
      await bh.registry.registerTenant("tenant-a", "A again", TenantTier.PRO);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(0);
      expect((await bh.dataManager.fetchDocuments("tenant-a", ["d1", "d2"])).documents).toEqual([]);
      expect((await bh.dataManager.queryDocuments("tenant-a", vec(1), { topK: 5 })).matches).toEqual([]);

      // A dedicated index goes with its tenant.
      const e = await bh.eraseTenant("tenant-e", "test");
      expect(e.verified).toBe(true);
      expect((await db.query<{ n: number }>("SELECT count(*)::int AS n FROM indexes WHERE kind = 'dedicated'"))[0]!.n).toBe(0);
    });
  });
}
