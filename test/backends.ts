import { randomBytes } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import pg from "pg";
import { inject } from "vitest";
import { openBulkhead, type Bulkhead, type BulkheadOptions } from "../src/bulkhead.js";
import { useMemoryImage } from "../src/db/open.js";
import type { StoreCapabilities } from "../src/stores/store.js";
import type { Db } from "../src/db/db.js";
import { PgliteDb } from "../src/db/pglite-db.js";
import { PineconeStandin } from "./pinecone-standin.js";

export interface Backend {
  name: string;
  /** Opens a fresh, isolated Bulkhead (own in-memory database, or own schema on the server). */
  open(options?: BulkheadOptions): ReturnType<typeof openBulkhead>;
  /** The same with a second store, the cell "cell-2" (another in-memory database, or the server's `<database>_cell`). */
  openWithCell(options?: BulkheadOptions): ReturnType<typeof openBulkhead>;
  /**
   * Makes every write into the index `indexId` of the last open fail, as a full disk would, until
   * `undo` is called; `reason` matches how the store reports it.
   */
  failWritesInto(db: Db, indexId: number): Promise<WriteFault>;
}

export interface WriteFault {
  reason: RegExp;
  undo(): Promise<void>;
}

/** A trigger refusing every write into the index's table, created by the owner (what only a DBA could do). */
async function refuseWritesInTable(db: Db, indexId: number): Promise<WriteFault> {
  await asOwner(db, "CREATE OR REPLACE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no space left on device (test)'; END $$");
  await asOwner(db, `CREATE TRIGGER refuse_writes BEFORE INSERT OR UPDATE ON vec_${indexId} FOR EACH ROW EXECUTE FUNCTION refuse_writes()`);
  return { reason: /no space left on device \(test\)/, undo: () => asOwner(db, `DROP TRIGGER refuse_writes ON vec_${indexId}`) };
}

/** The same URL with the database `<name>_cell` (created by `scripts/setup-postgres.sh bulkhead_cell`). */
const cellDatabase = (url: string) => url.replace(/\/([^/?]+)(\?|$)/, (_m, db: string, rest: string) => `/${db}_cell${rest}`);
const withCell = (options: BulkheadOptions, cell: { url: string; ownerUrl?: string; dataUrl?: string }): BulkheadOptions => ({ ...options, config: { ...options.config, cells: { "cell-2": cell } } });

const serverUrl = process.env.DATABASE_URL?.startsWith("postgres") ? process.env.DATABASE_URL : undefined;
const ownerUrl = process.env.DATABASE_OWNER_URL;
/** The data-plane role's URL (scripts/setup-postgres.sh prints it); the server suites run with the roles split. */
const dataUrl = process.env.DATABASE_DATA_URL;

if (process.env.CI && (!serverUrl || !ownerUrl || !dataUrl)) {
  // In CI the server suites are part of the contract: skipping them must fail the run.
  throw new Error("CI is set but DATABASE_URL / DATABASE_DATA_URL / DATABASE_OWNER_URL are not: the PostgreSQL server suites would be skipped");
}

const schemas: string[] = [];

/**
 * `BULKHEAD_TEST_SMALL_TENANTS=pool npm test` runs every suite with small tenants in a pool (a
 * test's own config still decides): the isolation suites must hold for either placement.
 */
const placementDefault = process.env.BULKHEAD_TEST_SMALL_TENANTS ? { smallTenants: process.env.BULKHEAD_TEST_SMALL_TENANTS } : {};
const withDefaults = (options: BulkheadOptions): BulkheadOptions => ({ ...options, config: { ...placementDefault, ...options.config } as BulkheadOptions["config"] });

// In-memory databases start from the image test/setup-image.ts migrated once for the whole run.
const image = inject("pgliteImage");
if (image) useMemoryImage("bulkhead", new Blob([readFileSync(image)]));

export const pglite: Backend = {
  name: "pglite",
  open: (options = {}) => openBulkhead({ ...withDefaults(options), database: "memory://", env: {} }),
  openWithCell: (options = {}) => pglite.open(withCell(options, { url: "memory://" })),
  failWritesInto: refuseWritesInTable,
};

export const postgres: Backend | undefined =
  serverUrl && ownerUrl
    ? {
        name: "postgres",
        open: (options = {}) => {
          const schema = `t_${randomBytes(5).toString("hex")}`;
          schemas.push(schema);
          return openBulkhead({ ...options, database: serverUrl, databaseOwnerUrl: ownerUrl, databaseDataUrl: dataUrl, env: {}, config: { ...withDefaults(options).config, schema } });
        },
        openWithCell: (options = {}) =>
          postgres!.open(withCell(options, { url: cellDatabase(serverUrl), ownerUrl: cellDatabase(ownerUrl), ...(dataUrl ? { dataUrl: cellDatabase(dataUrl) } : {}) })),
        failWritesInto: refuseWritesInTable,
      }
    : undefined;

/** A fresh schema name on the server, dropped with the file's others by `dropTestSchemas`. */
export function newTestSchema(): string {
  const schema = `t_${randomBytes(5).toString("hex")}`;
  schemas.push(schema);
  return schema;
}

/** Two instances sharing one fresh schema on the server, like two service replicas. */
export async function openServerPair(options: BulkheadOptions = {}): Promise<[Awaited<ReturnType<typeof openBulkhead>>, Awaited<ReturnType<typeof openBulkhead>>]> {
  const schema = newTestSchema();
  const open = () => openBulkhead({ ...options, database: serverUrl!, databaseOwnerUrl: ownerUrl, databaseDataUrl: dataUrl, env: {}, config: { ...options.config, schema } });
  const first = await open();
  return [first, await open()];
}

/** Configuration that points a Bulkhead's Pinecone store at `standin` (index prefix "bh"); `settings` override. */
export function standinConfig(standin: PineconeStandin, settings: Record<string, unknown> = {}) {
  return {
    pinecone: { name: "pinecone", cloud: "aws", region: "us-east-1", indexPrefix: "bh", maxNamespacesPerIndex: 100, timeoutMs: 5_000, maxRetries: 1, controllerHostUrl: standin.url, ...settings },
    pineconeApiKey: standin.key,
  } as BulkheadOptions["config"];
}

/**
 * Every tenant in Pinecone — a local stand-in of its API, one per open, closed with the Bulkhead —
 * and the catalogue on PGlite. `standin` gives the stand-in of the last open (fault injection).
 */
export const pineconeStandin: Backend & { standin?: PineconeStandin } = {
  name: "pinecone (stand-in)",
  async open(options = {}) {
    const standin = await new PineconeStandin().start();
    pineconeStandin.standin = standin;
    const opened = await pglite.open({
      ...options,
      config: { ...options.config, ...standinConfig(standin), tierStores: { free: "pinecone", pro: "pinecone", enterprise: "pinecone" } },
    }).catch(async (err) => {
      await standin.close();
      throw err;
    });
    const close = opened.bulkhead.close.bind(opened.bulkhead);
    (opened.bulkhead as { close: () => Promise<void> }).close = async () => {
      try {
        await close();
      } finally {
        await standin.close();
      }
    };
    return opened;
  },
  openWithCell: () => Promise.reject(new Error("the Pinecone backend has no cell")),
  async failWritesInto(_db, indexId) {
    const standin = pineconeStandin.standin!;
    standin.failNext(Number.MAX_SAFE_INTEGER, 507, `/data/bh-${indexId}/vectors/upsert`); // 507: Insufficient Storage
    return { reason: /\(Pinecone\) (answered 507|kept failing)/, undo: async () => standin.clearFailures() };
  },
};

/** Every backend the conformance suites run against. */
export const BACKENDS: Backend[] = [pglite, ...(postgres ? [postgres] : [])];

/** Every backend and every store: pgvector on each, and Pinecone (its stand-in). */
export const STORES: Backend[] = [...BACKENDS, pineconeStandin];

/** What the store holding `tenantId` can do: tests of a store-specific mechanism read it to skip the others. */
export async function capabilitiesOf(bh: Bulkhead, tenantId: string): Promise<StoreCapabilities> {
  return bh.storeCapabilities[(await bh.registry.getTenant(tenantId)).store]!;
}

/** Drops the schemas this test file created on the server. */
export async function dropTestSchemas(): Promise<void> {
  if (!ownerUrl || schemas.length === 0) return;
  const dropped = schemas.splice(0);
  for (const url of [ownerUrl, cellDatabase(ownerUrl)]) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
    } catch {
      continue; // no cell database on this server
    }
    try {
      for (const s of dropped) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    } finally {
      await client.end();
    }
  }
}

export { serverUrl, ownerUrl, dataUrl };

/** The built `bulkhead` command (test/global-setup.ts builds dist/ before the suites run). */
export const BUILT_CLI = new URL("../dist/cli/main.js", import.meta.url).pathname;

/** Runs one statement as the owner role (what only a DBA could do) in a Bulkhead's database, or in its cell (`openWithCell`). */
export async function asOwner(db: Db, statement: string, where: "home" | "cell" = "home"): Promise<void> {
  if (db instanceof PgliteDb) return void (await db.owner.query(statement));
  const client = new pg.Client({ connectionString: where === "cell" ? cellDatabase(ownerUrl!) : ownerUrl! });
  await client.connect();
  try {
    await client.query(`SET search_path = "${db.schema}"`);
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** A deterministic vector of `dim` numbers, distinct per seed. */
export function vec(seed: number, dim = 8): number[] {
  return Array.from({ length: dim }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) + 1.5);
}

/** Polls `check` every 50 ms until it holds; fails naming `what` after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const dataDirTemplate = inject("pgliteDataDir");

/**
 * A new embedded data directory, already migrated (a copy of the run's template, so a child
 * process opening it skips initdb and the migrations); the caller removes it.
 */
export function newDataDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cpSync(dataDirTemplate, dir, { recursive: true });
  return dir;
}

/** A TCP port free on 127.0.0.1 right now, for a server a test starts in a child process. */
export const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
