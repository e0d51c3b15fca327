// Quota bypass: a batch Bulkhead splits into several Pinecone requests whose size estimate is too low:
// the second request is refused (413), the first stays written, nothing is counted.
import { TenantTier } from "../src/config.js";
import { open, nsRecords } from "./common.ts";
const DIM = 384;
const { bh, standin, close } = await open({ dimension: DIM });
try {
  await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO, { quota: { maxDocuments: 500, requestsPerSecond: 1000, burst: 1000 } });
  const light = (i: number) => ({ id: `l${i}-${Math.random().toString(36).slice(2, 6)}`, values: Array.from({ length: DIM }, (_, k) => (k === 0 ? 1 : 0)) });
  // every value but one: 24 JSON characters (+ comma) -> the 24-bytes-per-number estimate is short by ~1 byte per value, plus the envelope
  const heavy = (i: number) => ({ id: `h${i}`, values: Array.from({ length: DIM }, (_, k) => (k === 0 ? 1 : -1.2345678901234567e-300)) });
  for (let round = 0; round < 3; round++) {
    const batch = [...Array.from({ length: 219 }, (_, i) => light(round * 1000 + i)), ...Array.from({ length: 230 }, (_, i) => heavy(round * 1000 + i))];
    const r = await bh.dataManager.upsertDocuments("tenant-b", batch).then(() => "ok", (e) => `${e.constructor.name} ${e.status} ${e.code}: ${e.message}`);
    console.log(`round ${round}:`, r);
    console.log(`  stored in Pinecone: ${nsRecords(standin, "tenant-b").length}, quota maxDocuments 500, bulkhead count:`, await bh.dataManager.countDocuments("tenant-b"));
  }
  console.log("requests:", standin.requests.filter((r) => r.includes("upsert")).length, "upserts");
  // can the tenant still write? (counter)
  const r = await bh.dataManager.upsertDocuments("tenant-b", [light(99999)]).then(() => "ok", (e) => `${e.code}: ${e.message}`);
  console.log("single write afterwards:", r);
} finally { await close(); }
