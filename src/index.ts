/**
 * Bulkhead: tenant isolation for multi-tenant RAG.
 * Everything a library user imports comes from here.
 */
export { createBulkhead, type Bulkhead, type BulkheadOptions } from "./bulkhead.js";
export { Config, loadConfig, TenantTier, DEFAULT_TIER_QUOTAS, DEFAULT_PLAN_PRICES, QUOTA_MINIMUMS, type BulkheadConfig, type TenantQuota, type Metric, type PriceBook, type ModelPrice, type TierTextSettings } from "./config.js";
export {
  BulkheadError,
  ValidationError,
  TenantNotFoundError,
  TenantAlreadyExistsError,
  TenantSuspendedError,
  QuotaExceededError,
  RateLimitedError,
  ConcurrencyLimitError,
  AuthenticationError,
  ForbiddenError,
  IsolationViolationError,
  ConfigError,
  DatabaseError,
  ClosedError,
  StoreUnavailableError,
} from "./errors.js";
export { DatabaseTimeoutError, type TimeoutOutcome } from "./db/deadline.js";
export { TenantRegistry, type RegisterOptions } from "./tenancy/registry.js";
export type { Tenant, TenantStatus } from "./tenancy/tenant.js";
export { ApiKeyStore, KeyNotFoundError, KEY_PREFIX, SCOPES, type ApiKeyInfo, type CreatedKey, type KeyKind, type Scope } from "./tenancy/api-keys.js";
export { AuditLog, type AuditEntry } from "./tenancy/audit-log.js";
export type { IndexCapacity } from "./tenancy/capacity.js";
export { TenantDataManager, type UpsertResult, type QueryResult, type QueryOptions, type QueryMatch, type FetchResult, type DeleteResult } from "./data/data-manager.js";
export type { DocumentInput } from "./data/validation.js";
export type { MetadataFilter } from "./stores/filter.js";
export type { VectorStore, MovableStore, RemoteStore, StoreCapabilities, Placement } from "./stores/store.js";
export { pinecone, type StoreFactory, type StoreContext, type PineconeSettings } from "./stores/open-stores.js";
export { testCrossTenantIsolation, probeCrossTenantIsolation, type ProbeReport, type ProbeAttempt } from "./isolation/cross-tenant-probe.js";
export type { CheckResult, ReadinessOptions } from "./readiness/checks.js";
export { TenantMonitor, type TenantAlert } from "./monitoring/tenant-monitor.js";
export type { TenantStats, Outcome } from "./monitoring/latency-window.js";
export type { Operation } from "./limits/performance-gate.js";
export {
  CostAllocationEngine,
  COST_CATEGORIES,
  type QueryUsage,
  type AllocationBasis,
  type AllocationMethod,
  type CostCategory,
  type FixedCosts,
  type TenantCostSummary,
  type MonthlyReport,
  type TenantMargin,
  type Reconciliation,
  type ReconciliationLine,
} from "./costs/cost-engine.js";
export { planStrategies, DEFAULT_PROFILE, type Strategy, type StrategyCost, type UsageProfile, type PlanOptions } from "./costs/planner.js";
export { monthlyReportToCsv } from "./costs/export.js";
export { countTokens, type Encoding } from "./costs/token-counter.js";
export { migrationScript, SCHEMA_VERSION } from "./db/migrations.js";
