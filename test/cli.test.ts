import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const bin = new URL("../dist/cli/main.js", import.meta.url).pathname;

describe("bulkhead CLI (built binary, child process)", () => {
  it("is built by npm install", () => {
    expect(existsSync(bin), `${bin} is missing: run npm install (its prepare step builds dist/)`).toBe(true);
  });

  it("runs the walkthrough on the embedded database with every live check passing", async () => {
    const { stdout } = await run(process.execPath, [bin, "demo"], { env: { ...process.env, DATABASE_URL: "" }, timeout: 120_000 });
    for (const section of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) expect(stdout).toContain(`== Section ${section}:`);
    // Each tenant finds its own "returns" document, never the other's.
    expect(stdout).toMatch(/tenant-001 searches "returns OR refunds" \(fulltext\): [^\n]*\[Returns › Refunds\] Refunds reach the card in 5 days\./);
    expect(stdout).toMatch(/tenant-002 searches "returns OR refunds" \(fulltext\): \[Returns\] TechStart accepts no returns on custom hardware\.\n/);
    expect(stdout).not.toMatch(/tenant-002 searches[^\n]*Acme/);
    expect(stdout).toContain("tenant-001: query 1 = $0.002060");
    expect(stdout).toContain("Allocated 30:70 → tenant-001 $34.50, tenant-002 $80.50");
    // The enterprise tenant owns a dedicated index: the allocation that counts charges it that index.
    const enterpriseFixed = Number(/tenant-003: variable \$[\d.]+, fixed \$([\d.]+)/.exec(stdout)?.[1]);
    expect(enterpriseFixed).toBeGreaterThanOrEqual(50);
    expect(stdout).toContain("SECURITY TEST PASSED");
    expect(stdout).toMatch(/registered scale-081: shared-index-1 81\/90 warning, shared-index-2 0\/90 healthy/);
    expect(stdout).not.toContain("✗");
    expect(stdout).toContain("✓ All checks passed");
  }, 120_000);

  it("prints the migration SQL for review and fails clearly on bad input", async () => {
    const { stdout } = await run(process.execPath, [bin, "db", "migrate", "--print"], { env: { ...process.env, BULKHEAD_SCHEMA: "bh" } });
    expect(stdout).toContain('CREATE TABLE "bh".tenants');
    expect(stdout).toContain("FORCE ROW LEVEL SECURITY");
    const err = await run(process.execPath, [bin, "demo"], { env: { ...process.env, BULKHEAD_MAX_NAMESPACES_PER_INDEX: "many" } }).catch((e) => e);
    expect(err.code).toBe(2); // invalid configuration: the "invalid input" exit code
    expect(err.stderr).toContain("BULKHEAD_MAX_NAMESPACES_PER_INDEX must be a whole number");
    const unknown = await run(process.execPath, [bin, "frobnicate"]).catch((e) => e);
    expect(unknown.code).not.toBe(0);
  });
});
