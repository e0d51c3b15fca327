import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import type { Queryable } from "../src/db/db.js";
import { ensurePgvector, MIGRATIONS } from "../src/db/migrations.js";
import { PgliteDb } from "../src/db/pglite-db.js";
import { dropTestSchemas, newTestSchema, ownerUrl, vec } from "./backends.js";

/**
 * Migration 18 on tables that already hold vectors and HNSW indexes (a fresh database has no
 * vector tables when it runs, so the suites never exercise its upgrade loop): the tables as earlier
 * migrations created them — a partitioned shared index with a namespace, and a dedicated index —
 * get `pending`, the one-value constraint and the partial index, and keep their rows and graphs.
 */
afterAll(dropTestSchemas);

const upgrade = MIGRATIONS.find((m) => m.version === 18)!;
// Its first statement is the loop over existing tables; the rest replaces create_vector_table.
const upgradeLoop = (schema: string) => upgrade.sql({ schema, runtimeRole: "unused", dataRole: null, vectorSchema: "public" }).split("\n$fn$;")[0] + "\n$fn$;";

async function exercise(db: Queryable, schema: string): Promise<void> {
  const s = `"${schema}"`;
  await db.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
  // As migrations 1–17 shaped them.
  await db.query(`CREATE TABLE ${s}.vec_1 (tenant_id text NOT NULL, id text NOT NULL, embedding vector(8) NOT NULL, metadata jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, id)) PARTITION BY LIST (tenant_id)`);
  await db.query(`CREATE TABLE ${s}.vec_1_1 PARTITION OF ${s}.vec_1 FOR VALUES IN ('tenant-a')`);
  await db.query(`CREATE TABLE ${s}.vec_2 (tenant_id text NOT NULL, id text NOT NULL, embedding vector(8) NOT NULL, metadata jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, id))`);
  for (const [table, tenant] of [["vec_1", "tenant-a"], ["vec_2", "tenant-e"]] as const) {
    for (let i = 0; i < 40; i++) await db.query(`INSERT INTO ${s}.${table} (tenant_id, id, embedding, metadata) VALUES ($1, $2, $3::vector, '{}')`, [tenant, `d${i}`, JSON.stringify(vec(i))]);
  }
  await db.query(`CREATE INDEX vec_1_1_hnsw ON ${s}.vec_1_1 USING hnsw (embedding vector_l2_ops)`);
  await db.query(`CREATE INDEX vec_2_hnsw ON ${s}.vec_2 USING hnsw (embedding vector_l2_ops)`);

  await db.query(upgradeLoop(schema));

  for (const [table, tenant] of [["vec_1", "tenant-a"], ["vec_2", "tenant-e"]] as const) {
    const columns = await db.query<{ column_name: string; is_nullable: string }>(
      `SELECT column_name, is_nullable FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name IN ('embedding', 'pending') ORDER BY 1`,
      [schema, table],
    );
    expect(columns).toEqual([{ column_name: "embedding", is_nullable: "YES" }, { column_name: "pending", is_nullable: "YES" }]);
    // The rows and the graph are kept; a write beside the graph is allowed, a row with both or neither is not.
    expect((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${s}.${table} WHERE embedding IS NOT NULL`))[0]!.n).toBe(40);
    await db.query(`INSERT INTO ${s}.${table} (tenant_id, id, pending, metadata) VALUES ($1, 'new', $2::vector, '{}')`, [tenant, JSON.stringify(vec(99))]);
    const insertBad = `INSERT INTO ${s}.${table} (tenant_id, id, embedding, pending, metadata) VALUES ($1, 'bad', $2::vector, $3::vector, '{}')`;
    await expect(db.query(insertBad, [tenant, JSON.stringify(vec(98)), JSON.stringify(vec(98))])).rejects.toThrow(/one_value/);
    await expect(db.query(insertBad, [tenant, null, null])).rejects.toThrow(/one_value/);
    const nearest = await db.query<{ id: string }>(`SELECT id FROM ${s}.${table} WHERE tenant_id = $1 AND pending IS NOT NULL ORDER BY pending <-> $2::vector LIMIT 1`, [tenant, JSON.stringify(vec(99))]);
    expect(nearest.map((r) => r.id)).toEqual(["new"]);
  }
  const indexes = (await db.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 ORDER BY 1`, [schema])).map((r) => r.indexname);
  expect(indexes).toEqual(expect.arrayContaining(["vec_1_1_hnsw", "vec_2_hnsw", "vec_1_pending", "vec_2_pending"]));
  // The namespace (a partition) got the partial index through its parent's.
  expect(indexes.some((name) => name.startsWith("vec_1_1_") && name !== "vec_1_1_hnsw" && name !== "vec_1_1_pkey")).toBe(true);
}

describe("migration 18 on existing vector tables", () => {
  it("pglite", async () => {
    const db = await PgliteDb.open("memory://", "bulkhead");
    try {
      await ensurePgvector(db.owner);
      await exercise(db.owner, "upgrade_test");
    } finally {
      await db.close();
    }
  });

  it.runIf(ownerUrl)("postgres", async () => {
    const client = new pg.Client({ connectionString: ownerUrl });
    await client.connect();
    try {
      await exercise({ query: async (text: string, params?: readonly unknown[]) => (await client.query(text, params as unknown[])).rows } as unknown as Queryable, newTestSchema());
    } finally {
      await client.end();
    }
  });
});
