import { z } from "zod";
import type { RouteSpec } from "./route-spec.js";
import { problemSchema } from "./schemas.js";

const ERROR_STATUSES: Record<string, string> = {
  "400": "Invalid input (problem+json names the field)",
  "401": "No valid API key",
  "403": "The key may not do this",
  "404": "Not found",
  "413": "Request body too large",
  "429": "Rate limit, quota or concurrency limit (Retry-After)",
  "503": "Database unavailable (Retry-After)",
};

const json = (schema: z.ZodType) => z.toJSONSchema(schema, { target: "draft-2020-12", unrepresentable: "any" });

/** The OpenAPI 3.1 document, generated from the route table and its zod schemas. */
export function buildOpenApi(routes: readonly RouteSpec[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z]+)/g, "{$1}");
    const parameters: unknown[] = [];
    for (const [where, schema] of [["path", r.params], ["query", r.query]] as const) {
      if (!schema) continue;
      const s = json(schema) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, prop] of Object.entries(s.properties ?? {})) parameters.push({ name, in: where, required: where === "path" || (s.required ?? []).includes(name), schema: prop });
    }
    const responses: Record<string, unknown> = {
      [String(r.status ?? 200)]: { description: "Success", content: { [r.produces ?? "application/json"]: { schema: {} } } },
    };
    for (const [status, description] of Object.entries(ERROR_STATUSES)) {
      if (r.access === "none" && (status === "401" || status === "403")) continue;
      responses[status] = { description, content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } } };
    }
    (paths[path] ??= {})[r.method.toLowerCase()] = {
      summary: r.summary,
      tags: [r.tag],
      operationId: `${r.method.toLowerCase()}${path.replace(/[{}]/g, "").replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ""))}`,
      ...(r.access === "none" ? { security: [] } : {}),
      ...(r.scope ? { description: `Needs a tenant key with the "${r.scope}" scope.` } : r.access === "admin" ? { description: "Needs an admin key." } : {}),
      ...(parameters.length ? { parameters } : {}),
      ...(r.body ? { requestBody: { required: true, content: { "application/json": { schema: json(r.body) } } } } : {}),
      responses,
    };
  }
  return {
    openapi: "3.1.0",
    info: { title: "Bulkhead", version: "0.1.0", description: "Tenant isolation for multi-tenant RAG. The tenant of a /v1 call is always the key's." },
    servers: [{ url: "/" }],
    security: [{ apiKey: [] }],
    components: {
      securitySchemes: { apiKey: { type: "http", scheme: "bearer", description: "bh_tenant_… (tenant routes) or bh_admin_… (admin routes)" } },
      schemas: { Problem: json(problemSchema) },
    },
    paths,
  };
}
