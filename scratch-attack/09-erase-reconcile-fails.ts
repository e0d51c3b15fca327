// Erasure while Pinecone answers 503 to the namespace delete: what is reported, audited and left?
import { TenantTier } from "../src/config.js";
import { open, nsRecords, vec } from "./common.ts";
const { bh, standin, close } = await open();
try {
  await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
  await bh.dataManager.upsertDocuments("tenant-a", [{ id: "pii", values: vec(1), metadata: { email: "alice@example.com" } }]);
  standin.failNext(5, 503, "/namespaces/");
  const r = await bh.eraseTenant("tenant-a", "ops").then((x) => `report verified=${x.verified}`, (e) => `threw ${e.code}: ${e.message}`);
  console.log("erase:", r);
  standin.failures.length = 0;
  console.log("tenant still registered?", await bh.registry.getTenant("tenant-a").then(() => "yes", (e) => e.code));
  console.log("records left in Pinecone:", nsRecords(standin, "tenant-a").length);
  console.log("erase again:", await bh.eraseTenant("tenant-a", "ops").then((x) => `verified=${x.verified}`, (e) => `threw ${e.code}`));
  const audit = await bh.audit.list(100);
  console.log("audit entries tenant.erase:", JSON.stringify(audit).match(/tenant\.erase/g)?.length ?? 0);
} finally { await close(); }
