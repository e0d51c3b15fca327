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
 *
 * `--compare` puts the reference in the same run (issue 14: HTTP at ≥ 0.9× a bare server): after
 * loading, `bench/bare-server.ts` (Fastify + pg, the same SQL on the same tables, no isolation or
 * accounting) is started beside the service, and each step runs against the service and the bare
 * server alternately, `--rounds` times; the report gives each side's medians and their ratio.
 *
 *   npm run bench:http -- --compare --connections 8,32 --out bench/results/http-vs-bare.json
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import pg from "pg";
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
    compare: { type: "boolean", default: false },
    rounds: { type: "string", default: "2" },
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

    const step = async (connections: number, seconds: number, url = base, serverPid = service.process.pid!) => {
      const latencies: number[] = [];
      const statuses: Record<string, number> = {};
      const cpuBefore = { server: cpuMs([serverPid]), postgres: cpuMs(postgresPids()) };
      const transactionsBefore = await transactions();
      const instance = autocannon({
        url,
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
        // CPU per answered request, from /proc: the server's process, and every PostgreSQL process.
        serverCpuMsPerRequest: round(cpuSince(cpuBefore.server, cpuMs([serverPid])) / Math.max(1, responses), 3),
        postgresCpuMsPerRequest: round(cpuSince(cpuBefore.postgres, cpuMs(postgresPids())) / Math.max(1, responses), 3),
        // Round trips that end a transaction (commits + rollbacks), from pg_stat_database.
        transactionsPerRequest: round(((await transactions()) - transactionsBefore) / Math.max(1, responses), 2),
      };
      log(`  ${connections} connections: ${out.throughput}/s answered, p50 ${out.p50Ms} ms, p95 ${out.p95Ms} ms, p99 ${out.p99Ms} ms, errors ${(out.errorRate * 100).toFixed(2)} % ${JSON.stringify(statuses)}; CPU per request: server ${out.serverCpuMsPerRequest} ms, PostgreSQL ${out.postgresCpuMsPerRequest} ms; transactions per request ${out.transactionsPerRequest}`);
      return out;
    };

    if (args.compare) {
      await compare(step, keys);
      return;
    }
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

/** User + system CPU milliseconds each process has used so far (Linux /proc; a process gone is left out). */
function cpuMs(pids: number[]): Map<number, number> {
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  const out = new Map<number, number>();
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      out.set(pid, (Number(fields[11]) + Number(fields[12])) * tick); // utime, stime
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** CPU milliseconds used between two readings: by the processes alive at the second (a process started meanwhile counts whole). */
const cpuSince = (before: Map<number, number>, after: Map<number, number>) => [...after].reduce((sum, [pid, ms]) => sum + ms - (before.get(pid) ?? 0), 0);

/** Transactions the database has ended so far (its statistics lag up to a second: steps are longer). */
async function transactions(): Promise<number> {
  await new Promise((r) => setTimeout(r, 1100));
  const client = new pg.Client({ connectionString: process.env.DATABASE_OWNER_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>("SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = current_database()");
    return Number(rows[0]!.n) - 1; // not counting this statement's own
  } finally {
    await client.end();
  }
}

/** Every process of this machine's PostgreSQL server (the postmaster and its backends). */
function postgresPids(): number[] {
  return readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("postgres");
    } catch {
      return false;
    }
  });
}

type Step = (connections: number, seconds: number, url?: string, serverPid?: number) => Promise<{ throughput: number; p50Ms: number; p95Ms: number; p99Ms: number; errorRate: number; serverCpuMsPerRequest: number; postgresCpuMsPerRequest: number }>;

/** Starts bench/bare-server.ts on the tables the service just filled; resolves its base URL. */
async function startBare(keys: string[]): Promise<{ base: string; pid: number; stop(): Promise<void> }> {
  // The key → tenant and table map, read from the catalogue as a superuser (the bare server has no registry).
  const superuser = process.env.BARE_DATABASE_URL ?? process.env.DATABASE_OWNER_URL!.replace(/\/\/[^@/]+@/, "//postgres@");
  const client = new pg.Client({ connectionString: superuser });
  await client.connect();
  const rows = (await client.query<{ id: string; index_id: number }>(`SELECT id, index_id FROM ${schema}.tenants`)).rows;
  await client.end();
  const table = new Map(rows.map((r) => [r.id, `vec_${r.index_id}`]));
  const routes = Object.fromEntries(keys.map((key, t) => {
    const tenantId = `tenant-${String(t + 1).padStart(3, "0")}`;
    return [key, { tenantId, table: table.get(tenantId)! }];
  }));
  const nodeArgs = process.env.BENCH_SERVER_NODE_OPTIONS?.split(" ").filter(Boolean) ?? []; // profiles it too
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", new URL("./bare-server.ts", import.meta.url).pathname], {
    env: { ...process.env, BARE_DATABASE_URL: superuser, BARE_SCHEMA: schema },
    stdio: ["pipe", "pipe", "inherit"],
  });
  child.stdin!.end(JSON.stringify(routes));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once("exit", (code) => reject(new Error(`the bare server exited (${code})`)));
  });
  return {
    base: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    },
  };
}

/** Each step against the service and the bare server alternately; medians per side, and the ratio. */
async function compare(step: Step, keys: string[]) {
  const bare = await startBare(keys);
  try {
    await step(8, 5);
    await step(8, 5, bare.base, bare.pid); // warm-up of both (not reported)
    const rounds = Number(args.rounds);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
    const results = [];
    for (const connections of STEPS) {
      const bulkhead = [];
      const reference = [];
      for (let r = 0; r < rounds; r++) {
        log(`round ${r + 1}, ${connections} connections — Bulkhead, then the bare server:`);
        bulkhead.push(await step(connections, SECONDS));
        reference.push(await step(connections, SECONDS, bare.base, bare.pid));
      }
      const side = (runs: Awaited<ReturnType<Step>>[]) => ({
        throughput: median(runs.map((x) => x.throughput)),
        p50Ms: median(runs.map((x) => x.p50Ms)),
        p95Ms: median(runs.map((x) => x.p95Ms)),
        errorRate: Math.max(...runs.map((x) => x.errorRate)),
        serverCpuMsPerRequest: median(runs.map((x) => x.serverCpuMsPerRequest)),
        postgresCpuMsPerRequest: median(runs.map((x) => x.postgresCpuMsPerRequest)),
        runs,
      });
      const b = side(bulkhead);
      const ref = side(reference);
      const ratio = round(b.throughput / ref.throughput, 2);
      log(`  ${connections} connections: Bulkhead ${b.throughput}/s p95 ${b.p95Ms} ms; bare ${ref.throughput}/s p95 ${ref.p95Ms} ms; ratio ${ratio}`);
      results.push({ connections, bulkhead: b, bare: ref, throughputRatio: ratio, p95NoWorse: b.p95Ms <= ref.p95Ms });
    }
    const report = {
      benchmark: "http-vs-bare",
      label: args.label,
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      config: { tenants: TENANTS, vectorsPerTenant: VECTORS, dimension: DEFAULT_SPEC.dimension, mix: "90% query topK 10, 10% upsert of one document", seconds: SECONDS, rounds, aggregate: "per side, the median of the rounds (the lower of two)", reference: "bench/bare-server.ts: Fastify + pg as a superuser, same SQL and tables, no isolation or accounting" },
      results,
      targets: Object.fromEntries(results.flatMap((r) => [
        [`${r.connections} connections: throughput ≥ 0.9× the bare server`, r.throughputRatio >= 0.9],
        [`${r.connections} connections: p95 no worse than the bare server`, r.p95NoWorse],
      ])),
    };
    writeFileSync(args.out!, JSON.stringify(report, null, 2) + "\n");
    log(`wrote ${args.out}`);
  } finally {
    await bare.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
