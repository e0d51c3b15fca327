import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { createBulkhead } from "../src/bulkhead.js";

const cli = join(import.meta.dirname, "..", "dist", "cli", "main.js");
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

const vector = (seed: number) => Array.from({ length: 384 }, (_, i) => Math.sin(seed * 3.1 + i) + 1.2);

describe("bulkhead serve (built binary, child process, embedded database on disk)", () => {
  it("prints an admin key once, serves, and on SIGTERM drains: no acknowledged write is lost, usage is flushed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "bulkhead-serve-"));
    dirs.push(dir);
    const port = await freePort();
    const child = spawn(process.execPath, [cli, "serve", "--port", String(port), "--database", dir], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    let stdout = "";
    child.stdout.on("data", (d) => (stdout += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 300; i++) {
      if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const admin = /bh_admin_[A-Za-z0-9_-]+/.exec(stderr)?.[0];
    expect(admin, stderr).toBeDefined();
    const post = (path: string, key: string, body: unknown) =>
      fetch(base + path, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await post("/admin/tenants", admin!, { tenantId: "acme", name: "Acme", tier: "enterprise" })).status).toBe(201);
    expect((await post("/admin/tenants", admin!, { tenantId: "beta", name: "Beta", tier: "pro" })).status).toBe(201);
    const key = ((await (await post("/admin/tenants/acme/keys", admin!, {})).json()) as { key: string }).key;
    expect((await post("/admin/costs/allocate", admin!, { basis: "equal" })).status).toBe(200);

    // Writers keep going while the server is told to stop.
    const acknowledged: string[] = [];
    let next = 0;
    let stop = false;
    const writer = async () => {
      while (!stop) {
        const id = `doc-${next++}`;
        try {
          const res = await post("/v1/documents", key, { documents: [{ id, values: vector(next) }] });
          if (res.status === 200) acknowledged.push(id);
        } catch {
          return; // connection refused: the server has stopped accepting
        }
      }
    };
    const writers = Array.from({ length: 8 }, writer);
    while (acknowledged.length < 40) await new Promise((r) => setTimeout(r, 10));
    child.kill("SIGTERM");
    const code = await exited;
    stop = true;
    await Promise.all(writers);
    expect(code).toBe(0);
    expect(stdout).toContain("shutting down");
    expect(stderr.match(/bh_admin_/g)).toHaveLength(1);

    // Reopen the same data directory: every acknowledged write is there, and every write was metered.
    const bh = await createBulkhead({ database: dir, env: {} });
    try {
      const stored = await bh.dataManager.fetchDocuments("acme", acknowledged);
      expect(stored.documents.map((d) => d.id).sort()).toEqual([...acknowledged].sort());
      const count = await bh.dataManager.countDocuments("acme");
      const usage = await bh.costEngine.getTenantCostSummary("acme");
      expect(usage.usage.vectorsWritten).toBe(count);
      expect(count).toBeGreaterThanOrEqual(acknowledged.length);
    } finally {
      await bh.close();
    }

    // `bulkhead doctor` runs the production checklist live against the same data.
    const { stdout: doctor } = await promisify(execFile)(process.execPath, [cli, "doctor", "--database", dir]);
    expect(doctor).toContain("✓ Every route but /healthz and /readyz refuses a request without a key");
    expect(doctor).toContain("✓ Cross-tenant isolation probe — 10 attacks by beta on acme, all refused");
    expect(doctor).toMatch(/✓ all \d+ checks passed/);
  }, 120_000);
});
