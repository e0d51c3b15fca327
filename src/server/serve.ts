import type { Server } from "node:http";
import { isIP } from "node:net";
import type { Socket } from "node:net";
import type { FastifyInstance } from "fastify";
import { createBulkhead, type Bulkhead } from "../bulkhead.js";
import { loadConfig, serviceDatabase } from "../config.js";
import { ConfigError } from "../errors.js";
import { buildServer, type ServerOptions } from "./app.js";

export interface ServeOptions extends ServerOptions {
  /** `postgres://…`, `memory://` or a directory. Default: `DATABASE_URL`, else `./bulkhead-data` (embedded, kept on disk). */
  database?: string;
  host?: string;
  port?: number;
  /**
   * How long SIGTERM waits for in-flight requests (ms) before closing every connection. Default:
   * `BULKHEAD_DRAIN_TIMEOUT_MS`, else 10 s — well inside an orchestrator's usual 30 s grace period.
   */
  drainTimeoutMs?: number;
  /** Where the one-time admin key notice goes. Default: stderr. */
  notice?: (message: string) => void;
  /** Where shutdown warnings go (a drain cut short). Default: stderr. */
  warn?: (message: string) => void;
}

export interface RunningServer {
  bulkhead: Bulkhead;
  app: FastifyInstance;
  url: string;
  /** Stops accepting, lets in-flight requests finish (bounded), flushes the usage ledger and closes the database. */
  shutdown(): Promise<void>;
}

export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

/** Where and how `bulkhead serve` listens, validated (see `serveSettings`). */
export interface ServeSettings {
  host: string;
  port: number;
  database: string;
  drainTimeoutMs: number;
}

/**
 * Checks everything `bulkhead serve` is configured with — host, port, drain timeout, the database
 * URL's form and every `BULKHEAD_*` setting — before anything is opened, so a typo is a one-line
 * error naming the variable (exit 2), not a database opened for nothing and a stack trace.
 * `labels` say what each value was called where it came from (`--port` or `PORT`).
 */
export function serveSettings(
  given: { host?: string; port?: string | number; database?: string; drainTimeoutMs?: string | number },
  labels: { host?: string; port?: string; database?: string; drainTimeoutMs?: string } = {},
  env: Record<string, string | undefined> = process.env,
): ServeSettings {
  const host = given.host ?? env.HOST ?? "127.0.0.1";
  const hostLabel = labels.host ?? "HOST";
  if (!(isIP(host) || /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(host))) {
    throw new ConfigError(`${hostLabel} must be an IP address or a host name (e.g. 127.0.0.1, 0.0.0.0, ::), got ${JSON.stringify(host)}`);
  }
  const port = wholeNumber(given.port ?? env.PORT ?? "8080", labels.port ?? "PORT", 0, 65_535);
  const drainTimeoutMs = wholeNumber(given.drainTimeoutMs ?? env.BULKHEAD_DRAIN_TIMEOUT_MS ?? DEFAULT_DRAIN_TIMEOUT_MS, labels.drainTimeoutMs ?? "BULKHEAD_DRAIN_TIMEOUT_MS", 0, 3_600_000);
  const database = serviceDatabase(given.database);
  const dbLabel = labels.database ?? (given.database !== undefined ? "--database" : "DATABASE_URL");
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(database) && !/^(postgres(ql)?|memory|file):\/\//.test(database)) {
    throw new ConfigError(`${dbLabel} must be postgres://…, memory:// or a directory, got a ${database.split(":")[0]}:// URL`);
  }
  if (/^postgres(ql)?:\/\//.test(database)) {
    try {
      new URL(database);
    } catch {
      throw new ConfigError(`${dbLabel} is not a valid postgres:// URL`); // not echoed: it may hold a password
    }
  }
  // Every other setting (BULKHEAD_*, DATABASE_OWNER_URL, BULKHEAD_CELLS, prices, quotas) fails here, naming its variable.
  loadConfig({ env, overrides: { databaseUrl: database } });
  return { host, port, database, drainTimeoutMs };
}

function wholeNumber(raw: string | number, name: string, min: number, max: number): number {
  const n = typeof raw === "number" ? raw : /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(String(raw))}`);
  return n;
}

/**
 * Starts the service: validates its settings, opens Bulkhead, listens, and only then creates and
 * prints an admin key if none exists (a start that fails — port taken — must not use up the one
 * notice). `bulkhead serve` and `npm start` call this and stop it on SIGTERM/SIGINT.
 */
export async function startServer(options: ServeOptions = {}): Promise<RunningServer> {
  const notice = options.notice ?? ((m: string) => process.stderr.write(`${m}\n`));
  const warn = options.warn ?? ((m: string) => process.stderr.write(`${m}\n`));
  const settings = serveSettings({ host: options.host, port: options.port, database: options.database, drainTimeoutMs: options.drainTimeoutMs });
  const bulkhead = await createBulkhead({ database: settings.database });
  try {
    const app = await buildServer(bulkhead, options);
    const connections = trackConnections(app.server);
    const url = await app.listen({ host: settings.host, port: settings.port });
    if (!(await bulkhead.keys.hasAdminKey())) {
      const admin = await bulkhead.keys.createKey("admin", { name: "first admin key", scopes: ["read", "write"] }, "bootstrap");
      notice(`bulkhead: created the first admin key (shown only this once; store it now):\n\n  ${admin.key}\n\n(lost it? \`bulkhead keys create-admin\` mints another on the database while the service is stopped)\n`);
    }
    notice(`bulkhead: dashboard at ${url}/dashboard (sign in with an admin key)`);
    let stopping: Promise<void> | undefined;
    const shutdown = () =>
      (stopping ??= (async () => {
        try {
          await drain(app, connections, settings.drainTimeoutMs, warn);
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

interface Connections {
  /** From now on, a connection is closed as soon as it has no request in flight. */
  drain(): void;
}

/**
 * Counts requests in flight per connection. Node's `closeIdleConnections` (what Fastify calls on
 * close) misses connections that are open but have not sent a request yet, and a keep-alive
 * connection busy at SIGTERM stays open after its response; either kept the process alive until
 * the client or the request timeout gave up (about 70 s).
 */
function trackConnections(server: Server): Connections {
  const inFlight = new Map<Socket, number>();
  let draining = false;
  server.on("connection", (socket: Socket) => {
    inFlight.set(socket, 0);
    socket.once("close", () => inFlight.delete(socket));
  });
  server.on("request", (req, res) => {
    const socket = req.socket;
    inFlight.set(socket, (inFlight.get(socket) ?? 0) + 1);
    res.once("close", () => {
      if (!inFlight.has(socket)) return;
      const n = Math.max(0, inFlight.get(socket)! - 1);
      inFlight.set(socket, n);
      if (draining && n === 0) socket.destroySoon(); // its response is written: flush it, then close
    });
  });
  return {
    drain() {
      draining = true;
      for (const [socket, n] of inFlight) if (n === 0) socket.destroySoon();
    },
  };
}

/** Stops accepting, closes idle connections at once, waits for in-flight requests at most `timeoutMs`, then closes the rest. */
async function drain(app: FastifyInstance, connections: Connections, timeoutMs: number, warn: (m: string) => void): Promise<void> {
  const closed = app.close();
  connections.drain();
  let timer: NodeJS.Timeout | undefined;
  const cut = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      warn(`bulkhead: requests still in flight after the ${timeoutMs} ms drain (BULKHEAD_DRAIN_TIMEOUT_MS); closing their connections`);
      app.server.closeAllConnections();
      resolve();
    }, timeoutMs);
    timer.unref();
  });
  try {
    await Promise.race([closed, cut]);
    await closed;
  } finally {
    clearTimeout(timer);
  }
}
