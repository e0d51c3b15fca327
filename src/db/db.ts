/** A result row as the driver parsed it. */
export type Row = Record<string, unknown>;

/** A parameterised statement. */
export interface Statement {
  text: string;
  params: readonly unknown[];
}

/** Anything that runs one parameterised statement. */
export interface Queryable {
  query<R extends object = Row>(text: string, params?: readonly unknown[]): Promise<R[]>;
}

/**
 * Transaction-local settings applied together with the tenant context, e.g. `hnsw.ef_search`.
 * Only names on `ALLOWED_SETTINGS` are accepted, so a caller cannot touch `role` or the tenant GUC.
 */
export type LocalSettings = Readonly<Record<string, string>>;

export const ALLOWED_SETTINGS = new Set(["hnsw.ef_search", "hnsw.iterative_scan", "hnsw.max_scan_tuples", "enable_seqscan", "enable_bitmapscan", "synchronous_commit", "statement_timeout"]);

/** The tenant context: the tenant whose rows row-level security shows (see `current_tenant()`, migration 13). */
export const TENANT_SETTING = "bulkhead.tenant_id";
/**
 * The proof that goes with it: a keyed hash of the tenant id under a secret kept in the database,
 * readable by the owner and the control-plane role only. Policies admit a context only with its
 * proof, so a connection that can set the setting but cannot read the secret — the data-plane role,
 * stolen — sees no tenant's rows.
 */
export const TENANT_PROOF_SETTING = "bulkhead.tenant_proof";

/** Makes the proof of a tenant context (`TenantProofs`). */
export type ProveTenant = (tenantId: string) => string;

/** The prover of a handle opened before the context secret exists (or without it): it enters no tenant context. */
export const noTenantContexts: ProveTenant = () => {
  throw new Error("this database handle cannot enter tenant contexts: it was opened without the context secret (migration 13)");
};

/**
 * The only door to tenant data. Each call opens a transaction, sets the tenant context with
 * `set_config(…, true)` (transaction-local, so a pooled connection never carries it into the
 * next request) and runs as the runtime role, under forced row-level security.
 */
export interface TenantDb {
  /** One statement in its own tenant-scoped transaction; a single network round trip on a server. */
  queryAsTenant<R extends object = Row>(tenantId: string, text: string, params?: readonly unknown[], settings?: LocalSettings): Promise<R[]>;
  /**
   * Statements run in order in one tenant-scoped transaction, all sent in a single round trip on a
   * server; resolves with each one's rows. Each statement sees what the earlier ones did (e.g. a
   * lock taken by the first); if one fails, the rest do not run and nothing is committed.
   */
  pipelineAsTenant(tenantId: string, statements: readonly Statement[], settings?: LocalSettings): Promise<Row[][]>;
  /** Several statements in one tenant-scoped transaction; rolled back if `fn` throws. */
  withTenant<T>(tenantId: string, fn: (tx: Transaction) => Promise<T>, settings?: LocalSettings): Promise<T>;
  /**
   * The same database, each call (each statement, in a transaction) given `timeoutMs` instead of
   * the request deadline (`dbTimeoutMs`): for work that is slow by nature — index builds, moves,
   * bulk loads, erasure proofs. Embedded, where nothing times out, the same handle.
   */
  withTimeout(timeoutMs: number): TenantDb;
}

/**
 * An open transaction. `inTenant` is the one way a transaction switches into a tenant's context
 * (for the rare control-plane work that must touch several tenants' rows atomically: a move's
 * switch, a month's allocations); it always leaves it again, even when `fn` throws.
 */
export interface Transaction extends Queryable {
  inTenant<T>(tenantId: string, fn: () => Promise<T>): Promise<T>;
}

/**
 * The whole database handle, connected as the control-plane role: registry, keys, audit, costs,
 * moves, migrations' checks. Its `TenantDb` methods run as that role too (moves, backups, erasure
 * proofs); the connections that serve tenants' data requests are `dataPlane`.
 */
export interface Db extends TenantDb {
  readonly kind: "pglite" | "postgres";
  /** Schema that holds Bulkhead's tables. */
  readonly schema: string;
  /**
   * The data plane: tenant data requests (upsert, query, fetch, delete) over connections of the
   * data-plane role, which can reach tenant data under forced RLS and nothing else. On a server
   * without `DATABASE_DATA_URL`, the control-plane connections themselves (`dataPlaneRole` null).
   */
  readonly dataPlane: TenantDb;
  /** The role `dataPlane` connects as, when it is a role of its own. */
  readonly dataPlaneRole: string | null;
  /** Control-plane statement (registry, capacity), with no tenant context. */
  query<R extends object = Row>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** Control-plane transaction, with no tenant context until `tx.inTenant`. */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  withTimeout(timeoutMs: number): Db;
  close(): Promise<void>;
}

/**
 * SQLSTATE 42P01: the relation does not exist. Code that lists tables in the catalogue and then
 * reads each one races other tenants' DDL (a dedicated index dropped with its tenant, a namespace
 * freed): a table gone in between held nothing any more and is skipped, never a failure.
 */
export const relationVanished = (err: unknown): boolean => (err as { code?: string } | null)?.code === "42P01";

/** A tenant context to enter: the tenant and its proof (see `TENANT_PROOF_SETTING`). */
export interface TenantContext {
  tenantId: string;
  proof: string;
}

/**
 * Builds the statement that sets role (embedded only), tenant context and local settings in one
 * call. A `null` context leaves every tenant's rows invisible (the empty id, which no tenant has);
 * `undefined` leaves the context as it is.
 */
export function contextStatement(context: TenantContext | null | undefined, settings: LocalSettings | undefined, role?: string): { text: string; params: string[]; name: string } {
  const parts: string[] = [];
  const params: string[] = [];
  const add = (name: string, value: string) => {
    params.push(name, value);
    parts.push(`set_config($${params.length - 1}, $${params.length}, true)`);
  };
  if (role) add("role", role);
  if (context !== undefined) {
    add(TENANT_SETTING, context?.tenantId ?? "");
    add(TENANT_PROOF_SETTING, context?.proof ?? "");
  }
  for (const [name, value] of Object.entries(settings ?? {})) {
    if (!ALLOWED_SETTINGS.has(name)) throw new Error(`setting ${name} may not be changed per transaction`);
    add(name, value);
  }
  // The text depends only on how many settings there are, so it is prepared once per connection per count.
  return { text: `SELECT ${parts.join(", ")}`, params, name: `bulkhead_ctx_${parts.length}` };
}

/** Maps JS values to the text the wire protocol carries; objects travel as JSON. */
export function toWireValue(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value);
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

/**
 * Gives `tx` its `inTenant`: enters the context of the tenant (proved by `prove`), runs `fn`, and
 * returns to the context it was in. Nesting is safe: inside the same tenant's context it just runs
 * `fn` (a move's switch writes the target inside the source's drain, both in one transaction).
 */
export function asTransaction(tx: Queryable, prove: ProveTenant): Transaction {
  let current: string | null = null;
  const enter = (tenantId: string | null) => {
    const { text, params } = contextStatement(tenantId === null ? null : { tenantId, proof: prove(tenantId) }, undefined);
    return tx.query(text, params);
  };
  return {
    query: (text, params) => tx.query(text, params),
    async inTenant<T>(tenantId: string, fn: () => Promise<T>): Promise<T> {
      if (current === tenantId) return fn();
      const previous = current;
      await enter(tenantId);
      current = tenantId;
      try {
        return await fn();
      } finally {
        current = previous;
        // A statement that failed has aborted the transaction: leaving is then moot (and would fail too).
        await enter(previous).catch(() => {});
      }
    },
  };
}
