#!/usr/bin/env node
import { Command } from "commander";
import { loadConfig } from "../config.js";
import { migrateWithOwner } from "../db/open.js";
import { migrationScript } from "../db/migrations.js";
import { BulkheadError } from "../errors.js";
import { runWalkthrough } from "../demo/walkthrough.js";

const program = new Command()
  .name("bulkhead")
  .description("Tenant isolation for multi-tenant RAG: tenants, placement and tenant-scoped vector storage.")
  .showHelpAfterError();

program
  .command("demo")
  .description("Run the walkthrough (the reference notebook's sections, for real) on an embedded database")
  .option("--database <url>", "memory://, a directory, or postgres://… (runtime role)", "memory://")
  .action(async (opts: { database: string }) => {
    const ok = await runWalkthrough(console.log, opts.database);
    process.exitCode = ok ? 0 : 1;
  });

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
  process.exitCode = 1;
});
