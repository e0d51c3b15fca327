import { DatabaseError } from "../errors.js";

/**
 * What a caller may assume after a timed-out call: `not-applied` when nothing was sent or nothing
 * was committed (safe to retry); `unknown` when a statement or COMMIT had been sent on its own
 * implicit or explicit transaction — a write may have been applied: read before retrying.
 */
export type TimeoutOutcome = "not-applied" | "unknown";

/**
 * The database did not answer within the call's deadline (`dbTimeoutMs`, or `dbLongTimeoutMs` for
 * slow-by-nature work). A `DatabaseError`, so HTTP answers 503 with Retry-After; the message says
 * whether a write may have been applied, so no one retries a committed write blindly.
 */
export class DatabaseTimeoutError extends DatabaseError {
  readonly timeoutMs: number;
  readonly outcome: TimeoutOutcome;

  constructor(target: string, timeoutMs: number, outcome: TimeoutOutcome, stage: string) {
    super(
      `PostgreSQL at ${target} did not answer within ${timeoutMs} ms (${stage}); the connection was discarded. ` +
        (outcome === "unknown"
          ? "The statement had been sent: if it was a write, it may or may not have been applied — read the data before retrying it."
          : "Nothing was applied; the call can be retried."),
    );
    this.timeoutMs = timeoutMs;
    this.outcome = outcome;
  }
}

/**
 * The server's statement_timeout for a client deadline: a little earlier, so a statement that is
 * merely slow is cancelled by the server (the transaction rolls back, the connection stays usable,
 * the outcome is known) and the client's own timer only fires when the server does not answer at all.
 */
export function serverStatementTimeout(deadlineMs: number): number {
  return Math.max(50, Math.floor(deadlineMs * 0.9));
}
