import { afterAll, afterEach, describe, expect, it } from "vitest";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import type { Bulkhead, BulkheadOptions } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import type { Db } from "../src/db/db.js";
import { ConcurrencyLimitError, QuotaExceededError, RateLimitedError, ValidationError } from "../src/errors.js";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { openBulkhead } from "../src/bulkhead.js";
import { BACKENDS, dropTestSchemas, newDataDir, openServerPair, pineconeStandin, serverUrl, vec } from "./backends.js";

afterAll(dropTestSchemas);

/** Limits high enough to stay out of the way of the one a test is about. */
const ROOMY = { requestsPerSecond: 100_000, maxConcurrent: 1_000 };

const docs = (prefix: string, from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${from + i}`, values: vec(from + i) }));

// Every tenant in Pinecone too: its quotas are kept by the catalogue, and must hold the same way.
for (const backend of [...BACKENDS, pineconeStandin]) {
  describe(`${backend.name}: performance isolation`, () => {
    let bh: Bulkhead;
    let db: Db;
    const open = async (options: BulkheadOptions = {}) => {
      ({ bulkhead: bh, db } = await backend.open({ ...options, config: { dimension: 8, ...options.config } }));
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.FREE);
      await bh.registry.registerTenant("tenant-b", "B", TenantTier.FREE);
    };
    afterEach(() => bh?.close());

    it("never lets fifty parallel batches near the limit take a tenant past its document quota", async () => {
      await open();
      await bh.registry.setQuota("tenant-a", { ...ROOMY, maxDocuments: 100 });
      await bh.dataManager.upsertDocuments("tenant-a", docs("seed", 0, 90));
      // 50 batches of 3 new documents each race for the last 10 places: at most 3 batches fit.
      const results = await Promise.allSettled(Array.from({ length: 50 }, (_, b) => bh.dataManager.upsertDocuments("tenant-a", docs(`race${b}`, 0, 3))));
      const accepted = results.filter((r) => r.status === "fulfilled").length;
      const refused = results.filter((r) => r.status === "rejected");
      expect(accepted).toBe(3);
      for (const r of refused) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(QuotaExceededError);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(99);

      // A batch that would cross the limit is refused whole, with the numbers.
      const err = await bh.dataManager.upsertDocuments("tenant-a", docs("over", 0, 2)).catch((e) => e);
      expect(err).toBeInstanceOf(QuotaExceededError);
      expect(err).toMatchObject({ code: "QUOTA_EXCEEDED", status: 429, quota: "maxDocuments", limit: 100, current: 99 });
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(99);
      // Replacing documents it already has is not growth; one more new document fits exactly.
      await bh.dataManager.upsertDocuments("tenant-a", docs("seed", 0, 5));
      await bh.dataManager.upsertDocuments("tenant-a", docs("last", 0, 1));
      await expect(bh.dataManager.upsertDocuments("tenant-a", docs("last", 1, 1))).rejects.toBeInstanceOf(QuotaExceededError);
      // Deleting frees room again; deleting ids it does not have frees nothing.
      await bh.dataManager.deleteDocuments("tenant-a", ["seed-0", "seed-1", "nope"]);
      await bh.dataManager.upsertDocuments("tenant-a", docs("after-delete", 0, 2));
      await expect(bh.dataManager.upsertDocuments("tenant-a", docs("after-delete", 2, 1))).rejects.toBeInstanceOf(QuotaExceededError);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(100);
    });

    it("keeps the document count exact when racing batches overlap, and when the first writes race", async () => {
      await open();
      // First writes of a tenant race to create its counter; then 30 batches race with the same ids.
      await bh.registry.setQuota("tenant-a", { ...ROOMY, maxDocuments: 50 });
      await Promise.all(Array.from({ length: 10 }, (_, b) => bh.dataManager.upsertDocuments("tenant-a", docs(`first${b}`, 0, 2))));
      await Promise.all(Array.from({ length: 30 }, () => bh.dataManager.upsertDocuments("tenant-a", docs("same", 0, 5))));
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(25);
      // The quota sees exactly 25 used: 25 more fit, the 26th does not.
      await bh.dataManager.upsertDocuments("tenant-a", docs("fill", 0, 25));
      await expect(bh.dataManager.upsertDocuments("tenant-a", docs("fill", 25, 1))).rejects.toMatchObject({ current: 50, limit: 50 });
    });

    it("keeps a tenant's document count when it changes tier, and starts a re-registered id from zero", async () => {
      await open();
      await bh.registry.setQuota("tenant-a", { maxDocuments: 4 });
      await bh.dataManager.upsertDocuments("tenant-a", docs("d", 0, 4));
      await bh.registry.changeTier("tenant-a", TenantTier.ENTERPRISE);
      await bh.registry.setQuota("tenant-a", { maxDocuments: 5 });
      await bh.dataManager.upsertDocuments("tenant-a", docs("d", 4, 1));
      await expect(bh.dataManager.upsertDocuments("tenant-a", docs("d", 5, 1))).rejects.toBeInstanceOf(QuotaExceededError);

      await bh.registry.deleteTenant("tenant-a");
      await bh.registry.registerTenant("tenant-a", "A again", TenantTier.FREE, { quota: { maxDocuments: 3 } });
      await bh.dataManager.upsertDocuments("tenant-a", docs("new", 0, 3));
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(3);
    });

    it("counts daily queries per UTC day, refuses with the reset time, and resets at midnight UTC", async () => {
      const clock = { t: Date.parse("2026-03-14T23:59:58.000Z") };
      await open({ now: () => clock.t });
      await bh.registry.setQuota("tenant-a", { ...ROOMY, maxDailyQueries: 3 });
      for (let i = 0; i < 3; i++) await bh.dataManager.queryDocuments("tenant-a", vec(i), { topK: 1 });
      const err = await bh.dataManager.queryDocuments("tenant-a", vec(9), { topK: 1 }).catch((e) => e);
      expect(err).toBeInstanceOf(QuotaExceededError);
      expect(err).toMatchObject({ quota: "maxDailyQueries", limit: 3, current: 3, resetsAt: new Date("2026-03-15T00:00:00.000Z") });
      // Bad input is refused before it counts, and changes nothing.
      await expect(bh.dataManager.queryDocuments("tenant-b", [1, 2], { topK: 1 })).rejects.toBeInstanceOf(ValidationError);
      expect(bh.monitor.getTenantStats("tenant-b").requests).toBe(0);
      // Tenant B's day is its own.
      await bh.dataManager.queryDocuments("tenant-b", vec(1), { topK: 1 });

      clock.t = Date.parse("2026-03-15T00:00:01.000Z");
      await bh.dataManager.queryDocuments("tenant-a", vec(1), { topK: 1 });

      // Raising the quota takes effect at once, even for a tenant this instance saw exhausted.
      await bh.registry.setQuota("tenant-a", { ...ROOMY, maxDailyQueries: 1 });
      await expect(bh.dataManager.queryDocuments("tenant-a", vec(1), { topK: 1 })).rejects.toBeInstanceOf(QuotaExceededError);
      await bh.registry.setQuota("tenant-a", { ...ROOMY, maxDailyQueries: 2 });
      await bh.dataManager.queryDocuments("tenant-a", vec(1), { topK: 1 });
    });

    it("admits exactly the daily quota when fifty queries race for it", async () => {
      await open();
      await bh.registry.setQuota("tenant-a", { ...ROOMY, maxDailyQueries: 20 });
      const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => bh.dataManager.queryDocuments("tenant-a", vec(i), { topK: 1 })));
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(20);
      expect(results.filter((r) => r.status === "rejected" && r.reason instanceof QuotaExceededError)).toHaveLength(30);
    });

    it("counts daily queries in leases: one count write per lease, what was spent is what is counted once unspent leases are given back", async () => {
      await open();
      await bh.registry.setQuota("tenant-a", { ...ROOMY, maxDailyQueries: 1_000 });
      const counted = async () => (await db.queryAsTenant<{ queries: number }>("tenant-a", "SELECT queries FROM daily_query_counts WHERE tenant_id = 'tenant-a'"))[0]?.queries;
      for (let i = 0; i < 45; i++) await bh.dataManager.queryDocuments("tenant-a", vec(i), { topK: 1 });
      // Leases of 20 (a tenth of what is left of the day, at most 20): three counts, 60 counted for 45 spent.
      expect(await counted()).toBe(60);
      expect(bh.monitor.getTenantStats("tenant-a").requests).toBe(45);
      // The day's gauge says what was spent, not what was leased.
      expect(await bh.monitor.metricsText()).toContain('bulkhead_quota_used{tenant="tenant-a",quota="daily_queries"} 45');
    });

    it("rate-limits each tenant on its own: sustained rate plus burst, then RateLimitedError with a retry time", async () => {
      await open();
      await bh.registry.setQuota("tenant-a", { requestsPerSecond: 5, burst: 5, maxConcurrent: 100 });
      const results = await Promise.allSettled(Array.from({ length: 30 }, () => bh.dataManager.fetchDocuments("tenant-a", ["x"])));
      const refused = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason);
      expect(results.length - refused.length).toBe(10);
      for (const e of refused) {
        expect(e).toBeInstanceOf(RateLimitedError);
        expect(e.retryAfterMs).toBeGreaterThan(0);
        expect(e.retryAfterMs).toBeLessThanOrEqual(10_000);
      }
      // The flooding tenant spent only its own limit.
      for (let i = 0; i < 10; i++) await bh.dataManager.fetchDocuments("tenant-b", ["x"]);
    });

    it("refuses operations beyond a tenant's concurrency cap without touching other tenants", async () => {
      await open();
      await bh.registry.setQuota("tenant-a", { requestsPerSecond: 1_000, maxConcurrent: 2 });
      await bh.dataManager.upsertDocuments("tenant-a", docs("d", 0, 20));
      const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => bh.dataManager.queryDocuments("tenant-a", vec(i), { topK: 5 })));
      const refused = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason);
      expect(refused.length).toBeGreaterThan(0);
      expect(results.length - refused.length).toBeGreaterThanOrEqual(2);
      for (const e of refused) expect(e).toBeInstanceOf(ConcurrencyLimitError);
      const b = await Promise.allSettled(Array.from({ length: 4 }, (_, i) => bh.dataManager.queryDocuments("tenant-b", vec(i), { topK: 5 })));
      expect(b.every((r) => r.status === "fulfilled")).toBe(true);
    });

    it("shows tenant B nothing of A's quota counters, and lets B change none of them", async () => {
      await open();
      await bh.dataManager.upsertDocuments("tenant-a", docs("a", 0, 3));
      await bh.dataManager.queryDocuments("tenant-a", vec(1), { topK: 1 });
      await bh.dataManager.upsertDocuments("tenant-b", docs("b", 0, 1));
      const asB = (sql: string) => db.withTenant("tenant-b", (tx) => tx.query<Record<string, unknown>>(sql));
      expect(await asB("SELECT tenant_id, documents::int FROM document_counts")).toEqual([{ tenant_id: "tenant-b", documents: 1 }]);
      expect(await asB("SELECT tenant_id FROM daily_query_counts")).toEqual([]);
      expect(await asB("UPDATE document_counts SET documents = 0 WHERE tenant_id = 'tenant-a' RETURNING 1")).toEqual([]);
      expect(await asB("UPDATE daily_query_counts SET queries = 0 WHERE tenant_id = 'tenant-a' RETURNING 1")).toEqual([]);
      // Writing a row for A under B's context is refused by the policy's WITH CHECK.
      await expect(asB("INSERT INTO daily_query_counts (tenant_id, day, queries) VALUES ('tenant-a', current_date, 0)")).rejects.toThrow(/row-level security/);
      // Without context nothing is visible at all.
      expect(await db.query("SELECT * FROM document_counts")).toEqual([]);
      // A's count is intact: it still has exactly its 3 documents of quota used.
      await bh.registry.setQuota("tenant-a", { maxDocuments: 3 });
      await expect(bh.dataManager.upsertDocuments("tenant-a", docs("a", 3, 1))).rejects.toMatchObject({ current: 3 });
    });

    it("exposes per-tenant metrics as valid Prometheus text", async () => {
      await open();
      await bh.dataManager.upsertDocuments("tenant-a", docs("a", 0, 3));
      await bh.dataManager.queryDocuments("tenant-a", vec(1), { topK: 2 });
      await bh.dataManager.queryDocuments("tenant-b", vec(1), { topK: 2 });
      await bh.registry.setQuota("tenant-b", { maxDailyQueries: 1 });
      await bh.dataManager.queryDocuments("tenant-b", vec(1), { topK: 2 }).catch(() => {});
      const text = await bh.monitor.metricsText();
      const families = parsePrometheusTextFormat(text) as { name: string; type: string; metrics: { labels?: Record<string, string>; value?: string; buckets?: Record<string, string> }[] }[];
      const family = (name: string) => families.find((f) => f.name === name)!;
      const ops = family("bulkhead_operations_total").metrics;
      expect(ops).toContainEqual({ labels: { tenant: "tenant-a", operation: "query", outcome: "ok" }, value: "1" });
      expect(ops).toContainEqual({ labels: { tenant: "tenant-b", operation: "query", outcome: "refused" }, value: "1" });
      expect(family("bulkhead_operation_duration_seconds").type).toBe("HISTOGRAM");
      // (The parser keeps only `le` on histogram buckets, so their tenant labels are read off the text.)
      const series = (metric: string) => [...new Set(text.split("\n").filter((l) => l.startsWith(`${metric}{`)).map((l) => l.slice(0, l.indexOf("}") + 1)))].sort();
      expect(series("bulkhead_operation_duration_seconds_count")).toEqual([
        'bulkhead_operation_duration_seconds_count{tenant="tenant-a",operation="query"}',
        'bulkhead_operation_duration_seconds_count{tenant="tenant-a",operation="upsert"}',
        'bulkhead_operation_duration_seconds_count{tenant="tenant-b",operation="query"}',
      ]);
      expect(series("bulkhead_isolation_overhead_seconds_count")).toEqual([
        'bulkhead_isolation_overhead_seconds_count{tenant="tenant-a",operation="query"}',
        'bulkhead_isolation_overhead_seconds_count{tenant="tenant-b",operation="query"}',
      ]);
      expect(family("bulkhead_quota_used").metrics).toContainEqual({ labels: { tenant: "tenant-a", quota: "documents" }, value: "3" });
      expect(family("bulkhead_quota_limit").metrics).toContainEqual({ labels: { tenant: "tenant-a", quota: "documents" }, value: "10000" });
      const index = (await bh.registry.getTenant("tenant-a")).index; // "shared-index-1", or a store's: "pinecone/shared-index-1"
      expect(family("bulkhead_namespaces_used").metrics).toEqual([{ labels: { index }, value: "2" }]);
      expect(family("bulkhead_namespaces_max").metrics).toEqual([{ labels: { index }, value: "90" }]);
    });
  });
}

describe("daily query leases across closes and instances", () => {
  it("pglite: gives unspent leases back on close, so the day's count is what was spent", async () => {
    const dir = newDataDir("bh-leases-");
    try {
      const first = (await openBulkhead({ database: dir, env: {}, config: { dimension: 8 } })).bulkhead;
      await first.registry.registerTenant("tenant-a", "A", TenantTier.FREE, { quota: { ...ROOMY, maxDailyQueries: 100 } });
      for (let i = 0; i < 7; i++) await first.dataManager.queryDocuments("tenant-a", vec(i), { topK: 1 });
      await first.close();
      const { bulkhead: again, db } = await openBulkhead({ database: dir, env: {}, config: { dimension: 8 } });
      try {
        expect(await db.queryAsTenant("tenant-a", "SELECT queries FROM daily_query_counts")).toEqual([{ queries: 7 }]);
      } finally {
        await again.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(serverUrl)("postgres: two instances leasing one tenant's day admit exactly its quota between them, never more", async () => {
    const [a, b] = await openServerPair({ config: { dimension: 8 } });
    try {
      await a.bulkhead.registry.registerTenant("tenant-a", "A", TenantTier.FREE, { quota: { ...ROOMY, maxDailyQueries: 30 } });
      let admitted = 0;
      const refused = new Set<string>();
      while (refused.size < 2) {
        for (const [name, bh] of [["a", a.bulkhead], ["b", b.bulkhead]] as const) {
          if (refused.has(name)) continue;
          await bh.dataManager.queryDocuments("tenant-a", vec(admitted), { topK: 1 }).then(
            () => admitted++,
            (err: unknown) => {
              expect(err).toBeInstanceOf(QuotaExceededError);
              refused.add(name);
            },
          );
        }
      }
      expect(admitted).toBe(30);
      expect(await a.db.queryAsTenant("tenant-a", "SELECT queries FROM daily_query_counts")).toEqual([{ queries: 30 }]);
    } finally {
      await a.bulkhead.close();
      await b.bulkhead.close();
    }
  });
});
