import { BulkheadError, DatabaseError, ProviderError, QuotaExceededError, RateLimitedError, StoreUnavailableError, ValidationError } from "../errors.js";
import type { RateLimitRefusal } from "../limits/rate-limiter.js";

/** An RFC 9457 problem document, with Bulkhead's stable `code` and the failure's own fields. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  [extension: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  408: "Request Timeout",
  411: "Length Required",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** Fastify's own client errors (parsing, size, media type) keep their status; their codes are mapped to ours. */
const FASTIFY_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "BODY_TOO_LARGE",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
  FST_ERR_CTP_EMPTY_JSON_BODY: "VALIDATION_FAILED",
  FST_ERR_CTP_INVALID_JSON_BODY: "VALIDATION_FAILED",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "VALIDATION_FAILED",
  FST_ERR_BAD_URL: "BAD_URL",
  FST_ERR_ASYNC_CONSTRAINT: "BAD_REQUEST",
};

/** Seconds a client should wait before retrying a database outage. */
const DATABASE_RETRY_SECONDS = 5;

/**
 * Maps any error to a problem document and the headers that go with it. Known failures keep their
 * status; only an unexpected error becomes a 500, and its message is not shown to the caller.
 */
export function toProblem(err: unknown, instance?: string): { problem: Problem; headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  let status = 500;
  let code = "INTERNAL";
  let detail = "an unexpected error occurred; it has been logged";
  const extra: Record<string, unknown> = {};
  if (err instanceof BulkheadError) {
    ({ status, code } = err);
    detail = err.message;
    if (err instanceof ValidationError) extra.field = err.field;
    if (err instanceof QuotaExceededError) {
      Object.assign(extra, { quota: err.quota, limit: err.limit, current: err.current });
      if (err.resetsAt) {
        extra.resetsAt = err.resetsAt.toISOString();
        headers["retry-after"] = String(Math.max(1, Math.ceil((err.resetsAt.getTime() - Date.now()) / 1000)));
      }
    }
    if (err instanceof RateLimitedError || err instanceof StoreUnavailableError || err instanceof ProviderError) {
      extra.retryAfterMs = err.retryAfterMs;
      headers["retry-after"] = String(Math.max(1, Math.ceil(err.retryAfterMs / 1000)));
    }
    if (err instanceof DatabaseError) headers["retry-after"] = String(DATABASE_RETRY_SECONDS);
    if (status === 429 && !headers["retry-after"]) headers["retry-after"] = "1";
  } else {
    const e = err as { statusCode?: number; code?: string; message?: string };
    if (typeof e?.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
      status = e.statusCode;
      code = (e.code && FASTIFY_CODES[e.code]) ?? (status === 404 ? "NOT_FOUND" : "BAD_REQUEST");
      detail = e.message ?? TITLES[status] ?? "bad request";
    }
  }
  headers["content-type"] = "application/problem+json";
  const problem: Problem = {
    type: `https://bulkhead.dev/problems/${code.toLowerCase().replace(/_/g, "-")}`,
    title: TITLES[status] ?? "Error",
    status,
    detail,
    code,
    ...(instance ? { instance } : {}),
    ...extra,
  };
  return { problem, headers };
}

/**
 * The problem document of a refusal earned earlier (the tenant is over its rate limit), built
 * without an error object: the same document `toProblem` makes of a `RateLimitedError`, at a
 * fraction of the cost, for the HTTP door under a flood.
 */
export function rateLimitProblem(refusal: RateLimitRefusal, instance: string): { body: string; headers: Record<string, string> } {
  const problem: Problem = {
    type: "https://bulkhead.dev/problems/rate-limited",
    title: TITLES[429]!,
    status: 429,
    detail: RateLimitedError.describe(refusal.tenantId, refusal.requestsPerSecond, refusal.retryAfterMs, refusal.what),
    code: "RATE_LIMITED",
    instance,
    retryAfterMs: refusal.retryAfterMs,
  };
  return { body: JSON.stringify(problem), headers: { "content-type": "application/problem+json", "retry-after": String(Math.max(1, Math.ceil(refusal.retryAfterMs / 1000))) } };
}
