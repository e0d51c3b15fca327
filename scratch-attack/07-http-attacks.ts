// Tenant B's key against tenant A (both in Pinecone) over HTTP; Pinecone failures injected; every response
// and log line scanned for the Pinecone key, Pinecone's bodies and canaries; any 5xx other than STORE_* 503 noted.
import { PassThrough } from "node:stream";
import { TenantTier } from "../src/config.js";
import { buildServer } from "../src/server/index.js";
import { open, vec } from "./common.ts";
const { bh, standin, close } = await open({ pinecone: { timeoutMs: 1500, maxRetries: 1 } });
const logs: string[] = [];
const sink = new PassThrough(); sink.on("data", (c) => logs.push(...String(c).split("\n").filter(Boolean)));
const warns: string[] = []; const ow = console.warn; console.warn = (...a: unknown[]) => { warns.push(a.map(String).join(" ")); };
const app = await buildServer(bh, { logDestination: sink });
const CANARY = "canary-7f3a9";
const findings: string[] = [];
try {
  const UNL = { maxDocuments: 1e6, requestsPerSecond: 1e4, burst: 1e4, maxDailyQueries: 1e6, maxConcurrent: 64 };
  await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO, { quota: UNL });
  await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO, { quota: UNL });
  const keyB = (await bh.keys.createKey("tenant", { tenantId: "tenant-b", scopes: ["read", "write"] }, "t")).key;
  await bh.dataManager.upsertDocuments("tenant-a", Array.from({ length: 20 }, (_, i) => ({ id: `shared-${i}`, values: vec(i), metadata: { owner: "a", n: i, tags: ["x"] } })));
  await bh.dataManager.upsertDocuments("tenant-b", [{ id: "shared-0", values: vec(100), metadata: { owner: "b" } }]);
  const call = async (label: string, url: string, payload: unknown) => {
    const r = await app.inject({ method: "POST", url, headers: { authorization: `Bearer ${keyB}`, "content-type": "application/json" }, payload: typeof payload === "string" ? payload : JSON.stringify(payload) });
    const body = r.body;
    if (r.statusCode >= 500 && !/STORE_(UNAVAILABLE|THROTTLED)/.test(body)) findings.push(`${label}: ${r.statusCode} ${body.slice(0, 200)}`);
    if (body.includes(standin.key) || /injected failure|invalid request:|RESOURCE_EXHAUSTED|Metadata size exceeds|"code":\d/.test(body)) findings.push(`${label}: Pinecone detail in body: ${body.slice(0, 300)}`);
    const j = (() => { try { return JSON.parse(body); } catch { return {}; } })();
    for (const m of j.matches ?? j.documents ?? []) if (m.metadata?.tenant_id !== "tenant-b" || m.metadata?.owner === "a") findings.push(`${label}: FOREIGN ROW ${JSON.stringify(m).slice(0, 200)}`);
    return { status: r.statusCode, body: body.slice(0, 160) };
  };
  const q = (filter: unknown, extra: object = {}) => ({ vector: vec(1), topK: 100, filter, ...extra });
  const filters: [string, unknown][] = [
    ["tenant_id=a", { tenant_id: "tenant-a" }], ["tenant_id $ne b", { tenant_id: { $ne: "tenant-b" } }],
    ["$or tenant", { $or: [{ tenant_id: "tenant-a" }, { tenant_id: "tenant-b" }] }], ["$or exists", { $or: [{ owner: { $exists: true } }, { tenant_id: { $exists: false } }] }],
    ["tenant_id $in", { tenant_id: { $in: ["tenant-a", "tenant-b"] } }], ["tenant_id $nin", { tenant_id: { $nin: ["tenant-b"] } }],
    ["nested", { $and: [{ $or: [{ $and: [{ tenant_id: { $exists: false } }] }, { owner: "a" }] }] }], ["empty spec", { owner: {} }],
    ["empty $or member", { $or: [{}] }], ["namespace key", { namespace: "tenant-a" }], ["$namespace", { $namespace: "tenant-a" }],
    ["1e308", { n: { $lt: 1e308 } }], ["10^15", { n: { $gt: -1e15 } }], ["unicode key", { "ten\u200bant_id": "tenant-a" }],
    ["dotted", { "metadata.tenant_id": "tenant-a" }], ["__proto__", JSON.parse('{"__proto__":{"tenant_id":"tenant-a"}}')],
  ];
  for (const [label, f] of filters) console.log("query", label, JSON.stringify(await call(`query ${label}`, "/v1/query", q(f))));
  // huge filter: within Bulkhead's limits (256 conditions, 1,000 values each) but over Pinecone's request size
  const huge = { $or: Array.from({ length: 8 }, (_, k) => ({ [`f${k}`]: { $in: Array.from({ length: 1000 }, (_, i) => `v${i}-${"x".repeat(300)}`) } })) };
  console.log("query huge filter (~2.4 MB)", JSON.stringify(await call("query huge", "/v1/query", q(huge))));
  console.log("query topK 1e15", JSON.stringify(await call("topK", "/v1/query", q(undefined, { topK: 1e15 }))));
  console.log("fetch A's ids", JSON.stringify(await call("fetch", "/v1/documents/fetch", { ids: ["shared-1", "shared-2", "shared-0"] })));
  console.log("delete A's ids", JSON.stringify(await call("delete", "/v1/documents/delete", { ids: ["shared-1", "shared-2"] })));
  console.log("upsert tenant_id=a", JSON.stringify(await call("upsert tid", "/v1/documents", { documents: [{ id: "z", values: vec(1), metadata: { tenant_id: "tenant-a" } }] })));
  console.log("upsert namespace-ish ids", JSON.stringify(await call("upsert ids", "/v1/documents", { documents: ["../tenant-a/x", "tenant-a.restore", "%00", "#frag", "a&ids=shared-1", "?namespace=tenant-a", " "].map((id, i) => ({ id, values: vec(i) })) })));
  console.log("fetch odd ids", JSON.stringify(await call("fetch ids", "/v1/documents/fetch", { ids: ["a&ids=shared-1", "?namespace=tenant-a", "x&namespace=tenant-a", "shared-1&namespace=tenant-a"] })));
  // Pinecone failures injected, every op
  for (const status of [400, 401, 403, 404, 409, 412, 413, 429, 500, 502, 503, 504]) {
    for (const [label, url, body] of [["upsert", "/v1/documents", { documents: [{ id: "f", values: vec(5), metadata: { secret: CANARY } }] }], ["query", "/v1/query", q({ secret: CANARY })], ["fetch", "/v1/documents/fetch", { ids: [CANARY] }], ["delete", "/v1/documents/delete", { ids: [CANARY] }]] as const) {
      standin.failures.length = 0; standin.failNext(3, status);
      const r = await call(`${label} fail ${status}`, url, body);
      if (status === 404) console.log(`${label} with Pinecone ${status}:`, JSON.stringify(r));
    }
  }
  standin.failures.length = 0;
  const usage = await app.inject({ method: "GET", url: "/v1/usage", headers: { authorization: `Bearer ${keyB}` } });
  console.log("usage:", usage.statusCode, usage.body.slice(0, 300));
  console.log("A's rows intact:", standin.records("bh-1", "tenant-a").length);
  for (const l of [...logs, ...warns]) {
    if (l.includes(standin.key)) findings.push(`LOG has Pinecone key: ${l.slice(0, 300)}`);
    if (l.includes(CANARY)) findings.push(`LOG has canary: ${l.slice(0, 400)}`);
    if (/injected failure|invalid request:|Metadata size exceeds|127\.0\.0\.1:\d+\/data/.test(l)) findings.push(`LOG has Pinecone detail: ${l.slice(0, 400)}`);
  }
  console.log("5xx statuses logged:", logs.filter((l) => /"statusCode":5\d\d|"status":5\d\d/.test(l)).length);
  const ex = logs.find((l) => l.includes(CANARY)); if (ex) console.log("EXAMPLE CANARY LINE:", JSON.stringify(JSON.parse(ex).err, null, 1));
  const ex2 = logs.find((l) => l.includes("invalid request")); if (ex2) console.log("EXAMPLE BODY LINE:", JSON.stringify(JSON.parse(ex2).err.cause));
  console.log("DISTINCT CAUSES:\n" + [...new Set(logs.map((l) => { try { return JSON.parse(l).err?.cause?.message; } catch { return undefined; } }).filter(Boolean))].map((m) => String(m).slice(0, 260)).join("\n"));
  console.log("FINDINGS:\n" + [...new Set(findings)].join("\n"));
} finally { console.warn = ow; await app.close(); await close(); }
