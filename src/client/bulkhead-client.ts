/**
 * A typed client of Bulkhead's HTTP API (`bulkhead/client`): fetch only, no other dependency, for
 * applications that talk to a running service with a tenant key (their tenant's data, text,
 * search and answers) or an admin key (tenants, keys, moves, capacity, costs). The tenant is
 * always the key's: nothing here names one for a tenant call. Every route it calls is checked
 * against the service's `/openapi.json` in the tests.
 *
 * @example
 * const acme = new BulkheadClient({ baseUrl: "http://127.0.0.1:8080", key: process.env.ACME_KEY! });
 * await acme.ingestText([{ id: "handbook", format: "markdown", text: "# Install\n\nRun npm ci." }]);
 * const { matches } = await acme.search("install");
 */

/** A refusal or failure the service answered (RFC 9457 problem+json), with its stable code. */
export class BulkheadHttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The input field a 400 names, e.g. `documents[0].text`. */
    readonly field?: string,
    /** How long to wait before retrying a 429 or 503, when the service said. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = "BulkheadHttpError";
  }
}

export interface ClientOptions {
  /** The service's base URL, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** A tenant key (`bh_…`) or an admin key (`bh_admin_…`). */
  key: string;
  /** Deadline of each call, in ms (default 60 s). */
  timeoutMs?: number;
  /** The fetch to use (default the global one). */
  fetch?: typeof fetch;
}

type Filter = Record<string, unknown>;
type Match = { id: string; score: number; metadata: Record<string, unknown> };
export type TextMatch = { documentId: string; position: number; section: string | null; text: string; metadata: Record<string, unknown>; score: number; retrievers: ("fulltext" | "vector")[] };
export type TextAnswer = { answer: string; citations: { source: number; documentId: string; position: number }[]; sources: TextMatch[]; model: string; usage: { inputTokens: number; outputTokens: number; estimated: boolean } };
export type TextJob = { jobId: string; status: "running" | "done" | "failed"; documents: number; done: number; chunks: number; error: string | null; createdAt: string; updatedAt: string };
export type AnswerEvent = { type: "sources"; sources: TextMatch[] } | { type: "delta"; text: string };
type SearchOptions = { topK?: number; filter?: Filter; weights?: { fulltext?: number; vector?: number } };

/** Every route the client calls, as `METHOD /path/{param}` — what the tests check against `/openapi.json`. */
export const CLIENT_ROUTES = [
  "POST /v1/documents",
  "POST /v1/query",
  "POST /v1/documents/fetch",
  "POST /v1/documents/delete",
  "POST /v1/documents/text",
  "GET /v1/documents/text",
  "POST /v1/documents/text/delete",
  "POST /v1/documents/text/jobs",
  "GET /v1/jobs/{jobId}",
  "POST /v1/search",
  "POST /v1/answer",
  "GET /v1/usage",
  "GET /v1/costs",
  "POST /admin/tenants",
  "GET /admin/tenants",
  "GET /admin/tenants/{tenantId}",
  "DELETE /admin/tenants/{tenantId}",
  "POST /admin/tenants/{tenantId}/tier",
  "POST /admin/tenants/{tenantId}/suspend",
  "POST /admin/tenants/{tenantId}/resume",
  "PUT /admin/tenants/{tenantId}/quota",
  "POST /admin/tenants/{tenantId}/move",
  "GET /admin/tenants/{tenantId}/series",
  "GET /admin/tenants/{tenantId}/keys",
  "POST /admin/tenants/{tenantId}/keys",
  "GET /admin/keys",
  "POST /admin/keys",
  "POST /admin/keys/{keyId}/rotate",
  "DELETE /admin/keys/{keyId}",
  "GET /admin/moves",
  "GET /admin/moves/{tenantId}",
  "POST /admin/moves/{tenantId}/resume",
  "POST /admin/moves/{tenantId}/rollback",
  "PUT /admin/moves/{tenantId}/write-limit",
  "GET /admin/capacity",
  "POST /admin/costs/allocate",
  "GET /admin/costs/report",
  "GET /admin/audit",
  "GET /admin/readiness",
] as const;

export type ClientRoute = (typeof CLIENT_ROUTES)[number];

/** A route with its `{params}` filled in (each encoded) and a query string from the defined entries of `query`. */
function pathOf(route: ClientRoute, params: Record<string, string> = {}, query: Record<string, string | number | undefined> = {}): [string, string] {
  const [method, template] = route.split(" ") as [string, string];
  const path = template.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? ""));
  const qs = Object.entries(query).filter(([, v]) => v !== undefined).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join("&");
  return [method, qs ? `${path}?${qs}` : path];
}

export class BulkheadClient {
  private readonly base: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, "");
    this.fetch = options.fetch ?? fetch;
  }

  // --- tenant key: vectors ---
  upsert(documents: { id: string; values: number[]; metadata?: Record<string, unknown> }[]) {
    return this.call<{ upserted: number; namespace: string; index: string; isolation: string }>("POST /v1/documents", { body: { documents } });
  }
  query(vector: number[], options: { topK?: number; filter?: Filter; embedTokens?: number } = {}) {
    return this.call<{ matches: Match[]; namespace: string; index: string; isolation: string; overheadMs: number; latencyMs: number }>("POST /v1/query", { body: { vector, ...options } });
  }
  fetchDocuments(ids: string[]) {
    return this.call<{ documents: { id: string; values: number[]; metadata: Record<string, unknown> }[] }>("POST /v1/documents/fetch", { body: { ids } });
  }
  /** Deletes by ids, or every document whose metadata matches `{ filter }` (an empty filter is refused, never "all"). */
  deleteDocuments(which: string[] | { filter: Filter }) {
    return this.call<{ deleted: number }>("POST /v1/documents/delete", { body: Array.isArray(which) ? { ids: which } : { filter: which.filter } });
  }
  usage() {
    return this.call<{ tenantId: string; tier: string; quota: Record<string, number>; documents: number; stats: Record<string, unknown> }>("GET /v1/usage");
  }
  costs(period?: string) {
    return this.call<Record<string, unknown>>("GET /v1/costs", { query: { period } });
  }

  // --- tenant key: text ---
  ingestText(documents: { id: string; text: string; format?: "text" | "markdown" | "html"; metadata?: Record<string, unknown> }[]) {
    return this.call<{ documents: number; chunks: number; replaced: number }>("POST /v1/documents/text", { body: { documents } });
  }
  listText(options: { after?: string; limit?: number } = {}) {
    return this.call<{ id: string; format: string; metadata: Record<string, unknown>; chunks: number; characters: number; updatedAt: string }[]>("GET /v1/documents/text", { query: options });
  }
  /** Starts a background ingest of many documents; follow it with `job`. */
  startTextJob(documents: { id: string; text: string; format?: "text" | "markdown" | "html"; metadata?: Record<string, unknown> }[]) {
    return this.call<TextJob>("POST /v1/documents/text/jobs", { body: { documents } });
  }
  job(jobId: string) {
    return this.call<TextJob>("GET /v1/jobs/{jobId}", { params: { jobId } });
  }
  deleteText(ids: string[]) {
    return this.call<{ deleted: number; chunks: number }>("POST /v1/documents/text/delete", { body: { ids } });
  }
  search(query: string, options: SearchOptions = {}) {
    return this.call<{ mode: "fulltext" | "hybrid"; matches: TextMatch[] }>("POST /v1/search", { body: { query, ...options } });
  }
  answer(question: string, options: SearchOptions = {}) {
    return this.call<TextAnswer>("POST /v1/answer", { body: { question, ...options } });
  }

  /** The answer as the service streams it (server-sent events): the sources, the answer in pieces, and the whole answer as the return value. */
  async *answerStream(question: string, options: SearchOptions = {}): AsyncGenerator<AnswerEvent, TextAnswer> {
    const res = await this.send("POST /v1/answer", { body: { question, ...options, stream: true } });
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(part, { stream: true });
      let end: number;
      while ((end = buffered.indexOf("\n\n")) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "null");
        if (event === "sources") yield { type: "sources", sources: data.sources };
        else if (event === "delta") yield { type: "delta", text: data.text };
        else if (event === "done") return data as TextAnswer;
        else if (event === "error") throw new BulkheadHttpError(data.status ?? 502, data.code ?? "STREAM_FAILED", data.detail ?? "the answer failed while it was streamed");
      }
    }
    throw new BulkheadHttpError(502, "STREAM_ENDED", "the answer's stream ended before its done event");
  }

  // --- admin key ---
  readonly admin = {
    registerTenant: (tenant: { tenantId: string; name: string; tier: "free" | "pro" | "enterprise"; quota?: Record<string, number>; dimension?: number; store?: string }) =>
      this.call<Record<string, unknown>>("POST /admin/tenants", { body: tenant }),
    listTenants: (filter: { tier?: string; status?: string } = {}) => this.call<Record<string, unknown>[]>("GET /admin/tenants", { query: filter }),
    getTenant: (tenantId: string) => this.call<Record<string, unknown>>("GET /admin/tenants/{tenantId}", { params: { tenantId } }),
    deleteTenant: (tenantId: string) => this.call<unknown>("DELETE /admin/tenants/{tenantId}", { params: { tenantId } }),
    changeTier: (tenantId: string, tier: "free" | "pro" | "enterprise") => this.call<Record<string, unknown>>("POST /admin/tenants/{tenantId}/tier", { params: { tenantId }, body: { tier } }),
    suspend: (tenantId: string) => this.call<Record<string, unknown>>("POST /admin/tenants/{tenantId}/suspend", { params: { tenantId }, body: {} }),
    resume: (tenantId: string) => this.call<Record<string, unknown>>("POST /admin/tenants/{tenantId}/resume", { params: { tenantId }, body: {} }),
    setQuota: (tenantId: string, quota: Record<string, number>) => this.call<Record<string, unknown>>("PUT /admin/tenants/{tenantId}/quota", { params: { tenantId }, body: { quota } }),
    moveTenant: (tenantId: string, target: { tier?: string; index?: string; store?: string; batchSize?: number }) =>
      this.call<Record<string, unknown>>("POST /admin/tenants/{tenantId}/move", { params: { tenantId }, body: target }),
    /** A tenant's history minute by minute (window "1h", "6h", "24h" or "7d"): operations, latency, tokens, cost. */
    series: (tenantId: string, window?: "1h" | "6h" | "24h" | "7d") => this.call<{ points: Record<string, unknown>[]; stepSeconds: number }>("GET /admin/tenants/{tenantId}/series", { params: { tenantId }, query: { window } }),
    listTenantKeys: (tenantId: string) => this.call<Record<string, unknown>[]>("GET /admin/tenants/{tenantId}/keys", { params: { tenantId } }),
    createTenantKey: (tenantId: string, options: { scopes?: ("read" | "write")[]; name?: string } = {}) =>
      this.call<{ key: string; keyId: string }>("POST /admin/tenants/{tenantId}/keys", { params: { tenantId }, body: options }),
    listKeys: () => this.call<Record<string, unknown>[]>("GET /admin/keys"),
    createAdminKey: (name?: string) => this.call<{ key: string; keyId: string }>("POST /admin/keys", { body: name === undefined ? {} : { name } }),
    rotateKey: (keyId: string) => this.call<{ key: string; keyId: string }>("POST /admin/keys/{keyId}/rotate", { params: { keyId }, body: {} }),
    revokeKey: (keyId: string) => this.call<Record<string, unknown>>("DELETE /admin/keys/{keyId}", { params: { keyId } }),
    listMoves: () => this.call<Record<string, unknown>[]>("GET /admin/moves"),
    getMove: (tenantId: string) => this.call<Record<string, unknown>>("GET /admin/moves/{tenantId}", { params: { tenantId } }),
    resumeMove: (tenantId: string) => this.call<Record<string, unknown>>("POST /admin/moves/{tenantId}/resume", { params: { tenantId }, body: {} }),
    rollbackMove: (tenantId: string) => this.call<Record<string, unknown>>("POST /admin/moves/{tenantId}/rollback", { params: { tenantId }, body: {} }),
    setMoveWriteLimit: (tenantId: string, vectorsPerSecond: number | null) =>
      this.call<Record<string, unknown>>("PUT /admin/moves/{tenantId}/write-limit", { params: { tenantId }, body: { vectorsPerSecond } }),
    capacity: () => this.call<Record<string, unknown>[]>("GET /admin/capacity"),
    allocateCosts: (body: { total?: number; basis?: unknown; period?: string } = {}) => this.call<Record<string, number>>("POST /admin/costs/allocate", { body }),
    costReport: (period?: string) => this.call<Record<string, unknown>>("GET /admin/costs/report", { query: { period } }),
    audit: (limit?: number) => this.call<Record<string, unknown>[]>("GET /admin/audit", { query: { limit } }),
    readiness: () => this.call<Record<string, unknown>>("GET /admin/readiness"),
  };

  /** Any route, for what the typed methods do not cover. */
  async call<T>(route: ClientRoute, input: { params?: Record<string, string>; query?: Record<string, string | number | undefined>; body?: unknown } = {}): Promise<T> {
    const res = await this.send(route, input);
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  private async send(route: ClientRoute, input: { params?: Record<string, string>; query?: Record<string, string | number | undefined>; body?: unknown }): Promise<Response> {
    const [method, path] = pathOf(route, input.params, input.query);
    const res = await this.fetch(this.base + path, {
      method,
      headers: { authorization: `Bearer ${this.options.key}`, ...(input.body === undefined ? {} : { "content-type": "application/json" }) },
      body: input.body === undefined ? undefined : JSON.stringify(input.body),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000),
    });
    if (res.ok) return res;
    const text = await res.text();
    let problem: { code?: string; detail?: string; field?: string; retryAfterMs?: number } = {};
    try {
      problem = JSON.parse(text);
    } catch {
      /* not problem+json (a proxy's page): the status speaks */
    }
    const retryAfter = Number(res.headers.get("retry-after"));
    throw new BulkheadHttpError(res.status, problem.code ?? "HTTP_ERROR", `${problem.detail ?? res.statusText} (${method} ${path} → ${res.status})`, problem.field, problem.retryAfterMs ?? (Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined));
  }
}
