import { createHash } from "node:crypto";
import type { Queryable } from "./db.js";

/** Proofs kept at most; past it the cache starts over (a proof costs two SHA-256 of a few bytes). */
const CACHE_LIMIT = 10_000;

const sha256 = (...parts: Buffer[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};

/**
 * Proofs of tenant contexts: `sha256(secret || sha256(secret || tenant id))` in hex, exactly what
 * `current_tenant()` (migration 13) recomputes from the database's `context_secret`. The secret is
 * read once, by the control-plane role; the data-plane role cannot read it, so only this process
 * can put its connections in a tenant's context.
 */
export class TenantProofs {
  private readonly cache = new Map<string, string>();

  private constructor(private readonly secret: Buffer) {}

  /** Reads the database's secret (as the owner or the control-plane role). */
  static async load(db: Queryable): Promise<TenantProofs> {
    const [row] = await db.query<{ secret: Buffer | Uint8Array }>("SELECT secret FROM context_secret");
    if (!row) throw new Error("context_secret is empty: the schema was not migrated by Bulkhead (migration 13)");
    return new TenantProofs(Buffer.from(row.secret));
  }

  readonly prove = (tenantId: string): string => {
    let proof = this.cache.get(tenantId);
    if (proof === undefined) {
      const id = Buffer.from(tenantId, "utf8");
      proof = sha256(this.secret, sha256(this.secret, id)).toString("hex");
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(tenantId, proof);
    }
    return proof;
  };
}
