import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { createBulkhead } from "../src/bulkhead.js";
import { SCHEMA_VERSION } from "../src/db/migrations.js";
import { ConfigError, DatabaseError } from "../src/errors.js";
import { dropTestSchemas, ownerUrl, postgres, serverUrl } from "./backends.js";

afterAll(dropTestSchemas);

describe.runIf(postgres)("postgres: roles and migrations", () => {
  it("runs as a runtime role that owns nothing and is subject to RLS", async () => {
    const { bulkhead: bh, db } = await postgres!.open({ config: { dimension: 4 } });
    try {
      const [role] = await db.query<{ current_user: string; rolsuper: boolean; rolbypassrls: boolean }>(
        "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
      );
      expect(role).toEqual({ current_user: "bulkhead_app", rolsuper: false, rolbypassrls: false });
      const owners = await db.query<{ owner: string }>(
        "SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r','p')",
        [db.schema],
      );
      expect(owners).toEqual([{ owner: "bulkhead_owner" }]);
      // The runtime role cannot switch RLS off on a table it can read.
      await bh.registry.registerTenant("t-1", "T", "free" as never);
      await expect(db.query("ALTER TABLE vec_1 DISABLE ROW LEVEL SECURITY")).rejects.toThrow(/must be owner/);
    } finally {
      await bh.close();
    }
  });

  it("refuses to start as a superuser", async () => {
    const superUrl = new URL(serverUrl!);
    superUrl.username = "postgres";
    await expect(createBulkhead({ database: superUrl.toString(), databaseOwnerUrl: ownerUrl, env: {}, config: { schema: `t_${randomBytes(4).toString("hex")}` } })).rejects.toThrow(
      ConfigError,
    );
  });

  it("says how to migrate when the schema is missing and no owner URL is given", async () => {
    const schema = `t_${randomBytes(4).toString("hex")}`;
    await expect(createBulkhead({ database: serverUrl, env: {}, config: { schema } })).rejects.toThrow(DatabaseError);
    await expect(createBulkhead({ database: serverUrl, env: {}, config: { schema } })).rejects.toThrow(/DATABASE_OWNER_URL/);
  });

  it("answers an unreachable server with a DatabaseError that says what to check", async () => {
    const dead = new URL(serverUrl!);
    dead.port = "1";
    const err = await createBulkhead({ database: dead.toString(), env: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(DatabaseError);
    expect(err.message).toMatch(/unavailable .*check that the server is running/);
  });

  it("migrates idempotently from several processes at once", async () => {
    const schema = `t_${randomBytes(4).toString("hex")}`;
    const opens = await Promise.all([1, 2, 3].map(() => createBulkhead({ database: serverUrl, databaseOwnerUrl: ownerUrl, env: {}, config: { schema } })));
    await Promise.all(opens.map((b) => b.close()));
    const c = new pg.Client({ connectionString: ownerUrl });
    await c.connect();
    try {
      const versions = Array.from({ length: SCHEMA_VERSION }, (_, i) => ({ version: i + 1 }));
      expect((await c.query(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`)).rows).toEqual(versions);
      await c.query(`DROP SCHEMA "${schema}" CASCADE`);
    } finally {
      await c.end();
    }
  });
});
