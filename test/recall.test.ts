import { afterAll, describe, expect, it } from "vitest";
import { TenantTier } from "../src/config.js";
import { capabilitiesOf, dropTestSchemas, STORES, vec, waitFor } from "./backends.js";

afterAll(dropTestSchemas);

const ROOMY = { maxDailyQueries: 1_000_000, requestsPerSecond: 10_000, burst: 10_000 };

for (const backend of STORES) {
  describe(`${backend.name}: per-tenant recall, measured and acted on`, () => {
    it("samples a tenant's ANN queries against exact search, alerts below the threshold, widens its search (audited) until recall is back", async (ctx) => {
      const warnings: string[] = [];
      const { bulkhead: bh } = await backend.open({ config: { dimension: 8, annIndexThreshold: 20, recallSampleRate: 1 }, warn: (m) => warnings.push(m) });
      try {
        for (const id of ["tenant-a", "tenant-b"]) {
          await bh.registry.registerTenant(id, id, TenantTier.PRO, { quota: ROOMY });
          await bh.dataManager.upsertDocuments(id, Array.from({ length: 300 }, (_, i) => ({ id: `${id}-${i}`, values: vec(i) })));
        }
        if (!(await capabilitiesOf(bh, "tenant-a")).annIndexes) {
          // The store runs its own index and cannot search exactly: nothing is sampled, nothing is widened.
          for (let i = 0; i < 30; i++) await bh.dataManager.queryDocuments("tenant-a", vec(1_000 + i), { topK: 10 });
          expect(bh.monitor.getTenantStats("tenant-a")).toMatchObject({ recall: null, recallSamples: 0 });
          ctx.skip();
        }
        expect((await bh.registry.getTenant("tenant-a")).placement.annIndexed).toBe(true);
        // Searches walk the graph until they have their topK (pgvector's iterative scan), so on a
        // namespace this small the graph's answers are exact whatever the width: the low recall a
        // large namespace can show is recorded here directly, as the sampler records what it measures.
        await bh.registry.setEfSearch("tenant-a", 1);
        const alerts: string[] = [];
        bh.monitor.on("alert", (a) => alerts.push(`${a.tenantId} ${a.kind} ${a.state}`));
        for (let i = 0; i < 5; i++) await bh.dataManager.queryDocuments("tenant-a", vec(900 + i), { topK: 10 });
        await waitFor("a real sample", async () => (bh.monitor.getTenantStats("tenant-a").recallSamples ?? 0) > 0);
        expect(bh.monitor.getTenantStats("tenant-a").recall).toBe(1); // measured against exact search: the walk found the true ten
        for (let i = 0; i < 20; i++) bh.monitor.recordRecall("tenant-a", 0.5);
        await waitFor("the search to be widened", async () => (await bh.registry.getTenant("tenant-a")).placement.efSearch === 2);
        // Measured afresh at the new width, from real samples, until the alert resolves.
        let queries = 0;
        await waitFor(
          "tenant-a's recall alert to resolve",
          async () => {
            await bh.dataManager.queryDocuments("tenant-a", vec(1_000 + queries++), { topK: 10 });
            return alerts.includes("tenant-a recall resolved");
          },
          120_000,
        );
        const widened = (await bh.audit.list(100)).filter((e) => e.action === "tenant.search_widened");
        expect(widened.length).toBeGreaterThanOrEqual(1);
        expect(widened.every((e) => e.target === "tenant-a" && e.actor === "bulkhead:recall-monitor")).toBe(true);
        expect(widened.at(-1)!.details).toMatchObject({ efSearch: { from: 1, to: 2 } }); // the oldest entry is last
        expect((await bh.registry.getTenant("tenant-a")).placement.efSearch).toBeGreaterThanOrEqual(2);
        expect(alerts[0]).toBe("tenant-a recall firing");
        const stats = bh.monitor.getTenantStats("tenant-a");
        expect(stats.recall).toBeGreaterThanOrEqual(0.99);
        expect(warnings.join("\n")).toMatch(/tenant tenant-a's recall was 0\.\d+ over \d+ sampled queries: its search widened from ef_search 1 to 2/);
        expect(await bh.monitor.metricsText()).toMatch(/bulkhead_tenant_recall\{tenant="tenant-a"\} (1|0\.99)/);
        // tenant-b was never queried: nothing measured for it, its search untouched.
        expect(bh.monitor.getTenantStats("tenant-b")).toMatchObject({ recall: null, recallSamples: 0 });
        expect((await bh.registry.getTenant("tenant-b")).placement.efSearch).toBeNull();
      } finally {
        await bh.close();
      }
    }, 180_000);
  });
}
