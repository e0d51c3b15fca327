import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Config, loadConfig } from "./config.js";
import { ConfigError } from "./errors.js";

describe("configuration", () => {
  it("keeps the reference's defaults", () => {
    const c = loadConfig({ env: {} });
    expect([c.maxNamespacesPerIndex, c.namespaceAlertThreshold, c.namespaceProvisionThreshold, c.dimension]).toEqual([90, 0.8, 0.9, 384]);
    expect(Config.MAX_NAMESPACES_PER_INDEX).toBe(90);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("layers file < environment < code, including per-tier quotas", () => {
    const dir = mkdtempSync(join(tmpdir(), "bh-config-"));
    const file = join(dir, "bulkhead.json");
    writeFileSync(file, JSON.stringify({ maxNamespacesPerIndex: 50, dimension: 768, tierQuotas: { free: { maxDocuments: 5 } } }));
    const c = loadConfig({
      env: { BULKHEAD_CONFIG: file, BULKHEAD_DIMENSION: "1536", BULKHEAD_TIER_PRO_MAX_DAILY_QUERIES: "7" },
      overrides: { tierQuotas: { enterprise: { maxDocuments: 9 } } },
    });
    expect(c.maxNamespacesPerIndex).toBe(50);
    expect(c.dimension).toBe(1536);
    expect(c.tierQuotas.free).toEqual({ maxDocuments: 5, maxTextChunks: 10_000, maxDailyLlmTokens: 100_000, maxDailyQueries: 1000, requestsPerSecond: 10, burst: 20, maxConcurrent: 4, requestBytesPerSecond: 1_048_576 });
    expect(c.tierQuotas.pro.maxDailyQueries).toBe(7);
    expect(c.tierQuotas.enterprise.maxDocuments).toBe(9);
  });

  it("names the variable that is wrong", () => {
    expect(() => loadConfig({ env: { BULKHEAD_MAX_NAMESPACES_PER_INDEX: "lots" } })).toThrow(/BULKHEAD_MAX_NAMESPACES_PER_INDEX must be a whole number/);
    expect(() => loadConfig({ env: { BULKHEAD_NAMESPACE_ALERT_THRESHOLD: "80" } })).toThrow(/BULKHEAD_NAMESPACE_ALERT_THRESHOLD must be a number above 0 and at most 1/);
    expect(() => loadConfig({ env: { BULKHEAD_METRIC: "manhattan" } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { BULKHEAD_SCHEMA: "drop table" } })).toThrow(/BULKHEAD_SCHEMA/);
    expect(() => loadConfig({ env: { BULKHEAD_NAMESPACE_ALERT_THRESHOLD: "0.95" } })).toThrow(/PROVISION_THRESHOLD .* must not be below/);
    const dir = mkdtempSync(join(tmpdir(), "bh-config-"));
    writeFileSync(join(dir, "c.json"), JSON.stringify({ maxNamespaces: 3 }));
    expect(() => loadConfig({ env: { BULKHEAD_CONFIG: join(dir, "c.json") } })).toThrow(/unknown key "maxNamespaces"/);
  });
});
