import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { asTransaction, contextStatement, noTenantContexts, type Db, type LocalSettings, type ProveTenant, type Queryable, type Row, type Statement, type TenantDb, type Transaction } from "./db.js";

/** The NOLOGIN role every embedded control-plane transaction switches to; it owns nothing and cannot bypass RLS. */
export const EMBEDDED_RUNTIME_ROLE = "bulkhead_app";
/** The NOLOGIN role of embedded data-plane transactions: tenant data under forced RLS, nothing else. */
export const EMBEDDED_DATA_ROLE = "bulkhead_data";

/**
 * PGlite runs each statement synchronously in WebAssembly and settles its promise as a microtask, so
 * a loop of data calls never returns to the event loop: timers, setImmediate and sockets starve (an
 * online move's 100 ms timer never fired while a writer looped). Every call that starts this long
 * after the last yield first waits for one turn of the event loop. A turn costs microseconds, so
 * at most 200 of them per second of busy loop cost well under 1 %, and a timer waits at most for the call
 * in progress plus 5 ms.
 */
export const YIELD_EVERY_MS = 5;

/**
 * Embedded PostgreSQL (PGlite, in-process WebAssembly). PGlite has one connection and runs as a
 * superuser, so every transaction switches to a role first: the control-plane role here, the
 * data-plane role in `dataPlane` (the same connection). The superuser handle (`owner`) is only used
 * by migrations, never inside an open transaction (that would deadlock).
 */
export class PgliteDb implements Db {
  readonly kind = "pglite" as const;
  readonly dataPlaneRole = EMBEDDED_DATA_ROLE;
  /** The same database, each transaction switched to the data-plane role instead. */
  readonly dataPlane: TenantDb;

  private constructor(
    private readonly pg: PGlite,
    readonly schema: string,
    private readonly role: string,
    /** Proves tenant contexts; set once the schema is migrated (`useProofs`). */
    private prove: ProveTenant,
    /** When this database last let the event loop run (see YIELD_EVERY_MS); shared by both roles' handles. */
    private readonly yielded: { at: number },
    isDataPlane = false,
  ) {
    this.dataPlane = isDataPlane ? this : new PgliteDb(pg, schema, EMBEDDED_DATA_ROLE, (t) => this.prove(t), yielded, true);
  }

  /**
   * Opens `memory://` or a data directory and loads pgvector. `image` (from `image()`) starts an
   * in-memory database as a copy of another one.
   */
  static async open(dataDir: string, schema: string, image?: File | Blob): Promise<PgliteDb> {
    const pg = await PGlite.create(dataDir === "memory://" ? undefined : dataDir, { extensions: { vector }, ...(image ? { loadDataDir: image } : {}) });
    await pg.exec(`SET search_path TO ${schema}, public`);
    return new PgliteDb(pg, schema, EMBEDDED_RUNTIME_ROLE, noTenantContexts, { at: performance.now() });
  }

  /**
   * The whole database as a tarball, to start copies of it with `open(…, image)`. Checkpointed
   * first: a copy then starts without replaying the write-ahead log (~10 % faster to open).
   */
  async image(): Promise<File | Blob> {
    await this.pg.exec("CHECKPOINT");
    return this.pg.dumpDataDir("none");
  }

  /** Tenant contexts from now on are proved with `prove` (after migrations created the secret). */
  useProofs(prove: ProveTenant): void {
    this.prove = prove;
  }

  /** The superuser handle, for migrations only. */
  get owner(): Queryable {
    return { query: async <R extends object>(text: string, params: readonly unknown[] = []) => (await this.pg.query<R>(text, params as unknown[])).rows };
  }

  /** Runs a multi-statement script as the superuser (migrations). */
  async exec(sql: string): Promise<void> {
    await this.pg.exec(sql);
  }

  async query<R extends object = Row>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    return this.scoped(null, undefined, (tx) => tx.query<R>(text, params));
  }

  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.scoped(null, undefined, fn);
  }

  queryAsTenant<R extends object = Row>(tenantId: string, text: string, params: readonly unknown[] = [], settings?: LocalSettings): Promise<R[]> {
    return this.scoped(tenantId, settings, (tx) => tx.query<R>(text, params));
  }

  pipelineAsTenant(tenantId: string, statements: readonly Statement[], settings?: LocalSettings): Promise<Row[][]> {
    return this.scoped(tenantId, settings, async (tx) => {
      const all: Row[][] = [];
      for (const s of statements) all.push(await tx.query(s.text, s.params));
      return all;
    });
  }

  withTenant<T>(tenantId: string, fn: (tx: Transaction) => Promise<T>, settings?: LocalSettings): Promise<T> {
    return this.scoped(tenantId, settings, fn);
  }

  /** There are no deadlines in-process: a statement cannot be lost on the way, and PGlite cannot be interrupted. */
  withTimeout(): this {
    return this;
  }

  private async scoped<T>(tenantId: string | null, settings: LocalSettings | undefined, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const ctx = contextStatement(tenantId === null ? undefined : { tenantId, proof: this.prove(tenantId) }, settings, this.role);
    // Outside the transaction: yielding inside it would hold PGlite's only connection meanwhile.
    if (performance.now() - this.yielded.at >= YIELD_EVERY_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.yielded.at = performance.now();
    }
    return this.pg.transaction(async (tx) => {
      await tx.query(ctx.text, ctx.params);
      const q: Queryable = { query: async <R extends object>(text: string, params: readonly unknown[] = []) => (await tx.query<R>(text, params as unknown[])).rows };
      return fn(asTransaction(q, this.prove));
    });
  }

  async close(): Promise<void> {
    if (!this.pg.closed) await this.pg.close();
  }
}
