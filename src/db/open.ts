import { resolve } from "node:path";
import type { BulkheadConfig } from "../config.js";
import { ConfigError, DatabaseError } from "../errors.js";
import { acquireDataDirLock } from "./data-dir-lock.js";
import type { Db, Queryable } from "./db.js";
import { ensurePgvector, migrate, SCHEMA_VERSION, type MigrationContext, type OwnerConnection } from "./migrations.js";
import { EMBEDDED_DATA_ROLE, EMBEDDED_RUNTIME_ROLE, PgliteDb } from "./pglite-db.js";
import { openPool, PostgresDb, translateError } from "./postgres-db.js";
import type { ConnectionPool } from "./connection-pool.js";
import { checkDataRole, checkRuntimeRole, checkServerVersion } from "./server-checks.js";
import { TenantProofs } from "./tenant-proofs.js";

/** Where to log start-up warnings. */
export type Warn = (message: string) => void;

const isServerUrl = (url: string) => /^postgres(ql)?:\/\//.test(url);

/**
 * Opens the configured database, brings its schema up to date and checks the runtime role.
 * `memory://` or a directory → embedded PGlite; `postgres://…` → a server, where migrations run
 * over `databaseOwnerUrl` and the service itself connects as the (non-owner) runtime role.
 */
export async function openDatabase(config: BulkheadConfig, warn: Warn): Promise<Db> {
  const url = config.databaseUrl;
  if (!isServerUrl(url)) return openEmbedded(url, config.schema);
  for (const [name, other] of [["DATABASE_OWNER_URL", config.databaseOwnerUrl], ["DATABASE_DATA_URL", config.databaseDataUrl]] as const) {
    if (other !== undefined && !isServerUrl(other)) throw new ConfigError(`${name} must be a postgres:// URL like DATABASE_URL`);
  }
  return openServer(url, config, warn);
}

/**
 * In-memory databases of this process start as copies of the first one, taken right after it was
 * migrated (per schema): a copy opens in ~0.8 s where creating and migrating takes ~3 s on this
 * machine kind (tests open hundreds). Each copy gets a context secret of its own.
 */
const memoryImages = new Map<string, Promise<File | Blob>>();

/**
 * The migrated image in-memory databases of `schema` start from in this process, taken now if
 * there is none yet. A test runner takes it once and hands it to each worker (`useMemoryImage`),
 * so no test file pays for creating and migrating a database of its own.
 */
export async function memoryImage(schema: string): Promise<Blob> {
  if (!memoryImages.has(schema)) await (await openEmbedded("memory://", schema)).close();
  return memoryImages.get(schema)!;
}

/** In-memory databases of `schema` start as copies of `image` (from `memoryImage`, of the same code). */
export function useMemoryImage(schema: string, image: Blob): void {
  memoryImages.set(schema, Promise.resolve(image));
}

async function openEmbedded(location: string, schema: string): Promise<Db> {
  const dir = location === "memory://" ? location : resolve(location.replace(/^file:\/\//, ""));
  // One process per data directory, refused before PGlite touches a file (see data-dir-lock.ts).
  const release = dir === "memory://" ? () => {} : acquireDataDirLock(dir);
  const image = dir === "memory://" ? await memoryImages.get(schema)?.catch(() => undefined) : undefined;
  let db: PgliteDb;
  try {
    db = await PgliteDb.open(dir, schema, image);
  } catch (err) {
    release();
    throw new DatabaseError(`could not open the embedded database at ${dir}: ${(err as Error).message}`, { cause: err });
  }
  // The lock is let go only once PGlite has written everything back and closed.
  const close = db.close.bind(db);
  db.close = async () => {
    try {
      await close();
    } finally {
      release();
    }
  };
  try {
    const owner = db.owner;
    if (image) {
      await owner.query(NEW_CONTEXT_SECRET);
    } else {
      for (const role of [EMBEDDED_RUNTIME_ROLE, EMBEDDED_DATA_ROLE]) {
        await db.exec(`DO $$ BEGIN CREATE ROLE ${role} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
      }
      const vectorSchema = await ensurePgvector(owner);
      await migrate(ownerConnection(owner), { schema, runtimeRole: EMBEDDED_RUNTIME_ROLE, dataRole: EMBEDDED_DATA_ROLE, vectorSchema });
      if (dir === "memory://" && !memoryImages.has(schema)) {
        // Taken before anything else runs in this database, so copies start exactly as migrated.
        const taken = db.image();
        memoryImages.set(schema, taken);
        await taken;
      }
    }
    db.useProofs((await TenantProofs.load(owner)).prove);
    return db;
  } catch (err) {
    await db.close();
    throw err;
  }
}

/** A fresh context secret (as migration 13 draws it), for a database copied from another. */
const NEW_CONTEXT_SECRET = "UPDATE context_secret SET secret = sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()))";

async function openServer(url: string, config: BulkheadConfig, warn: Warn): Promise<Db> {
  const deadlines = { timeoutMs: config.dbTimeoutMs, longTimeoutMs: config.dbLongTimeoutMs };
  const pool = openPool(url, config.schema, config.poolSize, deadlines);
  // Used until the context secret is read: control-plane statements only.
  const control = new PostgresDb(pool, config.schema, url, deadlines);
  const dataUrl = config.databaseDataUrl;
  let dataPool: ConnectionPool | undefined;
  try {
    const runtimeRole = await currentRole(control);
    let dataRole: string | null = null;
    if (dataUrl) {
      dataPool = openPool(dataUrl, config.schema, config.poolSize, deadlines);
      dataRole = await currentRole(new PostgresDb(dataPool, config.schema, dataUrl, deadlines)).catch((err) => {
        throw translateError(err, dataUrl);
      });
    }
    if (config.databaseOwnerUrl) {
      await migrateWithOwner(config.databaseOwnerUrl, { schema: config.schema, runtimeRole, dataRole, vectorSchema: "" });
    }
    const version = await schemaVersion(control);
    if (version !== SCHEMA_VERSION) {
      throw new DatabaseError(
        `schema "${config.schema}" is at version ${version ?? "none"}, this Bulkhead needs ${SCHEMA_VERSION}: ` +
          "set DATABASE_OWNER_URL to the owner role's URL so Bulkhead migrates on start, or run `bulkhead db migrate` with it set",
      );
    }
    const role = await checkRuntimeRole(control, config.schema);
    if (!role.ok) {
      throw new ConfigError(`DATABASE_URL connects as a role that row-level security cannot contain: ${role.problems.join("; ")}. Connect as a dedicated runtime role (see README, "Running on a PostgreSQL server").`);
    }
    if (dataRole) {
      const verdict = await checkDataRole(control, config.schema, dataRole, runtimeRole);
      if (!verdict.ok) throw new ConfigError(`DATABASE_DATA_URL connects as a role unfit for the data plane: ${verdict.problems.join("; ")} (see README, "Running on a PostgreSQL server")`);
      if (verdict.exposures.length) warn(`WARNING: ${verdict.exposures.join("; ")}: run scripts/harden-catalogue.sql as a superuser in this database (scripts/setup-postgres.sh does)`);
    } else {
      warn("WARNING: DATABASE_DATA_URL is not set: tenant data requests run as the control-plane role, so a stolen DATABASE_URL reaches keys, tenants and DDL too (see README, \"Running on a PostgreSQL server\")");
    }
    const verdict = await checkServerVersion(control);
    if (!verdict.ok) warn(`WARNING: ${verdict.reason}`);
    const { prove } = await TenantProofs.load(control);
    const dataPlane = dataPool && dataRole ? { db: new PostgresDb(dataPool, config.schema, dataUrl!, deadlines, prove), role: dataRole } : undefined;
    return new PostgresDb(pool, config.schema, url, deadlines, prove, dataPlane);
  } catch (err) {
    await pool.end();
    await dataPool?.end();
    throw translateError(err, url);
  }
}

async function currentRole(db: Db): Promise<string> {
  const [who] = await db.query<{ role: string }>("SELECT current_user AS role");
  return who!.role;
}

async function schemaVersion(db: Db): Promise<number | null> {
  const [exists] = await db.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
  if (!exists?.t) return null;
  const [row] = await db.query<{ v: number | null }>("SELECT max(version) AS v FROM schema_migrations");
  return row?.v ?? null;
}

/** Wraps one dedicated owner connection so migrations can run in a transaction on it. */
function ownerConnection(q: Queryable): OwnerConnection {
  return {
    query: q.query,
    async transaction(fn) {
      await q.query("BEGIN");
      try {
        const result = await fn(q);
        await q.query("COMMIT");
        return result;
      } catch (err) {
        await q.query("ROLLBACK");
        throw err;
      }
    },
  };
}

/** Runs migrations over a short-lived owner connection. */
export async function migrateWithOwner(ownerUrl: string, ctx: MigrationContext): Promise<number[]> {
  const pool = openPool(ownerUrl, ctx.schema, 1);
  try {
    const client = await pool.acquire();
    try {
      const q: Queryable = { query: async (text, params = []) => (await client.query(text, params as unknown[])).rows };
      const vectorSchema = ctx.vectorSchema || (await ensurePgvector(q));
      return await migrate(ownerConnection(q), { ...ctx, vectorSchema });
    } finally {
      pool.release(client);
    }
  } finally {
    await pool.end();
  }
}

/**
 * The server's schema over the owner role, for offline administration only (`bulkhead keys
 * create-admin` with DATABASE_OWNER_URL): no runtime-role checks — the owner is what they refuse —
 * and no migration; the schema must be current. Never used to serve tenants.
 */
export async function openOwnerDatabase(ownerUrl: string, schema: string): Promise<Db> {
  if (!isServerUrl(ownerUrl)) throw new ConfigError("DATABASE_OWNER_URL must be a postgres:// URL");
  const pool = openPool(ownerUrl, schema, 1);
  const db = new PostgresDb(pool, schema, ownerUrl);
  try {
    const version = await schemaVersion(db);
    if (version !== SCHEMA_VERSION) throw new DatabaseError(`schema "${schema}" is at version ${version ?? "none"}, this Bulkhead needs ${SCHEMA_VERSION}: run \`bulkhead db migrate\` first`);
    return new PostgresDb(pool, schema, ownerUrl, undefined, (await TenantProofs.load(db)).prove);
  } catch (err) {
    await db.close();
    throw translateError(err, ownerUrl);
  }
}
