import { describe, expect, it } from "vitest";
import { TenantNotFoundError } from "../errors.js";
import { PendingIndexer } from "./pending-indexer.js";

describe("PendingIndexer", () => {
  it("takes tenants in turn, one batch each, until each has caught up", async () => {
    const left = new Map([["tenant-a", 7], ["tenant-b", 2], ["tenant-c", 3]]);
    const order: string[] = [];
    const indexer = new PendingIndexer(async (tenantId, limit) => {
      order.push(tenantId);
      const n = Math.min(limit, left.get(tenantId)!);
      left.set(tenantId, left.get(tenantId)! - n);
      return n;
    }, () => {}, 2);
    for (const t of ["tenant-a", "tenant-b", "tenant-c"]) indexer.offer(t);
    indexer.offer("tenant-a"); // offered again while waiting: still one place in the line
    await indexer.idle();
    // a has 7: 2, 2, 2, 1 — between its batches the others get theirs.
    expect(order).toEqual(["tenant-a", "tenant-b", "tenant-c", "tenant-a", "tenant-b", "tenant-c", "tenant-a", "tenant-a"]);
    expect([...left.values()]).toEqual([0, 0, 0]);
  });

  it("bounds what a tenant may leave waiting: counted on offer, taken off as batches are added, cleared once caught up", async () => {
    let left = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const indexer = new PendingIndexer(async (_tenantId, limit) => {
      await gate;
      const n = Math.min(limit, left);
      left -= n;
      return n;
    }, () => {}, 4, 10);
    expect(indexer.mayDefer("tenant-a", 10)).toBe(true);
    expect(indexer.mayDefer("tenant-a", 11)).toBe(false);
    left = 8;
    indexer.offer("tenant-a", 8);
    expect(indexer.mayDefer("tenant-a", 2)).toBe(true);
    expect(indexer.mayDefer("tenant-a", 3)).toBe(false);
    expect(indexer.mayDefer("tenant-b", 10)).toBe(true); // another tenant's bound is its own
    release();
    await indexer.idle();
    expect(left).toBe(0);
    expect(indexer.mayDefer("tenant-a", 10)).toBe(true);
  });

  it("forgets a tenant's count when it changes (erased, registered again, moved) or is not found", async () => {
    let calls = 0;
    const indexer = new PendingIndexer(async (tenantId) => {
      calls++;
      throw new TenantNotFoundError(tenantId);
    }, () => {}, 4, 10);
    indexer.offer("tenant-a", 10);
    await indexer.idle();
    expect(calls).toBe(1);
    expect(indexer.mayDefer("tenant-a", 10)).toBe(true); // erased: its count went with it
    const held = new PendingIndexer(async () => new Promise<number>(() => {}), () => {}, 4, 10);
    held.offer("tenant-b", 10);
    expect(held.mayDefer("tenant-b", 1)).toBe(false);
    held.forget("tenant-b");
    expect(held.mayDefer("tenant-b", 10)).toBe(true);
    held.offer("tenant-c", 10);
    held.forget(null);
    expect(held.mayDefer("tenant-c", 10)).toBe(true);
  });

  it("leaves a tenant whose batch failed until its next write, naming only its id; an erased tenant quietly", async () => {
    const warnings: string[] = [];
    let calls = 0;
    const indexer = new PendingIndexer(async (tenantId) => {
      calls++;
      if (tenantId === "gone") throw new TenantNotFoundError(tenantId);
      // As the driver reports it: the row's values in `detail` and in the quoted part of the message.
      throw Object.assign(new Error('new row for relation "vec_5_1" violates check constraint "vec_5_one_value": "[0.1,0.2]"'), { code: "23514", detail: "Failing row contains (tenant-a, secret-doc, [0.1,0.2])." });
    }, (m) => warnings.push(m), 2);
    indexer.offer("tenant-a");
    indexer.offer("gone");
    await indexer.idle();
    expect(calls).toBe(2);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("tenant tenant-a");
    expect(warnings[0]).toContain("23514");
    expect(warnings[0]).not.toMatch(/secret-doc|0\.1/);
    indexer.offer("tenant-a");
    await indexer.idle();
    expect(calls).toBe(3);
  });

  it("stops after the batch in flight when closed, and takes no more offers", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    const indexer = new PendingIndexer(async (_tenantId, limit) => {
      calls++;
      await gate;
      return limit; // always more left
    }, () => {}, 2);
    indexer.offer("tenant-a");
    const closing = indexer.close();
    release();
    await closing;
    indexer.offer("tenant-a");
    await indexer.idle();
    expect(calls).toBe(1);
  });
});
