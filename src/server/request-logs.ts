import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from "fastify";

/**
 * Request logging: one "request completed" line per request with method, route, status and time,
 * written by the request's own logger (which authentication gives the tenant's id). No
 * "incoming request" line: it is written before the key is checked, so it could not carry
 * `tenant_id`. No line carries the request itself (headers hold keys) or its body; errors go
 * through the `err` serializer, which keeps no statement, parameter or quoted value.
 */
export class RequestLogs extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (request.refusedEarly) return;
    const fields = { method: request.method, route: request.routeOptions.url ?? "unmatched", status: reply.statusCode, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...fields, err: error }, "request errored");
    else reply.log.info(fields, "request completed");
  }

  override defaultErrorLog(error: Error, _request: FastifyRequest, reply: FastifyReply): void {
    if (reply.statusCode >= 500) reply.log.error({ err: error, status: reply.statusCode }, "request failed");
    else reply.log.info({ status: reply.statusCode, code: (error as { code?: string }).code }, "request refused");
  }

  override writeHeadError(error: Error, _request: FastifyRequest, reply: FastifyReply): void {
    reply.log.warn({ err: error }, "writing the response head failed");
  }
}

/**
 * Refusals at the door are counted per tenant and logged as one line per tenant at most every
 * `intervalMs` ("N requests refused"), not one line each: a flood of thousands a second would
 * otherwise be a flood of log lines, paid for by every tenant. Metrics count each one.
 */
export class RefusalLog {
  private readonly pending = new Map<string, { count: number; loggedAt: number }>();
  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly intervalMs = 10_000,
  ) {}

  count(tenantId: string): void {
    const now = Date.now();
    const entry = this.pending.get(tenantId) ?? { count: 0, loggedAt: -Infinity };
    entry.count++;
    if (now - entry.loggedAt >= this.intervalMs) {
      this.log.info({ tenant_id: tenantId, refused: entry.count, status: 429, code: "RATE_LIMITED" }, "requests refused at the door (over the rate limit)");
      entry.count = 0;
      entry.loggedAt = now;
    }
    this.pending.set(tenantId, entry);
  }
}
