/**
 * Renders bench/results/storage-*.json as Markdown tables and an SVG chart for docs/benchmarks.md.
 *   npx tsx bench/render-storage.ts bench/results/storage-postgres.json > /tmp/section.md
 */
import { readFileSync, writeFileSync } from "node:fs";

interface Row {
  tenant: string;
  vectors: number;
  search: string;
  recall: number;
  p50Ms: number;
  p95Ms: number;
  plainP50Ms: number;
  plainP95Ms: number;
  overheadRatioP50: number;
  naiveRecall: number;
  naiveP95Ms: number;
  naiveIterativeRecall: number;
  naiveIterativeP95Ms: number;
}

const file = process.argv[2]!;
const report = JSON.parse(readFileSync(file, "utf8"));
const rows: Row[] = report.tenants;
const pick = rows.filter((r, i) => i < 4 || i % 10 === 9 || i >= rows.length - 2);

const naive = report.summary.naiveMeasured !== false;
const out: string[] = [];
out.push(`| tenant | vectors | search | recall@10 | p50 ms | p95 ms | plain SQL p50 / p95 ms | overhead ratio p50 |${naive ? " naive recall | naive p95 ms | naive iterative recall | naive iterative p95 ms |" : ""}`);
out.push(`|---|---:|---|---:|---:|---:|---:|---:|${naive ? "---:|---:|---:|---:|" : ""}`);
for (const r of pick) {
  const naiveCells = naive ? ` ${r.naiveRecall.toFixed(2)} | ${r.naiveP95Ms.toFixed(2)} | ${r.naiveIterativeRecall.toFixed(2)} | ${r.naiveIterativeP95Ms.toFixed(1)} |` : "";
  out.push(`| ${r.tenant} | ${r.vectors.toLocaleString("en")} | ${r.search} | ${r.recall.toFixed(3)} | ${r.p50Ms.toFixed(2)} | ${r.p95Ms.toFixed(2)} | ${r.plainP50Ms.toFixed(2)} / ${r.plainP95Ms.toFixed(2)} | ${r.overheadRatioP50.toFixed(2)} |${naiveCells}`);
}
out.push("");
out.push("Targets:");
for (const [name, met] of Object.entries(report.targets as Record<string, boolean>)) out.push(`- ${met ? "**met**" : "**missed**"}: ${name}`);
console.log(out.join("\n"));

// Chart: recall@10 per tenant (by size) for Bulkhead and the naive shared index.
const svgPath = process.argv[3];
if (svgPath) {
  const W = 720, H = 300, L = 50, B = 40, T = 30;
  const xs = rows.map((r) => Math.log10(r.vectors));
  const [xmin, xmax] = [Math.min(...xs), Math.max(...xs)];
  const x = (v: number) => L + ((Math.log10(v) - xmin) / (xmax - xmin || 1)) * (W - L - 20);
  const y = (r: number) => T + (1 - r) * (H - T - B);
  const dots = (key: keyof Row, colour: string) =>
    rows.map((r) => `<circle cx="${x(r.vectors).toFixed(1)}" cy="${y(r[key] as number).toFixed(1)}" r="3" fill="${colour}"/>`).join("");
  const ticks = [50, 100, 1000, 10000, 50000].filter((v) => Math.log10(v) >= xmin - 1e-9 && Math.log10(v) <= xmax + 1e-9);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${L}" y="18" font-size="14">recall@10 per tenant (${report.backend}), by tenant size</text>
<line x1="${L}" y1="${H - B}" x2="${W - 20}" y2="${H - B}" stroke="#333"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#333"/>
${[0, 0.25, 0.5, 0.75, 1].map((r) => `<text x="${L - 8}" y="${y(r) + 4}" text-anchor="end">${r}</text><line x1="${L}" y1="${y(r)}" x2="${W - 20}" y2="${y(r)}" stroke="#eee"/>`).join("")}
${ticks.map((v) => `<text x="${x(v)}" y="${H - B + 16}" text-anchor="middle">${v.toLocaleString("en")}</text>`).join("")}
<text x="${(W + L) / 2}" y="${H - 6}" text-anchor="middle">vectors in the tenant (log scale)</text>
${naive ? dots("naiveRecall", "#d62728") + dots("naiveIterativeRecall", "#ff9f40") : ""}${dots("recall", "#1f77b4")}
<circle cx="${W - 250}" cy="${T + 150}" r="4" fill="#1f77b4"/><text x="${W - 240}" y="${T + 154}">Bulkhead (namespace partitions)</text>
<circle cx="${W - 250}" cy="${T + 170}" r="4" fill="#ff9f40"/><text x="${W - 240}" y="${T + 174}">naive shared HNSW + iterative scan</text>
<circle cx="${W - 250}" cy="${T + 190}" r="4" fill="#d62728"/><text x="${W - 240}" y="${T + 194}">naive shared HNSW</text>
</svg>
`;
  writeFileSync(svgPath, svg);
}
