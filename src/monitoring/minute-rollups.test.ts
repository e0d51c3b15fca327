import { describe, expect, it } from "vitest";
import type { Queryable } from "../db/db.js";
import { MinuteRollups, percentileOf } from "./minute-rollups.js";

/** A database that records what each statement was given, and fails the statements it is told to. */
function recordingDb(failAt: Set<number>) {
  const written: { tenant_id: string; ok: number }[][] = [];
  let calls = 0;
  const db: Queryable = {
    query: async (_text, params) => {
      if (failAt.has(calls++)) throw new Error("connection lost (test)");
      written.push(JSON.parse(String(params![0])));
      return [];
    },
  };
  return { db, written };
}

describe("minute rollups", () => {
  it("writes a backlog in statements of bounded size, and puts back what a failed statement and the untried ones held", async () => {
    const { db, written } = recordingDb(new Set([1]));
    const rollups = new MinuteRollups(db, db, { flushIntervalMs: 3_600_000, retentionMs: 86_400_000, onError: () => {}, now: () => 120_000 });
    for (let i = 0; i < 5_000; i++) rollups.record(`t-${i}`, 3, "ok");
    rollups.record("t-4999", 3, "ok");
    await expect(rollups.flush()).rejects.toThrow(/connection lost/);
    expect(written.map((w) => w.length)).toEqual([2_000]);
    rollups.record("t-4999", 3, "ok"); // gathered meanwhile: merged with what came back
    await rollups.flush();
    expect(written.map((w) => w.length)).toEqual([2_000, 2_000, 1_000]);
    const all = written.flat();
    expect(new Set(all.map((r) => r.tenant_id)).size).toBe(5_000);
    expect(all.find((r) => r.tenant_id === "t-4999")!.ok).toBe(3);
    expect(all.reduce((n, r) => n + r.ok, 0)).toBe(5_002);
    await rollups.close();
  });

  it("reads percentiles off the histogram, interpolated in a bucket; none from an empty one", () => {
    expect(percentileOf([0, 0, 0], 0.5)).toBeNull();
    expect(percentileOf([0, 10], 0.5)).toBeCloseTo(1.75); // bucket (1, 2.5]: half-way
    expect(percentileOf([10], 0.95)).toBeCloseTo(0.95);
  });
});
