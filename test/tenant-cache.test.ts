import pg from "pg";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { QuotaExceededError, TenantNotFoundError, TenantSuspendedError } from "../src/errors.js";
import { FEED_APPLICATION_NAME } from "../src/tenancy/change-feed.js";
import { dropTestSchemas, openServerPair, serverUrl, vec } from "./backends.js";

afterAll(dropTestSchemas);

/** Polls until `check` passes; returns how long that took. Fails after 5 s — far below the 5-minute cache TTL. */
async function within<T>(check: () => Promise<T>): Promise<number> {
  const started = Date.now();
  for (;;) {
    try {
      await check();
      return Date.now() - started;
    } catch (err) {
      if (Date.now() - started > 5_000) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

describe.runIf(serverUrl)("postgres: tenant cache across instances", () => {
  let a: Bulkhead;
  let b: Bulkhead;
  const logs: string[] = [];
  afterEach(async () => {
    await a?.close();
    await b?.close();
  });

  it("makes a change in one instance take effect in the other at commit, not after the 5-minute TTL", async () => {
    [{ bulkhead: a }, { bulkhead: b }] = await openServerPair({ config: { dimension: 8 } });
    expect(a.config.tenantCacheTtlMs).toBe(300_000);
    // B looks the tenant up before it exists: "not found" is cached too, and must not outlive the registration.
    await expect(b.dataManager.countDocuments("tenant-a")).rejects.toBeInstanceOf(TenantNotFoundError);
    await a.registry.registerTenant("tenant-a", "A", TenantTier.FREE);
    await within(() => b.dataManager.countDocuments("tenant-a"));
    await b.dataManager.queryDocuments("tenant-a", vec(1), { topK: 1 }); // cached in B now

    await a.registry.suspendTenant("tenant-a");
    await within(() => expect(b.dataManager.queryDocuments("tenant-a", vec(1), { topK: 1 })).rejects.toBeInstanceOf(TenantSuspendedError));
    await a.registry.resumeTenant("tenant-a");
    await within(() => b.dataManager.queryDocuments("tenant-a", vec(1), { topK: 1 }));

    // A quota change reaches B's cached tenant (and B's memory of limits) too.
    await a.registry.setQuota("tenant-a", { maxDailyQueries: 0 });
    await within(() => expect(b.dataManager.queryDocuments("tenant-a", vec(1), { topK: 1 })).rejects.toBeInstanceOf(QuotaExceededError));
    await a.registry.setQuota("tenant-a", {});
    await within(() => b.dataManager.queryDocuments("tenant-a", vec(1), { topK: 1 }));
  });

  it("stops trusting its cache while the change feed is down, and trusts it again once it is back", async () => {
    [{ bulkhead: a }, { bulkhead: b }] = await openServerPair({ config: { dimension: 8 }, warn: (m) => logs.push(m) });
    await a.registry.registerTenant("tenant-a", "A", TenantTier.FREE);
    await within(() => b.dataManager.countDocuments("tenant-a"));

    // Cut every change-feed connection of this schema (an operator restart, a network blip).
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    try {
      const killed = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE $2",
        [FEED_APPLICATION_NAME, `%${a.config.schema}%`],
      );
      expect(killed.rowCount).toBe(2);
    } finally {
      await admin.end();
    }
    await within(async () => expect(logs.filter((l) => l.includes("lost the tenant change feed"))).toHaveLength(2));

    // A change made while B cannot hear about it is still seen by B: it reads afresh meanwhile.
    await a.registry.suspendTenant("tenant-a");
    await expect(b.dataManager.countDocuments("tenant-a")).rejects.toBeInstanceOf(TenantSuspendedError);

    await within(async () => expect(logs.filter((l) => l.includes("change feed restored"))).toHaveLength(2));
    await a.registry.resumeTenant("tenant-a");
    await within(() => b.dataManager.countDocuments("tenant-a"));
  });
});
