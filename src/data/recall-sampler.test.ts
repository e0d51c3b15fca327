import { describe, expect, it } from "vitest";
import { PAUSE_AFTER_FAILURE_MS, RecallSampler } from "./recall-sampler.js";

describe("RecallSampler", () => {
  it("records recall@k, runs one sample at a time, and leaves a tenant whose sample failed out for a while — not its neighbours", async () => {
    const clock = { t: 0 };
    const recorded: [string, number][] = [];
    const warnings: string[] = [];
    const sampler = new RecallSampler(1, (t, r) => recorded.push([t, r]), (m) => warnings.push(m), () => 0, () => clock.t);
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    sampler.offer("tenant-a", ["a", "b", "c", "x"], async () => {
      await slow;
      return ["a", "b", "c", "d"];
    });
    let ran = false;
    sampler.offer("tenant-b", ["a"], async () => ((ran = true), ["a"])); // dropped: the slot is taken
    release();
    await sampler.drain();
    expect(ran).toBe(false);
    expect(recorded).toEqual([["tenant-a", 0.75]]);

    // A failed sample (a filter too heavy to run exactly in time) pauses that tenant only.
    sampler.offer("tenant-b", ["a"], async () => Promise.reject(new Error("canceling statement due to statement timeout")));
    await sampler.drain();
    expect(warnings.join("\n")).toContain("a recall sample of tenant tenant-b failed (not sampled again for 60 s)");
    sampler.offer("tenant-b", ["a"], async () => ((ran = true), ["a"]));
    await sampler.drain();
    expect(ran).toBe(false);
    sampler.offer("tenant-a", ["a"], async () => ["a"]);
    await sampler.drain();
    expect(recorded).toEqual([["tenant-a", 0.75], ["tenant-a", 1]]);
    clock.t = PAUSE_AFTER_FAILURE_MS;
    sampler.offer("tenant-b", ["a"], async () => ((ran = true), ["a", "b"]));
    await sampler.drain();
    expect(recorded.at(-1)).toEqual(["tenant-b", 0.5]);
  });
});
