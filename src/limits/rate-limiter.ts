import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import type { Redis } from "ioredis";
import { RateLimitedError } from "../errors.js";

/** A tenant's rate limit: a sustained rate and a burst on top of it. */
export interface RateLimit {
  requestsPerSecond: number;
  /** Extra operations above the sustained rate, at most this many per `BURST_WINDOW_SECONDS`. */
  burst: number;
}

/** The window over which `burst` extra operations may be spent. */
export const BURST_WINDOW_SECONDS = 10;

export interface TenantRateLimiterOptions {
  /** Shared counters for several instances; without it the limits are this process's own. */
  redis?: Redis;
  /** Separates deployments (and test runs) that share one Redis. */
  keyPrefix: string;
  /** Called each time the in-memory insurance limiter decides because Redis failed or was too slow. */
  onInsurance?: () => void;
  now?: () => number;
}

type Limiter = Pick<BurstyRateLimiter, "consume">;

/** A refusal: the tenant is over its rate limit for `retryAfterMs` more. */
export interface RateLimitRefusal {
  tenantId: string;
  requestsPerSecond: number;
  retryAfterMs: number;
  /** Refused before and not yet waited out: the caller ignored a Retry-After. */
  repeated?: boolean;
  /** What the limit counts, when not operations per second. */
  what?: string;
}

/**
 * Per-tenant rate limits with `rate-limiter-flexible`. With Redis, every instance draws on the same
 * counters; when Redis fails (down, or slower than the client's command timeout) an in-memory
 * insurance limiter with the same limits decides instead, so requests never fail because of Redis —
 * the limit just becomes per instance until it is back.
 *
 * A refused tenant is remembered until the limiter said a point frees up, so a flood is refused
 * from memory without a Redis round trip per attempt.
 */
export class TenantRateLimiter {
  private readonly limiters = new Map<string, Limiter>();
  private readonly blockedUntil = new Map<string, number>();
  /** The same refusals by tenant alone, for `refusedNow` (which knows the key, not the limit). */
  private readonly tenantBlocked = new Map<string, { until: number; limit: number }>();
  private readonly now: () => number;

  constructor(private readonly options: TenantRateLimiterOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Spends one operation of the tenant's limit, or throws `RateLimitedError` saying when to retry. */
  async consume(tenantId: string, limit: RateLimit): Promise<void> {
    const key = `${limit.requestsPerSecond}:${limit.burst}`;
    const blockKey = `${key}:${tenantId}`;
    const until = this.blockedUntil.get(blockKey);
    if (until !== undefined) {
      const wait = until - this.now();
      if (wait > 0) throw new RateLimitedError(tenantId, limit.requestsPerSecond, Math.ceil(wait));
      this.blockedUntil.delete(blockKey);
    }
    try {
      await this.limiterFor(key, limit).consume(tenantId, 1);
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      const wait = Math.max(1, Math.ceil(res.msBeforeNext));
      this.blockedUntil.set(blockKey, this.now() + wait);
      this.tenantBlocked.set(tenantId, { until: this.now() + wait, limit: limit.requestsPerSecond });
      throw new RateLimitedError(tenantId, limit.requestsPerSecond, wait);
    }
  }

  /**
   * The refusal a tenant already earned and has not waited out, from memory alone (no Redis, no
   * point spent), or null. The HTTP door asks this before reading a request's body, so a flooding
   * tenant's refusals cost next to nothing; a tenant not known to be over its limit goes on to
   * `consume` as usual.
   */
  refusedNow(tenantId: string): RateLimitRefusal | null {
    const blocked = this.tenantBlocked.get(tenantId);
    if (!blocked) return null;
    const wait = blocked.until - this.now();
    if (wait <= 0) {
      this.tenantBlocked.delete(tenantId);
      return null;
    }
    // A plain object, not an error: building a stack trace was a third of a refusal's cost under a flood.
    return { tenantId, requestsPerSecond: blocked.limit, retryAfterMs: Math.ceil(wait), repeated: true };
  }

  /**
   * Spends `vectors` of a tenant's move write limit (`vectorsPerSecond`, counted over windows of
   * BURST_WINDOW_SECONDS, so a batch larger than one second's worth still passes when the window
   * has room), or throws `RateLimitedError`. A batch larger than a whole window is charged the window.
   */
  consumeMoveWrites(tenantId: string, vectorsPerSecond: number, vectors: number): Promise<void> {
    return this.consumeWindowed("move-writes", tenantId, vectorsPerSecond, vectors, "vector writes per second, set while it is being moved (until the move switches)");
  }

  /** Spends `bytes` of a tenant's `requestBytesPerSecond`, counted like `consumeMoveWrites`, or throws `RateLimitedError`. */
  consumeRequestBytes(tenantId: string, bytesPerSecond: number, bytes: number): Promise<void> {
    return this.consumeWindowed("request-bytes", tenantId, bytesPerSecond, bytes, "request-body bytes per second");
  }

  private async consumeWindowed(name: string, tenantId: string, perSecond: number, amount: number, what: string): Promise<void> {
    const key = `${name}:${perSecond}`;
    let limiter = this.limiters.get(key);
    if (!limiter) {
      limiter = this.make(`${this.options.keyPrefix}:${key}`, perSecond * BURST_WINDOW_SECONDS, BURST_WINDOW_SECONDS);
      this.limiters.set(key, limiter);
    }
    try {
      await limiter.consume(tenantId, Math.min(amount, perSecond * BURST_WINDOW_SECONDS));
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      throw new RateLimitedError(tenantId, perSecond, Math.max(1, Math.ceil(res.msBeforeNext)), what);
    }
  }

  /** Forgets remembered refusals of one tenant (its limits changed), or of all with null. */
  forget(tenantId: string | null): void {
    for (const key of this.blockedUntil.keys()) if (tenantId === null || key.endsWith(`:${tenantId}`)) this.blockedUntil.delete(key);
    if (tenantId === null) this.tenantBlocked.clear();
    else this.tenantBlocked.delete(tenantId);
  }

  /** One limiter per distinct limit; tenants are its keys. Key prefixes carry the limit, so a changed limit starts afresh. */
  private limiterFor(key: string, limit: RateLimit): Limiter {
    let limiter = this.limiters.get(key);
    if (!limiter) {
      const sustained = this.make(`${this.options.keyPrefix}:rate:${key}`, limit.requestsPerSecond, 1);
      limiter = limit.burst > 0 ? new BurstyRateLimiter(sustained, this.make(`${this.options.keyPrefix}:burst:${key}`, limit.burst, BURST_WINDOW_SECONDS)) : sustained;
      this.limiters.set(key, limiter);
    }
    return limiter;
  }

  private make(keyPrefix: string, points: number, duration: number): RateLimiterMemory | RateLimiterRedis {
    if (!this.options.redis) return new RateLimiterMemory({ keyPrefix, points, duration });
    return new RateLimiterRedis({
      storeClient: this.options.redis,
      keyPrefix,
      points,
      duration,
      // Fail over to insurance at once when the connection is down, instead of queueing commands.
      rejectIfRedisNotReady: true,
      insuranceLimiter: new InsuranceLimiter({ keyPrefix, points, duration }, this.options.onInsurance),
    });
  }
}

/** An in-memory limiter that reports each decision it makes: those are decisions Redis could not make. */
class InsuranceLimiter extends RateLimiterMemory {
  constructor(
    options: ConstructorParameters<typeof RateLimiterMemory>[0],
    private readonly onUse: (() => void) | undefined,
  ) {
    super(options);
  }

  override consume(...args: Parameters<RateLimiterMemory["consume"]>): Promise<RateLimiterRes> {
    this.onUse?.();
    return super.consume(...args);
  }
}
