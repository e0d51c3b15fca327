import pg from "pg";
import { DatabaseError } from "../errors.js";
import { contextStatement, type Db, type LocalSettings, type Queryable, type Row, type Statement } from "./db.js";
import { ConnectionPool } from "./connection-pool.js";
import { PipelinedQuery } from "./pipelined-query.js";

/** SQLSTATE classes and socket errors that mean "the database is not there", not "your query is wrong". */
const UNAVAILABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "ETIMEDOUT", "EPIPE", "57P01", "57P02", "57P03", "53300", "08000", "08003", "08006", "08001", "08004"]);

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
  const code = (err as { code?: string })?.code;
  if (code && UNAVAILABLE_CODES.has(code)) {
    return new DatabaseError(`PostgreSQL at ${target} is unavailable (${code}: ${(err as Error).message}); check that the server is running and DATABASE_URL is right`, { cause: err });
  }
  if ((err as Error)?.message?.includes("Connection terminated")) {
    return new DatabaseError(`connection to PostgreSQL at ${target} was lost: ${(err as Error).message}`, { cause: err });
  }
  return err;
}

/** Opens a pool for `url` whose connections resolve names in `schema` first. */
export function openPool(url: string, schema: string, max: number): ConnectionPool {
  return new ConnectionPool({ connectionString: url, options: `-c search_path=${schema},public` }, max);
}

/**
 * A PostgreSQL server through `pg`. Connects as the runtime login role, which must not be superuser,
 * owner or BYPASSRLS (checked at start-up). Tenant statements go out pipelined: context and statement
 * in one round trip, one implicit transaction.
 */
export class PostgresDb implements Db {
  readonly kind = "postgres" as const;
  private readonly target: string;

  constructor(
    private readonly pool: ConnectionPool,
    readonly schema: string,
    url: string,
  ) {
    this.target = describeTarget(url);
  }

  async query<R extends object = Row>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    const client = await this.connect();
    try {
      return (await client.query<R>(text, params as unknown[])).rows;
    } catch (err) {
      throw translateError(err, this.target);
    } finally {
      this.pool.release(client);
    }
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.inTransaction(null, undefined, fn);
  }

  async queryAsTenant<R extends object = Row>(tenantId: string, text: string, params: readonly unknown[] = [], settings?: LocalSettings): Promise<R[]> {
    const [rows] = await this.pipelineAsTenant(tenantId, [{ text, params }], settings);
    return rows as R[];
  }

  async pipelineAsTenant(tenantId: string, statements: readonly Statement[], settings?: LocalSettings): Promise<Row[][]> {
    const ctx = contextStatement(tenantId, settings);
    const client = await this.connect();
    try {
      const q = new PipelinedQuery([{ ...ctx, discard: true }, ...statements]);
      client.query(q as any);
      return (await q.promise).slice(1);
    } catch (err) {
      throw translateError(err, this.target);
    } finally {
      this.pool.release(client);
    }
  }

  withTenant<T>(tenantId: string, fn: (tx: Queryable) => Promise<T>, settings?: LocalSettings): Promise<T> {
    return this.inTransaction(tenantId, settings, fn);
  }

  private async inTransaction<T>(tenantId: string | null, settings: LocalSettings | undefined, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.connect();
    let reusable = true;
    try {
      const steps = [{ text: "BEGIN", params: [] as string[] }];
      if (tenantId !== null || settings) steps.push(contextStatement(tenantId, settings));
      const begin = new PipelinedQuery(steps.map((s) => ({ ...s, discard: true })));
      client.query(begin as any);
      const tx: Queryable = { query: async <R extends object>(text: string, params: readonly unknown[] = []) => (await client.query<R>(text, params as unknown[])).rows };
      try {
        await begin.promise;
        const result = await fn(tx);
        await client.query("COMMIT");
        return result;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {
          reusable = false;
        });
        throw err;
      }
    } catch (err) {
      throw translateError(err, this.target);
    } finally {
      // A connection whose ROLLBACK failed may still be inside the transaction: never reuse it.
      this.pool.release(client, !reusable);
    }
  }

  private async connect(): Promise<pg.Client> {
    try {
      return await this.pool.acquire();
    } catch (err) {
      throw translateError(err, this.target);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
