import { Redis } from "ioredis";

/** How long start-up waits for Redis before going on with the in-memory insurance limiter. */
const STARTUP_WAIT_MS = 2_000;

/** The rate limiter's Redis connection and the way to close it without reporting an outage. */
export interface RedisConnection {
  redis: Redis;
  close(): Promise<void>;
}

/**
 * Opens the rate limiter's Redis connection. Commands fail fast instead of queueing while it is down
 * (`enableOfflineQueue: false`) or slower than `commandTimeoutMs`, which hands the decision to the
 * insurance limiter; ioredis keeps reconnecting in the background. `onState` hears every change of
 * readiness (for the `bulkhead_redis_up` metric); a log line is written only when the state flips.
 */
export async function connectRedis(url: string, commandTimeoutMs: number, onState: (up: boolean) => void, log: (message: string) => void): Promise<RedisConnection> {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    commandTimeout: commandTimeoutMs,
    maxRetriesPerRequest: 0,
    // Reconnect quickly at first, then every 2 s at most.
    retryStrategy: (attempt) => Math.min(attempt * 100, 2_000),
  });
  let closing = false;
  let up: boolean | undefined;
  const set = (next: boolean, why: string) => {
    if (closing) return;
    onState(next);
    if (up === next) return;
    if (up !== undefined || !next) {
      log(next ? "bulkhead: Redis is back; rate limits are shared across instances again" : `bulkhead: Redis unavailable (${why}); rate limits fall back to per-instance memory until it returns`);
    }
    up = next;
  };
  redis.on("ready", () => set(true, "ready"));
  redis.on("error", (err: Error) => set(false, err.message));
  redis.on("close", () => set(false, "connection closed"));
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, STARTUP_WAIT_MS);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once("ready", done);
    redis.once("error", done);
  });
  return {
    redis,
    async close() {
      closing = true;
      redis.disconnect();
    },
  };
}
