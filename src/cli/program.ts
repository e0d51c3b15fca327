import { Command, CommanderError } from "commander";
import { loadConfig, serviceDatabase } from "../config.js";
import { migrateWithOwner } from "../db/open.js";
import { migrationScript } from "../db/migrations.js";
import { BulkheadError, ValidationError } from "../errors.js";
import type { CheckResult } from "../readiness/checks.js";
import { runWalkthrough } from "../demo/walkthrough.js";
import { addOperatorCommands } from "./operator-commands.js";
import { EXIT, exitCodeFor, processIo, type CliIo } from "./output.js";
import { describeError, safeError } from "../monitoring/safe-error.js";

/** The `bulkhead` command line, writing to and reading from `io`. */
function cliProgram(io: CliIo): Command {
  const program = new Command()
    .name("bulkhead")
    .description("Tenant isolation for multi-tenant RAG: the service, the walkthrough and the operator's commands.")
    .showHelpAfterError()
    // Usage errors (an unknown option, a missing --yes) are invalid input: exit 2 as the README says, not commander's 1.
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.out(text), writeErr: (text) => io.err(text) });

  program
    .command("demo")
    .description("Run the walkthrough (the reference notebook's sections, for real) on an embedded database")
    .option("--database <url>", "memory://, a directory, or postgres://… (runtime role)", "memory://")
    .action(async (opts: { database: string }) => {
      const ok = await runWalkthrough((line = "") => io.out(`${line}\n`), opts.database);
      io.exitCode = ok ? 0 : 1;
    });

  program
    .command("serve")
    .description("Run the HTTP service (embedded database in ./bulkhead-data unless DATABASE_URL is set)")
    .option("--host <host>", "interface to listen on (default: HOST, else 127.0.0.1)")
    .option("--port <port>", "port (default: PORT, else 8080)")
    .option("--database <url>", "postgres://… (runtime role), memory:// or a directory (DATABASE_URL)")
    .option("--drain-timeout <ms>", "on SIGTERM, how long in-flight requests may finish before their connections are closed (default: BULKHEAD_DRAIN_TIMEOUT_MS, else 10000)")
    .action(async (opts: { host?: string; port?: string; database?: string; drainTimeout?: string }) => {
      // The service is the process's own: it reads the process's environment and owns its signals.
      const { serveSettings, startServer } = await import("../server/serve.js");
      // Everything is validated before the database is opened; an error names the option or variable.
      const settings = serveSettings(
        { host: opts.host, port: opts.port, database: opts.database, drainTimeoutMs: opts.drainTimeout },
        { host: opts.host === undefined ? "HOST" : "--host", port: opts.port === undefined ? "PORT" : "--port", drainTimeoutMs: opts.drainTimeout === undefined ? "BULKHEAD_DRAIN_TIMEOUT_MS" : "--drain-timeout" },
      );
      const server = await startServer(settings);
      // Which text search runs: an operator should not have to guess whether vectors are in play.
      server.app.log.info({ url: server.url, dashboard: `${server.url}/dashboard`, textSearch: server.bulkhead.text.mode, ...(server.bulkhead.config.embeddingsUrl ? { embeddingsModel: server.bulkhead.config.embeddingsModel } : {}) }, "bulkhead listening");
      const stop = (signal: string) => {
        server.app.log.info({ signal }, "shutting down: draining requests, flushing usage, closing the database");
        server.shutdown().then(
          () => process.exit(0),
          (err: unknown) => {
            // Through the log's error serializer: a driver's error would print its statement and parameters.
            server.app.log.error({ err }, "shutdown failed");
            process.exit(1);
          },
        );
      };
      process.once("SIGTERM", () => stop("SIGTERM"));
      process.once("SIGINT", () => stop("SIGINT"));
    });

  program
    .command("doctor")
    .description("Run the production checklist as live checks against the configured database and service routes")
    .option("--database <url>", "postgres://… (runtime role), memory:// or a directory (DATABASE_URL)")
    .option("--url <url>", "run it in a running service (GET /admin/readiness) instead of opening the database")
    .option("--admin-key <key>", "admin key for --url (default: BULKHEAD_ADMIN_KEY)")
    .option("--probe <a,b>", "two tenants for the cross-tenant probe (default: two probe tenants of its own, erased afterwards)")
    .option("--sample <tenant>", "tenant to sample queries and logs with; its ledger grows (default: a probe tenant of its own)")
    .action(async (opts: { database?: string; url?: string; adminKey?: string; probe?: string; sample?: string }) => {
      if (opts.probe !== undefined && !/^[a-z0-9-]+,[a-z0-9-]+$/.test(opts.probe)) throw new ValidationError("--probe", `must be two tenant ids as a,b, got "${opts.probe}"`);
      const probeTenants = opts.probe?.split(",") as [string, string] | undefined;
      let checks: CheckResult[];
      if (opts.url !== undefined) {
        if (opts.database !== undefined) throw new ValidationError("--url", "give either --url (through the service) or --database, not both");
        const { AdminClient } = await import("./admin-client.js");
        const api = new AdminClient(opts.url, opts.adminKey ?? io.env.BULKHEAD_ADMIN_KEY ?? "");
        const q = new URLSearchParams({ ...(opts.probe ? { probe: opts.probe } : {}), ...(opts.sample ? { sample: opts.sample } : {}) }).toString();
        checks = await api.get<CheckResult[]>(`/admin/readiness${q ? `?${q}` : ""}`);
      } else {
        const { createBulkhead } = await import("../bulkhead.js");
        const { buildServer } = await import("../server/app.js");
        const bh = await createBulkhead({ database: serviceDatabase(opts.database, io.env), env: io.env });
        try {
          const app = await buildServer(bh, { logDestination: false });
          checks = await app.readiness({ probeTenants, sampleTenant: opts.sample });
          await app.close();
        } finally {
          await bh.close();
        }
      }
      let category = "";
      for (const c of checks) {
        if (c.category !== category) io.out(`${(category = c.category)}:\n`);
        io.out(`  ${c.passed ? "✓" : "✗"} ${c.name} — ${c.detail}\n`);
      }
      const failed = checks.filter((c) => !c.passed).length;
      io.out(failed ? `\n✗ ${failed} of ${checks.length} checks failed\n` : `\n✓ all ${checks.length} checks passed\n`);
      io.exitCode = failed ? 1 : 0;
    });

  addOperatorCommands(program, io);

  const db = program.command("db").description("Database schema");
  db.command("migrate")
    .description("Create or update Bulkhead's schema on a PostgreSQL server, as the owner role")
    .option("--print", "print the SQL for review instead of running it")
    .option("--runtime-role <role>", "control-plane role the service connects as (DATABASE_URL's)", "bulkhead_app")
    .option("--data-role <role>", "data-plane role tenant requests connect as (default: DATABASE_DATA_URL's user, if set)")
    .action(async (opts: { print?: boolean; runtimeRole: string; dataRole?: string }) => {
      const config = loadConfig({ env: io.env });
      const dataRole = opts.dataRole ?? (config.databaseDataUrl ? decodeURIComponent(new URL(config.databaseDataUrl).username) || null : null);
      const ctx = { schema: config.schema, runtimeRole: opts.runtimeRole, dataRole, vectorSchema: "public" };
      if (opts.print) {
        io.out(migrationScript(ctx));
        return;
      }
      if (!config.databaseOwnerUrl) throw new BulkheadError("CONFIG_INVALID", 2, "set DATABASE_OWNER_URL to the owner role's postgres:// URL");
      const applied = await migrateWithOwner(config.databaseOwnerUrl, { ...ctx, vectorSchema: "" });
      io.out(applied.length ? `applied migrations ${applied.join(", ")} to schema ${config.schema}\n` : `schema ${config.schema} is up to date\n`);
    });
  return program;
}

/**
 * Runs one `bulkhead …` command line (`argv` without node and the script) and resolves to its exit
 * code; `serve` resolves once the service listens. The binary runs it on the process's streams; tests
 * run it in their own process on buffers, which saves a Node start-up per command.
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    await cliProgram(io).parseAsync([...argv], { from: "user" });
    return io.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed its message already; help and --version are not errors.
      return err.exitCode === 0 ? EXIT.ok : EXIT.invalid;
    }
    if (err instanceof BulkheadError) io.err(`bulkhead: ${err.message} (${err.code})\n`);
    else if ((err as NodeJS.ErrnoException)?.code === "EADDRINUSE") io.err(`bulkhead: ${(err as Error).message}: another process listens there; choose another --port / PORT\n`);
    else io.err(`bulkhead: ${safeError(err).stack ?? describeError(err)}\n`); // masked: no statement, parameters or quoted values
    return exitCodeFor(err);
  }
}
