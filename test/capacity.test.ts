import { afterAll, describe, expect, it } from "vitest";
import { TenantTier } from "../src/config.js";
import { BACKENDS, dropTestSchemas } from "./backends.js";

afterAll(dropTestSchemas);

for (const backend of BACKENDS) {
  describe(`${backend.name}: placement and capacity`, () => {
    it("alerts at 80 %, provisions the next index at 90 % and never over-fills", async () => {
      const { bulkhead: bh } = await backend.open({ config: { dimension: 4, maxNamespacesPerIndex: 10 } });
      try {
        const status = async () => (await bh.registry.getCapacity())[0]!;
        for (let i = 1; i <= 7; i++) await bh.registry.registerTenant(`t-${i}`, `T${i}`, TenantTier.FREE);
        expect(await status()).toMatchObject({ index: "shared-index-1", used: 7, max: 10, alertAt: 8, provisionAt: 9, status: "healthy" });
        await bh.registry.registerTenant("t-8", "T8", TenantTier.PRO);
        expect((await status()).status).toBe("warning");
        expect(Object.keys(await bh.registry.getNamespaceUsage())).toEqual(["shared-index-1"]);
        await bh.registry.registerTenant("t-9", "T9", TenantTier.PRO);
        // Provisioned ahead of need: the second index exists before the first is full.
        expect(await bh.registry.getNamespaceUsage()).toEqual({ "shared-index-1": 9, "shared-index-2": 0 });
        await bh.registry.registerTenant("t-10", "T10", TenantTier.FREE);
        expect((await status()).status).toBe("critical");
        const t11 = await bh.registry.registerTenant("t-11", "T11", TenantTier.FREE);
        expect(t11.index).toBe("shared-index-2");
        // A freed namespace is reused by the next registration.
        await bh.registry.deleteTenant("t-3");
        expect((await bh.registry.registerTenant("t-12", "T12", TenantTier.FREE)).index).toBe("shared-index-1");
        // Enterprise tenants do not consume shared namespaces.
        await bh.registry.registerTenant("big-co", "Big", TenantTier.ENTERPRISE);
        expect(await bh.registry.getNamespaceUsage()).toEqual({ "shared-index-1": 10, "shared-index-2": 1 });
      } finally {
        await bh.close();
      }
    });

    it("handles 200 parallel registrations without over-filling an index or sharing a namespace", async () => {
      const { bulkhead: bh, db } = await backend.open({ config: { dimension: 4 } });
      try {
        const ids = Array.from({ length: 200 }, (_, i) => `p-${String(i).padStart(3, "0")}`);
        const tenants = await Promise.all(ids.map((id, i) => bh.registry.registerTenant(id, id, i % 2 ? TenantTier.PRO : TenantTier.FREE)));
        expect(tenants.map((t) => t.tenantId).sort()).toEqual(ids);
        const usage = await bh.registry.getNamespaceUsage();
        expect(usage).toEqual({ "shared-index-1": 90, "shared-index-2": 90, "shared-index-3": 20 });
        const slots = await db.query<{ n: number; distinct_slots: number; max_slot: number }>(
          "SELECT count(*)::int AS n, count(DISTINCT (index_id, slot))::int AS distinct_slots, max(slot) AS max_slot FROM tenants",
        );
        expect(slots[0]).toEqual({ n: 200, distinct_slots: 200, max_slot: 90 });
        // Every tenant can write and read its own namespace.
        await Promise.all(ids.slice(0, 20).map((id) => bh.dataManager.upsertDocuments(id, [{ id: "d", values: [1, 2, 3, 4], metadata: { who: id } }])));
        const fetched = await Promise.all(ids.slice(0, 20).map((id) => bh.dataManager.fetchDocuments(id, ["d"])));
        fetched.forEach((f, i) => expect(f.documents[0]!.metadata.who).toBe(ids[i]));
      } finally {
        await bh.close();
      }
    });
  });
}
