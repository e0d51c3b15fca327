import { describe, expect, it } from "vitest";
import type { Placement, VectorStore } from "../stores/store.js";
import { copyOnline, type MoveProgress } from "./placement-move.js";

const placement = { tenantId: "tenant-a", store: "home", indexId: 1, index: "shared-index-1", namespace: "tenant-a", slot: 1, isolation: "namespace", dimension: 8, metric: "cosine", annIndexed: false, efSearch: null, epoch: 1, moving: true } as Placement;

/**
 * A store whose catch-up faces a change log of `backlog()` ids (the decision under test is the copy
 * loop's: the real catch-up against a tenant writing at full speed is measured by bench:operations).
 */
function catchUpAgainst(backlog: (round: number, limited: boolean) => number) {
  let round = 0;
  const limits: number[] = [];
  const store = {
    copyPage: async () => ({ copied: 0, lastId: null, done: true }),
    count: async () => 0,
    buildAnnIndex: async () => false,
    pendingChanges: async () => backlog(round, limits.length > 0),
    catchUp: async (_from: Placement, _to: Placement, limit: number) => {
      round++;
      await new Promise((r) => setTimeout(r, 4 + 2 * round)); // rounds slow down as the target's graph grows
      return Math.min(limit, backlog(round - 1, limits.length > 0));
    },
  } as unknown as VectorStore;
  const progress: MoveProgress[] = [];
  const run = copyOnline(store, placement, { ...placement, indexId: 2 }, { phase: "copying", cursor: null, copied: 0, targetIndexed: false, total: 0 }, { save: async () => {}, annIndexThreshold: 2_000, limitWrites: async (v) => void limits.push(v) }, { batchSize: 100, onProgress: (p) => progress.push(p) });
  return { run, limits, progress, rounds: () => round };
}

describe("copyOnline's catch-up", () => {
  it("limits the tenant's writes once two rounds in a row left the change log no smaller, then switches when it shrinks", async () => {
    // The tenant writes as fast as the rounds copy (the log stays at 1,000 ids) until its writes are
    // limited; then each round gains 100 on it.
    let limitedAt = 0;
    const move = catchUpAgainst((round, limited) => (limited ? Math.max(0, 1_000 - 100 * (round - (limitedAt ||= round))) : 1_000));
    await move.run;
    expect(move.limits).toHaveLength(1);
    // Half the rate the second round (the second behind) copied at: 100 ids in at least 8 ms → at most
    // 6,250 vectors/s; a Node timer may fire up to 1 ms early as performance.now() sees it (libuv caches
    // the loop's time), so at most 100 / 7 ms / 2 ≈ 7,143 (6,845 seen once on a loaded machine).
    expect(move.limits[0]).toBeGreaterThan(0);
    expect(move.limits[0]).toBeLessThanOrEqual(7_143);
    expect(move.rounds()).toBeGreaterThan(10); // it kept catching up, limited, until a round was small
    expect(move.progress.some((p) => p.writeLimit === move.limits[0])).toBe(true);
  });

  it("limits them too when the log shrinks too slowly to be done within the rounds allowed", async () => {
    // 20 ids gained per round on a log of 5,000: 250 rounds at that pace, more than the 50 allowed.
    let limitedAt = 0;
    const move = catchUpAgainst((round, limited) => (limited ? Math.max(0, 5_000 - 20 * (limitedAt ||= round) - 500 * (round - limitedAt)) : 5_000 - 20 * round));
    await move.run;
    expect(move.limits).toHaveLength(1);
    expect(move.rounds()).toBeLessThan(20);
  });

  it("lowers the limit again when the tenant still keeps up with the rounds under it", async () => {
    // The log stays at 1,000 ids until the tenant's writes have been limited twice.
    let secondAt = 0;
    const move = catchUpAgainst((round) => (move?.limits.length >= 2 ? Math.max(0, 1_000 - 300 * (round - (secondAt ||= round))) : 1_000));
    await move.run;
    expect(move.limits).toHaveLength(2);
    expect(move.rounds()).toBeLessThan(15);
  });

  it("leaves a tenant whose change log shrinks round by round alone", async () => {
    const move = catchUpAgainst((round) => Math.max(0, 450 - 100 * round));
    await move.run;
    expect(move.limits).toEqual([]);
    expect(move.rounds()).toBe(5); // 100, 100, 100, 100, 50 (< 100: the switch takes the rest)
  });
});
