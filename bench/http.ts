/**
 * bench:http — the HTTP service under load, with autocannon, on the PostgreSQL server.
 *
 * The service runs as its own process (`bulkhead serve`, built) on the server database; the load
 * generator runs in this process — both on the same two cores. 60 pro tenants with 200 vectors
 * each (384 d, small tenants: exact search); each request picks a tenant at random and uses that
 * tenant's key: 90 % queries (topK 10), 10 % single-document upserts. The tenants' rate limits are
 * lifted for the run (the question is the service's capacity, not the limiter's).
 *
 * Steps are closed loops of rising concurrency (autocannon `connections`; each connection sends its
 * next request when the last is answered), past the point where throughput stops rising. autocannon's fixed-rate
 * mode (`overallRate`) was tried first and not used: it releases each connection's share of a
 * second at the start of the second, so every second begins with a burst of all connections at
 * once — latency then measures the burst, not the service (p50 145 ms at 300 requests/s).
 * The expected load is stated as 750 requests/s; the target applies at twice that.
 *
 *   npm run build && npm run bench:http        # needs DATABASE_URL / DATABASE_OWNER_URL
 *   npm run bench:http -- --seconds 10 --connections 8,32 --out /tmp/http.json
 *   npm run bench:http -- --bin /tmp/old/dist/cli/main.js --label "before (abc123)" --out /tmp/old.json
 *
 * `--bin` runs another build of the service (an older commit's dist/cli/main.js), for a same-day A/B.
 */
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import { DEFAULT_SPEC, EmbeddingSpace, rng } from "./dataset.js";
import { startService } from "./service.js";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "15" },
    connections: { type: "string", default: "2,4,8,16,32,64" },
    expected: { type: "string", default: "750" },
    tenants: { type: "string", default: "60" },
    vectors: { type: "string", default: "200" },
    out: { type: "string", default: "bench/results/http-postgres.json" },
    bin: { type: "string" },
    label: { type: "string", default: "this commit" },
  },
});
const SECONDS = Number(args.seconds);
const STEPS = args.connections!.split(",").map(Number);
const TENANTS = Number(args.tenants);
const VECTORS = Number(args.vectors);
const schema = "bench_http";
const port = 18_000 + Math.floor(Math.random() * 1000);
const log = (m: string) => process.stderr.write(`${m}\n`);
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const quantile = (sorted: number[], q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! : NaN);

if (!process.env.DATABASE_URL?.startsWith("postgres") || !process.env.DATABASE_OWNER_URL) {
  log('bench:http runs against the PostgreSQL server: set DATABASE_URL and DATABASE_OWNER_URL (eval "$(bash scripts/setup-postgres.sh)")');
  process.exit(2);
}

async function main() {
  const service = await startService({ schema, port, bin: args.bin });
  const { base, admin, call } = service;
  try {
    const space = new EmbeddingSpace(DEFAULT_SPEC);
    const random = rng(11);
    const keys: string[] = [];
    for (let t = 0; t < TENANTS; t++) {
      const tenantId = `tenant-${String(t + 1).padStart(3, "0")}`;
      await call("POST", "/admin/tenants", admin, { tenantId, name: tenantId, tier: "pro", quota: { requestsPerSecond: 100_000, maxConcurrent: 10_000, maxDailyQueries: 100_000_000 } });
      keys.push((await call("POST", `/admin/tenants/${tenantId}/keys`, admin, {})).key);
      const topics = [Math.floor(random() * 64), Math.floor(random() * 64)];
      const documents = Array.from({ length: VECTORS }, (_, i) => ({ id: `doc-${i}`, values: Array.from(space.sample(topics, random)) }));
      await call("POST", "/v1/documents", keys[t]!, { documents });
    }
    log(`bench:http: ${TENANTS} pro tenants × ${VECTORS} vectors loaded; server on ${base}`);
    const queryBodies = Array.from({ length: 500 }, () => JSON.stringify({ vector: Array.from(space.sample([Math.floor(random() * 64)], random)), topK: 10 }));
    const upsertVector = JSON.stringify(Array.from(space.sample([1], random)));
    let upserts = 0;

    const step = async (connections: number, seconds: number) => {
      const latencies: number[] = [];
      const statuses: Record<string, number> = {};
      const instance = autocannon({
        url: base,
        connections,
        duration: seconds,
        timeout: 10,
        requests: [
          {
            setupRequest: (req: any) => {
              const key = keys[Math.floor(Math.random() * keys.length)]!;
              const upsert = Math.random() < 0.1;
              return {
                ...req,
                method: "POST",
                path: upsert ? "/v1/documents" : "/v1/query",
                headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
                body: upsert ? `{"documents":[{"id":"load-${upserts++}","values":${upsertVector}}]}` : queryBodies[Math.floor(Math.random() * queryBodies.length)],
              };
            },
          },
        ],
      });
      (instance as unknown as NodeJS.EventEmitter).on("response", (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
        latencies.push(responseTime);
        statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
      });
      const result = await instance;
      latencies.sort((a, b) => a - b);
      const responses = latencies.length;
      const failed = responses - (statuses["200"] ?? 0) + result.errors + result.timeouts;
      const out = {
        connections,
        seconds,
        responses,
        throughput: round(responses / seconds, 1),
        p50Ms: round(quantile(latencies, 0.5)),
        p95Ms: round(quantile(latencies, 0.95)),
        p99Ms: round(quantile(latencies, 0.99)),
        maxMs: round(latencies.at(-1) ?? NaN),
        statuses,
        connectionErrors: result.errors,
        timeouts: result.timeouts,
        errorRate: round(failed / Math.max(1, responses + result.errors + result.timeouts), 4),
      };
      log(`  ${connections} connections: ${out.throughput}/s answered, p50 ${out.p50Ms} ms, p95 ${out.p95Ms} ms, p99 ${out.p99Ms} ms, errors ${(out.errorRate * 100).toFixed(2)} % ${JSON.stringify(statuses)}`);
      return out;
    };

    await step(8, 5); // warm-up: plans, connections, caches (not reported)
    const steps = [];
    for (const connections of STEPS) steps.push(await step(connections, SECONDS));
    const doubled = 2 * Number(args.expected);
    // The step that carries twice the expected load with the lowest latency, if any does.
    const target = steps.filter((s) => s.throughput >= doubled).sort((a, b) => a.p95Ms - b.p95Ms)[0];
    const report = {
      benchmark: "http",
      label: args.label,
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      config: { tenants: TENANTS, vectorsPerTenant: VECTORS, dimension: DEFAULT_SPEC.dimension, mix: "90% query topK 10, 10% upsert of one document", load: "closed loop per connection", expectedLoad: Number(args.expected), rateLimiter: "memory (one instance)", logLevel: "info (one JSON line per request, to /dev/null)" },
      steps,
      maxThroughput: Math.max(...steps.map((s) => s.throughput)),
      targets: {
        [`≥ ${doubled.toLocaleString("en")} requests/s answered (2× the expected load)`]: target !== undefined,
        [`p95 < 25 ms at ${doubled.toLocaleString("en")} requests/s`]: target !== undefined && target.p95Ms < 25,
        [`errors < 1 % at ${doubled.toLocaleString("en")} requests/s`]: target !== undefined && target.errorRate < 0.01,
      },
    };
    writeFileSync(args.out!, JSON.stringify(report, null, 2) + "\n");
    log(`wrote ${args.out}`);
  } finally {
    await service.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
