/**
 * Renders bench/results/http-*.json as a Markdown table and an SVG chart for docs/benchmarks.md.
 *   npx tsx bench/render-http.ts bench/results/http-postgres.json docs/http-load-postgres.svg
 */
import { readFileSync, writeFileSync } from "node:fs";

interface Step {
  connections: number;
  throughput: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  errorRate: number;
  responses: number;
}

const [file, svgPath] = process.argv.slice(2) as [string, string | undefined];
const report = JSON.parse(readFileSync(file, "utf8"));
const steps: Step[] = report.steps;
const out = ["| connections | answered / s | p50 ms | p95 ms | p99 ms | errors |", "|---:|---:|---:|---:|---:|---:|"];
for (const s of steps) out.push(`| ${s.connections} | ${s.throughput.toFixed(0)} | ${s.p50Ms.toFixed(1)} | ${s.p95Ms.toFixed(1)} | ${s.p99Ms.toFixed(1)} | ${(s.errorRate * 100).toFixed(2)} % |`);
out.push("", "Targets:");
for (const [name, met] of Object.entries(report.targets as Record<string, boolean>)) out.push(`- ${met ? "**met**" : "**missed**"}: ${name}`);
console.log(out.join("\n"));

if (svgPath) {
  const W = 640, H = 300, L = 60, R = 60, B = 50, T = 40;
  const maxT = Math.max(1600, ...steps.map((s) => s.throughput)) * 1.05;
  const maxL = Math.max(...steps.map((s) => s.p95Ms)) * 1.15;
  const x = (i: number) => L + (i + 0.5) * ((W - L - R) / steps.length);
  const yT = (v: number) => H - B - (v / maxT) * (H - T - B);
  const yL = (v: number) => H - B - (v / maxL) * (H - T - B);
  const bw = ((W - L - R) / steps.length) * 0.5;
  const bars = steps.map((s, i) => `<rect x="${(x(i) - bw / 2).toFixed(1)}" y="${yT(s.throughput).toFixed(1)}" width="${bw.toFixed(1)}" height="${(H - B - yT(s.throughput)).toFixed(1)}" fill="#9ecae1"/><text x="${x(i).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${s.connections}</text>`).join("");
  const line = steps.map((s, i) => `${x(i).toFixed(1)},${yL(s.p95Ms).toFixed(1)}`).join(" ");
  const dots = steps.map((s, i) => `<circle cx="${x(i).toFixed(1)}" cy="${yL(s.p95Ms).toFixed(1)}" r="3" fill="#d62728"/><text x="${(x(i) + 5).toFixed(1)}" y="${(yL(s.p95Ms) - 6).toFixed(1)}" fill="#d62728">${s.p95Ms.toFixed(0)}</text>`).join("");
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${L}" y="20" font-size="14">HTTP load (${report.config.tenants} tenants, 90 % queries): answered/s (bars) and p95 ms (line)</text>
<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#333"/>
${[0, 500, 1000, 1500].map((v) => `<line x1="${L}" y1="${yT(v)}" x2="${W - R}" y2="${yT(v)}" stroke="#eee"/><text x="${L - 6}" y="${yT(v) + 4}" text-anchor="end">${v}</text>`).join("")}
<line x1="${L}" y1="${yT(1500)}" x2="${W - R}" y2="${yT(1500)}" stroke="#2ca02c" stroke-dasharray="4 3"/><text x="${L + 4}" y="${yT(1500) - 4}" fill="#2ca02c">target 1,500/s</text>
${bars}
<polyline points="${line}" fill="none" stroke="#d62728"/>${dots}
<text x="${(W + L - R) / 2}" y="${H - 12}" text-anchor="middle">concurrent connections (closed loop)</text>
</svg>
`;
  writeFileSync(svgPath, svg);
}
