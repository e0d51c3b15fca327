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
 * Refusals at the door — a tenant over its rate limit, a request without a valid key — are counted
 * and logged as one line per (tenant, code) at most every `intervalMs` ("N requests refused"), not
 * one line each: a flood of thousands a second would otherwise be a flood of log lines, paid for
 * by every tenant (and, for keyless requests, by anyone on the network). Metrics count each one.
 */
export class RefusalLog {
  private readonly pending = new Map<string, { count: number; loggedAt: number }>();
  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly intervalMs = 10_000,
  ) {}

  /** `tenantId` null: the caller has no valid key (the line says so, naming no one). */
  count(tenantId: string | null, status: number, code: string): void {
    const key = `${tenantId ?? ""}\u0000${code}`;
    const now = Date.now();
    const entry = this.pending.get(key) ?? { count: 0, loggedAt: -Infinity };
    entry.count++;
    if (now - entry.loggedAt >= this.intervalMs) {
      this.log.info({ ...(tenantId ? { tenant_id: tenantId } : {}), refused: entry.count, status, code }, tenantId ? "requests refused at the door (over the rate limit)" : "requests refused at the door (no valid key)");
      entry.count = 0;
      entry.loggedAt = now;
    }
    this.pending.set(key, entry);
  }
}

/**
 * A field path as a log may carry it: the request's structure, not the tenant's words. Metadata
 * keys and filter field names are the tenant's content (`documents[0].metadata.patient_ssn`), so
 * they become `*`; operators (`$in`), indexes and the API's own names stay.
 */
export function fieldForLog(field: string): string {
  const parts = field.split(".");
  let userKeysFollow = false;
  const out = parts.map((part, i) => {
    const name = part.replace(/\[\d+\]/g, "");
    const index = part.slice(name.length);
    if (i === 0 && name === "filter") {
      userKeysFollow = true;
      return part;
    }
    if (userKeysFollow && !name.startsWith("$")) return `*${index}`;
    if (name === "metadata") {
      userKeysFollow = true;
      return part;
    }
    return part.length > 64 ? `${part.slice(0, 64)}…` : part;
  });
  return out.join(".");
}
