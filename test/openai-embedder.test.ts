import { afterEach, describe, expect, it } from "vitest";
import { countTokens } from "../src/costs/token-counter.js";
import { ProviderError } from "../src/errors.js";
import { OpenAIEmbedder } from "../src/text/openai-embedder.js";
import { OpenAIStandin } from "./openai-standin.js";

describe("OpenAI-compatible embedder (against a local stand-in of the embeddings API)", () => {
  let standin: OpenAIStandin;
  afterEach(() => standin?.close());
  const embedder = (options: Partial<ConstructorParameters<typeof OpenAIEmbedder>[0]> = {}) =>
    new OpenAIEmbedder({ baseUrl: standin.url, apiKey: "sk-test-secret", model: "text-embedding-3-small", dimension: 16, backoffMs: 10, ...options });

  it("batches inputs, keeps their order, sends the key as a bearer token, and meters the provider's own usage", async () => {
    standin = await new OpenAIStandin(16).start();
    const texts = Array.from({ length: 7 }, (_, i) => `text number ${i}`);
    const out = await embedder({ batchSize: 3 }).embed(texts);
    expect(standin.requests.map((r) => r.body.input.length)).toEqual([3, 3, 1]);
    expect(standin.requests.every((r) => r.authorization === "Bearer sk-test-secret")).toBe(true);
    expect(out.vectors).toEqual(texts.map((t) => OpenAIStandin.vector(t, 16)));
    let tokens = 0;
    for (const t of texts) tokens += await countTokens(t, "cl100k_base");
    expect(out).toMatchObject({ tokens, estimated: false, model: "text-embedding-3-small" });
  });

  it("retries 429 after the wait the provider asks for, and 5xx, timeouts and dropped connections with backoff", async () => {
    standin = await new OpenAIStandin(16).start();
    standin.plan({ status: 429, headers: { "retry-after-ms": "300" } }, { status: 503 }, { delayMs: 500 });
    const started = Date.now();
    const out = await embedder({ timeoutMs: 200 }).embed(["hello"]);
    expect(out.vectors).toHaveLength(1);
    expect(standin.requests).toHaveLength(4);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300 + 200);
  });

  it("gives up after its retries with a 503 or 429 naming the status only — never the body or the key — and does not retry a refusal", async () => {
    standin = await new OpenAIStandin(16).start();
    standin.plan({ status: 500 }, { status: 500 }, { status: 500 });
    const down = await embedder({ maxRetries: 2 }).embed(["x"]).catch((e) => e);
    expect(down).toBeInstanceOf(ProviderError);
    expect(down).toMatchObject({ status: 503, code: "PROVIDER_UNAVAILABLE" });
    standin.plan({ status: 429, headers: { "retry-after": "120" } });
    const throttled = await embedder().embed(["x"]).catch((e) => e);
    expect(throttled).toMatchObject({ status: 429, code: "PROVIDER_THROTTLED", retryAfterMs: 120_000 });
    const before = standin.requests.length;
    standin.plan({ status: 401 });
    const refused = await embedder().embed(["x"]).catch((e) => e);
    expect(refused).toMatchObject({ status: 502, code: "PROVIDER_REFUSED" });
    expect(standin.requests.length).toBe(before + 1);
    for (const e of [down, throttled, refused]) expect(String(e.message)).not.toMatch(/sk-test|injected/);
  });

  it("refuses vectors of the wrong dimension, and counts tokens itself (marked estimated) when the provider reports no usage", async () => {
    standin = await new OpenAIStandin(16).start();
    standin.plan({ dimension: 8 });
    await expect(embedder().embed(["x"])).rejects.toMatchObject({ code: "PROVIDER_REFUSED", message: expect.stringMatching(/8 dimensions.*16/) });
    standin.plan({ noUsage: true });
    const out = await embedder().embed(["counted here"]);
    expect(out).toMatchObject({ estimated: true, tokens: await countTokens("counted here", "cl100k_base") });
  });
});
