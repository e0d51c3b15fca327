// Erasure reports verified while the tenant's acknowledged writes land in Pinecone afterwards.
import { TenantTier } from "../src/config.js";
import { open, nsRecords, vec, sleep } from "./common.ts";
const { bh, standin, close } = await open();
try {
  await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
  await bh.registry.registerTenant("tenant-z", "Z", TenantTier.PRO); // index exists with something in it
  await bh.dataManager.upsertDocuments("tenant-z", [{ id: "z", values: vec(1) }]);
  standin.consistencyDelayMs = 300;
  await bh.dataManager.upsertDocuments("tenant-a", [{ id: "secret-doc", values: vec(2), metadata: { pii: "alice@example.com" } }]);
  const report = await bh.eraseTenant("tenant-a", "attacker-test");
  console.log("erasure report:", JSON.stringify({ verified: report.verified, remaining: report.remaining["pinecone/records"], proofError: report.proofError }));
  await sleep(500);
  console.log("records of tenant-a in Pinecone after verified erasure:", JSON.stringify(nsRecords(standin, "tenant-a")).slice(0, 200));
  standin.consistencyDelayMs = 0;
  // does anything clean it later? re-run reconcile (as at start-up)
  await bh.registry.reconcileCells();
  console.log("after a later reconcile:", nsRecords(standin, "tenant-a").length);
  // Variant: the namespace existed before (settled), one more write pending at erasure time
  await bh.registry.registerTenant("tenant-q", "Q", TenantTier.PRO);
  await bh.dataManager.upsertDocuments("tenant-q", [{ id: "old", values: vec(3) }]);
  standin.consistencyDelayMs = 300;
  await bh.dataManager.upsertDocuments("tenant-q", [{ id: "new", values: vec(4) }]);
  const r2 = await bh.eraseTenant("tenant-q", "attacker-test");
  await sleep(500);
  console.log("variant (namespace existed): verified", r2.verified, "remaining", r2.remaining["pinecone/records"], "left after:", nsRecords(standin, "tenant-q").map((r) => r.id));
} finally { await close(); }
