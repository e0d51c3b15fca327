import { pglite } from "../test/backends.js";
import { PineconeStandin } from "../test/pinecone-standin.js";
import type { BulkheadOptions } from "../src/bulkhead.js";

export async function open(opts: { dimension?: number; config?: Record<string, unknown>; pinecone?: Record<string, unknown>; tierStores?: Record<string, string> } = {}) {
  const standin = await new PineconeStandin().start();
  const config = {
    dimension: opts.dimension ?? 8,
    ...opts.config,
    pinecone: { name: "pinecone", cloud: "aws", region: "us-east-1", indexPrefix: "bh", maxNamespacesPerIndex: 100, timeoutMs: 1_000, maxRetries: 1, controllerHostUrl: standin.url, ...opts.pinecone },
    pineconeApiKey: standin.key,
    tierStores: opts.tierStores ?? { free: "pinecone", pro: "pinecone", enterprise: "pinecone" },
  } as BulkheadOptions["config"];
  const { bulkhead: bh } = await pglite.open({ config });
  return { bh, standin, close: async () => { await bh.close(); await standin.close(); } };
}
export const vec = (seed: number, dim = 8) => Array.from({ length: dim }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) + 1.5);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const nsRecords = (standin: PineconeStandin, ns: string) => [...standin.indexes.keys()].flatMap((name) => standin.records(name, ns));
