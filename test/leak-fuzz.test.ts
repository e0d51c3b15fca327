import { afterAll, describe, expect, it } from "vitest";
import { buildServer } from "../src/server/app.js";
import { BACKENDS, dropTestSchemas, pineconeStandin } from "./backends.js";
import { describeFailures, FUZZ_CONFIG, runLeakFuzz } from "./fuzz-leak.js";

afterAll(dropTestSchemas);

// The seed is printed and can be pinned to replay a failure: LEAK_FUZZ_SEED=1234 npx vitest run test/leak-fuzz.test.ts
const SEED = Number(process.env.LEAK_FUZZ_SEED ?? 20261130);
const OPERATIONS = Number(process.env.LEAK_FUZZ_OPERATIONS ?? 3000);
// Four walks at once over disjoint tenants, so that tenants' operations interleave on the pool;
// LEAK_FUZZ_CONCURRENCY=1 gives one walk whose every operation the seed fixes.
const CONCURRENCY = Number(process.env.LEAK_FUZZ_CONCURRENCY ?? 4);

// Every tenant in Pinecone too (its stand-in): the same walk, the same model.
for (const backend of [...BACKENDS, pineconeStandin]) {
  describe(`${backend.name}: leak fuzzer`, () => {
    it(`${OPERATIONS} random operations (${CONCURRENCY} walks at once) of 42 tenants with colliding ids match the model, with no row of another tenant ever returned`, async () => {
      const warnings: string[] = [];
      const { bulkhead: bh } = await backend.open({ config: FUZZ_CONFIG, warn: (m) => warnings.push(m) });
      // A quarter of the data calls go through the HTTP service with the tenant's own key.
      const app = await buildServer(bh, { logDestination: false });
      try {
        const baseUrl = await app.listen({ host: "127.0.0.1", port: 0 });
        const report = await runLeakFuzz(bh, { seed: SEED, operations: OPERATIONS, tenants: 42, annIndexThreshold: FUZZ_CONFIG.annIndexThreshold, warnings, http: { baseUrl }, concurrency: CONCURRENCY });
        console.log(
          `leak fuzz ${backend.name}: seed ${report.seed}, ${report.operations} operations, ${report.checks} checks, ` +
            `leaks ${report.leaks}, mismatches ${report.mismatches}, errors ${report.errors}, moves ${report.movesCompleted}, erasures ${report.erasures}, ` +
            `ANN tenants ${report.annTenants}, HTTP calls ${report.httpCalls}, ${(report.durationMs / 1000).toFixed(1)} s ${JSON.stringify(report.byOperation)}`,
        );
        const failures = describeFailures(report);
        expect(report.leaks, failures).toBe(0);
        expect(report.mismatches, failures).toBe(0);
        expect(report.errors, failures).toBe(0);
        // The walk must actually have exercised what it claims to.
        expect(report.checks).toBeGreaterThan(OPERATIONS * 3);
        expect(report.movesCompleted).toBeGreaterThan(0);
        expect(report.erasures).toBeGreaterThan(0);
        expect(report.annTenants).toBeGreaterThan(0);
        expect(report.httpCalls).toBeGreaterThan(OPERATIONS / 10);
      } finally {
        await app.close();
        await bh.close();
      }
    }, 300_000);
  });
}

describe("leak fuzzer: its checks can fail", () => {
  it("reports a leak when the data manager returns another tenant's row, and a mismatch when it loses one", async () => {
    const { bulkhead: bh } = await BACKENDS[0]!.open({ config: FUZZ_CONFIG });
    try {
      const real = bh.dataManager;
      let calls = 0;
      // A broken data manager: every 50th fetch gains a row of another tenant (same id, its tenant_id), every 60th loses its first row.
      const broken = Object.create(real) as typeof real;
      broken.fetchDocuments = async (tenantId, ids) => {
        const res = await real.fetchDocuments(tenantId, ids);
        calls++;
        if (calls % 50 === 0) return { ...res, documents: [...res.documents, { id: ids[0]!, values: [], metadata: { tenant_id: "someone-else" } }] };
        if (calls % 60 === 0 && res.documents.length > 0) return { ...res, documents: res.documents.slice(1) };
        return res;
      };
      const report = await runLeakFuzz({ ...bh, dataManager: broken }, { seed: 7, operations: 600, tenants: 40, annIndexThreshold: FUZZ_CONFIG.annIndexThreshold });
      expect(report.leaks).toBeGreaterThan(0);
      expect(report.mismatches).toBeGreaterThan(0);
      expect(report.failures[0]!.recent.length).toBeGreaterThan(0);
      expect(describeFailures(report)).toContain("seed 7 walk 0 op #");
    } finally {
      await bh.close();
    }
  }, 120_000);
});
