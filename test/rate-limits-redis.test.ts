import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createBulkhead, type Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { RateLimitedError } from "../src/errors.js";
import { TenantRateLimiter } from "../src/limits/rate-limiter.js";
import { freePort, vec, waitFor } from "./backends.js";

/** The project's Redis (`.ci/run` makes sure it is up). */
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

const clients: Redis[] = [];
afterAll(() => clients.forEach((c) => c.disconnect()));


/** A Redis of this test's own, so stopping it cannot disturb anything else. */
async function startRedis(port: number): Promise<ChildProcess> {
  const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const probe = new Redis(port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  for (let i = 0; i < 100; i++) {
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return proc;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`redis-server did not start on port ${port}`);
}

async function metric(bh: Bulkhead, name: string): Promise<number> {
  const line = (await bh.monitor.metricsText()).split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.split(" ")[1]);
}

describe("rate limits in Redis", () => {
  let bh: Bulkhead | undefined;
  let redisProc: ChildProcess | undefined;
  afterEach(async () => {
    await bh?.close();
    bh = undefined;
    redisProc?.kill("SIGKILL");
    redisProc = undefined;
  });

  it("shares one tenant's limit between two limiter instances (two processes' worth of clients)", async () => {
    const keyPrefix = `bulkhead-test-${randomBytes(4).toString("hex")}`;
    const [r1, r2] = [new Redis(REDIS_URL), new Redis(REDIS_URL)];
    clients.push(r1, r2);
    await Promise.all([r1.ping(), r2.ping()]);
    const one = new TenantRateLimiter({ redis: r1, keyPrefix });
    const two = new TenantRateLimiter({ redis: r2, keyPrefix });
    const limit = { requestsPerSecond: 5, burst: 3 };
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => (i % 2 ? one : two).consume("tenant-a", limit)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(8);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toBeInstanceOf(RateLimitedError);
    // Another tenant's budget is untouched.
    await expect(one.consume("tenant-b", limit)).resolves.toBeUndefined();
    // Both instances wrote to the same keys.
    expect((await r1.keys(`${keyPrefix}:*`)).length).toBeGreaterThanOrEqual(3);
  });

  it("keeps serving when Redis stops or stalls mid-test: insurance decides, a log line and metrics say so", async () => {
    const port = await freePort();
    redisProc = await startRedis(port);
    const logs: string[] = [];
    bh = await createBulkhead({ database: "memory://", env: {}, config: { dimension: 8, redisUrl: `redis://127.0.0.1:${port}`, redisTimeoutMs: 50 }, warn: (m) => logs.push(m) });
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: { requestsPerSecond: 1_000, maxConcurrent: 100 } });
    await bh.dataManager.upsertDocuments("tenant-a", [{ id: "d1", values: vec(1) }]);
    expect(await metric(bh, "bulkhead_redis_up")).toBe(1);
    expect(await metric(bh, "bulkhead_rate_limit_insurance_decisions_total")).toBe(0);

    // Slow: the Redis process is frozen, so commands outlive the 50 ms timeout.
    redisProc.kill("SIGSTOP");
    const duringStall = await Promise.all(Array.from({ length: 5 }, (_, i) => bh!.dataManager.queryDocuments("tenant-a", vec(i), { topK: 1 })));
    redisProc.kill("SIGCONT");
    expect(duringStall.every((r) => r.matches.length === 1)).toBe(true);
    expect(logs.filter((l) => l.includes("decisions are being made in memory"))).toHaveLength(1);
    expect(await metric(bh, "bulkhead_rate_limit_insurance_decisions_total")).toBeGreaterThan(0);

    // Down: the server is killed.
    redisProc.kill("SIGKILL");
    await waitFor("Redis to be seen down", async () => (await metric(bh!, "bulkhead_redis_up")) === 0);
    const before = await metric(bh, "bulkhead_rate_limit_insurance_decisions_total");
    for (let i = 0; i < 20; i++) await bh.dataManager.queryDocuments("tenant-a", vec(i), { topK: 1 });
    expect(await metric(bh, "bulkhead_rate_limit_insurance_decisions_total")).toBeGreaterThanOrEqual(before + 20);
    expect(logs.filter((l) => l.includes("Redis unavailable"))).toHaveLength(1); // once per outage, not per request

    // Insurance still limits: a flood above the tenant's rate is refused, in memory.
    await bh.registry.setQuota("tenant-a", { requestsPerSecond: 3, burst: 0, maxConcurrent: 100 });
    const flood = await Promise.allSettled(Array.from({ length: 10 }, () => bh!.dataManager.fetchDocuments("tenant-a", ["d1"])));
    expect(flood.filter((r) => r.status === "fulfilled")).toHaveLength(3);

    // Back: the same port again; the client reconnects by itself.
    redisProc = await startRedis(port);
    await waitFor("Redis to be seen up again", async () => (await metric(bh!, "bulkhead_redis_up")) === 1);
    expect(logs.some((l) => l.includes("Redis is back"))).toBe(true);
  });
});
