import { describe, expect, it } from "vitest";
import { loadConfig } from "../config.js";
import { planStrategies } from "./planner.js";
import { largestRemainder, usdToPico } from "./money.js";

describe("strategy planner", () => {
  const { prices, maxNamespacesPerIndex } = loadConfig({ env: {} });
  const plan = planStrategies(prices, maxNamespacesPerIndex, { tenantCounts: [10, 100, 500], profile: { queriesPerTenantPerMonth: 0 } });
  const get = (s: string, n: number) => plan.find((p) => p.strategy === s && p.tenants === n)!;

  it("derives the reference's decision card from the price book", () => {
    // Namespace isolation: one index up to 90 tenants, then more.
    expect(get("namespace-isolation", 10).infrastructureMonthly).toBe(115);
    expect(get("namespace-isolation", 100).infrastructureMonthly).toBe(2 * 50 + 30 + 35);
    expect(get("namespace-isolation", 500).perTenantMonthly).toBeCloseTo((6 * 50 + 65) / 500, 2);
    // Single-tenant: $500 a tenant with the default compute price, as in the reference.
    expect(get("single-tenant", 10).perTenantMonthly).toBe(500);
    expect(get("tenant-per-database", 100).infrastructureMonthly).toBe(2 * 50 + 100 * 7 + 35);
    expect(get("hybrid-tiering", 100).infrastructureMonthly).toBe(50 + 30 + 35 + 10 * 500);
    expect(get("namespace-isolation", 100).formula).toBe("ceil(100 / 90) × $50 + $30 + $35 + 100 × 0 queries × $0.00206");
  });

  it("adds the same variable cost to every strategy", () => {
    const withUsage = planStrategies(prices, maxNamespacesPerIndex, { tenantCounts: [100] });
    // 100 tenants × 1,000 queries × $0.00206 (500 embedding + 1,000 LLM tokens + the vector query).
    for (const s of withUsage) expect(s.variableMonthly).toBe(206);
  });
});

describe("money", () => {
  it("keeps prices exact in pico-dollars and refuses finer ones", () => {
    expect(usdToPico(0.0001 / 1000, "p")).toBe(100_000n);
    expect(usdToPico(0.0000375 / 1000, "p")).toBe(37_500n);
    expect(() => usdToPico(1e-13, "p")).toThrow(/at most 12 decimal places/);
  });

  it("splits with largest remainders so shares add up exactly", () => {
    const shares = largestRemainder(10_000n, new Map([["a", 1n], ["b", 1n], ["c", 1n]]));
    expect([...shares.values()].reduce((x, y) => x + y, 0n)).toBe(10_000n);
    expect([...shares.values()].sort()).toEqual([3333n, 3333n, 3334n]);
    expect(largestRemainder(11_500n, new Map([["t1", 30n], ["t2", 70n]]))).toEqual(new Map([["t1", 3450n], ["t2", 8050n]]));
  });
});
