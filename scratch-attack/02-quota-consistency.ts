// Quota drift under Pinecone's eventual consistency: delete(x) then upsert(x) at once.
// The delete decrements the counter; the upsert's "which ids exist" fetch still sees x (the delete
// is not visible yet) so the re-added x is not counted. Repeat: counter goes to 0, data stays.
import { TenantTier } from "../src/config.js";
import { open, nsRecords, vec, sleep } from "./common.ts";
const { bh, standin, close } = await open();
try {
  await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO, { quota: { maxDocuments: 20, requestsPerSecond: 1000, burst: 1000 } });
  const dm = bh.dataManager;
  await dm.upsertDocuments("tenant-b", Array.from({ length: 20 }, (_, i) => ({ id: `d${i}`, values: vec(i) })));
  console.log("filled to quota; one more:", await dm.upsertDocuments("tenant-b", [{ id: "extra", values: vec(99) }]).then(() => "ok", (e) => e.code));
  standin.consistencyDelayMs = 150;
  for (let i = 0; i < 20; i++) {
    await dm.deleteDocuments("tenant-b", [`d${i}`]);
    await dm.upsertDocuments("tenant-b", [{ id: `d${i}`, values: vec(i) }]);
  }
  await sleep(300);
  console.log("after 20 delete+upsert pairs: stored", nsRecords(standin, "tenant-b").length);
  standin.consistencyDelayMs = 0;
  let extra = 0;
  for (let i = 0; i < 40; i++) {
    const ok = await dm.upsertDocuments("tenant-b", [{ id: `x${i}`, values: vec(100 + i) }]).then(() => true, () => false);
    if (!ok) break;
    extra++;
  }
  console.log(`then ${extra} new documents accepted; stored now ${nsRecords(standin, "tenant-b").length} with maxDocuments 20`);

  // variant 2: the same delete twice while it is not yet visible
  await bh.registry.registerTenant("tenant-c", "C", TenantTier.PRO, { quota: { maxDocuments: 5, requestsPerSecond: 1000, burst: 1000 } });
  await dm.upsertDocuments("tenant-c", Array.from({ length: 5 }, (_, i) => ({ id: `c${i}`, values: vec(i) })));
  standin.consistencyDelayMs = 150;
  const r1 = await dm.deleteDocuments("tenant-c", ["c0"]);
  const r2 = await dm.deleteDocuments("tenant-c", ["c0"]);
  console.log("double delete of c0 reported:", r1.deleted, r2.deleted);
  await sleep(300);
  standin.consistencyDelayMs = 0;
  let extraC = 0;
  for (let i = 0; i < 10; i++) { if (!(await dm.upsertDocuments("tenant-c", [{ id: `n${i}`, values: vec(i) }]).then(() => true, () => false))) break; extraC++; }
  console.log(`tenant-c: ${extraC} new accepted, stored ${nsRecords(standin, "tenant-c").length} with maxDocuments 5`);
} finally { await close(); }
