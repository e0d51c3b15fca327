/**
 * Renders bench/results/operations-*.json as Markdown tables and an SVG chart for docs/benchmarks.md.
 *   npx tsx bench/render-operations.ts bench/results/operations-postgres.json docs/operations-postgres.svg
 */
import { readFileSync, writeFileSync } from "node:fs";

interface Latency {
  count: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
}
interface Step {
  step: string;
  seconds: number;
  neighbour: { queries: number; p50Ms: number; p95Ms: number; failed: number };
  result: Record<string, unknown> & {
    peakRssMiB: number;
    phaseSeconds?: Record<string, number>;
    tenantDuringMove?: { writes: Latency; reads: Latency; failed: number; limitedAndRetried?: number };
    writeLimit?: number | null;
    acknowledgedWrites?: number;
    acknowledgedWritesFound?: number;
  };
}

const [file, svgPath] = process.argv.slice(2) as [string, string | undefined];
const report = JSON.parse(readFileSync(file, "utf8"));
const steps: Step[] = report.steps;
const moves = steps.filter((s) => s.result.phaseSeconds);
const PHASES = ["begin", "copying", "indexing", "catching-up", "switchTransaction"] as const;

const out = ["| step | seconds | result | peak RSS MiB | neighbour queries | neighbour p50 / p95 ms | neighbour failures |", "|---|---:|---|---:|---:|---:|---:|"];
for (const s of steps) {
  const { peakRssMiB, phaseSeconds, tenantDuringMove, ...rest } = s.result;
  const result = phaseSeconds ? `${rest.index}, HNSW ${rest.annIndexed}` : Object.entries(rest).map(([k, v]) => `${k} ${v}`).join(", ");
  out.push(`| ${s.step} | ${s.seconds} | ${result} | ${peakRssMiB} | ${s.neighbour.queries} | ${s.neighbour.p50Ms} / ${s.neighbour.p95Ms} | ${s.neighbour.failed} |`);
}
out.push("", "Online moves, phase by phase (seconds), and the moving tenant's own traffic meanwhile:", "");
out.push("| move | " + PHASES.join(" | ") + " | tenant writes (p50 / p95 / max ms) | tenant reads (p50 / p95 / max ms) | failed | write limit (429s retried) | acknowledged writes found |");
out.push("|---|" + PHASES.map(() => "---:").join("|") + "|---:|---:|---:|---:|---:|");
for (const s of moves) {
  const t = s.result.tenantDuringMove!;
  const l = (x: Latency) => `${x.count} ops: ${x.p50Ms} / ${x.p95Ms} / ${x.maxMs}`;
  out.push(`| ${s.step.split(",")[0]} | ${PHASES.map((p) => s.result.phaseSeconds![p] ?? 0).join(" | ")} | ${l(t.writes)} | ${l(t.reads)} | ${t.failed} | ${s.result.writeLimit ? `${s.result.writeLimit}/s (${t.limitedAndRetried})` : "none"} | ${s.result.acknowledgedWritesFound} of ${s.result.acknowledgedWrites} |`);
}
console.log(out.join("\n"));

if (svgPath) {
  const W = 820, rowH = 34, L = 230, R = 10, T = 40, B = 50;
  const H = T + B + steps.length * rowH;
  const maxS = Math.max(...steps.map((s) => s.seconds)) * 1.75; // room for the labels right of the bars
  const x = (sec: number) => L + (sec / maxS) * (W - L - R);
  const colors: Record<string, string> = { begin: "#bbb", copying: "#6baed6", indexing: "#fd8d3c", "catching-up": "#74c476", switchTransaction: "#d62728", other: "#9e9ac8" };
  const rows = steps
    .map((s, i) => {
      const y = T + i * rowH;
      const label = `<text x="${L - 8}" y="${y + 18}" text-anchor="end">${s.step.split(" (")[0]!.split(",")[0]}</text>`;
      if (!s.result.phaseSeconds) {
        return `${label}<rect x="${L}" y="${y + 6}" width="${(x(s.seconds) - L).toFixed(1)}" height="18" fill="${colors.other}"/><text x="${(x(s.seconds) + 4).toFixed(1)}" y="${y + 19}">${s.seconds} s</text>`;
      }
      let at = 0;
      const segments = PHASES.map((p) => {
        const d = s.result.phaseSeconds![p] ?? 0;
        const rect = `<rect x="${x(at).toFixed(1)}" y="${y + 6}" width="${Math.max(x(at + d) - x(at), p === "switchTransaction" ? 2 : 0).toFixed(1)}" height="18" fill="${colors[p]}"/>`;
        at += d;
        return rect;
      }).join("");
      const pause = s.result.tenantDuringMove!.reads.maxMs;
      return `${label}${segments}<text x="${(x(s.seconds) + 4).toFixed(1)}" y="${y + 19}">${s.seconds} s (longest tenant wait ${Math.round(Math.max(pause, s.result.tenantDuringMove!.writes.maxMs))} ms)</text>`;
    })
    .join("\n");
  const legend = ["copying", "indexing", "catching-up", "switchTransaction", "other"].map((p, i) => `<rect x="${L + i * 100}" y="${H - 22}" width="12" height="12" fill="${colors[p]}"/><text x="${L + i * 100 + 16}" y="${H - 12}">${p === "switchTransaction" ? "switch" : p === "other" ? "other step" : p}</text>`).join("");
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
<text x="10" y="20" font-size="14">Operating one tenant of ${report.config.vectors.toLocaleString("en")} vectors on the server: seconds per step (online moves by phase)</text>
${rows}
${legend}
</svg>
`;
  writeFileSync(svgPath, svg);
}
