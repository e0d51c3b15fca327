import { countTokens } from "../costs/token-counter.js";
import { ConfigError, ProviderError } from "../errors.js";
import type { EmbedOptions, Embedder, Embeddings } from "./embedder.js";
import { postToProvider } from "./provider-request.js";

/** An OpenAI-compatible embeddings endpoint (OpenAI, Azure OpenAI, Ollama, vLLM, TEI, most hosted models). */
export interface OpenAIEmbedderOptions {
  /** Base URL of the API, e.g. `https://api.openai.com/v1` (`/embeddings` is appended). */
  baseUrl: string;
  apiKey?: string;
  /** The model of a call that names none; a call may name any model the API serves. */
  model: string;
  /** That model's dimension (a call naming another model gives its dimension too). */
  dimension: number;
  /** Send `dimensions` in the request (OpenAI's text-embedding-3 models can shorten their vectors); off for servers that refuse it. */
  sendDimensions?: boolean;
  /** Inputs per request (OpenAI accepts 2,048; smaller batches fail smaller). */
  batchSize?: number;
  /** Deadline of one request, in ms. */
  timeoutMs?: number;
  /** Retries of a request that failed with 429, 5xx, a timeout or a network error. */
  maxRetries?: number;
  /** First backoff in ms (doubled each retry, with full jitter, capped at 20 s), unless the provider says how long to wait. */
  backoffMs?: number;
}

interface EmbeddingResponse {
  data?: { index?: number; embedding?: unknown }[];
  model?: string;
  usage?: { prompt_tokens?: unknown; total_tokens?: unknown };
}

/**
 * The OpenAI embeddings API (`POST {baseUrl}/embeddings`, float vectors), which most providers
 * and local servers implement. Batches inputs, retries what failed transiently — 429 (waiting what
 * `retry-after-ms` or `Retry-After` says), 5xx, timeouts, dropped connections; embedding is
 * idempotent, so a retry can never double anything — and checks every answer: one vector per
 * input, each of the configured dimension, finite numbers. Tokens come from the response's
 * `usage`; a provider that reports none (some local servers) is counted with cl100k and the
 * result marked `estimated`. Each call may name its model and dimension (`embed(texts, { model,
 * dimension })`): one embedder serves every tier's model.
 *
 * @example
 * const embedder = new OpenAIEmbedder({ baseUrl: "https://api.openai.com/v1", apiKey: process.env.OPENAI_API_KEY, model: "text-embedding-3-small", dimension: 1536 });
 */
export class OpenAIEmbedder implements Embedder {
  readonly model: string;
  readonly dimension: number;
  private readonly url: string;
  private readonly batchSize: number;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly backoffMs: number;

  constructor(private readonly options: OpenAIEmbedderOptions) {
    this.model = options.model;
    this.dimension = options.dimension;
    this.url = `${options.baseUrl.replace(/\/+$/, "")}/embeddings`;
    this.batchSize = options.batchSize ?? 128;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxRetries = options.maxRetries ?? 4;
    this.backoffMs = options.backoffMs ?? 500;
  }

  async embed(texts: readonly string[], { model = this.model, dimension = model === this.model ? this.dimension : undefined, signal }: EmbedOptions = {}): Promise<Embeddings> {
    // Another model's vectors checked against this one's dimension would pass or fail by accident.
    if (dimension === undefined) throw new ConfigError(`no dimension was given for the embedding model ${model} (only ${this.model}'s is known: ${this.dimension})`);
    const vectors: number[][] = [];
    let tokens = 0;
    let estimated = false;
    for (let i = 0; i < texts.length; i += this.batchSize) {
      const batch = texts.slice(i, i + this.batchSize);
      const answer = await this.request(batch, model, dimension, signal);
      vectors.push(...answer.vectors);
      if (answer.tokens === undefined) {
        estimated = true;
        for (const t of batch) tokens += await countTokens(t, "cl100k_base");
      } else tokens += answer.tokens;
    }
    return { vectors, tokens, estimated, model };
  }

  /** One batch, retried while it fails transiently. */
  private async request(batch: readonly string[], model: string, dimension: number, signal?: AbortSignal): Promise<{ vectors: number[][]; tokens?: number }> {
    const body = JSON.stringify({ model, input: batch, encoding_format: "float", ...(this.options.sendDimensions ? { dimensions: dimension } : {}) });
    const res = await postToProvider(this.url, body, { what: "embedding", apiKey: this.options.apiKey, timeoutMs: this.timeoutMs, maxRetries: this.maxRetries, backoffMs: this.backoffMs, signal });
    return this.parse((await res.json()) as EmbeddingResponse, batch.length, model, dimension);
  }

  private parse(res: EmbeddingResponse, expected: number, model: string, dimension: number): { vectors: number[][]; tokens?: number } {
    const data = Array.isArray(res.data) ? res.data : [];
    if (data.length !== expected) throw new ProviderError("refused", `the embedding provider returned ${data.length} vectors for ${expected} inputs`);
    const vectors = new Array<number[]>(expected);
    data.forEach((d, i) => {
      const at = Number.isInteger(d.index) ? (d.index as number) : i;
      const v = d.embedding;
      if (at < 0 || at >= expected || vectors[at] !== undefined) throw new ProviderError("refused", "the embedding provider returned vectors out of order or twice");
      if (!Array.isArray(v) || v.length !== dimension || !v.every((x) => typeof x === "number" && Number.isFinite(x))) {
        throw new ProviderError("refused", `the embedding provider returned a vector of ${Array.isArray(v) ? v.length : "no"} dimensions; ${model} is configured for ${dimension}`);
      }
      vectors[at] = v as number[];
    });
    const reported = res.usage?.prompt_tokens ?? res.usage?.total_tokens;
    return { vectors, tokens: Number.isSafeInteger(reported) && (reported as number) >= 0 ? (reported as number) : undefined };
  }
}
