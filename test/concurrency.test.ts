import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import type { Db } from "../src/db/db.js";
import { asOwner, BACKENDS, dropTestSchemas, pglite, vec } from "./backends.js";

afterAll(dropTestSchemas);

/** Quotas no concurrency test trips over: these tests are about the database, not the gate. */
const OPEN_QUOTA = { maxDocuments: 1_000_000, maxDailyQueries: 1_000_000, requestsPerSecond: 100_000, burst: 100_000, maxConcurrent: 1_000 };

for (const backend of BACKENDS) {
  describe(`${backend.name}: concurrency`, () => {
    let bh: Bulkhead;
    let db: Db;
    afterEach(() => bh?.close());

    it("erases a tenant while other tenants' dedicated indexes are dropped concurrently: the proof skips what vanished, the audit entry is written", async () => {
      const warnings: string[] = [];
      ({ bulkhead: bh, db } = await backend.open({ config: { dimension: 8 }, warn: (m) => warnings.push(m) }));
      for (let round = 0; round < 5; round++) {
        const victim = `tenant-a${round}`;
        const others = Array.from({ length: 4 }, (_, i) => `tenant-e${round}-${i}`);
        await bh.registry.registerTenant(victim, victim, TenantTier.PRO);
        for (const id of others) await bh.registry.registerTenant(id, id, TenantTier.ENTERPRISE);
        for (const id of [victim, ...others]) await bh.dataManager.upsertDocuments(id, [{ id: "d1", values: vec(1) }, { id: "d2", values: vec(2) }]);

        // The victim's erasure lists the catalogue while the others' erasures drop their tables.
        const [report, ...theirs] = await Promise.all([bh.eraseTenant(victim, "test"), ...others.map((id) => bh.eraseTenant(id, "test"))]);
        for (const r of [report!, ...theirs]) {
          expect(r.proofError).toBeUndefined();
          expect(r.verified).toBe(true);
          expect(Object.values(r.remaining).every((n) => n === 0)).toBe(true);
          // The shared index and the control-plane tables were counted, whatever was dropped meanwhile.
          expect(Object.keys(r.remaining)).toEqual(expect.arrayContaining(["tenants", "api_keys", "document_counts", "vec_1"]));
        }
        const audited = (await bh.audit.list(1000)).filter((e) => e.action === "tenant.erase").map((e) => e.target);
        expect(audited).toEqual(expect.arrayContaining([victim, ...others]));
        expect((await db.query<{ n: number }>("SELECT count(*)::int AS n FROM indexes WHERE kind = 'dedicated'"))[0]!.n).toBe(0);
      }
    });

    it("reports and audits an erasure whose proof fails after the tenant was deleted, instead of failing it", async () => {
      ({ bulkhead: bh, db } = await backend.open({ config: { dimension: 8 } }));
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "d1", values: vec(1) }]);
      // A table the catalogue scan finds but the runtime role may not read: the proof's count fails.
      await asOwner(db, "CREATE TABLE unreadable (tenant_id text)");
      const report = await bh.eraseTenant("tenant-a", "test");
      expect(report.verified).toBe(false);
      expect(report.proofError).toMatch(/erased but the proof could not be completed: .*permission denied/);
      await expect(bh.registry.getTenant("tenant-a")).rejects.toThrow(/does not exist/);
      const [entry] = (await bh.audit.list(10)).filter((e) => e.action === "tenant.erase");
      expect(entry).toMatchObject({ target: "tenant-a", details: { verified: false, proofError: report.proofError } });
    });

    it("builds ANN indexes for namespaces crossing the threshold under concurrent upserts: no write is refused, every acknowledged write is there", async () => {
      const warnings: string[] = [];
      ({ bulkhead: bh, db } = await backend.open({ config: { dimension: 8, annIndexThreshold: 30, poolSize: 12, tierQuotas: { pro: OPEN_QUOTA, enterprise: OPEN_QUOTA } as never }, warn: (m) => warnings.push(m) }));
      const tenants = ["tenant-p1", "tenant-p2", "tenant-p3", "tenant-p4", "tenant-e1", "tenant-e2"];
      for (const id of tenants) await bh.registry.registerTenant(id, id, id.startsWith("tenant-e") ? TenantTier.ENTERPRISE : TenantTier.PRO);
      for (let round = 0; round < 2; round++) {
        // 8 writers per tenant, 5 documents each: every namespace goes from below to above 30 at once.
        const acknowledged = new Map<string, Set<string>>(tenants.map((t) => [t, new Set()]));
        const failures: string[] = [];
        await Promise.all(
          tenants.flatMap((t) =>
            Array.from({ length: 8 }, async (_, w) => {
              const docs = Array.from({ length: 5 }, (_, i) => ({ id: `r${round}-w${w}-d${i}`, values: vec(round * 1000 + w * 10 + i) }));
              try {
                await bh.dataManager.upsertDocuments(t, docs);
                for (const d of docs) acknowledged.get(t)!.add(d.id);
              } catch (err) {
                failures.push(`${t}: ${(err as Error).message}`);
              }
            }),
          ),
        );
        expect(failures).toEqual([]);
        for (const t of tenants) {
          const ids = [...acknowledged.get(t)!];
          expect((await bh.dataManager.fetchDocuments(t, ids)).documents.length).toBe(ids.length);
          expect(await bh.dataManager.countDocuments(t)).toBe(40 * (round + 1));
        }
      }
      // Every namespace and dedicated index got its HNSW index, and the catalogue says so.
      for (const t of tenants) expect((await bh.registry.getTenant(t)).placement.annIndexed).toBe(true);
      const built = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = $1 AND indexname ~ '_hnsw$'", [db.schema]);
      expect(built[0]!.n).toBe(tenants.length);
    });

    it("answers a committed upsert 200 when its HNSW build fails, logs the failure with ids, and builds on the next write", async () => {
      const warnings: string[] = [];
      ({ bulkhead: bh, db } = await backend.open({ config: { dimension: 8, annIndexThreshold: 10 }, warn: (m) => warnings.push(m) }));
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
      const [{ role }] = (await db.query<{ role: string }>("SELECT current_user AS role")) as [{ role: string }];
      const signature = "build_ann_index(int, int, text, int, int, int)";
      await asOwner(db, `REVOKE EXECUTE ON FUNCTION ${signature} FROM "${role}"`);
      const docs = (from: number) => Array.from({ length: 10 }, (_, i) => ({ id: `d${from + i}`, values: vec(from + i) }));
      expect(await bh.dataManager.upsertDocuments("tenant-a", docs(0))).toMatchObject({ upserted: 10 });
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(10);
      expect((await bh.registry.getTenant("tenant-a")).placement.annIndexed).toBe(false);
      expect(warnings.filter((w) => /HNSW index of tenant tenant-a \(index \d+, namespace \d+\) failed/.test(w))).toHaveLength(1);
      expect(warnings.join("\n")).not.toMatch(/d0|\[/); // ids of the batch and vectors stay out of the log

      await asOwner(db, `GRANT EXECUTE ON FUNCTION ${signature} TO "${role}"`);
      await bh.dataManager.upsertDocuments("tenant-a", docs(10));
      expect((await bh.registry.getTenant("tenant-a")).placement.annIndexed).toBe(true);
    });

    it("runs the readiness checks' catalogue loops while other tenants' tables are dropped", async () => {
      ({ bulkhead: bh, db } = await backend.open({ config: { dimension: 8 } }));
      for (let round = 0; round < 3; round++) {
        const others = Array.from({ length: 4 }, (_, i) => `tenant-e${round}-${i}`);
        for (const id of others) await bh.registry.registerTenant(id, id, id.endsWith("-0") ? TenantTier.PRO : TenantTier.ENTERPRISE);
        const [checks] = await Promise.all([bh.readiness(), ...others.map((id) => bh.eraseTenant(id, "test"))]);
        for (const name of ["Without tenant context the runtime role sees no rows", "Namespace partitions cannot be read around the policies"]) {
          expect(checks!.find((c) => c.name === name)).toMatchObject({ passed: true });
        }
      }
    });
  });
}

describe("pglite: a loop of data calls lets the event loop run", () => {
  let bh: Bulkhead;
  afterEach(() => bh?.close());

  it("fires a 100 ms timer and setImmediate while one caller loops over queries", async () => {
    ({ bulkhead: bh } = await pglite.open({ config: { dimension: 8, tierQuotas: { pro: OPEN_QUOTA } as never } }));
    await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
    await bh.dataManager.upsertDocuments("tenant-a", [{ id: "d1", values: vec(1) }]);
    const started = performance.now();
    let timerAt: number | undefined;
    let immediateAt: number | undefined;
    setTimeout(() => (timerAt = performance.now() - started), 100);
    setImmediate(() => (immediateAt = performance.now() - started));
    let calls = 0;
    // The loop stops when the timer fired, or after 3 s: without yielding it would spin the whole time.
    while (timerAt === undefined && performance.now() - started < 3_000) {
      await bh.dataManager.queryDocuments("tenant-a", vec(calls), { topK: 1 });
      calls++;
    }
    expect(calls).toBeGreaterThan(0);
    expect(immediateAt).toBeLessThan(1_000);
    expect(timerAt).toBeDefined();
    expect(timerAt!).toBeLessThan(1_000);
  });
});
