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

/** The PostgreSQL setting that row-level security policies compare `tenant_id` with. */
export const TENANT_SETTING = "bulkhead.tenant_id";

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
  withTenant<T>(tenantId: string, fn: (tx: Queryable) => Promise<T>, settings?: LocalSettings): Promise<T>;
  /**
   * The same database, each call (each statement, in a transaction) given `timeoutMs` instead of
   * the request deadline (`dbTimeoutMs`): for work that is slow by nature — index builds, moves,
   * bulk loads, erasure proofs. Embedded, where nothing times out, the same handle.
   */
  withTimeout(timeoutMs: number): TenantDb;
}

/** The whole database handle. Held by the registry and migrations; data code only gets `TenantDb`. */
export interface Db extends TenantDb {
  readonly kind: "pglite" | "postgres";
  /** Schema that holds Bulkhead's tables. */
  readonly schema: string;
  /** Control-plane statement (registry, capacity) as the runtime role, with no tenant context. */
  query<R extends object = Row>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** Control-plane transaction as the runtime role, with no tenant context. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  withTimeout(timeoutMs: number): Db;
  close(): Promise<void>;
}

/**
 * SQLSTATE 42P01: the relation does not exist. Code that lists tables in the catalogue and then
 * reads each one races other tenants' DDL (a dedicated index dropped with its tenant, a namespace
 * freed): a table gone in between held nothing any more and is skipped, never a failure.
 */
export const relationVanished = (err: unknown): boolean => (err as { code?: string } | null)?.code === "42P01";

/** Builds the statement that sets role (embedded only), tenant and local settings in one call. */
export function contextStatement(tenantId: string | null, settings: LocalSettings | undefined, role?: string): { text: string; params: string[]; name: string } {
  const parts: string[] = [];
  const params: string[] = [];
  const add = (name: string, value: string) => {
    params.push(name, value);
    parts.push(`set_config($${params.length - 1}, $${params.length}, true)`);
  };
  if (role) add("role", role);
  if (tenantId !== null) add(TENANT_SETTING, tenantId);
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
 * Switches an open control-plane transaction to one tenant's context (for the rare operations that
 * must touch several tenants' rows atomically: a tier move, storing a month's allocations).
 * Pass `null` to leave every tenant's rows invisible again.
 */
export async function enterTenantContext(tx: Queryable, tenantId: string | null): Promise<void> {
  await tx.query("SELECT set_config($1, $2, true)", [TENANT_SETTING, tenantId ?? ""]);
}

/** Runs `fn` in an open control-plane transaction switched to one tenant's context, then leaves it. */
export async function inTenantContext<T>(tx: Queryable, tenantId: string, fn: () => Promise<T>): Promise<T> {
  await enterTenantContext(tx, tenantId);
  const result = await fn();
  await enterTenantContext(tx, null);
  return result;
}
