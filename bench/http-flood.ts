/**
 * The flood of bench:http-noisy, in a process of its own (the aggressor's client must not share
 * the victim's event loop): `--connections` closed loops against one URL with one key and one body,
 * for `--seconds`. Prints one JSON line with what it saw. Small bodies go through autocannon; a body
 * of a megabyte or more through plain node:http loops instead — the service closes the connection
 * of a large body it refuses rather than read it, and autocannon then buffered the unsent bodies
 * until it ran out of memory.
 *
 *   tsx bench/http-flood.ts --url http://127.0.0.1:8080/v1/query --key bh_tenant_… --body-file /tmp/q.json
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import { parseArgs } from "node:util";
import autocannon from "autocannon";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    key: { type: "string" },
    "body-file": { type: "string" },
    connections: { type: "string", default: "64" },
    seconds: { type: "string", default: "20" },
  },
});

const latencies: number[] = [];
const statuses: Record<string, number> = {};
const body = readFileSync(args["body-file"]!);
const headers = { authorization: `Bearer ${args.key}`, "content-type": "application/json" };
const report = (errors: number, timeouts: number) => {
  latencies.sort((a, b) => a - b);
  const q = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)]! : NaN);
  process.stdout.write(JSON.stringify({ responses: latencies.length, statuses, p50Ms: q(0.5), p95Ms: q(0.95), p99Ms: q(0.99), maxMs: latencies.at(-1) ?? NaN, errors, timeouts }) + "\n");
};

if (body.byteLength >= 1_000_000) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number(args.connections) });
  const end = performance.now() + Number(args.seconds) * 1000;
  let errors = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const t0 = performance.now();
      const req = http.request(args.url!, { method: "POST", agent, headers: { ...headers, "content-length": body.byteLength } }, (res) => {
        statuses[res.statusCode!] = (statuses[res.statusCode!] ?? 0) + 1;
        res.resume().on("end", () => {
          latencies.push(performance.now() - t0);
          resolve();
        });
      });
      // The answer may come (and the connection close) before the whole body is sent: not an error.
      req.on("error", () => {
        errors++;
        resolve();
      });
      req.end(body);
    });
  await Promise.all(
    Array.from({ length: Number(args.connections) }, async () => {
      while (performance.now() < end) await one();
    }),
  );
  agent.destroy();
  report(errors, 0);
  process.exit(0);
}

const instance = autocannon({
  url: args.url!,
  method: "POST",
  connections: Number(args.connections),
  duration: Number(args.seconds),
  timeout: 10,
  headers,
  body: body.toString("utf8"),
});
(instance as unknown as NodeJS.EventEmitter).on("response", (_c: unknown, statusCode: number, _b: number, responseTime: number) => {
  latencies.push(responseTime);
  statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
});
const result = await instance;
report(result.errors, result.timeouts);
