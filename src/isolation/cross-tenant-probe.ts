import { randomBytes } from "node:crypto";
import type { TenantDataManager } from "../data/data-manager.js";
import { whenAllowed } from "../limits/when-allowed.js";

export interface ProbeAttempt {
  name: string;
  passed: boolean;
  detail: string;
}

export interface ProbeReport {
  passed: boolean;
  attempts: ProbeAttempt[];
}

function randomUnitVector(dimension: number): number[] {
  const bytes = randomBytes(dimension * 4);
  const v = Array.from({ length: dimension }, (_, i) => bytes.readInt32LE(i * 4) / 2 ** 31);
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => x / norm);
}

/**
 * Attacks tenant A's data while holding only tenant B's identity, the way a malicious or buggy
 * caller would. It plants two canary documents in A, then as B: queries with A's exact vectors,
 * fetches and deletes A's ids, filters on A's `tenant_id` (plainly and inside `$or`), and upserts
 * over A's ids. It passes only if B never sees A's canaries and A's canaries are unchanged
 * afterwards. Canaries (and anything B wrote under those ids) are removed at the end.
 */
export async function probeCrossTenantIsolation(dataManager: TenantDataManager, tenantA: string, tenantB: string): Promise<ProbeReport> {
  if (tenantA === tenantB) throw new Error("probeCrossTenantIsolation needs two different tenants");
  const [placeA, placeB] = await Promise.all([dataManager.describePlacement(tenantA), dataManager.describePlacement(tenantB)]);
  const tag = randomBytes(6).toString("hex");
  const ids = [`bulkhead-probe-${tag}-1`, `bulkhead-probe-${tag}-2`];
  const canaries = ids.map((id) => ({ id, values: randomUnitVector(placeA.dimension), metadata: { probe: tag, secret: `canary-${tag}` } }));
  const attempts: ProbeAttempt[] = [];
  const record = (name: string, passed: boolean, detail: string) => attempts.push({ name, passed, detail });
  const leaked = (found: { id: string; metadata: Record<string, unknown> }[]) =>
    found.filter((m) => ids.includes(m.id) && (m.metadata.tenant_id !== tenantB || m.metadata.secret === `canary-${tag}`));

  await whenAllowed(() => dataManager.upsertDocuments(tenantA, canaries));
  try {
    if (placeB.dimension === placeA.dimension) {
      for (const [i, c] of canaries.entries()) {
        const r = await whenAllowed(() => dataManager.queryDocuments(tenantB, c.values, { topK: 100 }));
        const bad = leaked(r.matches);
        record(`B queries with A's exact vector #${i + 1}`, bad.length === 0, bad.length ? `saw ${bad.map((m) => m.id).join(", ")}` : `${r.matches.length} matches, none of A's`);
      }
      const probe = canaries[0]!.values;
      for (const [name, filter] of [
        ["B filters on tenant_id = A", { tenant_id: tenantA }],
        ["B filters with $or on A's tenant_id", { $or: [{ tenant_id: { $eq: tenantA } }, { tenant_id: { $ne: tenantB } }] }],
        ["B filters on A's canary metadata", { probe: tag }],
        ["B filters with $in over both tenant ids", { tenant_id: { $in: [tenantA, tenantB] }, probe: { $exists: true } }],
      ] as const) {
        const r = await whenAllowed(() => dataManager.queryDocuments(tenantB, probe, { topK: 100, filter }));
        const bad = leaked(r.matches);
        record(name, bad.length === 0, bad.length ? `saw ${bad.map((m) => m.id).join(", ")}` : `${r.matches.length} matches, none of A's`);
      }
    } else {
      record("B queries with A's vectors", true, `not applicable: dimensions differ (${placeA.dimension} vs ${placeB.dimension}), so B cannot even form the query`);
    }

    const fetched = await whenAllowed(() => dataManager.fetchDocuments(tenantB, ids));
    record("B fetches A's ids", fetched.documents.length === 0, `${fetched.documents.length} documents returned`);

    const deleted = await whenAllowed(() => dataManager.deleteDocuments(tenantB, ids));
    record("B deletes A's ids", deleted.deleted === 0, `${deleted.deleted} deleted`);

    if (placeB.dimension === placeA.dimension) {
      await whenAllowed(() => dataManager.upsertDocuments(tenantB, ids.map((id) => ({ id, values: randomUnitVector(placeB.dimension), metadata: { overwritten_by: tenantB } }))));
      record("B upserts over A's ids", true, "accepted into B's own namespace; A's copies checked below");
    }

    const after = await whenAllowed(() => dataManager.fetchDocuments(tenantA, ids));
    const intact =
      after.documents.length === canaries.length &&
      canaries.every((c) => {
        const d = after.documents.find((x) => x.id === c.id);
        return d && d.metadata.secret === c.metadata.secret && d.metadata.tenant_id === tenantA && d.metadata.overwritten_by === undefined &&
          d.values.every((v, i) => Math.abs(v - c.values[i]!) < 1e-6);
      });
    record("A's documents unchanged after B's attempts", intact, intact ? "vectors and metadata identical" : `A now holds ${after.documents.length} of ${canaries.length} canaries, or they changed`);
  } finally {
    await whenAllowed(() => dataManager.deleteDocuments(tenantA, ids));
    await whenAllowed(() => dataManager.deleteDocuments(tenantB, ids));
  }
  return { passed: attempts.every((a) => a.passed), attempts };
}

/**
 * The reference's security test: true only when tenant B could not read or change tenant A's data.
 *
 * @example
 * if (!(await testCrossTenantIsolation(dataManager, "tenant-001", "tenant-002"))) throw new Error("leak!");
 */
export async function testCrossTenantIsolation(dataManager: TenantDataManager, tenantA: string, tenantB: string): Promise<boolean> {
  return (await probeCrossTenantIsolation(dataManager, tenantA, tenantB)).passed;
}
