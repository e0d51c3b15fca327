import type { Command } from "commander";
import { createBulkhead, type Bulkhead } from "../bulkhead.js";
import { Config, serviceDatabase, TenantTier, TIERS, type TenantQuota } from "../config.js";
import { planStrategies } from "../costs/planner.js";
import { MoveConflictError, ValidationError } from "../errors.js";
import type { MoveOptions } from "../tenancy/placement-move.js";
import type { Scope } from "../tenancy/api-keys.js";
import type { Tenant } from "../tenancy/tenant.js";
import { print, table } from "./output.js";

/** Who the audit log names for CLI actions. */
const ACTOR = "cli";

interface Common {
  database?: string;
  json?: boolean;
}

/** Opens Bulkhead on `--database`, `DATABASE_URL` or the service's default data directory, runs `fn`, closes. */
async function withBulkhead<T>(opts: Common, fn: (bh: Bulkhead) => Promise<T>): Promise<T> {
  const bh = await createBulkhead({ database: serviceDatabase(opts.database), warn: (m) => process.stderr.write(`${m}\n`) });
  try {
    return await fn(bh);
  } finally {
    await bh.close();
  }
}

const tenantView = (t: Tenant) => ({
  tenantId: t.tenantId,
  name: t.tenantName,
  tier: t.tier,
  status: t.status,
  store: t.store,
  index: t.index,
  isolation: t.isolation,
  dimension: t.dimension,
  maxDocuments: t.quota.maxDocuments,
  maxDailyQueries: t.quota.maxDailyQueries,
  requestsPerSecond: t.quota.requestsPerSecond,
});

function tier(value: string): TenantTier {
  if (!TIERS.includes(value as TenantTier)) throw new ValidationError("tier", `must be one of ${TIERS.join(", ")}, got "${value}"`);
  return value as TenantTier;
}

function quotaOptions(opts: Record<string, string | undefined>): Partial<TenantQuota> {
  const quota: Partial<TenantQuota> = {};
  for (const key of ["maxDocuments", "maxDailyQueries", "requestsPerSecond", "burst", "maxConcurrent"] as const) {
    const raw = opts[key];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (!Number.isSafeInteger(n)) throw new ValidationError(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, `must be a whole number, got "${raw}"`);
    quota[key] = n;
  }
  return quota;
}

/** A progress line updated in place, only when a person is watching (stderr is a terminal). */
function progress(verb: string): ((n: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (n) => process.stderr.write(`\r  ${verb} ${n.toLocaleString("en")} documents…\x1b[K`);
}

/** A move's progress line ("copying 12,000 of 100,000 vectors (12 %)"), only on a terminal. */
function moveProgress(): MoveOptions["onProgress"] {
  if (!process.stderr.isTTY) return undefined;
  return (p) => {
    const done = p.phase === "copying" ? ` ${p.copied.toLocaleString("en")} of ${p.total.toLocaleString("en")} vectors (${Math.floor((100 * p.copied) / Math.max(p.total, 1))} %)` : "";
    const caught = p.phase === "catching-up" ? ` ${p.caughtUp.toLocaleString("en")} changed vectors re-copied` : "";
    const limited = p.writeLimit ? ` (its writes held to ${p.writeLimit} vectors/s to let the move catch up)` : "";
    process.stderr.write(`\r  ${p.tenantId}: ${p.phase}${done}${caught}${limited}…\x1b[K`);
  };
}

/**
 * Runs a move so that Ctrl-C stops it cleanly between two steps: the tenant keeps working where it
 * is, and the move stays recorded for `migrate resume` or `migrate rollback`.
 */
async function interruptible<T>(tenantId: string, run: (options: MoveOptions) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    return await run({ signal: stop.signal, onProgress: moveProgress() });
  } catch (err) {
    if (!stop.signal.aborted) throw err;
    clearProgress();
    throw new MoveConflictError(tenantId, `move of ${tenantId} interrupted; it keeps working where it is. Continue with: bulkhead migrate resume ${tenantId}  (or discard the copy: bulkhead migrate rollback ${tenantId})`);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    clearProgress();
  }
}

/** Clears the progress line before the result is printed. */
const clearProgress = () => process.stderr.isTTY && process.stderr.write("\r\x1b[K");

/** Adds the shared `--database` and `--json` options. */
const common = (c: Command) => c.option("--database <url>", "postgres://… (runtime role), memory:// or a directory (default: DATABASE_URL, else ./bulkhead-data)").option("--json", "machine-readable output");

/** `bulkhead tenants …`, `keys …`, `capacity`, `costs …`: the operator's commands. */
export function addOperatorCommands(program: Command): void {
  const tenants = program.command("tenants").description("Register, inspect and change tenants");
  common(tenants.command("add <tenantId> <name>").description("Register a tenant (free and pro get a namespace, enterprise a dedicated index)"))
    .option("--tier <tier>", `one of ${TIERS.join(", ")}`, "free")
    .option("--store <name>", "store to place it in: home or a cell of BULKHEAD_CELLS", "home")
    .option("--max-documents <n>").option("--max-daily-queries <n>").option("--requests-per-second <n>").option("--burst <n>").option("--max-concurrent <n>")
    .action((tenantId: string, name: string, opts: Common & { tier: string } & Record<string, string>) =>
      withBulkhead(opts, async (bh) => {
        const t = await bh.registry.registerTenant(tenantId, name, tier(opts.tier), { quota: quotaOptions(opts), store: opts.store });
        await bh.audit.record(ACTOR, "tenant.register", t.tenantId, { tier: t.tier, store: t.store });
        print(opts.json, tenantView(t), () => `registered ${t.tenantId} (${t.tier}) in ${t.index}, ${t.isolation}`);
      }),
    );
  common(tenants.command("list").description("List tenants"))
    .option("--tier <tier>").option("--status <status>", "active or suspended")
    .action((opts: Common & { tier?: string; status?: "active" | "suspended" }) =>
      withBulkhead(opts, async (bh) => {
        const list = (await bh.registry.listTenants({ tier: opts.tier ? tier(opts.tier) : undefined, status: opts.status })).map(tenantView);
        print(opts.json, list, () => table(list, ["tenantId", "name", "tier", "status", "store", "index", "isolation", "maxDocuments", "maxDailyQueries"]));
      }),
    );
  common(tenants.command("show <tenantId>").description("One tenant, with its documents, keys and this month's costs"))
    .action((tenantId: string, opts: Common) =>
      withBulkhead(opts, async (bh) => {
        const t = await bh.registry.getTenant(tenantId);
        const keys = await bh.keys.listKeys({ tenantId });
        const costs = await bh.costEngine.getTenantCostSummary(tenantId);
        const view = { ...tenantView(t), quota: t.quota, keys: keys.length, activeKeys: keys.filter((k) => !k.revokedAt).length, costs };
        print(opts.json, view, () =>
          [
            `${t.tenantId} — ${t.tenantName} (${t.tier}, ${t.status})`,
            `  placement: ${t.isolation} ${t.namespace} in ${t.index} (store ${t.store}), ${t.dimension} d, ${t.metric}`,
            `  quota: ${Object.entries(t.quota).map(([k, v]) => `${k} ${v}`).join(", ")}`,
            `  keys: ${view.activeKeys} active of ${view.keys}`,
            `  ${costs.period}: ${costs.queryCount} queries, variable $${costs.variableCost.toFixed(6)}, fixed $${costs.fixedCost.toFixed(2)}`,
          ].join("\n"),
        );
      }),
    );
  common(tenants.command("set-tier <tenantId> <tier>").description("Change a tenant's tier (to or from enterprise moves its vectors)"))
    .action((tenantId: string, to: string, opts: Common) =>
      withBulkhead(opts, async (bh) => {
        const t = await interruptible(tenantId, (o) => bh.registry.changeTier(tenantId, tier(to), o));
        await bh.audit.record(ACTOR, "tenant.tier", t.tenantId, { tier: t.tier });
        print(opts.json, tenantView(t), () => `${t.tenantId} is now ${t.tier}: ${t.isolation} in ${t.index}`);
      }),
    );
  for (const [name, verb] of [["suspend", "suspended"], ["resume", "resumed"]] as const) {
    common(tenants.command(`${name} <tenantId>`).description(name === "suspend" ? "Refuse the tenant's data operations (data is kept)" : "Allow a suspended tenant again"))
      .action((tenantId: string, opts: Common) =>
        withBulkhead(opts, async (bh) => {
          const t = name === "suspend" ? await bh.registry.suspendTenant(tenantId) : await bh.registry.resumeTenant(tenantId);
          await bh.audit.record(ACTOR, `tenant.${name}`, t.tenantId);
          print(opts.json, tenantView(t), () => `${t.tenantId} ${verb}`);
        }),
      );
  }
  common(tenants.command("delete <tenantId>").description("Erase a tenant (vectors, namespace or dedicated index, keys, counters) and prove no row of it is left"))
    .requiredOption("--yes", "confirm")
    .action((tenantId: string, opts: Common) =>
      withBulkhead(opts, async (bh) => {
        const report = await bh.eraseTenant(tenantId, ACTOR);
        print(opts.json, report, () =>
          [
            `erased ${tenantId}: ${report.verified ? "verified, no row left" : "NOT VERIFIED, rows left"}`,
            ...Object.entries(report.remaining).map(([t, n]) => `  ${n === 0 ? "✓" : "✗"} ${t}: ${n} rows`),
            ...Object.entries(report.retained).map(([t, n]) => `  kept by the billing retention rule: ${t}: ${n} rows`),
          ].join("\n"),
        );
        if (!report.verified) process.exitCode = 1;
      }),
    );

  common(program.command("backup <tenantId>").description("Write one tenant's vectors, metadata and settings to a checksummed gzip file (streamed)"))
    .requiredOption("--out <file>", "where to write the backup")
    .option("--with-usage", "include the tenant's usage events")
    .action((tenantId: string, opts: Common & { out: string; withUsage?: boolean }) =>
      withBulkhead(opts, async (bh) => {
        const summary = await bh.backupTenant(tenantId, opts.out, { includeUsage: opts.withUsage, onProgress: progress("exported") });
        clearProgress();
        await bh.audit.record(ACTOR, "tenant.backup", tenantId, { documents: summary.documents, sha256: summary.sha256 });
        print(opts.json, summary, () => `backed up ${summary.documents} documents${opts.withUsage ? ` and ${summary.usageEvents} usage events` : ""} of ${tenantId} to ${summary.file} (sha256 ${summary.sha256})`);
      }),
    );
  common(program.command("restore <file>").description("Verify a backup, then replace the tenant's vectors with it in one transaction"))
    .option("--into <tenantId>", "restore into this tenant instead of the backup's own")
    .action((file: string, opts: Common & { into?: string }) =>
      withBulkhead(opts, async (bh) => {
        const summary = await bh.restoreTenant(file, { into: opts.into, onProgress: progress("restored") });
        clearProgress();
        await bh.audit.record(ACTOR, "tenant.restore", summary.tenantId, { from: summary.from, documents: summary.documents, created: summary.created });
        print(opts.json, summary, () => `restored ${summary.documents} documents of ${summary.from} into ${summary.tenantId}${summary.created ? " (registered from the backup's settings)" : ""}`);
      }),
    );

  const keys = program.command("keys").description("API keys (stored as hashes; a key is shown once, when created)");
  common(keys.command("create").description("Create a tenant key (--tenant) or an admin key (--admin)"))
    .option("--tenant <tenantId>").option("--admin").option("--scopes <list>", "read,write", "read,write").option("--name <name>")
    .action((opts: Common & { tenant?: string; admin?: boolean; scopes: string; name?: string }) =>
      withBulkhead(opts, async (bh) => {
        if (!opts.tenant === !opts.admin) throw new ValidationError("--tenant/--admin", "give exactly one of --tenant <tenantId> or --admin");
        const created = opts.admin
          ? await bh.keys.createKey("admin", { name: opts.name, scopes: ["read", "write"] }, ACTOR)
          : await bh.keys.createKey("tenant", { tenantId: opts.tenant, scopes: opts.scopes.split(",") as Scope[], name: opts.name }, ACTOR);
        print(opts.json, created, () => `${created.key}\n(shown only this once: key id ${created.keyId}, ${created.kind}${created.tenantId ? ` of ${created.tenantId}` : ""}, scopes ${created.scopes.join(",")})`);
      }),
    );
  common(keys.command("list").description("Keys, without their secrets"))
    .option("--tenant <tenantId>").option("--admin", "admin keys only")
    .action((opts: Common & { tenant?: string; admin?: boolean }) =>
      withBulkhead(opts, async (bh) => {
        const list = await bh.keys.listKeys(opts.admin ? { tenantId: null } : opts.tenant ? { tenantId: opts.tenant } : {});
        print(opts.json, list, () => table(list as unknown as Record<string, unknown>[], ["keyId", "kind", "tenantId", "scopes", "name", "createdAt", "lastUsedAt", "revokedAt"]));
      }),
    );
  for (const name of ["revoke", "rotate"] as const) {
    common(keys.command(`${name} <keyId>`).description(name === "revoke" ? "Revoke a key (at once, in every instance)" : "Replace a key with a new one (shown once); the old one stops working"))
      .action((keyId: string, opts: Common) =>
        withBulkhead(opts, async (bh) => {
          if (name === "revoke") {
            const info = await bh.keys.revokeKey(keyId, ACTOR);
            print(opts.json, info, () => `revoked ${keyId}`);
          } else {
            const created = await bh.keys.rotateKey(keyId, ACTOR);
            print(opts.json, created, () => `${created.key}\n(shown only this once: new key id ${created.keyId}; ${keyId} is revoked)`);
          }
        }),
      );
  }

  const migrate = program.command("migrate").description("Move tenants online: to or from a dedicated index, to another shared index or to another store (cell); the tenant keeps working");
  const moved = (opts: Common, t: Tenant, action: string) => print(opts.json, tenantView(t), () => `${t.tenantId} ${action}: ${t.tier}, ${t.isolation} in ${t.index} (store ${t.store})`);
  common(migrate.command("start <tenantId>").description("Move a tenant; resolves when its placement has switched (Ctrl-C stops it resumably)"))
    .option("--tier <tier>", "new tier (to or from enterprise moves the vectors)")
    .option("--index <name>", "shared index to move to (see capacity)")
    .option("--store <name>", "store to move to: home or a cell of BULKHEAD_CELLS")
    .option("--batch-size <n>", "vectors per copy transaction", "1000")
    .action((tenantId: string, opts: Common & { tier?: string; index?: string; store?: string; batchSize: string }) =>
      withBulkhead(opts, async (bh) => {
        const batchSize = Number(opts.batchSize);
        if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 10_000) throw new ValidationError("--batch-size", `must be a whole number from 1 to 10000, got "${opts.batchSize}"`);
        if (opts.tier === undefined && opts.index === undefined && opts.store === undefined) throw new ValidationError("--tier", "give at least one of --tier, --index and --store");
        const target = { tier: opts.tier === undefined ? undefined : tier(opts.tier), index: opts.index, store: opts.store };
        const t = await interruptible(tenantId, (o) => bh.registry.moveTenant(tenantId, target, { ...o, batchSize }));
        await bh.audit.record(ACTOR, "tenant.move", t.tenantId, { tier: t.tier, store: t.store, index: t.index });
        moved(opts, t, "moved");
      }),
    );
  common(migrate.command("resume <tenantId>").description("Continue an interrupted move from its last checkpoint"))
    .action((tenantId: string, opts: Common) =>
      withBulkhead(opts, async (bh) => {
        const t = await interruptible(tenantId, (o) => bh.registry.resumeMove(tenantId, o));
        await bh.audit.record(ACTOR, "tenant.move", t.tenantId, { tier: t.tier, store: t.store, index: t.index, resumed: true });
        moved(opts, t, "moved");
      }),
    );
  common(migrate.command("rollback <tenantId>").description("Discard an interrupted move's copy; the tenant stays where it is"))
    .action((tenantId: string, opts: Common) =>
      withBulkhead(opts, async (bh) => {
        const t = await bh.registry.rollbackMove(tenantId);
        await bh.audit.record(ACTOR, "tenant.move.rollback", t.tenantId);
        moved(opts, t, "stays");
      }),
    );
  common(migrate.command("limit-writes <tenantId> <vectorsPerSecond>").description("Hold a moving tenant's writes to this many vectors per second until its move switches (`off` lifts the limit)"))
    .action((tenantId: string, rate: string, opts: Common) =>
      withBulkhead(opts, async (bh) => {
        const limit = rate === "off" ? null : Number(rate);
        if (limit !== null && (!Number.isSafeInteger(limit) || limit < 1)) throw new ValidationError("vectorsPerSecond", `must be a whole number >= 1 or "off", got "${rate}"`);
        const t = await bh.registry.limitMoveWrites(tenantId, limit);
        await bh.audit.record(ACTOR, "tenant.move.limit-writes", t.tenantId, { vectorsPerSecond: limit });
        print(opts.json, { tenantId: t.tenantId, moveWriteLimit: t.moveWriteLimit }, () => `${t.tenantId}: writes ${limit === null ? "no longer limited" : `held to ${limit} vectors/s`} until its move switches`);
      }),
    );
  common(migrate.command("status").description("Moves in progress (an interrupted one stays listed until resumed or rolled back)"))
    .action((opts: Common) =>
      withBulkhead(opts, async (bh) => {
        const moves = await bh.moves.list();
        print(opts.json, moves, () => table(moves as unknown as Record<string, unknown>[], ["tenantId", "toTier", "toStore", "toIndex", "phase", "copied", "total", "percent", "writeLimit", "updatedAt"]));
      }),
    );
  common(program.command("capacity").description("Namespaces used per shared index, thresholds and status"))
    .action((opts: Common) =>
      withBulkhead(opts, async (bh) => {
        const caps = await bh.registry.getCapacity();
        print(opts.json, caps, () => table(caps as unknown as Record<string, unknown>[], ["index", "used", "max", "free", "alertAt", "provisionAt", "status"]));
      }),
    );

  const costs = program.command("costs").description("Costs per tenant and tier");
  common(costs.command("report").description("Monthly report: revenue, costs and margin per tenant and tier"))
    .option("--period <yyyy-mm>")
    .action((opts: Common & { period?: string }) =>
      withBulkhead(opts, async (bh) => {
        const r = await bh.costEngine.monthlyReport(opts.period);
        print(opts.json, r, () =>
          [
            `${r.period} (fixed costs allocated: ${r.allocationMethod ?? "not yet"})`,
            table(r.tenants as unknown as Record<string, unknown>[], ["tenantId", "tier", "revenue", "variableCost", "fixedCost", "totalCost", "margin"]),
            `total: revenue $${r.totals.revenue.toFixed(2)}, cost $${r.totals.totalCost.toFixed(2)}, margin $${r.totals.margin.toFixed(2)}`,
            r.unprofitable.length ? `unprofitable: ${r.unprofitable.join(", ")}` : "no unprofitable tenant",
          ].join("\n"),
        );
      }),
    );
  common(costs.command("allocate").description("Allocate a month's fixed costs"))
    .option("--period <yyyy-mm>").option("--total <usd>", "amount (default: the month's real fixed costs)")
    .option("--method <method>", "variable-cost, queries, storage or equal", "variable-cost")
    .action((opts: Common & { period?: string; total?: string; method: string }) =>
      withBulkhead(opts, async (bh) => {
        const total = opts.total === undefined ? undefined : Number(opts.total);
        if (total !== undefined && !(total >= 0)) throw new ValidationError("--total", `must be an amount in USD >= 0, got "${opts.total}"`);
        const allocation = await bh.costEngine.allocateFixedCosts(total, opts.method as "equal", { period: opts.period });
        await bh.audit.record(ACTOR, "costs.allocate", null, { period: opts.period ?? null, total: total ?? null, method: opts.method });
        const rows = Object.entries(allocation).map(([tenantId, usd]) => ({ tenantId, usd }));
        print(opts.json, allocation, () => table(rows, ["tenantId", "usd"]));
      }),
    );
  costs
    .command("plan")
    .description("Monthly cost of each isolation strategy at several tenant counts (the decision card)")
    .option("--tenants <list>", "tenant counts", "10,100,500,1000")
    .option("--json", "machine-readable output")
    .action((opts: { tenants: string; json?: boolean }) => {
      const counts = opts.tenants.split(",").map(Number);
      if (counts.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new ValidationError("--tenants", `must be whole numbers >= 1, got "${opts.tenants}"`);
      const config = Config.get();
      const plan = planStrategies(config.prices, config.maxNamespacesPerIndex, { tenantCounts: counts });
      print(opts.json, plan, () => table(plan as unknown as Record<string, unknown>[], ["tenants", "strategy", "infrastructureMonthly", "totalMonthly", "perTenantMonthly"]));
    });
}
