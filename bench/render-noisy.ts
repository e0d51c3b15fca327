/**
 * Renders bench/results/noisy-*.json as a Markdown table and an SVG chart for docs/benchmarks.md.
 *   npx tsx bench/render-noisy.ts bench/results/noisy-postgres.json docs/noisy-neighbour-postgres.svg
 */
import { readFileSync, writeFileSync } from "node:fs";

interface Phase {
  phase: string;
  victim: { sent: number; ok: number; p50Ms: number; p95Ms: number; p99Ms: number; maxMs: number };
  aggressor: { attempted: number; accepted: number; refused: Record<string, number>; skippedAtConcurrencyCap: number; meanRefusalUs: number | null; meanAcceptedMs: number | null };
  processCpuMsPerSecond: number;
}

const [file, svgPath] = process.argv.slice(2) as [string, string | undefined];
const report = JSON.parse(readFileSync(file, "utf8"));
const phases: Phase[] = report.phases;
const out: string[] = [];
out.push("| phase | victim ok / sent | victim p50 ms | victim p95 ms | victim p99 ms | aggressor attempted | accepted | refused | mean refusal µs | process CPU ms/s |");
out.push("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|");
for (const p of phases) {
  const refused = Object.entries(p.aggressor.refused).map(([code, n]) => `${n.toLocaleString("en")} ${code}`).join(", ") || "–";
  out.push(
    `| ${p.phase} | ${p.victim.ok} / ${p.victim.sent} | ${p.victim.p50Ms.toFixed(2)} | ${p.victim.p95Ms.toFixed(2)} | ${p.victim.p99Ms.toFixed(2)} | ${p.aggressor.attempted.toLocaleString("en")} | ${p.aggressor.accepted.toLocaleString("en")} | ${refused} | ${p.aggressor.meanRefusalUs ?? "–"} | ${p.processCpuMsPerSecond} |`,
  );
}
out.push("");
const sum = report.summary;
out.push(`Victim p95 pooled over both rounds: alone ${sum.victimP95AloneMs} ms, during the floods ${sum.victimP95FloodMs} ms — ratio **${sum.victimP95RatioFloodVsAlone}** (round 1: ${sum.victimP95RatioRound1}, round 2: ${sum.victimP95RatioRound2}); with the aggressor's limits lifted ${sum.victimP95UnlimitedMs} ms — ratio **${sum.victimP95RatioUnlimitedVsAlone}**.`);
out.push(`Suspension made in one instance enforced by another: p50 ${report.propagationMs.p50} ms, p95 ${report.propagationMs.p95} ms, max ${report.propagationMs.max} ms over ${report.propagationMs.trials} trials.`);
out.push("");
out.push("Targets:");
for (const [name, met] of Object.entries(report.targets as Record<string, boolean>)) out.push(`- ${met ? "**met**" : "**missed**"}: ${name}`);
console.log(out.join("\n"));

if (svgPath) {
  const W = 640, H = 300, L = 50, B = 50, T = 40;
  const max = Math.max(...phases.map((p) => p.victim.p95Ms)) * 1.15;
  const y = (ms: number) => H - B - (ms / max) * (H - T - B);
  const slot = (W - L - 20) / phases.length;
  const bars = phases
    .map((p, i) => {
      const x = L + i * slot + slot * 0.15;
      const w = slot * 0.3;
      const bar = (ms: number, dx: number, colour: string) =>
        `<rect x="${(x + dx).toFixed(1)}" y="${y(ms).toFixed(1)}" width="${w.toFixed(1)}" height="${(H - B - y(ms)).toFixed(1)}" fill="${colour}"/>` +
        `<text x="${(x + dx + w / 2).toFixed(1)}" y="${(y(ms) - 4).toFixed(1)}" text-anchor="middle">${ms.toFixed(1)}</text>`;
      return bar(p.victim.p50Ms, 0, "#9ecae1") + bar(p.victim.p95Ms, w + 4, "#1f77b4") + `<text x="${(x + w + 2).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${p.phase}</text>`;
    })
    .join("\n");
  const ticks = [0, 5, 10, 15, 20, 25, 30].filter((t) => t <= max);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${L}" y="20" font-size="14">Victim latency (ms) while another tenant floods (${report.config.backend}, ${report.config.rateLimiter} rate limits)</text>
${ticks.map((t) => `<line x1="${L}" y1="${y(t)}" x2="${W - 20}" y2="${y(t)}" stroke="#eee"/><text x="${L - 6}" y="${y(t) + 4}" text-anchor="end">${t}</text>`).join("")}
<line x1="${L}" y1="${H - B}" x2="${W - 20}" y2="${H - B}" stroke="#333"/>
${bars}
<rect x="${W - 170}" y="${T - 8}" width="10" height="10" fill="#9ecae1"/><text x="${W - 155}" y="${T + 1}">p50</text>
<rect x="${W - 120}" y="${T - 8}" width="10" height="10" fill="#1f77b4"/><text x="${W - 105}" y="${T + 1}">p95</text>
<text x="${(W + L) / 2}" y="${H - 12}" text-anchor="middle">flood: aggressor at ${report.config.aggressorRate}/s against its ${report.config.aggressorLimit.requestsPerSecond}/s limit; unlimited: same flood, limits lifted</text>
</svg>
`;
  writeFileSync(svgPath, svg);
}
