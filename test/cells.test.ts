import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { loadConfig, TenantTier } from "../src/config.js";
import type { Db } from "../src/db/db.js";
import { ConfigError, PlacementMovedError, ValidationError } from "../src/errors.js";
import type { PgvectorCell } from "../src/stores/pgvector/pgvector-cell.js";
import { PgvectorStore } from "../src/stores/pgvector/pgvector-store.js";
import type { MoveProgress } from "../src/tenancy/placement-move.js";
import { asOwner, BACKENDS, dataUrl, dropTestSchemas, newTestSchema, ownerUrl, serverUrl, vec } from "./backends.js";
import { openBulkhead } from "../src/bulkhead.js";
import { expectEqualsModel, liveTraffic, seed, UNLIMITED, type Model } from "./live-traffic.js";

afterAll(dropTestSchemas);

for (const backend of BACKENDS) {
  describe(`${backend.name}: stores (cells)`, () => {
    let bh: Bulkhead;
    let home: Db;
    let cell: PgvectorCell;
    afterEach(() => bh?.close());

    const open = async () => {
      const opened = await backend.openWithCell({ config: { dimension: 8, annIndexThreshold: 300 } });
      ({ bulkhead: bh, db: home } = opened);
      cell = opened.cells[0]!;
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNLIMITED });
      await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO);
      await bh.dataManager.upsertDocuments("tenant-b", [{ id: "b1", values: vec(1), metadata: { secret: "B" } }, { id: "b2", values: vec(2) }]);
    };
    /** Vector tables and namespaces in a database. */
    const tables = async (db: Db) =>
      (await db.query<{ relname: string }>("SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND relname ~ '^vec_[0-9_]+$' ORDER BY relname", [db.schema])).map((r) => r.relname);
    const mirrors = async () => cell.db.query<{ id: string; placement_epoch: number }>("SELECT id, placement_epoch FROM tenants ORDER BY id");

    it("moves a tenant to a cell, to a dedicated index there, and home again while it writes and reads: nothing lost, nothing foreign", async () => {
      await open();
      expect(bh.stores).toEqual(["home", "cell-2"]);
      const model: Model = new Map();
      await seed(bh, "tenant-a", 600, model);
      const homeTables = await tables(home);

      let phase = "before";
      const progress: MoveProgress[] = [];
      // Small batches: the copy must last long enough for writes to land during it, on a fast day too.
      const options = { batchSize: 20, onProgress: (p: MoveProgress) => (progress.push(p), (phase = p.phase)) };
      const steps: [string, () => Promise<unknown>, { store: string; isolation: string }][] = [
        ["to the cell", () => bh.registry.moveTenant("tenant-a", { store: "cell-2" }, options), { store: "cell-2", isolation: "namespace" }],
        ["enterprise within the cell", () => bh.registry.changeTier("tenant-a", TenantTier.ENTERPRISE, options), { store: "cell-2", isolation: "dedicated-index" }],
        ["home, back to pro", () => bh.registry.moveTenant("tenant-a", { store: "home", tier: TenantTier.PRO }, options), { store: "home", isolation: "namespace" }],
      ];
      for (const [, move, expected] of steps) {
        progress.length = 0;
        let moving = true;
        const traffic = liveTraffic(bh, model, () => !moving, () => phase);
        await move();
        await new Promise((r) => setTimeout(r, 50)); // a little traffic on the new placement
        moving = false;
        await traffic.finished;

        expect(traffic.stats.errors).toEqual([]);
        expect(traffic.stats.foreign).toEqual([]);
        // Writes overlapped the move (its copy, index build or catch-up: on a fast day the copy of
        // a few hundred vectors can be over before the writer's next turn).
        const duringMove = ["copying", "indexing", "catching-up"].reduce((n, phase) => n + (traffic.stats.writesByPhase[phase] ?? 0), 0);
        expect(duringMove).toBeGreaterThan(0);
        expect(progress.map((p) => p.phase)).toContain("switched");
        const t = await bh.registry.getTenant("tenant-a");
        expect({ store: t.store, isolation: t.isolation }).toEqual(expected);
        expect(t.placement.annIndexed).toBe(true); // built once on the target (> 300 vectors)
        await expectEqualsModel(bh, model);
        expect(await bh.registry.getMove("tenant-a")).toBeNull();
        if (t.store === "cell-2") {
          // Its vectors are in the cell now: home has none of them, the cell's mirror fences them at the current epoch.
          expect(await home.withTenant("tenant-a", (tx) => tx.query("SELECT * FROM document_counts"))).toEqual([]);
          expect(await mirrors()).toEqual([{ id: "tenant-a", placement_epoch: t.placement.epoch }]);
          expect(t.index).toBe(t.isolation === "namespace" ? "cell-2/shared-index-1" : "cell-2/dedicated-tenant-a");
          expect(await tables(cell.db)).toEqual(t.isolation === "namespace" ? ["vec_2", "vec_2_1"] : ["vec_2", "vec_3"]);
        }
      }
      // Home again: the cell holds nothing of the tenant any more; home is as it was.
      expect(await mirrors()).toEqual([]);
      expect(await tables(cell.db)).toEqual(["vec_2"]); // the cell's (now empty) shared index
      expect(await cell.db.withTenant("tenant-a", (tx) => tx.query("SELECT id FROM vec_2"))).toEqual([]);
      expect(await tables(home)).toEqual(homeTables);
      expect(await bh.registry.getNamespaceUsage()).toEqual({ "shared-index-1": 2, "cell-2/shared-index-1": 0 });
      expect((await bh.dataManager.fetchDocuments("tenant-b", ["b1", "b2"])).documents).toHaveLength(2);
    });

    it("keeps a tenant in a cell isolated: B's context sees nothing of A there, and a stale placement of A is refused", async () => {
      await open();
      await seed(bh, "tenant-a", 40);
      const atHome = await bh.registry.getTenant("tenant-a");
      await bh.registry.moveTenant("tenant-a", { store: "cell-2" });
      await bh.registry.moveTenant("tenant-b", { store: "cell-2" }); // neighbours in the cell's shared index
      const inCell = await bh.registry.getTenant("tenant-a");

      // The attacker holding B's key gets B's rows only, from the cell.
      const b = await bh.dataManager.queryDocuments("tenant-b", vec(3), { topK: 50 });
      expect(b.matches.map((m) => m.id).sort()).toEqual(["b1", "b2"]);
      expect((await bh.dataManager.fetchDocuments("tenant-b", ["d00001", "d00002"])).documents).toEqual([]);
      // Straight at the cell's database: no context sees nothing, B's context sees only B, A's only A.
      expect(await cell.db.query("SELECT id FROM vec_2")).toEqual([]);
      expect((await cell.db.withTenant("tenant-b", (tx) => tx.query<{ id: string }>("SELECT id FROM vec_2 ORDER BY id"))).map((r) => r.id)).toEqual(["b1", "b2"]);
      expect((await cell.db.withTenant("tenant-a", (tx) => tx.query("SELECT id FROM vec_2"))).length).toBe(40);
      // B cannot bump or clear A's counters or change log in the cell either.
      await cell.db.withTenant("tenant-b", (tx) => tx.query("UPDATE document_counts SET documents = 0 WHERE tenant_id = 'tenant-a'"));
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(40);

      // A placement from before the move (an instance that missed it) is refused at home and in the cell.
      await expect(new PgvectorStore(home, home.dataPlane, bh.config).fetch(atHome.placement, ["d00001"])).rejects.toBeInstanceOf(PlacementMovedError);
      await bh.registry.moveTenant("tenant-a", { store: "home" });
      await expect(cell.store.fetch(inCell.placement, ["d00001"])).rejects.toBeInstanceOf(PlacementMovedError);
      await expect(cell.store.upsert(inCell.placement, [{ id: "x", values: vec(9), metadata: { tenant_id: "tenant-a" } }], 1000)).rejects.toBeInstanceOf(PlacementMovedError);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(40);
    });

    it("registers a tenant directly in a cell: its vectors live there only, isolated from B, and it moves home and is erased like any other", async () => {
      await open();
      const [homeBefore, cellBefore] = [await tables(home), await tables(cell.db)];
      await expect(bh.registry.registerTenant("tenant-c", "C", TenantTier.FREE, { store: "nowhere" })).rejects.toMatchObject({ field: "store", message: expect.stringContaining("cell-2") });
      await expect(bh.registry.getTenant("tenant-c")).rejects.toThrow(/does not exist/); // nothing registered
      const c = await bh.registry.registerTenant("tenant-c", "C", TenantTier.FREE, { store: "cell-2" });
      expect(c).toMatchObject({ store: "cell-2", index: "cell-2/shared-index-1", isolation: "namespace" });
      const e = await bh.registry.registerTenant("tenant-e", "E", TenantTier.ENTERPRISE, { store: "cell-2" });
      expect(e).toMatchObject({ store: "cell-2", index: "cell-2/dedicated-tenant-e", isolation: "dedicated-index" });
      expect((await mirrors()).map((m) => m.id)).toEqual(["tenant-c", "tenant-e"]);
      await bh.dataManager.upsertDocuments("tenant-c", [{ id: "c1", values: vec(1), metadata: { secret: "C" } }]);
      await bh.dataManager.upsertDocuments("tenant-e", [{ id: "e1", values: vec(1) }]);
      expect(await tables(home)).toEqual(homeBefore);
      const added = (await tables(cell.db)).filter((t) => !cellBefore.includes(t));
      expect(added.length).toBeGreaterThan(0);

      // B (at home) and C (in the cell) see only their own, through Bulkhead and straight at the cell's database.
      expect((await bh.dataManager.queryDocuments("tenant-b", vec(1), { topK: 10 })).matches.map((m) => m.id).sort()).toEqual(["b1", "b2"]);
      expect((await bh.dataManager.fetchDocuments("tenant-b", ["c1", "e1"])).documents).toEqual([]);
      expect((await bh.dataManager.queryDocuments("tenant-c", vec(1), { topK: 10 })).matches).toEqual([expect.objectContaining({ id: "c1", metadata: { secret: "C", tenant_id: "tenant-c" } })]);
      for (const table of added) {
        const read = cell.db.withTenant("tenant-b", (tx) => tx.query(`SELECT id FROM ${table}`));
        // An index's table shows B nothing of C or E; a namespace's partition cannot be read around the policies at all.
        if (/^vec_[0-9]+$/.test(table)) expect(await read, table).toEqual([]);
        else await expect(read, table).rejects.toThrow(/permission denied/);
      }

      await bh.registry.moveTenant("tenant-c", { store: "home" });
      expect((await bh.dataManager.fetchDocuments("tenant-c", ["c1"])).documents).toHaveLength(1);
      const report = await bh.eraseTenant("tenant-e", "test");
      expect(Object.keys(report.remaining).some((table) => table.startsWith("cell-2/"))).toBe(true); // the scan covered the cell
      expect(Object.entries(report.remaining).filter(([, n]) => n > 0)).toEqual([]);
      expect((await mirrors()).map((m) => m.id)).toEqual([]);
      // Left in the cell: only its shared index's own (empty) table, ready for the next tenant.
      const [shared] = await home.query<{ id: number }>("SELECT id FROM indexes WHERE name = 'cell-2/shared-index-1'");
      expect(await tables(cell.db)).toEqual([...cellBefore, `vec_${shared!.id}`].sort());
    });

    it("survives a crash between a switch's two commits: the cell fenced off, the catalogue not switched — repaired, then resumed", async () => {
      await open();
      const model: Model = new Map();
      await seed(bh, "tenant-a", 60, model);
      await bh.registry.moveTenant("tenant-a", { store: "cell-2" });
      const inCell = await bh.registry.getTenant("tenant-a");
      // The move home fails at the switch's last step, in the home transaction, after the cell committed
      // its fence (the move's begin announces once, the switch a second time).
      const registry = bh.registry as unknown as { announce: (...args: unknown[]) => Promise<void> };
      const announce = registry.announce;
      let calls = 0;
      registry.announce = async function (this: unknown, ...args: unknown[]) {
        if (++calls === 2) {
          registry.announce = announce;
          throw new Error("crash before the catalogue commit");
        }
        return announce.apply(this, args);
      };
      await expect(bh.registry.moveTenant("tenant-a", { store: "home" })).rejects.toThrow(/crash before the catalogue commit/);
      expect(await mirrors()).toEqual([{ id: "tenant-a", placement_epoch: -1 }]); // the cell refuses everyone...
      await expect(cell.store.count({ ...inCell.placement, epoch: inCell.placement.epoch + 1 })).rejects.toBeInstanceOf(PlacementMovedError);
      const t = await bh.registry.getTenant("tenant-a");
      expect([t.store, t.placement.moving]).toEqual(["cell-2", true]); // ...while the catalogue still places it there

      // The next data call is refused twice, reconciles the cell with the catalogue, and is served.
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "after-crash", values: vec(3) }]);
      model.set("after-crash", { values: vec(3), metadata: { tenant_id: "tenant-a" } });
      expect(await mirrors()).toEqual([{ id: "tenant-a", placement_epoch: t.placement.epoch }]);
      const moved = await bh.registry.resumeMove("tenant-a");
      expect(moved.store).toBe("home");
      await expectEqualsModel(bh, model);
      expect(await mirrors()).toEqual([]);

      // Left-overs nobody claims (a crash after a switch, before the clean-up) are dropped by reconciling.
      await cell.db.query("SELECT create_namespace(2, 7, 'ghost')");
      const reports = await bh.registry.reconcileCells();
      expect(reports["cell-2"]!.storageDropped).toEqual(["vec_2_7"]);
    });

    it("rolls back an interrupted move to a cell leaving nothing there, resumes another, and erases a tenant living in a cell from every store", async () => {
      await open();
      const model: Model = new Map();
      await seed(bh, "tenant-a", 400, model);
      const stop = new AbortController();
      const onProgress = (p: MoveProgress) => p.copied >= 100 && stop.abort();
      await expect(bh.registry.moveTenant("tenant-a", { store: "cell-2" }, { batchSize: 50, onProgress, signal: stop.signal })).rejects.toThrow(/abort/i);
      expect(await bh.registry.getMove("tenant-a")).toMatchObject({ toStore: "cell-2", toIndex: "cell-2/shared-index-1", phase: "copying" });
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "late", values: vec(5) }]);
      model.set("late", { values: vec(5), metadata: { tenant_id: "tenant-a" } });
      await bh.registry.rollbackMove("tenant-a");
      expect(await mirrors()).toEqual([]);
      expect(await tables(cell.db)).toEqual(["vec_2"]);
      expect((await bh.registry.getTenant("tenant-a")).store).toBe("home");
      await expectEqualsModel(bh, model);

      // Interrupted again, then resumed: continues from its checkpoint into the cell.
      const stop2 = new AbortController();
      await expect(bh.registry.moveTenant("tenant-a", { store: "cell-2" }, { batchSize: 50, onProgress: (p) => p.copied >= 100 && stop2.abort(), signal: stop2.signal })).rejects.toThrow(/abort/i);
      await bh.dataManager.deleteDocuments("tenant-a", ["d00003"]);
      model.delete("d00003");
      const resumed: MoveProgress[] = [];
      const moved = await bh.registry.resumeMove("tenant-a", { batchSize: 50, onProgress: (p) => resumed.push(p) });
      expect(resumed[0]).toMatchObject({ phase: "copying", copied: 100 });
      expect(moved.store).toBe("cell-2");
      await expectEqualsModel(bh, model);
      await bh.dataManager.queryDocuments("tenant-a", vec(1), { topK: 1 }); // a daily count in the cell

      const report = await bh.eraseTenant("tenant-a", "test");
      expect(report.verified).toBe(true);
      expect(report.remaining).toMatchObject({ "cell-2/vec_2": 0, "cell-2/document_counts": 0, "cell-2/daily_query_counts": 0, "cell-2/move_changes": 0, "cell-2/tenants": 0, vec_1: 0 });
      expect(await tables(cell.db)).toEqual(["vec_2"]);
      expect(await bh.registry.getNamespaceUsage()).toEqual({ "shared-index-1": 1, "cell-2/shared-index-1": 0 });
    });

    it("checks every cell's database in the readiness checklist, and charges each cell as a database", async () => {
      await open();
      await seed(bh, "tenant-a", 20);
      await bh.registry.moveTenant("tenant-a", { store: "cell-2" });
      const security = (await bh.readiness()).filter((c) => c.category === "Security" && c.name !== "Cross-tenant isolation probe");
      expect(security.filter((c) => !c.passed)).toEqual([]);
      for (const c of security) expect(c.detail).toMatch(/cell-2: /);
      expect((await bh.costEngine.getFixedCosts()).categories.postgres).toBe(2 * bh.config.prices.postgresMonthly);

      // A DBA switches off forced RLS on the cell's vector table: the check fails and names the cell.
      await asOwner(cell.db, "ALTER TABLE vec_2 NO FORCE ROW LEVEL SECURITY", "cell");
      const rls = (await bh.readiness()).find((c) => c.name.startsWith("Row-level security"))!;
      expect(rls.passed).toBe(false);
      expect(rls.detail).toMatch(/cell-2: unprotected: vec_2\b/);
    });

    it("refuses unknown stores and pointless moves, naming the field", async () => {
      await open();
      await expect(bh.registry.moveTenant("tenant-a", { store: "cell-9" })).rejects.toThrow(/no store named "cell-9".*stores: home, cell-2/);
      await expect(bh.registry.moveTenant("tenant-a", { store: "home" })).rejects.toMatchObject({ field: "store" });
      await bh.registry.moveTenant("tenant-a", { store: "cell-2" });
      await expect(bh.registry.moveTenant("tenant-a", { index: "shared-index-1", store: "cell-2" })).rejects.toBeInstanceOf(ValidationError);
    });
  });
}

describe.runIf(serverUrl)("a cell configured with another store's database", () => {
  it("is refused at start, and the home store's vectors are untouched", async () => {
    const schema = newTestSchema();
    const config = { schema, dimension: 8 };
    const { bulkhead: first } = await openBulkhead({ database: serverUrl!, databaseOwnerUrl: ownerUrl, databaseDataUrl: dataUrl, env: {}, config });
    await first.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
    await first.dataManager.upsertDocuments("tenant-a", [{ id: "a1", values: vec(1) }]);
    await first.close();
    // The home database given again as a cell: reconciling it would drop every home namespace.
    const sameDatabase = openBulkhead({ database: serverUrl!, databaseOwnerUrl: ownerUrl, env: {}, config: { ...config, cells: { "cell-2": { url: serverUrl!, ownerUrl } } } });
    await expect(sameDatabase).rejects.toThrow(/store "cell-2" is the database of store "home".*check BULKHEAD_CELLS/);
    const { bulkhead: again } = await openBulkhead({ database: serverUrl!, databaseOwnerUrl: ownerUrl, databaseDataUrl: dataUrl, env: {}, config });
    expect(await again.dataManager.countDocuments("tenant-a")).toBe(1);
    await again.close();
  });
});

describe("cell configuration", () => {
  it("reads BULKHEAD_CELLS as JSON and refuses bad names and missing URLs", () => {
    const config = loadConfig({ env: { BULKHEAD_CELLS: '{"cell-2":{"url":"postgres://app@db2/bulkhead","ownerUrl":"postgres://owner@db2/bulkhead"}}' } });
    expect(config.cells).toEqual({ "cell-2": { url: "postgres://app@db2/bulkhead", ownerUrl: "postgres://owner@db2/bulkhead" } });
    expect(() => loadConfig({ env: { BULKHEAD_CELLS: '{"home":{"url":"memory://"}}' } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { BULKHEAD_CELLS: '{"Cell 2":{"url":"memory://"}}' } })).toThrow(/cell name "Cell 2"/);
    expect(() => loadConfig({ env: { BULKHEAD_CELLS: '{"cell-2":{}}' } })).toThrow(/BULKHEAD_CELLS.cell-2.url/);
    expect(() => loadConfig({ env: { BULKHEAD_CELLS: "cell-2=memory://" } })).toThrow(/must be JSON/);
  });
});
