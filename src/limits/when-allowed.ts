import { RateLimitedError } from "../errors.js";

/**
 * Runs `fn`, waiting out rate-limit refusals (as long as each says) up to `attempts` times. For
 * Bulkhead's own diagnostics that act as a tenant (the cross-tenant probe, readiness checks): they
 * must respect the tenant's limits, and must not fail — or leave canaries behind — because of them.
 */
export async function whenAllowed<T>(fn: () => Promise<T>, attempts = 20): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof RateLimitedError) || i >= attempts) throw err;
      await new Promise((resolve) => setTimeout(resolve, err.retryAfterMs));
    }
  }
}
