import { ProviderError } from "../errors.js";
import { postToProvider } from "./provider-request.js";

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** Tokens a completion used, as the provider reported them. */
export interface ChatUsage {
  inputTokens: number;
  outputTokens: number;
  /** True when the provider reported no usage and the counts were made here. */
  estimated: boolean;
}

export interface Completion {
  text: string;
  usage: ChatUsage;
  model: string;
}

/** A chat model. `stream` yields the answer as it is written and returns the completion at the end. */
export interface ChatModel {
  readonly model: string;
  complete(messages: readonly ChatMessage[], signal?: AbortSignal): Promise<Completion>;
  stream(messages: readonly ChatMessage[], signal?: AbortSignal): AsyncGenerator<string, Completion>;
}

export interface OpenAIChatOptions {
  /** Base URL, e.g. `https://api.openai.com/v1` (`/chat/completions` is appended). */
  baseUrl: string;
  apiKey?: string;
  model: string;
  /** Most tokens of an answer. */
  maxOutputTokens?: number;
  timeoutMs?: number;
  maxRetries?: number;
  backoffMs?: number;
  /** Counts tokens when the provider reports no usage. */
  countTokens: (text: string) => Promise<number>;
}

type ChatResponse = { choices?: { message?: { content?: unknown }; delta?: { content?: unknown } }[]; usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } | null; model?: string };

/**
 * OpenAI's chat completions API (`POST {baseUrl}/chat/completions`), which most providers and
 * local servers implement. A request is retried on 429, 5xx, timeouts and dropped connections
 * only until the first token has arrived (before that, asking again cannot double anything);
 * streams ask for usage in their last chunk (`stream_options.include_usage`), so a streamed
 * answer is metered from the provider's own count too.
 */
export class OpenAIChatModel implements ChatModel {
  readonly model: string;
  private readonly url: string;

  constructor(private readonly options: OpenAIChatOptions) {
    this.model = options.model;
    this.url = `${options.baseUrl.replace(/\/+$/, "")}/chat/completions`;
  }

  async complete(messages: readonly ChatMessage[], signal?: AbortSignal): Promise<Completion> {
    const res = await this.send(messages, false, signal);
    const body = (await res.json()) as ChatResponse;
    const text = body.choices?.[0]?.message?.content;
    if (typeof text !== "string") throw new ProviderError("refused", "the chat provider answered without a message");
    return { text, usage: await this.usage(body.usage, messages, text), model: this.model };
  }

  async *stream(messages: readonly ChatMessage[], signal?: AbortSignal): AsyncGenerator<string, Completion> {
    const res = await this.send(messages, true, signal);
    let text = "";
    let reported: ChatResponse["usage"];
    const decoder = new TextDecoder();
    let pending = "";
    for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
      pending += decoder.decode(part, { stream: true });
      let end: number;
      while ((end = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, end).trim();
        pending = pending.slice(end + 1);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        let chunk: ChatResponse;
        try {
          chunk = JSON.parse(data) as ChatResponse;
        } catch {
          throw new ProviderError("refused", "the chat provider sent a stream event that is not JSON");
        }
        if (chunk.usage) reported = chunk.usage;
        const delta = chunk.choices?.[0]?.delta?.content;
        if (typeof delta === "string" && delta.length > 0) {
          text += delta;
          yield delta;
        }
      }
    }
    return { text, usage: await this.usage(reported, messages, text), model: this.model };
  }

  private async usage(reported: ChatResponse["usage"], messages: readonly ChatMessage[], text: string): Promise<ChatUsage> {
    const input = reported?.prompt_tokens;
    const output = reported?.completion_tokens;
    if (Number.isSafeInteger(input) && Number.isSafeInteger(output) && (input as number) >= 0 && (output as number) >= 0) {
      return { inputTokens: input as number, outputTokens: output as number, estimated: false };
    }
    let counted = 0;
    for (const m of messages) counted += await this.options.countTokens(m.content);
    return { inputTokens: counted, outputTokens: await this.options.countTokens(text), estimated: true };
  }

  /** The request, retried while it fails transiently and nothing has been received yet. */
  private send(messages: readonly ChatMessage[], stream: boolean, signal?: AbortSignal): Promise<Response> {
    const body = JSON.stringify({
      model: this.model,
      messages,
      ...(this.options.maxOutputTokens ? { max_tokens: this.options.maxOutputTokens } : {}),
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    });
    const { timeoutMs = 60_000, maxRetries = 3, backoffMs = 500 } = this.options;
    return postToProvider(this.url, body, { what: "chat", apiKey: this.options.apiKey, timeoutMs, maxRetries, backoffMs, signal });
  }
}
