import type { PriceBook } from "../config.js";
import { ValidationError } from "../errors.js";

export type Strategy = "namespace-isolation" | "tenant-per-database" | "single-tenant" | "hybrid-tiering";

/** How an average tenant uses the product each month. */
export interface UsageProfile {
  queriesPerTenantPerMonth: number;
  embedTokensPerQuery: number;
  llmTokensPerQuery: number;
  /** Share of tenants on dedicated (enterprise) infrastructure in the hybrid strategy, 0..1. */
  enterpriseShare: number;
}

export const DEFAULT_PROFILE: UsageProfile = { queriesPerTenantPerMonth: 1000, embedTokensPerQuery: 500, llmTokensPerQuery: 1000, enterpriseShare: 0.1 };

export interface StrategyCost {
  strategy: Strategy;
  tenants: number;
  infrastructureMonthly: number;
  variableMonthly: number;
  totalMonthly: number;
  perTenantMonthly: number;
  /** The formula with this plan's numbers substituted, e.g. `ceil(100 / 90) × $50 + $30 + $35`. */
  formula: string;
}

export interface PlanOptions {
  tenantCounts?: number[];
  profile?: Partial<UsageProfile>;
}

/** $50, $12.50, $0.00206: whole dollars bare, amounts under a dollar with their significant digits. */
const usd = (x: number) => `$${Number.isInteger(x) ? x : x >= 1 ? x.toFixed(2) : Number(x.toPrecision(6))}`;
const money = (x: number) => Math.round(x * 100) / 100;

/**
 * The reference's decision card, computed from the price book and the capacity setting instead of
 * typed in. For each tenant count it costs four strategies per month:
 * - namespace isolation: ceil(n / maxNamespaces) shared indexes + one PostgreSQL + load balancer/monitoring;
 * - tenant-per-database: the shared indexes + one small database per tenant + load balancer/monitoring;
 * - single-tenant: n full deployments (index + database + load balancer/monitoring + compute);
 * - hybrid tiering: namespace isolation for (1 − e)·n tenants, single-tenant for e·n.
 * Every strategy adds the same variable cost: n × queries × (embedding + LLM + vector query).
 */
export function planStrategies(prices: PriceBook, maxNamespacesPerIndex: number, options: PlanOptions = {}): StrategyCost[] {
  const counts = options.tenantCounts ?? [10, 100, 500, 5000];
  const profile = { ...DEFAULT_PROFILE, ...options.profile };
  counts.forEach((n, i) => {
    if (!Number.isSafeInteger(n) || n < 1) throw new ValidationError(`tenantCounts[${i}]`, "must be a whole number >= 1");
  });
  for (const [key, value] of Object.entries(profile)) {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) throw new ValidationError(`profile.${key}`, "must be a number >= 0");
  }
  if (profile.enterpriseShare > 1) throw new ValidationError("profile.enterpriseShare", "must be between 0 and 1");

  const perQuery = (profile.embedTokensPerQuery / 1000) * prices.embeddingPer1KTokens + (profile.llmTokensPerQuery / 1000) * prices.llmPer1KTokens + prices.vectorQuery;
  const p = prices;
  const deployment = p.vectorIndexMonthly + p.postgresMonthly + p.loadBalancerMonitoringMonthly + p.dedicatedComputeMonthly;
  const out: StrategyCost[] = [];
  for (const n of counts) {
    const variable = n * profile.queriesPerTenantPerMonth * perQuery;
    const variableText = `${n} × ${profile.queriesPerTenantPerMonth} queries × ${usd(perQuery)}`;
    const indexes = Math.ceil(n / maxNamespacesPerIndex);
    const dedicatedTenants = Math.round(n * profile.enterpriseShare);
    const sharedTenants = n - dedicatedTenants;
    const sharedIndexes = Math.ceil(sharedTenants / maxNamespacesPerIndex);
    const strategies: [Strategy, number, string][] = [
      ["namespace-isolation", indexes * p.vectorIndexMonthly + p.postgresMonthly + p.loadBalancerMonitoringMonthly,
        `ceil(${n} / ${maxNamespacesPerIndex}) × ${usd(p.vectorIndexMonthly)} + ${usd(p.postgresMonthly)} + ${usd(p.loadBalancerMonitoringMonthly)}`],
      ["tenant-per-database", indexes * p.vectorIndexMonthly + n * p.dedicatedDatabaseMonthly + p.loadBalancerMonitoringMonthly,
        `ceil(${n} / ${maxNamespacesPerIndex}) × ${usd(p.vectorIndexMonthly)} + ${n} × ${usd(p.dedicatedDatabaseMonthly)} + ${usd(p.loadBalancerMonitoringMonthly)}`],
      ["single-tenant", n * deployment,
        `${n} × (${usd(p.vectorIndexMonthly)} + ${usd(p.postgresMonthly)} + ${usd(p.loadBalancerMonitoringMonthly)} + ${usd(p.dedicatedComputeMonthly)})`],
      ["hybrid-tiering", (sharedTenants > 0 ? sharedIndexes * p.vectorIndexMonthly + p.postgresMonthly + p.loadBalancerMonitoringMonthly : 0) + dedicatedTenants * deployment,
        `[ceil(${sharedTenants} / ${maxNamespacesPerIndex}) × ${usd(p.vectorIndexMonthly)} + ${usd(p.postgresMonthly)} + ${usd(p.loadBalancerMonitoringMonthly)}] + ${dedicatedTenants} × ${usd(deployment)}`],
    ];
    for (const [strategy, infra, formula] of strategies) {
      out.push({
        strategy,
        tenants: n,
        infrastructureMonthly: money(infra),
        variableMonthly: money(variable),
        totalMonthly: money(infra + variable),
        perTenantMonthly: money((infra + variable) / n),
        formula: `${formula} + ${variableText}`,
      });
    }
  }
  return out;
}
