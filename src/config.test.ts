import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Config, loadConfig, TenantTier, textSettingsOf } from "./config.js";
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

  it("gives each tier its own chunk sizes and embedding model, the global ones where it sets none", () => {
    const c = loadConfig({
      env: {
        BULKHEAD_CHUNK_TOKENS: "300",
        BULKHEAD_DIMENSION: "1536",
        BULKHEAD_TIER_TEXT: JSON.stringify({ enterprise: { chunkTokens: 800, chunkOverlapTokens: 100, embeddingsModel: "text-embedding-3-large", embeddingsDimension: 3072 }, pro: { chunkTokens: 200 } }),
      },
    });
    expect(textSettingsOf(c, TenantTier.ENTERPRISE)).toEqual({ chunkTokens: 800, chunkOverlapTokens: 100, embeddingsModel: "text-embedding-3-large", embeddingsDimension: 3072 });
    expect(textSettingsOf(c, TenantTier.PRO)).toEqual({ chunkTokens: 200, chunkOverlapTokens: 50, embeddingsModel: "text-embedding-3-small", embeddingsDimension: 1536 });
    expect(textSettingsOf(c, TenantTier.FREE)).toEqual({ chunkTokens: 300, chunkOverlapTokens: 50, embeddingsModel: "text-embedding-3-small", embeddingsDimension: 1536 });
    expect(Object.isFrozen(c.tierText.enterprise)).toBe(true);
  });

  it("refuses hostile or incoherent tier text settings, saying what to do", () => {
    const refused = (value: unknown, message: RegExp) => expect(() => loadConfig({ env: { BULKHEAD_TIER_TEXT: typeof value === "string" ? value : JSON.stringify(value) } })).toThrow(message);
    refused("{not json", /BULKHEAD_TIER_TEXT must be JSON like \{"enterprise"/);
    refused([], /must be a JSON object/);
    refused({ platinum: { chunkTokens: 800 } }, /"platinum" is not a tier \(tiers: free, pro, enterprise\)/);
    refused('{"__proto__":{"chunkTokens":800}}', /"__proto__" is not a tier/);
    refused({ pro: 800 }, /BULKHEAD_TIER_TEXT\.pro must be a JSON object/);
    refused({ pro: { chunkSize: 800 } }, /BULKHEAD_TIER_TEXT\.pro\.chunkSize is not a text setting \(known: chunkTokens, chunkOverlapTokens, embeddingsModel, embeddingsDimension\)/);
    refused({ pro: { apiKey: "sk-x" } }, /apiKey is not a text setting/);
    refused({ pro: { chunkTokens: 1e9 } }, /BULKHEAD_TIER_TEXT\.pro\.chunkTokens must be a whole number from 16 to 8000/);
    refused({ pro: { chunkTokens: 400.5 } }, /chunkTokens must be a whole number/);
    refused({ pro: { chunkOverlapTokens: -1 } }, /chunkOverlapTokens must be a whole number from 0/);
    refused({ pro: { embeddingsDimension: 0 } }, /embeddingsDimension must be a whole number from 1 to 16000/);
    refused({ pro: { embeddingsModel: "" } }, /embeddingsModel must be a model name/);
    refused({ pro: { embeddingsModel: "model\nX-Injected: 1" } }, /embeddingsModel must be a model name/);
    refused({ pro: { embeddingsModel: "x".repeat(201) } }, /embeddingsModel must be a model name/);
    refused({ pro: { embeddingsModel: { $ne: 1 } } }, /embeddingsModel must be a model name/);
    // Coherence of what a tier ends up with, its own settings and the global ones together.
    refused({ pro: { chunkTokens: 40 } }, /BULKHEAD_CHUNK_OVERLAP_TOKENS \(50\) must be less than BULKHEAD_TIER_TEXT\.pro\.chunkTokens \(40\) for tier pro/);
    refused({ free: { embeddingsDimension: 768 } }, /"text-embedding-3-small" has 768 dimensions for tier free and 384 for tier pro; give it one embeddingsDimension/);
    refused({ free: { embeddingsModel: "m", embeddingsDimension: 8 }, pro: { embeddingsModel: "m", embeddingsDimension: 16 } }, /"m" has 8 dimensions for tier free and 16 for tier pro/);
    const dir = mkdtempSync(join(tmpdir(), "bh-config-"));
    writeFileSync(join(dir, "c.json"), JSON.stringify({ tierText: { enterprise: { chunkTokens: 5 } } }));
    expect(() => loadConfig({ env: { BULKHEAD_CONFIG: join(dir, "c.json") } })).toThrow(/c\.json: tierText\.enterprise\.chunkTokens must be a whole number from 16/);
  });
});
