/**
 * The reference of bench:http: the least a server can do to answer Bulkhead's two data requests
 * from the same tables. Fastify + `pg`, a pool as large as Bulkhead's, the same exact-search and
 * upsert SQL on the same partitioned vector tables — and nothing else: no key hashing (a key is
 * looked up in a map), no row-level security (it connects as a superuser), no tenant context, no
 * placement check, no quota, rate limit, metering, metrics or logs. What Bulkhead spends beyond it
 * is the price of its isolation and accounting.
 *
 * Reads the key → { tenantId, table } map as JSON on stdin, prints its port on stdout.
 *
 *   BARE_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bulkhead BARE_SCHEMA=bench_http tsx bench/bare-server.ts < keys.json
 */
import Fastify from "fastify";
import pg from "pg";

const routes = JSON.parse(await new Response(process.stdin as unknown as ReadableStream).text()) as Record<string, { tenantId: string; table: string }>;
const pool = new pg.Pool({ connectionString: process.env.BARE_DATABASE_URL, max: Number(process.env.BARE_POOL_SIZE ?? 10), idleTimeoutMillis: 0, options: `-c search_path=${process.env.BARE_SCHEMA},public` });

const app = Fastify({ logger: false, bodyLimit: 8 * 1024 * 1024 });
const route = (authorization: string | undefined) => routes[authorization?.replace(/^Bearer /i, "") ?? ""];

app.post("/v1/query", async (req, reply) => {
  const r = route(req.headers.authorization);
  if (!r) return reply.code(401).send({ error: "unknown key" });
  const { vector, topK } = req.body as { vector: number[]; topK: number };
  const { rows } = await pool.query(
    `SELECT id, metadata, 1 - (embedding <=> $2::vector) AS score FROM ${r.table} WHERE tenant_id = $1 ORDER BY embedding <=> $2::vector LIMIT $3`,
    [r.tenantId, JSON.stringify(vector), topK],
  );
  return { matches: rows.map((x) => ({ id: x.id, score: x.score, metadata: x.metadata })) };
});

app.post("/v1/documents", async (req, reply) => {
  const r = route(req.headers.authorization);
  if (!r) return reply.code(401).send({ error: "unknown key" });
  const { documents } = req.body as { documents: { id: string; values: number[]; metadata?: object }[] };
  const records = documents.map((d) => ({ id: d.id, embedding: JSON.stringify(d.values), metadata: { ...d.metadata, tenant_id: r.tenantId } }));
  const { rowCount } = await pool.query(
    `INSERT INTO ${r.table} (tenant_id, id, embedding, metadata)
     SELECT $1, x.id, x.embedding::vector, x.metadata FROM jsonb_to_recordset($2::jsonb) AS x(id text, embedding text, metadata jsonb)
     ON CONFLICT (tenant_id, id) DO UPDATE SET embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata, updated_at = now()`,
    [r.tenantId, JSON.stringify(records)],
  );
  return { upserted: rowCount };
});

const address = await app.listen({ port: 0, host: "127.0.0.1" });
process.stdout.write(`${new URL(address).port}\n`);
process.on("SIGTERM", () => void app.close().then(() => pool.end()).then(() => process.exit(0)));
