// Tenant A lives in Pinecone, tenant B at home (pgvector). Pinecone is slow (delayMs, below the deadline).
// Every Pinecone call runs inside a home-catalogue transaction: on the embedded database (one connection)
// B's home queries wait behind A's Pinecone calls.
import { TenantTier } from "../src/config.js";
import { open, vec, sleep } from "./common.ts";
const { bh, standin, close } = await open({ tierStores: { pro: "pinecone" }, pinecone: { timeoutMs: 5000 } });
try {
  const UNL = { maxDocuments: 1e6, requestsPerSecond: 1e4, burst: 1e4, maxDailyQueries: 1e6 };
  await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNL });
  await bh.registry.registerTenant("tenant-b", "B", TenantTier.FREE, { quota: UNL });
  console.log("A in", (await bh.registry.getTenant("tenant-a")).store, "; B in", (await bh.registry.getTenant("tenant-b")).store);
  await bh.dataManager.upsertDocuments("tenant-a", [{ id: "a", values: vec(1) }]);
  await bh.dataManager.upsertDocuments("tenant-b", [{ id: "b", values: vec(1) }]);
  const bLatency = async (n: number) => {
    const ts: number[] = [];
    for (let i = 0; i < n; i++) { const t = performance.now(); await bh.dataManager.queryDocuments("tenant-b", vec(i)); ts.push(performance.now() - t); }
    ts.sort((x, y) => x - y);
    return { p50: ts[Math.floor(n / 2)]!.toFixed(1), max: ts.at(-1)!.toFixed(1) };
  };
  console.log("B alone:", await bLatency(20));
  standin.delayMs = 500;
  let stop = false;
  const flood = Array.from({ length: 4 }, async () => { while (!stop) await bh.dataManager.queryDocuments("tenant-a", vec(2)).catch(() => sleep(10)); });
  await sleep(100);
  console.log("B while A's Pinecone calls take 500 ms (4 in flight):", await bLatency(10));
  stop = true; await Promise.all(flood);
  standin.delayMs = 0;
} finally { await close(); }
