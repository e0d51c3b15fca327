import type { FastifyReply, FastifyRequest } from "fastify";
import type { z } from "zod";
import type { Bulkhead } from "../bulkhead.js";
import type { Operation } from "../limits/performance-gate.js";
import type { ApiKeyInfo, Scope } from "../tenancy/api-keys.js";

/** Who may call a route: nobody needs a key (`none`), any valid key, a tenant key, or an admin key. */
export type Access = "none" | "any" | "tenant" | "admin";

/** What a handler receives: parsed input and the caller, already authenticated and authorised. */
export interface RouteContext<B = unknown, Q = unknown, P = unknown> {
  bh: Bulkhead;
  /** The caller's key (null on `none` routes). */
  key: ApiKeyInfo | null;
  /** The tenant of a tenant key: the only tenant a tenant route can ever act on. */
  tenantId: string;
  /** Who to write into the audit log: `admin:<key id>` (or `tenant:<key id>`). */
  actor: string;
  body: B;
  query: Q;
  params: P;
  request: FastifyRequest;
  reply: FastifyReply;
}

/**
 * One route, declared once: registration, authentication, input parsing, the OpenAPI document and
 * the readiness check that every keyed route refuses a request without a key all read this table.
 */
export interface RouteSpec {
  method: "GET" | "POST" | "PUT" | "DELETE";
  url: string;
  access: Access;
  /** Tenant routes: the scope the key must have. */
  scope?: Scope;
  /**
   * Tenant routes that run a data operation: a tenant already over its rate limit is refused from
   * its key alone, before the body is read.
   */
  operation?: Operation;
  summary: string;
  tag: "tenant" | "admin" | "service";
  body?: z.ZodType;
  query?: z.ZodType;
  params?: z.ZodType;
  /** Status of a successful answer (200 unless given). */
  status?: number;
  /** Content type of a successful answer (JSON unless given). */
  produces?: string;
  handler(ctx: RouteContext<any, any, any>): Promise<unknown>;
  /** Served only when this says so (a feature the deployment may leave unconfigured); always when absent. */
  servedWhen?(bh: Bulkhead): boolean;
}

/** Declares a route with typed input. */
export function route<B = undefined, Q = undefined, P = undefined>(
  spec: Omit<RouteSpec, "handler" | "body" | "query" | "params"> & {
    body?: z.ZodType<B>;
    query?: z.ZodType<Q>;
    params?: z.ZodType<P>;
    handler(ctx: RouteContext<B, Q, P>): Promise<unknown>;
  },
): RouteSpec {
  return spec as RouteSpec;
}
