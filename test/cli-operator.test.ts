import { execFile, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { openBulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { runCli } from "../src/cli/program.js";
import type { CliIo } from "../src/cli/output.js";
import { BUILT_CLI, dataUrl, dropTestSchemas, newDataDir, newTestSchema, ownerUrl, serverUrl, vec } from "./backends.js";

const cli = BUILT_CLI;
const dir = newDataDir("bulkhead-cli-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterAll(dropTestSchemas);

/**
 * Runs `bulkhead …` as the binary does (`runCli`, the same code as dist/cli/main.js) but in this
 * process, on buffers: a child process per command cost ~0.4 s of Node start-up and imports.
 */
async function inProcess(args: string[], env: Record<string, string | undefined>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = { out: (t) => void (stdout += t), err: (t) => void (stderr += t), tty: false, env, exitCode: 0 };
  const code = await runCli(args, io);
  return { code, stdout, stderr };
}

/** `bulkhead …` on this file's data directory. */
const bulkhead = (...args: string[]) => inProcess([...args, ...(args[0] === "costs" && args[1] === "plan" ? [] : ["--database", dir])], { ...process.env, DATABASE_URL: "" });

/** The same, through the built binary in a child process: its exit code and streams are runCli's. */
async function binary(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args, "--database", dir], { env: { ...process.env, DATABASE_URL: "" } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe("bulkhead operator commands (embedded data directory)", () => {
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
    expect(JSON.stringify(keys)).not.toContain(key.key.split("_").slice(3).join("_"));
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
  }, 120_000); // about twenty commands, each opening the embedded database

  it("exits with a code that says what went wrong, and a message that says what to do", async () => {
    const missing = await bulkhead("tenants", "show", "nobody");
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('tenant "nobody" does not exist');
    expect(await binary("tenants", "show", "nobody")).toEqual(missing);
    const invalid = await bulkhead("tenants", "add", "Bad Id", "x");
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain("tenantId");
    expect((await bulkhead("tenants", "add", "dup", "Dup")).code).toBe(0);
    expect((await bulkhead("tenants", "add", "dup", "Dup")).code).toBe(4);
    expect((await bulkhead("tenants", "add", "x1", "X", "--tier", "gold")).stderr).toContain("tier: must be one of free, pro, enterprise");
    expect((await bulkhead("keys", "create")).stderr).toContain("give exactly one of --tenant <tenantId> or --admin");
  });

  it("exit codes match the README's table: usage errors 2, a missing move or file 3, a revoked key's rotation 4; options are checked", async () => {
    // Usage errors are invalid input (2), not commander's 1.
    const noYes = await bulkhead("tenants", "delete", "dup");
    expect(noYes.code).toBe(2);
    expect(noYes.stderr).toContain("--yes");
    expect((await bulkhead("tenants", "list", "--bogus-option")).code).toBe(2);
    const status = await bulkhead("tenants", "list", "--status", "bogus");
    expect(status.code).toBe(2);
    expect(status.stderr).toContain("--status");
    // Nothing to resume or roll back is "not found".
    const noMove = await bulkhead("migrate", "rollback", "dup");
    expect(noMove.code).toBe(3);
    expect(noMove.stderr).toContain("no move in progress");
    const missing = await bulkhead("restore", join(dir, "no-such-backup.gz"));
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain("no backup file at");
    expect(missing.stderr).not.toContain("gzip");

    // Both --scopes are kept; an admin key lists no scopes.
    const both = JSON.parse((await bulkhead("keys", "create", "--tenant", "dup", "--scopes", "read", "--scopes", "write", "--json")).stdout);
    expect(both.scopes).toEqual(["read", "write"]);
    expect(JSON.parse((await bulkhead("keys", "create", "--tenant", "dup", "--scopes", "write", "--json")).stdout).scopes).toEqual(["write"]);
    const admin = JSON.parse((await bulkhead("keys", "create-admin", "--name", "break-glass", "--json")).stdout);
    expect(admin).toMatchObject({ kind: "admin", name: "break-glass", scopes: [] });
    expect(admin.key).toMatch(/^bh_admin_/);
    const admins = JSON.parse((await bulkhead("keys", "list", "--admin", "--json")).stdout);
    expect(admins.map((k: { keyId: string; scopes: string[] }) => [k.keyId, k.scopes])).toEqual([[admin.keyId, []]]);
    expect((await bulkhead("keys", "list", "--admin")).stdout).toMatch(/admin\s+–\s+\(admin\)\s+break-glass/);

    // A revoked key cannot be rotated into a working one.
    await bulkhead("keys", "revoke", both.keyId);
    const rotated = await bulkhead("keys", "rotate", both.keyId);
    expect(rotated.code).toBe(4);
    expect(rotated.stderr).toContain("revoked");
    expect(rotated.stdout).not.toContain("bh_tenant_");

    // Months this deployment cannot have billed are refused, not reported with today's tenants.
    const past = await bulkhead("costs", "report", "--period", "1999-01");
    expect(past.code).toBe(2);
    expect(past.stderr).toContain("before this deployment's first tenant");
    const future = await bulkhead("costs", "report", "--period", "2999-01");
    expect(future.code).toBe(2);
    expect(future.stderr).toContain("in the future");
  }, 120_000);

  it("moves a tenant to a cell and home again with `migrate start --store`, registers one there with `tenants add --store`, and shows where they live", async () => {
    const home = newDataDir("bulkhead-cli-home-");
    const cellDir = newDataDir("bulkhead-cli-cell-");
    const env = { ...process.env, DATABASE_URL: "", BULKHEAD_DIMENSION: "8", BULKHEAD_CELLS: JSON.stringify({ "cell-2": { url: cellDir } }) };
    const run = async (...args: string[]) => {
      const { code, stdout, stderr } = await inProcess([...args, "--database", home, "--json"], env);
      expect(code, stderr).toBe(0);
      return JSON.parse(stdout);
    };
    try {
      await run("tenants", "add", "acme", "Acme Corp", "--tier", "pro");
      const { bulkhead: bh } = await openBulkhead({ database: home, env: {}, config: { dimension: 8, cells: { "cell-2": { url: cellDir } } } });
      await bh.dataManager.upsertDocuments("acme", Array.from({ length: 30 }, (_, i) => ({ id: `d${i}`, values: vec(i) })));
      await bh.close();

      expect(await run("migrate", "start", "acme", "--store", "cell-2")).toMatchObject({ tenantId: "acme", store: "cell-2", index: "cell-2/shared-index-1" });
      expect((await run("tenants", "list")).map((t: { store: string }) => t.store)).toEqual(["cell-2"]);
      const unknown = await inProcess(["migrate", "start", "acme", "--store", "cell-9", "--database", home], env);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('no store named "cell-9"');
      expect(await run("migrate", "start", "acme", "--store", "home")).toMatchObject({ store: "home", index: "shared-index-1" });
      expect(await run("tenants", "add", "zeta", "Zeta", "--store", "cell-2")).toMatchObject({ tenantId: "zeta", store: "cell-2", index: "cell-2/shared-index-1" });

      const { bulkhead: again } = await openBulkhead({ database: home, env: {}, config: { dimension: 8, cells: { "cell-2": { url: cellDir } } } });
      expect(await again.dataManager.countDocuments("acme")).toBe(30);
      await again.close();
    } finally {
      rmSync(home, { recursive: true, force: true });
      rmSync(cellDir, { recursive: true, force: true });
    }
  }, 120_000);

  it.runIf(serverUrl)("keys create-admin mints a working admin key offline over the owner role's URL (DATABASE_OWNER_URL) or the runtime URL", async () => {
    const schema = newTestSchema();
    const { bulkhead: bh } = await openBulkhead({ database: serverUrl!, databaseOwnerUrl: ownerUrl, databaseDataUrl: dataUrl, env: {}, config: { schema, dimension: 8 } });
    try {
      const run = async (env: Record<string, string>) => JSON.parse((await inProcess(["keys", "create-admin", "--name", "break-glass", "--json"], { ...process.env, BULKHEAD_SCHEMA: schema, ...env })).stdout);
      const viaOwner = await run({ DATABASE_URL: serverUrl!, DATABASE_OWNER_URL: ownerUrl! });
      const viaRuntime = await run({ DATABASE_URL: serverUrl!, DATABASE_OWNER_URL: "" });
      for (const created of [viaOwner, viaRuntime]) {
        expect(created).toMatchObject({ kind: "admin", name: "break-glass", scopes: [] });
        expect((await bh.keys.verify(created.key)).keyId).toBe(created.keyId);
      }
      expect((await bh.audit.list()).filter((e) => e.action === "key.create").map((e) => e.actor)).toEqual(["cli", "cli"]);
    } finally {
      await bh.close();
    }
  });

  it.runIf(serverUrl)("a move killed mid-copy (SIGKILL) is listed, the tenant keeps working, and `migrate resume` finishes it with nothing lost", async () => {
    const schema = newTestSchema();
    const env = { ...process.env, DATABASE_URL: serverUrl!, BULKHEAD_SCHEMA: schema, BULKHEAD_DIMENSION: "8" };
    const { bulkhead: bh } = await openBulkhead({ database: serverUrl!, databaseOwnerUrl: ownerUrl, databaseDataUrl: dataUrl, env: {}, config: { schema, dimension: 8 } });
    const owner = new pg.Client({ connectionString: ownerUrl });
    await owner.connect();
    try {
      await bh.registry.registerTenant("big", "Big", TenantTier.PRO, { quota: { requestsPerSecond: 100_000, burst: 100_000 } });
      for (let s = 0; s < 3000; s += 500) await bh.dataManager.upsertDocuments("big", Array.from({ length: 500 }, (_, i) => ({ id: `d${String(s + i).padStart(5, "0")}`, values: vec(s + i) })));

      const child = spawn(process.execPath, [cli, "migrate", "start", "big", "--tier", "enterprise", "--batch-size", "10", "--json"], { env, stdio: "ignore" });
      const exited = new Promise((resolve) => child.once("exit", resolve));
      let copied = 0;
      for (let i = 0; i < 1500 && copied === 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
        copied = Number((await owner.query(`SELECT copied FROM "${schema}".placement_moves WHERE tenant = 'big'`)).rows[0]?.copied ?? 0);
      }
      child.kill("SIGKILL");
      await exited;
      expect(copied).toBeGreaterThan(0);

      const [move] = JSON.parse((await inProcess(["migrate", "status", "--json"], env)).stdout);
      expect(move).toMatchObject({ tenantId: "big", toTier: "enterprise", toIndex: "dedicated-big", phase: "copying", total: 3000, running: false });
      expect(move.copied).toBeGreaterThan(0);
      expect(move.copied).toBeLessThan(3000);

      // The tenant keeps working on its shared namespace while the move is stopped.
      await bh.dataManager.upsertDocuments("big", [{ id: "d00000", values: vec(9001), metadata: { changed: true } }, { id: "new", values: vec(9002) }]);
      await bh.dataManager.deleteDocuments("big", ["d02999"]);

      const resumed = JSON.parse((await inProcess(["migrate", "resume", "big", "--json"], env)).stdout);
      expect(resumed).toMatchObject({ tenantId: "big", tier: "enterprise", isolation: "dedicated-index", index: "dedicated-big" });
      expect(JSON.parse((await inProcess(["migrate", "status", "--json"], env)).stdout)).toEqual([]);
      expect(await bh.dataManager.countDocuments("big")).toBe(3000);
      const docs = (await bh.dataManager.fetchDocuments("big", ["d00000", "new", "d02999", "d01500"])).documents;
      expect(docs.map((d) => d.id).sort()).toEqual(["d00000", "d01500", "new"]);
      expect(docs.find((d) => d.id === "d00000")!.metadata).toEqual({ changed: true, tenant_id: "big" });
    } finally {
      await owner.end();
      await bh.close();
    }
  });
});
