import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { createBulkhead } from "../src/bulkhead.js";
import { BUILT_CLI, freePort, newDataDir } from "./backends.js";

const cli = BUILT_CLI;
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));


const vector = (seed: number) => Array.from({ length: 384 }, (_, i) => Math.sin(seed * 3.1 + i) + 1.2);

describe("bulkhead serve (built binary, child process, embedded database on disk)", () => {
  it("prints an admin key once, serves, and on SIGTERM drains: no acknowledged write is lost, usage is flushed", async () => {
    const dir = newDataDir("bulkhead-serve-");
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
    // The first admin key is created just after the server listens.
    for (let i = 0; i < 100 && !/bh_admin_[A-Za-z0-9_-]+/.test(stderr); i++) await new Promise((r) => setTimeout(r, 100));
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

    // `bulkhead doctor` runs the production checklist live against the same data, in probe tenants of its own:
    // no customer's ledger grows, and nothing of the probes is left.
    const before = await ledgerOf(dir, "acme");
    const { stdout: doctor } = await promisify(execFile)(process.execPath, [cli, "doctor", "--database", dir]);
    expect(doctor).toContain("✓ Every route but /healthz, /readyz and the dashboard's sign-in refuses a request without a key");
    expect(doctor).toMatch(/✓ Cross-tenant isolation probe — 10 attacks by bh-probe-[a-f0-9]+-b on bh-probe-[a-f0-9]+-a, all refused/);
    expect(doctor).toMatch(/✓ all \d+ checks passed/);
    expect(await ledgerOf(dir, "acme")).toEqual(before);
    const left = JSON.parse((await promisify(execFile)(process.execPath, [cli, "tenants", "list", "--json", "--database", dir])).stdout);
    expect(left.map((t: { tenantId: string }) => t.tenantId)).toEqual(["acme", "beta"]);
  }, 180_000);

  it("one process per embedded data directory: the CLI is refused at once naming the service, and goes through it with --url", async () => {
    const dir = newDataDir("bulkhead-serve-");
    dirs.push(dir);
    // A start that fails (the port is taken) does not use up the first admin key's one notice.
    const taken = createServer().listen(0, "127.0.0.1");
    await new Promise((r) => taken.once("listening", r));
    const busy = await serve(dir, { PORT: String((taken.address() as { port: number }).port) });
    expect(await busy.exited).not.toBe(0);
    taken.close();
    expect(busy.stderr()).not.toContain("bh_admin_");
    expect(busy.stderr()).toContain("EADDRINUSE");

    const server = await serve(dir);
    const admin = await server.adminKey();
    try {
      const held = await run("tenants", "list", "--database", dir);
      expect(held.code).toBe(6);
      expect(held.stderr).toContain(`held by pid ${server.child.pid}`);
      expect(held.stderr).toContain("serve");
      expect(held.stderr).toContain("--url");
      expect((await run("keys", "create-admin", "--database", dir)).code).toBe(6);

      const url = ["--url", server.base, "--admin-key", admin];
      expect(JSON.parse((await run("tenants", "add", "acme", "Acme", "--tier", "pro", "--json", ...url)).stdout)).toMatchObject({ tenantId: "acme", tier: "pro", isolation: "namespace" });
      expect((await run("tenants", "add", "beta", "Beta", ...url)).stdout).toContain("registered beta (free)");
      const key = JSON.parse((await run("keys", "create", "--tenant", "beta", "--scopes", "read", "--scopes", "write", "--json", ...url)).stdout);
      expect(key.scopes).toEqual(["read", "write"]);
      // The service sees the suspension at once (two processes on one directory kept it active).
      expect((await run("tenants", "suspend", "beta", ...url)).stdout).toContain("beta suspended");
      const refused = await fetch(`${server.base}/v1/usage`, { headers: { authorization: `Bearer ${key.key}` } });
      expect(refused.status).toBe(403);
      expect(JSON.parse((await run("tenants", "list", "--status", "suspended", "--json", ...url)).stdout).map((t: { tenantId: string }) => t.tenantId)).toEqual(["beta"]);
      expect((await run("tenants", "resume", "beta", ...url)).code).toBe(0);
      expect(JSON.parse((await run("tenants", "show", "beta", "--json", ...url)).stdout)).toMatchObject({ status: "active", keys: 1, activeKeys: 1 });
      const listed = JSON.parse((await run("keys", "list", "--json", ...url)).stdout);
      expect(listed.find((k: { kind: string }) => k.kind === "admin").scopes).toEqual([]);
      const rotated = JSON.parse((await run("keys", "rotate", key.keyId, "--json", ...url)).stdout);
      expect((await run("keys", "revoke", rotated.keyId, ...url)).code).toBe(0);
      expect((await run("keys", "rotate", rotated.keyId, ...url)).code).toBe(4);
      expect((await run("tenants", "show", "nobody", ...url)).code).toBe(3);
      expect((await run("tenants", "list", "--url", server.base, "--admin-key", "bh_admin_0000000000000000_" + "x".repeat(43))).code).toBe(5);
      expect((await run("backup", "acme", "--out", join(dir, "x.gz"), ...url)).code).toBe(2); // database-only command
      expect(JSON.parse((await run("tenants", "set-tier", "beta", "pro", "--json", ...url)).stdout)).toMatchObject({ tier: "pro", moving: false });
      const erased = JSON.parse((await run("tenants", "delete", "beta", "--yes", "--json", ...url)).stdout);
      expect(erased).toMatchObject({ tenantId: "beta", verified: true });
      expect(JSON.parse((await run("capacity", "--json", ...url)).stdout)).toEqual([expect.objectContaining({ index: "shared-index-1", used: 1 })]);
      // Moves and cost allocation go through the service too: the move runs in its background.
      expect((await run("migrate", "limit-writes", "acme", "50", ...url)).code).toBe(3); // no move in progress
      expect(JSON.parse((await run("migrate", "start", "acme", "--tier", "enterprise", "--json", ...url)).stdout)).toMatchObject({ tenantId: "acme", moving: true });
      const deadline = Date.now() + 30_000;
      while (JSON.parse((await run("migrate", "status", "--json", ...url)).stdout).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(JSON.parse((await run("tenants", "show", "acme", "--json", ...url)).stdout)).toMatchObject({ tier: "enterprise", isolation: "dedicated-index" });
      expect((await run("migrate", "rollback", "acme", ...url)).code).toBe(3);
      expect(JSON.parse((await run("costs", "allocate", "--total", "100", "--method", "equal", "--json", ...url)).stdout)).toEqual({ acme: 100 });
    } finally {
      server.child.kill("SIGTERM");
    }
    expect(await server.exited).toBe(0);
    expect(existsSync(join(dir, "bulkhead.lock"))).toBe(false);

    // With the service stopped, an admin key can be minted offline on the directory.
    const minted = JSON.parse((await run("keys", "create-admin", "--name", "break-glass", "--database", dir, "--json")).stdout);
    expect(minted).toMatchObject({ kind: "admin", name: "break-glass" });
    const admins = JSON.parse((await run("keys", "list", "--admin", "--json", "--database", dir)).stdout);
    expect(admins.map((k: { name: string }) => k.name).sort()).toEqual(["break-glass", "first admin key"]);
  }, 240_000);

  it("SIGTERM closes idle keep-alive and not-yet-used connections at once and bounds the drain of stuck requests", async () => {
    const dir = newDataDir("bulkhead-serve-");
    dirs.push(dir);
    // A drain bound far above the few seconds allowed: idle connections must not wait for it.
    const server = await serve(dir, { BULKHEAD_DRAIN_TIMEOUT_MS: "120000" });
    const agent = new http.Agent({ keepAlive: true });
    await new Promise((resolve, reject) => http.get(`${server.base}/healthz`, { agent }, (r) => r.resume().on("end", resolve)).on("error", reject));
    expect(Object.values(agent.freeSockets).flat()).toHaveLength(1); // held open, idle
    const silent = connect(server.port, "127.0.0.1"); // connected, no request yet
    silent.on("error", () => {});
    await new Promise((r) => silent.once("connect", r));
    let started = Date.now();
    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000); // was about 70 s (Node's request timeout)
    agent.destroy();
    silent.destroy();

    // A request stuck mid-body is cut off at the drain bound; the process still exits 0, ledger flushed.
    const stuckDir = newDataDir("bulkhead-serve-");
    dirs.push(stuckDir);
    const stuckServer = await serve(stuckDir, { BULKHEAD_DRAIN_TIMEOUT_MS: "1000" });
    const stuck = connect(stuckServer.port, "127.0.0.1");
    stuck.on("error", () => {});
    await new Promise((r) => stuck.once("connect", r));
    stuck.write(`POST /admin/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${await stuckServer.adminKey()}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"tenantId":`);
    await new Promise((r) => setTimeout(r, 300));
    started = Date.now();
    stuckServer.child.kill("SIGTERM");
    expect(await stuckServer.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(stuckServer.stderr()).toContain("after the 1000 ms drain");
    stuck.destroy();
  }, 180_000);

  it("validates its configuration before opening anything: one line naming the variable, exit 2", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "bulkhead-serve-")), "data");
    dirs.push(dir);
    for (const [env, name] of [[{ PORT: "abc" }, "PORT"], [{ HOST: "not a host" }, "HOST"], [{ BULKHEAD_DIMENSION: "0" }, "BULKHEAD_DIMENSION"], [{ BULKHEAD_DRAIN_TIMEOUT_MS: "-1" }, "BULKHEAD_DRAIN_TIMEOUT_MS"]] as const) {
      const r = await run("serve", "--database", dir, { env });
      expect(r.code, name).toBe(2);
      expect(r.stderr.trim().split("\n"), name).toEqual([expect.stringMatching(new RegExp(`^bulkhead: ${name} must be`))]);
    }
    const url = await run("serve", "--database", "mysql://db/x");
    expect(url.code).toBe(2);
    expect(url.stderr).toContain("--database must be postgres://");
    expect(existsSync(dir)).toBe(false); // nothing was opened
  }, 60_000);

  it("`npm start` passes SIGTERM to the server: it drains, exits and frees the port", async () => {
    const dir = newDataDir("bulkhead-serve-");
    dirs.push(dir);
    const port = await freePort();
    const npm = spawn("npm", ["start", "--silent"], { cwd: join(import.meta.dirname, ".."), env: { ...process.env, DATABASE_URL: dir, PORT: String(port) }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    npm.stderr.on("data", (d) => (stderr += d));
    npm.stdout.resume();
    const exited = new Promise<number | null>((resolve) => npm.on("exit", (code) => resolve(code)));
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 600 && !stderr.includes("bh_admin_"); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await fetch(`${base}/healthz`).then((r) => r.status)).toBe(200);
    npm.kill("SIGTERM");
    expect(await exited).toBe(0); // npm waited for the server, which exited 0
    expect(await fetch(`${base}/healthz`).then((r) => r.status, () => "refused")).toBe("refused");
    expect(existsSync(join(dir, "bulkhead.lock"))).toBe(false);
  }, 120_000);
});

/** Runs the built `bulkhead` (DATABASE_URL unset unless given); never throws. */
async function run(...args: (string | { env: Record<string, string> })[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const last = args.at(-1);
  const env = typeof last === "object" ? last.env : {};
  const argv = args.filter((a): a is string => typeof a === "string");
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...argv], { env: { ...process.env, DATABASE_URL: "", BULKHEAD_ADMIN_KEY: "", ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** `bulkhead serve` on `dir` in a child process (a free port unless PORT is given), once it answers. */
async function serve(dir: string, env: Record<string, string> = {}) {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const child = spawn(process.execPath, [cli, "serve", "--database", dir], { env: { ...process.env, DATABASE_URL: "", PORT: String(port), ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  let done = false;
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => ((done = true), resolve(code))));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600 && !done; i++) {
    // Bounded: on a port another process holds, a request may never be answered.
    if (await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    port,
    base,
    exited,
    stderr: () => stderr,
    /** The admin key printed at first start (written just after listening), or one minted before. */
    async adminKey(): Promise<string> {
      for (let i = 0; i < 100 && !/bh_admin_[A-Za-z0-9_-]+/.test(stderr); i++) await new Promise((r) => setTimeout(r, 100));
      return /bh_admin_[A-Za-z0-9_-]+/.exec(stderr)![0];
    },
  };
}

/** acme's metered usage this month, read with the service stopped. */
async function ledgerOf(dir: string, tenantId: string) {
  const bh = await createBulkhead({ database: dir, env: {} });
  try {
    const s = await bh.costEngine.getTenantCostSummary(tenantId);
    return { queries: s.queryCount, usage: s.usage };
  } finally {
    await bh.close();
  }
}
