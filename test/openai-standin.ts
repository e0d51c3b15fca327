import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { countTokens } from "../src/costs/token-counter.js";

/** What the next request gets instead of a normal answer (consumed in order). */
export type Fault = { status: number; headers?: Record<string, string> } | { delayMs: number } | { noUsage: true } | { dimension: number };

/**
 * A local stand-in of the OpenAI embeddings API (`POST /v1/embeddings`), built from its published
 * request and response models: `{ model, input: string | string[], encoding_format?, dimensions? }`
 * in, `{ object: "list", data: [{ object: "embedding", index, embedding }], model, usage:
 * { prompt_tokens, total_tokens } }` out, errors as `{ error: { message, type, code } }`. Vectors are
 * deterministic: each word hashed into a dimension (feature hashing), normalised — texts sharing
 * words are near, so searches behave like a real model's for tests. Usage counts cl100k tokens, as
 * OpenAI's embedding models do; `dimensions` sets the vectors' length, and every request's model
 * is recorded. Faults can be planned: statuses with headers, delays, no usage, a wrong dimension.
 */
export class OpenAIStandin {
  /** Chat completions asked for: the messages as sent. */
  readonly chats: { messages: { role: string; content: string }[]; stream: boolean }[] = [];
  /** Embedding requests as sent, with the tokens the answer reported (undefined: none reported, or it failed). */
  readonly requests: { authorization: string | undefined; body: { model: string; input: string[]; dimensions?: number }; tokens?: number }[] = [];
  private readonly faults: Fault[] = [];
  private server?: Server;
  url = "";

  constructor(private readonly dimension: number) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const address = this.server.address() as { port: number };
    this.url = `http://127.0.0.1:${address.port}/v1`;
    return this;
  }

  plan(...faults: Fault[]): void {
    this.faults.push(...faults);
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  /** The stand-in's vector of a text (what a search's query vector is compared with). */
  static vector(text: string, dimension: number): number[] {
    const v = new Array<number>(dimension).fill(0);
    for (const word of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
      let h = 2166136261;
      for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 16777619);
      v[(h >>> 0) % dimension]! += 1;
    }
    const norm = Math.hypot(...v) || 1;
    return v.map((x) => (x === 0 ? 0.001 : x / norm));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.method === "POST" && req.url === "/v1/chat/completions") return this.chat(Buffer.concat(chunks).toString("utf8"), res, send);
    if (req.method !== "POST" || req.url !== "/v1/embeddings") return send(404, { error: { message: "not found", type: "invalid_request_error", code: null } });
    let body: { model?: unknown; input?: unknown; dimensions?: unknown; encoding_format?: unknown };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return send(400, { error: { message: "We could not parse the JSON body of your request.", type: "invalid_request_error", code: null } });
    }
    const input = typeof body.input === "string" ? [body.input] : body.input;
    if (typeof body.model !== "string" || !Array.isArray(input) || input.length === 0 || input.length > 2048 || !input.every((x) => typeof x === "string" && x.length > 0)) {
      return send(400, { error: { message: "'input' : input must be a non-empty string or array of strings (at most 2048)", type: "invalid_request_error", code: null } });
    }
    if (body.encoding_format !== undefined && body.encoding_format !== "float") return send(400, { error: { message: "encoding_format must be float here", type: "invalid_request_error", code: null } });
    const record: OpenAIStandin["requests"][number] = { authorization: req.headers.authorization, body: { model: body.model, input: input as string[], ...(typeof body.dimensions === "number" ? { dimensions: body.dimensions } : {}) } };
    this.requests.push(record);

    let usage = true;
    // As OpenAI's text-embedding-3 models do, a request may ask for shorter vectors.
    let dimension = typeof body.dimensions === "number" ? body.dimensions : this.dimension;
    for (let fault = this.faults.shift(); fault; fault = this.faults.shift()) {
      if ("status" in fault) return send(fault.status, { error: { message: `injected ${fault.status}`, type: "server_error", code: null } }, fault.headers);
      if ("delayMs" in fault) {
        await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
        if (req.destroyed) return;
        break;
      }
      if ("noUsage" in fault) usage = false;
      if ("dimension" in fault) dimension = fault.dimension;
      break;
    }
    let tokens = 0;
    for (const text of input as string[]) tokens += await countTokens(text, "cl100k_base");
    if (usage) record.tokens = tokens;
    send(200, {
      object: "list",
      data: (input as string[]).map((text, index) => ({ object: "embedding", index, embedding: OpenAIStandin.vector(text, dimension) })),
      model: body.model,
      ...(usage ? { usage: { prompt_tokens: tokens, total_tokens: tokens } } : {}),
    });
  }

  /**
   * `POST /v1/chat/completions` as OpenAI's models define it: `{ model, messages, stream?,
   * stream_options? }` in; a completion with `usage`, or server-sent `chat.completion.chunk`
   * events ending in `data: [DONE]`, the usage in a last chunk with no choices when
   * `stream_options.include_usage` is set. The answer is deterministic: it cites source 1 with its
   * first words, so tests can check citations and metering.
   */
  private async chat(raw: string, res: ServerResponse, send: (status: number, body: unknown, headers?: Record<string, string>) => void): Promise<void> {
    let body: { model?: unknown; messages?: unknown; stream?: unknown; stream_options?: { include_usage?: unknown } };
    try {
      body = JSON.parse(raw);
    } catch {
      return send(400, { error: { message: "We could not parse the JSON body of your request.", type: "invalid_request_error", code: null } });
    }
    const messages = body.messages as { role: string; content: string }[];
    if (typeof body.model !== "string" || !Array.isArray(messages) || messages.length === 0 || !messages.every((m) => typeof m?.role === "string" && typeof m?.content === "string")) {
      return send(400, { error: { message: "'messages' must be a non-empty array of {role, content}", type: "invalid_request_error", code: null } });
    }
    this.chats.push({ messages, stream: body.stream === true });
    for (let fault = this.faults.shift(); fault; fault = this.faults.shift()) {
      if ("status" in fault) return send(fault.status, { error: { message: `injected ${fault.status}`, type: "server_error", code: null } }, fault.headers);
      break;
    }
    const user = messages.at(-1)!.content;
    const first = /<source id="1"[^>]*>\n?([\s\S]*?)<\/source>/.exec(user)?.[1]?.split(/\s+/).slice(0, 6).join(" ");
    const answer = first ? `According to [1], ${first}.` : "I do not know.";
    let prompt = 0;
    for (const m of messages) prompt += await countTokens(m.content, "cl100k_base");
    const usage = { prompt_tokens: prompt, completion_tokens: await countTokens(answer, "cl100k_base"), total_tokens: 0 };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    const base = { id: "chatcmpl-standin", created: 0, model: body.model, system_fingerprint: null };
    if (body.stream !== true) {
      return send(200, { ...base, object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: answer, refusal: null }, finish_reason: "stop", logprobs: null }], usage });
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    const pieces = answer.match(/\S+\s*/g) ?? [answer];
    const event = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
    event({ ...base, object: "chat.completion.chunk", choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] });
    for (const piece of pieces) event({ ...base, object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] });
    event({ ...base, object: "chat.completion.chunk", choices: [{ index: 0, delta: {}, finish_reason: "stop" }] });
    if (body.stream_options?.include_usage === true) event({ ...base, object: "chat.completion.chunk", choices: [], usage });
    res.end("data: [DONE]\n\n");
  }
}
