import type { FastifyInstance } from "fastify";
import { createBulkhead, type Bulkhead } from "../bulkhead.js";
import { serviceDatabase } from "../config.js";
import { buildServer, type ServerOptions } from "./app.js";

export interface ServeOptions extends ServerOptions {
  /** `postgres://…`, `memory://` or a directory. Default: `DATABASE_URL`, else `./bulkhead-data` (embedded, kept on disk). */
  database?: string;
  host?: string;
  port?: number;
  /** Where the one-time admin key notice goes. Default: stderr. */
  notice?: (message: string) => void;
}

export interface RunningServer {
  bulkhead: Bulkhead;
  app: FastifyInstance;
  url: string;
  /** Stops accepting, lets in-flight requests finish, flushes the usage ledger and closes the database. */
  shutdown(): Promise<void>;
}

/**
 * Starts the service: opens Bulkhead, creates and prints an admin key the first time (there is no
 * other way in), listens. `bulkhead serve` and `npm start` call this and stop it on SIGTERM/SIGINT.
 */
export async function startServer(options: ServeOptions = {}): Promise<RunningServer> {
  const notice = options.notice ?? ((m: string) => process.stderr.write(`${m}\n`));
  const bulkhead = await createBulkhead({ database: serviceDatabase(options.database) });
  try {
    if (!(await bulkhead.keys.hasAdminKey())) {
      const admin = await bulkhead.keys.createKey("admin", { name: "first admin key", scopes: ["read", "write"] }, "bootstrap");
      notice(`bulkhead: created the first admin key (shown only this once; store it now):\n\n  ${admin.key}\n`);
    }
    const app = await buildServer(bulkhead, options);
    const url = await app.listen({ host: options.host ?? process.env.HOST ?? "127.0.0.1", port: options.port ?? Number(process.env.PORT ?? 8080) });
    let stopping: Promise<void> | undefined;
    const shutdown = () =>
      (stopping ??= (async () => {
        try {
          await app.close();
        } finally {
          await bulkhead.close();
        }
      })());
    return { bulkhead, app, url, shutdown };
  } catch (err) {
    await bulkhead.close();
    throw err;
  }
}
