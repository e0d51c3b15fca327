import { spawn } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { createBulkhead } from "../src/bulkhead.js";
import { BUILT_CLI, dropTestSchemas, freePort, newTestSchema, ownerUrl, serverUrl } from "./backends.js";

afterAll(dropTestSchemas);

const cli = BUILT_CLI;
const vector = (seed: number) => Array.from({ length: 384 }, (_, i) => Math.sin(seed * 3.1 + i) + 1.2);

describe.runIf(serverUrl && ownerUrl)("fault: the service killed (SIGKILL) while tenants write, on the PostgreSQL server", () => {
  it("loses no acknowledged write and leaves no batch half written", async () => {
    const schema = newTestSchema();
    const port = await freePort();
    const env = { ...process.env, DATABASE_URL: serverUrl!, DATABASE_OWNER_URL: ownerUrl!, BULKHEAD_SCHEMA: schema, PORT: String(port) };
    const child = spawn(process.execPath, [cli, "serve"], { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 300 && !(await fetch(`${base}/healthz`).then((r) => r.ok, () => false)); i++) await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 100 && !/bh_admin_/.test(stderr); i++) await new Promise((r) => setTimeout(r, 100));
    const admin = /bh_admin_[A-Za-z0-9_-]+/.exec(stderr)?.[0];
    expect(admin, stderr).toBeDefined();
    const post = (path: string, key: string, body: unknown) =>
      fetch(base + path, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    const keys: Record<string, string> = {};
    for (const [tenantId, tier] of [["acme", "pro"], ["beta", "enterprise"]] as const) {
      expect((await post("/admin/tenants", admin!, { tenantId, name: tenantId, tier, quota: { requestsPerSecond: 10_000, burst: 0 } })).status).toBe(201);
      keys[tenantId] = ((await (await post(`/admin/tenants/${tenantId}/keys`, admin!, {})).json()) as { key: string }).key;
    }

    // Writers send batches of five; each batch is acknowledged whole or not at all.
    const sent: { tenantId: string; ids: string[] }[] = [];
    const acknowledged: { tenantId: string; ids: string[] }[] = [];
    let next = 0;
    let stop = false;
    const writer = async (tenantId: string) => {
      while (!stop) {
        const n = next++;
        const ids = Array.from({ length: 5 }, (_, i) => `b${n}-${i}`);
        sent.push({ tenantId, ids });
        try {
          const res = await post("/v1/documents", keys[tenantId]!, { documents: ids.map((id, i) => ({ id, values: vector(n * 5 + i), metadata: { batch: n } })) });
          if (res.status === 200) acknowledged.push({ tenantId, ids });
        } catch {
          return; // the process is gone
        }
      }
    };
    const writers = [writer("acme"), writer("acme"), writer("beta"), writer("beta")];
    while (acknowledged.length < 60) await new Promise((r) => setTimeout(r, 10));
    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");
    stop = true;
    await Promise.all(writers);

    const bh = await createBulkhead({ database: serverUrl!, databaseOwnerUrl: ownerUrl!, env: {}, config: { schema } });
    try {
      for (const tenantId of ["acme", "beta"]) {
        const mine = sent.filter((b) => b.tenantId === tenantId);
        const stored = new Set((await bh.dataManager.fetchDocuments(tenantId, mine.flatMap((b) => b.ids))).documents.map((d) => d.id));
        // Every acknowledged batch is there, whole.
        for (const b of acknowledged.filter((x) => x.tenantId === tenantId)) expect(b.ids.filter((id) => !stored.has(id)), `${tenantId} batch ${b.ids[0]}`).toEqual([]);
        // Any batch (acknowledged or cut off by the kill) is all there or not there at all.
        for (const b of mine) expect([0, 5], `${tenantId} batch ${b.ids[0]}`).toContain(b.ids.filter((id) => stored.has(id)).length);
        // The document counter agrees with what is stored.
        expect(await bh.dataManager.countDocuments(tenantId)).toBe(stored.size);
      }
    } finally {
      await bh.close();
    }
  }, 120_000);
});
