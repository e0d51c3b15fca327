import { randomUUID } from "node:crypto";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { pino, type Logger } from "pino";
import { Counter, Histogram } from "prom-client";
import type { Bulkhead } from "../bulkhead.js";
import { AuthenticationError, BulkheadError, ForbiddenError } from "../errors.js";
import type { ApiKeyInfo } from "../tenancy/api-keys.js";
import type { CheckResult, ReadinessOptions } from "../readiness/checks.js";
import { withDoorAdmission } from "../limits/door-admission.js";
import { safeError } from "../monitoring/safe-error.js";
import { adminRoutes } from "./admin-routes.js";
import { BodyParserPool, OFFLOAD_BYTES } from "./body-parser-pool.js";
import { decodeJsonBody } from "./json-body.js";
import { LogTap } from "./log-tap.js";
import { FailedAuthentications } from "./failed-authentications.js";
import { fieldForLog, RefusalLog, RequestLogs } from "./request-logs.js";
import { buildOpenApi } from "./openapi.js";
import { rateLimitProblem, toProblem } from "./problem.js";
import { runServiceReadiness } from "./service-readiness.js";
import { route, type RouteSpec } from "./route-spec.js";
import { noQuery, offloadedBodyName, parse, readinessQuery, type OffloadedBody } from "./schemas.js";
import { tenantRoutes } from "./tenant-routes.js";
import { dashboardRoutes } from "./dashboard/dashboard-routes.js";

export interface ServerOptions {
  /** Where JSON log lines go (default: stdout). Pass `false` to log nothing (they are still tapped for readiness). */
  logDestination?: NodeJS.WritableStream | false;
  logLevel?: string;
  /** Largest request body in bytes; larger ones get 413. Default: `BULKHEAD_HTTP_BODY_LIMIT`, 16 MiB (a batch of 1,000 384-d vectors is ~8 MB). */
  bodyLimit?: number;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The caller's verified key (null on open routes). */
    apiKey: ApiKeyInfo | null;
    /** Refused at the door (over its rate limit) before its body was read; summarised, not logged one by one. */
    refusedEarly: boolean;
    /** Its rate-limit point was spent at the door (see limits/door-admission.ts). */
    admittedAtDoor: boolean;
    /** Its body was validated against the route's schema already, by a body worker. */
    bodyValidated: boolean;
  }
  interface FastifyContextConfig {
    /** The route's body schema, when a body worker may validate it (see body-parser-pool.ts). */
    offloadedBody?: OffloadedBody;
  }
  interface FastifyInstance {
    /** The service's readiness checklist (what `GET /admin/readiness` answers), for `bulkhead doctor`. */
    readiness(options?: ReadinessOptions): Promise<CheckResult[]>;
  }
}

/** The body of a route, parsed; a `tenantId` in it must be the key's own. */
function parseInput(spec: RouteSpec, request: FastifyRequest, key: ApiKeyInfo | null) {
  const body = spec.body ? (request.bodyValidated ? request.body : parse(spec.body, request.body, "body")) : undefined;
  // A route without query parameters refuses any: a misspelt or unexpected one must not pass unnoticed.
  const query = parse(spec.query ?? noQuery, request.query, "query");
  const params = spec.params ? parse(spec.params, request.params, "params") : undefined;
  const claimed = (body as { tenantId?: string } | undefined)?.tenantId;
  if (spec.access === "tenant" && claimed !== undefined && claimed !== key!.tenantId) {
    throw new ForbiddenError(`this key belongs to tenant "${key!.tenantId}"; it cannot act for "${claimed}"`);
  }
  return { body, query, params };
}

/**
 * Builds the HTTP service on a running Bulkhead (not listening yet). Every route comes from one
 * table; every route but `/healthz` and `/readyz` needs a key; errors are RFC 9457 problem+json.
 *
 * @example
 * const app = await buildServer(bh);
 * await app.listen({ port: 8080 });
 */
export async function buildServer(bh: Bulkhead, options: ServerOptions = {}): Promise<FastifyInstance> {
  const tap = new LogTap(options.logDestination === undefined ? process.stdout : options.logDestination || undefined);
  const logger: Logger = pino(
    {
      level: options.logLevel ?? "info",
      // Defence in depth: request logs carry no headers, but should one ever be logged, its key is not.
      redact: { paths: ["req.headers.authorization", "req.headers[\"x-api-key\"]", "*.key", "key"], censor: "[redacted]" },
      // Every logged error, on every path, keeps only its type, code and a masked message (see safe-error.ts).
      serializers: { err: safeError, error: safeError },
    },
    tap,
  );
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: options.bodyLimit ?? bh.config.httpBodyLimit,
    // A body that stops arriving must not hold its connection and buffers for ever (Fastify's default has no limit).
    requestTimeout: bh.config.httpRequestTimeoutMs,
    // Path parameters are validated by the routes' schemas (400 naming the field), not cut off by the router.
    routerOptions: { maxParamLength: 65_536 },
    // Errors Fastify and Node raise before any route runs (a badly encoded URL, oversized headers,
    // a malformed request line) are problem+json too, like every other answer.
    frameworkErrors: (error, request, reply) => {
      const { problem, headers } = toProblem(error, request.url);
      void (reply as FastifyReply).status(problem.status).headers(headers).send(JSON.stringify(problem));
    },
    clientErrorHandler: (err, socket) => {
      if ((err as NodeJS.ErrnoException).code === "ECONNRESET" || socket.destroyed) return;
      const status = (err as NodeJS.ErrnoException).code === "HPE_HEADER_OVERFLOW" ? 431 : (err as NodeJS.ErrnoException).code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
      const { problem } = toProblem(Object.assign(new Error(status === 431 ? "the request's headers are too large" : status === 408 ? "the request took too long to arrive" : "the request is not valid HTTP"), { statusCode: status }));
      const body = JSON.stringify(problem);
      if (socket.writable) socket.write(`HTTP/1.1 ${status} ${problem.title}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/problem+json\r\nConnection: close\r\n\r\n${body}`);
      socket.destroy();
    },
    logController: new RequestLogs({ requestIdLogLabel: "request_id" }),
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && /^[A-Za-z0-9._-]{1,100}$/.test(given) ? given : randomUUID();
    },
  });
  const failures = new FailedAuthentications();
  /** The caller's key, verified; a client over its budget of failures has only known keys checked. */
  const verifyKey = async (presented: string | undefined, request: FastifyRequest) => {
    try {
      return await bh.keys.verify(presented, { cachedOnly: failures.overBudget(request.ip) });
    } catch (err) {
      // Only failures that cost a key lookup count (a missing or malformed key costs nothing).
      if (err instanceof AuthenticationError && (err as { lookedUp?: boolean }).lookedUp) failures.failed(request.ip);
      throw err;
    }
  };
  const authenticate = (request: FastifyRequest) => verifyKey(bearer(request), request);
  app.decorateRequest("apiKey", null);
  app.decorateRequest("refusedEarly", false);
  app.decorateRequest("admittedAtDoor", false);
  app.decorateRequest("bodyValidated", false);
  const refusals = new RefusalLog(app.log);
  const bodyWorkers = bh.config.httpBodyWorkers > 0 ? new BodyParserPool(bh.config.httpBodyWorkers) : undefined;
  app.addHook("onClose", async () => bodyWorkers?.close());
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, async (request: FastifyRequest, bytes: Buffer) => {
    const schema = request.routeOptions.config?.offloadedBody;
    const key = request.apiKey;
    if (!bodyWorkers || !schema || !key || bytes.byteLength < OFFLOAD_BYTES) return decodeJsonBody(bytes);
    const body = await bodyWorkers.parse(key.tenantId ?? `admin:${key.keyId}`, bytes, schema);
    request.bodyValidated = true;
    return body;
  });
  // Which routes exist is for key holders only: an unknown path checks the key before anything
  // else, the body included (a malformed body must not tell a prober that the path is unknown).
  app.addHook("onRequest", async (request) => {
    if (request.is404) await authenticate(request);
  });
  // Everything Fastify actually registers (including the HEAD twins of GET routes), for the readiness check.
  const registered: { method: string; url: string }[] = [];
  app.addHook("onRoute", (r) => {
    for (const method of [r.method].flat()) registered.push({ method, url: r.url });
  });

  const registry = bh.monitor.metrics.registry;
  // A Bulkhead may serve more than one app (tests, doctor): its registry keeps one of each metric.
  const httpRequests =
    (registry.getSingleMetric("bulkhead_http_requests_total") as Counter<"route" | "method" | "status"> | undefined) ??
    new Counter({ name: "bulkhead_http_requests_total", help: "HTTP requests by route, method and status.", labelNames: ["route", "method", "status"] as const, registers: [registry] });
  const httpDuration =
    (registry.getSingleMetric("bulkhead_http_request_duration_seconds") as Histogram<"route" | "method"> | undefined) ??
    new Histogram({
      name: "bulkhead_http_request_duration_seconds",
      help: "HTTP request latency by route and method.",
      labelNames: ["route", "method"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
  app.addHook("onResponse", async (request, reply) => {
    const routeUrl = request.routeOptions.url ?? "unmatched";
    httpRequests.inc({ route: routeUrl, method: request.method, status: String(reply.statusCode) });
    httpDuration.observe({ route: routeUrl, method: request.method }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((err, request, reply) => {
    const { problem, headers } = toProblem(err, request.url);
    if (problem.status >= 500) request.log.error({ err }, "request failed");
    else if (problem.status === 401 || problem.code === "AUTHENTICATION_THROTTLED") {
      // Anyone can send these, as fast as they like: summarised, not one line each.
      request.refusedEarly = true;
      refusals.count(null, problem.status, problem.code);
    } else request.log.info({ code: problem.code, status: problem.status, ...(typeof problem.field === "string" ? { field: fieldForLog(problem.field) } : {}) }, "request refused");
    if (unreadLargeBody(request)) reply.header("connection", "close");
    return reply.status(problem.status).headers(headers).send(JSON.stringify(problem));
  });
  // Which routes exist is for key holders only: without a valid key, an unknown path is a 401 too (see the onRequest hook).
  app.setNotFoundHandler(async (request, reply) => {
    const { problem, headers } = toProblem(Object.assign(new Error(`no route ${request.method} ${request.url}`), { statusCode: 404 }), request.url);
    return reply.status(404).headers(headers).send(JSON.stringify(problem));
  });

  const routes: RouteSpec[] = [
    // A route for a feature this deployment has not configured (answers without a chat model) is
    // not served at all: absent from the OpenAPI document, 404 like any unknown path.
    ...tenantRoutes.filter((r) => r.servedWhen?.(bh) ?? true),
    ...adminRoutes,
    route({
      method: "GET",
      url: "/admin/readiness",
      access: "admin",
      tag: "admin",
      summary: "The production checklist, run now as live checks (database, isolation, capacity, costs, performance, HTTP)",
      query: readinessQuery,
      handler: ({ query }) => app.readiness({ probeTenants: query.probe?.split(",") as [string, string] | undefined, sampleTenant: query.sample }),
    }),
    route({ method: "GET", url: "/healthz", access: "none", tag: "service", summary: "Liveness: the process answers", handler: async () => ({ status: "ok" }) }),
    route({
      method: "GET",
      url: "/readyz",
      access: "none",
      tag: "service",
      summary: "Readiness: the database answers (503 otherwise)",
      handler: async ({ bh: b }) => {
        await b.registry.getNamespaceUsage();
        return { status: "ready" };
      },
    }),
    route({
      method: "GET",
      url: "/metrics",
      access: "admin",
      tag: "service",
      summary: "Prometheus metrics (per-tenant operations, quotas, HTTP)",
      produces: "text/plain; version=0.0.4",
      handler: async ({ reply }) => {
        reply.type(registry.contentType);
        return bh.monitor.metricsText();
      },
    }),
    route({ method: "GET", url: "/openapi.json", access: "any", tag: "service", summary: "This API as an OpenAPI 3.1 document", handler: async () => openapi }),
  ];
  const openapi = buildOpenApi(routes);
  app.decorate("readiness", (o: ReadinessOptions = {}) => runServiceReadiness(bh, app, registered, tap, o));

  for (const spec of routes) {
    app.route({
      method: spec.method,
      url: spec.url,
      config: { offloadedBody: offloadedBodyName(spec.body) },
      // Authentication runs before the body is read: a caller without a key never gets a large body parsed.
      onRequest: async (request, reply) => {
        if (spec.access === "none") return;
        const key = await authenticate(request);
        if (spec.access === "admin" && key.kind !== "admin") throw new ForbiddenError("this route needs an admin key");
        if (spec.access === "tenant") {
          if (key.kind !== "tenant") throw new ForbiddenError("this route needs a tenant key (admin keys do not act as a tenant)");
          if (spec.scope && !key.scopes.includes(spec.scope)) throw new ForbiddenError(`this key lacks the "${spec.scope}" scope`);
          // A body must say its length: its bytes are charged before it is read (a chunked one could not be).
          if (spec.body && request.headers["content-length"] === undefined && request.headers["transfer-encoding"] !== undefined) {
            throw new BulkheadError("LENGTH_REQUIRED", 411, "send the body with a Content-Length header (a tenant's request bytes are budgeted before its body is read)");
          }
          // The rate limit is decided from the key alone, before the body is read or parsed: a tenant
          // over it is refused with no error object and no log line of its own (see RefusalLog).
          // Then the body's bytes: what parsing, validating and writing it will cost the service.
          const declared = spec.operation ? Number(request.headers["content-length"] ?? 0) : 0;
          const refusal = await bh.dataManager.admitAtDoor(key.tenantId!, spec.operation ?? "report", declared);
          if (refusal) {
            request.refusedEarly = true;
            refusals.count(refusal.tenantId, 429, "RATE_LIMITED");
            // A large body is not read just to keep the connection: the connection is closed instead
            // (reading a flood of 8 MB batches only to discard them cost ~10 ms of CPU each).
            const large = unreadLargeBody(request);
            // A tenant that ignored its Retry-After, or whose large body is refused (a closed-loop client
            // would be back at once on a new connection): hold the answer (a timer, no work) for the wait left, capped.
            const hold = refusal.repeated || large ? Math.min(refusal.retryAfterMs, bh.config.httpRefusalHoldMs) : 0;
            if (hold > 0) await new Promise((resolve) => setTimeout(resolve, hold));
            const { body, headers } = rateLimitProblem({ ...refusal, retryAfterMs: Math.max(1, refusal.retryAfterMs - hold) }, request.url);
            if (large) reply.header("connection", "close");
            return reply.code(429).headers(headers).send(body);
          }
          request.admittedAtDoor = true;
        }
        request.apiKey = key;
        const fields = key.kind === "tenant" ? { tenant_id: key.tenantId, key_id: key.keyId } : { admin_key_id: key.keyId };
        request.log = request.log.child(fields);
        reply.log = request.log;
      },
      handler: async (request, reply) => {
        const key = request.apiKey;
        const input = parseInput(spec, request, key);
        reply.status(spec.status ?? 200); // before the handler, which may answer otherwise (202 for a move begun)
        const run = () => spec.handler({ bh, key, tenantId: key?.tenantId ?? "", actor: key ? `${key.kind}:${key.keyId}` : "anonymous", ...input, request, reply } as never);
        // Its rate-limit point was spent at the door: the data operation must not spend another.
        return request.admittedAtDoor ? withDoorAdmission(key!.tenantId!, run) : run();
      },
    });
  }
  // The operator's dashboard: its own form parser, errors and headers, so it is registered apart.
  await app.register(async (scope) => dashboardRoutes(scope, { bh, routes, verifyKey, failures, readiness: () => app.readiness() }));
  return app;
}

/**
 * A request refused before its body was read whose body is large or of unknown length: its
 * connection is closed with the answer rather than kept, which would have Node read and discard
 * the body (an anonymous client streamed 1 GB in 4 s into a connection after its 401).
 */
function unreadLargeBody(request: FastifyRequest): boolean {
  if (request.raw.complete) return false;
  const declared = request.headers["content-length"];
  return declared === undefined ? request.headers["transfer-encoding"] !== undefined : Number(declared) >= OFFLOAD_BYTES;
}

/** The key from `Authorization: Bearer …` (the scheme is case-insensitive, RFC 9110) or `X-API-Key`. */
function bearer(request: FastifyRequest): string | undefined {
  const auth = request.headers.authorization;
  if (typeof auth === "string" && /^bearer /i.test(auth)) return auth.slice(7).trim();
  const header = request.headers["x-api-key"];
  return typeof header === "string" ? header : undefined;
}
