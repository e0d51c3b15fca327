import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import type { Db } from "../src/db/db.js";
import { BackupInvalidError } from "../src/operations/backup.js";
import { QuotaExceededError, ValidationError } from "../src/errors.js";
import { OpenAIEmbedder } from "../src/text/openai-embedder.js";
import { BACKENDS, capabilitiesOf, dropTestSchemas, STORES, vec } from "./backends.js";
import { OpenAIStandin } from "./openai-standin.js";

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
      expect(JSON.parse(lines[0]!)).toMatchObject({ format: "bulkhead-tenant-backup", version: 2, dimension: 8, tenant: { tenantId: "tenant-a", quotaOverrides: { maxDailyQueries: 777 } } });
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

/** A backup's lines, changed by `edit`, written back with the trailer's checksum made to match (as a forger would). */
function rewritten(lines: string[], edit: (values: Record<string, unknown>[]) => Record<string, unknown>[]): Buffer {
  const values = edit(lines.slice(0, -1).map((l) => JSON.parse(l)));
  const body = values.map((v) => `${JSON.stringify(v)}\n`).join("");
  const trailer = { ...JSON.parse(lines.at(-1)!), sha256: createHash("sha256").update(body).digest("hex") };
  return gzipSync(`${body}${JSON.stringify(trailer)}\n`);
}

for (const backend of BACKENDS) {
  describe(`${backend.name}: text documents in backups`, () => {
    let bh: Bulkhead;
    let db: Db;
    let standin: OpenAIStandin | undefined;
    afterEach(async () => {
      await bh?.close();
      await standin?.close();
    });

    /** Tenant A with two vectors and over a thousand chunks (more than one page), embedded; B with a secret of its own. */
    const open = async () => {
      standin = await new OpenAIStandin(8).start();
      const embedder = new OpenAIEmbedder({ baseUrl: standin.url, apiKey: "sk-standin", model: "text-embedding-3-small", dimension: 8, backoffMs: 5 });
      ({ bulkhead: bh, db } = await backend.open({ config: { dimension: 8, chunkTokens: 16, chunkOverlapTokens: 0 }, embedder }));
      await bh.registry.registerTenant("tenant-a", "Acme", TenantTier.PRO);
      await bh.registry.registerTenant("tenant-b", "Beta", TenantTier.PRO);
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "v1", values: vec(1) }, { id: "v2", values: vec(2) }]);
      await bh.text.ingestDocuments("tenant-a", [
        { id: "handbook", format: "markdown", text: "# Install\n\nRun the zeppelin installer.\n\n## Upgrade\n\nUpgrade the zeppelin with care.", metadata: { team: "ops" } },
        { id: "facts", format: "html", text: `<p>${Array.from({ length: 2_400 }, (_, i) => `Quokka fact ${i} is friendly.`).join(" ")}</p>` },
      ]);
      await bh.text.ingestDocuments("tenant-b", [{ id: "secret", text: "Harbour xylophone, the secret of B." }]);
    };

    /** Every text row the tenant's own context shows (forced RLS), chunk by chunk with its document, vector and full-text vector. */
    const textOf = (tenantId: string) =>
      db.queryAsTenant<Record<string, unknown>>(
        tenantId,
        `SELECT c.tenant_id, c.document_id, c.position, c.section, c.body, c.metadata, c.embedding::text AS embedding, c.tsv::text AS tsv,
                d.format, d.metadata AS document_metadata, d.chunks, d.characters
           FROM text_chunks c JOIN text_documents d ON d.tenant_id = c.tenant_id AND d.id = c.document_id ORDER BY c.document_id, c.position`,
      );
    const ownedBy = (rows: Record<string, unknown>[], tenantId: string) =>
      rows.map((r) => ({ ...r, tenant_id: tenantId, metadata: { ...(r.metadata as object), tenant_id: tenantId }, document_metadata: { ...(r.document_metadata as object), tenant_id: tenantId } }));

    it("round-trips text, chunks and their vectors without the embedding provider; refuses a bad text section, and puts the text back when the vectors fail, changing nothing; a version 1 file leaves text alone", async () => {
      await open();
      const before = await textOf("tenant-a");
      expect(before.length).toBeGreaterThan(1_000);
      expect(before.every((r) => typeof r.embedding === "string")).toBe(true);

      const file = join(dir, `${backend.name}-text.bkp.gz`);
      const summary = await bh.backupTenant("tenant-a", file);
      expect(summary).toMatchObject({ documents: 2, textDocuments: 2, textChunks: before.length });
      const lines = gunzipSync(readFileSync(file)).toString().trim().split("\n");
      expect(JSON.parse(lines[0]!)).toMatchObject({ version: 2 });
      const chunkLines = lines.map((l) => JSON.parse(l)).filter((v) => v.type === "chunk");
      expect(chunkLines).toHaveLength(before.length);
      expect(chunkLines[0].embedding).toHaveLength(8);

      // A corrupt, forged or truncated text section is refused whole, before anything changes.
      const unchanged = async () => {
        expect(await textOf("tenant-a")).toEqual(before);
        expect(await bh.dataManager.countDocuments("tenant-a")).toBe(2);
      };
      const bad = join(dir, `${backend.name}-text-bad.gz`);
      const at = lines.findIndex((l) => l.includes('"type":"chunk"'));
      const tampered = lines.map((l, i) => (i === at ? l.replace('"body":"', '"body":"X') : l));
      expect(tampered[at]).not.toBe(lines[at]);
      writeFileSync(bad, gzipSync(tampered.join("\n") + "\n"));
      await expect(bh.restoreTenant(bad)).rejects.toThrow(/checksum mismatch/);
      writeFileSync(bad, rewritten(lines, (vs) => vs.map((v) => (v.type === "chunk" && v.position === 1 ? { ...v, position: -1 } : v))));
      await expect(bh.restoreTenant(bad)).rejects.toThrow(/text chunk \d+ is malformed/);
      writeFileSync(bad, rewritten(lines, (vs) => vs.filter((v, i) => !(v.type === "chunk" && i === lines.length - 2))));
      await expect(bh.restoreTenant(bad)).rejects.toThrow(/trailer counts \d+ textChunks/);
      writeFileSync(bad, gzipSync(lines.slice(0, -50).join("\n") + "\n"));
      await expect(bh.restoreTenant(bad)).rejects.toThrow(/no trailer \(truncated\)/);
      await unchanged();

      // The text is written before the vectors (another transaction): when the vectors then fail, the tenant's own text is put back.
      await bh.text.deleteDocuments("tenant-a", ["facts"]);
      await bh.text.ingestDocuments("tenant-a", [{ id: "later", text: "Written after the backup." }]);
      const changed = await textOf("tenant-a");
      const fault = await backend.failWritesInto(db, (await bh.registry.getTenant("tenant-a")).placement.indexId);
      try {
        await expect(bh.restoreTenant(file)).rejects.toThrow(fault.reason);
      } finally {
        await fault.undo();
      }
      expect(await textOf("tenant-a")).toEqual(changed);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(2);

      // Erased, then restored: every row as it was (vectors of the chunks included), the provider never called.
      expect((await bh.eraseTenant("tenant-a", "test")).verified).toBe(true);
      const calls = standin!.requests.length;
      expect(await bh.restoreTenant(file)).toMatchObject({ created: true, documents: 2, textDocuments: 2, textChunks: before.length });
      expect(standin!.requests.length).toBe(calls);
      expect(await textOf("tenant-a")).toEqual(before);
      const { matches } = await bh.text.searchText("tenant-a", "zeppelin installer", { weights: { vector: 0 } });
      expect(matches[0]).toMatchObject({ documentId: "handbook", section: "Install", metadata: { team: "ops", tenant_id: "tenant-a" }, retrievers: ["fulltext"] });
      expect((await bh.text.searchText("tenant-a", "quokka", { weights: { fulltext: 0 } })).matches.length).toBeGreaterThan(0);

      // A version 1 file (written before backups carried text) restores its vectors and leaves the text as it is.
      const v1Lines = [
        { format: "bulkhead-tenant-backup", version: 1, tenant: { tenantId: "tenant-a", tenantName: "Acme", tier: "pro", quotaOverrides: {} }, dimension: 8, metric: "cosine", createdAt: new Date().toISOString(), includesUsage: false },
        { type: "doc", id: "old", values: vec(7), metadata: { era: 1 } },
      ].map((v) => JSON.stringify(v));
      const v1 = join(dir, `${backend.name}-v1.bkp.gz`);
      writeFileSync(v1, rewritten([...v1Lines, JSON.stringify({ type: "end", documents: 1, usageEvents: 0 })], (vs) => vs));
      expect(await bh.restoreTenant(v1)).toMatchObject({ documents: 1, textDocuments: 0, created: false });
      expect((await bh.dataManager.fetchDocuments("tenant-a", ["old", "v1"])).documents.map((d) => d.id)).toEqual(["old"]);
      expect(await textOf("tenant-a")).toEqual(before);
    }, 120_000);

    it("restores into another tenant as that tenant's own rows: the source untouched, the target sees nothing of another tenant", async () => {
      await open();
      const a = await textOf("tenant-a");
      const b = await textOf("tenant-b");
      const file = join(dir, `${backend.name}-text-copy.bkp.gz`);
      await bh.backupTenant("tenant-a", file);

      await bh.restoreTenant(file, { into: "tenant-c" });
      const c = await textOf("tenant-c");
      expect(c).toEqual(ownedBy(a, "tenant-c"));
      expect(await textOf("tenant-a")).toEqual(a);
      expect(await textOf("tenant-b")).toEqual(b);
      expect((await bh.text.searchText("tenant-c", "zeppelin")).matches[0]).toMatchObject({ documentId: "handbook", metadata: { tenant_id: "tenant-c" } });
      const fulltext = { weights: { vector: 0 } };
      expect((await bh.text.searchText("tenant-c", "xylophone", fulltext)).matches).toEqual([]);

      // Into a tenant that has text of its own: replaced by the copy, the source still untouched.
      await bh.restoreTenant(file, { into: "tenant-b" });
      expect(await textOf("tenant-b")).toEqual(ownedBy(a, "tenant-b"));
      expect(await textOf("tenant-a")).toEqual(a);
      expect((await bh.text.searchText("tenant-b", "xylophone", fulltext)).matches).toEqual([]);
      expect((await bh.text.searchText("tenant-a", "zeppelin")).matches[0]).toMatchObject({ metadata: { tenant_id: "tenant-a" } });
    }, 120_000);

    it("refuses a restore that would take the tenant past maxTextChunks, with nothing changed", async () => {
      await open();
      const chunks = (await textOf("tenant-a")).length;
      const file = join(dir, `${backend.name}-text-quota.bkp.gz`);
      await bh.backupTenant("tenant-a", file);
      await bh.registry.registerTenant("tenant-small", "Small", TenantTier.PRO, { quota: { maxTextChunks: chunks - 1 } });
      await bh.text.ingestDocuments("tenant-small", [{ id: "own", text: "Its own text." }]);
      const own = await textOf("tenant-small");

      const refused = await bh.restoreTenant(file, { into: "tenant-small" }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(QuotaExceededError);
      expect(refused).toMatchObject({ quota: "maxTextChunks", limit: chunks - 1 });
      expect(await textOf("tenant-small")).toEqual(own);
      expect(await bh.dataManager.countDocuments("tenant-small")).toBe(0);

      // At exactly the quota it fits.
      await bh.registry.setQuota("tenant-small", { maxTextChunks: chunks });
      expect(await bh.restoreTenant(file, { into: "tenant-small" })).toMatchObject({ textChunks: chunks });
      expect(await textOf("tenant-small")).toHaveLength(chunks);
    }, 120_000);
  });
}
