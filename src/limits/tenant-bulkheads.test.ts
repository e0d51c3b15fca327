import { describe, expect, it } from "vitest";
import { ConcurrencyLimitError } from "../errors.js";
import { TenantBulkheads } from "./tenant-bulkheads.js";

describe("TenantBulkheads", () => {
  it("lets a tenant hold at most its connection slots, queues the rest in order, refuses past maxConcurrent", async () => {
    const bulkheads = new TenantBulkheads(2);
    const order: number[] = [];
    const entered = [0, 1, 2, 3].map((i) => bulkheads.enter("noisy", 4).then((leave) => (order.push(i), leave)));
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([0, 1]); // two slots; 2 and 3 wait
    await expect(bulkheads.enter("noisy", 4)).rejects.toBeInstanceOf(ConcurrencyLimitError);
    expect(bulkheads.inFlight("noisy")).toBe(4);

    // Another tenant is not held up by the queue.
    const other = await bulkheads.enter("quiet", 4);
    other();

    (await entered[0]!)();
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([0, 1, 2]); // the freed slot passed to the first in line
    for (const p of entered.slice(1)) (await p)();
    expect(bulkheads.inFlight("noisy")).toBe(0);
  });

  it("ignores a second release of the same operation", async () => {
    const bulkheads = new TenantBulkheads(1);
    const leave = await bulkheads.enter("t1", 2);
    const waiting = bulkheads.enter("t1", 2);
    leave();
    leave();
    const second = await waiting;
    expect(bulkheads.inFlight("t1")).toBe(1);
    second();
    expect(bulkheads.inFlight("t1")).toBe(0);
  });
});
