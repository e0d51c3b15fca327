import { TenantTier } from "../src/config.js";
import { open, nsRecords, vec, sleep } from "./common.ts";
const { bh, standin, close } = await open();
const t0 = Date.now();
const mark = (s: string) => console.log(Date.now() - t0, s, standin.requests.splice(0).join(" | "));
try {
  await bh.registry.registerTenant("tenant-z", "Z", TenantTier.PRO);
  await bh.dataManager.upsertDocuments("tenant-z", [{ id: "z", values: vec(1) }]);
  await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
  mark("setup");
  standin.consistencyDelayMs = 2000;
  await bh.dataManager.upsertDocuments("tenant-a", [{ id: "secret-doc", values: vec(2), metadata: { pii: "alice@example.com" } }]);
  mark("upsert");
  const report = await bh.eraseTenant("tenant-a", "attacker-test");
  mark("erase");
  console.log("erasure report:", JSON.stringify({ verified: report.verified, remaining: report.remaining["pinecone/records"] }));
  await sleep(2200);
  console.log("records of tenant-a after verified erasure:", JSON.stringify(nsRecords(standin, "tenant-a")));
  for (const [n, ix] of standin.indexes) console.log(n, [...ix.namespaces.keys()]);
} finally { await close(); }
