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

/** Tables the data plane works on besides the vector tables (`vec_<index>`): its counters, a move's change log, remote stores' ids, text documents and their chunks. */
const DATA_PLANE_TABLES = ["document_counts", "daily_query_counts", "move_changes", "remote_ids", "text_documents", "text_chunks"];

export interface DataRoleVerdict extends RoleVerdict {
  /**
   * What only a superuser or the database's owner can take away — advisory locks, per-table
   * statistics and sizes, temporary tables — and role-level settings: not fatal, but a stolen
   * credential can take control-plane locks, read per-namespace row counts or plant temporary
   * objects. `scripts/harden-catalogue.sql` revokes them.
   */
  exposures: string[];
}

/**
 * The data-plane role (checked from the control-plane connection, `db`): RLS applies to it, it is
 * neither the control-plane role nor a member of it, it has what the data path needs (granted by
 * migrations run with it configured), and nothing of the control plane — no table but the vector
 * tables and the data path's own, no DDL or provisioning function, not the context secret.
 */
export async function checkDataRole(db: Queryable, schema: string, dataRole: string, controlRole: string): Promise<DataRoleVerdict> {
  const base = await checkRuntimeRole(db, schema, dataRole);
  if (base.problems.some((p) => p.includes("does not exist"))) return { ...base, exposures: [] };
  const problems = [...base.problems];
  const [r] = await db.query<{ member: boolean; granted: boolean; tables: string[]; functions: string[]; advisory: boolean; stats: boolean; temporary: boolean; settings: string[] | null }>(
    `SELECT pg_has_role($2::text, $3::text, 'MEMBER') AS member,
            has_table_privilege($2, format('%I.document_counts', $1::text), 'INSERT')
              AND has_function_privilege($2, format('%I.check_placement(text, int)', $1::text), 'EXECUTE') AS granted,
            ARRAY(SELECT c.relname::text FROM pg_class c
                   WHERE c.relnamespace = $1::text::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
                     AND c.relname !~ '^vec_[0-9]+(_[0-9]+)?$' AND NOT (c.relname = ANY($4::text[]))
                     AND (has_table_privilege($2, c.oid, 'SELECT') OR has_table_privilege($2, c.oid, 'INSERT')
                       OR has_table_privilege($2, c.oid, 'UPDATE') OR has_table_privilege($2, c.oid, 'DELETE'))
                   ORDER BY 1) AS tables,
            ARRAY(SELECT p.proname::text FROM pg_proc p
                   WHERE p.pronamespace = $1::text::regnamespace AND p.prosecdef
                     AND p.proname NOT IN ('current_tenant', 'check_placement', 'lock_tenant_writes')
                     AND has_function_privilege($2, p.oid, 'EXECUTE')
                   ORDER BY 1) AS functions,
            has_function_privilege($2, 'pg_catalog.pg_advisory_xact_lock(bigint)', 'EXECUTE') AS advisory,
            has_function_privilege($2, 'pg_catalog.pg_stat_get_live_tuples(oid)', 'EXECUTE') AS stats,
            has_database_privilege($2, current_database(), 'TEMPORARY') AS temporary,
            (SELECT rolconfig FROM pg_roles WHERE rolname = $2::text) AS settings`,
    [schema, dataRole, controlRole, DATA_PLANE_TABLES],
  );
  if (dataRole === controlRole) problems.push(`${dataRole} is the control-plane role itself`);
  else if (r!.member) problems.push(`${dataRole} is a member of the control-plane role ${controlRole}, so it holds all of its privileges`);
  if (!r!.granted) problems.push(`${dataRole} lacks the data path's privileges: migrate with DATABASE_DATA_URL set (\`bulkhead db migrate\`, or start with DATABASE_OWNER_URL) so the owner grants them`);
  if (r!.tables.length) problems.push(`${dataRole} can reach control-plane tables: ${r!.tables.join(", ")}`);
  if (r!.functions.length) problems.push(`${dataRole} can execute control-plane functions: ${r!.functions.join(", ")}`);
  const exposures: string[] = [];
  if (r!.advisory) exposures.push(`${dataRole} can take any advisory lock (control-plane and other tenants' locks)`);
  if (r!.stats) exposures.push(`${dataRole} can read per-table statistics (row counts of every namespace)`);
  if (r!.temporary) exposures.push(`${dataRole} can create temporary tables (objects that could shadow ours in a function without a safe search path)`);
  if (r!.settings?.length) exposures.push(`${dataRole} has role-level settings (ALTER ROLE … SET ${r!.settings.map((c) => c.split("=")[0]).join(", ")}): a role can set these for itself; check who did`);
  return { role: dataRole, ok: problems.length === 0, problems, exposures };
}

/**
 * Ways a caller could lead the functions that run as the owner (SECURITY DEFINER ones, and those
 * they call) to objects of its own: a function whose search path is not `<schema>, pg_catalog, …,
 * pg_temp` (PostgreSQL searches pg_temp FIRST for tables unless it is listed, and a schema before
 * pg_catalog can shadow built-ins), or a schema on that path where someone other than its owner —
 * PUBLIC or a runtime role — may create objects. Migration 13 pins the paths; this finds any
 * function that lost it or was added without it, and a database where PUBLIC kept CREATE.
 */
export async function ownerFunctionExposures(db: Queryable, schema: string, runtimeRoles: readonly string[]): Promise<string[]> {
  const functions = await db.query<{ fn: string; path: string | null }>(
    `SELECT p.oid::regprocedure::text AS fn, (SELECT substr(c, 13) FROM unnest(p.proconfig) c WHERE c LIKE 'search\\_path=%') AS path
       FROM pg_proc p
      WHERE p.pronamespace = $1::text::regnamespace
        AND (p.prosecdef OR EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\\_path=%'))
      ORDER BY 1`,
    [schema],
  );
  const paths = functions.map((f) => ({ fn: f.fn, path: (f.path ?? "").split(",").map((part) => part.trim().replace(/^"(.*)"$/, "$1")) }));
  const unsafe = paths.filter(({ path }) => !(path[0] === schema && path[1] === "pg_catalog" && path.at(-1) === "pg_temp"));
  const problems = unsafe.length ? [`functions that run as the owner without a safe search path (<schema>, pg_catalog, …, pg_temp): ${unsafe.map((f) => f.fn).join(", ")}`] : [];
  // Every schema those paths name, besides pg_catalog and pg_temp.
  const schemas = [...new Set(paths.flatMap((f) => f.path))].filter((n) => n && n !== "pg_catalog" && n !== "pg_temp");
  if (schemas.length) {
    const creators = await db.query<{ schema: string; who: string }>(
      `SELECT n.nspname::text AS schema, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS who
         FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
        WHERE n.nspname = ANY($1::text[]) AND a.privilege_type = 'CREATE'
          AND (a.grantee = 0 OR a.grantee::regrole::text = ANY($2::text[]))
        ORDER BY 1, 2`,
      [schemas, runtimeRoles],
    );
    for (const c of creators) problems.push(`${c.who} may create objects in schema ${c.schema}, which functions that run as the owner search`);
  }
  return problems;
}
