import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { BackupInvalidError } from "../src/operations/backup.js";
import { ValidationError } from "../src/errors.js";
import { capabilitiesOf, dropTestSchemas, STORES, vec } from "./backends.js";

afterAll(dropTestSchemas);
const dir = mkdtempSync(join(tmpdir(), "bulkhead-backup-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

for (const backend of STORES) {
  describe(`${backend.name}: per-tenant backup and restore`, () => {
    let bh: Bulkhead;
    afterEach(() => bh?.close());

    const snapshot = async (tenantId: string, ids: string[]) => {
      const docs = [];
      for (let i = 0; i < ids.length; i += 1_000) docs.push(...(await bh.dataManager.fetchDocuments(tenantId, ids.slice(i, i + 1_000))).documents);
      return docs.sort((a, b) => a.id.localeCompare(b.id));
    };

    it("round-trips a tenant through backup → erase → restore, refuses bad files and wrong dimensions, and restores idempotently", async () => {
      ({ bulkhead: bh } = await backend.open({ config: { dimension: 8 } }));
      await bh.registry.registerTenant("tenant-a", "Acme", TenantTier.PRO, { quota: { maxDailyQueries: 777 } });
      await bh.registry.registerTenant("tenant-b", "Beta", TenantTier.PRO);
      const ids = Array.from({ length: 2_300 }, (_, i) => `doc-${i}`);
      for (let i = 0; i < ids.length; i += 500) {
        await bh.dataManager.upsertDocuments("tenant-a", ids.slice(i, i + 500).map((id, j) => ({ id, values: vec(i + j), metadata: { n: i + j, tag: ["x", "y"] } })));
      }
      await bh.dataManager.upsertDocuments("tenant-b", [{ id: "b1", values: vec(9) }]);
      await bh.dataManager.queryDocuments("tenant-a", vec(1), { topK: 1 });
      await bh.costEngine.flush();
      const before = await snapshot("tenant-a", ids);

      const file = join(dir, `${backend.name}-a.bkp.gz`);
      const progress: number[] = [];
      const summary = await bh.backupTenant("tenant-a", file, { includeUsage: true, onProgress: (n) => progress.push(n) });
      expect(summary).toMatchObject({ tenantId: "tenant-a", documents: 2_300 });
      expect(summary.usageEvents).toBeGreaterThan(0);
      expect(progress.at(-1)).toBe(2_300);
      const lines = gunzipSync(readFileSync(file)).toString().trim().split("\n");
      expect(JSON.parse(lines[0]!)).toMatchObject({ format: "bulkhead-tenant-backup", version: 1, dimension: 8, tenant: { tenantId: "tenant-a", quotaOverrides: { maxDailyQueries: 777 } } });
      expect(JSON.parse(lines.at(-1)!)).toMatchObject({ type: "end", documents: 2_300, sha256: summary.sha256 });

      // Corrupted, truncated or foreign files are refused before anything changes.
      const corrupted = join(dir, `${backend.name}-corrupted.gz`);
      const tampered = lines.map((l, i) => (i === 5 ? l.replace('"tag":["x","y"]', '"tag":["x","z"]') : l)).join("\n") + "\n";
      expect(tampered).not.toBe(lines.join("\n") + "\n");
      writeFileSync(corrupted, gzipSync(tampered));
      await expect(bh.restoreTenant(corrupted)).rejects.toThrow(/checksum mismatch/);
      const truncated = join(dir, `${backend.name}-truncated.gz`);
      writeFileSync(truncated, readFileSync(file).subarray(0, 2_000));
      await expect(bh.restoreTenant(truncated)).rejects.toBeInstanceOf(BackupInvalidError);
      const foreign = join(dir, `${backend.name}-foreign.gz`);
      writeFileSync(foreign, gzipSync('{"hello":"world"}\n'));
      await expect(bh.restoreTenant(foreign)).rejects.toThrow(/not a Bulkhead tenant backup/);
      expect(await snapshot("tenant-a", ids)).toEqual(before);

      // Another dimension is refused.
      await bh.registry.registerTenant("tenant-wide", "Wide", TenantTier.ENTERPRISE, { dimension: 16 });
      await expect(bh.restoreTenant(file, { into: "tenant-wide" })).rejects.toBeInstanceOf(ValidationError);

      // Erase, then restore: the same ids, vectors, metadata and settings come back; B is untouched.
      expect((await bh.eraseTenant("tenant-a", "test")).verified).toBe(true);
      const restored = await bh.restoreTenant(file);
      expect(restored).toMatchObject({ tenantId: "tenant-a", documents: 2_300, created: true });
      expect(await snapshot("tenant-a", ids)).toEqual(before);
      expect((await bh.registry.getTenant("tenant-a")).quota.maxDailyQueries).toBe(777);
      if ((await capabilitiesOf(bh, "tenant-a")).annIndexes) expect((await bh.registry.getTenant("tenant-a")).placement.annIndexed).toBe(true);
      expect(await bh.dataManager.countDocuments("tenant-b")).toBe(1);

      // Twice gives the same state; changes made since are replaced.
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "doc-new", values: vec(5) }]);
      expect((await bh.restoreTenant(file)).created).toBe(false);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(2_300);
      expect(await snapshot("tenant-a", ids)).toEqual(before);

      // Into another id only when asked: its metadata names its new owner.
      await bh.restoreTenant(file, { into: "tenant-copy" });
      const [copy] = (await bh.dataManager.fetchDocuments("tenant-copy", ["doc-1"])).documents;
      expect(copy!.metadata).toMatchObject({ tenant_id: "tenant-copy", n: 1 });
    }, 120_000);
  });
}
