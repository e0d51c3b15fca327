import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import type { Db } from "../src/db/db.js";
import { MoveConflictError, PlacementMovedError, RateLimitedError } from "../src/errors.js";
import type { MoveProgress } from "../src/tenancy/placement-move.js";
import { indexName } from "../src/tenancy/slot-allocation.js";
import { capabilitiesOf, dropTestSchemas, STORES, vec, waitFor } from "./backends.js";
import { expectEqualsModel, liveTraffic, seed, UNLIMITED, type Model } from "./live-traffic.js";

afterAll(dropTestSchemas);

for (const backend of STORES) {
  describe(`${backend.name}: online placement moves`, () => {
    let bh: Bulkhead;
    let db: Db;
    /** An index's catalogue name in the store under test. */
    let ix: (name: string) => string;
    afterEach(() => bh?.close());

    const open = async (config = {}, warn?: (message: string) => void) => {
      ({ bulkhead: bh, db } = await backend.open({ config: { dimension: 8, annIndexThreshold: 300, ...config }, warn }));
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNLIMITED });
      await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO);
      await bh.dataManager.upsertDocuments("tenant-b", [{ id: "b1", values: vec(1), metadata: { secret: "B" } }, { id: "b2", values: vec(2) }]);
      const { store } = await bh.registry.getTenant("tenant-a");
      ix = (name) => indexName(store, name);
    };
    /** The vector tables in the database (a store keeping vectors elsewhere has none). */
    const tables = async () => (await db.query<{ relname: string }>("SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND relname ~ '^vec_[0-9_]+$' ORDER BY relname", [db.schema])).map((r) => r.relname);
    /** The store's own router, as the data manager calls it. */
    const storeOf = () => (bh.dataManager as unknown as { store: import("../src/stores/store.js").VectorStore }).store;

    it("erasing a tenant right after its background move switched reports no failed move (found by the soak)", async () => {
      const warnings: string[] = [];
      await open({}, (m) => warnings.push(m));
      await seed(bh, "tenant-a", 200, new Map());
      await bh.moves.start("tenant-a", { tier: TenantTier.ENTERPRISE }, "admin:test", 50);
      await waitFor("the move to switch", async () => (await bh.registry.getMove("tenant-a")) === null, 60_000);
      expect((await bh.eraseTenant("tenant-a", "admin:test")).verified).toBe(true);
      await bh.moves.close(); // waits for the run to end, whichever way
      expect(warnings.filter((w) => w.includes("the move of tenant-a stopped"))).toEqual([]);
      expect(await bh.moves.list()).toEqual([]);
    });

    it("moves to a dedicated index and back while the tenant writes and reads: nothing acknowledged is lost, nothing foreign is read", async () => {
      await open();
      const model: Model = new Map();
      await seed(bh, "tenant-a", 600, model);
      const before = await tables();
      const { annIndexes } = await capabilitiesOf(bh, "tenant-a");

      for (const tier of [TenantTier.ENTERPRISE, TenantTier.PRO]) {
        let phase = "before";
        let moving = true;
        const progress: MoveProgress[] = [];
        const traffic = liveTraffic(bh, model, () => !moving, () => phase);
        const moved = await bh.registry.changeTier("tenant-a", tier, {
          // Small batches: the copy must last long enough for writes to land during it, on a fast day too.
          batchSize: 20,
          onProgress: (p) => {
            progress.push(p);
            phase = p.phase;
          },
        });
        await new Promise((r) => setTimeout(r, 50)); // a little traffic on the new placement
        moving = false;
        await traffic.finished;

        expect(traffic.stats.errors).toEqual([]);
        expect(traffic.stats.foreign).toEqual([]);
        // Writes really overlapped the move (its copy, index build or catch-up: under load the copy can
        // be over before the writer's next turn; CI saw that once with batches of 50).
        expect(["copying", "indexing", "catching-up"].reduce((n, phase) => n + (traffic.stats.writesByPhase[phase] ?? 0), 0)).toBeGreaterThan(0);
        expect(traffic.stats.reads).toBeGreaterThan(0);
        expect(progress.map((p) => p.phase)).toContain("switched");
        expect(progress.filter((p) => p.phase === "copying").length).toBeGreaterThan(5);
        expect(moved.tier).toBe(tier);
        expect(moved.isolation).toBe(tier === TenantTier.ENTERPRISE ? "dedicated-index" : "namespace");
        if (annIndexes) expect(moved.placement.annIndexed).toBe(true); // built once on the target (> 300 vectors)
        await expectEqualsModel(bh, model);
        expect(await bh.registry.getMove("tenant-a")).toBeNull();
        expect(await db.withTenant("tenant-a", (tx) => tx.query("SELECT * FROM move_changes"))).toEqual([]);
      }
      // Back in a shared namespace: the dedicated index is gone and the namespace count is what it was.
      expect(await bh.registry.getNamespaceUsage()).toEqual({ [ix("shared-index-1")]: 2 });
      expect(await db.query("SELECT name FROM indexes ORDER BY id")).toEqual([{ name: ix("shared-index-1") }]);
      expect((await tables()).length).toBe(before.length);
      expect((await bh.dataManager.fetchDocuments("tenant-b", ["b1", "b2"])).documents).toHaveLength(2);
    });

    it("moves a tenant to another shared index (rebalancing) and frees its old namespace for the next tenant", async () => {
      await open({ maxNamespacesPerIndex: 3 });
      await bh.registry.registerTenant("tenant-c", "C", TenantTier.FREE); // fills shared-index-1 to 3 → shared-index-2 provisioned
      expect(Object.keys(await bh.registry.getNamespaceUsage())).toEqual([ix("shared-index-1"), ix("shared-index-2")]);
      const model: Model = new Map();
      await seed(bh, "tenant-a", 120, model);
      const slot = (await bh.registry.getTenant("tenant-a")).placement.slot;

      const moved = await bh.registry.moveTenant("tenant-a", { index: ix("shared-index-2") }, { batchSize: 25 });
      expect([moved.index, moved.tier]).toEqual([ix("shared-index-2"), "pro"]);
      await expectEqualsModel(bh, model);
      expect(await bh.registry.getNamespaceUsage()).toEqual({ [ix("shared-index-1")]: 2, [ix("shared-index-2")]: 1 });
      const next = await bh.registry.registerTenant("tenant-d", "D", TenantTier.FREE);
      expect([next.index, next.placement.slot]).toEqual([ix("shared-index-1"), slot]);
      expect(await bh.dataManager.countDocuments("tenant-d")).toBe(0); // the reused namespace holds nothing of A

      await expect(bh.registry.moveTenant("tenant-a", { index: ix("shared-index-2") })).rejects.toThrow(new RegExp(`already in ${ix("shared-index-2")}`));
      await expect(bh.registry.moveTenant("tenant-a", { index: ix("shared-index-9") })).rejects.toThrow(new RegExp(`no shared index named "${ix("shared-index-9")}"`));
      await expect(bh.registry.moveTenant("tenant-a", {})).rejects.toThrow(/name the shared index/);
    });

    it("an interrupted move keeps the tenant working, then resumes from its checkpoint, or rolls back leaving nothing behind", async () => {
      await open();
      const model: Model = new Map();
      await seed(bh, "tenant-a", 400, model);

      // Interrupt after the third page (as a crash between two steps would).
      const stop = new AbortController();
      let pages = 0;
      const onProgress = (p: MoveProgress) => {
        if (p.phase === "copying" && p.copied > 0 && ++pages === 3) stop.abort();
      };
      await expect(bh.registry.changeTier("tenant-a", TenantTier.ENTERPRISE, { batchSize: 50, onProgress, signal: stop.signal })).rejects.toThrow(/abort/i);
      const paused = await bh.registry.getMove("tenant-a");
      expect(paused).toMatchObject({ tenantId: "tenant-a", toTier: "enterprise", toIndex: ix("dedicated-tenant-a"), phase: "copying", copied: 150, total: 400 });
      expect(await bh.registry.listMoves()).toHaveLength(1);

      // Still on the shared placement, fully usable; the writes are logged for the move.
      expect((await bh.registry.getTenant("tenant-a")).index).toBe(ix("shared-index-1"));
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "d00001", values: vec(77), metadata: { changed: true } }, { id: "late", values: vec(78) }]);
      await bh.dataManager.deleteDocuments("tenant-a", ["d00002"]);
      // A delete by filter of rows the move has already copied: only its change log can tell the move.
      expect(await bh.dataManager.deleteDocuments("tenant-a", { filter: { n: { $in: [3, 4] } } })).toMatchObject({ deleted: 2 });
      model.set("d00001", { values: vec(77), metadata: { changed: true, tenant_id: "tenant-a" } });
      model.set("late", { values: vec(78), metadata: { tenant_id: "tenant-a" } });
      for (const id of ["d00002", "d00003", "d00004"]) model.delete(id);
      const logged = await db.withTenant("tenant-a", (tx) => tx.query<{ id: string }>("SELECT id FROM move_changes ORDER BY id"));
      expect(logged.map((r) => r.id)).toEqual(["d00001", "d00002", "d00003", "d00004", "late"]);
      // B's context sees none of A's logged ids, nor (row-level security) A's copy in the new dedicated index.
      expect(await db.withTenant("tenant-b", (tx) => tx.query("SELECT * FROM move_changes"))).toEqual([]);
      if ((await capabilitiesOf(bh, "tenant-a")).rowLevelSecurity) {
        expect(await db.withTenant("tenant-b", (tx) => tx.query("SELECT id FROM vec_2"))).toEqual([]);
        expect((await db.withTenant("tenant-a", (tx) => tx.query("SELECT id FROM vec_2"))).length).toBe(150);
      }
      // Another move cannot start over this one; a bulk replace (restore) cannot bypass its change log.
      await expect(bh.registry.moveTenant("tenant-a", { tier: TenantTier.ENTERPRISE })).rejects.toBeInstanceOf(MoveConflictError);
      const placement = (await bh.registry.getTenant("tenant-a")).placement;
      await expect(storeOf().replaceAll(placement, (async function* () {})())).rejects.toBeInstanceOf(MoveConflictError);

      // Resume: continues from page 4 (150 copied), not from the start.
      const resumed: MoveProgress[] = [];
      const moved = await bh.registry.resumeMove("tenant-a", { batchSize: 50, onProgress: (p) => resumed.push(p) });
      expect(resumed[0]).toMatchObject({ phase: "copying", copied: 150 });
      expect(moved.index).toBe(ix("dedicated-tenant-a"));
      await expectEqualsModel(bh, model);

      // Roll back: start a move down, interrupt it, discard it.
      const stop2 = new AbortController();
      await expect(bh.registry.changeTier("tenant-a", TenantTier.PRO, { batchSize: 50, signal: stop2.signal, onProgress: (p) => p.copied > 0 && stop2.abort() })).rejects.toThrow(/abort/i);
      expect(await bh.registry.getNamespaceUsage()).toEqual({ [ix("shared-index-1")]: 2 }); // tenant-b + the reserved target slot
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "after-pause", values: vec(79) }]);
      model.set("after-pause", { values: vec(79), metadata: { tenant_id: "tenant-a" } });
      const back = await bh.registry.rollbackMove("tenant-a");
      expect([back.index, back.tier, back.placement.moving]).toEqual([ix("dedicated-tenant-a"), "enterprise", false]);
      expect(await bh.registry.getMove("tenant-a")).toBeNull();
      expect(await bh.registry.getNamespaceUsage()).toEqual({ [ix("shared-index-1")]: 1 });
      expect(await db.withTenant("tenant-a", (tx) => tx.query("SELECT * FROM move_changes"))).toEqual([]);
      await expectEqualsModel(bh, model);
      await expect(bh.registry.rollbackMove("tenant-a")).rejects.toThrow(/no move in progress/);
    });

    it("holds a moving tenant's writes to its move write limit (429 with Retry-After), only its own, until the move switches", async () => {
      await open();
      await seed(bh, "tenant-a", 200);
      await expect(bh.registry.limitMoveWrites("tenant-a", 20)).rejects.toThrow(/no move in progress/);
      const stop = new AbortController();
      await expect(bh.registry.changeTier("tenant-a", TenantTier.ENTERPRISE, { batchSize: 50, signal: stop.signal, onProgress: (p) => p.copied > 0 && stop.abort() })).rejects.toThrow(/abort/i);
      await expect(bh.registry.limitMoveWrites("tenant-a", 0)).rejects.toMatchObject({ field: "vectorsPerSecond" });

      const limited = await bh.registry.limitMoveWrites("tenant-a", 20);
      expect(limited.moveWriteLimit).toBe(20);
      expect((await bh.registry.getMove("tenant-a"))?.writeLimit).toBe(20);
      const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ id: `w${from + i}`, values: vec(from + i) }));
      // 20 vectors/s over windows of 10 s: 200 pass, the next batch is refused whole, with when to retry.
      await bh.dataManager.upsertDocuments("tenant-a", batch(0, 150));
      await bh.dataManager.upsertDocuments("tenant-a", batch(150, 50));
      const refused = await bh.dataManager.upsertDocuments("tenant-a", batch(200, 10)).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(RateLimitedError);
      expect((refused as RateLimitedError).message).toMatch(/rate limit of 20 vector writes per second, set while it is being moved/);
      expect((refused as RateLimitedError).retryAfterMs).toBeGreaterThan(0);
      await expect(bh.dataManager.deleteDocuments("tenant-a", ["d00001"])).rejects.toBeInstanceOf(RateLimitedError);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(400); // reads are not limited; the refused batch wrote nothing
      await bh.dataManager.upsertDocuments("tenant-b", batch(0, 300)); // the neighbour is not limited

      await bh.registry.limitMoveWrites("tenant-a", null);
      await bh.dataManager.upsertDocuments("tenant-a", batch(200, 10));
      await bh.registry.limitMoveWrites("tenant-a", 5);
      const moved = await bh.registry.resumeMove("tenant-a");
      expect(moved.moveWriteLimit).toBeNull(); // the limit ends with the move
      await bh.dataManager.upsertDocuments("tenant-a", batch(300, 100));
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(510);
    });

    it("a background move that fails says why (log line, its status) and the tenant keeps working; it can be resumed", async () => {
      const warnings: string[] = [];
      await open({}, (m) => warnings.push(m));
      await seed(bh, "tenant-a", 300);
      const begun = await bh.moves.start("tenant-a", { tier: TenantTier.ENTERPRISE }, "admin:test", 1);
      expect(begun).toMatchObject({ running: true, error: null, total: 300 });
      // What a full disk or a DBA's mistake would do to the copy: every write into the target fails.
      const [target] = await db.query<{ id: number }>("SELECT id FROM indexes WHERE name = $1", [ix("dedicated-tenant-a")]);
      const fault = await backend.failWritesInto(db, target!.id);
      await waitFor("the move to fail", async () => !(await bh.moves.status("tenant-a")).running);

      const failed = await bh.moves.status("tenant-a");
      expect(failed.error).toMatch(fault.reason);
      expect(failed.copied).toBeLessThan(300);
      expect(warnings.filter((w) => w.includes("the move of tenant-a stopped"))).toEqual([expect.stringMatching(new RegExp(`${fault.reason.source}.*resume or roll it back`))]);
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "after-failure", values: vec(1) }]);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(301);

      await fault.undo();
      expect(await bh.moves.resume("tenant-a", "admin:test")).toMatchObject({ running: true, error: null });
      await waitFor("the resumed move to switch", async () => (await bh.registry.getMove("tenant-a")) === null, 60_000);
      expect(await bh.registry.getTenant("tenant-a")).toMatchObject({ tier: "enterprise", isolation: "dedicated-index" });
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(301);
      // The audit entry is written once the switch has committed, a moment after the move is gone.
      const moveEntries = async () => (await bh.audit.list(10)).filter((e) => e.action === "tenant.move");
      await waitFor("the move's audit entry", async () => (await moveEntries()).length > 0);
      expect(await moveEntries()).toEqual([expect.objectContaining({ actor: "admin:test", target: "tenant-a" })]);
    });

    it("refuses a stale placement after a switch, and data calls reload it on their own", async () => {
      await open();
      await seed(bh, "tenant-a", 10);
      const stale = await bh.registry.getTenant("tenant-a");
      await bh.registry.changeTier("tenant-a", TenantTier.ENTERPRISE);
      const store = storeOf();
      await expect(store.query(stale.placement, vec(1), 3, undefined)).rejects.toBeInstanceOf(PlacementMovedError);
      await expect(store.upsert(stale.placement, [{ id: "x", values: vec(5), metadata: { tenant_id: "tenant-a" } }], 1000)).rejects.toBeInstanceOf(PlacementMovedError);
      const count = await bh.registry.withPlacement(stale, (t) => store.count(t.placement));
      expect(count).toBe(10);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(10); // the write on the stale placement did nothing
    });

    it("erasing a tenant in the middle of a move also erases the copy", async () => {
      await open();
      await seed(bh, "tenant-a", 200);
      const stop = new AbortController();
      await expect(bh.registry.changeTier("tenant-a", TenantTier.ENTERPRISE, { batchSize: 50, signal: stop.signal, onProgress: (p) => p.copied > 0 && stop.abort() })).rejects.toThrow(/abort/i);
      const report = await bh.eraseTenant("tenant-a", "test");
      expect(report.verified).toBe(true);
      expect(await db.query("SELECT name FROM indexes ORDER BY id")).toEqual([{ name: ix("shared-index-1") }]);
      expect(await tables()).not.toContain("vec_2");
      expect(Object.entries(report.remaining).filter(([, n]) => n !== 0)).toEqual([]);
    });
  });
}
