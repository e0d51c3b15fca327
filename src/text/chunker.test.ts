import { describe, expect, it } from "vitest";
import { tokenizer } from "../costs/token-counter.js";
import { chunkText } from "./chunker.js";

const enc = await tokenizer("cl100k_base");
const opts = { maxTokens: 40, overlapTokens: 8 };

describe("chunker", () => {
  it("keeps Markdown sections apart, leads each with its heading, and keeps a fenced code block whole", async () => {
    const md = "# Install\n\nRun the installer.\n\n## On a server\n\n```sh\nnpm ci\nnpm start\n```\n\nThen open the dashboard.\n\n# Usage\n\nQuery it.";
    const chunks = await chunkText(md, "markdown", { maxTokens: 400, overlapTokens: 50 }, enc);
    expect(chunks.map((c) => [c.section, c.text])).toEqual([
      ["Install", "Install\n\nRun the installer."],
      ["Install › On a server", "On a server\n\n```sh\nnpm ci\nnpm start\n```\n\nThen open the dashboard."],
      ["Usage", "Usage\n\nQuery it."],
    ]);
    expect(chunks.map((c) => c.position)).toEqual([0, 1, 2]);
  });

  it("never exceeds the token limit, and consecutive chunks of a section overlap", async () => {
    const sentences = Array.from({ length: 60 }, (_, i) => `Sentence number ${i} talks about topic ${i % 7}.`).join(" ");
    const chunks = await chunkText(sentences, "text", opts, enc);
    expect(chunks.length).toBeGreaterThan(5);
    for (const c of chunks) expect(enc.encode(c.text).length).toBeLessThanOrEqual(opts.maxTokens);
    for (let i = 1; i < chunks.length; i++) {
      const previousEnd = chunks[i - 1]!.text.split(" ").slice(-2).join(" ");
      expect(chunks[i]!.text).toContain(previousEnd);
    }
    // Nothing lost: every sentence is in some chunk whole.
    for (let i = 0; i < 60; i++) expect(chunks.some((c) => c.text.includes(`Sentence number ${i} talks`))).toBe(true);
  });

  it("cuts text with no spaces or sentence ends at token boundaries, within the limit, losing nothing", async () => {
    const blob = "QUJD".repeat(2_000);
    const chunks = await chunkText(blob, "text", opts, enc);
    for (const c of chunks) expect(enc.encode(c.text).length).toBeLessThanOrEqual(opts.maxTokens);
    expect(chunks.map((c) => c.text).join("").replace(/\s/g, "")).toContain(blob.slice(0, 500));
  });

  it("reads HTML as text: scripts, styles and comments dropped, headings as sections, <pre> kept, entities decoded", async () => {
    const html = `<html><head><style>p{color:red}</style><script>alert("x")</script></head><body>
      <h1>Guide &amp; notes</h1><p>Fish &lt;3 chips.</p><!-- secret --><pre>a  b\n  c</pre>
      <h2>More</h2><ul><li>one</li><li>two &#x41;&#0;</li></ul></body></html>`;
    const chunks = await chunkText(html, "html", { maxTokens: 400, overlapTokens: 0 }, enc);
    const all = chunks.map((c) => c.text).join("\n");
    expect(all).not.toMatch(/alert|color:red|secret|<\/?[a-z]/i);
    expect(chunks[0]).toMatchObject({ section: "Guide & notes", text: "Guide & notes\n\nFish <3 chips.\n\na  b\n  c" });
    expect(chunks[1]).toMatchObject({ section: "Guide & notes › More", text: "More\n\none\n\ntwo A" });
    expect(all).not.toContain("\u0000");
  });

  it("cuts a long text without sentence ends in one pass and lets other work run meanwhile (one such document once held the event loop for 25 s)", async () => {
    const words = Array.from({ length: 100_000 }, (_, i) => `w${i % 997}`).join(" "); // ~590,000 characters, no . ! ? or blank line
    // The longest the event loop went without running anything else: not a speed target (it was
    // 25 s before; with yields it is tens of milliseconds), a guard that other work gets turns.
    let last = performance.now();
    let longest = 0;
    const timer = setInterval(() => {
      longest = Math.max(longest, performance.now() - last);
      last = performance.now();
    }, 0);
    const chunks = await chunkText(words, "text", { maxTokens: 400, overlapTokens: 50 }, enc);
    clearInterval(timer);
    expect(longest).toBeLessThan(2_000);
    for (const c of chunks) expect(c.tokens).toBeLessThanOrEqual(400);
    expect(chunks.at(-1)!.text.endsWith("w99999".replace("99999", String(99_999 % 997)))).toBe(true);
  });

  it("bounds a section's headings, which go with every chunk of it (a 200 KB heading once made 100 MB of sections)", async () => {
    const heading = Array.from({ length: 20_000 }, (_, i) => `Word${i}.`).join(" ");
    const chunks = await chunkText(`# ${heading}\n\nBody text.`, "markdown", { maxTokens: 400, overlapTokens: 50 }, enc);
    expect(chunks.length).toBeGreaterThan(10);
    for (const c of chunks) expect((c.section ?? "").length).toBeLessThanOrEqual(400);
  });
});
