import type { BulkheadConfig, PriceBook, TenantTier } from "../config.js";
import { TIERS } from "../config.js";
import type { Db } from "../db/db.js";
import { shown, ValidationError } from "../errors.js";
import type { VectorStore } from "../stores/store.js";
import type { TenantRegistry } from "../tenancy/registry.js";
import type { Tenant } from "../tenancy/tenant.js";
import { costSql as sql } from "./cost-sql.js";
import { centsToUsd, largestRemainder, LIMITS, PICO_PER_CENT, picoToUsd, usdToCents, usdToPico, weightToUnits } from "./money.js";
import { countTokens, type Encoding } from "./token-counter.js";
import { periodOf, type UsageEvent, type UsageKind, type UsageLedger } from "./usage-ledger.js";
import { isProbeTenant } from "../tenancy/probe-tenants.js"; // readiness probe tenants are never billed or reported

/** What one RAG query used. Counts, or text to count with a real tokenizer. */
export interface QueryUsage {
  embedTokens?: number;
  /** LLM tokens priced at the default LLM rate. */
  llmTokens?: number;
  /** A model from `prices.llmModels`, priced with its own input and output rates. */
  model?: string;
  inputTokens?: number;
  outputTokens?: number;
  /** Text that was embedded; its tokens are counted and added to `embedTokens`. */
  embedText?: string;
  /** Prompt and completion text; counted and added to input/output (or LLM) tokens. */
  promptText?: string;
  completionText?: string;
  /** Vector queries this request made (default 1). Pass 0 when `TenantDataManager` already metered it. */
  vectorQueries?: number;
  /** Tokenizer for text (default o200k_base). */
  encoding?: Encoding;
}

export type AllocationMethod = "variable-cost" | "queries" | "storage" | "equal";
export type AllocationBasis = Record<string, number> | AllocationMethod;

export type CostCategory = "embedding" | "llm" | "vectorQueries" | "vectorIndexes" | "postgres" | "loadBalancerMonitoring";
export const COST_CATEGORIES: readonly CostCategory[] = ["embedding", "llm", "vectorQueries", "vectorIndexes", "postgres", "loadBalancerMonitoring"];
const FIXED_CATEGORIES = ["vectorIndexes", "postgres", "loadBalancerMonitoring"] as const;
type FixedCategory = (typeof FIXED_CATEGORIES)[number];

/** The month's fixed costs, derived from the indexes that exist and the price book. */
export interface FixedCosts {
  total: number;
  categories: Record<FixedCategory, number>;
  indexes: { shared: number; dedicated: number };
  /** Each dedicated index's base cost, owed by its tenant alone. */
  dedicated: Record<string, number>;
}

export interface TenantCostSummary {
  tenantId: string;
  period: string;
  variableCost: number;
  fixedCost: number;
  totalCost: number;
  queryCount: number;
  breakdown: { embedding: number; llm: number; vectorQueries: number };
  usage: { embedTokens: number; llmTokens: number; vectorQueries: number; vectorsWritten: number };
}

export interface TenantMargin {
  tenantId: string;
  tier: TenantTier;
  revenue: number;
  variableCost: number;
  fixedCost: number;
  totalCost: number;
  margin: number;
  /** margin / revenue; null when the plan is free. */
  marginRatio: number | null;
  unprofitable: boolean;
}

export interface MonthlyReport {
  period: string;
  allocationMethod: string | null;
  tenants: TenantMargin[];
  tiers: Record<TenantTier, { tenants: number; revenue: number; totalCost: number; margin: number; marginRatio: number | null }>;
  totals: { revenue: number; totalCost: number; margin: number };
  unprofitable: string[];
}

export interface ReconciliationLine {
  category: CostCategory;
  allocated: number;
  actual: number;
  /** (allocated − actual) / actual; null when actual is 0. */
  deviation: number | null;
  flagged: boolean;
}

export interface Reconciliation {
  period: string;
  tolerance: number;
  lines: ReconciliationLine[];
  overall: Omit<ReconciliationLine, "category">;
  withinTolerance: boolean;
}

const round2 = (x: number) => Math.round(x * 100) / 100;
const currentPeriod = () => periodOf(new Date());

/** A month that can have a bill: YYYY-MM, from 1970 to this month (a future month has no usage and no allocation yet). */
function assertPeriod(period: string): string {
  if (typeof period !== "string" || !/^\d{4}-(0[1-9]|1[0-2])$/.test(period)) throw new ValidationError("period", `must be a month as YYYY-MM, got ${shown(period)}`);
  const now = currentPeriod();
  if (period > now) throw new ValidationError("period", `${period} is in the future (this month is ${now})`);
  if (period < "1970-01") throw new ValidationError("period", `${period} is before any usage could be recorded`);
  return period;
}

/** A metered count: a whole number from 0 to `max` (documented bounds, so no cost can overflow the ledger). */
function assertCount(value: unknown, field: string, max: number = LIMITS.tokensPerCall): number {
  if (value === undefined) return 0;
  if (!Number.isSafeInteger(value) || (value as number) < 0 || (value as number) > max) {
    throw new ValidationError(field, `must be a whole number from 0 to ${max}, got ${typeof value === "number" ? String(value) : typeof value}`);
  }
  return value as number;
}

type CostConfig = Pick<BulkheadConfig, "prices" | "planPrices" | "reconciliationTolerance" | "cells">;

/** What `TenantDataManager` reports as it works, so its operations are metered without the caller doing anything. */
export interface UsageMeter {
  meterVectorQuery(tenantId: string, embedTokens?: number, readUnits?: number): void;
  meterVectorWrite(tenantId: string, count: number): void;
  /** Embedding tokens a provider reported (or, `estimated`, that were counted here) for the tenant's text. */
  meterEmbedding(tenantId: string, tokens: number, model: string, estimated: boolean): void;
  /** An answer's input and output tokens, as the chat provider reported them (or counted here: `estimated`). */
  meterCompletion(tenantId: string, model: string, inputTokens: number, outputTokens: number, estimated: boolean): void;
  /** LLM tokens the tenant's answers used today (UTC), metered so far. */
  llmTokensToday(tenantId: string): Promise<number>;
}

/**
 * Cost isolation: what each tenant costs. Usage is metered into a durable, RLS-protected ledger
 * (in batches), fixed costs are derived from the indexes that exist and allocated per month, and
 * reports turn both into margins against each tier's plan price.
 */
export class CostAllocationEngine implements UsageMeter {
  private readonly pico: { embedding: bigint; llm: bigint; vectorQuery: bigint; storeReadUnit: bigint; models: Map<string, { input: bigint; output: bigint }> };

  constructor(
    private readonly db: Db,
    private readonly registry: TenantRegistry,
    private readonly store: Pick<VectorStore, "count">,
    private readonly ledger: UsageLedger,
    private readonly config: CostConfig,
  ) {
    const p = config.prices;
    // Per-token prices: USD per 1K tokens / 1000, in pico-dollars.
    const perToken = (per1K: number, what: string) => usdToPico(per1K / 1000, what);
    this.pico = {
      embedding: perToken(p.embeddingPer1KTokens, "prices.embeddingPer1KTokens"),
      llm: perToken(p.llmPer1KTokens, "prices.llmPer1KTokens"),
      vectorQuery: usdToPico(p.vectorQuery, "prices.vectorQuery"),
      storeReadUnit: usdToPico(p.storeReadUnit, "prices.storeReadUnit"),
      models: new Map(Object.entries(p.llmModels).map(([m, mp]) => [m, { input: perToken(mp.inputPer1KTokens, `prices.llmModels.${m}`), output: perToken(mp.outputPer1KTokens, `prices.llmModels.${m}`) }])),
    };
  }

  /** The price book in force. */
  get prices(): Readonly<PriceBook> {
    return this.config.prices;
  }

  /**
   * Meters one RAG query and returns its cost in USD. The reference's example, 500 embedding and
   * 1,000 LLM tokens plus its vector query, costs $0.00206.
   *
   * @example
   * await costEngine.trackQueryCost("tenant-001", { embedTokens: 500, llmTokens: 1000 }); // 0.00206
   */
  async trackQueryCost(tenantId: string, usage: QueryUsage = {}): Promise<number> {
    const tenant = await this.registry.resolveActive(tenantId);
    if (typeof usage !== "object" || usage === null) throw new ValidationError("usage", "must be an object");
    const enc = usage.encoding ?? "o200k_base";
    const text = async (t: unknown, field: string) => {
      if (t === undefined) return 0;
      if (typeof t !== "string") throw new ValidationError(`usage.${field}`, "must be a string");
      return countTokens(t, enc);
    };
    const embedTokens = assertCount(assertCount(usage.embedTokens, "usage.embedTokens") + (await text(usage.embedText, "embedText")), "usage.embedTokens");
    const vectorQueries = usage.vectorQueries === undefined ? 1 : assertCount(usage.vectorQueries, "usage.vectorQueries", LIMITS.vectorQueriesPerCall);
    const events: Omit<UsageEvent, "tenantId" | "occurredAt">[] = [];
    if (embedTokens > 0) events.push({ kind: "embedding", quantity: embedTokens, costPico: BigInt(embedTokens) * this.pico.embedding });
    const prompt = await text(usage.promptText, "promptText");
    const completion = await text(usage.completionText, "completionText");
    if (usage.model !== undefined) {
      const rates = this.pico.models.get(usage.model);
      if (!rates) throw new ValidationError("usage.model", `unknown model ${JSON.stringify(usage.model)}; priced models: ${[...this.pico.models.keys()].join(", ") || "none (set prices.llmModels)"}`);
      const input = assertCount(assertCount(usage.inputTokens, "usage.inputTokens") + prompt, "usage.inputTokens");
      const output = assertCount(assertCount(usage.outputTokens, "usage.outputTokens") + completion, "usage.outputTokens");
      if (input > 0) events.push({ kind: "llm", model: usage.model, quantity: input, costPico: BigInt(input) * rates.input });
      if (output > 0) events.push({ kind: "llm", model: usage.model, quantity: output, costPico: BigInt(output) * rates.output });
    } else {
      if (usage.inputTokens !== undefined || usage.outputTokens !== undefined) throw new ValidationError("usage.model", "inputTokens/outputTokens need a model from prices.llmModels; use llmTokens for the default rate");
      const llm = assertCount(assertCount(usage.llmTokens, "usage.llmTokens") + prompt + completion, "usage.llmTokens");
      if (llm > 0) events.push({ kind: "llm", quantity: llm, costPico: BigInt(llm) * this.pico.llm });
    }
    if (vectorQueries > 0) events.push({ kind: "vector_query", quantity: vectorQueries, costPico: BigInt(vectorQueries) * this.pico.vectorQuery });
    const now = new Date();
    this.ledger.record(events.map((e) => ({ ...e, tenantId: tenant.tenantId, occurredAt: now })));
    return picoToUsd(events.reduce((sum, e) => sum + e.costPico, 0n));
  }

  /**
   * Meter hook for `TenantDataManager`: one vector query (plus embedding tokens when known), priced
   * by the read units its store reported (Pinecone) or else at the flat query price. A store's
   * figure is trusted only as a whole number within `LIMITS.vectorQueriesPerCall`; anything else is
   * priced flat, so no answer from a store can break a bill.
   */
  meterVectorQuery(tenantId: string, embedTokens = 0, readUnits?: number): void {
    const now = new Date();
    const units = readUnits !== undefined && Number.isSafeInteger(readUnits) && readUnits >= 0 && readUnits <= LIMITS.vectorQueriesPerCall ? readUnits : undefined;
    const costPico = units === undefined ? this.pico.vectorQuery : BigInt(units) * this.pico.storeReadUnit;
    const events: UsageEvent[] = [{ tenantId, kind: "vector_query", quantity: 1, costPico, occurredAt: now }];
    if (embedTokens > 0) events.push({ tenantId, kind: "embedding", quantity: embedTokens, costPico: BigInt(embedTokens) * this.pico.embedding, occurredAt: now });
    this.ledger.record(events);
  }

  /** Meter hook for the text path: embedding tokens at the embedding price, as the provider reported them. */
  meterEmbedding(tenantId: string, tokens: number, model: string, estimated: boolean): void {
    if (!Number.isSafeInteger(tokens) || tokens <= 0) return;
    this.ledger.record([{ tenantId, kind: "embedding", model, estimated, quantity: tokens, costPico: BigInt(tokens) * this.pico.embedding, occurredAt: new Date() }]);
  }

  /**
   * Meter hook for answers: input and output tokens at the model's prices from the price book
   * (`prices.llmModels`), or at the flat LLM price for a model not listed there.
   */
  meterCompletion(tenantId: string, model: string, inputTokens: number, outputTokens: number, estimated: boolean): void {
    const rates = this.pico.models.get(model) ?? { input: this.pico.llm, output: this.pico.llm };
    const now = new Date();
    const events: UsageEvent[] = [];
    for (const [tokens, rate] of [[inputTokens, rates.input], [outputTokens, rates.output]] as const) {
      if (Number.isSafeInteger(tokens) && tokens > 0) events.push({ tenantId, kind: "llm", model, estimated, quantity: tokens, costPico: BigInt(tokens) * rate, occurredAt: now });
    }
    this.ledger.record(events);
  }

  async llmTokensToday(tenantId: string): Promise<number> {
    await this.ledger.flush();
    const day = new Date(new Date().toISOString().slice(0, 10) + "T00:00:00Z");
    const [row] = await this.db.queryAsTenant<{ n: string }>(tenantId, sql.llmTokensSince, [tenantId, day.toISOString()]);
    return Number(row?.n ?? 0);
  }

  /** Meter hook for `TenantDataManager`: vectors written (no price of their own; history for storage). */
  meterVectorWrite(tenantId: string, count: number): void {
    this.ledger.record([{ tenantId, kind: "vector_write", quantity: count, costPico: 0n, occurredAt: new Date() }]);
  }

  /** Writes buffered usage now. */
  flush(): Promise<void> {
    return this.ledger.flush();
  }

  /** This month's fixed costs, from the indexes that actually exist. */
  async getFixedCosts(): Promise<FixedCosts> {
    const rows = await this.db.query<{ name: string; kind: string; owner: string | null }>(sql.indexes);
    const p = this.config.prices;
    const dedicated: Record<string, number> = {};
    // A tenant moving between two dedicated indexes owes both while the move lasts.
    for (const r of rows) if (r.kind === "dedicated" && r.owner) dedicated[r.owner] = (dedicated[r.owner] ?? 0) + p.vectorIndexMonthly;
    // A pool is shared like a shared index: its cost is allocated across tenants, not to an owner.
    const shared = rows.filter((r) => r.kind !== "dedicated").length;
    // Each cell is one more PostgreSQL database to pay for.
    const databases = 1 + Object.keys(this.config.cells).length;
    const categories = { vectorIndexes: rows.length * p.vectorIndexMonthly, postgres: databases * p.postgresMonthly, loadBalancerMonitoring: p.loadBalancerMonitoringMonthly };
    return {
      total: round2(categories.vectorIndexes + categories.postgres + categories.loadBalancerMonitoring),
      categories,
      indexes: { shared, dedicated: rows.length - shared },
      dedicated,
    };
  }

  /**
   * Splits a month's fixed cost across tenants and stores it for the period (re-running replaces
   * the period's allocation). Shares are whole cents and add up to the total exactly.
   *
   * - `allocateFixedCosts(115, { "tenant-001": 30, "tenant-002": 70 })` → 34.50 and 80.50 (the reference).
   * - `allocateFixedCosts(undefined, "variable-cost")` derives the total from the indexes that exist;
   *   each dedicated index's base cost goes to its owner, and the shared rest is split by the method.
   * Methods: `variable-cost` (default), `queries`, `storage` (vectors stored now), `equal`.
   */
  async allocateFixedCosts(monthlyFixedCost?: number, basis: AllocationBasis = "variable-cost", options: { period?: string } = {}): Promise<Record<string, number>> {
    const period = assertPeriod(options.period ?? currentPeriod());
    const fixed = monthlyFixedCost === undefined ? await this.getFixedCosts() : undefined;
    const totalCents = fixed ? usdToCents(fixed.total, "fixed cost") : this.cents(monthlyFixedCost!, "monthlyFixedCost");
    const tenants = await this.billableTenants(period);
    const known = new Set(tenants.map((t) => t.tenantId));

    const weights = new Map<string, bigint>();
    let method: string;
    if (typeof basis === "object" && basis !== null) {
      method = "explicit";
      for (const [tenantId, w] of Object.entries(basis)) {
        if (!known.has(tenantId)) throw new ValidationError(`basis.${tenantId}`, "is not a registered tenant");
        if (typeof w !== "number") throw new ValidationError(`basis.${tenantId}`, `must be a number from 0 to ${LIMITS.weight}`);
        try {
          weights.set(tenantId, weightToUnits(w));
        } catch (err) {
          throw new ValidationError(`basis.${tenantId}`, (err as Error).message);
        }
      }
      if (weights.size === 0) throw new ValidationError("basis", "names no tenant");
    } else {
      method = basis;
      await this.ledger.flush();
      const each = await forEachTenant(tenants, (t) => this.weightOf(t, basis, period));
      tenants.forEach((t, i) => weights.set(t.tenantId, each[i]!));
    }
    if ([...weights.values()].every((w) => w === 0n)) {
      throw new ValidationError("basis", `every tenant's ${method} weight for ${period} is zero; allocate "equal" or pass an explicit basis`);
    }

    // Dedicated index base costs go to their owners first (only when the total is derived, so known).
    const dedicatedCents = new Map<string, bigint>();
    if (fixed) for (const [owner, usd] of Object.entries(fixed.dedicated)) if (weights.has(owner)) dedicatedCents.set(owner, usdToCents(usd, "dedicated index"));
    const sharedCents = totalCents - [...dedicatedCents.values()].reduce((a, b) => a + b, 0n);
    const shares = largestRemainder(sharedCents, weights);

    const breakdown = fixed ? { categories: fixed.categories, dedicated: fixed.dedicated } : { categories: null, dedicated: {} };
    await this.db.transaction(async (tx) => {
      const [run] = await tx.query<{ id: number }>(sql.insertRun, [period, method, totalCents.toString(), JSON.stringify(breakdown)]);
      // Each row in its tenant's context, entered in the server (migration 19), a slice at a time.
      const rows = [...shares].map(([tenantId, cents]) => {
        const own = dedicatedCents.get(tenantId) ?? 0n;
        return { tenant_id: tenantId, cents: (cents + own).toString(), dedicated_cents: own.toString() };
      });
      for (let i = 0; i < rows.length; i += ALLOCATIONS_PER_STATEMENT) {
        await tx.query(sql.insertAllocations, [run!.id, JSON.stringify(rows.slice(i, i + ALLOCATIONS_PER_STATEMENT))]);
      }
    });
    return Object.fromEntries([...shares].map(([t, c]) => [t, centsToUsd(c + (dedicatedCents.get(t) ?? 0n))]));
  }

  /** The allocation that counts for a month (its latest run), or null if the month has none. */
  async getAllocation(period: string = currentPeriod()): Promise<{ method: string; total: number } | null> {
    assertPeriod(period);
    const [run] = await this.db.query<{ method: string; total_cents: string }>(sql.latestRun, [period]);
    return run ? { method: run.method, total: centsToUsd(BigInt(run.total_cents)) } : null;
  }

  /** What a tenant cost in a month (default: this month): metered variable cost plus its allocated fixed share. */
  async getTenantCostSummary(tenantId: string, period: string = currentPeriod()): Promise<TenantCostSummary> {
    assertPeriod(period);
    const tenant = await this.registry.getTenant(tenantId);
    await this.ledger.flush();
    return this.summaryOf(tenant.tenantId, period);
  }

  /** A tenant's cost summary as the ledger holds it (flushed by the caller): usage and allocation in one round trip. */
  private async summaryOf(tenantId: string, period: string): Promise<TenantCostSummary> {
    const [rows, [alloc]] = (await this.db.pipelineAsTenant(tenantId, [
      { text: sql.usageByKind, params: [tenantId, period] },
      { text: sql.allocationOf, params: [tenantId, period] },
    ])) as [UsageRow[], { cents: string }[]];
    const usage = usageFrom(rows);
    const variablePico = usage.embedding.cost + usage.llm.cost + usage.vector_query.cost;
    const variableCost = picoToUsd(variablePico);
    const fixedCost = alloc ? centsToUsd(BigInt(alloc.cents)) : 0;
    return {
      tenantId,
      period,
      variableCost,
      fixedCost,
      totalCost: picoToUsd(variablePico + (alloc ? BigInt(alloc.cents) * PICO_PER_CENT : 0n)),
      queryCount: Number(usage.vector_query.quantity),
      breakdown: { embedding: picoToUsd(usage.embedding.cost), llm: picoToUsd(usage.llm.cost), vectorQueries: picoToUsd(usage.vector_query.cost) },
      usage: {
        embedTokens: Number(usage.embedding.quantity),
        llmTokens: Number(usage.llm.quantity),
        vectorQueries: Number(usage.vector_query.quantity),
        vectorsWritten: Number(usage.vector_write.quantity),
      },
    };
  }

  /** Revenue, cost and margin per tenant and per tier for a month; unprofitable tenants flagged. */
  async monthlyReport(period: string = currentPeriod()): Promise<MonthlyReport> {
    assertPeriod(period);
    const run = await this.getAllocation(period);
    const billable = await this.billableTenants(period);
    await this.ledger.flush();
    const summaries = await forEachTenant(billable, (t) => this.summaryOf(t.tenantId, period));
    const tenants: TenantMargin[] = billable.map((t, i) => {
      const s = summaries[i]!;
      const revenue = this.config.planPrices[t.tier];
      const margin = revenue - s.totalCost;
      return {
        tenantId: t.tenantId,
        tier: t.tier,
        revenue,
        variableCost: s.variableCost,
        fixedCost: s.fixedCost,
        totalCost: s.totalCost,
        margin,
        marginRatio: revenue > 0 ? margin / revenue : null,
        unprofitable: margin < 0,
      };
    });
    const tiers = {} as MonthlyReport["tiers"];
    for (const tier of TIERS) {
      const of = tenants.filter((t) => t.tier === tier);
      const revenue = of.reduce((a, t) => a + t.revenue, 0);
      const totalCost = of.reduce((a, t) => a + t.totalCost, 0);
      tiers[tier] = { tenants: of.length, revenue, totalCost, margin: revenue - totalCost, marginRatio: revenue > 0 ? (revenue - totalCost) / revenue : null };
    }
    const revenue = tenants.reduce((a, t) => a + t.revenue, 0);
    const totalCost = tenants.reduce((a, t) => a + t.totalCost, 0);
    return {
      period,
      allocationMethod: run?.method ?? null,
      tenants,
      tiers,
      totals: { revenue, totalCost, margin: revenue - totalCost },
      unprofitable: tenants.filter((t) => t.unprofitable).map((t) => t.tenantId),
    };
  }

  /**
   * Compares what Bulkhead allocated for a month with the actual invoice, per category and overall;
   * flags deviations beyond the tolerance (±5 % by default, the reference's readiness item).
   */
  async reconcile(period: string, actual: Partial<Record<CostCategory, number>>): Promise<Reconciliation> {
    assertPeriod(period);
    if (typeof actual !== "object" || actual === null) throw new ValidationError("actual", "must be an object of USD amounts per category");
    for (const [key, value] of Object.entries(actual)) {
      if (!COST_CATEGORIES.includes(key as CostCategory)) throw new ValidationError(`actual.${key}`, `unknown category (known: ${COST_CATEGORIES.join(", ")})`);
      if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > LIMITS.amountUsd) throw new ValidationError(`actual.${key}`, `must be an amount in USD from 0 to ${LIMITS.amountUsd}`);
    }
    const variable = { embedding: 0n, llm: 0n, vectorQueries: 0n };
    const billable = await this.billableTenants(period);
    await this.ledger.flush();
    for (const u of await forEachTenant(billable, (t) => this.usageOf(t.tenantId, period))) {
      variable.embedding += u.embedding.cost;
      variable.llm += u.llm.cost;
      variable.vectorQueries += u.vector_query.cost;
    }
    const [run] = await this.db.query<{ breakdown: { categories: Record<FixedCategory, number> | null } }>(sql.latestRun, [period]);
    const fixedCategories = run?.breakdown.categories ?? (await this.getFixedCosts()).categories;
    const allocated: Record<CostCategory, number> = {
      embedding: picoToUsd(variable.embedding),
      llm: picoToUsd(variable.llm),
      vectorQueries: picoToUsd(variable.vectorQueries),
      ...fixedCategories,
    };
    const tolerance = this.config.reconciliationTolerance;
    const line = (allocatedUsd: number, actualUsd: number) => {
      const deviation = actualUsd === 0 ? (allocatedUsd === 0 ? 0 : null) : (allocatedUsd - actualUsd) / actualUsd;
      return { allocated: allocatedUsd, actual: actualUsd, deviation, flagged: deviation === null || Math.abs(deviation) > tolerance };
    };
    const lines = (Object.keys(actual) as CostCategory[]).map((category) => ({ category, ...line(allocated[category], actual[category]!) }));
    const overall = line(
      lines.reduce((a, l) => a + l.allocated, 0),
      lines.reduce((a, l) => a + l.actual, 0),
    );
    return { period, tolerance, lines, overall, withinTolerance: !overall.flagged && lines.every((l) => !l.flagged) };
  }

  /**
   * The tenants a month's bill is about: registered before the month ended (a report for a month
   * before the deployment bills nobody, not today's tenants), never readiness probe tenants.
   */
  private async billableTenants(period: string): Promise<Tenant[]> {
    const [year, month] = period.split("-").map(Number) as [number, number];
    const monthEnds = Date.UTC(year, month, 1); // month is 1-based: this is the first instant of the next month
    return (await this.registry.listTenants()).filter((t) => !isProbeTenant(t.tenantId) && t.createdAt.getTime() < monthEnds);
  }

  private cents(usd: number, field: string): bigint {
    try {
      return usdToCents(usd, field);
    } catch (err) {
      throw new ValidationError(field, (err as Error).message);
    }
  }

  private async weightOf(tenant: Tenant, method: AllocationMethod, period: string): Promise<bigint> {
    switch (method) {
      case "equal":
        return 1n;
      case "storage":
        return BigInt(await this.registry.withPlacement(tenant, ({ placement }) => this.store.count(placement)));
      case "queries":
        return (await this.usageOf(tenant.tenantId, period)).vector_query.quantity;
      case "variable-cost": {
        const u = await this.usageOf(tenant.tenantId, period);
        return u.embedding.cost + u.llm.cost + u.vector_query.cost;
      }
      default:
        throw new ValidationError("basis", `unknown allocation method ${JSON.stringify(method)} (variable-cost, queries, storage, equal, or an object of weights)`);
    }
  }

  /** Metered usage of one tenant in a period, read under its own context (the caller flushed the ledger). */
  private async usageOf(tenantId: string, period: string): Promise<Record<UsageKind, { quantity: bigint; cost: bigint }>> {
    return usageFrom(await this.db.queryAsTenant<UsageRow>(tenantId, sql.usageByKind, [tenantId, period]));
  }
}

type UsageRow = { kind: UsageKind; quantity: string; cost_pico: string };

function usageFrom(rows: readonly UsageRow[]): Record<UsageKind, { quantity: bigint; cost: bigint }> {
  const out = { embedding: { quantity: 0n, cost: 0n }, llm: { quantity: 0n, cost: 0n }, vector_query: { quantity: 0n, cost: 0n }, vector_write: { quantity: 0n, cost: 0n } };
  for (const r of rows) out[r.kind] = { quantity: BigInt(r.quantity), cost: BigInt(r.cost_pico) };
  return out;
}

/**
 * Every tenant's reads of a report or an allocation, a few at a time: each is its own
 * tenant-scoped transaction (row-level security admits one tenant per context), so at 100,000
 * tenants the time is round trips, which overlap; more at once would only take connections from
 * tenants' requests.
 */
const TENANT_READS_IN_FLIGHT = 4;

/** Allocation rows per statement: ~0.5 MB of JSON. */
const ALLOCATIONS_PER_STATEMENT = 5_000;

async function forEachTenant<T, R>(items: readonly T[], read: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await read(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(TENANT_READS_IN_FLIGHT, items.length) }, worker));
  return out;
}
