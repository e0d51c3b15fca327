/**
 * Renders bench:http-noisy results (one or more runs, e.g. this commit and an older build measured
 * the same day) as a Markdown table and an SVG chart of the victim's p95 per phase.
 *   npx tsx bench/render-http-noisy.ts docs/http-noisy-postgres.svg bench/results/http-noisy-postgres.json bench/results/http-noisy-postgres-before.json
 */
import { readFileSync, writeFileSync } from "node:fs";

interface Report {
  label: string;
  date: string;
  config: { victimRate: number; floodConnections: number; phaseSeconds: number; rounds: number };
  victim: { aloneP95Ms: number; floodP95Ms: number; ratio: number; bareFloodP95Ms: number; bareRatio: number; aloneP50Ms: number; floodP50Ms: number; bareFloodP50Ms: number };
  refusals: { answered: number; p50Ms: number; p95MsWorstPhase: number; serviceCpuMicrosecondsEach: number[]; bulkheadAnsweredPerSecond: number; bareAnsweredPerSecond: number; simultaneous300?: { allAnsweredMs: number; refused: number }[] };
  targets: Record<string, boolean>;
}

const [svgPath, ...files] = process.argv.slice(2) as [string, ...string[]];
const reports: Report[] = files.map((f) => JSON.parse(readFileSync(f, "utf8")));
const out: string[] = [];
out.push("| build | victim p95 alone | during the flood | ratio | flood at a bare server (reference) | ratio | flood answered/s (bare) | refusal p50 / worst p95 | service CPU per flood answer | 300 simultaneous refusals, all answered in |");
out.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const r of reports) {
  const burst = r.refusals.simultaneous300?.map((b) => `${Math.round(b.allAnsweredMs)}`).join(", ") ?? "–";
  out.push(
    `| ${r.label} | ${r.victim.aloneP95Ms} ms | ${r.victim.floodP95Ms} ms | **×${r.victim.ratio}** | ${r.victim.bareFloodP95Ms} ms | ×${r.victim.bareRatio} | ${r.refusals.bulkheadAnsweredPerSecond.toLocaleString("en")} (${r.refusals.bareAnsweredPerSecond.toLocaleString("en")}) | ${r.refusals.p50Ms} / ${r.refusals.p95MsWorstPhase} ms | ${r.refusals.serviceCpuMicrosecondsEach.join(", ")} µs | ${burst} ms |`,
  );
}
out.push("");
for (const r of reports) out.push(`Targets (${r.label}): ${Object.entries(r.targets).map(([name, met]) => `${met ? "**met**" : "**missed**"} — ${name}`).join("; ")}`);
console.log(out.join("\n"));

const W = 680, H = 320, L = 56, B = 56, T = 44;
const values = reports.flatMap((r) => [r.victim.aloneP95Ms, r.victim.floodP95Ms, r.victim.bareFloodP95Ms]);
const max = Math.max(...values) * 1.15;
const y = (ms: number) => H - B - (ms / max) * (H - T - B);
const slot = (W - L - 20) / reports.length;
const colours = { alone: "#9ecae1", flood: "#d62728", bare: "#7f7f7f" };
const bars = reports
  .map((r, i) => {
    const w = slot * 0.22;
    const x0 = L + i * slot + slot * 0.12;
    const bar = (ms: number, k: number, colour: string) => {
      const x = x0 + k * (w + 4);
      return `<rect x="${x.toFixed(1)}" y="${y(ms).toFixed(1)}" width="${w.toFixed(1)}" height="${(H - B - y(ms)).toFixed(1)}" fill="${colour}"/><text x="${(x + w / 2).toFixed(1)}" y="${(y(ms) - 4).toFixed(1)}" text-anchor="middle">${ms.toFixed(0)}</text>`;
    };
    return bar(r.victim.aloneP95Ms, 0, colours.alone) + bar(r.victim.floodP95Ms, 1, colours.flood) + bar(r.victim.bareFloodP95Ms, 2, colours.bare) + `<text x="${(x0 + 1.5 * (w + 4)).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${r.label}</text>`;
  })
  .join("\n");
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${L}" y="20" font-size="14">Victim p95 (ms): alone, while a neighbour floods the service, and with the flood at a bare server</text>
<line x1="${L}" y1="${H - B}" x2="${W - 20}" y2="${H - B}" stroke="#333"/>
${bars}
<rect x="${L}" y="${T - 12}" width="10" height="10" fill="${colours.alone}"/><text x="${L + 14}" y="${T - 3}">alone</text>
<rect x="${L + 70}" y="${T - 12}" width="10" height="10" fill="${colours.flood}"/><text x="${L + 84}" y="${T - 3}">flood at Bulkhead</text>
<rect x="${L + 210}" y="${T - 12}" width="10" height="10" fill="${colours.bare}"/><text x="${L + 224}" y="${T - 3}">same flood at a bare 429 server (reference)</text>
<text x="${(W + L) / 2}" y="${H - 14}" text-anchor="middle">victim ${reports[0]!.config.victimRate} queries/s; flood ${reports[0]!.config.floodConnections} closed-loop connections from another process; ${reports[0]!.config.rounds} rounds of ${reports[0]!.config.phaseSeconds} s</text>
</svg>
`;
writeFileSync(svgPath, svg);
