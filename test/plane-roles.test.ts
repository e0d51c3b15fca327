import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { openBulkhead } from "../src/bulkhead.js";
import type { Db, Queryable } from "../src/db/db.js";
import { PgliteDb } from "../src/db/pglite-db.js";
import { TenantProofs } from "../src/db/tenant-proofs.js";
import { ConfigError } from "../src/errors.js";
import { TenantTier } from "../src/config.js";
import { asOwner, BACKENDS, dataUrl, dropTestSchemas, newTestSchema, ownerUrl, serverUrl, vec } from "./backends.js";

afterAll(dropTestSchemas);

/**
 * Runs `fn` over a connection of the data-plane role, as someone holding its credential would:
 * on a server a new login with DATABASE_DATA_URL; embedded (no logins) the superuser handle
 * switched to the role for one transaction, rolled back after.
 */
async function asDataRole<T>(db: Db, fn: (q: Queryable) => Promise<T>): Promise<T> {
  if (db instanceof PgliteDb) {
    const q = db.owner;
    await q.query("BEGIN");
    try {
      await q.query(`SET LOCAL ROLE ${db.dataPlaneRole}`);
      return await fn(q);
    } finally {
      await q.query("ROLLBACK");
    }
  }
  const client = new pg.Client({ connectionString: dataUrl });
  await client.connect();
  try {
    await client.query(`SET search_path = "${db.schema}", public`);
    return await fn({ query: async (text, params = []) => (await client.query(text, params as unknown[])).rows });
  } finally {
    await client.end();
  }
}

/**
 * A caller's temporary objects named like Bulkhead's (found by the outside attack run): a temporary
 * `context_secret` holding a secret the caller knows, then a temporary view of that name whose
 * function records who runs it. With a SECURITY DEFINER function searching pg_temp first, the first
 * proved any tenant and the second ran as the owner. Needs a role that may create temporary tables.
 */
async function shadowingAttack(q: Queryable, table: string): Promise<{ forgedRows: number; currentTenant: string | null; ranAs: string[] }> {
  await q.query("CREATE TEMP TABLE context_secret (singleton boolean, secret bytea)");
  await q.query("INSERT INTO context_secret VALUES (true, '\\x00')");
  await q.query("GRANT SELECT ON pg_temp.context_secret TO PUBLIC");
  await q.query(
    "SELECT set_config('bulkhead.tenant_id', 'tenant-a', true), set_config('bulkhead.tenant_proof', encode(sha256('\\x00'::bytea || sha256('\\x00'::bytea || convert_to('tenant-a', 'UTF8'))), 'hex'), true)",
  );
  const [{ n: forgedRows }] = (await q.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)) as [{ n: number }];
  const [{ t: currentTenant }] = (await q.query<{ t: string | null }>("SELECT current_tenant() AS t")) as [{ t: string | null }];
  await q.query("DROP TABLE pg_temp.context_secret");
  await q.query("CREATE TEMP TABLE loot (who text)");
  await q.query("GRANT INSERT ON pg_temp.loot TO PUBLIC");
  await q.query("CREATE FUNCTION pg_temp.steal() RETURNS bytea LANGUAGE plpgsql AS $f$ BEGIN INSERT INTO pg_temp.loot VALUES (current_user); RETURN '\\x00'; END $f$");
  await q.query("CREATE TEMP VIEW context_secret AS SELECT true AS singleton, pg_temp.steal() AS secret");
  await q.query("GRANT SELECT ON pg_temp.context_secret TO PUBLIC");
  await q.query("SELECT current_tenant()");
  await q.query("SAVEPOINT placement");
  // Refused (no proof), after reading tenants: what matters is who ran what on the way.
  await q.query("SELECT check_placement('tenant-a', 0)").catch(() => q.query("ROLLBACK TO SAVEPOINT placement"));
  const ranAs = (await q.query<{ who: string }>("SELECT who FROM pg_temp.loot")).map((r) => r.who);
  return { forgedRows, currentTenant, ranAs };
}

/** The SQLSTATE a statement fails with, or "ok" and its rows' count. */
async function outcome(q: Queryable, text: string, params: unknown[] = []): Promise<string> {
  try {
    const rows = await q.query(text, params);
    return `ok:${rows.length}`;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

for (const backend of BACKENDS) {
  describe(`${backend.name}: the data-plane role (a stolen DATABASE_DATA_URL)`, () => {
    it("reaches no control-plane table, DDL function or secret, and no tenant's rows without the tenant's proof", async () => {
      const { bulkhead: bh, db } = await backend.open({ config: { dimension: 8 } });
      try {
        expect(db.dataPlaneRole).not.toBeNull();
        await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
        await bh.registry.registerTenant("tenant-b", "B", TenantTier.ENTERPRISE);
        await bh.dataManager.upsertDocuments("tenant-a", [{ id: "a-1", values: vec(1), metadata: { secret: "of A" } }]);
        const a = (await bh.registry.getTenant("tenant-a")).placement;
        const b = (await bh.registry.getTenant("tenant-b")).placement;
        const epoch = a.epoch;

        const seen = await asDataRole(db, async (q) => {
          // Each attack in its own savepoint, so one refusal does not abort the rest (embedded runs them in one transaction).
          const attempt = async (text: string, params: unknown[] = []) => {
            await q.query("SAVEPOINT attack");
            const result = await outcome(q, text, params);
            await q.query(result.startsWith("ok") ? "RELEASE SAVEPOINT attack" : "ROLLBACK TO SAVEPOINT attack");
            return result;
          };
          await q.query("BEGIN").catch(() => {}); // a server connection: one transaction for the savepoints (embedded: already in one)
          const forge = (tenant: string, proof = "0".repeat(64)) =>
            q.query("SELECT set_config('bulkhead.tenant_id', $1, true), set_config('bulkhead.tenant_proof', $2, true)", [tenant, proof]);
          const r: Record<string, string> = {
            // Item 7's list: mint an admin key, destroy or create storage, rewrite the catalogue.
            "insert api_keys": await attempt("INSERT INTO api_keys (id, kind, tenant, scopes, name, hash) VALUES ('0123456789abcdef', 'admin', NULL, '{}', 'x', sha256('x'))"),
            "read api_keys": await attempt("SELECT * FROM api_keys"),
            "drop_vector_storage": await attempt("SELECT drop_vector_storage($1, $2)", [a.indexId, a.slot]),
            "create_vector_table": await attempt("SELECT create_vector_table(9999, 8, false)"),
            "create_namespace": await attempt("SELECT create_namespace($1, 99, 'tenant-x')", [a.indexId]),
            "build_ann_index": await attempt("SELECT build_ann_index($1, $2, 'vector_l2_ops', 16, 64)", [a.indexId, a.slot]),
            "build_ann_index with its memory": await attempt("SELECT build_ann_index($1, $2, 'vector_l2_ops', 16, 64, 65536)", [a.indexId, a.slot]),
            "write tenants": await attempt("UPDATE tenants SET tier = 'enterprise'"),
            "read tenants": await attempt("SELECT * FROM tenants"),
            "read context_secret": await attempt("SELECT * FROM context_secret"),
            "write usage_events": await attempt("INSERT INTO usage_events (tenant_id, occurred_at, period, kind, quantity, cost_pico) VALUES ('tenant-a', now(), '2026-11', 'query', 1, 1)"),
            "read audit_log": await attempt("SELECT * FROM audit_log"),
            "grant_data_plane": await attempt("SELECT grant_data_plane('bulkhead_app')"),
            // Setting A's id without A's proof: RLS shows nothing and refuses every write.
            "forged: set": (await forge("tenant-a"), "done"),
            "forged: read A": await attempt(`SELECT * FROM vec_${a.indexId}`),
            "forged: insert into A": await attempt(`INSERT INTO vec_${a.indexId} (tenant_id, id, embedding, metadata) VALUES ('tenant-a', 'x', $1::vector, '{}')`, [JSON.stringify(vec(2))]),
            "forged: delete A": await attempt(`DELETE FROM vec_${a.indexId} RETURNING id`),
            "forged: A's document count": await attempt("UPDATE document_counts SET documents = 0 RETURNING 1"),
            "forged: spend A's daily queries": await attempt("SELECT count_daily_query('tenant-a', current_date, 1000000)"),
            "forged: lock A's writes": await attempt("SELECT lock_tenant_writes('tenant-a')"),
            "forged: hold A's placement": await attempt("SELECT check_placement('tenant-a', $1)", [epoch]),
            "forged: read B's dedicated index": await attempt(`SELECT * FROM vec_${b.indexId}`),
          };
          await q.query("ROLLBACK").catch(() => {});
          return r;
        });
        const denied = "42501";
        expect(seen).toEqual({
          "insert api_keys": denied,
          "read api_keys": denied,
          drop_vector_storage: denied,
          create_vector_table: denied,
          create_namespace: denied,
          build_ann_index: denied,
          "build_ann_index with its memory": denied,
          "write tenants": denied,
          "read tenants": denied,
          "read context_secret": denied,
          "write usage_events": denied,
          "read audit_log": denied,
          grant_data_plane: denied,
          "forged: set": "done",
          "forged: read A": "ok:0",
          "forged: insert into A": denied, // new row violates row-level security policy
          "forged: delete A": "ok:0",
          "forged: A's document count": "ok:0",
          "forged: spend A's daily queries": denied,
          "forged: lock A's writes": denied,
          "forged: hold A's placement": denied,
          "forged: read B's dedicated index": "ok:0",
        });
        // Nothing above changed A: its document and count are as written.
        expect((await bh.dataManager.fetchDocuments("tenant-a", ["a-1"])).documents.map((d) => d.metadata.secret)).toEqual(["of A"]);
        expect(await db.queryAsTenant("tenant-a", "SELECT documents::int AS n FROM document_counts")).toEqual([{ n: 1 }]);
      } finally {
        await bh.close();
      }
    });

    it("cannot forge a proof or run as the owner through temporary objects named like Bulkhead's (pg_temp is searched last)", async () => {
      const { bulkhead: bh, db } = await backend.open({ config: { dimension: 8 } });
      try {
        await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
        await bh.dataManager.upsertDocuments("tenant-a", [{ id: "a-1", values: vec(1), metadata: {} }]);
        const table = `vec_${(await bh.registry.getTenant("tenant-a")).placement.indexId}`;
        if (db instanceof PgliteDb) {
          // Embedded roles keep PostgreSQL's default TEMPORARY privilege: the functions' search path is what stops it.
          expect(await asDataRole(db, (q) => shadowingAttack(q, table))).toEqual({ forgedRows: 0, currentTenant: null, ranAs: [] });
          return;
        }
        // On a prepared server the data role cannot create temporary objects at all…
        expect(await asDataRole(db, (q) => outcome(q, "CREATE TEMP TABLE context_secret (secret bytea)"))).toBe("42501");
        // …and were it allowed to (a role with its privileges plus TEMPORARY), the search path still holds.
        const superuser = new URL(serverUrl!);
        superuser.username = "postgres";
        const su = new pg.Client({ connectionString: superuser.toString() });
        await su.connect();
        try {
          await su.query(`DO $$ BEGIN CREATE ROLE bh_test_temp_attacker NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
          await su.query(`GRANT TEMPORARY ON DATABASE "${superuser.pathname.slice(1)}" TO bh_test_temp_attacker`);
          await su.query(`GRANT "${db.dataPlaneRole}" TO bh_test_temp_attacker`);
          await su.query("BEGIN");
          await su.query(`SET LOCAL search_path = "${db.schema}", public`);
          await su.query("SET LOCAL ROLE bh_test_temp_attacker");
          const q: Queryable = { query: async (text, params = []) => (await su.query(text, params as unknown[])).rows };
          expect(await shadowingAttack(q, table)).toEqual({ forgedRows: 0, currentTenant: null, ranAs: [] });
        } finally {
          await su.query("ROLLBACK").catch(() => {});
          await su.end();
        }
      } finally {
        await bh.close();
      }
    });

    it("a proof opens its own tenant only, and the service's data requests run as the data-plane role", async () => {
      const { bulkhead: bh, db } = await backend.open({ config: { dimension: 8 } });
      try {
        await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
        await bh.registry.registerTenant("tenant-b", "B", TenantTier.PRO);
        await bh.dataManager.upsertDocuments("tenant-a", [{ id: "a-1", values: vec(1), metadata: {} }]);
        await bh.dataManager.upsertDocuments("tenant-b", [{ id: "b-1", values: vec(2), metadata: {} }]);
        const a = (await bh.registry.getTenant("tenant-a")).placement;
        const { prove } = await TenantProofs.load(db);
        const rows = await asDataRole(db, async (q) => {
          const read = async (tenant: string, proof: string) => {
            await q.query("BEGIN").catch(() => {});
            await q.query("SELECT set_config('bulkhead.tenant_id', $1, true), set_config('bulkhead.tenant_proof', $2, true)", [tenant, proof]);
            const ids = (await q.query<{ id: string }>(`SELECT id FROM vec_${a.indexId} ORDER BY id`)).map((r) => r.id);
            if (!(db instanceof PgliteDb)) await q.query("COMMIT");
            return ids;
          };
          return { own: await read("tenant-a", prove("tenant-a")), borrowed: await read("tenant-b", prove("tenant-a")), upper: await read("tenant-a", prove("tenant-a").toUpperCase()) };
        });
        expect(rows).toEqual({ own: ["a-1"], borrowed: [], upper: [] });
        const [who] = await db.dataPlane.queryAsTenant<{ role: string }>("tenant-a", "SELECT current_user AS role");
        expect(who!.role).toBe(db.dataPlaneRole);
        expect(db.dataPlaneRole).not.toBe((await db.query<{ role: string }>("SELECT current_user AS role"))[0]!.role);
        // The readiness checklist says the same.
        const checks = await bh.readiness({ probeTenants: ["tenant-a", "tenant-b"], sampleTenant: "tenant-a" });
        const names = ["Tenant requests run as a data-plane role that cannot reach the control plane", "A tenant context without its proof shows no rows", "Functions that run as the owner cannot be led to a caller's objects"];
        expect(checks.filter((c) => names.includes(c.name)).map((c) => [c.name, c.passed, c.detail])).toEqual(names.map((n) => [n, true, expect.any(String)]));
        // A function that loses its pinned search path (pg_temp searched first again) fails the checklist, named.
        await asOwner(db, `ALTER FUNCTION current_tenant() SET search_path = "${db.schema}", pg_catalog`);
        const pinned = (await bh.readiness()).find((c) => c.name === names[2])!;
        expect(pinned).toMatchObject({ passed: false, detail: expect.stringContaining("current_tenant()") });
      } finally {
        await bh.close();
      }
    });
  });
}

describe.runIf(serverUrl && ownerUrl && dataUrl)("postgres: the data-plane role on a prepared server", () => {
  it("cannot take advisory locks or read per-table statistics (scripts/harden-catalogue.sql)", async () => {
    const { bulkhead: bh, db } = await openBulkhead({ database: serverUrl, databaseOwnerUrl: ownerUrl, databaseDataUrl: dataUrl, env: {}, config: { dimension: 8, schema: newTestSchema() } });
    try {
      await bh.registry.registerTenant("tenant-a", "A", TenantTier.PRO);
      const a = (await bh.registry.getTenant("tenant-a")).placement;
      const partition = `vec_${a.indexId}_${a.slot}`;
      const seen = await asDataRole(db, async (q) => ({
        "placement lock": await outcome(q, "SELECT pg_advisory_xact_lock(hashtext('bulkhead.tenant-placement.' || $1 || '.tenant-a'))", [db.schema]),
        "try lock": await outcome(q, "SELECT pg_try_advisory_lock(1)"),
        "pg_stat_user_tables": await outcome(q, "SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = $1", [partition]),
        "live tuples": await outcome(q, "SELECT pg_stat_get_live_tuples($1::regclass)", [partition]),
        "relation size": await outcome(q, "SELECT pg_relation_size($1::regclass)", [partition]),
      }));
      expect(seen).toEqual({ "placement lock": "42501", "try lock": "42501", pg_stat_user_tables: "42501", "live tuples": "42501", "relation size": "42501" });
    } finally {
      await bh.close();
    }
  });

  it("refuses to start with a data-plane URL that is the control-plane role, or the owner", async () => {
    for (const wrong of [serverUrl!, ownerUrl!]) {
      const opened = openBulkhead({ database: serverUrl, databaseOwnerUrl: ownerUrl, databaseDataUrl: wrong, env: {}, config: { dimension: 8, schema: newTestSchema() } });
      await expect(opened).rejects.toBeInstanceOf(ConfigError);
      await expect(opened).rejects.toThrow(/DATABASE_DATA_URL connects as a role unfit for the data plane: .*(is the control-plane role itself|owns)/);
    }
  });

  it("warns when no data-plane URL is given, and its readiness check fails", async () => {
    const warnings: string[] = [];
    const { bulkhead: bh } = await openBulkhead({ database: serverUrl, databaseOwnerUrl: ownerUrl, env: {}, config: { dimension: 8, schema: newTestSchema() }, warn: (m) => warnings.push(m) });
    try {
      expect(warnings.join("\n")).toMatch(/DATABASE_DATA_URL is not set/);
      const check = (await bh.readiness()).find((c) => c.name === "Tenant requests run as a data-plane role that cannot reach the control plane");
      expect(check).toMatchObject({ passed: false, detail: expect.stringMatching(/DATABASE_DATA_URL is not set/) });
    } finally {
      await bh.close();
    }
  });
});
