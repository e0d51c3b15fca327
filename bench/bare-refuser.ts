/**
 * The reference of bench:http-noisy: a bare Node.js HTTP server that answers every request with the
 * same 429 problem document Bulkhead sends, reading nothing (no key, no routing, no logs, no
 * metrics). A flood against it costs the machine only the flood client and the cheapest possible
 * refusal, so the victim's latency with the flood aimed here is the floor for any service on
 * these two shared cores. Prints its port on stdout.
 *
 *   tsx bench/bare-refuser.ts
 */
import { createServer } from "node:http";

const body = JSON.stringify({
  type: "https://bulkhead.dev/problems/rate-limited",
  title: "Too Many Requests",
  status: 429,
  detail: 'tenant "aggressor" exceeded its rate limit of 10 operations per second; retry in 100 ms',
  code: "RATE_LIMITED",
  instance: "/v1/query",
  retryAfterMs: 100,
});
const server = createServer((req, res) => {
  req.resume(); // discard the body, as Node does for an unread request
  res.writeHead(429, { "content-type": "application/problem+json", "retry-after": "1", "content-length": Buffer.byteLength(body) });
  res.end(body);
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${typeof address === "object" && address ? address.port : 0}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
