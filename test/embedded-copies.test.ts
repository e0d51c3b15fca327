import { describe, expect, it } from "vitest";
import { TenantTier } from "../src/config.js";
import { PgliteDb } from "../src/db/pglite-db.js";
import { pglite } from "./backends.js";

/** In-memory databases start as copies of one migrated image (src/db/open.ts): each must be a database of its own. */
describe("embedded in-memory databases", () => {
  it("are independent copies: their own data and their own context secret", async () => {
    const [a, b] = [await pglite.open(), await pglite.open()];
    try {
      await a.bulkhead.registry.registerTenant("tenant-a", "A", TenantTier.FREE);
      expect((await b.bulkhead.registry.listTenants()).map((t) => t.tenantId)).toEqual([]);
      const secret = async (db: unknown) => Buffer.from((await (db as PgliteDb).owner.query<{ secret: Uint8Array }>("SELECT secret FROM context_secret"))[0]!.secret).toString("hex");
      const [sa, sb] = [await secret(a.db), await secret(b.db)];
      expect(sa).toMatch(/^[0-9a-f]{64}$/);
      expect(sa).not.toBe(sb);
      // A proof made for one database opens nothing in the other.
      await b.bulkhead.registry.registerTenant("tenant-a", "A in b", TenantTier.FREE);
      await a.bulkhead.dataManager.upsertDocuments("tenant-a", [{ id: "1", values: Array.from({ length: 384 }, (_, i) => i + 1) }]);
      expect(await b.bulkhead.dataManager.countDocuments("tenant-a")).toBe(0);
    } finally {
      await a.bulkhead.close();
      await b.bulkhead.close();
    }
  });
});
