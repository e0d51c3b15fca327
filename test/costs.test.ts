import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeEach, afterEach, describe, expect, it } from "vitest";
import { createBulkhead } from "../src/bulkhead.js";
import type { Bulkhead } from "../src/bulkhead.js";
import { Config, TenantTier } from "../src/config.js";
import type { Db } from "../src/db/db.js";
import { monthlyReportToCsv } from "../src/costs/export.js";
import { ValidationError } from "../src/errors.js";
import { dropTestSchemas, newDataDir, STORES, vec } from "./backends.js";

afterAll(dropTestSchemas);
const period = new Date().toISOString().slice(0, 7);

for (const backend of STORES) {
  describe(`${backend.name}: cost isolation`, () => {
    let bh: Bulkhead;
    let db: Db;
    beforeEach(async () => {
      ({ bulkhead: bh, db } = await backend.open({
        config: {
          dimension: 8,
          usageFlushIntervalMs: 60_000,
          // A store that reports read units (Pinecone) bills those: a query of a small namespace is one
          // unit, so at the flat query's price every store bills the same.
          prices: { storeReadUnit: 0.00001, llmModels: { "gpt-4o-mini": { inputPer1KTokens: 0.00015, outputPer1KTokens: 0.0006 } } },
        },
      }));
      await bh.registry.registerTenant("tenant-001", "Acme", TenantTier.FREE);
      await bh.registry.registerTenant("tenant-002", "Beta", TenantTier.PRO);
    });
    afterEach(() => bh.close());

    it("prices the reference's examples exactly", async () => {
      const ce = bh.costEngine;
      expect(await ce.trackQueryCost("tenant-001", { embedTokens: 500, llmTokens: 1000 })).toBe(0.00206);
      expect(await ce.trackQueryCost("tenant-001", { embedTokens: 300, llmTokens: 800 })).toBe(0.00164);
      expect(await ce.trackQueryCost("tenant-002", { embedTokens: 1000, llmTokens: 2000 })).toBe(0.00411);
      expect(await ce.trackQueryCost("tenant-002", { embedTokens: 800, llmTokens: 1500 })).toBe(0.00309);
      expect(await ce.trackQueryCost("tenant-002", { model: "gpt-4o-mini", inputTokens: 1000, outputTokens: 1000, vectorQueries: 0 })).toBe(0.00075);
      expect(Config.getTotalFixedCosts()).toBe(115);
      const allocated = await ce.allocateFixedCosts(Config.getTotalFixedCosts(), { "tenant-001": 30, "tenant-002": 70 });
      expect(allocated).toEqual({ "tenant-001": 34.5, "tenant-002": 80.5 });
      const s1 = await ce.getTenantCostSummary("tenant-001");
      expect(s1).toMatchObject({ variableCost: 0.0037, fixedCost: 34.5, totalCost: 34.5037, queryCount: 2 });
      expect(s1.breakdown).toEqual({ embedding: 0.00008, llm: 0.0036, vectorQueries: 0.00002 });
      const s2 = await ce.getTenantCostSummary("tenant-002");
      expect(s2.variableCost).toBe(0.00795);
      expect(s2.usage.llmTokens).toBe(5500);
    });

    it("counts tokens with a real tokenizer when given text", async () => {
      const cost = await bh.costEngine.trackQueryCost("tenant-001", { embedText: "hello world", vectorQueries: 0 });
      expect(cost).toBe(2 * 0.0000001);
      await expect(bh.costEngine.trackQueryCost("tenant-001", { model: "gpt-9" })).rejects.toThrow(/usage.model: unknown model "gpt-9"/);
      await expect(bh.costEngine.trackQueryCost("tenant-001", { embedTokens: -1 })).rejects.toBeInstanceOf(ValidationError);
      await expect(bh.costEngine.trackQueryCost("nobody", {})).rejects.toThrow(/does not exist/);
      await expect(bh.costEngine.trackQueryCost("tenant-001", { embedTokens: 5, llmTokens: 1.5 })).rejects.toThrow(/usage.llmTokens/);
      // Rejected calls recorded nothing: only the first call's two embedding tokens are metered.
      const s = await bh.costEngine.getTenantCostSummary("tenant-001");
      expect(s.usage).toEqual({ embedTokens: 2, llmTokens: 0, vectorQueries: 0, vectorsWritten: 0 });
    });

    it("meters TenantDataManager operations without the caller doing anything", async () => {
      await bh.dataManager.upsertDocuments("tenant-001", [{ id: "a", values: vec(1) }, { id: "b", values: vec(2) }]);
      await bh.dataManager.queryDocuments("tenant-001", vec(1), { topK: 1, embedTokens: 12 });
      await bh.dataManager.queryDocuments("tenant-001", vec(2), { topK: 1 });
      const s = await bh.costEngine.getTenantCostSummary("tenant-001");
      expect(s.usage).toEqual({ embedTokens: 12, llmTokens: 0, vectorQueries: 2, vectorsWritten: 2 });
      expect(s.variableCost).toBe(2 * 0.00001 + 12 * 0.0000001);
    });

    it("splits to the cent with largest remainders, and re-running replaces the period's allocation", async () => {
      await bh.registry.registerTenant("tenant-003", "Gamma", TenantTier.FREE);
      const a = await bh.costEngine.allocateFixedCosts(100, "equal");
      expect(Object.values(a).sort()).toEqual([33.33, 33.33, 33.34]);
      expect(Object.values(a).reduce((x, y) => x + y, 0)).toBeCloseTo(100, 10);
      await bh.costEngine.allocateFixedCosts(10, "equal");
      const sums = await Promise.all(["tenant-001", "tenant-002", "tenant-003"].map((t) => bh.costEngine.getTenantCostSummary(t)));
      expect(sums.reduce((x, s) => x + s.fixedCost, 0)).toBeCloseTo(10, 10);
      await expect(bh.costEngine.allocateFixedCosts(100, "queries")).rejects.toThrow(/every tenant's queries weight .* is zero/);
      await expect(bh.costEngine.allocateFixedCosts(100, { "tenant-009": 1 })).rejects.toThrow(/basis.tenant-009: is not a registered tenant/);
      await expect(bh.costEngine.allocateFixedCosts(-5, "equal")).rejects.toBeInstanceOf(ValidationError);
    });

    it("charges a dedicated index's base cost to its owner before splitting the shared rest", async () => {
      await bh.registry.registerTenant("big-co", "Big", TenantTier.ENTERPRISE);
      const fixed = await bh.costEngine.getFixedCosts();
      expect(fixed).toMatchObject({ total: 165, indexes: { shared: 1, dedicated: 1 }, dedicated: { "big-co": 50 } });
      await bh.costEngine.trackQueryCost("tenant-001", { llmTokens: 1000 });
      await bh.costEngine.trackQueryCost("tenant-002", { llmTokens: 3000 });
      const a = await bh.costEngine.allocateFixedCosts(undefined, "variable-cost");
      // 165 − 50 dedicated = 115 shared, split by variable cost (0.00201 : 0.00601); big-co used nothing.
      expect(a["big-co"]).toBe(50);
      expect(a["tenant-001"]! + a["tenant-002"]!).toBeCloseTo(115, 10);
      // 11,500 cents × 201 / (201 + 601) = 2,882.17 → 28.82 (the remainder cent goes to tenant-002).
      expect(a["tenant-001"]).toBe(28.82);
    });

    it("writes usage in batches, and close() flushes what is buffered", async () => {
      for (let i = 0; i < 50; i++) await bh.costEngine.trackQueryCost("tenant-001", { embedTokens: 1 });
      // Nothing reached the database yet (flush interval is a minute): the ledger holds 100 events.
      expect(await db.queryAsTenant("tenant-001", "SELECT count(*)::int AS n FROM usage_events")).toEqual([{ n: 0 }]);
      await bh.costEngine.flush();
      expect(await db.queryAsTenant("tenant-001", "SELECT count(*)::int AS n FROM usage_events")).toEqual([{ n: 100 }]);
    });

    it("loses and double-counts nothing under concurrent tracking from many tenants", async () => {
      const tenants = Array.from({ length: 8 }, (_, i) => `load-${i}`);
      for (const t of tenants) await bh.registry.registerTenant(t, t, TenantTier.FREE);
      await Promise.all(tenants.flatMap((t) => Array.from({ length: 250 }, () => bh.costEngine.trackQueryCost(t, { embedTokens: 3, llmTokens: 7 }))));
      for (const t of tenants) {
        const s = await bh.costEngine.getTenantCostSummary(t);
        expect(s.queryCount).toBe(250);
        expect(s.usage.embedTokens).toBe(750);
        // 250 × (3 × 1e-7 + 7 × 2e-6 + 1e-5), summed in integer pico-dollars: exact.
        expect(s.variableCost).toBe(Number(250n * (3n * 100_000n + 7n * 2_000_000n + 10_000_000n)) / 1e12);
      }
    });

    it("keeps one tenant's usage and allocations invisible to another's context", async () => {
      await bh.costEngine.trackQueryCost("tenant-001", { llmTokens: 1000 });
      await bh.costEngine.allocateFixedCosts(115, { "tenant-001": 1, "tenant-002": 1 });
      await bh.costEngine.flush();
      expect(await db.queryAsTenant("tenant-002", "SELECT * FROM usage_events WHERE tenant_id = 'tenant-001'")).toEqual([]);
      expect(await db.queryAsTenant("tenant-002", "SELECT tenant_id FROM cost_allocations")).toEqual([{ tenant_id: "tenant-002" }]);
      expect(await db.query("SELECT * FROM usage_events")).toEqual([]);
      await expect(db.queryAsTenant("tenant-002", "INSERT INTO usage_events (tenant_id, occurred_at, period, kind, quantity, cost_pico) VALUES ('tenant-001', now(), '2026-01', 'llm', 1, 1)")).rejects.toThrow(/row-level security/);
      const checks = await bh.readiness({ probeTenants: ["tenant-001", "tenant-002"], sampleTenant: "tenant-001" });
      expect(checks.find((c) => c.name.startsWith("Row-level security"))!.passed).toBe(true);
    });

    it("reports margins per tenant and tier, flags the unprofitable, and exports CSV", async () => {
      await bh.costEngine.trackQueryCost("tenant-002", { llmTokens: 10_000 });
      await bh.costEngine.allocateFixedCosts(115, "equal");
      const r = await bh.costEngine.monthlyReport();
      const free = r.tenants.find((t) => t.tenantId === "tenant-001")!;
      const pro = r.tenants.find((t) => t.tenantId === "tenant-002")!;
      expect(free).toMatchObject({ revenue: 0, fixedCost: 57.5, unprofitable: true, marginRatio: null });
      expect(pro.revenue).toBe(99);
      expect(pro.margin).toBeCloseTo(99 - 57.5 - 0.02001, 10);
      expect(r.unprofitable).toEqual(["tenant-001"]);
      expect(r.tiers.pro.tenants).toBe(1);
      const csv = monthlyReportToCsv(r).trim().split("\n");
      expect(csv[0]).toBe("period,tenant_id,tier,revenue,variable_cost,fixed_cost,total_cost,margin,margin_ratio,unprofitable");
      expect(csv).toHaveLength(3);
      expect(csv[1]).toContain(`${period},tenant-001,free,0.00`);
    });

    it("reconciles allocated against actual and flags deviations beyond ±5 %", async () => {
      for (let i = 0; i < 10; i++) await bh.costEngine.trackQueryCost("tenant-001", { embedTokens: 1000, llmTokens: 1000 });
      await bh.costEngine.allocateFixedCosts(undefined, "equal");
      const r = await bh.costEngine.reconcile(period, { embedding: 0.00101, llm: 0.025, vectorIndexes: 50, postgres: 30, loadBalancerMonitoring: 35 });
      const by = Object.fromEntries(r.lines.map((l) => [l.category, l]));
      expect(by.embedding!.flagged).toBe(false); // 0.001 vs 0.00101: −1 %
      expect(by.llm!.flagged).toBe(true); // 0.02 vs 0.025: −20 %
      expect(by.llm!.deviation).toBeCloseTo(-0.2, 10);
      expect(by.postgres!.deviation).toBe(0);
      expect(r.withinTolerance).toBe(false);
      await expect(bh.costEngine.reconcile(period, { coffee: 3 } as never)).rejects.toThrow(/actual.coffee: unknown category/);
    });
  });
}

describe("usage ledger durability", () => {
  it("close() writes every buffered event: they are there after reopening the database", async () => {
    const dir = newDataDir("bh-ledger-");
    try {
      const first = await createBulkhead({ database: dir, env: {}, config: { dimension: 4, usageFlushIntervalMs: 3_600_000 } });
      await first.registry.registerTenant("tenant-001", "Acme", TenantTier.FREE);
      for (let i = 0; i < 25; i++) await first.costEngine.trackQueryCost("tenant-001", { embedTokens: 500, llmTokens: 1000 });
      await first.close();
      const second = await createBulkhead({ database: dir, env: {}, config: { dimension: 4 } });
      try {
        const s = await second.costEngine.getTenantCostSummary("tenant-001");
        expect(s.queryCount).toBe(25);
        expect(s.variableCost).toBe(0.0515); // 25 × $0.00206, summed exactly in pico-dollars
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
