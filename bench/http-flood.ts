/**
 * The flood of bench:http-noisy, in a process of its own (the aggressor's client must not share
 * the victim's event loop): autocannon with `--connections` closed loops against one URL with one
 * key and one body, for `--seconds`. Prints one JSON line with what it saw.
 *
 *   tsx bench/http-flood.ts --url http://127.0.0.1:8080/v1/query --key bh_tenant_… --body-file /tmp/q.json
 */
import { readFileSync } from "node:fs";
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
const instance = autocannon({
  url: args.url!,
  method: "POST",
  connections: Number(args.connections),
  duration: Number(args.seconds),
  timeout: 10,
  headers: { authorization: `Bearer ${args.key}`, "content-type": "application/json" },
  body: readFileSync(args["body-file"]!, "utf8"),
});
(instance as unknown as NodeJS.EventEmitter).on("response", (_c: unknown, statusCode: number, _b: number, responseTime: number) => {
  latencies.push(responseTime);
  statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
});
const result = await instance;
latencies.sort((a, b) => a - b);
const q = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)]! : NaN);
process.stdout.write(
  JSON.stringify({ responses: latencies.length, statuses, p50Ms: q(0.5), p95Ms: q(0.95), p99Ms: q(0.99), maxMs: latencies.at(-1) ?? NaN, errors: result.errors, timeouts: result.timeouts }) + "\n",
);
