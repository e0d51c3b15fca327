import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Queryable } from "../db/db.js";

export interface DashboardSession {
  /** The admin key the operator signed in with: actions are audited as `admin:<keyId>`, like the API's. */
  keyId: string;
  /** What every form of this session must send back (derived from the session's secret, never stored). */
  csrf: string;
  expiresAt: Date;
}

const hash = (token: string) => createHash("sha256").update(token).digest();
const csrfOf = (token: string) => createHmac("sha256", token).update("bulkhead-dashboard-csrf").digest("base64url");

/**
 * Dashboard sign-ins (migration 23): an admin key is exchanged for a random session token held in
 * an HttpOnly cookie; the database keeps only its hash. A session is valid until it expires, is
 * signed out, or its key is revoked or rotated — checked on every request, in every instance.
 */
export class DashboardSessions {
  constructor(
    private readonly db: Queryable,
    private readonly ttlMs: number,
  ) {}

  async create(keyId: string): Promise<{ token: string; session: DashboardSession }> {
    const token = randomBytes(32).toString("base64url");
    const expiresAt = new Date(Date.now() + this.ttlMs);
    await this.db.query("INSERT INTO dashboard_sessions (id_hash, key_id, expires_at) VALUES ($1, $2, $3)", [hash(token), keyId, expiresAt]);
    // Expired sessions of anyone go as new ones come: the table holds live sessions only.
    await this.db.query("DELETE FROM dashboard_sessions WHERE expires_at < now()");
    return { token, session: { keyId, csrf: csrfOf(token), expiresAt } };
  }

  /** The session of a cookie's token, or null: unknown, expired, signed out, or its key revoked. */
  async find(token: string | undefined): Promise<DashboardSession | null> {
    if (!token || !/^[A-Za-z0-9_-]{43}$/.test(token)) return null;
    const [row] = await this.db.query<{ key_id: string; expires_at: Date | string }>(
      `SELECT s.key_id, s.expires_at FROM dashboard_sessions s JOIN api_keys k ON k.id = s.key_id
        WHERE s.id_hash = $1 AND s.expires_at > now() AND k.revoked_at IS NULL AND k.kind = 'admin'`,
      [hash(token)],
    );
    return row ? { keyId: row.key_id, csrf: csrfOf(token), expiresAt: new Date(row.expires_at) } : null;
  }

  async end(token: string): Promise<void> {
    await this.db.query("DELETE FROM dashboard_sessions WHERE id_hash = $1", [hash(token)]);
  }
}

/** Whether a form's CSRF token is the session's (in constant time). */
export function csrfMatches(session: DashboardSession, sent: unknown): boolean {
  if (typeof sent !== "string") return false;
  const a = Buffer.from(sent);
  const b = Buffer.from(session.csrf);
  return a.length === b.length && timingSafeEqual(a, b);
}
