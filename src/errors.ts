/**
 * Every failure Bulkhead reports is a `BulkheadError` with a stable `code` (for programs)
 * and an HTTP `status` (for the service layer), so callers never parse messages.
 */
export class BulkheadError extends Error {
  /** Stable machine-readable code, e.g. `TENANT_NOT_FOUND`. */
  readonly code: string;
  /** HTTP status the service layer answers with. */
  readonly status: number;

  constructor(code: string, status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

/** Input was rejected before anything was written. `field` says where, e.g. `documents[3].values[7]`. */
export class ValidationError extends BulkheadError {
  readonly field: string;
  /** What is wrong with the field (the message without the field's name). */
  readonly reason: string;
  constructor(field: string, reason: string) {
    super("VALIDATION_FAILED", 400, `${field}: ${reason}`);
    this.field = field;
    this.reason = reason;
  }
}

/** The tenant has no job with this id (another tenant's id is not found either). */
export class JobNotFoundError extends BulkheadError {
  constructor(jobId: string) {
    super("JOB_NOT_FOUND", 404, `no job ${JSON.stringify(jobId)} for this tenant`);
  }
}

/** No tenant with this id exists (or it has been deleted). */
export class TenantNotFoundError extends BulkheadError {
  readonly tenantId: string;
  constructor(tenantId: string) {
    super("TENANT_NOT_FOUND", 404, `tenant "${tenantId}" does not exist`);
    this.tenantId = tenantId;
  }
}

/** A tenant with this id is already registered; registration never overwrites. */
export class TenantAlreadyExistsError extends BulkheadError {
  readonly tenantId: string;
  constructor(tenantId: string) {
    super("TENANT_EXISTS", 409, `tenant "${tenantId}" is already registered`);
    this.tenantId = tenantId;
  }
}

/** The tenant exists but may not use data operations (suspended). */
export class TenantSuspendedError extends BulkheadError {
  readonly tenantId: string;
  constructor(tenantId: string) {
    super("TENANT_SUSPENDED", 403, `tenant "${tenantId}" is suspended; resume it before using its data`);
    this.tenantId = tenantId;
  }
}

/** A quota would be exceeded; nothing was written. */
export class QuotaExceededError extends BulkheadError {
  readonly quota: string;
  readonly limit: number;
  readonly current: number;
  readonly resetsAt: Date | undefined;
  constructor(quota: string, limit: number, current: number, message: string, resetsAt?: Date) {
    super("QUOTA_EXCEEDED", 429, message);
    this.quota = quota;
    this.limit = limit;
    this.current = current;
    this.resetsAt = resetsAt;
  }
}

/** The tenant sent more operations than its rate limit allows; retry after `retryAfterMs`. Nothing was done. */
export class RateLimitedError extends BulkheadError {
  readonly tenantId: string;
  readonly retryAfterMs: number;
  readonly limit: number;
  /** What the limit counts, e.g. "operations per second". */
  readonly what: string;
  constructor(tenantId: string, limit: number, retryAfterMs: number, what = "operations per second") {
    super("RATE_LIMITED", 429, RateLimitedError.describe(tenantId, limit, retryAfterMs, what));
    this.tenantId = tenantId;
    this.retryAfterMs = retryAfterMs;
    this.limit = limit;
    this.what = what;
  }

  /** The message, also for refusals answered without building an error (the HTTP door under a flood). */
  static describe(tenantId: string, limit: number, retryAfterMs: number, what = "operations per second"): string {
    return `tenant "${tenantId}" exceeded its rate limit of ${limit} ${what}; retry in ${retryAfterMs} ms`;
  }
}

/** The tenant already has `limit` operations in flight; this one was refused without waiting. */
export class ConcurrencyLimitError extends BulkheadError {
  readonly tenantId: string;
  readonly limit: number;
  constructor(tenantId: string, limit: number, what = "operations in flight (its maxConcurrent)") {
    super("CONCURRENCY_LIMITED", 429, `tenant "${tenantId}" already has ${limit} ${what}; wait for one to finish`);
    this.tenantId = tenantId;
    this.limit = limit;
  }
}

/**
 * The tenant's placement changed (a move started, switched or was rolled back) after this
 * instance resolved it; nothing was done. Data calls reload the placement and retry on their own.
 */
export class PlacementMovedError extends BulkheadError {
  readonly tenantId: string;
  constructor(tenantId: string) {
    super("PLACEMENT_MOVED", 503, `tenant "${tenantId}" was moved while this operation was prepared; retry it`);
    this.tenantId = tenantId;
  }
}

/** A placement move was asked for in a state that does not allow it (none in progress, or one already is). */
export class MoveConflictError extends BulkheadError {
  readonly tenantId: string;
  constructor(tenantId: string, message: string) {
    super("MOVE_CONFLICT", 409, message);
    this.tenantId = tenantId;
  }
}

/** No valid API key was presented (missing, malformed, unknown or revoked). */
export class AuthenticationError extends BulkheadError {
  constructor(message: string) {
    super("UNAUTHENTICATED", 401, message);
  }
}

/** The key is valid but may not do this (wrong kind, missing scope, another tenant's data). */
export class ForbiddenError extends BulkheadError {
  constructor(message: string) {
    super("FORBIDDEN", 403, message);
  }
}

/**
 * A result carried another tenant's id. This is the last line of defence firing: it means
 * the store or database scoping failed, so the whole response is withheld.
 */
export class IsolationViolationError extends BulkheadError {
  constructor(message: string) {
    super("ISOLATION_VIOLATION", 500, message);
  }
}

/** Configuration is invalid; the message names the variable or key. */
export class ConfigError extends BulkheadError {
  constructor(message: string) {
    super("CONFIG_INVALID", 500, message);
  }
}

/** The database is unreachable or not prepared (schema missing, pgvector missing, wrong role). */
export class DatabaseError extends BulkheadError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("DATABASE_UNAVAILABLE", 503, message, options);
  }
}

/**
 * A vector store outside the database (Pinecone) failed or did not answer in time: 503 when it
 * is down or slow (retry later), 429 when it throttles (`retryAfterMs`). What the store said is
 * in the message by status only, never its body. Nothing was acknowledged (a write may have been
 * applied in part: writes are idempotent, retry them).
 */
export class StoreUnavailableError extends BulkheadError {
  readonly store: string;
  readonly retryAfterMs: number;
  constructor(store: string, message: string, options: { throttled?: boolean; retryAfterMs?: number } = {}) {
    super(options.throttled ? "STORE_THROTTLED" : "STORE_UNAVAILABLE", options.throttled ? 429 : 503, message);
    this.store = store;
    this.retryAfterMs = options.retryAfterMs ?? 1000;
  }
}

/** A vector store outside the database refused what it was sent (too large for it): the caller's request, not an outage. Nothing was written. */
export class StoreRejectedError extends BulkheadError {
  readonly store: string;
  constructor(store: string, message: string) {
    super("STORE_REJECTED", 400, message);
    this.store = store;
  }
}

/** The object was closed and can no longer be used. */
export class ClosedError extends BulkheadError {
  constructor(what: string) {
    super("CLOSED", 503, `${what} has been closed`);
  }
}

/** The tenant has no move in progress (it switched, was rolled back, or never began). */
export class MoveNotFoundError extends BulkheadError {
  readonly tenantId: string;
  constructor(tenantId: string) {
    super("MOVE_NOT_FOUND", 404, `tenant "${tenantId}" has no move in progress (it has switched, was rolled back, or never began)`);
    this.tenantId = tenantId;
  }
}

/** A short, safe rendering of a rejected value for an error message (never a whole string or object). */
export function shown(value: unknown): string {
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined) return String(value);
  if (typeof value === "string") return value.length <= 20 && !/[\u0000-\u001f\u007f\ud800-\udfff]/.test(value) ? JSON.stringify(value) : `a string of ${value.length} characters`;
  return Array.isArray(value) ? `an array of ${value.length}` : `an ${typeof value}`;
}

/** A feature this deployment has not configured (e.g. answering without a chat model): 501, with what to set. */
export class NotConfiguredError extends BulkheadError {
  constructor(message: string) {
    super("NOT_CONFIGURED", 501, message);
  }
}

/**
 * An embedding or chat provider failed: 503 when it is down, slow or failing (retried first; try
 * again later), 429 when it throttled past the retries (`retryAfterMs`), 502 when it refused the
 * request itself (a wrong key, model or dimension: the deployment's configuration, not the caller's
 * input). The message names the provider's status only, never its body or the key. Nothing was
 * written.
 */
export class ProviderError extends BulkheadError {
  readonly retryAfterMs: number;
  constructor(kind: "unavailable" | "throttled" | "refused", message: string, retryAfterMs = 1000) {
    super(kind === "throttled" ? "PROVIDER_THROTTLED" : kind === "refused" ? "PROVIDER_REFUSED" : "PROVIDER_UNAVAILABLE", kind === "throttled" ? 429 : kind === "refused" ? 502 : 503, message);
    this.retryAfterMs = retryAfterMs;
  }
}
