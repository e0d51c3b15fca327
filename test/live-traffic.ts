import { expect } from "vitest";
import type { Bulkhead } from "../src/bulkhead.js";
import { vec } from "./backends.js";

/** Helpers of the move suites: a tenant ("tenant-a") written and read like a live application while it moves. */

export const UNLIMITED = { requestsPerSecond: 100_000, burst: 100_000, maxConcurrent: 64 };

/** What the tenant must hold: every acknowledged write and delete, in order. */
export type Model = Map<string, { values: number[]; metadata: Record<string, unknown> }>;

export async function seed(bh: Bulkhead, tenantId: string, n: number, model?: Model): Promise<void> {
  for (let start = 0; start < n; start += 200) {
    const docs = Array.from({ length: Math.min(200, n - start) }, (_, i) => ({ id: `d${String(start + i).padStart(5, "0")}`, values: vec(start + i), metadata: { n: start + i } }));
    await bh.dataManager.upsertDocuments(tenantId, docs);
    for (const d of docs) model?.set(d.id, { values: d.values, metadata: { ...d.metadata, tenant_id: tenantId } });
  }
}

/**
 * Writes (new ids, overwrites, deletes) and reads tenant-a in a loop until `done`, like a live
 * application. Records every acknowledged write in `model` and every row a read returned.
 */
export function liveTraffic(bh: Bulkhead, model: Model, done: () => boolean, phase: () => string) {
  const stats = { writes: 0, reads: 0, writesByPhase: {} as Record<string, number>, errors: [] as unknown[], foreign: [] as unknown[] };
  // Each iteration yields to the event loop like requests arriving over the network would: embedded
  // PGlite answers without I/O, so a bare loop of awaits would starve timers and the move itself.
  const tick = () => new Promise((r) => setImmediate(r));
  const writer = (async () => {
    for (let i = 0; !done(); i++, await tick()) {
      try {
        const p = phase();
        if (i % 5 === 4) {
          const id = `d${String(i * 7 % 300).padStart(5, "0")}`;
          await bh.dataManager.deleteDocuments("tenant-a", [id]);
          model.delete(id);
        } else {
          const id = i % 5 === 3 ? `d${String(i * 11 % 300).padStart(5, "0")}` : `w${i}`;
          const doc = { id, values: vec(10_000 + i), metadata: { written: i } };
          await bh.dataManager.upsertDocuments("tenant-a", [doc]);
          model.set(id, { values: doc.values, metadata: { written: i, tenant_id: "tenant-a" } });
        }
        stats.writes++;
        stats.writesByPhase[p] = (stats.writesByPhase[p] ?? 0) + 1;
      } catch (err) {
        stats.errors.push(err);
      }
    }
  })();
  const reader = (async () => {
    for (let i = 0; !done(); i++, await tick()) {
      try {
        const r = await bh.dataManager.queryDocuments("tenant-a", vec(i), { topK: 5 });
        for (const m of r.matches) if (m.metadata.tenant_id !== "tenant-a" || String(m.id).startsWith("b")) stats.foreign.push(m);
        stats.reads++;
      } catch (err) {
        stats.errors.push(err);
      }
    }
  })();
  return { stats, finished: Promise.all([writer, reader]) };
}

/** Every document of tenant-a, read back, must equal the model exactly. */
export async function expectEqualsModel(bh: Bulkhead, model: Model): Promise<void> {
  const ids = [...model.keys()];
  const fetched = [];
  for (let i = 0; i < ids.length; i += 500) fetched.push(...(await bh.dataManager.fetchDocuments("tenant-a", ids.slice(i, i + 500))).documents);
  expect(fetched).toHaveLength(model.size);
  for (const d of fetched) {
    const want = model.get(d.id)!;
    expect(d.metadata).toEqual(want.metadata);
    d.values.forEach((v, i) => expect(v).toBeCloseTo(want.values[i]!, 5));
  }
  expect(await bh.dataManager.countDocuments("tenant-a")).toBe(model.size);
}
