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
