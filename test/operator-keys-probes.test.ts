import { afterAll, describe, expect, it } from "vitest";
import { buildServer } from "../src/server/app.js";
import { TenantTier } from "../src/config.js";
import { AuthenticationError } from "../src/errors.js";
import { KeyRevokedError } from "../src/tenancy/api-keys.js";
import { isProbeTenant, newProbeTenantIds, registerProbeTenant } from "../src/tenancy/probe-tenants.js";
import { BACKENDS, dropTestSchemas, vec } from "./backends.js";

afterAll(dropTestSchemas);

for (const backend of BACKENDS) {
  describe(`${backend.name}: operator paper cuts (keys, readiness probes)`, () => {
    it("a revoked key cannot be rotated into a working one; admin keys show no scopes", async () => {
      const { bulkhead: bh } = await backend.open({ config: { dimension: 8 } });
      try {
        await bh.registry.registerTenant("acme", "Acme", TenantTier.PRO);
        const key = await bh.keys.createKey("tenant", { tenantId: "acme", scopes: ["read"] }, "test");
        await bh.keys.revokeKey(key.keyId, "test");
        const before = await bh.keys.listKeys({ tenantId: "acme" });
        await expect(bh.keys.rotateKey(key.keyId, "test")).rejects.toBeInstanceOf(KeyRevokedError);
        await expect(bh.keys.rotateKey(key.keyId, "test")).rejects.toMatchObject({ status: 409, code: "KEY_REVOKED" });
        expect(await bh.keys.listKeys({ tenantId: "acme" })).toEqual(before); // nothing issued
        await expect(bh.keys.verify(key.key)).rejects.toBeInstanceOf(AuthenticationError);

        // An active key still rotates, once: the second rotation of the same key is refused.
        const live = await bh.keys.createKey("tenant", { tenantId: "acme" }, "test");
        const rotated = await bh.keys.rotateKey(live.keyId, "test");
        expect((await bh.keys.verify(rotated.key)).tenantId).toBe("acme");
        await expect(bh.keys.rotateKey(live.keyId, "test")).rejects.toBeInstanceOf(KeyRevokedError);

        const admin = await bh.keys.createKey("admin", { scopes: ["read", "write"] }, "test");
        expect(admin.scopes).toEqual([]);
        expect((await bh.keys.listKeys({ tenantId: null })).map((k) => k.scopes)).toEqual([[]]);
        expect((await bh.keys.verify(admin.key)).kind).toBe("admin");
      } finally {
        await bh.close();
      }
    });

    it("the readiness checklist runs in probe tenants of its own: no customer's ledger, keys or data change, and the probes are erased", async () => {
      const { bulkhead: bh } = await backend.open({ config: { dimension: 8 } });
      try {
        for (const id of ["acme", "beta"]) await bh.registry.registerTenant(id, id, TenantTier.PRO);
        await bh.dataManager.upsertDocuments("acme", [{ id: "d1", values: vec(1) }]);
        await bh.costEngine.allocateFixedCosts(100, "equal");
        const ledger = async () => Promise.all(["acme", "beta"].map(async (t) => (await bh.costEngine.getTenantCostSummary(t)).usage));
        const keys = async () => (await bh.keys.listKeys()).map((k) => k.keyId);
        const [usageBefore, keysBefore] = [await ledger(), await keys()];

        const app = await buildServer(bh, { logDestination: false });
        const checks = await app.readiness();
        await app.close();
        expect(checks.filter((c) => !c.passed)).toEqual([]);
        const probe = checks.find((c) => c.name === "Cross-tenant isolation probe")!;
        expect(probe.detail).toMatch(/by bh-probe-[a-f0-9]+-b on bh-probe-[a-f0-9]+-a/);
        expect(checks.find((c) => c.name === "Queries are metered into the usage ledger")!.detail).toMatch(/^one query of bh-probe-/);

        expect(await ledger()).toEqual(usageBefore);
        expect(await keys()).toEqual(keysBefore);
        expect(await bh.dataManager.countDocuments("acme")).toBe(1);
        const left = (await bh.registry.listTenants()).map((t) => t.tenantId);
        expect(left).toEqual(["acme", "beta"]);
        expect(left.some(isProbeTenant)).toBe(false);
      } finally {
        await bh.close();
      }
    }, 60_000);

    it("probe tenants are never billed: left out of the monthly report and of fixed-cost allocation", async () => {
      const { bulkhead: bh } = await backend.open({ config: { dimension: 8 } });
      try {
        await bh.registry.registerTenant("acme", "Acme", TenantTier.PRO);
        const [probe] = newProbeTenantIds();
        await registerProbeTenant(bh.registry, probe); // as during a readiness run
        await bh.dataManager.queryDocuments(probe, vec(1), { topK: 1 });
        expect(await bh.costEngine.allocateFixedCosts(100, "equal")).toEqual({ acme: 100 });
        const report = await bh.costEngine.monthlyReport();
        expect(report.tenants.map((t) => t.tenantId)).toEqual(["acme"]);
        // The prefix is reserved: a customer cannot register a tenant that would never be billed.
        await expect(bh.registry.registerTenant("bh-probe-free-ride", "Free ride", TenantTier.PRO)).rejects.toMatchObject({ status: 400, field: "tenantId" });
      } finally {
        await bh.close();
      }
    });
  });
}
