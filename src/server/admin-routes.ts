import type { TenantQuota, TenantTier } from "../config.js";
import type { Tenant } from "../tenancy/tenant.js";
import type { Scope } from "../tenancy/api-keys.js";
import { route, type RouteContext, type RouteSpec } from "./route-spec.js";
import {
  allocateBody,
  auditQuery,
  createAdminKeyBody,
  createTenantKeyBody,
  keyParams,
  listTenantsQuery,
  moveBody,
  periodQuery,
  quotaBody,
  registerBody,
  resumeMoveBody,
  seriesQuery,
  tenantParams,
  tierBody,
  writeLimitBody,
} from "./schemas.js";

/** A tenant as the API shows it (the placement internals stay inside). */
const view = (t: Tenant) => ({
  tenantId: t.tenantId,
  tenantName: t.tenantName,
  tier: t.tier,
  status: t.status,
  quota: t.quota,
  quotaOverrides: t.quotaOverrides,
  store: t.store,
  index: t.index,
  namespace: t.namespace,
  isolation: t.isolation,
  /** A move of its vectors is in progress (see /admin/moves/{tenantId}). */
  moving: t.placement.moving,
  /** Vectors per second it may write until its move switches, if limited. */
  moveWriteLimit: t.moveWriteLimit,
  dimension: t.dimension,
  createdAt: t.createdAt,
  updatedAt: t.updatedAt,
});

/** Answers `body` with 202 Accepted: the move runs in the background; its progress is at the Location given. */
function accepted<T>(reply: RouteContext["reply"], tenantId: string, body: T): T {
  reply.status(202).header("location", `/admin/moves/${tenantId}`);
  return body;
}

/** A tenant change through the registry, written to the audit log with the admin key that made it. */
function audited<B, Q, P>(
  action: string,
  change: (ctx: RouteContext<B, Q, P>) => Promise<Tenant>,
  details: (ctx: RouteContext<B, Q, P>, t: Tenant) => Record<string, unknown> = () => ({}),
): (ctx: RouteContext<B, Q, P>) => Promise<ReturnType<typeof view>> {
  return async (ctx) => {
    const t = await change(ctx);
    await ctx.bh.audit.record(ctx.actor, action, t.tenantId, details(ctx, t));
    return view(t);
  };
}

/** The admin API: every change is written to the audit log with the admin key that made it. */
export const adminRoutes: RouteSpec[] = [
  route({
    method: "GET",
    url: "/admin/tenants",
    access: "admin",
    tag: "admin",
    summary: "List tenants",
    query: listTenantsQuery,
    handler: async ({ bh, query }) => (await bh.registry.listTenants({ tier: query.tier as TenantTier | undefined, status: query.status })).map(view),
  }),
  route({
    method: "POST",
    url: "/admin/tenants",
    access: "admin",
    tag: "admin",
    status: 201,
    summary: "Register a tenant (free and pro get a namespace, enterprise a dedicated index), at home or in the store given",
    body: registerBody,
    handler: audited(
      "tenant.register",
      ({ bh, body }) => bh.registry.registerTenant(body.tenantId, body.name, body.tier as TenantTier, { quota: body.quota as Partial<TenantQuota>, dimension: body.dimension, store: body.store }),
      (_, t) => ({ tier: t.tier, store: t.store }),
    ),
  }),
  route({
    method: "GET",
    url: "/admin/tenants/:tenantId",
    access: "admin",
    tag: "admin",
    summary: "Show a tenant",
    params: tenantParams,
    handler: async ({ bh, params }) => view(await bh.registry.getTenant(params.tenantId)),
  }),
  route({
    method: "DELETE",
    url: "/admin/tenants/:tenantId",
    access: "admin",
    tag: "admin",
    summary: "Erase a tenant (vectors, namespace, keys, counters) and prove no row of it is left; billing records are kept",
    params: tenantParams,
    handler: ({ bh, params, actor }) => bh.eraseTenant(params.tenantId, actor),
  }),
  route({
    method: "POST",
    url: "/admin/tenants/:tenantId/tier",
    access: "admin",
    tag: "admin",
    summary:
      "Change a tenant's tier. Between free and pro only its quota changes (200). To or from enterprise its vectors move online to or from a dedicated index: the move begins, the call answers 202 with the tenant still on its old tier (moving: true) and the move's progress at Location; the tenant keeps working throughout",
    params: tenantParams,
    body: tierBody,
    handler: audited(
      "tenant.tier",
      async ({ bh, params, body, actor, reply }) => {
        const tier = body.tier as TenantTier;
        if (!bh.registry.tierChangeMoves(await bh.registry.getTenant(params.tenantId), tier)) return bh.registry.changeTier(params.tenantId, tier);
        await bh.moves.start(params.tenantId, { tier }, actor);
        return accepted(reply, params.tenantId, await bh.registry.getTenant(params.tenantId));
      },
      ({ body }) => ({ tier: body.tier }),
    ),
  }),
  route({
    method: "POST",
    url: "/admin/tenants/:tenantId/move",
    access: "admin",
    tag: "admin",
    status: 202,
    summary:
      "Move a tenant's vectors online: to or from a dedicated index (tier), to another shared index (index) or to another store (store). The move begins (refused at once if the target is wrong or the tenant is already moving) and runs in the background; the tenant keeps reading and writing; progress at Location",
    params: tenantParams,
    body: moveBody,
    handler: async ({ bh, params, body, actor, reply }) => {
      const target = { tier: body.tier as TenantTier | undefined, index: body.index, store: body.store };
      return accepted(reply, params.tenantId, await bh.moves.start(params.tenantId, target, actor, body.batchSize));
    },
  }),
  route({
    method: "GET",
    url: "/admin/moves",
    access: "admin",
    tag: "admin",
    summary: "Tenant moves in progress: phase, vectors copied, write limit, whether this instance is running it and why its last run here failed (an interrupted move stays listed until resumed or rolled back)",
    handler: ({ bh }) => bh.moves.list(),
  }),
  route({
    method: "GET",
    url: "/admin/moves/:tenantId",
    access: "admin",
    tag: "admin",
    summary: "A tenant's move in progress (404 when there is none: it has switched, was rolled back, or never began)",
    params: tenantParams,
    handler: ({ bh, params }) => bh.moves.status(params.tenantId),
  }),
  route({
    method: "POST",
    url: "/admin/moves/:tenantId/resume",
    access: "admin",
    tag: "admin",
    status: 202,
    summary: "Continue an interrupted move from its last checkpoint, in the background",
    params: tenantParams,
    body: resumeMoveBody,
    handler: async ({ bh, params, body, actor, reply }) => accepted(reply, params.tenantId, await bh.moves.resume(params.tenantId, actor, body.batchSize)),
  }),
  route({
    method: "POST",
    url: "/admin/moves/:tenantId/rollback",
    access: "admin",
    tag: "admin",
    summary: "Stop a move (if this instance runs it) and discard its copy: the tenant stays where it is",
    params: tenantParams,
    handler: async ({ bh, params, actor }) => view(await bh.moves.rollback(params.tenantId, actor)),
  }),
  route({
    method: "PUT",
    url: "/admin/moves/:tenantId/write-limit",
    access: "admin",
    tag: "admin",
    summary: "Hold a moving tenant's writes to this many vectors per second until its move switches (null lifts the limit); writes over it get 429",
    params: tenantParams,
    body: writeLimitBody,
    handler: audited(
      "tenant.move.limit-writes",
      ({ bh, params, body }) => bh.registry.limitMoveWrites(params.tenantId, body.vectorsPerSecond),
      ({ body }) => ({ vectorsPerSecond: body.vectorsPerSecond }),
    ),
  }),
  route({
    method: "POST",
    url: "/admin/tenants/:tenantId/suspend",
    access: "admin",
    tag: "admin",
    summary: "Suspend a tenant: its keys stop reaching data at once",
    params: tenantParams,
    handler: audited("tenant.suspend", ({ bh, params }) => bh.registry.suspendTenant(params.tenantId)),
  }),
  route({
    method: "POST",
    url: "/admin/tenants/:tenantId/resume",
    access: "admin",
    tag: "admin",
    summary: "Resume a suspended tenant",
    params: tenantParams,
    handler: audited("tenant.resume", ({ bh, params }) => bh.registry.resumeTenant(params.tenantId)),
  }),
  route({
    method: "PUT",
    url: "/admin/tenants/:tenantId/quota",
    access: "admin",
    tag: "admin",
    summary: "Replace a tenant's quota overrides ({} returns it to its tier's defaults)",
    params: tenantParams,
    body: quotaBody,
    handler: audited("tenant.quota", ({ bh, params, body }) => bh.registry.setQuota(params.tenantId, body.quota as Partial<TenantQuota>), ({ body }) => ({ quota: body.quota })),
  }),
  route({
    method: "GET",
    url: "/admin/tenants/:tenantId/series",
    access: "admin",
    tag: "admin",
    summary:
      "A tenant's history (window 1h, 6h, 24h or 7d; default 1h) in steps of 1, 5, 15 or 60 minutes: operations by outcome, error rate, latency p50/p95 (estimated from a histogram), tokens and metered cost. Kept for BULKHEAD_SERIES_RETENTION_HOURS",
    params: tenantParams,
    query: seriesQuery,
    handler: ({ bh, params, query }) => bh.overview.series(params.tenantId, query.window),
  }),
  route({
    method: "GET",
    url: "/admin/tenants/:tenantId/keys",
    access: "admin",
    tag: "admin",
    summary: "A tenant's keys (never their secrets)",
    params: tenantParams,
    handler: async ({ bh, params }) => {
      await bh.registry.getTenant(params.tenantId);
      return bh.keys.listKeys({ tenantId: params.tenantId });
    },
  }),
  route({
    method: "POST",
    url: "/admin/tenants/:tenantId/keys",
    access: "admin",
    tag: "admin",
    status: 201,
    summary: "Create a tenant key (shown once)",
    params: tenantParams,
    body: createTenantKeyBody,
    handler: ({ bh, params, body, actor }) => bh.keys.createKey("tenant", { tenantId: params.tenantId, scopes: body.scopes as Scope[] | undefined, name: body.name }, actor),
  }),
  route({
    method: "GET",
    url: "/admin/keys",
    access: "admin",
    tag: "admin",
    summary: "All keys (never their secrets)",
    handler: ({ bh }) => bh.keys.listKeys(),
  }),
  route({
    method: "POST",
    url: "/admin/keys",
    access: "admin",
    tag: "admin",
    status: 201,
    summary: "Create an admin key (shown once)",
    body: createAdminKeyBody,
    handler: ({ bh, body, actor }) => bh.keys.createKey("admin", { name: body.name, scopes: ["read", "write"] }, actor),
  }),
  route({
    method: "POST",
    url: "/admin/keys/:keyId/rotate",
    access: "admin",
    tag: "admin",
    status: 201,
    summary: "Replace a key with a new one (the old one stops working at once)",
    params: keyParams,
    handler: ({ bh, params, actor }) => bh.keys.rotateKey(params.keyId, actor),
  }),
  route({
    method: "DELETE",
    url: "/admin/keys/:keyId",
    access: "admin",
    tag: "admin",
    summary: "Revoke a key (at once, in every instance)",
    params: keyParams,
    handler: ({ bh, params, actor }) => bh.keys.revokeKey(params.keyId, actor),
  }),
  route({
    method: "GET",
    url: "/admin/capacity",
    access: "admin",
    tag: "admin",
    summary: "Namespaces used per shared index, thresholds and status",
    handler: ({ bh }) => bh.registry.getCapacity(),
  }),
  route({
    method: "POST",
    url: "/admin/costs/allocate",
    access: "admin",
    tag: "admin",
    summary: "Allocate a month's fixed costs (explicit basis or a method)",
    body: allocateBody,
    handler: async ({ bh, body, actor }) => {
      const allocation = await bh.costEngine.allocateFixedCosts(body.total, body.basis, { period: body.period });
      await bh.audit.record(actor, "costs.allocate", null, { period: body.period ?? null, total: body.total ?? null, basis: body.basis ?? "variable-cost" });
      return allocation;
    },
  }),
  route({
    method: "GET",
    url: "/admin/costs/report",
    access: "admin",
    tag: "admin",
    summary: "Monthly report: revenue, costs and margin per tenant and tier",
    query: periodQuery,
    handler: ({ bh, query }) => bh.costEngine.monthlyReport(query.period),
  }),
  route({
    method: "GET",
    url: "/admin/audit",
    access: "admin",
    tag: "admin",
    summary: "The audit log, newest first",
    query: auditQuery,
    handler: ({ bh, query }) => bh.audit.list(query.limit),
  }),
];
