import type { Queryable } from "../db/db.js";

/** One recorded admin action or key event. */
export interface AuditEntry {
  id: number;
  at: Date;
  /** Who did it: `admin:<key id>`, `cli`, `bootstrap`, … */
  actor: string;
  /** What was done, e.g. `tenant.suspend`, `key.create`. */
  action: string;
  /** What it was done to: a tenant id or `key:<key id>`. */
  target: string | null;
  details: Record<string, unknown>;
}

/** Append-only record of admin actions and key events, in the database. */
export class AuditLog {
  constructor(private readonly db: Queryable) {}

  /** Records one entry; pass the transaction of the change so both commit or neither does. */
  async record(actor: string, action: string, target: string | null, details: Record<string, unknown> = {}, tx: Queryable = this.db): Promise<void> {
    await tx.query("INSERT INTO audit_log (actor, action, target, details) VALUES ($1, $2, $3, $4)", [actor, action, target, JSON.stringify(details)]);
  }

  /** The newest entries first; with `target`, only those done to it (a tenant id or `key:<key id>`). */
  async list(limit = 100, target?: string): Promise<AuditEntry[]> {
    const rows = await this.db.query<{ id: string; at: Date | string; actor: string; action: string; target: string | null; details: Record<string, unknown> }>(
      "SELECT id, at, actor, action, target, details FROM audit_log WHERE $2::text IS NULL OR target = $2 ORDER BY id DESC LIMIT $1",
      [Math.max(1, Math.min(limit, 10_000)), target ?? null],
    );
    return rows.map((r) => ({ id: Number(r.id), at: new Date(r.at), actor: r.actor, action: r.action, target: r.target, details: r.details }));
  }
}
