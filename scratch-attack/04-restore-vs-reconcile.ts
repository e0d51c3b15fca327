// A restore stages into "<tenant>.restore"; any reconcile of the Pinecone store meanwhile (here: another
// tenant's deletion) deletes that unclaimed namespace. The restore then clears the live namespace, copies
// what is left of the staging namespace and reports success.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TenantTier } from "../src/config.js";
import { open, nsRecords, vec, sleep } from "./common.ts";
const { bh, standin, close } = await open({ pinecone: { timeoutMs: 5000 } });
try {
  const UNL = { maxDocuments: 1e6, requestsPerSecond: 1e4, burst: 1e4, maxDailyQueries: 1e6 };
  await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNL });
  await bh.registry.registerTenant("tenant-c", "C", TenantTier.PRO);
  const N = 3000;
  for (let i = 0; i < N; i += 500) await bh.dataManager.upsertDocuments("tenant-a", Array.from({ length: 500 }, (_, k) => ({ id: `a${String(i + k).padStart(5, "0")}`, values: vec(i + k) })));
  const file = join(await mkdtemp(join(tmpdir(), "bh-")), "a.backup");
  await bh.backupTenant("tenant-a", file);
  console.log("backed up", N, "; in Pinecone:", nsRecords(standin, "tenant-a").length);
  standin.delayMs = 40; // a somewhat slow Pinecone, so staging takes a while
  const restore = bh.restoreTenant(file).then((r) => `restored: ${JSON.stringify(r.documents)}`, (e) => `restore failed: ${e.code} ${e.message}`);
  // wait until staging has begun
  for (let i = 0; i < 200 && nsRecords(standin, "tenant-a.restore").length === 0; i++) await sleep(20);
  console.log("staging has", nsRecords(standin, "tenant-a.restore").length, "records; deleting tenant-c now (reconciles the Pinecone store)");
  await bh.registry.deleteTenant("tenant-c");
  console.log(await restore);
  standin.delayMs = 0;
  console.log("tenant-a in Pinecone after the restore:", nsRecords(standin, "tenant-a").length, "of", N);
  console.log("countDocuments:", await bh.dataManager.countDocuments("tenant-a"));
} finally { await close(); }
