// Tenant A sends a query whose filter is within Bulkhead's limits but over Pinecone's 2 MB request size.
// What happens to the next Pinecone calls — tenant B's?
import { TenantTier } from "../src/config.js";
import { open, vec } from "./common.ts";
const { bh, standin, close } = await open({ pinecone: { timeoutMs: 1500, maxRetries: 1 } });
try {
  const UNL = { maxDocuments: 1e6, requestsPerSecond: 1e4, burst: 1e4, maxDailyQueries: 1e6, maxConcurrent: 64 };
  await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNL });
  await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO, { quota: UNL });
  await bh.dataManager.upsertDocuments("tenant-b", [{ id: "b1", values: vec(1) }]);
  const huge = { $or: Array.from({ length: 8 }, (_, k) => ({ [`f${k}`]: { $in: Array.from({ length: 1000 }, (_, i) => `v${i}-${"x".repeat(300)}`) } })) };
  for (let round = 0; round < 3; round++) {
    let t = performance.now();
    const a = await bh.dataManager.queryDocuments("tenant-a", vec(1), { filter: huge }).then(() => "ok", (e) => `${e.status} ${e.message.slice(0, 70)}`);
    console.log(`A huge filter: ${a} (${(performance.now() - t).toFixed(0)} ms)`);
    for (const op of ["fetch", "query", "fetch"]) {
      t = performance.now();
      const b = await (op === "fetch" ? bh.dataManager.fetchDocuments("tenant-b", ["b1"]) : bh.dataManager.queryDocuments("tenant-b", vec(1))).then(() => "ok", (e) => `${e.status} ${e.message.slice(0, 70)}`);
      console.log(`  then B ${op}: ${b} (${(performance.now() - t).toFixed(0)} ms)`);
    }
  }
} finally { await close(); }
