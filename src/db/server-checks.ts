import type { Queryable } from "./db.js";

/**
 * Minor releases that fix the row-level-security bugs CVE-2023-2455 (RLS policies applied to the
 * wrong role after a cached plan), CVE-2024-10976 (policies ignored in subqueries after a role
 * change) and CVE-2025-8713 (optimizer statistics leaking rows hidden by RLS). Any release of a
 * listed major below the given minor has at least one of them.
 */
export const RLS_SAFE_MINOR: Readonly<Record<number, number>> = { 13: 22, 14: 19, 15: 14, 16: 10, 17: 6 };

export interface VersionVerdict {
  version: string;
  ok: boolean;
  reason: string;
}

/** Judges a `server_version_num` (e.g. 150020 for 15.20). */
export function judgeServerVersion(versionNum: number): VersionVerdict {
  const major = Math.floor(versionNum / 10_000);
  const minor = versionNum % 10_000;
  const version = `${major}.${minor}`;
  if (major < 13) return { version, ok: false, reason: `PostgreSQL ${version} is out of support and has known row-level-security bugs; upgrade to 15.14 or later` };
  const safe = RLS_SAFE_MINOR[major];
  if (safe !== undefined && minor < safe) {
    return {
      version,
      ok: false,
      reason: `PostgreSQL ${version} has known row-level-security bugs (CVE-2023-2455, CVE-2024-10976, CVE-2025-8713); upgrade to ${major}.${safe} or later`,
    };
  }
  return { version, ok: true, reason: `PostgreSQL ${version} has the fixes for the known row-level-security bugs` };
}

export async function checkServerVersion(db: Queryable): Promise<VersionVerdict> {
  const [row] = await db.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  return judgeServerVersion(Number(row!.v));
}

export interface RoleVerdict {
  role: string;
  ok: boolean;
  problems: string[];
}

/**
 * The runtime role must be subject to RLS: not superuser, not BYPASSRLS, and owner of no table in
 * the schema (owners skip non-forced policies and can disable RLS). Checked on the live catalog.
 */
export async function checkRuntimeRole(db: Queryable, schema: string, role?: string): Promise<RoleVerdict> {
  const [r] = await db.query<{ role: string; rolsuper: boolean; rolbypassrls: boolean; owned: number; member_of_owner: boolean }>(
    `SELECT r.rolname AS role, r.rolsuper, r.rolbypassrls,
            (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND pg_has_role(r.oid, c.relowner, 'USAGE')) AS owned
       FROM pg_roles r WHERE r.rolname = COALESCE($2, current_user)`,
    [schema, role ?? null],
  );
  if (!r) return { role: role ?? "?", ok: false, problems: [`role ${role} does not exist`] };
  const problems: string[] = [];
  if (r.rolsuper) problems.push(`${r.role} is a superuser, so row-level security does not apply to it`);
  if (r.rolbypassrls) problems.push(`${r.role} has BYPASSRLS`);
  if (r.owned > 0) problems.push(`${r.role} owns (or is a member of the owner of) ${r.owned} table(s) in schema ${schema}`);
  return { role: r.role, ok: problems.length === 0, problems };
}
