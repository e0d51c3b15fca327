import { Tiktoken } from "js-tiktoken/lite";

/** BPE encodings Bulkhead can count with: o200k (GPT-4o and newer), cl100k (GPT-4, GPT-3.5, text-embedding-3). */
export type Encoding = "o200k_base" | "cl100k_base";

const loaded = new Map<Encoding, Promise<Tiktoken>>();

async function encoder(encoding: Encoding): Promise<Tiktoken> {
  let enc = loaded.get(encoding);
  if (!enc) {
    // The rank tables ship inside the package (no download) but are megabytes: load on first use.
    enc = (encoding === "o200k_base" ? import("js-tiktoken/ranks/o200k_base") : import("js-tiktoken/ranks/cl100k_base")).then((m) => new Tiktoken(m.default));
    loaded.set(encoding, enc);
  }
  return enc;
}

/** The tokenizer of an encoding, loaded once (for code that splits text by tokens: the chunker). */
export function tokenizer(encoding: Encoding = "cl100k_base"): Promise<Tiktoken> {
  return encoder(encoding);
}

/**
 * Counts tokens exactly as OpenAI's tokenizers do, so callers can pass text instead of counts.
 *
 * @example
 * await countTokens("hello world"); // 2
 */
export async function countTokens(text: string, encoding: Encoding = "o200k_base"): Promise<number> {
  if (typeof text !== "string") throw new TypeError("countTokens takes a string");
  if (text.length === 0) return 0;
  return (await encoder(encoding)).encode(text).length;
}
