import { z } from "zod";
import { SERIES_WINDOWS, type SeriesWindow } from "../operations/tenant-overview.js";
import { QUOTA_MAXIMUM, QUOTA_MINIMUMS, TIERS } from "../config.js";
import { LIMITS } from "../costs/money.js";
import { ValidationError } from "../errors.js";
import { SCOPES } from "../tenancy/api-keys.js";

/** Request and response shapes of the HTTP API; the OpenAPI document is generated from these. */

const tenantId = z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/).describe("tenant id (slug)");
const metadata = z.record(z.string(), z.unknown());
const filter = z.record(z.string(), z.unknown()).describe("Pinecone-style metadata filter ($eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $and, $or)");
/** A tenant route may repeat the caller's tenant id; any other value is refused (403). */
const callerTenant = { tenantId: tenantId.optional().describe("optional; must be the key's own tenant") };

export const upsertBody = z.object({ documents: z.array(z.object({ id: z.string(), values: z.array(z.number()), metadata: metadata.optional() }).strict()), ...callerTenant }).strict();
export const queryBody = z.object({ vector: z.array(z.number()), topK: z.number().int().optional(), filter: filter.optional(), embedTokens: z.number().int().min(0).max(LIMITS.tokensPerCall).optional().describe(`embedding tokens this query used, metered to the tenant (0 to ${LIMITS.tokensPerCall})`), ...callerTenant }).strict();
export const idsBody = z.object({ ids: z.array(z.string()), ...callerTenant }).strict();
export const deleteBody = z
  .object({
    ids: z.array(z.string()).optional().describe("the documents to delete"),
    filter: filter.optional().describe("or: delete every document whose metadata matches (the query filter language; must name at least one condition)"),
    ...callerTenant,
  })
  .strict()
  .refine((b) => (b.ids === undefined) !== (b.filter === undefined), { message: "give either ids or filter (exactly one)", path: ["ids"] });
export const textDocumentsBody = z
  .object({
    documents: z.array(
      z.object({ id: z.string(), text: z.string(), format: z.enum(["text", "markdown", "html"]).optional().describe("how the text is written (default text): Markdown and HTML keep their sections and code blocks together"), metadata: metadata.optional() }).strict(),
    ),
    ...callerTenant,
  })
  .strict();
export const searchBody = z
  .object({
    query: z.string().describe('words as typed in a search box: "quoted phrases", OR, -excluded'),
    topK: z.number().int().optional(),
    filter: filter.optional(),
    weights: z.object({ fulltext: z.number().optional(), vector: z.number().optional() }).strict().optional().describe("each retriever's weight in the rank fusion (default 1 each; 0 leaves one out)"),
    ...callerTenant,
  })
  .strict();
export const answerBody = z
  .object({
    question: z.string(),
    topK: z.number().int().optional().describe("sources to retrieve (default 5)"),
    filter: filter.optional(),
    weights: z.object({ fulltext: z.number().optional(), vector: z.number().optional() }).strict().optional(),
    stream: z.boolean().optional().describe("answer as server-sent events: sources, then delta events, then done"),
    ...callerTenant,
  })
  .strict();
export const jobParams = z.object({ jobId: z.string().max(64) }).strict();
export const listQuery = z.object({ after: z.string().optional(), limit: z.coerce.number().int().optional() }).strict();
export const periodQuery = z.object({ period: z.string().regex(/^[0-9]{4}-[0-9]{2}$/).optional() }).strict();
/** Routes without query parameters refuse any (a misspelt one must not pass unnoticed). */
export const noQuery = z.object({}).strict();

const quota = z.object(Object.fromEntries(Object.entries(QUOTA_MINIMUMS).map(([k, min]) => [k, z.number().int().min(min).max(QUOTA_MAXIMUM).optional()]))).strict();
export const registerBody = z
  .object({
    tenantId,
    name: z.string().min(1).max(200),
    tier: z.enum(TIERS as [string, ...string[]]),
    quota: quota.optional(),
    dimension: z.number().int().optional(),
    store: z.string().min(1).max(100).optional().describe("store to place the tenant in: home (default), a configured cell or Pinecone (default: its tier's, BULKHEAD_TIER_STORES)"),
  })
  .strict();
export const tierBody = z.object({ tier: z.enum(TIERS as [string, ...string[]]) }).strict();
const batchSize = z.number().int().min(1).max(10_000).optional().describe("vectors per copy transaction (default 1,000)");
export const moveBody = z
  .object({
    tier: z.enum(TIERS as [string, ...string[]]).optional().describe("new tier: to or from enterprise moves to or from a dedicated index"),
    index: z.string().min(1).max(100).optional().describe("shared index to move to (see /admin/capacity)"),
    store: z.string().min(1).max(100).optional().describe("store to move to: home, a configured cell or Pinecone"),
    batchSize,
  })
  .strict()
  .refine((b) => b.tier !== undefined || b.index !== undefined || b.store !== undefined, { message: "give at least one of tier, index and store", path: ["tier"] });
export const resumeMoveBody = z.object({ batchSize }).strict();
export const writeLimitBody = z.object({ vectorsPerSecond: z.number().int().min(1).max(1_000_000).nullable().describe("vectors per second the tenant may write until its move switches (1 to 1,000,000); null lifts the limit") }).strict();
export const quotaBody = z.object({ quota }).strict();
export const listTenantsQuery = z.object({ tier: z.enum(TIERS as [string, ...string[]]).optional(), status: z.enum(["active", "suspended"]).optional() }).strict();
export const tenantParams = z.object({ tenantId }).strict();
export const keyParams = z.object({ keyId: z.string().regex(/^[a-f0-9]{16}$/) }).strict();
export const createTenantKeyBody = z.object({ scopes: z.array(z.enum(SCOPES as [string, ...string[]])).optional(), name: z.string().min(1).max(200).optional() }).strict();
export const createAdminKeyBody = z.object({ name: z.string().min(1).max(200).optional() }).strict();
export const allocateBody = z
  .object({
    period: z.string().regex(/^[0-9]{4}-[0-9]{2}$/).optional(),
    total: z.number().nonnegative().max(LIMITS.amountUsd).optional().describe(`the month's fixed cost in USD (0 to ${LIMITS.amountUsd}); default: derived from the indexes that exist`),
    basis: z
      .union([z.enum(["variable-cost", "queries", "storage", "equal"]), z.record(z.string(), z.number().nonnegative().max(LIMITS.weight))])
      .optional()
      .describe(`an allocation method, or relative weights per tenant (0 to ${LIMITS.weight})`),
  })
  .strict();
export const seriesQuery = z.object({ window: z.enum(Object.keys(SERIES_WINDOWS) as [SeriesWindow, ...SeriesWindow[]]).optional() }).strict();
export const auditQuery = z.object({ limit: z.coerce.number().int().min(1).max(10_000).optional() }).strict();
export const readinessQuery = z.object({ probe: z.string().regex(/^[a-z0-9-]+,[a-z0-9-]+$/).optional(), sample: tenantId.optional() }).strict();

export const problemSchema = z
  .object({ type: z.string(), title: z.string(), status: z.number().int(), detail: z.string(), code: z.string(), instance: z.string().optional() })
  .catchall(z.unknown())
  .describe("RFC 9457 problem details");

/** Parses `value` or throws a `ValidationError` naming the field, e.g. `documents[1].values[7]`. */
export function parse<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  // An unknown key is named itself (`tenant`), not its parent (`query`); bounded, it is the caller's text.
  const unknown = issue.code === "unrecognized_keys" ? String((issue as { keys?: string[] }).keys?.[0] ?? "").slice(0, 64) : "";
  const segments = unknown ? [...issue.path, unknown] : issue.path;
  const path = segments.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), "");
  throw new ValidationError(path || where, unknown ? "is not a known field" : issue.message);
}

/**
 * The data routes' bodies, by name: the ones that can be large, parsed and validated off the
 * event loop by the body workers (body-parser-pool.ts), which look a schema up by its name.
 */
export const OFFLOADED_BODIES = { upsertBody, queryBody, idsBody, deleteBody, textDocumentsBody, searchBody } as const;
export type OffloadedBody = keyof typeof OFFLOADED_BODIES;

/** The name a route's body schema has in `OFFLOADED_BODIES`, or undefined (parsed on the event loop). */
export function offloadedBodyName(schema: z.ZodType | undefined): OffloadedBody | undefined {
  return (Object.keys(OFFLOADED_BODIES) as OffloadedBody[]).find((name) => OFFLOADED_BODIES[name] === schema);
}
