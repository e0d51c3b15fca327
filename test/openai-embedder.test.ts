import { afterEach, describe, expect, it } from "vitest";
import { countTokens } from "../src/costs/token-counter.js";
import { ProviderError } from "../src/errors.js";
import { OpenAIEmbedder } from "../src/text/openai-embedder.js";
import { OpenAIStandin } from "./openai-standin.js";
import { PROVIDERS, suiteName, type Provider } from "./providers.js";

const TEXTS = ["The ferry leaves at noon.", "Rotate your keys every month.", "Lighthouses guide ships at night.", "Bread rises in a warm kitchen.", "Glaciers carve deep valleys.", "Owls hunt mice in the dark.", "Violins need their strings tuned."];
const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0) / (Math.hypot(...a) * Math.hypot(...b));

// Run against the stand-in always, and against a real provider when one is configured: what is
// asserted must hold for a real model (its vectors and token counts are not known in advance).
for (const kind of PROVIDERS) {
  describe.skipIf(kind.skip)(suiteName(kind, "OpenAI-compatible embedder"), () => {
    let provider: Provider;
    afterEach(() => provider?.close());

    it("batches inputs, keeps their order, sends the key as a bearer token, embeds with the model a call names, and meters the provider's own usage", async () => {
      provider = await kind.start();
      const embedder = new OpenAIEmbedder({ baseUrl: provider.url, apiKey: provider.apiKey, model: "a-model-never-asked-for", dimension: 3, sendDimensions: provider.sendDimensions, batchSize: 3 });
      const out = await embedder.embed(TEXTS, { model: provider.embeddingsModel, dimension: provider.dimension });
      expect(provider.requests.map((r) => [r.body.model, r.body.input.length])).toEqual([3, 3, 1].map((n) => [provider.embeddingsModel, n]));
      expect(provider.requests.every((r) => r.authorization === `Bearer ${provider.apiKey}`)).toBe(true);
      expect(out.vectors).toHaveLength(TEXTS.length);
      for (const v of out.vectors) expect(v).toHaveLength(provider.dimension);
      // Order: each text embedded again, in the opposite order, is nearest its own first vector.
      const again = (await embedder.embed([...TEXTS].reverse(), { model: provider.embeddingsModel, dimension: provider.dimension })).vectors.reverse();
      again.forEach((v, i) => {
        const nearest = out.vectors.map((w) => cosine(v, w)).reduce((best, c, j, all) => (c > all[best]! ? j : best), 0);
        expect(nearest).toBe(i);
      });
      // Metered as the provider reported it, request by request.
      const reported = provider.requests.slice(0, 3).map((r) => r.tokens);
      expect(reported.every((t) => Number.isInteger(t) && t! > 0)).toBe(true);
      expect(out).toMatchObject({ tokens: reported.reduce((a, b) => a! + b!, 0), estimated: false, model: provider.embeddingsModel });
    });

    it("names the provider's status only when it refuses, and does not retry a refusal", async () => {
      provider = await kind.start();
      provider.plan({ status: 401 });
      const embedder = new OpenAIEmbedder({ baseUrl: provider.url, apiKey: provider.apiKey, model: provider.embeddingsModel, dimension: provider.dimension, sendDimensions: provider.sendDimensions });
      const refused = await embedder.embed(["x"]).catch((e) => e);
      expect(refused).toMatchObject({ status: 502, code: "PROVIDER_REFUSED", message: expect.stringMatching(/HTTP 401/) });
      expect(provider.requests).toHaveLength(1);
      expect((await embedder.embed(["x"])).vectors[0]).toHaveLength(provider.dimension);
    });
  });
}

// Faults a real provider cannot be made to produce on demand: the stand-in only.
describe("OpenAI-compatible embedder: retries and refusals (against the local stand-in of the embeddings API)", () => {
  let standin: OpenAIStandin;
  afterEach(() => standin?.close());
  const embedder = (options: Partial<ConstructorParameters<typeof OpenAIEmbedder>[0]> = {}) =>
    new OpenAIEmbedder({ baseUrl: standin.url, apiKey: "sk-test-secret", model: "text-embedding-3-small", dimension: 16, backoffMs: 10, ...options });

  it("returns the stand-in's deterministic vectors, counted with cl100k as OpenAI's embedding models count", async () => {
    standin = await new OpenAIStandin(16).start();
    const out = await embedder().embed(TEXTS);
    expect(out.vectors).toEqual(TEXTS.map((t) => OpenAIStandin.vector(t, 16)));
    let tokens = 0;
    for (const t of TEXTS) tokens += await countTokens(t, "cl100k_base");
    expect(out.tokens).toBe(tokens);
  });

  it("refuses a call naming another model without its dimension (that model's vectors cannot be checked)", async () => {
    standin = await new OpenAIStandin(16).start();
    await expect(embedder().embed(["x"], { model: "text-embedding-3-large" })).rejects.toMatchObject({ code: "CONFIG_INVALID", message: expect.stringMatching(/no dimension was given for the embedding model text-embedding-3-large/) });
    expect(standin.requests).toEqual([]);
    expect((await embedder({ sendDimensions: true }).embed(["x"], { model: "text-embedding-3-large", dimension: 12 })).vectors[0]).toHaveLength(12);
    expect(standin.requests.at(-1)!.body).toMatchObject({ model: "text-embedding-3-large", dimensions: 12 });
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
