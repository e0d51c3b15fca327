import type { Tiktoken } from "js-tiktoken/lite";

/** What a document's text is written in; decides which structure the chunker keeps together. */
export type TextFormat = "text" | "markdown" | "html";

export const TEXT_FORMATS: readonly TextFormat[] = ["text", "markdown", "html"];

/** How documents are cut: at most `maxTokens` per chunk, consecutive chunks of a section sharing `overlapTokens`. */
export interface ChunkingOptions {
  maxTokens: number;
  overlapTokens: number;
}

/** One piece of a document, as stored and searched. */
export interface Chunk {
  /** 0-based order in the document. */
  position: number;
  text: string;
  /** The headings above it (`Install › On a server`), or null before the first. */
  section: string | null;
  tokens: number;
}

/** A run of text the chunker keeps together when it can: a paragraph, a list, a code block. */
interface Block {
  text: string;
  section: string | null;
  /** Code keeps its lines: split at line ends, never re-flowed, no overlap. */
  code: boolean;
}

/**
 * Cuts a document into chunks of at most `maxTokens` tokens (counted with the embedding model's
 * tokenizer), keeping its structure: a chunk never spans two sections (headings of Markdown or
 * HTML), paragraphs and code blocks are kept whole when they fit, and only what does not fit is
 * cut — at sentence ends, then at spaces, then (text with neither, e.g. a long base64 run) at token
 * boundaries. Consecutive chunks of one section share `overlapTokens` tokens, so a sentence cut in
 * two is still found whole in one of them.
 *
 * @example
 * const chunks = await chunkText("# Install\n\nRun `npm i`.", "markdown", { maxTokens: 400, overlapTokens: 50 }, await tokenizer());
 * // [{ position: 0, text: "Install\n\nRun `npm i`.", section: "Install", tokens: 8 }]
 */
export async function chunkText(text: string, format: TextFormat, options: ChunkingOptions, enc: Tiktoken): Promise<Chunk[]> {
  const blocks = format === "markdown" ? markdownBlocks(text) : format === "html" ? htmlBlocks(text) : plainBlocks(text);
  const count = (s: string) => enc.encode(s).length;
  const chunks: Chunk[] = [];
  let body = "";
  // Tokens of `body`, counted piece by piece: each unit is encoded once, and a joint (space or
  // paragraph break) is counted as 2 tokens, never less than it costs — so a chunk never exceeds
  // the limit, and a long document costs one pass of the tokenizer, not one per unit.
  let tokens = 0;
  let section: string | null = null;
  let sinceYield = 0;
  const flush = () => {
    if (body.trim()) chunks.push({ position: chunks.length, text: body, section, tokens: count(body) });
    body = "";
    tokens = 0;
  };
  for (const block of blocks) {
    if (block.section !== section) {
      flush();
      section = block.section;
    }
    // Units of the block in order (sentences or lines, each within the limit), packed greedily:
    // inside a block joined as written, between blocks by a paragraph break.
    let first = true;
    for (const unit of await units(block, options.maxTokens, enc)) {
      // A megabyte of text is a few hundred milliseconds of tokenizing: other requests go in between.
      if ((sinceYield += unit.tokens) > 20_000) {
        sinceYield = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
      const joint = body === "" ? "" : first ? "\n\n" : block.code ? "\n" : " ";
      first = false;
      const cost = (joint ? JOINT_TOKENS : 0) + unit.tokens;
      if (tokens + cost <= options.maxTokens) {
        body += joint + unit.text;
        tokens += cost;
        continue;
      }
      const previous = body;
      flush();
      // The next chunk of the same section starts with the end of this one (prose only).
      const carried = block.code ? "" : tail(previous, options.overlapTokens, enc);
      const carriedTokens = carried ? count(carried) + JOINT_TOKENS : 0;
      if (carried && carriedTokens + unit.tokens <= options.maxTokens) {
        body = `${carried} ${unit.text}`;
        tokens = carriedTokens + unit.tokens;
      } else {
        body = unit.text;
        tokens = unit.tokens;
      }
    }
  }
  flush();
  return chunks;
}

/** What a joint between two units may cost at most ("\n\n" or " " merged with its neighbours). */
const JOINT_TOKENS = 2;

/** The last `n` tokens of `text` (whole words where the cut allows), for the next chunk's overlap. */
function tail(text: string, n: number, enc: Tiktoken): string {
  if (n <= 0) return "";
  const ids = enc.encode(text);
  if (ids.length <= n) return "";
  const cut = enc.decode(ids.slice(ids.length - n));
  // Start at a word: a token boundary inside a word would carry half of it.
  const space = cut.search(/\s/);
  return (space >= 0 && space < cut.length - 1 ? cut.slice(space) : cut).trim();
}

/**
 * A block as units of at most `max` tokens with their counts, in order: whole if it fits, else its
 * sentences (code: its lines), long ones cut at spaces, words longer than `max` at tokens. Linear
 * in the block's size — every piece is tokenized once — and it yields to other work as it goes: a
 * megabyte with no sentence ends once took 45 s of one event loop here.
 */
async function units(block: Block, max: number, enc: Tiktoken): Promise<{ text: string; tokens: number }[]> {
  // A block far longer than `max` tokens could ever be in characters is not tokenized whole.
  if (block.text.length <= max * 8) {
    const whole = enc.encode(block.text).length;
    if (whole <= max) return [{ text: block.text, tokens: whole }];
  }
  const parts = block.code ? block.text.split("\n") : block.text.split(/(?<=[.!?])\s+|\n+/).filter((u) => u.trim());
  const out: { text: string; tokens: number }[] = [];
  let sinceYield = 0;
  for (const part of parts) {
    if ((sinceYield += part.length) > 50_000) {
      sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const tokens = part.length <= max * 8 ? enc.encode(part).length : Infinity;
    if (tokens <= max) out.push({ text: part, tokens });
    else for (const piece of await splitLong(part, max, enc)) out.push(piece);
  }
  return out;
}

/**
 * A unit longer than `max` tokens: words packed up to `max` (each word tokenized once, with the
 * space before it: a word's tokens in running text), a word longer than that cut at tokens.
 */
async function splitLong(unit: string, max: number, enc: Tiktoken): Promise<{ text: string; tokens: number }[]> {
  const out: { text: string; tokens: number }[] = [];
  let words: string[] = [];
  let tokens = 0;
  const push = () => {
    if (words.length > 0) out.push({ text: words.join(" "), tokens });
    words = [];
    tokens = 0;
  };
  let sinceYield = 0;
  for (const word of unit.split(/\s+/).filter(Boolean)) {
    if (++sinceYield > 5_000) {
      sinceYield = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const ids = enc.encode(` ${word}`);
    if (ids.length > max) {
      push();
      const bare = enc.encode(word);
      for (let i = 0; i < bare.length; i += max) out.push({ text: enc.decode(bare.slice(i, i + max)), tokens: Math.min(max, bare.length - i) });
      continue;
    }
    if (tokens + ids.length > max) push();
    words.push(word);
    tokens += ids.length;
  }
  push();
  return out;
}

/**
 * A chunk's section: its headings' path, each heading cut at 120 characters and the path at 400.
 * The section goes with every chunk of it (stored, indexed, embedded, shown as a source), so an
 * unbounded heading would be multiplied by its chunks: a 200 KB heading once made 100 MB of sections.
 */
function sectionOf(headings: readonly string[]): string | null {
  const cut = (t: string, n: number) => (t.length > n ? `${t.slice(0, n - 1)}…` : t);
  const path = headings.filter(Boolean).map((h) => cut(h, 120)).join(" › ");
  return path ? cut(path, 400) : null;
}

function plainBlocks(text: string): Block[] {
  return paragraphs(text).map((p) => ({ text: p, section: null, code: false }));
}

const paragraphs = (text: string) =>
  text
    .replace(/\r\n?/g, "\n")
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter(Boolean);

/** Markdown: ATX headings open sections (and lead their first chunk); fenced code stays one block. */
function markdownBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  const headings: string[] = [];
  let section: string | null = null;
  let lines: string[] = [];
  let fence: string | null = null;
  const flushProse = () => {
    for (const p of paragraphs(lines.join("\n"))) blocks.push({ text: p, section, code: false });
    lines = [];
  };
  for (const line of text.replace(/\r\n?/g, "\n").split("\n")) {
    if (fence !== null) {
      lines.push(line);
      if (line.trimStart().startsWith(fence)) {
        blocks.push({ text: lines.join("\n"), section, code: true });
        lines = [];
        fence = null;
      }
      continue;
    }
    const opening = /^\s{0,3}(```+|~~~+)/.exec(line);
    if (opening) {
      flushProse();
      fence = opening[1]!;
      lines.push(line);
      continue;
    }
    const heading = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      flushProse();
      const level = heading[1]!.length;
      headings.length = level - 1;
      headings[level - 1] = heading[2]!;
      section = sectionOf(headings);
      // The heading's words belong to the section's text, so a search for them finds it.
      blocks.push({ text: heading[2]!, section, code: false });
      continue;
    }
    lines.push(line);
  }
  if (fence !== null) blocks.push({ text: lines.join("\n"), section, code: true }); // an unclosed fence runs to the end
  else flushProse();
  return blocks.filter((b) => b.text.trim());
}

const BLOCK_TAGS = "p|div|section|article|main|header|footer|nav|aside|blockquote|ul|ol|li|table|thead|tbody|tr|td|th|dl|dt|dd|figure|figcaption|br|hr|form";

/**
 * HTML: scripts, styles and comments dropped; h1–h6 open sections; <pre> stays one code block;
 * other block elements end paragraphs; the remaining tags are removed and entities decoded.
 * Not a browser's parser — enough to keep a page's structure for chunking, and nothing in the
 * document is ever executed or fetched.
 */
function htmlBlocks(html: string): Block[] {
  const blocks: Block[] = [];
  const headings: string[] = [];
  let section: string | null = null;
  const cleaned = html
    .replace(/<!--[\s\S]*?(-->|$)/g, " ")
    .replace(/<(script|style|template|noscript)\b[\s\S]*?(<\/\1\s*>|$)/gi, " ");
  const token = /<(h[1-6]|pre)\b[^>]*>([\s\S]*?)(<\/\1\s*>|$)/gi;
  let last = 0;
  const prose = (fragment: string) => {
    const text = fragment.replace(new RegExp(`<\\/?(${BLOCK_TAGS})\\b[^>]*>`, "gi"), "\n\n").replace(/<[^>]*>/g, "");
    for (const p of paragraphs(decodeEntities(text))) blocks.push({ text: p.replace(/[ \t]+/g, " "), section, code: false });
  };
  for (let m = token.exec(cleaned); m; m = token.exec(cleaned)) {
    prose(cleaned.slice(last, m.index));
    last = m.index + m[0].length;
    const tag = m[1]!.toLowerCase();
    const inner = decodeEntities(m[2]!.replace(/<[^>]*>/g, ""));
    if (tag === "pre") {
      if (inner.trim()) blocks.push({ text: inner.replace(/^\n+|\s+$/g, ""), section, code: true });
      continue;
    }
    const title = inner.replace(/\s+/g, " ").trim();
    if (!title) continue;
    const level = Number(tag[1]);
    headings.length = level - 1;
    headings[level - 1] = title;
    section = sectionOf(headings);
    blocks.push({ text: title, section, code: false });
  }
  prose(cleaned.slice(last));
  return blocks;
}

const NAMED: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " " };

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]+);/gi, (whole, body: string) => {
    if (body[0] !== "#") return NAMED[body.toLowerCase()] ?? whole;
    const code = body[1] === "x" || body[1] === "X" ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
    // NUL, surrogates and out-of-range code points are not text: a space instead (never stored as is).
    return code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff) ? String.fromCodePoint(code) : " ";
  });
}
