import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import type { Db } from "../src/db/db.js";
import { BACKENDS, dropTestSchemas, vec } from "./backends.js";

afterAll(dropTestSchemas);

for (const backend of BACKENDS) {
  describe(`${backend.name}: per-tenant minute rollups, series and the operator's overview`, () => {
    let bh: Bulkhead;
    let db: Db;
    afterEach(() => bh?.close());

    const open = async (config = {}) => {
      ({ bulkhead: bh, db } = await backend.open({ config: { dimension: 8, ...config } }));
      await bh.registry.registerTenant("series-a", "A", TenantTier.PRO);
      await bh.registry.registerTenant("series-b", "B", TenantTier.FREE, { quota: { maxDocuments: 10 } });
    };

    it("counts each tenant's operations by outcome into its own minutes, and the overview adds up to the API's numbers", async () => {
      await open();
      await bh.dataManager.upsertDocuments("series-a", [{ id: "a1", values: vec(1) }]);
      for (let i = 0; i < 5; i++) await bh.dataManager.queryDocuments("series-a", vec(2), { topK: 1 });
      await bh.dataManager.upsertDocuments("series-b", Array.from({ length: 9 }, (_, i) => ({ id: `b${i}`, values: vec(i) })));
      await expect(bh.dataManager.upsertDocuments("series-b", [{ id: "b9", values: vec(9) }, { id: "b10", values: vec(10) }])).rejects.toThrow(/documents; this batch/); // refused

      const a = await bh.overview.series("series-a", "1h");
      expect(a.points).toHaveLength(60);
      expect(a.stepSeconds).toBe(60);
      const sum = (s: typeof a, f: "ok" | "errors" | "invalid" | "refused") => s.points.reduce((n, p) => n + p[f], 0);
      expect([sum(a, "ok"), sum(a, "invalid"), sum(a, "refused"), sum(a, "errors")]).toEqual([6, 0, 0, 0]);
      const busy = a.points.filter((p) => p.ok > 0);
      expect(busy.every((p) => p.p50 !== null && p.p95 !== null && p.p95 >= p.p50!)).toBe(true);
      expect(a.points.reduce((n, p) => n + p.cost.vectorQueries, 0)).toBeGreaterThan(0);
      const b = await bh.overview.series("series-b", "1h");
      expect([sum(b, "ok"), sum(b, "refused")]).toEqual([1, 1]);

      const rows = await bh.overview.tenants();
      const ra = rows.find((r) => r.tenantId === "series-a")!;
      const rb = rows.find((r) => r.tenantId === "series-b")!;
      expect(ra.documents).toBe(await bh.dataManager.countDocuments("series-a"));
      expect(ra.queriesToday).toBe(5);
      expect(ra.recent).toMatchObject({ requests: 6, errors: 0, refused: 0, errorRate: 0 });
      expect(rb.documents).toBe(9);
      expect(rb.nearQuota).toEqual(["documents"]); // 9 of 10
      expect(rb.day.refused).toBe(1);
      expect(rb.day.refusals).toEqual({ rateLimited: 0, quotaExceeded: 1, concurrencyLimited: 0 });
      expect(b.points.reduce((n, p) => n + p.refusals.quotaExceeded, 0)).toBe(1);
      expect(ra.month.totalCost).toBe((await bh.costEngine.getTenantCostSummary("series-a")).totalCost);
    });

    it("a tenant's minutes are its own: RLS hides them from another tenant's context, the data-plane role cannot read or write them, erasure removes them", async () => {
      await open();
      await bh.dataManager.queryDocuments("series-a", vec(1), { topK: 1 });
      await bh.overview.series("series-a"); // flushed
      const rowsSeenBy = async (tenant: string) => (await db.queryAsTenant<{ n: number }>(tenant, "SELECT count(*)::int AS n FROM tenant_minutes"))[0]!.n;
      expect(await rowsSeenBy("series-a")).toBe(1);
      expect(await rowsSeenBy("series-b")).toBe(0);
      if (db.dataPlaneRole) {
        await expect(db.dataPlane.queryAsTenant("series-a", "SELECT count(*) FROM tenant_minutes")).rejects.toThrow(/permission denied/);
        await expect(db.dataPlane.queryAsTenant("series-b", "SELECT write_tenant_minutes('[]'::jsonb)")).rejects.toThrow(/permission denied/);
        await expect(db.dataPlane.queryAsTenant("series-b", "SELECT * FROM tenant_overview(now(), now(), current_date)")).rejects.toThrow(/permission denied/);
      }
      const report = await bh.eraseTenant("series-a", "test");
      expect(report.verified).toBe(true);
      expect(report.remaining.tenant_minutes).toBe(0);
      expect(await rowsSeenBy("series-a")).toBe(0);
    });

    it("minutes written twice for the same minute add up (several instances or flushes), and minutes past the retention are pruned", async () => {
      await open();
      const minute = new Date(Math.floor(Date.now() / 60_000) * 60_000).toISOString();
      const row = { tenant_id: "series-a", minute, ok: 2, errors: 1, invalid: 0, refused: 3, rate_limited: 2, quota_exceeded: 0, concurrency_limited: 1, latency: [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] };
      await db.query("SELECT write_tenant_minutes($1::jsonb)", [JSON.stringify([row, row])]);
      const old = { ...row, minute: new Date(Date.now() - 3 * 86_400_000).toISOString() };
      await db.query("SELECT write_tenant_minutes($1::jsonb)", [JSON.stringify([old])]);
      // Another tenant's row in the same call lands in its own context only.
      await db.query("SELECT write_tenant_minutes($1::jsonb)", [JSON.stringify([{ ...row, tenant_id: "series-b" }])]);
      const [r] = await db.queryAsTenant<{ ok: number; refused: number; latency: number[] }>("series-a", "SELECT ok, refused, rate_limited, concurrency_limited, latency FROM tenant_minutes WHERE minute = $1", [minute]);
      expect(r).toMatchObject({ ok: 4, refused: 6, rate_limited: 4, concurrency_limited: 2 });
      expect(r!.latency.slice(0, 3)).toEqual([2, 4, 0]);
      const week = await bh.overview.series("series-a", "7d");
      expect(week.points.reduce((n, p) => n + p.ok, 0)).toBe(6);
      const [{ pruned }] = (await db.query<{ pruned: number }>("SELECT prune_tenant_minutes($1) AS pruned", [new Date(Date.now() - 86_400_000)])) as [{ pruned: number }];
      expect(pruned).toBe(1);
      expect((await bh.overview.series("series-a", "7d")).points.reduce((n, p) => n + p.ok, 0)).toBe(4);
      expect((await bh.overview.series("series-b", "1h")).points.reduce((n, p) => n + p.ok, 0)).toBe(2);
    });

    it("counts refusals by kind: a tenant over its rate limit is counted rate-limited, in its own minutes only", async () => {
      await open();
      await bh.registry.setQuota("series-a", { requestsPerSecond: 1, burst: 0 });
      const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => bh.dataManager.queryDocuments("series-a", vec(1), { topK: 1 })));
      const refused = outcomes.filter((o) => o.status === "rejected").length;
      expect(refused).toBeGreaterThan(0);
      const a = await bh.overview.series("series-a");
      expect(a.points.reduce((n, p) => n + p.refusals.rateLimited, 0)).toBe(refused);
      expect((await bh.overview.series("series-b")).points.reduce((n, p) => n + p.refused, 0)).toBe(0);
    });

    it("refuses a window it does not know and a tenant that does not exist", async () => {
      await open();
      await expect(bh.overview.series("series-a", "2h" as never)).rejects.toThrow(/window/);
      await expect(bh.overview.series("nobody")).rejects.toThrow(/does not exist/);
    });
  });
}
