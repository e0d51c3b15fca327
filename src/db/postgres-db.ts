import pg from "pg";
import { BulkheadError, DatabaseError } from "../errors.js";
import { asTransaction, contextStatement, noTenantContexts, type Db, type LocalSettings, type ProveTenant, type Row, type Statement, type TenantDb, type Transaction } from "./db.js";
import { AcquireTimeoutError, ConnectionPool } from "./connection-pool.js";
import { DatabaseTimeoutError, serverStatementTimeout, type TimeoutOutcome } from "./deadline.js";
import { PipelinedQuery } from "./pipelined-query.js";

/** SQLSTATE classes and socket errors that mean "the database is not there", not "your query is wrong". */
const UNAVAILABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "ETIMEDOUT", "EPIPE", "57P01", "57P02", "57P03", "57P05", "25P03", "53300", "08000", "08003", "08006", "08001", "08004"]);

/**
 * The server gave up on the statement and rolled its transaction back: nothing was applied, and
 * the same call may simply be retried (HTTP 503 + Retry-After, never a 500).
 */
const ABORTED_CODES: Record<string, string> = {
  "57014": "the statement was cancelled by the server after its deadline (statement_timeout): the database is busy, or the request is too expensive for it (e.g. a filter of many conditions that few documents match)",
  "40P01": "the transaction was chosen as a deadlock victim",
  "40001": "the transaction could not be serialised with a concurrent one",
  "55P03": "a lock could not be had in time",
};

function describeTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.username || "(default user)"}@${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return "the configured database";
  }
}

/** Wraps connectivity failures in `DatabaseError` (HTTP 503) with a hint; query errors pass through. */
export function translateError(err: unknown, target: string): unknown {
  if (err instanceof DatabaseError) return err;
  const code = (err as { code?: string })?.code;
  if (code && UNAVAILABLE_CODES.has(code)) {
    return new DatabaseError(`PostgreSQL at ${target} is unavailable (${code}: ${(err as Error).message}); check that the server is running and DATABASE_URL is right`, { cause: err });
  }
  if (code && ABORTED_CODES[code]) {
    return new DatabaseError(`PostgreSQL at ${target}: ${ABORTED_CODES[code]} (${code}); nothing was applied, retry the call`, { cause: err });
  }
  if ((err as Error)?.message?.includes("Connection terminated")) {
    return new DatabaseError(`connection to PostgreSQL at ${target} was lost: ${(err as Error).message}`, { cause: err });
  }
  return err;
}

/** The caller's settings plus a statement_timeout of its own, when the deadline differs from the connection's. */
function withServerTimeout(settings: LocalSettings | undefined, deadline: Deadline): LocalSettings | undefined {
  if (deadline.serverMs === undefined) return settings;
  return { ...settings, statement_timeout: String(deadline.serverMs) };
}

/** Connections destroyed because a call on them overran its deadline. */
const destroyed = new WeakSet<pg.Client>();

/** Deadlines of a pool's connections (see `BulkheadConfig.dbTimeoutMs`); without them, none. */
export interface PoolDeadlines {
  /** Default deadline of each call; the server's statement_timeout follows it. */
  timeoutMs: number;
  /** The longest deadline any call gets: a transaction left idle longer than this is ended by the server. */
  longTimeoutMs: number;
}

/** Opens a pool for `url` whose connections resolve names in `schema` first. */
export function openPool(url: string, schema: string, max: number, deadlines?: PoolDeadlines): ConnectionPool {
  // Pinned for every connection: a setting in the startup packet outranks a role's own defaults,
  // which a role may change for itself (ALTER ROLE … SET): a stolen credential must not be able to
  // make the service's transactions read-only, RLS-refusing or serializable.
  const options = [`-c search_path=${schema},public`, "-c default_transaction_read_only=off -c row_security=on -c default_transaction_isolation=read\\ committed"];
  // Prepared statements keep their parse, never a generic plan: a generic plan of a search on a
  // shared index covers every tenant's partition (~4 MB each on a 90-tenant index, kept per
  // connection: found by an attack run cycling filter shapes); a custom plan prunes to the tenant's.
  options.push("-c plan_cache_mode=force_custom_plan");
  if (deadlines) {
    // Server-side backstops: a statement is cancelled a little before the client's own deadline,
    // and a transaction whose client vanished (timed out, black-holed) does not hold its locks forever.
    // TCP keepalives let the server notice a client it can no longer reach within ~25 s (not hours).
    options.push(
      `-c statement_timeout=${serverStatementTimeout(deadlines.timeoutMs)}`,
      `-c idle_in_transaction_session_timeout=${deadlines.longTimeoutMs}`,
      "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3",
    );
  }
  return new ConnectionPool(
    {
      connectionString: url,
      options: options.join(" "),
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      // A server that accepts the TCP connection and never answers the start-up: give up, so the pool's slot is freed.
      ...(deadlines ? { connectionTimeoutMillis: deadlines.timeoutMs } : {}),
    },
    max,
  );
}

/** A deadline: `ms` on the client; `serverMs` when the statement_timeout must differ from the connection's default. */
interface Deadline {
  ms: number;
  serverMs?: number;
}

const NONE: Deadline = { ms: Infinity };



/**
 * A PostgreSQL server through `pg`. Connects as the runtime login role, which must not be superuser,
 * owner or BYPASSRLS (checked at start-up). Tenant statements go out pipelined: context and statement
 * in one round trip, one implicit transaction.
 *
 * Every call has a deadline, counted from the call (waiting for a connection included): single
 * statements and pipelines — the request path — get `timeoutMs`; explicit transactions (`transaction`,
 * `withTenant`: registry changes, keys, moves, restores — control plane and bulk work, which queue
 * behind each other's locks by design) get `longTimeoutMs` per statement. When it passes, the
 * connection is destroyed — never returned to the pool — and the caller gets `DatabaseTimeoutError`
 * (a `DatabaseError`: HTTP 503), saying whether a write may have been applied. The server cancels the
 * statement a little earlier itself (statement_timeout), so a merely slow statement fails cleanly
 * and keeps its connection.
 */
export class PostgresDb implements Db {
  readonly kind = "postgres" as const;
  readonly dataPlane: TenantDb;
  readonly dataPlaneRole: string | null;
  private readonly target: string;
  private readonly call: Deadline;
  private readonly tx: Deadline;

  constructor(
    private readonly pool: ConnectionPool,
    readonly schema: string,
    private readonly url: string,
    /** The pool's deadlines (see `openPool`); without them, none. */
    deadlines?: PoolDeadlines | { call: Deadline; tx: Deadline },
    /** Proves tenant contexts (see `TenantProofs`); without it, this handle cannot enter one. */
    private readonly prove: ProveTenant = noTenantContexts,
    /** The data-plane connections (another role's pool) and that role; without them, this handle serves the data plane too. */
    dataPlane?: { db: PostgresDb; role: string },
  ) {
    this.target = describeTarget(url);
    if (!deadlines) [this.call, this.tx] = [NONE, NONE];
    else if ("call" in deadlines) ({ call: this.call, tx: this.tx } = deadlines);
    else {
      this.call = { ms: deadlines.timeoutMs };
      this.tx = { ms: deadlines.longTimeoutMs, serverMs: serverStatementTimeout(deadlines.longTimeoutMs) };
    }
    this.dataPlane = dataPlane?.db ?? this;
    this.dataPlaneRole = dataPlane?.role ?? null;
  }

  withTimeout(timeoutMs: number): PostgresDb {
    const deadline = { ms: timeoutMs, serverMs: serverStatementTimeout(timeoutMs) };
    const data = this.dataPlaneRole === null ? undefined : { db: (this.dataPlane as PostgresDb).withTimeout(timeoutMs), role: this.dataPlaneRole };
    return new PostgresDb(this.pool, this.schema, this.url, { call: deadline, tx: deadline }, this.prove, data);
  }

  async query<R extends object = Row>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    if (this.call.serverMs !== undefined) {
      // Its own statement_timeout travels with it, in the same round trip and implicit transaction.
      const [rows] = await this.pipeline(contextStatement(undefined, withServerTimeout(undefined, this.call)), [{ text, params }]);
      return rows as R[];
    }
    const started = performance.now();
    const client = await this.connect(started, this.call);
    try {
      return (await this.timed(client, client.query<R>(text, params as unknown[]), started, this.call, "unknown", "statement")).rows;
    } catch (err) {
      throw translateError(err, this.target);
    } finally {
      this.pool.release(client, destroyed.has(client));
    }
  }

  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.inTransaction(null, undefined, fn);
  }

  async queryAsTenant<R extends object = Row>(tenantId: string, text: string, params: readonly unknown[] = [], settings?: LocalSettings): Promise<R[]> {
    const [rows] = await this.pipelineAsTenant(tenantId, [{ text, params }], settings);
    return rows as R[];
  }

  pipelineAsTenant(tenantId: string, statements: readonly Statement[], settings?: LocalSettings): Promise<Row[][]> {
    return this.pipeline(contextStatement({ tenantId, proof: this.prove(tenantId) }, withServerTimeout(settings, this.call)), statements);
  }

  withTenant<T>(tenantId: string, fn: (tx: Transaction) => Promise<T>, settings?: LocalSettings): Promise<T> {
    return this.inTransaction(tenantId, settings, fn);
  }

  /** The context statement first (its rows discarded), then `statements`, in one round trip and one implicit transaction. */
  private async pipeline(ctx: Statement & { name?: string }, statements: readonly Statement[]): Promise<Row[][]> {
    const started = performance.now();
    const client = await this.connect(started, this.call);
    try {
      const run = () => {
        const q = new PipelinedQuery([{ ...ctx, discard: true }, ...statements]);
        client.query(q as any);
        return this.timed(client, q.promise, started, this.call, "unknown", "statement");
      };
      try {
        return (await run()).slice(1);
      } catch (err) {
        // A statement prepared before another instance changed a table it reads: PostgreSQL refuses
        // it before running anything, the implicit transaction is rolled back, and the pipeline has
        // forgotten it — once more, parsed afresh, is safe for any pipeline.
        if (!isStalePlan(err) || destroyed.has(client)) throw err;
        return (await run()).slice(1);
      }
    } catch (err) {
      throw translateError(err, this.target);
    } finally {
      this.pool.release(client, destroyed.has(client));
    }
  }

  private async inTransaction<T>(tenantId: string | null, settings: LocalSettings | undefined, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    const deadline = this.tx;
    const started = performance.now();
    const client = await this.connect(started, deadline);
    let reusable = true;
    try {
      const steps: (Statement & { name?: string })[] = [{ text: "BEGIN", params: [] }];
      const local = withServerTimeout(settings, deadline);
      if (tenantId !== null || local) steps.push(contextStatement(tenantId === null ? undefined : { tenantId, proof: this.prove(tenantId) }, local));
      const begin = new PipelinedQuery(steps.map((s) => ({ ...s, discard: true })));
      client.query(begin as any);
      // Each statement has its own deadline; none of them is applied before COMMIT.
      const tx = asTransaction(
        {
          query: async <R extends object>(text: string, params: readonly unknown[] = []) =>
            (await this.timed(client, client.query<R>(text, params as unknown[]), performance.now(), deadline, "not-applied", "statement in a transaction")).rows,
        },
        this.prove,
      );
      try {
        await this.timed(client, begin.promise, started, deadline, "not-applied", "BEGIN");
        const result = await fn(tx);
        await this.timed(client, client.query("COMMIT"), performance.now(), deadline, "unknown", "COMMIT");
        return result;
      } catch (err) {
        if (destroyed.has(client)) reusable = false;
        else {
          await this.timed(client, client.query("ROLLBACK"), performance.now(), deadline, "not-applied", "ROLLBACK").catch(() => {
            reusable = false;
          });
        }
        throw err;
      }
    } catch (err) {
      throw translateError(err, this.target);
    } finally {
      // A connection whose ROLLBACK failed may still be inside the transaction: never reuse it.
      this.pool.release(client, !reusable);
    }
  }

  /**
   * Settles with `op`, or — when the deadline (counted from `started`) passes first — destroys the
   * connection (whatever is in flight on it fails; it is never reused) and rejects with
   * `DatabaseTimeoutError` carrying `outcome`.
   */
  private timed<T>(client: pg.Client, op: Promise<T>, started: number, deadline: Deadline, outcome: TimeoutOutcome, stage: string): Promise<T> {
    if (!Number.isFinite(deadline.ms)) return op;
    const left = deadline.ms - (performance.now() - started);
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        destroyed.add(client);
        this.pool.destroy(client);
        reject(new DatabaseTimeoutError(this.target, deadline.ms, outcome, stage));
      }, Math.max(0, left));
    });
    return Promise.race([op, expired]).finally(() => clearTimeout(timer));
  }

  private async connect(started: number, deadline: Deadline): Promise<pg.Client> {
    try {
      return await this.pool.acquire(deadline.ms);
    } catch (err) {
      const waited = `waiting ${Math.round(performance.now() - started)} ms for a connection`;
      if (err instanceof AcquireTimeoutError) throw new DatabaseTimeoutError(this.target, deadline.ms, "not-applied", waited);
      const translated = translateError(err, this.target);
      if (translated instanceof BulkheadError) throw translated;
      // A new connection that failed (pg's own connect timeout: "timeout expired"): nothing was sent.
      if (/timeout/i.test((err as Error)?.message ?? "")) throw new DatabaseTimeoutError(this.target, deadline.ms, "not-applied", `${waited}: the server did not answer the connection`);
      throw new DatabaseError(`could not connect to PostgreSQL at ${this.target}: ${(err as Error)?.message}; nothing was sent`, { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
    if (this.dataPlane !== this) await (this.dataPlane as PostgresDb).close();
  }
}

/** PostgreSQL's refusal of a prepared statement whose result columns changed since it was prepared. */
const isStalePlan = (err: unknown) => (err as { code?: string })?.code === "0A000" && /cached plan must not change result type/.test((err as Error).message ?? "");
