import { describe, expect, it } from "vitest";
import { TenantCache } from "./tenant-cache.js";

describe("TenantCache", () => {
  it("serves hits until the TTL, shares one load between concurrent misses, and reloads after invalidation", async () => {
    const clock = { t: 0 };
    const cache = new TenantCache<string>(1_000, () => clock.t);
    let loads = 0;
    const load = async () => `v${++loads}`;
    expect(await Promise.all([cache.get("a", load), cache.get("a", load)])).toEqual(["v1", "v1"]);
    clock.t = 999;
    expect(await cache.get("a", load)).toBe("v1");
    clock.t = 1_000;
    expect(await cache.get("a", load)).toBe("v2");
    cache.invalidate("a");
    expect(await cache.get("a", load)).toBe("v3");
  });

  it("does not keep a value loaded while an invalidation happened, nor anything while bypassed", async () => {
    const cache = new TenantCache<string>(60_000);
    let release!: () => void;
    const slow = cache.get("a", () => new Promise((r) => (release = () => r("stale"))));
    cache.invalidate("a");
    release();
    expect(await slow).toBe("stale");
    expect(await cache.get("a", async () => "fresh")).toBe("fresh");
    cache.bypass = true;
    expect(await cache.get("a", async () => "live")).toBe("live");
    cache.bypass = false;
    expect(await cache.get("a", async () => "after")).toBe("fresh");
  });

  it("keeps misses only when asked to (API key ids come from anyone)", async () => {
    const tenants = new TenantCache<string>(60_000);
    const keys = new TenantCache<string>(60_000, Date.now, false);
    let loads = 0;
    const miss = async () => (loads++, undefined);
    await tenants.get("x", miss);
    await tenants.get("x", miss);
    expect(loads).toBe(1);
    loads = 0;
    await keys.get("x", miss);
    await keys.get("x", miss);
    expect(loads).toBe(2);
  });
});
