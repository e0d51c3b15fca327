// Ids Bulkhead accepts (<= 512 bytes) make the GET /vectors/fetch URL (100 ids per request) too long.
// Every upsert fetches its ids first, so such a batch can never be written; a move out of (or into) Pinecone
// reads pages with the same fetch.
import { TenantTier } from "../src/config.js";
import { open, vec } from "./common.ts";
const { bh, standin, close } = await open({ tierStores: { pro: "pinecone" } });
try {
  const UNL = { maxDocuments: 1e6, requestsPerSecond: 1e4, burst: 1e4, maxDailyQueries: 1e6 };
  await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNL });
  const id = (i: number, len: number) => `https://docs.example.com/${"section/".repeat(40)}`.slice(0, len - 6) + String(i).padStart(6, "0");
  for (const len of [100, 150, 200, 512]) {
    const docs = Array.from({ length: 100 }, (_, i) => ({ id: id(i, len), values: vec(i) }));
    const r = await bh.dataManager.upsertDocuments("tenant-a", docs).then(() => "ok", (e) => `${e.status} ${e.code}: ${e.message}`);
    console.log(`100 ids of ${len} bytes:`, r);
  }
  // 1 id of 512 bytes with spaces/unicode (percent-encoding triples it)
  const wide = "é".repeat(256);
  console.log("one 512-byte id of 'é':", await bh.dataManager.upsertDocuments("tenant-a", [{ id: wide, values: vec(1) }]).then(() => "ok", (e) => `${e.status} ${e.code}`));
  console.log("fetch of 100 stored 100-byte ids:", await bh.dataManager.fetchDocuments("tenant-a", Array.from({ length: 100 }, (_, i) => id(i, 100))).then((r) => `${r.documents.length} docs`, (e) => `${e.status} ${e.code}`));
  // a tenant at home with 150-byte ids, moved into Pinecone, then back
  await bh.registry.registerTenant("tenant-h", "H", TenantTier.FREE, { quota: UNL });
  await bh.dataManager.upsertDocuments("tenant-h", Array.from({ length: 150 }, (_, i) => ({ id: id(i, 200), values: vec(i) })));
  const m1 = await bh.registry.moveTenant("tenant-h", { store: "pinecone" }).then((t) => `ok -> ${t.store}`, (e) => `${e.status} ${e.code}: ${e.message}`);
  console.log("move home -> pinecone:", m1);
  const m2 = await bh.registry.moveTenant("tenant-h", { store: "home" }).then((t) => `ok -> ${t.store}`, (e) => `${e.status} ${e.code}: ${e.message}`);
  console.log("move pinecone -> home:", m2);
  console.log("move status:", JSON.stringify(await bh.registry.getMove?.("tenant-h").catch((e: Error) => e.message)));
  const fails = standin.requests.filter((r) => r.includes("fetch")).length;
  console.log("fetch requests made:", fails);
} finally { await close(); }
