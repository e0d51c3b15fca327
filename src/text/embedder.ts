import { BulkheadError } from "../errors.js";

/** Vectors for texts, and what making them cost. */
export interface Embeddings {
  vectors: number[][];
  /** Input tokens: as the provider reported them (`usage`), or counted here when it reported none. */
  tokens: number;
  /** True when `tokens` was counted here because the provider reported no usage. */
  estimated: boolean;
  model: string;
}

/**
 * Turns texts into vectors. One per deployment, or one per tier (`BULKHEAD_EMBEDDINGS`); its
 * dimension must be the dimension of the indexes it fills, and every vector is checked against it.
 */
export interface Embedder {
  readonly model: string;
  readonly dimension: number;
  /** Vectors for `texts`, in order. Retries what is safe to retry; throws `ProviderError` when it cannot. */
  embed(texts: readonly string[], signal?: AbortSignal): Promise<Embeddings>;
}

/**
 * An embedding or chat provider failed: 503 when it is down, slow or failing (retried first; try
 * again later), 429 when it throttled past the retries (`retryAfterMs`), 502 when it refused the
 * request itself (a wrong key, model or dimension: the deployment's configuration, not the caller's
 * input). The message names the provider's status only, never its body or the key. Nothing was
 * written.
 */
export class ProviderError extends BulkheadError {
  readonly retryAfterMs: number;
  constructor(kind: "unavailable" | "throttled" | "refused", message: string, retryAfterMs = 1000) {
    super(kind === "throttled" ? "PROVIDER_THROTTLED" : kind === "refused" ? "PROVIDER_REFUSED" : "PROVIDER_UNAVAILABLE", kind === "throttled" ? 429 : kind === "refused" ? 502 : 503, message);
    this.name = "ProviderError";
    this.retryAfterMs = retryAfterMs;
  }
}
