import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const cli = join(import.meta.dirname, "..", "dist", "cli", "main.js");
const dir = mkdtempSync(join(tmpdir(), "bulkhead-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the built `bulkhead` in a child process on this file's data directory. */
async function bulkhead(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args, ...(args[0] === "costs" && args[1] === "plan" ? [] : ["--database", dir])], { env: { ...process.env, DATABASE_URL: "" } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("bulkhead operator commands (built binary, child processes, embedded data directory)", () => {
  it("manages tenants, keys, capacity and costs, with tables for people and --json for scripts", async () => {
    expect((await bulkhead("tenants", "add", "acme", "Acme Corp", "--tier", "pro", "--max-daily-queries", "500")).stdout).toContain("registered acme (pro) in shared-index-1");
    const beta = JSON.parse((await bulkhead("tenants", "add", "beta", "Beta", "--json")).stdout);
    expect(beta).toMatchObject({ tenantId: "beta", tier: "free", isolation: "namespace" });

    const list = JSON.parse((await bulkhead("tenants", "list", "--json")).stdout);
    expect(list.map((t: { tenantId: string; maxDailyQueries: number }) => [t.tenantId, t.maxDailyQueries])).toEqual([["acme", 500], ["beta", 1000]]);
    expect((await bulkhead("tenants", "list")).stdout).toMatch(/^tenantId\s+name\s+tier/);

    const key = JSON.parse((await bulkhead("keys", "create", "--tenant", "acme", "--scopes", "read", "--json")).stdout);
    expect(key.key).toMatch(/^bh_tenant_[a-f0-9]{16}_/);
    const keys = JSON.parse((await bulkhead("keys", "list", "--tenant", "acme", "--json")).stdout);
    expect(keys).toHaveLength(1);
    expect(JSON.stringify(keys)).not.toContain(key.key.split("_").at(-1));
    const rotated = JSON.parse((await bulkhead("keys", "rotate", key.keyId, "--json")).stdout);
    expect(rotated.keyId).not.toBe(key.keyId);
    expect(JSON.parse((await bulkhead("keys", "revoke", rotated.keyId, "--json")).stdout).revokedAt).not.toBeNull();

    const moved = JSON.parse((await bulkhead("tenants", "set-tier", "acme", "enterprise", "--json")).stdout);
    expect(moved).toMatchObject({ tier: "enterprise", isolation: "dedicated-index", index: "dedicated-acme" });
    expect(JSON.parse((await bulkhead("tenants", "suspend", "beta", "--json")).stdout).status).toBe("suspended");
    expect(JSON.parse((await bulkhead("capacity", "--json")).stdout)).toEqual([expect.objectContaining({ index: "shared-index-1", used: 1, max: 90, status: "healthy" })]);

    expect(JSON.parse((await bulkhead("costs", "allocate", "--method", "equal", "--total", "100", "--json")).stdout)).toEqual({ acme: 50, beta: 50 });
    const report = JSON.parse((await bulkhead("costs", "report", "--json")).stdout);
    expect(report.allocationMethod).toBe("equal");
    expect(JSON.parse((await bulkhead("costs", "plan", "--tenants", "100", "--json")).stdout).map((p: { strategy: string }) => p.strategy)).toContain("namespace-isolation");

    const file = join(dir, "acme.bkp.gz");
    const backup = JSON.parse((await bulkhead("backup", "acme", "--out", file, "--json")).stdout);
    expect(backup).toMatchObject({ tenantId: "acme", documents: 0 });
    const restored = JSON.parse((await bulkhead("restore", file, "--into", "acme-copy", "--json")).stdout);
    expect(restored).toMatchObject({ from: "acme", tenantId: "acme-copy", created: true });

    const erased = JSON.parse((await bulkhead("tenants", "delete", "beta", "--yes", "--json")).stdout);
    expect(erased).toMatchObject({ tenantId: "beta", verified: true, remaining: { tenants: 0, api_keys: 0, document_counts: 0, daily_query_counts: 0 } });
  });

  it("exits with a code that says what went wrong, and a message that says what to do", async () => {
    const missing = await bulkhead("tenants", "show", "nobody");
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('tenant "nobody" does not exist');
    const invalid = await bulkhead("tenants", "add", "Bad Id", "x");
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain("tenantId");
    expect((await bulkhead("tenants", "add", "dup", "Dup")).code).toBe(0);
    expect((await bulkhead("tenants", "add", "dup", "Dup")).code).toBe(4);
    expect((await bulkhead("tenants", "add", "x1", "X", "--tier", "gold")).stderr).toContain("tier: must be one of free, pro, enterprise");
    expect((await bulkhead("keys", "create")).stderr).toContain("give exactly one of --tenant <tenantId> or --admin");
  });
});
