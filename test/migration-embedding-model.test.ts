import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import type { Queryable } from "../src/db/db.js";
import { ensurePgvector, MIGRATIONS, splitStatements } from "../src/db/migrations.js";
import { PgliteDb } from "../src/db/pglite-db.js";
import { dropTestSchemas, newTestSchema, ownerUrl } from "./backends.js";

/**
 * Migration 24 on chunks that already have vectors (a fresh database has none when it runs, so
 * the suites never exercise it on old rows): they are kept, naming no model — found by full text
 * until stored again — while every chunk written afterwards must name the model of its vector.
 */
afterAll(dropTestSchemas);

const migration = MIGRATIONS.find((m) => m.version === 24)!;

async function exercise(db: Queryable, schema: string): Promise<void> {
  const s = `"${schema}"`;
  await db.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
  // The columns of text_chunks that migration 24 concerns, as migrations 20–22 left them.
  await db.query(`CREATE TABLE ${s}.text_chunks (tenant_id text NOT NULL, document_id text NOT NULL, position int NOT NULL, body text NOT NULL, embedding vector, PRIMARY KEY (tenant_id, document_id, position))`);
  await db.query(`INSERT INTO ${s}.text_chunks VALUES ('tenant-a', 'old', 0, 'embedded before', '[1,0,0]'), ('tenant-a', 'old', 1, 'never embedded', NULL)`);

  for (const statement of splitStatements(migration.sql({ schema, runtimeRole: "unused", dataRole: null, vectorSchema: "public" }))) await db.query(statement);

  expect(await db.query(`SELECT position, embedding IS NOT NULL AS embedded, embedding_model FROM ${s}.text_chunks ORDER BY position`)).toEqual([
    { position: 0, embedded: true, embedding_model: null },
    { position: 1, embedded: false, embedding_model: null },
  ]);
  const insert = `INSERT INTO ${s}.text_chunks (tenant_id, document_id, position, body, embedding, embedding_model) VALUES ('tenant-a', 'new', $1, 'x', $2::vector, $3)`;
  await db.query(insert, [0, "[0,1,0]", "text-embedding-3-small"]);
  await db.query(insert, [1, null, null]);
  await expect(db.query(insert, [2, "[0,1,0]", null])).rejects.toThrow(/text_chunks_embedding_model/);
  await expect(db.query(insert, [3, null, "text-embedding-3-small"])).rejects.toThrow(/text_chunks_embedding_model/);
  const stats = await db.query<{ attstattarget: number }>(`SELECT attstattarget FROM pg_attribute WHERE attrelid = '${schema}.text_chunks'::regclass AND attname = 'embedding_model'`);
  expect(stats).toEqual([{ attstattarget: 0 }]);
}

describe("migration 24 on chunks embedded before it", () => {
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
