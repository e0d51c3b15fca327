import { ProviderError } from "../errors.js";

export interface ProviderRequestOptions {
  /** Who is called, for messages: "embedding" or "chat". */
  what: string;
  apiKey?: string;
  timeoutMs: number;
  maxRetries: number;
  /** First backoff (doubled each retry, full jitter, capped at 20 s) unless the provider says how long to wait. */
  backoffMs: number;
  signal?: AbortSignal;
}

const MAX_BACKOFF_MS = 20_000;
/** The longest wait a provider's Retry-After is honoured for; longer, and the caller is told to come back. */
const MAX_HONOURED_WAIT_MS = 30_000;

/**
 * POSTs JSON to an OpenAI-compatible provider and returns its 2xx response (body unread). Retries
 * 429 (waiting what `retry-after-ms` or `Retry-After` says), 5xx, 408, timeouts and dropped
 * connections — only ever a request nothing has been received from, which is safe to send again;
 * throws `ProviderError` naming the status only (a provider's error body may echo input or
 * account details: it is never read).
 */
export async function postToProvider(url: string, body: string, o: ProviderRequestOptions): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    let failure: ProviderError;
    let wait: number | undefined;
    try {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}) },
        body,
        signal: o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)]) : AbortSignal.timeout(o.timeoutMs),
      });
      if (res.ok) return res;
      await res.body?.cancel();
      wait = retryAfter(res.headers);
      if (res.status === 429) failure = new ProviderError("throttled", `the ${o.what} provider throttled the request (HTTP 429)`, wait);
      else if (res.status >= 500 || res.status === 408) failure = new ProviderError("unavailable", `the ${o.what} provider failed (HTTP ${res.status})`);
      else throw new ProviderError("refused", `the ${o.what} provider refused the request (HTTP ${res.status}): check the model, key and dimension configured`);
    } catch (err) {
      if (err instanceof ProviderError || o.signal?.aborted) throw err;
      failure = new ProviderError("unavailable", (err as Error).name === "TimeoutError" ? `the ${o.what} provider did not answer within ${o.timeoutMs} ms` : `the ${o.what} provider could not be reached`);
    }
    if (attempt >= o.maxRetries || (wait !== undefined && wait > MAX_HONOURED_WAIT_MS)) throw failure;
    await new Promise((resolve) => setTimeout(resolve, wait ?? Math.random() * Math.min(MAX_BACKOFF_MS, o.backoffMs * 2 ** attempt)));
  }
}

/** How long the provider asked us to wait: `retry-after-ms`, else `Retry-After` in seconds or as a date. */
function retryAfter(headers: Headers): number | undefined {
  const ms = headers.get("retry-after-ms");
  if (ms !== null && Number.isFinite(Number(ms)) && Number(ms) >= 0) return Number(ms);
  const raw = headers.get("retry-after");
  if (raw === null) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
