/**
 * bench:http-noisy — does a neighbour's flood at the HTTP door move a victim's latency?
 *
 * `bulkhead serve` (built) runs as its own process on the PostgreSQL server (and Redis when
 * REDIS_URL is set). Two tenants, 500 vectors each (384 d): the victim (pro) queries at a steady
 * `--victim-rate` from this process (open loop: each request leaves on schedule whether or not the
 * last has returned); the aggressor (free: 10 requests/s) floods `/v1/query` with a full 384-d body
 * from a separate process (bench/http-flood.ts, autocannon, `--connections` closed loops), so
 * nearly every one of its requests is refused 429. Phases of `--seconds`, alternated, victim load
 * identical in all: alone, flood, bare — `bare` is the reference in the same run: the same flood
 * aimed at a bare Node.js server that answers 429 without reading anything (bench/bare-refuser.ts),
 * so the victim's latency there is what the flood client alone costs these two shared cores.
 * The victim's p95 is compared pooled over the rounds.
 *
 * Also reported: how long the flood waited for its refusals, and the service's CPU per refusal —
 * the service process's CPU time (from /proc) during a flood phase, less its CPU during the alone
 * phases (the victim's own load), divided by the refusals answered.
 *
 * `--flood upserts` makes the neighbour a pro tenant writing instead: every request a full batch
 * (`--batch` vectors of 384 d, ~7.7 MB of JSON at 1,000) over `--connections` closed loops, the
 * same ids each time (so its document count stays put). Its request rate allows far more bytes
 * than one event loop can parse: this measures whether its bodies can stall the victim.
 *
 * `--bin` runs another build of the service (e.g. an older commit's dist/cli/main.js), for a
 * same-day A/B on this machine, whose absolute timings drift by a third from day to day.
 *
 *   npm run build && npm run bench:http-noisy      # needs DATABASE_URL / DATABASE_OWNER_URL
 *   npm run bench:http-noisy -- --flood upserts --connections 4
 *   npm run bench:http-noisy -- --seconds 10 --out /tmp/noisy.json --bin /tmp/old/dist/cli/main.js
 */
import { spawn } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_SPEC, EmbeddingSpace, rng } from "./dataset.js";
import { startService } from "./service.js";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "20" },
    "victim-rate": { type: "string", default: "25" },
    flood: { type: "string", default: "queries" },
    batch: { type: "string", default: "1000" },
    connections: { type: "string" },
    rounds: { type: "string", default: "2" },
    vectors: { type: "string", default: "500" },
    bin: { type: "string" },
    label: { type: "string", default: "this commit" },
    out: { type: "string" },
  },
});
if (args.flood !== "queries" && args.flood !== "upserts") throw new Error("--flood must be queries or upserts");
const UPSERTS = args.flood === "upserts";
const BATCH = Number(args.batch);
const OUT = args.out ?? (UPSERTS ? "bench/results/http-noisy-upserts-postgres.json" : "bench/results/http-noisy-postgres.json");
const SECONDS = Number(args.seconds);
const VICTIM_RATE = Number(args["victim-rate"]);
const CONNECTIONS = Number(args.connections ?? (UPSERTS ? 4 : 64));
const ROUNDS = Number(args.rounds);
const VECTORS = Number(args.vectors);
const schema = "bench_http_noisy";
const port = 19_000 + Math.floor(Math.random() * 1000);
const log = (m: string) => process.stderr.write(`${m}\n`);
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! : NaN;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!process.env.DATABASE_URL?.startsWith("postgres") || !process.env.DATABASE_OWNER_URL) {
  log('bench:http-noisy runs against the PostgreSQL server: set DATABASE_URL and DATABASE_OWNER_URL (eval "$(bash scripts/setup-postgres.sh)")');
  process.exit(2);
}

/** CPU seconds (user + system) the process has used so far, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100/s on Linux)
}

interface Phase {
  phase: "alone" | "flood" | "bare";
  round: number;
  victim: { sent: number; ok: number; failed: number; p50Ms: number; p95Ms: number; p99Ms: number; maxMs: number };
  serviceCpuSeconds: number;
  flood?: { responses: number; statuses: Record<string, number>; p50Ms: number; p95Ms: number; p99Ms: number; maxMs: number; errors: number; timeouts: number };
}

async function main() {
  const service = await startService({ schema, port, bin: args.bin });
  const { base, admin, call } = service;
  const server = service.process;
  try {
    const space = new EmbeddingSpace(DEFAULT_SPEC);
    const random = rng(7);
    const keys: Record<string, string> = {};
    // The victim's limits are the pro tier's, raised only as far as its own steady load needs; the aggressor keeps the free tier's.
    for (const [tenantId, tier, quota] of [
      ["victim", "pro", { requestsPerSecond: Math.max(100, VICTIM_RATE * 2), maxDailyQueries: 10_000_000 }],
      ["aggressor", UPSERTS ? "pro" : "free", { maxDailyQueries: 10_000_000 }],
    ] as const) {
      await call("POST", "/admin/tenants", admin, { tenantId, name: tenantId, tier, quota });
      keys[tenantId] = (await call("POST", `/admin/tenants/${tenantId}/keys`, admin, {})).key;
      for (let i = 0; i < VECTORS; i += 250) {
        const documents = Array.from({ length: Math.min(250, VECTORS - i) }, (_, j) => ({ id: `doc-${i + j}`, values: Array.from(space.sample([Math.floor(random() * 64)], random)) }));
        await call("POST", "/v1/documents", keys[tenantId]!, { documents });
      }
    }
    const victimBodies = Array.from({ length: 200 }, () => JSON.stringify({ vector: Array.from(space.sample([Math.floor(random() * 64)], random)), topK: 10 }));
    const floodBody = join(tmpdir(), `bh-flood-${port}.json`);
    const floodPath = UPSERTS ? "/v1/documents" : "/v1/query";
    writeFileSync(
      floodBody,
      JSON.stringify(
        UPSERTS
          ? { documents: Array.from({ length: BATCH }, (_, i) => ({ id: `flood-${i}`, values: Array.from(space.sample([i % 64], random)) })) }
          : { vector: Array.from(space.sample([3], random)), topK: 10 },
      ),
    );
    log(`bench:http-noisy: service ${base} (${args.label}), victim ${VICTIM_RATE}/s, flood of ${UPSERTS ? `${BATCH}-vector upserts` : "queries"} over ${CONNECTIONS} connections, ${SECONDS} s phases × ${ROUNDS} rounds`);

    /** The victim's steady load for `seconds`; latencies of its answers. */
    const victimLoad = async (seconds: number) => {
      const latencies: number[] = [];
      let sent = 0;
      let failed = 0;
      const inFlight: Promise<void>[] = [];
      const started = performance.now();
      for (let i = 0; performance.now() - started < seconds * 1000; i++) {
        const due = started + (i * 1000) / VICTIM_RATE;
        if (due > performance.now()) await sleep(due - performance.now());
        sent++;
        const t0 = performance.now();
        inFlight.push(
          fetch(`${base}/v1/query`, { method: "POST", headers: { authorization: `Bearer ${keys.victim}`, "content-type": "application/json" }, body: victimBodies[i % victimBodies.length] })
            .then(async (r) => {
              await r.arrayBuffer();
              if (r.status === 200) latencies.push(performance.now() - t0);
              else failed++;
            })
            .catch(() => void failed++),
        );
      }
      await Promise.all(inFlight);
      return { sent, ok: latencies.length, failed, p50Ms: round(quantile(latencies, 0.5)), p95Ms: round(quantile(latencies, 0.95)), p99Ms: round(quantile(latencies, 0.99)), maxMs: round(Math.max(...latencies)), latencies };
    };

    // The reference: a bare server, in its own process, answering the same flood with 429s.
    const bare = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "bare-refuser.ts")], { stdio: ["ignore", "pipe", "inherit"] });
    const barePort = await new Promise<number>((resolve) => bare.stdout.once("data", (d) => resolve(Number(String(d).trim()))));
    const flood = (seconds: number, target: string) =>
      new Promise<Phase["flood"]>((resolve, reject) => {
        const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "http-flood.ts"), "--url", `${target}${floodPath}`, `--key=${keys.aggressor!}`, "--body-file", floodBody, "--connections", String(CONNECTIONS), "--seconds", String(seconds)], {
          stdio: ["ignore", "pipe", "inherit"],
        });
        let out = "";
        child.stdout.on("data", (d) => (out += d));
        child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").at(-1)!)) : reject(new Error(`flood exited ${code}`))));
      });

    await victimLoad(5); // warm-up (not reported)
    const phases: Phase[] = [];
    const pooled = { alone: [] as number[], flood: [] as number[], bare: [] as number[] };
    for (let r = 1; r <= ROUNDS; r++) {
      for (const phase of ["alone", "flood", "bare"] as const) {
        const cpu0 = cpuSeconds(server.pid!);
        let floodResult: Phase["flood"];
        let victim;
        if (phase !== "alone") {
          const running = flood(SECONDS, phase === "flood" ? base : `http://127.0.0.1:${barePort}`);
          await sleep(1000); // the flood's client starts (tsx) before the victim's window opens
          victim = await victimLoad(SECONDS - 2);
          floodResult = await running;
        } else {
          victim = await victimLoad(SECONDS - 2);
        }
        const cpu = cpuSeconds(server.pid!) - cpu0;
        pooled[phase].push(...victim.latencies);
        const { latencies: _l, ...summary } = victim;
        phases.push({ phase, round: r, victim: summary, serviceCpuSeconds: round(cpu, 3), ...(floodResult ? { flood: floodResult } : {}) });
        log(`  round ${r} ${phase}: victim p50 ${summary.p50Ms} ms, p95 ${summary.p95Ms} ms (${summary.ok}/${summary.sent} ok); service CPU ${round(cpu, 2)} s${floodResult ? `; flood ${floodResult.responses} answers ${JSON.stringify(floodResult.statuses)}, p50 ${floodResult.p50Ms} ms, p95 ${floodResult.p95Ms} ms` : ""}`);
        await sleep(1000);
      }
    }
    bare.kill("SIGTERM");
    // 300 simultaneous requests of the (still over-limit) aggressor, each on its own connection: how long until every refusal is answered.
    const floodBodyText = readFileSync(floodBody, "utf8");
    const burst = async () => {
      const t0 = performance.now();
      const times = await Promise.all(
        Array.from({ length: 300 }, () =>
          fetch(`${base}/v1/query`, { method: "POST", headers: { authorization: `Bearer ${keys.aggressor}`, "content-type": "application/json", connection: "close" }, body: floodBodyText }).then(async (r) => {
            await r.arrayBuffer();
            return { status: r.status, ms: performance.now() - t0 };
          }),
        ),
      );
      const ms = times.map((t) => t.ms);
      return { requests: 300, refused: times.filter((t) => t.status === 429).length, p50Ms: round(quantile(ms, 0.5)), allAnsweredMs: round(Math.max(...ms)) };
    };
    // (Only for the query flood: the upsert flood is mostly admitted, so it has no refusal cost to measure.)
    if (!UPSERTS) await flood(3, base).catch(() => undefined); // put the aggressor over its limit again
    const bursts = UPSERTS ? [] : [await burst(), await burst(), await burst()];
    if (!UPSERTS) log(`  300 simultaneous aggressor requests: all answered in ${bursts.map((b) => b.allAnsweredMs).join(", ")} ms (${bursts.map((b) => b.refused).join(", ")} refused)`);
    const aloneP95 = quantile(pooled.alone, 0.95);
    const floodP95 = quantile(pooled.flood, 0.95);
    const bareP95 = quantile(pooled.bare, 0.95);
    const ratio = floodP95 / aloneP95;
    // Service CPU per refusal: a flood phase's CPU less the alone phases' mean (the victim's own load), over its refusals.
    // (The bare phases load the service with the victim alone too, so they count as its baseline.)
    const aloneCpu = phases.filter((p) => p.phase !== "flood").reduce((a, p) => a + p.serviceCpuSeconds, 0) / (2 * ROUNDS);
    const perRefusal = phases
      .filter((p) => p.phase === "flood")
      .map((p) => {
        const refusals = p.flood!.statuses["429"] ?? 0;
        return refusals > 0 ? ((p.serviceCpuSeconds - aloneCpu) / refusals) * 1e6 : NaN;
      });
    const report = {
      benchmark: "http-noisy",
      label: args.label,
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      config: { victimRate: VICTIM_RATE, floodConnections: CONNECTIONS, phaseSeconds: SECONDS, rounds: ROUNDS, vectorsPerTenant: VECTORS, dimension: DEFAULT_SPEC.dimension, redis: Boolean(process.env.REDIS_URL), flood: UPSERTS ? `upserts of ${BATCH} vectors (${(statSync(floodBody).size / 1e6).toFixed(1)} MB each)` : "queries", aggressorTier: UPSERTS ? "pro (50 requests/s, burst as configured)" : "free (10 requests/s, burst as configured)" },
      phases,
      victim: {
        aloneP95Ms: round(aloneP95),
        floodP95Ms: round(floodP95),
        ratio: round(ratio, 3),
        bareFloodP95Ms: round(bareP95),
        bareRatio: round(bareP95 / aloneP95, 3),
        aloneP50Ms: round(quantile(pooled.alone, 0.5)),
        floodP50Ms: round(quantile(pooled.flood, 0.5)),
        bareFloodP50Ms: round(quantile(pooled.bare, 0.5)),
      },
      refusals: {
        answered: phases.reduce((a, p) => a + (p.phase === "flood" ? (p.flood?.statuses["429"] ?? 0) : 0), 0),
        p50Ms: round(quantile(phases.flatMap((p) => (p.phase === "flood" ? [p.flood!.p50Ms] : [])), 0.5)),
        p95MsWorstPhase: round(Math.max(...phases.flatMap((p) => (p.phase === "flood" ? [p.flood!.p95Ms] : [])))),
        bareAnsweredPerSecond: round(phases.filter((p) => p.phase === "bare").reduce((a, p) => a + p.flood!.responses, 0) / (ROUNDS * SECONDS), 0),
        bulkheadAnsweredPerSecond: round(phases.filter((p) => p.phase === "flood").reduce((a, p) => a + p.flood!.responses, 0) / (ROUNDS * SECONDS), 0),
        serviceCpuMicrosecondsEach: perRefusal.map((x) => round(x, 1)),
        simultaneous300: bursts,
      },
      targets: { "victim p95 during the flood ≤ 1.5× alone": ratio <= 1.5, "aim: ≤ 1.25× alone": ratio <= 1.25 },
      reference: "bare: the same flood aimed at a bare server that only answers 429 — what the flood client alone costs the victim on these cores",
    };
    writeFileSync(OUT, JSON.stringify(report, null, 2) + "\n");
    log(`victim p95 alone ${report.victim.aloneP95Ms} ms, during floods ${report.victim.floodP95Ms} ms: ×${report.victim.ratio} (flood at a bare server: ×${report.victim.bareRatio}); service CPU per refusal ${report.refusals.serviceCpuMicrosecondsEach.join(", ")} µs`);
    log(`wrote ${OUT}`);
  } finally {
    await service.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
