import { describe, expect, it } from "vitest";
import { BulkheadMetrics } from "./metrics.js";
import { TenantMonitor, type TenantAlert } from "./tenant-monitor.js";
import { percentile } from "./latency-window.js";

function monitor(clock: { t: number }, logs: string[] = []) {
  const config = { statsWindowMs: 60_000, alertP95Ms: 200, alertErrorRate: 0.05, alertMinRequests: 20, alertRecall: 0.99 };
  return new TenantMonitor(new BulkheadMetrics(async () => []), config, (m) => logs.push(m), () => clock.t);
}

describe("TenantMonitor", () => {
  it("reports nearest-rank percentiles, counts by outcome and the error rate of admitted operations", () => {
    const clock = { t: 1_000_000 };
    const m = monitor(clock);
    for (let i = 1; i <= 100; i++) m.record("t1", "query", i, "ok");
    m.record("t1", "query", 5_000, "error");
    m.record("t1", "query", 0.01, "refused");
    m.record("t1", "upsert", 0.02, "invalid");
    const s = m.getTenantStats("t1");
    expect(s).toMatchObject({ requests: 103, ok: 100, errors: 1, refused: 1, invalid: 1, p50: 51, p95: 96, p99: 100 });
    expect(s.errorRate).toBeCloseTo(1 / 101, 10);
    expect(m.getTenantStats("nobody")).toMatchObject({ requests: 0, p95: null, errorRate: 0 });
  });

  it("forgets operations older than the window", () => {
    const clock = { t: 0 };
    const m = monitor(clock);
    m.record("t1", "query", 900, "ok");
    clock.t = 30_000;
    m.record("t1", "query", 10, "ok");
    expect(m.getTenantStats("t1").p99).toBe(900);
    clock.t = 61_000;
    expect(m.getTenantStats("t1")).toMatchObject({ requests: 1, p99: 10 });
  });

  it("fires an alert once when p95 crosses the threshold and resolves it when it is back under (event, log line, metric)", async () => {
    const clock = { t: 0 };
    const logs: string[] = [];
    const m = monitor(clock, logs);
    const alerts: TenantAlert[] = [];
    m.on("alert", (a) => alerts.push(a));
    for (let i = 0; i < 19; i++) m.record("slow", "query", 500, "ok");
    expect(m.checkAlerts("slow")).toEqual([]); // 19 < alertMinRequests: not judged yet
    m.record("slow", "query", 500, "ok");
    m.checkAlerts("slow");
    m.checkAlerts("slow");
    expect(alerts.map((a) => [a.kind, a.state, a.value])).toEqual([["latency_p95", "firing", 500]]);
    expect(logs.some((l) => l.includes("alert firing: tenant slow latency_p95 500.0 ms (threshold 200 ms)"))).toBe(true);
    let text = await m.metricsText();
    expect(text).toContain('bulkhead_tenant_alert_active{tenant="slow",kind="latency_p95"} 1');
    expect(text).toContain('bulkhead_tenant_alerts_total{tenant="slow",kind="latency_p95"} 1');

    clock.t = 61_000; // the slow operations leave the window
    for (let i = 0; i < 20; i++) m.record("slow", "query", 3, "ok");
    m.checkAlerts("slow");
    expect(alerts.at(-1)).toMatchObject({ kind: "latency_p95", state: "resolved" });
    text = await m.metricsText();
    expect(text).toContain('bulkhead_tenant_alert_active{tenant="slow",kind="latency_p95"} 0');
  });

  it("alerts on an error rate above 5 % for that tenant only", () => {
    const clock = { t: 0 };
    const m = monitor(clock);
    const alerts: TenantAlert[] = [];
    m.on("alert", (a) => alerts.push(a));
    for (let i = 0; i < 90; i++) m.record("flaky", "query", 2, "ok");
    for (let i = 0; i < 10; i++) m.record("flaky", "query", 2, "error");
    // Refusals are the tenant's own limits at work, not errors.
    for (let i = 0; i < 100; i++) m.record("busy", "query", 2, i < 30 ? "refused" : "ok");
    m.checkAlerts("flaky");
    m.checkAlerts("busy");
    expect(alerts.map((a) => [a.tenantId, a.kind, a.state, a.value])).toEqual([["flaky", "error_rate", "firing", 0.1]]);
  });

  it("computes percentiles by nearest rank", () => {
    expect(percentile([], 0.5)).toBeNull();
    expect(percentile([7], 0.99)).toBe(7);
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(percentile([1, 2, 3, 4], 0.75)).toBe(3);
  });

  it("judges recall once enough samples are in: low → a firing alert and one lowRecall, then fresh samples; back up → resolved", async () => {
    const logs: string[] = [];
    const m = monitor({ t: 0 }, logs);
    const alerts: TenantAlert[] = [];
    const low: { tenantId: string; recall: number }[] = [];
    m.on("alert", (a) => alerts.push(a));
    m.on("lowRecall", (l) => low.push(l));
    for (let i = 0; i < 19; i++) m.recordRecall("t1", 0.5);
    expect(m.getTenantStats("t1")).toMatchObject({ recall: 0.5, recallSamples: 19 });
    expect(alerts).toEqual([]); // not judged before 20 samples
    m.recordRecall("t1", 0.5);
    expect(alerts).toMatchObject([{ tenantId: "t1", kind: "recall", state: "firing", value: 0.5, threshold: 0.99 }]);
    expect(low).toEqual([{ tenantId: "t1", recall: 0.5, samples: 20 }]);
    expect(m.getTenantStats("t1")).toMatchObject({ recall: null, recallSamples: 0 }); // measuring afresh
    for (let i = 0; i < 20; i++) m.recordRecall("t1", 1);
    expect(alerts.map((a) => a.state)).toEqual(["firing", "resolved"]);
    expect(low).toHaveLength(1);
    expect(m.getTenantStats("t1")).toMatchObject({ recall: 1, recallSamples: 20 });
    expect(logs.join("\n")).toContain("alert firing: tenant t1 recall 0.500 (threshold 0.99) over 20 sampled queries");
    expect(await m.metricsText()).toContain('bulkhead_tenant_recall{tenant="t1"} 1');
    expect(m.getTenantStats("other")).toMatchObject({ recall: null, recallSamples: 0 });
  });
});
