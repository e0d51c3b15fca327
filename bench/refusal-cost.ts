/**
 * What one refused operation costs: a tenant over its rate limit sends 20,000 queries in a row
 * (embedded database, in-memory limiter); wall and CPU time per refusal, three rounds.
 *   npx tsx bench/refusal-cost.ts [--out bench/results/refusal-cost.json]
 */
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { createBulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";

const { values: args } = parseArgs({ options: { out: { type: "string", default: "bench/results/refusal-cost.json" } } });
const N = 20_000;

const bh = await createBulkhead({ database: "memory://", env: {}, config: { dimension: 384 } });
try {
  await bh.registry.registerTenant("aggressor", "Aggressor", TenantTier.FREE);
  const vector = Array.from({ length: 384 }, (_, i) => Math.sin(i) + 1.1);
  // Spend the tenant's limit first.
  for (let i = 0; i < 40; i++) await bh.dataManager.queryDocuments("aggressor", vector, { topK: 10 }).catch(() => {});
  const rounds = [];
  for (let round = 1; round <= 3; round++) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let refused = 0;
    for (let i = 0; i < N; i++) await bh.dataManager.queryDocuments("aggressor", vector, { topK: 10 }).catch(() => refused++);
    const wallUs = ((performance.now() - t0) * 1000) / N;
    const cpu = process.cpuUsage(cpu0);
    rounds.push({ round, attempts: N, refused, wallUsPerAttempt: Math.round(wallUs * 10) / 10, cpuUsPerAttempt: Math.round(((cpu.user + cpu.system) / N) * 10) / 10 });
    console.error(`round ${round}: ${refused}/${N} refused, ${rounds.at(-1)!.wallUsPerAttempt} µs wall, ${rounds.at(-1)!.cpuUsPerAttempt} µs CPU per attempt`);
  }
  writeFileSync(args.out!, JSON.stringify({ benchmark: "refusal-cost", date: new Date().toISOString(), node: process.version, rounds }, null, 2) + "\n");
} finally {
  await bh.close();
}
