import { connect, createServer, type Socket } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { openBulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { DatabaseTimeoutError } from "../src/db/deadline.js";
import { DatabaseError } from "../src/errors.js";
import { buildServer } from "../src/server/app.js";
import { asOwner, dataUrl, dropTestSchemas, newTestSchema, ownerUrl, serverUrl, vec } from "./backends.js";

afterAll(dropTestSchemas);

/**
 * A TCP proxy in front of PostgreSQL that can black-hole the path: while holding, connections stay
 * open and new ones are accepted, but no byte gets through in either direction (a network partition,
 * a frozen server). Bytes are queued, not lost, and flow again on release — as TCP retransmits after
 * a partition heals. A side that closes its socket closes the other (nothing queued is delivered).
 */
async function startBlackHoleProxy(target: { host: string; port: number }) {
  let holding = false;
  const queued: [Socket, Buffer][] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(from);
      from.on("data", (chunk: Buffer) => (holding ? queued.push([to, chunk]) : to.write(chunk)));
      from.on("close", () => {
        sockets.delete(from);
        to.destroy();
      });
      from.on("error", () => from.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const [to, chunk] of queued.splice(0)) if (!to.destroyed) to.write(chunk);
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const TIMEOUT_MS = 1_000;
/** Explicit transactions (registry, keys, moves) get the long deadline. */
const LONG_TIMEOUT_MS = 2_000;
/** What the deadline may be overrun by: timers, the HTTP round trip, a loaded CI machine. */
const MARGIN_MS = 750;

describe.runIf(serverUrl && ownerUrl)("postgres: deadlines on every database call", () => {
  it("answers 503 + Retry-After within the deadline while PostgreSQL is black-holed, says when a write's outcome is unknown, and recovers within 1 s", async () => {
    const runtime = new URL(serverUrl!);
    const proxy = await startBlackHoleProxy({ host: runtime.hostname, port: Number(runtime.port || 5432) });
    const viaProxy = new URL(runtime);
    viaProxy.port = String(proxy.port);
    // Both planes' connections go through the proxy (the data plane serves the tenants' requests).
    const dataViaProxy = dataUrl ? Object.assign(new URL(dataUrl), { port: String(proxy.port) }).toString() : undefined;
    const warnings: string[] = [];
    const { bulkhead: bh, db } = await openBulkhead({
      database: viaProxy.toString(),
      databaseOwnerUrl: ownerUrl,
      databaseDataUrl: dataViaProxy,
      env: {},
      config: { dimension: 8, schema: newTestSchema(), dbTimeoutMs: TIMEOUT_MS, dbLongTimeoutMs: LONG_TIMEOUT_MS, poolSize: 4 },
      warn: (m) => warnings.push(m),
    });
    const app = await buildServer(bh, { logDestination: false });
    const base = await app.listen({ host: "127.0.0.1", port: 0 });
    try {
      // Five tenants: each may hold 2 of the 4 connections at once (tenantPoolShare), so 10 requests
      // at once fill the pool and wait for connections, not behind their own tenant's queue.
      const keys: string[] = [];
      for (let i = 0; i < 5; i++) {
        await bh.registry.registerTenant(`tenant-${i}`, `T${i}`, TenantTier.PRO);
        keys.push((await bh.keys.createKey("tenant", { tenantId: `tenant-${i}` }, "test")).key);
      }
      const post = (path: string, body: unknown, key = keys[0]!) =>
        fetch(`${base}${path}`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(body) });
      const query = (i = 0) => post("/v1/query", { vector: vec(1) }, keys[i % keys.length]);
      const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
        const t0 = performance.now();
        const r = await fn();
        return [r, performance.now() - t0];
      };
      expect((await post("/v1/documents", { documents: [{ id: "d0", values: vec(0) }] })).status).toBe(200);
      expect((await query()).status).toBe(200);

      proxy.hold();
      // A write sent on an open connection: 503, never 500, and the detail says it may have been applied.
      const [write, writeMs] = await timed(() => post("/v1/documents", { documents: [{ id: "d1", values: vec(1) }] }));
      expect(write.status).toBe(503);
      expect(write.headers.get("retry-after")).toBe("5");
      expect(((await write.json()) as { detail: string }).detail).toMatch(/may or may not have been applied/);
      expect(writeMs).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
      // More requests than connections: some wait for one, and they too get their answer in time.
      const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => timed(() => query(i))));
      for (const [res, ms] of answers) {
        expect(res.status).toBe(503);
        expect(res.headers.get("retry-after")).toBe("5");
        expect(await res.json()).toMatchObject({ code: "DATABASE_UNAVAILABLE", status: 503 });
        expect(ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
      }
      const [ready, readyMs] = await timed(() => fetch(`${base}/readyz`));
      expect(ready.status).toBe(503);
      expect(readyMs).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
      // The library: a typed error, and no connection that timed out is handed out again.
      const [err, libraryMs] = await timed(() => db.query("SELECT 1").catch((e: unknown) => e));
      expect(libraryMs).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
      expect(err).toBeInstanceOf(DatabaseTimeoutError);
      expect(err).toBeInstanceOf(DatabaseError);
      expect(await fetch(`${base}/healthz`).then((r) => r.status)).toBe(200);
      // A control-plane transaction: the long deadline, then the same typed error.
      const [admin, adminMs] = await timed(() => bh.registry.registerTenant("tenant-x", "X", TenantTier.PRO).catch((e: unknown) => e));
      expect(admin).toBeInstanceOf(DatabaseTimeoutError);
      expect(adminMs).toBeLessThan(LONG_TIMEOUT_MS + MARGIN_MS);

      proxy.release();
      const healed = performance.now();
      let status = 0;
      while (status !== 200 && performance.now() - healed < 5_000) {
        status = (await query()).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 20));
      }
      const recoveryMs = performance.now() - healed;
      expect(status).toBe(200);
      expect(recoveryMs).toBeLessThan(1_000);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      // Every connection serves again: as many concurrent queries as the pool holds, all answered.
      const after = await Promise.all(Array.from({ length: 8 }, (_, i) => query(i)));
      expect(after.map((r) => r.status)).toEqual(Array(8).fill(200));
      // Each answer is its own: a connection reused after its deadline would hand out a stale reply.
      const bodies = (await Promise.all(after.map((r) => r.json()))) as { namespace: string; matches: { id: string }[] }[];
      bodies.forEach((b, i) => {
        expect(b.namespace).toBe(`tenant-${i % 5}`);
        if (i % 5 === 0) expect(b.matches.map((m) => m.id)).toContain("d0");
        else expect(b.matches).toEqual([]);
      });
      console.log(`black-holed: 503 in ${answers.map(([, ms]) => Math.round(ms)).sort((x, y) => x - y).join(", ")} ms (write ${Math.round(writeMs)}, readyz ${Math.round(readyMs)}) (deadline ${TIMEOUT_MS} ms); recovered ${Math.round(recoveryMs)} ms after the path healed`);
    } finally {
      proxy.release();
      await app.close();
      await bh.close();
      await proxy.close();
    }
  });

  it("lets the server cancel a slow statement: 503 with nothing applied, and the connection stays in use", async () => {
    const { bulkhead: bh, db } = await openBulkhead({ database: serverUrl, databaseOwnerUrl: ownerUrl, databaseDataUrl: dataUrl, env: {}, config: { dimension: 8, schema: newTestSchema(), dbTimeoutMs: 500, dbLongTimeoutMs: 1_500, poolSize: 1 } });
    try {
      const { pid } = (await db.query<{ pid: number }>("SELECT pg_backend_pid() AS pid"))[0]!;
      const slow = await db.query("SELECT pg_sleep(2)").catch((e: unknown) => e);
      expect(slow).toBeInstanceOf(DatabaseError);
      expect((slow as Error).message).toMatch(/statement_timeout|did not answer/);
      // Cancelled by the server (at 90 % of the deadline) rather than cut by the client: same connection.
      expect((await db.query<{ pid: number }>("SELECT pg_backend_pid() AS pid"))[0]!.pid).toBe(pid);
      // Explicit transactions (control plane, moves, bulk) get the long deadline for each statement...
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
      expect(await db.transaction((tx) => tx.query("SELECT 1 AS ok FROM pg_sleep(1)"))).toEqual([{ ok: 1 }]);
      // ...and past it, the statement is cancelled and nothing of the transaction is left behind.
      const inTx = await db.transaction(async (tx) => {
        await tx.query("UPDATE tenants SET name = 'changed' WHERE id = 'tenant-a'");
        await tx.query("SELECT pg_sleep(3)");
      }).catch((e: unknown) => e);
      expect(inTx).toBeInstanceOf(DatabaseError);
      expect((await db.query<{ name: string }>("SELECT name FROM tenants WHERE id = 'tenant-a'"))[0]!.name).toBe("A");
      // The long deadline is for work that is slow by nature.
      expect(await db.withTimeout(5_000).query("SELECT 1 AS ok FROM pg_sleep(1)")).toEqual([{ ok: 1 }]);
    } finally {
      await bh.close();
    }
  });
});

describe.runIf(serverUrl && ownerUrl)("postgres: prepared statements", () => {
  it("prepares statements once per connection, keeps at most 100, and a prepared search answers each tenant with its own rows", async () => {
    const { bulkhead: bh, db } = await openBulkhead({ database: serverUrl, databaseOwnerUrl: ownerUrl, databaseDataUrl: dataUrl, env: {}, config: { dimension: 8, schema: newTestSchema(), poolSize: 1 } });
    try {
      // 150 distinct texts on the only connection (tenant statements always go through the pipeline):
      // each answers right, and the connection holds at most 100.
      const run = (text: string, params: unknown[] = []) => db.queryAsTenant<{ n: number }>("tenant-x", text, params);
      for (let i = 0; i < 150; i++) expect(await run(`SELECT $1::int + ${i} AS n`, [1])).toEqual([{ n: 1 + i }]);
      const held = async () => (await run("SELECT count(*)::int AS n FROM pg_prepared_statements"))[0]!.n;
      expect(await held()).toBeLessThanOrEqual(100);
      expect(await held()).toBeGreaterThan(50);
      // One closed for room is prepared again when it comes back.
      expect(await run("SELECT $1::int + 0 AS n", [5])).toEqual([{ n: 5 }]);
      // Never a generic plan (on a shared index one covers every tenant's partition): the parse is kept, the plan is per run.
      for (let i = 0; i < 8; i++) await run("SELECT $1::int AS n /* plans */", [i]);
      expect(await run("SELECT generic_plans::int AS n FROM pg_prepared_statements WHERE statement LIKE $1", ["%/* plans */%"])).toEqual([{ n: 0 }]);
      const kept = async (marker: string) => (await run("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement LIKE $1", [`%${marker}%`]))[0]!.n;
      // A long statement (a filter of hundreds of conditions) is parsed for its request and not kept.
      expect(await run(`SELECT $1::int AS n /* long-one ${"x".repeat(5_000)} */`, [7])).toEqual([{ n: 7 }]);
      expect(await kept("long-one")).toBe(0);
      // A statement of a pipeline that failed after parsing it is closed with the next pipeline.
      await expect(run("SELECT 1 / $1::int AS n /* failed-one */", [0])).rejects.toThrow(/division by zero/);
      expect(await kept("failed-one")).toBe(0);
      // A table changed under a prepared statement (another instance's migration): answered, with the new columns.
      await asOwner(db, "CREATE TABLE prepared_probe (a int); INSERT INTO prepared_probe VALUES (1); GRANT SELECT ON prepared_probe TO PUBLIC");
      expect(await run("SELECT * FROM prepared_probe")).toEqual([{ a: 1 }]);
      await asOwner(db, "ALTER TABLE prepared_probe ADD COLUMN b int DEFAULT 2");
      expect(await run("SELECT * FROM prepared_probe")).toEqual([{ a: 1, b: 2 }]);
      // The same prepared search (one data-plane connection, its plan cached) for A then B, many times:
      // each sees its own rows only (the tenant is decided per execution, never by the cached plan).
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
      await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO);
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "a1", values: vec(1) }, { id: "a2", values: vec(2) }]);
      await bh.dataManager.upsertDocuments("tenant-b", [{ id: "b1", values: vec(1) }]);
      for (let i = 0; i < 12; i++) {
        for (const [t, ids] of [["tenant-a", ["a1", "a2"]], ["tenant-b", ["b1"]]] as const) {
          const { matches } = await bh.dataManager.queryDocuments(t, vec(1), { topK: 10 });
          expect(matches.map((m) => m.id).sort()).toEqual(ids);
        }
      }
    } finally {
      await bh.close();
    }
  });
});
