import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Bulkhead, BulkheadOptions } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { QuotaExceededError, ValidationError } from "../src/errors.js";
import { dropTestSchemas, pglite, pineconeStandin, postgres } from "./backends.js";
import type { PineconeStandin } from "./pinecone-standin.js";

/**
 * One suite, every store: pgvector on PGlite, pgvector on the server, and Pinecone (its local
 * stand-in, with the catalogue on PGlite). What may differ between stores is read from the store's
 * capabilities, never from its name.
 */
const DIM = 4;
const vec = (i: number) => [1, (i % 7) / 7, ((i * 3) % 11) / 11, ((i * 5) % 13) / 13];

interface Setup {
  name: string;
  open(options?: BulkheadOptions): Promise<{ bh: Bulkhead; standin?: PineconeStandin }>;
}

const pineconeSetup: Setup = {
  name: pineconeStandin.name,
  async open(options = {}) {
    const { bulkhead } = await pineconeStandin.open(options);
    return { bh: bulkhead, standin: pineconeStandin.standin };
  },
};
/**
 * Opt-in: the live service. `PINECONE_API_KEY=… npx vitest run test/store-conformance.test.ts`
 * runs this suite against your own Pinecone project too (serverless indexes named `bhtest-<run>-<id>`
 * are created in PINECONE_CLOUD / PINECONE_REGION, default aws / us-east-1, and deleted as tenants
 * are erased; reconciliation removes any a failed run leaves at the next start with the same prefix).
 */
const liveKey = process.env.PINECONE_API_KEY;
const liveSetup: Setup = {
  name: "pinecone (live)",
  async open(options = {}) {
    const { bulkhead } = await pglite.open({
      ...options,
      config: {
        ...options.config,
        pinecone: {
          name: "pinecone",
          cloud: (process.env.PINECONE_CLOUD ?? "aws") as "aws",
          region: process.env.PINECONE_REGION ?? "us-east-1",
          indexPrefix: `bhtest-${process.pid}`,
          maxNamespacesPerIndex: 100,
          timeoutMs: 60_000,
          maxRetries: 3,
        },
        pineconeApiKey: liveKey,
        tierStores: { free: "pinecone", pro: "pinecone", enterprise: "pinecone" },
      },
    });
    return { bh: bulkhead };
  },
};
const SETUPS: Setup[] = [
  { name: "pgvector (pglite)", open: async (o) => ({ bh: (await pglite.open(o)).bulkhead }) },
  ...(postgres ? [{ name: "pgvector (postgres)", open: async (o?: BulkheadOptions) => ({ bh: (await postgres!.open(o)).bulkhead }) }] : []),
  pineconeSetup,
  ...(liveKey ? [liveSetup] : []),
];

afterAll(dropTestSchemas);

for (const setup of SETUPS) {
  describe(`store conformance: ${setup.name}`, () => {
    let bh: Bulkhead;
    let standin: PineconeStandin | undefined;
    afterEach(() => bh?.close());

    const open = async (config: BulkheadOptions["config"] = {}) => {
      ({ bh, standin } = await setup.open({ config: { dimension: DIM, usageFlushIntervalMs: 50, ...config } }));
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
      await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO);
      const store = (await bh.registry.getTenant("tenant-a")).store;
      return store;
    };

    it("places tenants in the store under test, each in its own namespace", async () => {
      const store = await open();
      const [a, b] = [await bh.registry.getTenant("tenant-a"), await bh.registry.getTenant("tenant-b")];
      expect(a.store).toBe(store);
      expect(a.isolation).toBe("namespace");
      expect(a.namespace).not.toBe(b.namespace);
      if (standin) expect(store).toBe("pinecone");
    });

    it("keeps tenants apart: another tenant's ids, filters and deletes never reach across", async () => {
      await open();
      await bh.dataManager.upsertDocuments("tenant-a", [
        { id: "shared-id", values: vec(1), metadata: { owner: "A", tags: ["x"] } },
        { id: "a-only", values: vec(2), metadata: { owner: "A" } },
      ]);
      await bh.dataManager.upsertDocuments("tenant-b", [{ id: "shared-id", values: vec(1), metadata: { owner: "B" } }]);
      // B asks for A's ids, by id and by every filter that names A.
      expect((await bh.dataManager.fetchDocuments("tenant-b", ["a-only"])).documents).toEqual([]);
      expect((await bh.dataManager.fetchDocuments("tenant-b", ["shared-id"])).documents.map((d) => d.metadata.owner)).toEqual(["B"]);
      for (const filter of [{ tenant_id: "tenant-a" }, { $or: [{ tenant_id: "tenant-a" }, { owner: "A" }] }, { owner: { $in: ["A", "B"] } }, {}]) {
        const { matches } = await bh.dataManager.queryDocuments("tenant-b", vec(1), { topK: 10, filter });
        expect(matches.every((m) => m.metadata.tenant_id === "tenant-b" && m.metadata.owner === "B")).toBe(true);
      }
      expect((await bh.dataManager.deleteDocuments("tenant-b", ["a-only"])).deleted).toBe(0);
      expect((await bh.dataManager.fetchDocuments("tenant-a", ["a-only", "shared-id"])).documents.map((d) => d.metadata.owner)).toEqual(["A", "A"]);
      // Forging the tenant stamp is refused before anything is written.
      await expect(bh.dataManager.upsertDocuments("tenant-b", [{ id: "forged", values: vec(3), metadata: { tenant_id: "tenant-a" } }])).rejects.toBeInstanceOf(ValidationError);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(2);
    });

    it("filters the same way: $eq on lists, $ne and $nin without the field, numeric ranges, $exists, $or", async () => {
      await open();
      await bh.dataManager.upsertDocuments("tenant-a", [
        { id: "d1", values: vec(1), metadata: { genre: "drama", year: 2019, tags: ["x", "y"] } },
        { id: "d2", values: vec(2), metadata: { genre: "comedy", year: 2021 } },
        { id: "d3", values: vec(3), metadata: { year: 2023, tags: ["y"] } },
        { id: "d4", values: vec(4), metadata: { genre: "drama", draft: true } },
      ]);
      const ids = async (filter: Record<string, unknown>) => (await bh.dataManager.queryDocuments("tenant-a", vec(1), { topK: 10, filter })).matches.map((m) => m.id).sort();
      expect(await ids({ genre: "drama" })).toEqual(["d1", "d4"]);
      expect(await ids({ tags: "y" })).toEqual(["d1", "d3"]);
      expect(await ids({ genre: { $ne: "drama" } })).toEqual(["d2", "d3"]);
      expect(await ids({ genre: { $nin: ["drama", "comedy"] } })).toEqual(["d3"]);
      expect(await ids({ year: { $gte: 2020, $lt: 2023 } })).toEqual(["d2"]);
      expect(await ids({ draft: { $exists: true } })).toEqual(["d4"]);
      expect(await ids({ $or: [{ year: 2019 }, { genre: "comedy" }] })).toEqual(["d1", "d2"]);
      expect(await ids({ tags: { $in: ["x"] }, year: { $lte: 2019 } })).toEqual(["d1"]);
      await expect(ids({ year: { $regex: "20" } })).rejects.toBeInstanceOf(ValidationError);
    });

    it("deletes by metadata filter: only the tenant's own matches, counted against the quota, never with an empty filter", async () => {
      await open();
      await bh.registry.setQuota("tenant-a", { maxDocuments: 4 });
      await bh.dataManager.upsertDocuments("tenant-a", [
        { id: "d1", values: vec(1), metadata: { source: "x", n: 1 } },
        { id: "d2", values: vec(2), metadata: { source: "x", n: 2 } },
        { id: "d3", values: vec(3), metadata: { source: "y" } },
        { id: "d4", values: vec(4), metadata: { tags: ["x", "z"] } },
      ]);
      await bh.dataManager.upsertDocuments("tenant-b", [
        { id: "d1", values: vec(1), metadata: { source: "x" } },
        { id: "b2", values: vec(2), metadata: { source: "x" } },
      ]);
      const left = async (tenant: string) => (await bh.dataManager.queryDocuments(tenant, vec(1), { topK: 10 })).matches.map((m) => m.id).sort();
      const remove = (tenant: string, filter: Record<string, unknown>) => bh.dataManager.deleteDocuments(tenant, { filter });

      // B's filters — its own "x", A's tenant stamp, an $or naming A — reach B's documents only.
      expect((await remove("tenant-b", { tenant_id: "tenant-a" })).deleted).toBe(0);
      expect((await remove("tenant-b", { $or: [{ tenant_id: "tenant-a" }, { source: "y" }] })).deleted).toBe(0);
      expect((await remove("tenant-b", { source: "x" })).deleted).toBe(2);
      expect(await left("tenant-b")).toEqual([]);
      expect(await left("tenant-a")).toEqual(["d1", "d2", "d3", "d4"]);

      // A's own: conditions ANDed, $in, and $eq on a list field (contains).
      expect((await remove("tenant-a", { source: "x", n: { $gte: 2 } })).deleted).toBe(1);
      expect((await remove("tenant-a", { tags: "z" })).deleted).toBe(1);
      expect(await left("tenant-a")).toEqual(["d1", "d3"]);

      // Refused whole, naming the field, nothing deleted: empty filters (at any level), no filter, bad or huge ones.
      const refusals: [unknown, string][] = [
        [{}, "filter"],
        [{ $or: [{}, { source: "y" }] }, "filter.$or[0]"],
        [{ $and: [{ source: "x" }, {}] }, "filter.$and[1]"],
        [undefined, "filter"],
        [["d1"], "filter"],
        [{ source: "x\u0000" }, "filter.source"],
        [{ $or: Array.from({ length: 300 }, (_, i) => ({ n: i })) }, "filter.$or[128]"], // 256 conditions: each group and its field count,
        [{ source: { $regex: "x" } }, "filter.source.$regex"],
      ];
      for (const [filter, field] of refusals) {
        const refused = await remove("tenant-a", filter as Record<string, unknown>).catch((e: unknown) => e);
        expect(refused, JSON.stringify(filter)?.slice(0, 80)).toBeInstanceOf(ValidationError);
        expect((refused as ValidationError).field).toBe(field);
      }
      expect(await left("tenant-a")).toEqual(["d1", "d3"]);

      // The quota counted what the filter deleted: two more fit (4), a third does not.
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "d5", values: vec(5) }, { id: "d6", values: vec(6) }]);
      await expect(bh.dataManager.upsertDocuments("tenant-a", [{ id: "d7", values: vec(7) }])).rejects.toBeInstanceOf(QuotaExceededError);
    });

    it("ranks by the index's metric with the same scores", async () => {
      await open();
      await bh.dataManager.upsertDocuments("tenant-a", [
        { id: "near", values: [1, 0, 0, 0] },
        { id: "far", values: [0, 1, 0, 0] },
      ]);
      const { matches } = await bh.dataManager.queryDocuments("tenant-a", [1, 0.1, 0, 0], { topK: 2 });
      expect(matches.map((m) => m.id)).toEqual(["near", "far"]);
      expect(matches[0]!.score).toBeCloseTo(1 / Math.sqrt(1.01), 5);
    });

    it("enforces the document quota whole-batch, counts re-upserts once and frees quota on delete", async () => {
      await open();
      await bh.registry.setQuota("tenant-a", { maxDocuments: 3 });
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "1", values: vec(1) }, { id: "2", values: vec(2) }]);
      await expect(bh.dataManager.upsertDocuments("tenant-a", [{ id: "3", values: vec(3) }, { id: "4", values: vec(4) }])).rejects.toBeInstanceOf(QuotaExceededError);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(2); // nothing of the refused batch
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "1", values: vec(5) }, { id: "2", values: vec(6) }, { id: "3", values: vec(7) }]);
      await bh.dataManager.deleteDocuments("tenant-a", ["1"]);
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "4", values: vec(4) }]);
      expect(await bh.dataManager.countDocuments("tenant-a")).toBe(3);
      // The other tenant's quota is its own.
      await bh.dataManager.upsertDocuments("tenant-b", [{ id: "1", values: vec(1) }, { id: "2", values: vec(2) }, { id: "3", values: vec(3) }, { id: "4", values: vec(4) }]);
    });

    it("counts queries against the daily quota and refuses past it, for that tenant only", async () => {
      await open();
      await bh.registry.setQuota("tenant-a", { maxDailyQueries: 2 });
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "1", values: vec(1) }]);
      await bh.dataManager.queryDocuments("tenant-a", vec(1));
      await bh.dataManager.queryDocuments("tenant-a", vec(1));
      await expect(bh.dataManager.queryDocuments("tenant-a", vec(1))).rejects.toMatchObject({ quota: "maxDailyQueries" });
      await bh.dataManager.queryDocuments("tenant-b", vec(1));
    });

    it("backs a tenant up and restores it, into itself and into another id", async () => {
      await open();
      const dir = await mkdtemp(join(tmpdir(), "bh-conf-"));
      try {
        await bh.dataManager.upsertDocuments("tenant-a", Array.from({ length: 250 }, (_, i) => ({ id: `d${String(i).padStart(3, "0")}`, values: vec(i), metadata: { i } })));
        const file = join(dir, "a.bhb");
        const summary = await bh.backupTenant("tenant-a", file);
        expect(summary.documents).toBe(250);
        await bh.dataManager.deleteDocuments("tenant-a", ["d000", "d001"]);
        await bh.dataManager.upsertDocuments("tenant-a", [{ id: "later", values: vec(9) }]);
        expect((await bh.restoreTenant(file)).documents).toBe(250);
        expect(await bh.dataManager.countDocuments("tenant-a")).toBe(250);
        expect((await bh.dataManager.fetchDocuments("tenant-a", ["d000", "later"])).documents.map((d) => d.id)).toEqual(["d000"]);
        await bh.registry.registerTenant("tenant-c", "C", TenantTier.PRO);
        await bh.restoreTenant(file, { into: "tenant-c" });
        const [doc] = (await bh.dataManager.fetchDocuments("tenant-c", ["d042"])).documents;
        expect(doc!.metadata).toEqual({ i: 42, tenant_id: "tenant-c" });
        expect(await bh.dataManager.countDocuments("tenant-a")).toBe(250);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it("erases a tenant and proves nothing of it is left in the store", async () => {
      await open();
      await bh.dataManager.upsertDocuments("tenant-a", [{ id: "1", values: vec(1) }, { id: "2", values: vec(2) }]);
      await bh.dataManager.upsertDocuments("tenant-b", [{ id: "1", values: vec(1) }]);
      const report = await bh.eraseTenant("tenant-a", "test");
      expect(report.verified).toBe(true);
      expect(Object.values(report.remaining).every((n) => n === 0)).toBe(true);
      if (standin) {
        expect(report.remaining["pinecone/records"]).toBe(0);
        const namespaces = [...standin.indexes.values()].flatMap((i) => [...i.namespaces.keys()]);
        expect(namespaces).not.toContain("tenant-a");
        expect(namespaces).toContain("tenant-b");
      }
      expect((await bh.dataManager.fetchDocuments("tenant-b", ["1"])).documents).toHaveLength(1);
    });

    it("gives an enterprise tenant an index of its own", async () => {
      await open();
      const t = await bh.registry.registerTenant("tenant-e", "E", TenantTier.ENTERPRISE);
      expect(t.isolation).toBe("dedicated-index");
      await bh.dataManager.upsertDocuments("tenant-e", [{ id: "1", values: vec(1) }]);
      expect((await bh.dataManager.queryDocuments("tenant-e", vec(1))).matches.map((m) => m.id)).toEqual(["1"]);
      if (standin) expect([...standin.indexes.keys()]).toContain(`bh-${t.placement.indexId}`);
      await bh.eraseTenant("tenant-e", "test");
      if (standin) expect([...standin.indexes.keys()]).not.toContain(`bh-${t.placement.indexId}`);
    });

    it("passes its readiness checks", async () => {
      await open();
      const results = await bh.readiness();
      const failed = results.filter((r) => !r.passed && r.category === "Security" && !/probe/.test(r.name));
      expect(failed.map((r) => `${r.name}: ${r.detail}`)).toEqual([]);
      if (standin) expect(results.some((r) => r.name.startsWith("Store pinecone is reachable") && r.passed)).toBe(true);
    });
  });
}
