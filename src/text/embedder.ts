/** Vectors for texts, and what making them cost. */
export interface Embeddings {
  vectors: number[][];
  /** Input tokens: as the provider reported them (`usage`), or counted here when it reported none. */
  tokens: number;
  /** True when `tokens` was counted here because the provider reported no usage. */
  estimated: boolean;
  /** The model that made the vectors: the one asked for. */
  model: string;
}

/** Which model embeds a call, and the dimension its vectors must have; the embedder's own when not given. */
export interface EmbedOptions {
  model?: string;
  dimension?: number;
  signal?: AbortSignal;
}

/**
 * Turns texts into vectors. One per deployment, serving every model of its API: tiers embed with
 * their own model (`BULKHEAD_TIER_TEXT`) by naming it per call, and every vector is checked
 * against that model's dimension.
 */
export interface Embedder {
  /** The model of a call that names none. */
  readonly model: string;
  /** That model's dimension. */
  readonly dimension: number;
  /** Vectors for `texts`, in order. Retries what is safe to retry; throws `ProviderError` when it cannot. */
  embed(texts: readonly string[], options?: EmbedOptions): Promise<Embeddings>;
}
