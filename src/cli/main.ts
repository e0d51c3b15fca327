#!/usr/bin/env node
import { Command } from "commander";
import { loadConfig, serviceDatabase } from "../config.js";
import { migrateWithOwner } from "../db/open.js";
import { migrationScript } from "../db/migrations.js";
import { BulkheadError } from "../errors.js";
import { runWalkthrough } from "../demo/walkthrough.js";
import { addOperatorCommands } from "./operator-commands.js";
import { exitCodeFor } from "./output.js";

const program = new Command()
  .name("bulkhead")
  .description("Tenant isolation for multi-tenant RAG: the service, the walkthrough and the operator's commands.")
  .showHelpAfterError();

program
  .command("demo")
  .description("Run the walkthrough (the reference notebook's sections, for real) on an embedded database")
  .option("--database <url>", "memory://, a directory, or postgres://… (runtime role)", "memory://")
  .action(async (opts: { database: string }) => {
    const ok = await runWalkthrough(console.log, opts.database);
    process.exitCode = ok ? 0 : 1;
  });

program
  .command("serve")
  .description("Run the HTTP service (embedded database in ./bulkhead-data unless DATABASE_URL is set)")
  .option("--host <host>", "interface to listen on (HOST)", process.env.HOST ?? "127.0.0.1")
  .option("--port <port>", "port (PORT)", process.env.PORT ?? "8080")
  .option("--database <url>", "postgres://… (runtime role), memory:// or a directory (DATABASE_URL)")
  .action(async (opts: { host: string; port: string; database?: string }) => {
    const { startServer } = await import("../server/serve.js");
    const server = await startServer({ host: opts.host, port: Number(opts.port), database: opts.database });
    server.app.log.info({ url: server.url }, "bulkhead listening");
    const stop = (signal: string) => {
      server.app.log.info({ signal }, "shutting down: draining requests, flushing usage, closing the database");
      server.shutdown().then(
        () => process.exit(0),
        (err: unknown) => {
          console.error(err);
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
  .option("--probe <a,b>", "two tenants for the cross-tenant probe (default: the first two active tenants)")
  .option("--sample <tenant>", "tenant to sample queries and logs with (default: the first active tenant)")
  .action(async (opts: { database?: string; probe?: string; sample?: string }) => {
    const { createBulkhead } = await import("../bulkhead.js");
    const { buildServer } = await import("../server/app.js");
    const bh = await createBulkhead({ database: serviceDatabase(opts.database) });
    try {
      const app = await buildServer(bh, { logDestination: false });
      const checks = await app.readiness({ probeTenants: opts.probe?.split(",") as [string, string] | undefined, sampleTenant: opts.sample });
      let category = "";
      for (const c of checks) {
        if (c.category !== category) console.log(`${(category = c.category)}:`);
        console.log(`  ${c.passed ? "✓" : "✗"} ${c.name} — ${c.detail}`);
      }
      const failed = checks.filter((c) => !c.passed).length;
      console.log(failed ? `
✗ ${failed} of ${checks.length} checks failed` : `
✓ all ${checks.length} checks passed`);
      process.exitCode = failed ? 1 : 0;
      await app.close();
    } finally {
      await bh.close();
    }
  });

addOperatorCommands(program);

const db = program.command("db").description("Database schema");
db.command("migrate")
  .description("Create or update Bulkhead's schema on a PostgreSQL server, as the owner role")
  .option("--print", "print the SQL for review instead of running it")
  .option("--runtime-role <role>", "role the service connects as (granted access)", "bulkhead_app")
  .action(async (opts: { print?: boolean; runtimeRole: string }) => {
    const config = loadConfig();
    const ctx = { schema: config.schema, runtimeRole: opts.runtimeRole, vectorSchema: "public" };
    if (opts.print) {
      process.stdout.write(migrationScript(ctx));
      return;
    }
    if (!config.databaseOwnerUrl) throw new BulkheadError("CONFIG_INVALID", 2, "set DATABASE_OWNER_URL to the owner role's postgres:// URL");
    const applied = await migrateWithOwner(config.databaseOwnerUrl, { ...ctx, vectorSchema: "" });
    console.log(applied.length ? `applied migrations ${applied.join(", ")} to schema ${config.schema}` : `schema ${config.schema} is up to date`);
  });

program.parseAsync().catch((err: unknown) => {
  if (err instanceof BulkheadError) console.error(`bulkhead: ${err.message} (${err.code})`);
  else console.error(err);
  process.exitCode = exitCodeFor(err);
});
