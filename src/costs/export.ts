import type { MonthlyReport } from "./cost-engine.js";

const cell = (v: unknown) => {
  const s = v === null || v === undefined ? "" : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** The monthly report as CSV, one row per tenant (amounts in USD, margin ratio as a fraction). */
export function monthlyReportToCsv(report: MonthlyReport): string {
  const header = ["period", "tenant_id", "tier", "revenue", "variable_cost", "fixed_cost", "total_cost", "margin", "margin_ratio", "unprofitable"];
  const rows = report.tenants.map((t) =>
    [report.period, t.tenantId, t.tier, t.revenue.toFixed(2), t.variableCost.toFixed(6), t.fixedCost.toFixed(2), t.totalCost.toFixed(6), t.margin.toFixed(6), t.marginRatio?.toFixed(4) ?? "", t.unprofitable].map(cell).join(","),
  );
  return [header.join(","), ...rows].join("\n") + "\n";
}
