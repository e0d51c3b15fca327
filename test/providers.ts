import { createServer, type Server } from "node:http";
import { OpenAIStandin, type Fault } from "./openai-standin.js";

/** What the provider suites see of an OpenAI-compatible API: where it is, its models, and the requests sent to it. */
export interface Provider {
  /** Base URL the embedder and chat model are given. */
  url: string;
  apiKey: string;
  embeddingsModel: string;
  /** Dimension of `embeddingsModel`'s vectors. */
  dimension: number;
  /** Whether to send `dimensions` (OpenAI's text-embedding-3 models shorten their vectors; many servers refuse it). */
  sendDimensions: boolean;
  chatModel: string;
  /** Embedding requests as sent, with the tokens the provider reported for each (undefined: it reported none). */
  requests: OpenAIStandin["requests"];
  /** Chat requests as sent. */
  chats: OpenAIStandin["chats"];
  /** Makes the next requests fail with these statuses before they reach the provider. */
  plan(...faults: { status: number }[]): void;
  close(): Promise<void>;
}

/** A provider the suites run against, or say why they are skipped. */
export interface ProviderKind {
  name: string;
  /** Why the suite does not run here; false when it runs. */
  skip: string | false;
  start(): Promise<Provider>;
}

const env = process.env;

/** The local stand-in: always runs, offline, deterministic. */
export const STANDIN: ProviderKind = {
  name: "the local stand-in of the OpenAI API",
  skip: false,
  async start() {
    const standin = await new OpenAIStandin(8).start();
    return {
      url: standin.url,
      apiKey: "sk-standin",
      embeddingsModel: "text-embedding-3-small",
      dimension: 8,
      sendDimensions: false,
      chatModel: "gpt-4o-mini",
      requests: standin.requests,
      chats: standin.chats,
      plan: (...faults: Fault[]) => standin.plan(...faults),
      close: () => standin.close(),
    };
  },
};

/**
 * The real provider, opt-in: `OPENAI_API_KEY` and/or `OPENAI_BASE_URL` (default
 * `https://api.openai.com/v1`), models from `OPENAI_EMBEDDINGS_MODEL` (`text-embedding-3-small`),
 * `OPENAI_EMBEDDINGS_DIMENSION` (1536; sent as `dimensions` only when it is set) and
 * `OPENAI_CHAT_MODEL` (`gpt-4o-mini`). Reached through a local recording proxy, so the same
 * observations (requests sent, tokens reported) hold as against the stand-in.
 */
export const LIVE: ProviderKind = {
  name: "the live provider",
  skip: env.OPENAI_API_KEY || env.OPENAI_BASE_URL ? false : "set OPENAI_API_KEY (or OPENAI_BASE_URL) to run it against a real provider",
  async start() {
    const proxy = await new RecordingProxy((env.OPENAI_BASE_URL || "https://api.openai.com/v1").replace(/\/+$/, "")).start();
    return {
      url: proxy.url,
      apiKey: env.OPENAI_API_KEY ?? "",
      embeddingsModel: env.OPENAI_EMBEDDINGS_MODEL || "text-embedding-3-small",
      dimension: Number(env.OPENAI_EMBEDDINGS_DIMENSION || 1536),
      sendDimensions: Boolean(env.OPENAI_EMBEDDINGS_DIMENSION),
      chatModel: env.OPENAI_CHAT_MODEL || "gpt-4o-mini",
      requests: proxy.requests,
      chats: proxy.chats,
      plan: (...faults) => proxy.faults.push(...faults),
      close: () => proxy.close(),
    };
  },
};

/** Every provider the provider suites are parametrized over. */
export const PROVIDERS: readonly ProviderKind[] = [STANDIN, LIVE];

/** The suite's title, with why it is skipped when it is. */
export const suiteName = (kind: ProviderKind, what: string): string => `${what}, against ${kind.name}${kind.skip ? ` (skipped: ${kind.skip})` : ""}`;

/**
 * Forwards `POST /v1/embeddings` and `/v1/chat/completions` to the real API as they come (streams
 * included), recording each request and the embedding tokens the provider reported; a planned
 * fault is answered here without reaching the provider.
 */
class RecordingProxy {
  readonly requests: OpenAIStandin["requests"] = [];
  readonly chats: OpenAIStandin["chats"] = [];
  readonly faults: { status: number }[] = [];
  url = "";
  private server?: Server;

  constructor(private readonly upstream: string) {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void (async () => {
        const parts: Buffer[] = [];
        for await (const c of req) parts.push(c as Buffer);
        const raw = Buffer.concat(parts).toString("utf8");
        const body = JSON.parse(raw) as { model: string; input: string | string[]; dimensions?: number; messages: { role: string; content: string }[]; stream?: boolean };
        const embedding = req.url === "/v1/embeddings";
        const record: Provider["requests"][number] | undefined = embedding ? { authorization: req.headers.authorization, body: { model: body.model, input: ([] as string[]).concat(body.input), dimensions: body.dimensions } } : undefined;
        if (record) this.requests.push(record);
        else this.chats.push({ messages: body.messages, stream: body.stream === true });
        const fault = this.faults.shift();
        if (fault) {
          res.writeHead(fault.status, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: `injected ${fault.status}`, type: "server_error", code: null } }));
          return;
        }
        const up = await fetch(`${this.upstream}${req.url!.slice("/v1".length)}`, { method: "POST", headers: { "content-type": "application/json", ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) }, body: raw });
        const headers: Record<string, string> = { "content-type": up.headers.get("content-type") ?? "application/json" };
        for (const h of ["retry-after", "retry-after-ms"]) if (up.headers.get(h) !== null) headers[h] = up.headers.get(h)!;
        if (record) {
          const text = await up.text();
          if (up.ok) record.tokens = (JSON.parse(text) as { usage?: { prompt_tokens?: number } }).usage?.prompt_tokens;
          res.writeHead(up.status, headers).end(text);
          return;
        }
        res.writeHead(up.status, headers);
        for await (const chunk of up.body as unknown as AsyncIterable<Uint8Array>) res.write(chunk);
        res.end();
      })().catch((err: Error) => (res.headersSent ? res.destroy() : res.writeHead(502).end(err.message)));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}/v1`;
    return this;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}
