/**
 * bench:text-search — how full-text search of a tenant's text chunks scales with the tenant's size
 * on the PostgreSQL server, and what row-level security costs it, with the references in the same
 * run: the same statement on the same table as a superuser (no RLS, no tenant context), without
 * and with a GIN index on the chunks' full-text vectors (which RLS keeps a tenant's search from
 * using: `@@` is not leakproof).
 *
 * Tenants of 1,000 / 10,000 / 100,000 chunks (one paragraph of ~60 words each, drawn from a
 * 5,000-word vocabulary with Zipf-like frequencies) are loaded through `bh.text.ingestDocuments`;
 * then each gets 200 two-word queries, interleaved in alternating order between Bulkhead and the
 * references.
 *
 *   npm run bench:text-search
 *   npm run bench:text-search -- --sizes 1000,10000
 */
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import pg from "pg";
import { openBulkhead } from "../src/bulkhead.js";
import { TenantTier } from "../src/config.js";
import { rng } from "./dataset.js";

const { values: args } = parseArgs({
  options: {
    sizes: { type: "string", default: "1000,10000,100000" },
    queries: { type: "string", default: "200" },
    out: { type: "string", default: "bench/results/text-search-postgres.json" },
  },
});
const SIZES = args.sizes.split(",").map(Number);
const Q = Number(args.queries);
const schema = "bench_text_search";
const log = (m: string) => process.stderr.write(`${m}\n`);
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)]!;

const { DATABASE_URL: url, DATABASE_OWNER_URL: ownerUrl, DATABASE_DATA_URL: dataUrl } = process.env;
const superUrl = process.env.BENCH_SUPERUSER_URL ?? "postgres://postgres@127.0.0.1:5432/bulkhead";
if (!url?.startsWith("postgres") || !ownerUrl) {
  log('bench:text-search runs against the PostgreSQL server: set DATABASE_URL, DATABASE_DATA_URL and DATABASE_OWNER_URL (eval "$(bash scripts/setup-postgres.sh)")');
  process.exit(2);
}

// A vocabulary of pronounceable words; word i drawn with weight 1 / (i + 10) (Zipf-like).
const random = rng(5);
const syllables = ["ka", "lo", "mi", "ra", "te", "su", "no", "vi", "de", "pa", "zo", "ri", "gu", "be", "fa", "ho"];
const vocabulary = Array.from({ length: 5_000 }, (_, i) => {
  let w = "";
  for (let n = i + 16; n > 0; n = Math.floor(n / 16)) w += syllables[n % 16];
  return w;
});
const weights = vocabulary.map((_, i) => 1 / (i + 10));
const total = weights.reduce((a, b) => a + b, 0);
const cumulative = weights.map(((sum) => (w: number) => (sum += w / total))(0));
const word = () => {
  const r = random();
  let lo = 0;
  let hi = cumulative.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid]! < r) lo = mid + 1;
    else hi = mid;
  }
  return vocabulary[lo]!;
};
const paragraph = () => `${Array.from({ length: 60 }, word).join(" ")}.`;

async function main() {
  const su = new pg.Client({ connectionString: superUrl });
  await su.connect();
  await su.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  const { bulkhead: bh } = await openBulkhead({ database: url, databaseOwnerUrl: ownerUrl, databaseDataUrl: dataUrl, env: {}, warn: () => {}, config: { schema } });
  const unlimited = { requestsPerSecond: 100_000, burst: 100_000, maxConcurrent: 64, maxDailyQueries: 1_000_000, maxTextChunks: 10_000_000, requestBytesPerSecond: 1_073_741_824 };
  const results: { size: number; tenant: string; ingestSeconds: number; chunksPerSecond: number }[] = [];
  for (const size of SIZES) {
    const tenant = `t-${size}`;
    await bh.registry.registerTenant(tenant, tenant, TenantTier.PRO, { quota: unlimited });
    const started = performance.now();
    for (let i = 0; i < size; i += 100) {
      await bh.text.ingestDocuments(tenant, Array.from({ length: Math.min(100, size - i) }, (_, j) => ({ id: `doc-${i + j}`, text: paragraph() })));
      if ((i + 100) % 10_000 === 0) log(`  ${tenant}: ${i + 100} documents (${round((performance.now() - started) / 1000, 1)} s)`);
    }
    const ingestSeconds = round((performance.now() - started) / 1000, 1);
    log(`${tenant}: ${size} chunks stored in ${ingestSeconds} s`);
    results.push({ size, tenant, ingestSeconds, chunksPerSecond: round(size / ingestSeconds, 0) });
  }
  // Fresh statistics, as autovacuum would have gathered (this machine runs without).
  await su.query(`ANALYZE ${schema}.text_chunks`);

  // Queries of two mid-frequency words (ranks 50–500): they match a few percent of a tenant's chunks.
  const queries = Array.from({ length: Q }, () => `${vocabulary[50 + Math.floor(random() * 450)]} ${vocabulary[50 + Math.floor(random() * 450)]}`);
  const raw = `SELECT document_id, position, ts_rank_cd(tsv, q) AS score FROM ${schema}.text_chunks, websearch_to_tsquery('english', $2) AS q
                WHERE tenant_id = $1 AND tsv @@ q ORDER BY score DESC LIMIT 10`;
  const measure = async () => {
    const out: Record<string, { bulkhead: number[]; raw: number[] }> = {};
    for (const r of results) out[r.tenant] = { bulkhead: [], raw: [] };
    for (const [i, q] of queries.entries()) {
      for (const r of i % 2 ? [...results].reverse() : results) {
        const sides: ["bulkhead" | "raw", () => Promise<unknown>][] = [
          ["bulkhead", () => bh.text.searchText(r.tenant, q, { topK: 10 })],
          ["raw", () => su.query(raw, [r.tenant, q])],
        ];
        for (const [name, run] of i % 2 ? sides.reverse() : sides) {
          const t0 = performance.now();
          await run();
          out[r.tenant]![name].push(performance.now() - t0);
        }
      }
    }
    return out;
  };
  const plain = await measure();
  await su.query(`CREATE INDEX bench_tsv_gin ON ${schema}.text_chunks USING gin (tsv)`);
  await su.query(`ANALYZE ${schema}.text_chunks`);
  const gin = await measure();
  const explain = async () => (await su.query<{ "QUERY PLAN": string }>(`EXPLAIN ${raw.replace("$1", `'t-${SIZES.at(-1)}'`).replace("$2", `'${queries[0]}'`)}`)).rows.map((r) => r["QUERY PLAN"]);
  const planWithGin = await explain();
  await su.query(`DROP INDEX ${schema}.bench_tsv_gin`);
  const planWithoutIndex = await explain();
  const p = (xs: number[]) => ({ p50: round(quantile(xs, 0.5)), p95: round(quantile(xs, 0.95)) });
  const table = results.map((r) => ({
    ...r,
    bulkhead: p([...plain[r.tenant]!.bulkhead, ...gin[r.tenant]!.bulkhead]),
    rawSqlNoIndex: p(plain[r.tenant]!.raw),
    rawSqlGinIndex: p(gin[r.tenant]!.raw),
    bulkheadWithGinPresent: p(gin[r.tenant]!.bulkhead),
  }));
  for (const t of table) log(`${t.size} chunks: Bulkhead p50 ${t.bulkhead.p50} ms (p95 ${t.bulkhead.p95}); raw SQL p50 ${t.rawSqlNoIndex.p50} ms without an index, ${t.rawSqlGinIndex.p50} ms with GIN; Bulkhead with the GIN index present ${t.bulkheadWithGinPresent.p50} ms`);
  await bh.close();
  await su.end();
  writeFileSync(
    args.out,
    `${JSON.stringify({ benchmark: "bench:text-search", date: new Date().toISOString(), machine: { cpus: cpus().length, memoryGiB: round(totalmem() / 2 ** 30, 0), node: process.version }, queries: Q, results: table, rawSqlPlans: { withGin: planWithGin, withoutIndex: planWithoutIndex } }, null, 2)}\n`,
  );
  log(`wrote ${args.out}`);
}

main().catch((err) => {
  log(String(err?.stack ?? err));
  process.exit(1);
});
