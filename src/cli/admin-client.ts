import { BulkheadError, DatabaseError, ValidationError } from "../errors.js";

/**
 * The admin API of a running service, for the CLI's `--url` mode: an embedded data directory can be
 * open in one process only, so while `bulkhead serve` holds it the operator's commands go through
 * the service instead. Answers come back as the API shapes them; a problem+json refusal becomes a
 * `BulkheadError` with the same status, so the exit codes are those of the local commands.
 */
export class AdminClient {
  private readonly base: string;

  constructor(url: string, private readonly key: string) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ValidationError("--url", `must be the service's base URL like http://127.0.0.1:8080, got "${url}"`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new ValidationError("--url", `must be an http:// or https:// URL, got "${url}"`);
    if (!/^bh_admin_/.test(key)) throw new ValidationError("--admin-key", "must be an admin key (bh_admin_…); give --admin-key or set BULKHEAD_ADMIN_KEY");
    this.base = parsed.href.replace(/\/+$/, "");
  }

  get = <T>(path: string) => this.call<T>("GET", path);
  post = <T>(path: string, body: unknown = {}) => this.call<T>("POST", path, body);
  delete = <T>(path: string) => this.call<T>("DELETE", path);

  /** The response's status too: a tier change answers 202 when its vectors move in the background. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T & { readonly [STATUS]?: number }> {
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        headers: { authorization: `Bearer ${this.key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(120_000),
      });
    } catch (err) {
      throw new DatabaseError(`cannot reach the service at ${this.base}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const problem = (parsed ?? {}) as { code?: string; detail?: string };
      throw new BulkheadError(problem.code ?? "HTTP_ERROR", res.status, `${problem.detail ?? (text.slice(0, 200) || res.statusText)} (${method} ${path} → ${res.status})`);
    }
    if (parsed !== null && typeof parsed === "object") Object.defineProperty(parsed, STATUS, { value: res.status });
    return parsed as T & { readonly [STATUS]?: number };
  }
}

/** Where `call` records the HTTP status on its answer (not enumerable: `--json` output is the API's). */
export const STATUS = Symbol("status");
