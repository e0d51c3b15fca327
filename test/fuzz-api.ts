import http from "node:http";
import { Prng } from "./fuzz-prng.js";

/**
 * The API fuzzer: reads the service's own OpenAPI document and, for every operation in it, sends
 * seeded schema-violating and edge-case requests — wrong types, out-of-range numbers, NUL and lone
 * surrogates, huge strings and arrays, extra and `__proto__` properties, deep nesting, long path
 * parameters, broken JSON, wrong content types, the wrong kind of key — and checks the contract
 * every answer must keep: never a 5xx, and every 4xx an RFC 9457 problem+json carrying a `code`.
 * Failures are grouped by (operation, input class, status, code) and each group keeps one exact
 * request, so a report lists distinct defects rather than thousands of requests.
 */

type Schema = {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: Schema | boolean;
  items?: Schema;
  enum?: unknown[];
  anyOf?: Schema[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
};

export interface Operation {
  method: string;
  path: string;
  /** `none`, `any`, `tenant` or `admin`, read from the document's security and descriptions. */
  access: "none" | "any" | "tenant" | "admin";
  scope?: "read" | "write";
  pathParams: { name: string; schema: Schema }[];
  queryParams: { name: string; schema: Schema; required: boolean }[];
  body?: Schema;
}

/** Every operation of an OpenAPI document. */
export function operationsOf(doc: { paths: Record<string, Record<string, Record<string, any>>> }): Operation[] {
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, o] of Object.entries(methods)) {
      const params = (o.parameters ?? []) as { name: string; in: string; required?: boolean; schema: Schema }[];
      const description = String(o.description ?? "");
      const scope = /"(read|write)" scope/.exec(description)?.[1] as "read" | "write" | undefined;
      ops.push({
        method: method.toUpperCase(),
        path,
        access: Array.isArray(o.security) && o.security.length === 0 ? "none" : scope ? "tenant" : /admin key/.test(description) ? "admin" : "any",
        scope,
        pathParams: params.filter((p) => p.in === "path").map((p) => ({ name: p.name, schema: p.schema })),
        queryParams: params.filter((p) => p.in === "query").map((p) => ({ name: p.name, schema: p.schema, required: !!p.required })),
        body: o.requestBody?.content?.["application/json"]?.schema,
      });
    }
  }
  return ops;
}

/** What the runner needs from the test: keys and live values to build valid baselines from. */
export interface FuzzContext {
  keys: { admin: string; tenant: string; tenantReadOnly: string; revoked: string };
  /** The tenant of `keys.tenant`. */
  tenantId: string;
  dimension: number;
  /** A value for a path parameter of this operation (a throwaway tenant for admin routes, a live key id). */
  pathValue(op: Operation, name: string): string;
  /** A fresh tenant id for registration. */
  freshTenantId(): string;
  /** Called after a 2xx, so that the test can replace what a destructive route used up. */
  after?(op: Operation, url: string, status: number): Promise<void>;
  /**
   * Operations whose valid requests are slow by design (the readiness checklist, reports, metrics):
   * most of their requests that would be valid are made invalid instead, so the run stays short.
   */
  heavy?: readonly string[];
  /** Called before each operation's requests (the test restores its throwaway tenants there). */
  before?(op: Operation): Promise<void>;
}

export interface FuzzRequest {
  inputClass: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: Buffer;
}

/** One kind of failure of one operation: same status, problem code and broken rule. */
export interface DistinctFailure {
  operation: string;
  status: number;
  code: string;
  what: string;
  count: number;
  /** Input classes that produced it (the first few), each with one exact request. */
  inputs: { inputClass: string; method: string; url: string; headers: Record<string, string>; body: string; response: string }[];
}

export interface ApiFuzzReport {
  operations: number;
  requests: number;
  perOperation: Record<string, { requests: number; statuses: Record<string, number>; ms: number }>;
  statuses: Record<string, number>;
  failures: DistinctFailure[];
  durationMs: number;
}

const MB = "x".repeat(1 << 20);
/** Hostile values, by class; each is JSON-serialisable (lone surrogates are escaped by JSON.stringify, NUL as \u0000). */
const HOSTILE: [string, () => unknown][] = [
  ["1e308", () => 1e308],
  ["-1e308", () => -1e308],
  ["2^31", () => 2 ** 31],
  ["2^53+2", () => 2 ** 53 + 2],
  ["10^15", () => 1e15],
  ["-1", () => -1],
  ["0", () => 0],
  ["0.5", () => 0.5],
  ["5e-324", () => 5e-324],
  ["'NaN'", () => "NaN"],
  ["'Infinity'", () => "Infinity"],
  ["'12'", () => "12"],
  ["''", () => ""],
  ["NUL", () => "a\u0000b"],
  ["lone-surrogate", () => "\ud800"],
  ["lone-low-surrogate", () => "x\udfffy"],
  ["1MB-string", () => MB],
  ["300-chars", () => "a".repeat(300)],
  ["unicode", () => "ドキュメント😀\u202e"],
  ["sql", () => "'; DROP TABLE tenants; --"],
  ["true", () => true],
  ["null", () => null],
  ["{}", () => ({})],
  ["[]", () => []],
  ["[[1]]", () => [[1]]],
  ["10k-numbers", () => Array.from({ length: 10_000 }, (_, i) => i / 7)],
  ["10k-strings", () => Array.from({ length: 10_000 }, (_, i) => `s${i}`)],
  ["10k-NUL-strings", () => Array.from({ length: 10_000 }, () => "\u0000")],
  ["__proto__-object", () => withKey({}, "__proto__", { polluted: true })],
  ["constructor-object", () => ({ constructor: { prototype: { polluted: true } } })],
  ["deep-100", () => deep(100)],
  ["deep-1000", () => deep(1000)], // deeper bodies are sent raw (raw:deep-*-10000): JSON.stringify would overflow here first
];
/** Text PostgreSQL cannot store: NUL (text and jsonb) and unpaired UTF-16 surrogates. */
const UNSTORABLE: [string, string][] = [
  ["NUL", "\u0000"],
  ["lone-surrogate", "\ud800"],
  ["lone-low-surrogate", "\udfff"],
  ["escaped-NUL-text", "\\u0000"], // the six characters \u0000: storable, must not be taken for NUL
];
/** Numbers at the edges of integer columns, doubles and float32. */
const EXTREME_NUMBERS: [string, number][] = [
  ["1e308", 1e308],
  ["-1e308", -1e308],
  ["2^31", 2 ** 31],
  ["2^31-1", 2 ** 31 - 1],
  ["2^63", 2 ** 63],
  ["2^53+2", 2 ** 53 + 2],
  ["10^15", 1e15],
  ["-1", -1],
  ["0", 0],
  ["0.5", 0.5],
  ["3.5e38", 3.5e38],
];
const HOSTILE_KEYS: [string, string][] = [
  ["extra", "unexpected"],
  ["__proto__", "__proto__"],
  ["constructor", "constructor"],
  ["NUL-key", "k\u0000ey"],
  ["surrogate-key", "k\ud800"],
  ["300-char-key", "k".repeat(300)],
  ["100k-char-key", "k".repeat(100_000)],
  ["$op-key", "$where"],
  ["empty-key", ""],
  ["tenant_id", "tenant_id"],
];
/** Path parameter values (already percent-encoded). */
const HOSTILE_PATH: [string, string][] = [
  ["101-chars", "a".repeat(101)],
  ["300-chars", "a".repeat(300)],
  ["5000-chars", "a".repeat(5000)],
  ["NUL", "a%00b"],
  ["lone-surrogate(invalid-utf8)", "a%ED%A0%80"],
  ["invalid-percent", "a%zz"],
  ["encoded-slash", "a%2Fb"],
  ["dot-dot", ".."],
  ["unicode", encodeURIComponent("ドキュメント")],
  ["upper-case", "TENANT-A"],
  ["sql", encodeURIComponent("a'; DROP TABLE tenants; --")],
  ["nonexistent-valid", "zz-no-such-tenant"],
  ["hex-16-unknown", "0123456789abcdef"],
];

function withKey<T extends object>(obj: T, key: string, value: unknown): T {
  // defineProperty, so that "__proto__" becomes an own, serialised key rather than the prototype.
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  return obj;
}
function deep(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = i % 2 ? [v] : { a: v };
  return v;
}
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const truncate = (s: string, n = 300) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);

/** A valid value for a schema, with live values for the fields the schema cannot describe (vector length, ids). */
function validValue(schema: Schema | undefined, name: string, ctx: FuzzContext, op: Operation, rng: Prng): unknown {
  const vector = () => Array.from({ length: ctx.dimension }, () => Math.round(rng.next() * 1000) / 1000 + 0.001);
  switch (name) {
    case "vector":
    case "values":
      return vector();
    case "ids":
      return rng.sample(["doc-1", "doc-2", "doc-3", "nope"], rng.int(1, 3));
    case "id":
      return `doc-${rng.int(1, 5)}`;
    case "tenantId":
      return op.path === "/admin/tenants" ? ctx.freshTenantId() : ctx.tenantId;
    case "period":
      return "2026-11";
    case "dimension":
      return ctx.dimension;
    case "store":
      return "home";
    case "index":
      return undefined;
    case "probe":
    case "sample":
      return undefined; // the readiness checklist with probes is slow and covered elsewhere
    case "metadata":
      return { category: rng.pick(["a", "b"]), n: rng.int(0, 9), tags: ["x"] };
    case "filter":
      return rng.pick([{ category: "a" }, { n: { $gte: 3 } }, { $or: [{ category: "a" }, { tags: { $in: ["x"] } }] }]);
    case "basis":
      return rng.pick(["equal", "queries", { [ctx.tenantId]: 1 }]);
    case "topK":
      return rng.int(1, 20);
    case "embedTokens":
      return rng.int(0, 1000);
    case "vectorsPerSecond":
      return rng.chance(0.3) ? null : rng.int(1, 1000);
    case "batchSize":
      return rng.int(1, 1000);
    case "total":
      return 100;
    case "limit":
      return rng.int(1, 50);
  }
  if (!schema) return undefined;
  if (schema.enum) return rng.pick(schema.enum);
  if (schema.anyOf) return validValue(rng.pick(schema.anyOf), name, ctx, op, rng);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case "string":
      return schema.pattern?.includes("a-z0-9") ? "fz-value" : "fuzz";
    case "integer":
    case "number":
      return Math.max(schema.minimum ?? 1, 1);
    case "boolean":
      return true;
    case "null":
      return null;
    case "array":
      return [validValue(schema.items, name.replace(/s$/, ""), ctx, op, rng)].filter((x) => x !== undefined);
    case "object": {
      const out: Record<string, unknown> = {};
      for (const [key, prop] of Object.entries(schema.properties ?? {})) {
        if (!(schema.required ?? []).includes(key) && rng.chance(0.5)) continue;
        if (op.access === "tenant" && key === "tenantId" && rng.chance(0.7)) continue;
        const v = validValue(prop, key, ctx, op, rng);
        if (v !== undefined) out[key] = v;
      }
      if (name === "documents" || (schema.properties?.id && schema.properties?.values)) out.metadata ??= validValue(undefined, "metadata", ctx, op, rng);
      return out;
    }
  }
  return undefined;
}

/** Every place in a JSON tree, as a path of keys/indices, with a printable pattern (indices as []). */
function places(value: unknown, path: (string | number)[] = [], out: { path: (string | number)[]; container: boolean }[] = []) {
  if (Array.isArray(value)) {
    out.push({ path, container: true });
    value.slice(0, 2).forEach((v, i) => places(v, [...path, i], out));
  } else if (isObject(value)) {
    out.push({ path, container: true });
    for (const [k, v] of Object.entries(value)) places(v, [...path, k], out);
  } else out.push({ path, container: false });
  return out;
}
const pattern = (path: (string | number)[]) => "body" + path.map((p) => (typeof p === "number" ? "[]" : `.${p}`)).join("");
function setAt(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  let node = root as Record<string | number, unknown>;
  for (const p of path.slice(0, -1)) node = node[p] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (last === "__proto__") withKey(node, "__proto__", value);
  else node[last] = value;
  return root;
}
function deleteAt(root: unknown, path: (string | number)[]): void {
  let node = root as Record<string | number, unknown>;
  for (const p of path.slice(0, -1)) node = node[p] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (Array.isArray(node)) node.splice(last as number, 1);
  else delete node[last];
}

/** One generated request for `op`. */
export function generate(op: Operation, ctx: FuzzContext, rng: Prng): FuzzRequest {
  const classes: string[] = [];
  const properKey = op.access === "tenant" ? ctx.keys.tenant : op.access === "none" ? undefined : ctx.keys.admin;
  const headers: Record<string, string> = properKey ? { authorization: `Bearer ${properKey}` } : {};

  // Path and query: valid unless mutated below.
  const pathValues: Record<string, string> = {};
  for (const p of op.pathParams) pathValues[p.name] = encodeURIComponent(ctx.pathValue(op, p.name));
  const query: [string, string][] = [];
  for (const q of op.queryParams) {
    if (!q.required && rng.chance(0.5)) continue;
    const v = validValue(q.schema, q.name, ctx, op, rng);
    if (v !== undefined) query.push([q.name, encodeURIComponent(String(v))]);
  }
  let body: unknown = op.body ? validValue(op.body, "", ctx, op, rng) : undefined;
  let raw: Buffer | undefined;
  let contentType: string | undefined = op.body ? "application/json" : undefined;

  const strategies = ["valid", "auth", "headers", "headers", "query-extra", "method", ...(op.pathParams.length ? ["path", "path"] : []), ...(op.queryParams.length ? ["query", "query"] : [])];
  // "text" and "number" aim at what PostgreSQL cannot store or a bigint cannot hold, in the fields that are there.
  if (op.body) strategies.push("replace", "replace", "replace", "replace", "text", "text", "text", "number", "number", "key", "key", "delete", "raw", "raw");
  else strategies.push("raw-on-bodyless", "query-extra");
  const rounds = rng.chance(0.15) ? 2 : 1;
  let method = op.method;
  const heavy = ctx.heavy?.includes(`${op.method} ${op.path}`);
  for (let r = 0; r < rounds; r++) {
    let s = rng.pick(strategies);
    // A heavy operation answers few requests in full: the rest get an invalid query, or a refused key if it takes no query.
    if (heavy && ["valid", "headers", "raw-on-bodyless", "query-extra"].includes(s) && rng.chance(0.92)) s = op.queryParams.length ? "query" : "auth";
    switch (s) {
      case "valid":
        classes.push("valid");
        break;
      case "auth": {
        const choice = rng.pick(["none", "garbage", "lowercase-bearer", "wrong-kind", "read-only", "revoked", "x-api-key-NUL", "huge-key"] as const);
        classes.push(`auth:${choice}`);
        if (choice === "none") delete headers.authorization;
        else if (choice === "garbage") headers.authorization = "Bearer bh_tenant_zzzz_zzzz";
        else if (choice === "lowercase-bearer") headers.authorization = `bearer ${properKey ?? ctx.keys.admin}`;
        else if (choice === "wrong-kind") headers.authorization = `Bearer ${op.access === "tenant" ? ctx.keys.admin : ctx.keys.tenant}`;
        else if (choice === "read-only") headers.authorization = `Bearer ${ctx.keys.tenantReadOnly}`;
        else if (choice === "revoked") headers.authorization = `Bearer ${ctx.keys.revoked}`;
        else if (choice === "x-api-key-NUL") {
          delete headers.authorization;
          headers["x-api-key"] = "bh_admin_%00"; // a header cannot carry a raw NUL: the closest a client can send
        } else headers.authorization = `Bearer ${"k".repeat(8000)}`;
        break;
      }
      case "headers": {
        const choice = rng.pick(["text/plain", "form", "json-latin1", "json-utf16", "gzip-encoding", "no-content-type", "x-request-id-long", "x-request-id-odd", "accept-xml"] as const);
        classes.push(`header:${choice}`);
        if (choice === "text/plain") contentType = "text/plain";
        else if (choice === "form") contentType = "application/x-www-form-urlencoded";
        else if (choice === "json-latin1") contentType = "application/json; charset=latin1";
        else if (choice === "json-utf16") contentType = "application/json; charset=utf-16";
        else if (choice === "gzip-encoding") headers["content-encoding"] = "gzip"; // the body is not gzip
        else if (choice === "no-content-type") contentType = undefined;
        else if (choice === "x-request-id-long") headers["x-request-id"] = "r".repeat(5000);
        else if (choice === "x-request-id-odd") headers["x-request-id"] = "%00\u00e9;drop";
        else headers.accept = "application/xml";
        break;
      }
      case "method": {
        // Another method on the same path (HEAD is left out: its answers carry no body to check).
        method = rng.pick(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"].filter((m) => m !== op.method));
        classes.push(`method:${method}`);
        if (!op.body && method !== "GET") body = { unexpected: true };
        break;
      }
      case "path": {
        const p = rng.pick(op.pathParams);
        const [cls, value] = rng.pick(HOSTILE_PATH);
        classes.push(`path.${p.name}=${cls}`);
        pathValues[p.name] = value;
        break;
      }
      case "query": {
        const q = rng.pick(op.queryParams);
        const choice = rng.pick(["hostile", "repeated", "empty"] as const);
        const filtered = query.filter(([n]) => n !== q.name);
        if (choice === "hostile") {
          const [cls, make] = rng.pick(HOSTILE.filter(([c]) => !/10k|deep|object|\[/.test(c)));
          const v = make();
          classes.push(`query.${q.name}=${cls}`);
          const text = typeof v === "string" ? v : JSON.stringify(v);
          filtered.push([q.name, /[\ud800-\udfff]/.test(text) ? "%ED%A0%80" : encodeURIComponent(text)]);
        } else if (choice === "repeated") {
          classes.push(`query.${q.name}=repeated`);
          filtered.push([q.name, "1"], [q.name, "2"]);
        } else {
          classes.push(`query.${q.name}=empty`);
          filtered.push([q.name, ""]);
        }
        query.splice(0, query.length, ...filtered);
        break;
      }
      case "query-extra": {
        const choice = rng.pick(["unknown", "__proto__", "constructor", "NUL", "10k-params"] as const);
        classes.push(`query-extra:${choice}`);
        if (choice === "unknown") query.push(["unexpected", "1"]);
        else if (choice === "__proto__") query.push(["__proto__", "x"], ["__proto__[polluted]", "1"]);
        else if (choice === "constructor") query.push(["constructor", "x"]);
        else if (choice === "NUL") query.push(["a%00", "%00"]);
        else for (let i = 0; i < 2000; i++) query.push([`p${i}`, "1"]);
        break;
      }
      case "replace": {
        const all = places(body).filter((p) => p.path.length > 0);
        const target = all.length ? rng.pick(all) : { path: [] as (string | number)[], container: true };
        const [cls, make] = rng.pick(HOSTILE);
        classes.push(`${pattern(target.path)}=${cls}`);
        body = setAt(body, target.path, make());
        break;
      }
      case "text": {
        const all = places(body);
        const at = (p: (string | number)[]) => p.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)[k], body);
        const strings = all.filter((p) => p.path.length > 0 && typeof at(p.path) === "string");
        const objects = all.filter((p) => isObject(at(p.path)));
        const [cls, text] = rng.pick(UNSTORABLE);
        if (strings.length && (rng.chance(0.6) || !objects.length)) {
          const target = rng.pick(strings);
          classes.push(`${pattern(target.path)}=${cls}`);
          body = setAt(body, target.path, rng.chance(0.5) ? text : `${at(target.path)}${text}`);
        } else {
          if (!isObject(body)) body = {};
          const target = objects.length ? rng.pick(objects) : { path: [] as (string | number)[] };
          classes.push(`${pattern(target.path)}+key:${cls}`);
          withKey(at(target.path) as object, `k${text}`, rng.chance(0.5) ? "v" : text);
        }
        break;
      }
      case "number": {
        const all = places(body).filter((p) => p.path.length > 0 && typeof p.path.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)[k], body) === "number");
        if (!all.length) {
          classes.push("valid");
          break;
        }
        const target = rng.pick(all);
        const [cls, value] = rng.pick(EXTREME_NUMBERS);
        classes.push(`${pattern(target.path)}=${cls}`);
        body = setAt(body, target.path, value);
        break;
      }
      case "key": {
        if (!isObject(body)) body = {};
        const containers = places(body).filter((p) => p.container && isObject(p.path.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)[k], body)));
        const target = containers.length ? rng.pick(containers) : { path: [] as (string | number)[] };
        const [cls, key] = rng.pick(HOSTILE_KEYS);
        const [vcls, make] = rng.chance(0.5) ? (["'v'", () => "v"] as [string, () => unknown]) : rng.pick(HOSTILE);
        classes.push(`${pattern(target.path)}+key:${cls}=${vcls}`);
        const node = target.path.reduce<unknown>((n, k) => (n as Record<string | number, unknown>)[k], body) as Record<string, unknown>;
        withKey(node, key, make());
        break;
      }
      case "delete": {
        const all = places(body).filter((p) => p.path.length > 0);
        if (!all.length) {
          classes.push("body={}");
          body = {};
          break;
        }
        const target = rng.pick(all);
        classes.push(`${pattern(target.path)}:missing`);
        deleteAt(body, target.path);
        break;
      }
      case "raw":
      case "raw-on-bodyless": {
        const choice = rng.pick(["empty", "invalid-json", "truncated", "null", "array", "string", "number-1e999", "deep-array-10000", "deep-object-10000", "invalid-utf8", "1MB-string", "10k-array", "__proto__-top", "duplicate-keys", "bom"] as const);
        classes.push(`raw:${choice}`);
        contentType = "application/json";
        const json = (v: string) => Buffer.from(v);
        raw = {
          empty: json(""),
          "invalid-json": json("{not json"),
          truncated: json(JSON.stringify(body ?? {}).slice(0, -1)),
          null: json("null"),
          array: json("[1,2,3]"),
          string: json('"\\u0000\\ud800"'),
          "number-1e999": json("1e999"),
          "deep-array-10000": json("[".repeat(10_000) + "]".repeat(10_000)),
          "deep-object-10000": json('{"a":'.repeat(10_000) + "1" + "}".repeat(10_000)),
          "invalid-utf8": Buffer.concat([json('{"documents":[{"id":"'), Buffer.from([0xff, 0xfe, 0xed, 0xa0, 0x80]), json('","values":[1]}]}')]),
          "1MB-string": json(JSON.stringify(MB)),
          "10k-array": json(JSON.stringify(Array.from({ length: 10_000 }, (_, i) => i))),
          "__proto__-top": json(`{"__proto__":{"polluted":true},${JSON.stringify(body ?? {}).slice(1)}`.replace(/,}$/, "}")),
          "duplicate-keys": json(`{"a":1,"a":2,${JSON.stringify(body ?? {}).slice(1)}`.replace(/,}$/, "}")),
          bom: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json(JSON.stringify(body ?? {}))]),
        }[choice];
        break;
      }
    }
  }
  let url = op.path.replace(/\{([A-Za-z]+)\}/g, (_, n: string) => pathValues[n] ?? "x");
  if (query.length) url += "?" + query.map(([k, v]) => `${encodeURIComponent(k).replace(/%25/g, "%")}=${v}`).join("&");
  const payload = raw ?? (body !== undefined && method !== "GET" ? Buffer.from(JSON.stringify(body)) : undefined);
  if (payload && (contentType ?? (method !== op.method ? "application/json" : undefined))) headers["content-type"] = contentType ?? "application/json";
  return { inputClass: classes.join(" & "), method, url, headers, body: payload };
}

/** Sends one request over keep-alive; the answer's status, content type and body text. */
function send(base: URL, agent: http.Agent, req: FuzzRequest): Promise<{ status: number; contentType: string; text: string }> {
  return new Promise((resolve) => {
    const r = http.request({ host: base.hostname, port: base.port, method: req.method, path: req.url, headers: { ...req.headers, ...(req.body ? { "content-length": String(req.body.length) } : {}) }, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers["content-type"] ?? ""), text: Buffer.concat(chunks).toString() }));
      res.on("error", (err) => resolve({ status: 0, contentType: "", text: `response error: ${err.message}` }));
    });
    r.on("error", (err) => resolve({ status: 0, contentType: "", text: `no answer: ${err.message}` }));
    r.setTimeout(30_000, () => r.destroy(new Error("timed out after 30 s")));
    if (req.body) r.write(req.body);
    r.end();
  });
}

/** Fuzzes every operation of the document with `perOperation` requests each. */
export async function runApiFuzz(baseUrl: string, doc: Parameters<typeof operationsOf>[0], ctx: FuzzContext, options: { seed: number; perOperation: number; concurrency?: number; log?: (line: string) => void }): Promise<ApiFuzzReport> {
  const started = Date.now();
  const base = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency ?? 4 });
  // Registration runs last: the tenants it creates would slow every listing and report after it.
  const ops = operationsOf(doc).sort((a, b) => Number(a.method === "POST" && a.path === "/admin/tenants") - Number(b.method === "POST" && b.path === "/admin/tenants"));
  const report: ApiFuzzReport = { operations: ops.length, requests: 0, perOperation: {}, statuses: {}, failures: [], durationMs: 0 };
  const distinct = new Map<string, DistinctFailure>();
  try {
    for (const [i, op] of ops.entries()) {
      const name = `${op.method} ${op.path}`;
      const rng = new Prng(options.seed + i * 7919); // one stream per operation: adding an operation does not reshuffle the others
      const stats = (report.perOperation[name] = { requests: 0, statuses: {} as Record<string, number>, ms: 0 });
      const opStarted = Date.now();
      await ctx.before?.(op);
      const queue = Array.from({ length: options.perOperation }, () => generate(op, ctx, rng));
      const worker = async () => {
        for (let req = queue.shift(); req; req = queue.shift()) {
          let res = await send(base, agent, req);
          // A keep-alive socket the server closed after the previous request (e.g. after a 431) resets: that is the client's reuse, not an answer.
          if (res.status === 0) res = await send(base, new http.Agent({ keepAlive: false }), req);
          stats.requests++;
          report.requests++;
          stats.statuses[res.status] = (stats.statuses[res.status] ?? 0) + 1;
          report.statuses[res.status] = (report.statuses[res.status] ?? 0) + 1;
          let problem: { code?: unknown } | undefined;
          try {
            problem = JSON.parse(res.text);
          } catch {
            /* not JSON */
          }
          const code = typeof problem?.code === "string" ? problem.code : "-";
          let what: string | undefined;
          if (res.status === 0) what = "no answer";
          else if (res.status >= 500) what = "server error";
          else if (res.status >= 400 && !res.contentType.includes("application/problem+json")) what = `4xx not problem+json (${res.contentType || "no content type"})`;
          else if (res.status >= 400 && code === "-") what = "4xx problem without a code";
          if (what) {
            const key = `${name}|${res.status}|${code}|${what}`;
            const group = distinct.get(key) ?? { operation: name, status: res.status, code, what, count: 0, inputs: [] };
            distinct.set(key, group);
            group.count++;
            if (group.inputs.length < 6 && !group.inputs.some((i) => i.inputClass === req.inputClass)) {
              group.inputs.push({
                inputClass: req.inputClass,
                method: req.method,
                url: truncate(req.url, 300),
                headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, truncate(v, 80)])),
                body: truncate(req.body?.toString() ?? "", 300),
                response: truncate(res.text, 300),
              });
            }
          }
          if (res.status >= 200 && res.status < 300) await ctx.after?.(op, req.url, res.status);
        }
      };
      await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
      stats.ms = Date.now() - opStarted;
      options.log?.(`${name}: ${stats.requests} requests in ${stats.ms} ms`);
    }
  } finally {
    agent.destroy();
  }
  report.failures = [...distinct.values()];
  report.durationMs = Date.now() - started;
  return report;
}

/** The summary printed by the test: operations × requests, the status histogram, then each distinct failure. */
export function summarize(label: string, report: ApiFuzzReport): string {
  const hist = (h: Record<string, number>) => Object.entries(h).sort(([a], [b]) => Number(a) - Number(b)).map(([s, n]) => `${s}:${n}`).join(" ");
  const lines = [
    `API fuzz ${label}: ${report.operations} operations × ${Math.round(report.requests / Math.max(report.operations, 1))} requests = ${report.requests} in ${(report.durationMs / 1000).toFixed(1)} s; statuses ${hist(report.statuses)}`,
    ...Object.entries(report.perOperation).map(([op, s]) => `  ${op.padEnd(40)} ${String(s.requests).padStart(4)} ${String(s.ms).padStart(6)} ms  ${hist(s.statuses)}`),
  ];
  if (report.failures.length) {
    // The same defect usually shows on many operations: one line per defect first, then the details.
    const byDefect = new Map<string, string[]>();
    for (const f of report.failures) {
      const key = `${f.status} ${f.code} (${f.what})`;
      byDefect.set(key, [...(byDefect.get(key) ?? []), f.operation]);
    }
    lines.push(`${byDefect.size} distinct defects:`);
    for (const [defect, ops] of byDefect) lines.push(`  ✗ ${defect} on ${ops.length} operations: ${ops.join(", ")}`);
    lines.push(`${report.failures.length} distinct failures (operation → status, code, broken rule; input classes with one exact request each):`);
    for (const f of report.failures) {
      lines.push(`  ✗ ${f.operation} → ${f.status} ${f.code} (${f.what}) ×${f.count}`);
      for (const i of f.inputs) lines.push(`      [${i.inputClass}] ${i.method} ${i.url}${i.body ? `  body: ${i.body}` : ""}\n        answer: ${i.response}`);
    }
  }
  return lines.join("\n");
}
