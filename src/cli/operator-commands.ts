import { statSync } from "node:fs";
import type { Command } from "commander";
import { createBulkhead, type Bulkhead } from "../bulkhead.js";
import { loadConfig, QUOTA_MINIMUMS, serviceDatabase, TenantTier, TIERS, type TenantQuota } from "../config.js";
import { planStrategies } from "../costs/planner.js";
import { periodOf } from "../costs/usage-ledger.js";
import { BulkheadError, MoveConflictError, ValidationError } from "../errors.js";
import type { MoveOptions } from "../tenancy/placement-move.js";
import { SCOPES, type ApiKeyInfo, type CreatedKey, type Scope } from "../tenancy/api-keys.js";

/** A key as created, from the library or the API (dates as strings there). */
type CreatedView = CreatedKey;
import type { Tenant } from "../tenancy/tenant.js";
import { AdminClient, STATUS } from "./admin-client.js";
import { print, table, type CliIo } from "./output.js";

/** Who the audit log names for CLI actions. */
const ACTOR = "cli";

interface Common {
  database?: string;
  json?: boolean;
  /** A running service's base URL: go through its admin API instead of opening the database. */
  url?: string;
  adminKey?: string;
}

/** Opens Bulkhead on `--database`, `DATABASE_URL` or the service's default data directory, runs `fn`, closes. */
async function withBulkhead<T>(io: CliIo, opts: Common, fn: (bh: Bulkhead) => Promise<T>): Promise<T> {
  const bh = await createBulkhead({ database: serviceDatabase(opts.database, io.env), env: io.env, warn: (m) => io.err(`${m}\n`) });
  try {
    return await fn(bh);
  } finally {
    await bh.close();
  }
}

/**
 * Runs a command on the database (`local`) or, with `--url`, through the running service's admin
 * API (`remote`). An embedded data directory is open in one process at a time, so while the service
 * runs, `--url` is how its operator reaches it.
 */
async function via<T>(io: CliIo, opts: Common, local: (bh: Bulkhead) => Promise<T>, remote?: (api: AdminClient) => Promise<T>): Promise<T> {
  if (opts.url === undefined) {
    if (opts.adminKey !== undefined) throw new ValidationError("--admin-key", "is used only with --url (the service's admin API)");
    return withBulkhead(io, opts, local);
  }
  if (!remote) throw new ValidationError("--url", "this command works on the database only, not through the service: run it without --url (stop the service first if it holds an embedded data directory)");
  if (opts.database !== undefined) throw new ValidationError("--url", "give either --url (through the service) or --database, not both");
  return remote(new AdminClient(opts.url, opts.adminKey ?? io.env.BULKHEAD_ADMIN_KEY ?? ""));
}

/** A tenant as the admin API shows it. */
interface ApiTenant {
  tenantId: string;
  tenantName: string;
  tier: Tenant["tier"];
  status: Tenant["status"];
  store: string;
  index: string;
  namespace: string;
  isolation: Tenant["isolation"];
  dimension: number;
  quota: TenantQuota;
  moving?: boolean;
}


const tenantPath = (tenantId: string) => `/admin/tenants/${encodeURIComponent(tenantId)}`;
const keyPath = (keyId: string) => `/admin/keys/${encodeURIComponent(keyId)}`;

/** Keys as people read them: an admin key has no scopes (it reaches the admin API, never tenant data). */
const keyRows = (list: readonly ApiKeyInfo[]) => list.map((k) => ({ ...k, scopes: k.kind === "admin" ? "(admin)" : k.scopes }));

/** `--period`: a month this deployment can have billed, checked before anything is opened where possible. */
function checkPeriod(period: string | undefined, firstTenantCreated?: Date): void {
  if (period === undefined) return;
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(period);
  if (!m) throw new ValidationError("--period", `must be a month as YYYY-MM, got "${period}"`);
  const now = periodOf(new Date());
  if (period > now) throw new ValidationError("--period", `${period} is in the future (this month is ${now})`);
  // Months before the first tenant existed have nothing billed: reporting today's tenants' plan
  // prices for them would invent revenue and costs.
  if (firstTenantCreated) {
    const first = periodOf(firstTenantCreated);
    if (period < first) throw new ValidationError("--period", `${period} is before this deployment's first tenant (registered ${first}); nothing was billed then`);
  }
}

/** The earliest registration among the tenants the report covers. */
const earliest = (dates: (Date | string)[]) => (dates.length ? new Date(Math.min(...dates.map((d) => new Date(d).getTime()))) : undefined);

/** `--scopes read --scopes write` and `--scopes read,write` both collect both. */
const collectScopes = (value: string, previous: string[] | undefined) => [...(previous ?? []), ...value.split(",").map((s) => s.trim()).filter(Boolean)];

/** A tenant as the CLI shows it: the library's `Tenant` or the admin API's view of one (the same fields). */
const tenantView = (t: Pick<Tenant, "tenantId" | "tenantName" | "tier" | "status" | "store" | "index" | "isolation" | "dimension" | "quota">) => ({
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
  for (const key of Object.keys(QUOTA_MINIMUMS) as (keyof TenantQuota)[]) {
    const raw = opts[key];
    if (raw === undefined) continue;
    const n = Number(raw);
    if (!Number.isSafeInteger(n)) throw new ValidationError(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, `must be a whole number, got "${raw}"`);
    quota[key] = n;
  }
  return quota;
}

/** A progress line updated in place, only when a person is watching (stderr is a terminal). */
function progress(io: CliIo, verb: string): ((n: number) => void) | undefined {
  if (!io.tty) return undefined;
  return (n) => io.err(`\r  ${verb} ${n.toLocaleString("en")} documents…\x1b[K`);
}

/** A move's progress line ("copying 12,000 of 100,000 vectors (12 %)"), only on a terminal. */
function moveProgress(io: CliIo): MoveOptions["onProgress"] {
  if (!io.tty) return undefined;
  return (p) => {
    const done = p.phase === "copying" ? ` ${p.copied.toLocaleString("en")} of ${p.total.toLocaleString("en")} vectors (${Math.floor((100 * p.copied) / Math.max(p.total, 1))} %)` : "";
    const caught = p.phase === "catching-up" ? ` ${p.caughtUp.toLocaleString("en")} changed vectors re-copied` : "";
    const limited = p.writeLimit ? ` (its writes held to ${p.writeLimit} vectors/s to let the move catch up)` : "";
    io.err(`\r  ${p.tenantId}: ${p.phase}${done}${caught}${limited}…\x1b[K`);
  };
}

/**
 * Runs a move so that Ctrl-C stops it cleanly between two steps: the tenant keeps working where it
 * is, and the move stays recorded for `migrate resume` or `migrate rollback`.
 */
async function interruptible<T>(io: CliIo, tenantId: string, run: (options: MoveOptions) => Promise<T>): Promise<T> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    return await run({ signal: stop.signal, onProgress: moveProgress(io) });
  } catch (err) {
    if (!stop.signal.aborted) throw err;
    clearProgress(io);
    throw new MoveConflictError(tenantId, `move of ${tenantId} interrupted; it keeps working where it is. Continue with: bulkhead migrate resume ${tenantId}  (or discard the copy: bulkhead migrate rollback ${tenantId})`);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    clearProgress(io);
  }
}

/** Clears the progress line before the result is printed. */
const clearProgress = (io: CliIo) => io.tty && io.err("\r\x1b[K");

/** Adds the shared `--database` and `--json` options. */
const common = (c: Command) => c.option("--database <url>", "postgres://… (runtime role), memory:// or a directory (default: DATABASE_URL, else ./bulkhead-data)").option("--json", "machine-readable output");

/** `common`, plus `--url` and `--admin-key` for the commands that can go through a running service. */
const remote = (c: Command) =>
  common(c)
    .option("--url <url>", "go through a running service's admin API (e.g. http://127.0.0.1:8080) instead of opening the database")
    .option("--admin-key <key>", "admin key for --url (default: BULKHEAD_ADMIN_KEY)");

/** `bulkhead tenants …`, `keys …`, `capacity`, `costs …`: the operator's commands. */
export function addOperatorCommands(program: Command, io: CliIo): void {
  const tenants = program.command("tenants").description("Register, inspect and change tenants");
  remote(tenants.command("add <tenantId> <name>").description("Register a tenant (free and pro get a namespace, enterprise a dedicated index)"))
    .option("--tier <tier>", `one of ${TIERS.join(", ")}`, "free")
    .option("--store <name>", "store to place it in: home or a cell of BULKHEAD_CELLS", "home")
    .option("--max-documents <n>").option("--max-daily-queries <n>").option("--requests-per-second <n>").option("--burst <n>").option("--max-concurrent <n>").option("--request-bytes-per-second <n>")
    .action(async (tenantId: string, name: string, opts: Common & { tier: string } & Record<string, string>) => {
      const t = tier(opts.tier);
      const quota = quotaOptions(opts);
      const view = await via(
        io,
        opts,
        async (bh) => {
          const added = await bh.registry.registerTenant(tenantId, name, t, { quota, store: opts.store });
          await bh.audit.record(ACTOR, "tenant.register", added.tenantId, { tier: added.tier, store: added.store });
          return tenantView(added);
        },
        async (api) => tenantView(await api.post<ApiTenant>("/admin/tenants", { tenantId, name, tier: t, ...(Object.keys(quota).length ? { quota } : {}), ...(opts.store !== "home" ? { store: opts.store } : {}) })),
      );
      print(io, opts.json, view, () => `registered ${view.tenantId} (${view.tier}) in ${view.index}, ${view.isolation}`);
    });
  remote(tenants.command("list").description("List tenants"))
    .option("--tier <tier>").option("--status <status>", "active or suspended")
    .action(async (opts: Common & { tier?: string; status?: string }) => {
      const t = opts.tier === undefined ? undefined : tier(opts.tier);
      if (opts.status !== undefined && opts.status !== "active" && opts.status !== "suspended") throw new ValidationError("--status", `must be active or suspended, got "${opts.status}"`);
      const status = opts.status as "active" | "suspended" | undefined;
      const list = await via(
        io,
        opts,
        async (bh) => (await bh.registry.listTenants({ tier: t, status })).map(tenantView),
        async (api) => {
          const q = new URLSearchParams({ ...(t ? { tier: t } : {}), ...(status ? { status } : {}) }).toString();
          return (await api.get<ApiTenant[]>(`/admin/tenants${q ? `?${q}` : ""}`)).map(tenantView);
        },
      );
      print(io, opts.json, list, () => table(list, ["tenantId", "name", "tier", "status", "store", "index", "isolation", "maxDocuments", "maxDailyQueries"]));
    });
  remote(tenants.command("show <tenantId>").description("One tenant, with its documents, keys and this month's costs (costs not shown with --url)"))
    .action(async (tenantId: string, opts: Common) => {
      const view = await via(
        io,
        opts,
        async (bh) => {
          const t = await bh.registry.getTenant(tenantId);
          const keys = await bh.keys.listKeys({ tenantId });
          const costs = await bh.costEngine.getTenantCostSummary(tenantId);
          return { ...tenantView(t), namespace: t.namespace, metric: t.metric as string | undefined, quota: t.quota, keys: keys.length, activeKeys: keys.filter((k) => !k.revokedAt).length, costs: costs as typeof costs | undefined };
        },
        async (api) => {
          const t = await api.get<ApiTenant>(tenantPath(tenantId));
          const keys = await api.get<ApiKeyInfo[]>(`${tenantPath(tenantId)}/keys`);
          return { ...tenantView(t), namespace: t.namespace, metric: undefined as string | undefined, quota: t.quota as Readonly<TenantQuota>, keys: keys.length, activeKeys: keys.filter((k) => !k.revokedAt).length, costs: undefined as Awaited<ReturnType<Bulkhead["costEngine"]["getTenantCostSummary"]>> | undefined };
        },
      );
      const costs = view.costs;
      print(io, opts.json, view, () =>
        [
          `${view.tenantId} — ${view.name} (${view.tier}, ${view.status})`,
          `  placement: ${view.isolation} ${view.namespace} in ${view.index} (store ${view.store}), ${view.dimension} d${view.metric ? `, ${view.metric}` : ""}`,
          `  quota: ${Object.entries(view.quota).map(([k, v]) => `${k} ${v}`).join(", ")}`,
          `  keys: ${view.activeKeys} active of ${view.keys}`,
          ...(costs ? [`  ${costs.period}: ${costs.queryCount} queries, variable $${costs.variableCost.toFixed(6)}, fixed $${costs.fixedCost.toFixed(2)}`] : []),
        ].join("\n"),
      );
    });
  remote(tenants.command("set-tier <tenantId> <tier>").description("Change a tenant's tier (to or from enterprise moves its vectors; with --url the move runs in the service, see migrate status)"))
    .action(async (tenantId: string, to: string, opts: Common) => {
      const target = tier(to);
      const result = await via(
        io,
        opts,
        async (bh) => {
          const t = await interruptible(io, tenantId, (o) => bh.registry.changeTier(tenantId, target, o));
          await bh.audit.record(ACTOR, "tenant.tier", t.tenantId, { tier: t.tier });
          return { ...tenantView(t), moving: false };
        },
        async (api) => {
          const t = await api.post<ApiTenant>(`${tenantPath(tenantId)}/tier`, { tier: target });
          return { ...tenantView(t), moving: t[STATUS] === 202 };
        },
      );
      print(io, opts.json, result, () =>
        result.moving
          ? `${result.tenantId}: moving to ${target} in the service's background (still ${result.tier} until it switches); follow it with: bulkhead migrate status --url …`
          : `${result.tenantId} is now ${result.tier}: ${result.isolation} in ${result.index}`,
      );
    });
  for (const [name, verb] of [["suspend", "suspended"], ["resume", "resumed"]] as const) {
    remote(tenants.command(`${name} <tenantId>`).description(name === "suspend" ? "Refuse the tenant's data operations (data is kept)" : "Allow a suspended tenant again"))
      .action(async (tenantId: string, opts: Common) => {
        const view = await via(
          io,
          opts,
          async (bh) => {
            const t = name === "suspend" ? await bh.registry.suspendTenant(tenantId) : await bh.registry.resumeTenant(tenantId);
            await bh.audit.record(ACTOR, `tenant.${name}`, t.tenantId);
            return tenantView(t);
          },
          async (api) => tenantView(await api.post<ApiTenant>(`${tenantPath(tenantId)}/${name}`)),
        );
        print(io, opts.json, view, () => `${view.tenantId} ${verb}`);
      });
  }
  remote(tenants.command("delete <tenantId>").description("Erase a tenant (vectors, namespace or dedicated index, keys, counters) and prove no row of it is left"))
    .requiredOption("--yes", "confirm")
    .action(async (tenantId: string, opts: Common) => {
      type Report = Awaited<ReturnType<Bulkhead["eraseTenant"]>>;
      const report = await via<Report>(io, opts, (bh) => bh.eraseTenant(tenantId, ACTOR), (api) => api.delete<Report>(tenantPath(tenantId)));
      print(io, opts.json, report, () =>
        [
          `erased ${tenantId}: ${report.verified ? "verified, no row left" : "NOT VERIFIED, rows left"}`,
          ...Object.entries(report.remaining).map(([t, n]) => `  ${n === 0 ? "✓" : "✗"} ${t}: ${n} rows`),
          ...Object.entries(report.retained).map(([t, n]) => `  kept by the billing retention rule: ${t}: ${n} rows`),
        ].join("\n"),
      );
      if (!report.verified) io.exitCode = 1;
    });

  common(program.command("backup <tenantId>").description("Write one tenant's vectors, text documents, metadata and settings to a checksummed gzip file (streamed)"))
    .requiredOption("--out <file>", "where to write the backup")
    .option("--with-usage", "include the tenant's usage events")
    .action((tenantId: string, opts: Common & { out: string; withUsage?: boolean }) =>
      withBulkhead(io, opts, async (bh) => {
        const summary = await bh.backupTenant(tenantId, opts.out, { includeUsage: opts.withUsage, onProgress: progress(io, "exported") });
        clearProgress(io);
        await bh.audit.record(ACTOR, "tenant.backup", tenantId, { documents: summary.documents, textDocuments: summary.textDocuments, sha256: summary.sha256 });
        print(io, opts.json, summary, () => `backed up ${summary.documents} documents, ${summary.textDocuments} text documents (${summary.textChunks} chunks)${opts.withUsage ? ` and ${summary.usageEvents} usage events` : ""} of ${tenantId} to ${summary.file} (sha256 ${summary.sha256})`);
      }),
    );
  common(program.command("restore <file>").description("Verify a backup, then replace the tenant's vectors and text with it (all or nothing)"))
    .option("--into <tenantId>", "restore into this tenant instead of the backup's own")
    .action((file: string, opts: Common & { into?: string }) => {
      // Checked before the database is opened: a missing file is "not found", not a corrupt backup.
      try {
        if (!statSync(file).isFile()) throw new ValidationError("file", `${file} is not a file`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new BulkheadError("FILE_NOT_FOUND", 404, `no backup file at ${file}; nothing was restored`);
        throw err;
      }
      return withBulkhead(io, opts, async (bh) => {
        const summary = await bh.restoreTenant(file, { into: opts.into, onProgress: progress(io, "restored") });
        clearProgress(io);
        await bh.audit.record(ACTOR, "tenant.restore", summary.tenantId, { from: summary.from, documents: summary.documents, textDocuments: summary.textDocuments, created: summary.created });
        print(io, opts.json, summary, () => `restored ${summary.documents} documents, ${summary.textDocuments} text documents (${summary.textChunks} chunks) of ${summary.from} into ${summary.tenantId}${summary.created ? " (registered from the backup's settings)" : ""}`);
      });
    });

  const keys = program.command("keys").description("API keys (stored as hashes; a key is shown once, when created)");
  const shownOnce = (created: CreatedView) =>
    `${created.key}\n(shown only this once: key id ${created.keyId}, ${created.kind}${created.tenantId ? ` of ${created.tenantId}` : ""}${created.kind === "admin" ? "" : `, scopes ${created.scopes.join(",")}`})`;
  remote(keys.command("create").description("Create a tenant key (--tenant) or an admin key (--admin)"))
    .option("--tenant <tenantId>").option("--admin")
    .option("--scopes <list>", `scopes of a tenant key, comma-separated or repeated (${SCOPES.join(", ")}; default: all)`, collectScopes)
    .option("--name <name>")
    .action(async (opts: Common & { tenant?: string; admin?: boolean; scopes?: string[]; name?: string }) => {
      if (!opts.tenant === !opts.admin) throw new ValidationError("--tenant/--admin", "give exactly one of --tenant <tenantId> or --admin");
      if (opts.admin && opts.scopes) throw new ValidationError("--scopes", "admin keys have no scopes (they reach the admin API, never tenant data)");
      const scopes = opts.scopes ? [...new Set(opts.scopes)] : undefined;
      if (scopes?.some((s) => !SCOPES.includes(s as Scope))) throw new ValidationError("--scopes", `must be among ${SCOPES.join(", ")}, got "${opts.scopes!.join(",")}"`);
      const created = await via<CreatedView>(
        io,
        opts,
        (bh) =>
          opts.admin
            ? bh.keys.createKey("admin", { name: opts.name, scopes: [...SCOPES] }, ACTOR)
            : bh.keys.createKey("tenant", { tenantId: opts.tenant, scopes: scopes as Scope[] | undefined, name: opts.name }, ACTOR),
        (api) =>
          opts.admin
            ? api.post<CreatedView>("/admin/keys", opts.name ? { name: opts.name } : {})
            : api.post<CreatedView>(`${tenantPath(opts.tenant!)}/keys`, { ...(scopes ? { scopes } : {}), ...(opts.name ? { name: opts.name } : {}) }),
      );
      print(io, opts.json, created, () => shownOnce(created));
    });
  common(keys.command("create-admin").description("Mint an admin key offline, on the database itself (the data directory, DATABASE_URL, or the owner role's URL), e.g. when none is at hand"))
    .option("--name <name>", "what the key is for", "admin (minted offline)")
    .option("--owner-url <url>", "mint it over the owner role's connection (default: DATABASE_OWNER_URL when the database is a server)")
    .action(async (opts: Common & { name: string; ownerUrl?: string }) => {
      // --owner-url, else --database as given, else the owner URL a server deployment sets, else DATABASE_URL / ./bulkhead-data.
      const ownerUrl = opts.ownerUrl ?? (opts.database === undefined ? io.env.DATABASE_OWNER_URL || undefined : undefined);
      const mint = (bh: Pick<Bulkhead, "keys">) => bh.keys.createKey("admin", { name: opts.name, scopes: [...SCOPES] }, ACTOR);
      let created: CreatedView;
      if (ownerUrl) {
        // Over the owner role: works whatever the runtime role may write (the control plane is not its to change).
        const { openOwnerDatabase } = await import("../db/open.js");
        const { ApiKeyStore } = await import("../tenancy/api-keys.js");
        const { AuditLog } = await import("../tenancy/audit-log.js");
        const db = await openOwnerDatabase(ownerUrl, loadConfig({ env: io.env }).schema);
        try {
          created = await mint({ keys: new ApiKeyStore(db, new AuditLog(db), 0) });
        } finally {
          await db.close();
        }
      } else {
        created = await withBulkhead(io, opts, mint);
      }
      print(io, opts.json, created, () => shownOnce(created));
    });
  remote(keys.command("list").description("Keys, without their secrets"))
    .option("--tenant <tenantId>").option("--admin", "admin keys only")
    .action(async (opts: Common & { tenant?: string; admin?: boolean }) => {
      if (opts.tenant && opts.admin) throw new ValidationError("--tenant/--admin", "give at most one of --tenant <tenantId> or --admin");
      const list = await via<ApiKeyInfo[]>(
        io,
        opts,
        (bh) => bh.keys.listKeys(opts.admin ? { tenantId: null } : opts.tenant ? { tenantId: opts.tenant } : {}),
        async (api) => (opts.tenant ? api.get<ApiKeyInfo[]>(`${tenantPath(opts.tenant)}/keys`) : (await api.get<ApiKeyInfo[]>("/admin/keys")).filter((k) => !opts.admin || k.kind === "admin")),
      );
      print(io, opts.json, list, () => table(keyRows(list) as unknown as Record<string, unknown>[], ["keyId", "kind", "tenantId", "scopes", "name", "createdAt", "lastUsedAt", "revokedAt"]));
    });
  for (const name of ["revoke", "rotate"] as const) {
    remote(keys.command(`${name} <keyId>`).description(name === "revoke" ? "Revoke a key (at once, in every instance)" : "Replace a key with a new one (shown once); the old one stops working"))
      .action(async (keyId: string, opts: Common) => {
        if (name === "revoke") {
          const info = await via<ApiKeyInfo>(io, opts, (bh) => bh.keys.revokeKey(keyId, ACTOR), (api) => api.delete<ApiKeyInfo>(keyPath(keyId)));
          print(io, opts.json, info, () => `revoked ${keyId}`);
        } else {
          const created = await via<CreatedView>(io, opts, (bh) => bh.keys.rotateKey(keyId, ACTOR), (api) => api.post<CreatedView>(`${keyPath(keyId)}/rotate`));
          print(io, opts.json, created, () => `${created.key}\n(shown only this once: new key id ${created.keyId}; ${keyId} is revoked)`);
        }
      });
  }

  const migrate = program.command("migrate").description("Move tenants online: to or from a dedicated index, to another shared index or to another store (cell); the tenant keeps working");
  // Here a move runs in this process and the command ends when it has switched; with --url it runs
  // in the service's background and the command ends once it has begun.
  type MoveResult = ReturnType<typeof tenantView> & { moving: boolean };
  const moveResult = async (api: AdminClient, tenantId: string): Promise<MoveResult> => ({ ...tenantView(await api.get<ApiTenant>(tenantPath(tenantId))), moving: true });
  const printMove = (opts: Common, r: MoveResult, action: string) =>
    print(io, opts.json, r, () =>
      r.moving
        ? `${r.tenantId}: moving in the service's background (still ${r.tier}, ${r.isolation} in ${r.index} until it switches); follow it with: bulkhead migrate status --url …`
        : `${r.tenantId} ${action}: ${r.tier}, ${r.isolation} in ${r.index} (store ${r.store})`,
    );
  const batchSizeOf = (raw: string | undefined) => {
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 1 || n > 10_000) throw new ValidationError("--batch-size", `must be a whole number from 1 to 10000, got "${raw}"`);
    return n;
  };
  remote(migrate.command("start <tenantId>").description("Move a tenant; resolves when its placement has switched (Ctrl-C stops it resumably; with --url it runs in the service's background)"))
    .option("--tier <tier>", "new tier (to or from enterprise moves the vectors)")
    .option("--index <name>", "shared index to move to (see capacity)")
    .option("--store <name>", "store to move to: home or a cell of BULKHEAD_CELLS")
    .option("--batch-size <n>", "vectors per copy transaction (default 1000)")
    .action(async (tenantId: string, opts: Common & { tier?: string; index?: string; store?: string; batchSize?: string }) => {
      const batchSize = batchSizeOf(opts.batchSize);
      if (opts.tier === undefined && opts.index === undefined && opts.store === undefined) throw new ValidationError("--tier", "give at least one of --tier, --index and --store");
      const target = { tier: opts.tier === undefined ? undefined : tier(opts.tier), index: opts.index, store: opts.store };
      const result = await via<MoveResult>(
        io,
        opts,
        async (bh) => {
          const t = await interruptible(io, tenantId, (o) => bh.registry.moveTenant(tenantId, target, { ...o, batchSize: batchSize ?? 1000 }));
          await bh.audit.record(ACTOR, "tenant.move", t.tenantId, { tier: t.tier, store: t.store, index: t.index });
          return { ...tenantView(t), moving: false };
        },
        async (api) => {
          await api.post(`${tenantPath(tenantId)}/move`, { ...target, batchSize });
          return moveResult(api, tenantId);
        },
      );
      printMove(opts, result, "moved");
    });
  remote(migrate.command("resume <tenantId>").description("Continue an interrupted move from its last checkpoint (with --url, in the service's background)"))
    .option("--batch-size <n>", "vectors per copy transaction (default: the move's own)")
    .action(async (tenantId: string, opts: Common & { batchSize?: string }) => {
      const batchSize = batchSizeOf(opts.batchSize);
      const result = await via<MoveResult>(
        io,
        opts,
        async (bh) => {
          const t = await interruptible(io, tenantId, (o) => bh.registry.resumeMove(tenantId, { ...o, ...(batchSize ? { batchSize } : {}) }));
          await bh.audit.record(ACTOR, "tenant.move", t.tenantId, { tier: t.tier, store: t.store, index: t.index, resumed: true });
          return { ...tenantView(t), moving: false };
        },
        async (api) => {
          await api.post(`/admin/moves/${encodeURIComponent(tenantId)}/resume`, { batchSize });
          return moveResult(api, tenantId);
        },
      );
      printMove(opts, result, "moved");
    });
  remote(migrate.command("rollback <tenantId>").description("Discard an interrupted move's copy; the tenant stays where it is"))
    .action(async (tenantId: string, opts: Common) => {
      const t = await via(
        io,
        opts,
        async (bh) => {
          const rolled = await bh.registry.rollbackMove(tenantId);
          await bh.audit.record(ACTOR, "tenant.move.rollback", rolled.tenantId);
          return tenantView(rolled);
        },
        async (api) => tenantView(await api.post<ApiTenant>(`/admin/moves/${encodeURIComponent(tenantId)}/rollback`)),
      );
      printMove(opts, { ...t, moving: false }, "stays");
    });
  remote(migrate.command("limit-writes <tenantId> <vectorsPerSecond>").description("Hold a moving tenant's writes to this many vectors per second until its move switches (`off` lifts the limit)"))
    .action(async (tenantId: string, rate: string, opts: Common) => {
      const limit = rate === "off" ? null : Number(rate);
      if (limit !== null && (!Number.isSafeInteger(limit) || limit < 1 || limit > 1_000_000)) throw new ValidationError("vectorsPerSecond", `must be a whole number from 1 to 1000000 or "off", got "${rate}"`);
      const t = await via(
        io,
        opts,
        async (bh) => {
          const limited = await bh.registry.limitMoveWrites(tenantId, limit);
          await bh.audit.record(ACTOR, "tenant.move.limit-writes", limited.tenantId, { vectorsPerSecond: limit });
          return { tenantId: limited.tenantId, moveWriteLimit: limited.moveWriteLimit };
        },
        async (api) => {
          const limited = await api.call<{ tenantId: string; moveWriteLimit: number | null }>("PUT", `/admin/moves/${encodeURIComponent(tenantId)}/write-limit`, { vectorsPerSecond: limit });
          return { tenantId: limited.tenantId, moveWriteLimit: limited.moveWriteLimit };
        },
      );
      print(io, opts.json, t, () => `${t.tenantId}: writes ${limit === null ? "no longer limited" : `held to ${limit} vectors/s`} until its move switches`);
    });
  remote(migrate.command("status").description("Moves in progress (an interrupted one stays listed until resumed or rolled back)"))
    .action(async (opts: Common) => {
      type Moves = Awaited<ReturnType<Bulkhead["moves"]["list"]>>;
      const moves = await via<Moves>(io, opts, (bh) => bh.moves.list(), (api) => api.get<Moves>("/admin/moves"));
      print(io, opts.json, moves, () => table(moves as unknown as Record<string, unknown>[], ["tenantId", "toTier", "toStore", "toIndex", "phase", "copied", "total", "percent", "writeLimit", "updatedAt"]));
    });
  remote(program.command("capacity").description("Namespaces used per shared index, thresholds and status"))
    .action(async (opts: Common) => {
      type Caps = Awaited<ReturnType<Bulkhead["registry"]["getCapacity"]>>;
      const caps = await via<Caps>(io, opts, (bh) => bh.registry.getCapacity(), (api) => api.get<Caps>("/admin/capacity"));
      print(io, opts.json, caps, () => table(caps as unknown as Record<string, unknown>[], ["index", "used", "max", "free", "alertAt", "provisionAt", "status"]));
    });

  const costs = program.command("costs").description("Costs per tenant and tier");
  remote(costs.command("report").description("Monthly report: revenue, costs and margin per tenant and tier"))
    .option("--period <yyyy-mm>", "a month from the first tenant's to this one (default: this month)")
    .action(async (opts: Common & { period?: string }) => {
      checkPeriod(opts.period);
      type Report = Awaited<ReturnType<Bulkhead["costEngine"]["monthlyReport"]>>;
      const r = await via<Report>(
        io,
        opts,
        async (bh) => {
          checkPeriod(opts.period, earliest((await bh.registry.listTenants()).map((t) => t.createdAt)));
          return bh.costEngine.monthlyReport(opts.period);
        },
        async (api) => {
          checkPeriod(opts.period, earliest((await api.get<{ createdAt: string }[]>("/admin/tenants")).map((t) => t.createdAt)));
          return api.get<Report>(`/admin/costs/report${opts.period ? `?period=${opts.period}` : ""}`);
        },
      );
      print(io, opts.json, r, () =>
        [
          `${r.period} (fixed costs allocated: ${r.allocationMethod ?? "not yet"})`,
          table(r.tenants as unknown as Record<string, unknown>[], ["tenantId", "tier", "revenue", "variableCost", "fixedCost", "totalCost", "margin"]),
          `total: revenue $${r.totals.revenue.toFixed(2)}, cost $${r.totals.totalCost.toFixed(2)}, margin $${r.totals.margin.toFixed(2)}`,
          r.unprofitable.length ? `unprofitable: ${r.unprofitable.join(", ")}` : "no unprofitable tenant",
        ].join("\n"),
      );
    });
  remote(costs.command("allocate").description("Allocate a month's fixed costs"))
    .option("--period <yyyy-mm>").option("--total <usd>", "amount (default: the month's real fixed costs)")
    .option("--method <method>", "variable-cost, queries, storage or equal", "variable-cost")
    .action(async (opts: Common & { period?: string; total?: string; method: string }) => {
      checkPeriod(opts.period);
      const total = opts.total === undefined ? undefined : Number(opts.total);
      if (total !== undefined && !(total >= 0)) throw new ValidationError("--total", `must be an amount in USD >= 0, got "${opts.total}"`);
      const method = opts.method as "equal";
      const allocation = await via<Record<string, number>>(
        io,
        opts,
        async (bh) => {
          checkPeriod(opts.period, earliest((await bh.registry.listTenants()).map((t) => t.createdAt)));
          const result = await bh.costEngine.allocateFixedCosts(total, method, { period: opts.period });
          await bh.audit.record(ACTOR, "costs.allocate", null, { period: opts.period ?? null, total: total ?? null, method });
          return result;
        },
        async (api) => {
          checkPeriod(opts.period, earliest((await api.get<{ createdAt: string }[]>("/admin/tenants")).map((t) => t.createdAt)));
          return api.post<Record<string, number>>("/admin/costs/allocate", { period: opts.period, total, basis: method });
        },
      );
      const rows = Object.entries(allocation).map(([tenantId, usd]) => ({ tenantId, usd }));
      print(io, opts.json, allocation, () => table(rows, ["tenantId", "usd"]));
    });
  costs
    .command("plan")
    .description("Monthly cost of each isolation strategy at several tenant counts (the decision card)")
    .option("--tenants <list>", "tenant counts", "10,100,500,1000")
    .option("--json", "machine-readable output")
    .action((opts: { tenants: string; json?: boolean }) => {
      const counts = opts.tenants.split(",").map(Number);
      if (counts.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new ValidationError("--tenants", `must be whole numbers >= 1, got "${opts.tenants}"`);
      const config = loadConfig({ env: io.env });
      const plan = planStrategies(config.prices, config.maxNamespacesPerIndex, { tenantCounts: counts });
      print(io, opts.json, plan, () => table(plan as unknown as Record<string, unknown>[], ["tenants", "strategy", "infrastructureMonthly", "totalMonthly", "perTenantMonthly"]));
    });
}
