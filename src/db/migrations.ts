import { DatabaseError } from "../errors.js";
import type { Queryable } from "./db.js";
import { TENANT_PROOF_SETTING, TENANT_SETTING } from "./db.js";

/** What the migration SQL is rendered with. */
export interface MigrationContext {
  /** Schema holding Bulkhead's objects. */
  schema: string;
  /** The control-plane role: the login (server) or NOLOGIN (embedded) role the service's registry, keys and costs run as. */
  runtimeRole: string;
  /**
   * The data-plane role, granted tenant data only (see migration 13 and \`grantDataPlane\`); null
   * when the service runs without one (a server without DATABASE_DATA_URL).
   */
  dataRole?: string | null;
  /** Schema where the pgvector extension lives. */
  vectorSchema: string;
}

interface Migration {
  version: number;
  name: string;
  sql: (ctx: MigrationContext) => string;
}

const q = (ident: string) => `"${ident.replace(/"/g, '""')}"`;

/**
 * Versioned migrations. Tables that hold tenant data are created at run time (one per index,
 * one partition per namespace) by the SECURITY DEFINER functions defined here, so the runtime
 * role never owns them and every one gets forced RLS the same way.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "registry, placement and vector-table provisioning",
    sql: ({ schema, runtimeRole, vectorSchema }) => {
      const s = q(schema);
      const r = q(runtimeRole);
      const path = `${s}, ${q(vectorSchema)}, pg_catalog`;
      // The scalar subquery makes PostgreSQL evaluate the setting once per statement (an InitPlan,
      // then a one-time filter) instead of once per row. Doubled quotes: it sits inside format('…').
      const policy = `tenant_id = (SELECT current_setting(''${TENANT_SETTING}'', true))`;
      return `
CREATE TABLE ${s}.indexes (
  id           serial PRIMARY KEY,
  name         text NOT NULL UNIQUE,
  kind         text NOT NULL CHECK (kind IN ('shared', 'dedicated')),
  dimension    int  NOT NULL CHECK (dimension BETWEEN 1 AND 16000),
  metric       text NOT NULL CHECK (metric IN ('cosine', 'euclidean', 'dotproduct')),
  max_namespaces int NOT NULL CHECK (max_namespaces >= 1),
  created_at   timestamptz NOT NULL DEFAULT now()
);

-- The tenant catalogue is control-plane data (read by the runtime role to resolve placements);
-- it has no tenant_id column, so "every table with tenant_id is under forced RLS" stays checkable.
CREATE TABLE ${s}.tenants (
  id              text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
  name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  tier            text NOT NULL CHECK (tier IN ('free', 'pro', 'enterprise')),
  status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  quota_overrides jsonb NOT NULL DEFAULT '{}',
  index_id        int NOT NULL REFERENCES ${s}.indexes(id),
  -- Namespace slot in a shared index (1..max_namespaces); NULL in a dedicated index.
  slot            int CHECK (slot >= 1),
  ann_indexed     boolean NOT NULL DEFAULT false,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (index_id, slot)
);

GRANT USAGE ON SCHEMA ${s} TO ${r};
GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.indexes, ${s}.tenants TO ${r};
GRANT USAGE ON SEQUENCE ${s}.indexes_id_seq TO ${r};

-- Enables and forces RLS on a tenant-data table and scopes every command to the tenant context.
-- A missing context yields NULL and an empty one '' (no tenant has that id): both match no row.
CREATE FUNCTION ${s}.protect_table(p_table text) RETURNS void
LANGUAGE plpgsql SET search_path = ${path} AS $fn$
BEGIN
  EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', p_table);
  EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', p_table);
  EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (${policy}) WITH CHECK (${policy})', p_table);
END
$fn$;
REVOKE ALL ON FUNCTION ${s}.protect_table(text) FROM PUBLIC;

-- One table per index: partitioned by tenant for a shared index, plain for a dedicated one.
CREATE FUNCTION ${s}.create_vector_table(p_index_id int, p_dimension int, p_partitioned boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${path} AS $fn$
DECLARE t text := 'vec_' || p_index_id;
BEGIN
  EXECUTE format('CREATE TABLE %I (tenant_id text NOT NULL, id text NOT NULL, embedding vector(%s) NOT NULL, '
    'metadata jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, id))%s',
    t, p_dimension, CASE WHEN p_partitioned THEN ' PARTITION BY LIST (tenant_id)' ELSE '' END);
  PERFORM ${s}.protect_table(t);
  -- Privileges on the parent only: partitions are unreachable directly (and RLS-forced anyway).
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO ${r}', t);
END
$fn$;

-- A namespace is a partition holding exactly one tenant's rows.
CREATE FUNCTION ${s}.create_namespace(p_index_id int, p_slot int, p_tenant text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${path} AS $fn$
DECLARE p text := 'vec_' || p_index_id || '_' || p_slot;
BEGIN
  IF p_tenant !~ '^[a-z0-9][a-z0-9-]{1,62}$' THEN RAISE EXCEPTION 'invalid tenant id %', p_tenant; END IF;
  EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES IN (%L)', p, 'vec_' || p_index_id, p_tenant);
  PERFORM ${s}.protect_table(p);
END
$fn$;

CREATE FUNCTION ${s}.drop_vector_storage(p_index_id int, p_slot int) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${path} AS $fn$
BEGIN
  IF p_slot IS NULL THEN
    EXECUTE format('DROP TABLE IF EXISTS %I', 'vec_' || p_index_id);
  ELSE
    EXECUTE format('DROP TABLE IF EXISTS %I', 'vec_' || p_index_id || '_' || p_slot);
  END IF;
END
$fn$;

-- Builds the HNSW index of one namespace or dedicated index once it outgrows exact search.
CREATE FUNCTION ${s}.build_ann_index(p_index_id int, p_slot int, p_opclass text, p_m int, p_ef_construction int) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${path} SET maintenance_work_mem = '256MB' AS $fn$
DECLARE t text := 'vec_' || p_index_id || COALESCE('_' || p_slot, '');
BEGIN
  IF p_opclass NOT IN ('vector_cosine_ops', 'vector_l2_ops', 'vector_ip_ops') THEN
    RAISE EXCEPTION 'unknown operator class %', p_opclass;
  END IF;
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I USING hnsw (embedding %s) WITH (m = %s, ef_construction = %s)',
    t || '_hnsw', t, p_opclass, p_m, p_ef_construction);
  -- Without fresh statistics the planner guesses a few hundred rows and prefers the primary key
  -- plus a sort (an exact scan) over the new HNSW index.
  EXECUTE format('ANALYZE %I', t);
END
$fn$;

REVOKE ALL ON FUNCTION ${s}.create_vector_table(int, int, boolean), ${s}.create_namespace(int, int, text),
  ${s}.drop_vector_storage(int, int), ${s}.build_ann_index(int, int, text, int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${s}.create_vector_table(int, int, boolean), ${s}.create_namespace(int, int, text),
  ${s}.drop_vector_storage(int, int), ${s}.build_ann_index(int, int, text, int, int) TO ${r};
`;
    },
  },
  {
    version: 2,
    name: "usage ledger and fixed-cost allocations",
    sql: ({ schema, runtimeRole }) => {
      const s = q(schema);
      const r = q(runtimeRole);
      return `
-- One row per metered quantity. Money in integer pico-dollars (1e-12 USD) so sums are exact.
-- No foreign key to tenants: billing records outlive a tenant's deletion.
CREATE TABLE ${s}.usage_events (
  id          bigserial,
  tenant_id   text NOT NULL,
  occurred_at timestamptz NOT NULL,
  period      text NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
  kind        text NOT NULL CHECK (kind IN ('embedding', 'llm', 'vector_query', 'vector_write')),
  model       text,
  quantity    bigint NOT NULL CHECK (quantity >= 0),
  cost_pico   bigint NOT NULL CHECK (cost_pico >= 0),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX usage_events_period ON ${s}.usage_events (tenant_id, period, kind);
SELECT ${s}.protect_table('usage_events');
GRANT SELECT, INSERT ON ${s}.usage_events TO ${r};
GRANT USAGE ON SEQUENCE ${s}.usage_events_id_seq TO ${r};

-- One row per allocation of a month's fixed costs; the latest run of a period is the one that counts,
-- so re-running an allocation replaces it without double counting (and keeps the history).
CREATE TABLE ${s}.allocation_runs (
  id          serial PRIMARY KEY,
  period      text NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
  method      text NOT NULL,
  total_cents bigint NOT NULL CHECK (total_cents >= 0),
  breakdown   jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX allocation_runs_period ON ${s}.allocation_runs (period, id);
GRANT SELECT, INSERT ON ${s}.allocation_runs TO ${r};
GRANT USAGE ON SEQUENCE ${s}.allocation_runs_id_seq TO ${r};

CREATE TABLE ${s}.cost_allocations (
  run_id     int NOT NULL REFERENCES ${s}.allocation_runs(id),
  tenant_id  text NOT NULL,
  cents      bigint NOT NULL CHECK (cents >= 0),
  dedicated_cents bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, tenant_id)
);
SELECT ${s}.protect_table('cost_allocations');
GRANT SELECT, INSERT ON ${s}.cost_allocations TO ${r};
`;
    },
  },
  {
    version: 3,
    name: "quota counters",
    sql: ({ schema, runtimeRole }) => {
      const s = q(schema);
      const r = q(runtimeRole);
      return `
-- Vectors each tenant stores, changed by the same statement as every write (so the document quota
-- is exact under any concurrency: the counter row is the lock). Created lazily by the first write.
CREATE TABLE ${s}.document_counts (
  tenant_id text PRIMARY KEY REFERENCES ${s}.tenants(id) ON DELETE CASCADE,
  documents bigint NOT NULL CHECK (documents >= 0)
);
SELECT ${s}.protect_table('document_counts');
GRANT SELECT, INSERT, UPDATE ON ${s}.document_counts TO ${r};

-- Queries per tenant per UTC day; one atomic increment per query.
CREATE TABLE ${s}.daily_query_counts (
  tenant_id text NOT NULL REFERENCES ${s}.tenants(id) ON DELETE CASCADE,
  day       date NOT NULL,
  queries   int NOT NULL CHECK (queries >= 0),
  PRIMARY KEY (tenant_id, day)
);
SELECT ${s}.protect_table('daily_query_counts');
GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.daily_query_counts TO ${r};

-- Aborts the writing statement (and so the whole batch) when it would take the tenant past its limit.
-- Writes that add nothing (replacing existing ids) pass even above a lowered limit.
CREATE FUNCTION ${s}.enforce_document_quota(p_documents bigint, p_added bigint, p_limit bigint) RETURNS bigint
LANGUAGE plpgsql AS $fn$
BEGIN
  IF p_added > 0 AND p_documents > p_limit THEN
    RAISE EXCEPTION 'document quota exceeded' USING ERRCODE = 'BHQ01', DETAIL = (p_documents - p_added)::text;
  END IF;
  RETURN p_documents;
END
$fn$;
REVOKE ALL ON FUNCTION ${s}.enforce_document_quota(bigint, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${s}.enforce_document_quota(bigint, bigint, bigint) TO ${r};
`;
    },
  },
  {
    version: 4,
    name: "API keys and the audit log",
    sql: ({ schema, runtimeRole }) => {
      const s = q(schema);
      const r = q(runtimeRole);
      return `
-- Control-plane data read to find out who is calling, before any tenant is known (like tenants).
-- Only a SHA-256 of each key is kept; the key itself is shown once, at creation.
CREATE TABLE ${s}.api_keys (
  id           text PRIMARY KEY CHECK (id ~ '^[a-f0-9]{16}$'),
  kind         text NOT NULL CHECK (kind IN ('tenant', 'admin')),
  tenant       text REFERENCES ${s}.tenants(id) ON DELETE CASCADE,
  scopes       text[] NOT NULL,
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  hash         bytea NOT NULL CHECK (length(hash) = 32),
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz,
  CHECK ((kind = 'tenant') = (tenant IS NOT NULL))
);
CREATE INDEX api_keys_tenant ON ${s}.api_keys (tenant);
GRANT SELECT, INSERT, UPDATE ON ${s}.api_keys TO ${r};

-- Every admin action and key event. Append-only for the runtime role.
CREATE TABLE ${s}.audit_log (
  id      bigserial PRIMARY KEY,
  at      timestamptz NOT NULL DEFAULT now(),
  actor   text NOT NULL,
  action  text NOT NULL,
  target  text,
  details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON ${s}.audit_log (at);
GRANT SELECT, INSERT ON ${s}.audit_log TO ${r};
GRANT USAGE ON SEQUENCE ${s}.audit_log_id_seq TO ${r};
`;
    },
  },
  {
    version: 5,
    name: "daily query count in the query's own transaction",
    sql: ({ schema, runtimeRole }) => {
      const s = q(schema);
      const r = q(runtimeRole);
      return `
-- Counts one query for the tenant's day, or aborts the transaction (SQLSTATE BHQ02, detail = the
-- day's count) when the day's quota is used up. Sent first in the same round trip as the vector
-- query, so a refused query never runs and an admitted one costs no extra round trip.
-- SECURITY INVOKER: it runs as the caller, under the same row-level security.
CREATE FUNCTION ${s}.count_daily_query(p_tenant text, p_day date, p_limit int) RETURNS int
LANGUAGE plpgsql SET search_path = ${s}, pg_catalog AS $fn$
DECLARE n int;
BEGIN
  INSERT INTO daily_query_counts AS c (tenant_id, day, queries) SELECT p_tenant, p_day, 1 WHERE p_limit > 0
  ON CONFLICT (tenant_id, day) DO UPDATE SET queries = c.queries + 1 WHERE c.queries < p_limit
  RETURNING queries INTO n;
  IF n IS NULL THEN
    SELECT queries INTO n FROM daily_query_counts WHERE tenant_id = p_tenant AND day = p_day;
    RAISE EXCEPTION 'daily query quota used up' USING ERRCODE = 'BHQ02', DETAIL = coalesce(n, 0)::text;
  END IF;
  RETURN n;
END
$fn$;
REVOKE ALL ON FUNCTION ${s}.count_daily_query(text, date, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${s}.count_daily_query(text, date, int) TO ${r};
`;
    },
  },
  {
    version: 6,
    name: "online placement moves",
    sql: ({ schema, runtimeRole }) => {
      const s = q(schema);
      const r = q(runtimeRole);
      return `
-- Bumped whenever the tenant's placement changes (a move starts, switches, is rolled back). Every
-- data transaction checks it under a shared per-tenant lock (check_placement), so an instance
-- holding a stale placement is told to reload instead of reading a dropped or outdated namespace.
ALTER TABLE ${s}.tenants ADD COLUMN placement_epoch int NOT NULL DEFAULT 0;

-- A move in progress: where the tenant is going and how far the copy got. Control plane (named
-- "tenant", like api_keys); the target namespace slot is reserved here until the switch.
CREATE TABLE ${s}.placement_moves (
  tenant        text PRIMARY KEY REFERENCES ${s}.tenants(id) ON DELETE CASCADE,
  to_tier       text NOT NULL CHECK (to_tier IN ('free', 'pro', 'enterprise')),
  to_index_id   int NOT NULL REFERENCES ${s}.indexes(id),
  to_slot       int CHECK (to_slot >= 1),
  phase         text NOT NULL CHECK (phase IN ('copying', 'indexing', 'catching-up')),
  copy_cursor   text,
  copied        bigint NOT NULL DEFAULT 0,
  total         bigint NOT NULL DEFAULT 0,
  to_ann_indexed boolean NOT NULL DEFAULT false,
  started_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (to_index_id, to_slot)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.placement_moves TO ${r};

-- Ids a tenant wrote or deleted while its move copies (in the write's own transaction); the move
-- re-copies them before switching. Tenant data: forced RLS like every table with tenant_id.
CREATE TABLE ${s}.move_changes (
  tenant_id text NOT NULL REFERENCES ${s}.tenants(id) ON DELETE CASCADE,
  id        text NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
SELECT ${s}.protect_table('move_changes');
GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.move_changes TO ${r};

-- First statement of every data transaction after the tenant context: waits while the tenant's
-- placement is being switched (the switch holds this lock exclusively), then aborts with BHP01 if
-- the caller's placement is out of date. plpgsql reads with a fresh snapshot after the lock, so a
-- switch that committed while we waited is seen. SECURITY INVOKER: reads tenants as the caller.
CREATE FUNCTION ${s}.check_placement(p_tenant text, p_epoch int) RETURNS void
LANGUAGE plpgsql SET search_path = ${s}, pg_catalog AS $fn$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(hashtext('bulkhead.tenant-placement.' || current_schema() || '.' || p_tenant));
  IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant AND placement_epoch = p_epoch) THEN
    RAISE EXCEPTION 'placement of tenant % changed', p_tenant USING ERRCODE = 'BHP01';
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION ${s}.check_placement(text, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${s}.check_placement(text, int) TO ${r};
`;
    },
  },
  {
    version: 7,
    name: "stores (cells)",
    sql: ({ schema, runtimeRole }) => {
      const s = q(schema);
      return `
-- Which store holds an index's vectors: 'home' (this database) or a configured cell (another
-- database with this same schema). A cell's own indexes and tenants tables mirror only what it
-- holds: the mirrored tenant row's placement_epoch fences the cell's data (check_placement reads
-- it), and its foreign keys keep the cell's counters and change log tied to it.
ALTER TABLE ${s}.indexes ADD COLUMN store text NOT NULL DEFAULT 'home';
-- A tenant moving to a cell leaves its document counter at home behind (the cell keeps its own).
GRANT DELETE ON ${s}.document_counts TO ${q(runtimeRole)};
`;
    },
  },
  {
    version: 8,
    name: "write limit of a tenant being moved",
    sql: ({ schema }) => `
-- Vectors per second the tenant may write while its move catches up with it (NULL: not limited).
-- Set by the move when its catch-up stops gaining on the tenant's writes, or by an operator.
ALTER TABLE ${q(schema)}.placement_moves ADD COLUMN write_limit int CHECK (write_limit >= 1);
`,
  },
  {
    version: 9,
    name: "which store a database is",
    sql: ({ schema, runtimeRole }) => `
-- The store (home or a cell's name) this database is, recorded at its first open. A cell configured
-- with another store's database is refused at start: reconciling it would drop that store's vectors.
CREATE TABLE ${q(schema)}.store_identity (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  name      text NOT NULL
);
GRANT SELECT, INSERT ON ${q(schema)}.store_identity TO ${q(runtimeRole)};
`,
  },
  {
    version: 10,
    name: "quarantined usage events",
    sql: ({ schema, runtimeRole }) => {
      const s = q(schema);
      return `
-- Usage events the ledger could not store (a value out of range, a row the database refused).
-- They are set aside here, under the same row-level security as the ledger, so that one bad event
-- never blocks the flush of any other; an operator reads them (costs quarantine) and decides.
-- Quantities as numeric: what did not fit usage_events must fit here.
CREATE TABLE ${s}.usage_quarantine (
  id             bigserial,
  tenant_id      text NOT NULL,
  occurred_at    timestamptz NOT NULL,
  kind           text NOT NULL,
  model          text,
  quantity       numeric,
  cost_pico      numeric,
  reason         text NOT NULL,
  quarantined_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
SELECT ${s}.protect_table('usage_quarantine');
GRANT SELECT, INSERT ON ${s}.usage_quarantine TO ${q(runtimeRole)};
GRANT USAGE ON SEQUENCE ${s}.usage_quarantine_id_seq TO ${q(runtimeRole)};
`;
    },
  },
  {
    version: 11,
    name: "one HNSW build per table at a time",
    sql: ({ schema, vectorSchema }) => {
      const s = q(schema);
      return `
-- Two builds of one table at once deadlocked (40P01): each holds SHARE on the table for its CREATE
-- INDEX, then ANALYZE wants SHARE UPDATE EXCLUSIVE, which the other's SHARE blocks. Concurrent
-- upserts carrying a namespace across the threshold did exactly that. Now the first build takes a
-- per-table lock and the others do not wait for it: they raise BHA01 (the store treats that as
-- "being built by someone else") and the index, once there, is not built twice.
-- CREATE OR REPLACE keeps the function's owner and privileges as they are.
CREATE OR REPLACE FUNCTION ${s}.build_ann_index(p_index_id int, p_slot int, p_opclass text, p_m int, p_ef_construction int) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${s}, ${q(vectorSchema)}, pg_catalog SET maintenance_work_mem = '256MB' AS $fn$
DECLARE t text := 'vec_' || p_index_id || COALESCE('_' || p_slot, '');
BEGIN
  IF p_opclass NOT IN ('vector_cosine_ops', 'vector_l2_ops', 'vector_ip_ops') THEN
    RAISE EXCEPTION 'unknown operator class %', p_opclass;
  END IF;
  IF NOT pg_try_advisory_xact_lock(hashtext('bulkhead.ann-build.' || current_schema() || '.' || t)) THEN
    RAISE EXCEPTION 'the HNSW index of % is being built by another transaction', t USING ERRCODE = 'BHA01';
  END IF;
  IF to_regclass(quote_ident(t || '_hnsw')) IS NOT NULL THEN RETURN; END IF;
  EXECUTE format('CREATE INDEX %I ON %I USING hnsw (embedding %s) WITH (m = %s, ef_construction = %s)',
    t || '_hnsw', t, p_opclass, p_m, p_ef_construction);
  -- Without fresh statistics the planner guesses a few hundred rows and prefers the primary key
  -- plus a sort (an exact scan) over the new HNSW index.
  EXECUTE format('ANALYZE %I', t);
END
$fn$;
`;
    },
  },
  {
    version: 12,
    name: "idempotent usage events",
    sql: ({ schema }) => `
-- Each usage event carries the id the ledger gave it, unique per tenant: a flush whose outcome was
-- unknown (its COMMIT sent, then the deadline) is sent again without counting anything twice.
-- Rows written before this migration have none (NULLs never conflict).
ALTER TABLE ${q(schema)}.usage_events ADD COLUMN event_id uuid;
CREATE UNIQUE INDEX usage_events_event_id ON ${q(schema)}.usage_events (tenant_id, event_id);
`,
  },
  {
    version: 13,
    name: "data-plane role and proved tenant contexts",
    sql: ({ schema, runtimeRole, vectorSchema }) => {
      const s = q(schema);
      const r = q(runtimeRole);
      const lit = `'${schema.replace(/'/g, "''")}'`;
      // The search path of every function here that runs as the owner (SECURITY DEFINER, or called
      // by one). pg_temp last, explicitly: left out, PostgreSQL searches it FIRST for tables, and a
      // caller's temporary table or view named like one of ours (context_secret, tenants) would be
      // read — or its functions run — with the owner's rights. pg_catalog before the vector
      // extension's schema: a function there named like a built-in (encode, sha256) would win
      // otherwise, should anyone ever be able to create one. (Both found by outside attack runs.)
      const definerPath = `${s}, pg_catalog, ${q(vectorSchema)}, pg_temp`;
      // It sits inside format('…'): it has no quotes to double.
      const policy = `tenant_id = (SELECT ${s}.current_tenant())`;
      return `
-- The secret tenant contexts are proved with. Readable by the owner and the control-plane role
-- (the service computes proofs from it), never by the data-plane role: a data-plane connection
-- can set any tenant id, but without its proof the policies below show no row.
CREATE TABLE ${s}.context_secret (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  secret    bytea NOT NULL CHECK (length(secret) = 32)
);
-- gen_random_uuid draws from the server's strong random source (pg_strong_random).
INSERT INTO ${s}.context_secret (secret) VALUES (sha256(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())));
GRANT SELECT ON ${s}.context_secret TO ${r};

-- The tenant of this transaction's context when its proof is right, else NULL (no row matches).
-- Policies call it once per statement (a scalar subquery: an InitPlan).
-- Proof = sha256(secret || sha256(secret || tenant id)), hex: the outer hash makes it immune to length extension.
-- plpgsql, not SQL: a SQL function's query is planned again in every statement that calls it
-- (~100 µs per statement on bench:tenant-context); plpgsql keeps its plan for the session.
CREATE FUNCTION ${s}.current_tenant() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = ${definerPath} AS $fn$
DECLARE
  t text := current_setting('${TENANT_SETTING}', true);
  k bytea;
BEGIN
  SELECT secret INTO k FROM context_secret;
  IF current_setting('${TENANT_PROOF_SETTING}', true) = encode(sha256(k || sha256(k || convert_to(t, 'UTF8'))), 'hex') THEN
    RETURN t;
  END IF;
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION ${s}.current_tenant() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${s}.current_tenant() TO ${r};

-- Every tenant-data table, now and to come: rows of the proved context only.
CREATE OR REPLACE FUNCTION ${s}.protect_table(p_table text) RETURNS void
LANGUAGE plpgsql SET search_path = ${definerPath} AS $fn$
BEGIN
  EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', p_table);
  EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', p_table);
  EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (${policy}) WITH CHECK (${policy})', p_table);
END
$fn$;
DO $fn$
DECLARE t text;
BEGIN
  FOR t IN SELECT tablename FROM pg_policies WHERE schemaname = ${lit} AND policyname = 'tenant_isolation' LOOP
    EXECUTE format('ALTER POLICY tenant_isolation ON ${s}.%I USING (${policy}) WITH CHECK (${policy})', t);
  END LOOP;
END
$fn$;

-- Roles of the data plane (granted by grant_data_plane); every vector table created from now on is theirs too.
CREATE TABLE ${s}.data_plane_roles (role name PRIMARY KEY);

CREATE OR REPLACE FUNCTION ${s}.create_vector_table(p_index_id int, p_dimension int, p_partitioned boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${definerPath} AS $fn$
DECLARE
  t text := 'vec_' || p_index_id;
  d name;
BEGIN
  EXECUTE format('CREATE TABLE %I (tenant_id text NOT NULL, id text NOT NULL, embedding vector(%s) NOT NULL, '
    'metadata jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, id))%s',
    t, p_dimension, CASE WHEN p_partitioned THEN ' PARTITION BY LIST (tenant_id)' ELSE '' END);
  PERFORM protect_table(t);
  -- Privileges on the parent only: partitions are unreachable directly (and RLS-forced anyway).
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO ${r}', t);
  FOR d IN SELECT role FROM data_plane_roles LOOP
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO %I', t, d);
  END LOOP;
END
$fn$;

-- Data-path locks, for the proved context's own tenant only: the data-plane role has no
-- pg_advisory_* of its own (scripts/setup-postgres.sh revokes them from PUBLIC), so it cannot
-- take control-plane locks (migrations, placement decisions, builds) or another tenant's.
CREATE OR REPLACE FUNCTION ${s}.check_placement(p_tenant text, p_epoch int) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${definerPath} AS $fn$
BEGIN
  IF p_tenant IS DISTINCT FROM current_tenant() THEN
    RAISE EXCEPTION 'the transaction is not in a proved context of tenant %', p_tenant USING ERRCODE = '42501';
  END IF;
  PERFORM pg_advisory_xact_lock_shared(hashtext('bulkhead.tenant-placement.' || current_schema() || '.' || p_tenant));
  IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant AND placement_epoch = p_epoch) THEN
    RAISE EXCEPTION 'placement of tenant % changed', p_tenant USING ERRCODE = 'BHP01';
  END IF;
END
$fn$;

-- Serialises one tenant's writers (see the store's lockTenantWrites).
CREATE FUNCTION ${s}.lock_tenant_writes(p_tenant text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${definerPath} AS $fn$
BEGIN
  IF p_tenant IS DISTINCT FROM current_tenant() THEN
    RAISE EXCEPTION 'the transaction is not in a proved context of tenant %', p_tenant USING ERRCODE = '42501';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('bulkhead.documents.' || p_tenant));
END
$fn$;
REVOKE ALL ON FUNCTION ${s}.lock_tenant_writes(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${s}.lock_tenant_writes(text) TO ${r};

-- What the data plane may do, granted to a role (run by migrate for the configured one; idempotent):
-- tenant data under forced RLS, the data path's counters and change log, the functions it calls.
-- Nothing of the control plane: no tenants, indexes, keys, audit, usage or cost tables, no DDL functions.
CREATE FUNCTION ${s}.grant_data_plane(p_role name) RETURNS void
LANGUAGE plpgsql SET search_path = ${s}, pg_catalog AS $fn$
DECLARE t text;
BEGIN
  INSERT INTO data_plane_roles (role) VALUES (p_role) ON CONFLICT DO NOTHING;
  EXECUTE format('GRANT USAGE ON SCHEMA ${s} TO %I', p_role);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON document_counts, daily_query_counts, move_changes TO %I', p_role);
  EXECUTE format('GRANT EXECUTE ON FUNCTION current_tenant(), check_placement(text, int), lock_tenant_writes(text), '
    'count_daily_query(text, date, int), enforce_document_quota(bigint, bigint, bigint) TO %I', p_role);
  FOR t IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = ${lit}::regnamespace AND c.relkind IN ('r', 'p') AND c.relname ~ '^vec_[0-9]+$' LOOP
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO %I', t, p_role);
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION ${s}.grant_data_plane(name) FROM PUBLIC;

-- The HNSW build of migration 11, its existence check qualified: an unqualified to_regclass would
-- find a caller's temporary relation of that name when the index does not exist yet (build skipped).
CREATE OR REPLACE FUNCTION ${s}.build_ann_index(p_index_id int, p_slot int, p_opclass text, p_m int, p_ef_construction int) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${definerPath} SET maintenance_work_mem = '256MB' AS $fn$
DECLARE t text := 'vec_' || p_index_id || COALESCE('_' || p_slot, '');
BEGIN
  IF p_opclass NOT IN ('vector_cosine_ops', 'vector_l2_ops', 'vector_ip_ops') THEN
    RAISE EXCEPTION 'unknown operator class %', p_opclass;
  END IF;
  IF NOT pg_try_advisory_xact_lock(hashtext('bulkhead.ann-build.' || current_schema() || '.' || t)) THEN
    RAISE EXCEPTION 'the HNSW index of % is being built by another transaction', t USING ERRCODE = 'BHA01';
  END IF;
  IF to_regclass(format('%I.%I', current_schema(), t || '_hnsw')) IS NOT NULL THEN RETURN; END IF;
  EXECUTE format('CREATE INDEX %I ON %I.%I USING hnsw (embedding %s) WITH (m = %s, ef_construction = %s)',
    t || '_hnsw', current_schema(), t, p_opclass, p_m, p_ef_construction);
  EXECUTE format('ANALYZE %I.%I', current_schema(), t);
END
$fn$;

-- The same search path for every function of earlier migrations that sets one (the provisioning
-- functions, and protect_table, which they call as the owner).
DO $fn$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
            WHERE p.pronamespace = ${lit}::regnamespace
              AND (p.prosecdef OR EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\\_path=%')) LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = ${definerPath.replace(/'/g, "''")}', f);
  END LOOP;
END
$fn$;
`;
    },
  },
  {
    version: 14,
    name: "record ids of tenants in stores outside PostgreSQL",
    sql: ({ schema, runtimeRole, vectorSchema }) => {
      const s = q(schema);
      const r = q(runtimeRole);
      return `
-- The ids each tenant holds in a store outside PostgreSQL (Pinecone), kept by the catalogue in the
-- fence of every write: which ids of a batch are new (the document quota) and which a delete
-- removed, exactly, whatever the remote store's read consistency — and without asking it first.
CREATE TABLE ${s}.remote_ids (
  tenant_id text NOT NULL REFERENCES ${s}.tenants(id) ON DELETE CASCADE,
  id        text NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
SELECT ${s}.protect_table('remote_ids');
GRANT SELECT, INSERT, DELETE ON ${s}.remote_ids TO ${r};

-- The data plane's grants (migration 13), with remote_ids.
${grantDataPlane(schema, vectorSchema, "count_daily_query(text, date, int), ")}`;
    },
  },
  {
    version: 15,
    name: "daily queries counted in leases",
    sql: ({ schema, runtimeRole, vectorSchema }) => {
      const s = q(schema);
      const r = q(runtimeRole);
      // The search path every function run as the owner has (migration 13).
      const definerPath = `${s}, pg_catalog, ${q(vectorSchema)}, pg_temp`;
      return `
-- An instance takes up to p_n of a tenant's queries of the day at once (never past the limit) and
-- spends them from memory, so the count is one write per lease instead of one per query; it gives
-- back what it did not spend when it closes. BHQ02 when none is left, as count_daily_query.
CREATE FUNCTION ${s}.lease_daily_queries(p_tenant text, p_day date, p_limit int, p_n int) RETURNS TABLE (queries int, granted int)
LANGUAGE plpgsql SET search_path = ${definerPath} AS $fn$
DECLARE used int; g int;
BEGIN
  SELECT c.queries INTO used FROM daily_query_counts c WHERE c.tenant_id = p_tenant AND c.day = p_day FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO daily_query_counts (tenant_id, day, queries) VALUES (p_tenant, p_day, 0) ON CONFLICT DO NOTHING;
    SELECT c.queries INTO used FROM daily_query_counts c WHERE c.tenant_id = p_tenant AND c.day = p_day FOR UPDATE;
  END IF;
  g := least(greatest(p_n, 1), p_limit - used);
  IF g <= 0 THEN
    RAISE EXCEPTION 'daily query quota used up' USING ERRCODE = 'BHQ02', DETAIL = used::text;
  END IF;
  UPDATE daily_query_counts c SET queries = used + g WHERE c.tenant_id = p_tenant AND c.day = p_day;
  RETURN QUERY SELECT used + g, g;
END
$fn$;
REVOKE ALL ON FUNCTION ${s}.lease_daily_queries(text, date, int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${s}.lease_daily_queries(text, date, int, int) TO ${r};

-- The data plane's grants (migration 14), with lease_daily_queries.
${grantDataPlane(schema, vectorSchema, "count_daily_query(text, date, int), lease_daily_queries(text, date, int, int), ")}`;
    },
  },
  {
    version: 16,
    name: "per-namespace search width",
    // Raised by the recall monitor when a namespace's measured recall falls below its threshold;
    // null is the store's default (BULKHEAD_HNSW_EF_SEARCH). pgvector accepts 1 to 1,000.
    sql: ({ schema }) => `ALTER TABLE ${q(schema)}.tenants ADD COLUMN ef_search int CHECK (ef_search BETWEEN 1 AND 1000);`,
  },
  {
    version: 17,
    name: "HNSW builds with the memory they need",
    sql: ({ schema, runtimeRole, vectorSchema }) => {
      const s = q(schema);
      const r = q(runtimeRole);
      const definerPath = `${s}, pg_catalog, ${q(vectorSchema)}, pg_temp`;
      return `
-- Migration 13's build with the build's memory as a parameter (BULKHEAD_ANN_BUILD_MEMORY_MB): a
-- graph that outgrows maintenance_work_mem is finished on disk, several times slower (100,000 ×
-- 384-d at m = 32: 107 s at 256 MB). It is a ceiling, not an allocation: a small namespace's build
-- uses what its graph needs. The five-argument version stays for instances not yet upgraded.
CREATE FUNCTION ${s}.build_ann_index(p_index_id int, p_slot int, p_opclass text, p_m int, p_ef_construction int, p_memory_mb int) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${definerPath} SET maintenance_work_mem = '256MB' AS $fn$
DECLARE t text := 'vec_' || p_index_id || COALESCE('_' || p_slot, '');
BEGIN
  IF p_opclass NOT IN ('vector_cosine_ops', 'vector_l2_ops', 'vector_ip_ops') THEN
    RAISE EXCEPTION 'unknown operator class %', p_opclass;
  END IF;
  IF p_memory_mb NOT BETWEEN 64 AND 65536 THEN
    RAISE EXCEPTION 'build memory % MB is outside 64 to 65536', p_memory_mb;
  END IF;
  IF NOT pg_try_advisory_xact_lock(hashtext('bulkhead.ann-build.' || current_schema() || '.' || t)) THEN
    RAISE EXCEPTION 'the HNSW index of % is being built by another transaction', t USING ERRCODE = 'BHA01';
  END IF;
  IF to_regclass(format('%I.%I', current_schema(), t || '_hnsw')) IS NOT NULL THEN RETURN; END IF;
  -- Local to this call: the SET clause above restores the caller's value when the function returns.
  PERFORM set_config('maintenance_work_mem', p_memory_mb || 'MB', true);
  EXECUTE format('CREATE INDEX %I ON %I.%I USING hnsw (embedding %s) WITH (m = %s, ef_construction = %s)',
    t || '_hnsw', current_schema(), t, p_opclass, p_m, p_ef_construction);
  EXECUTE format('ANALYZE %I.%I', current_schema(), t);
END
$fn$;
REVOKE ALL ON FUNCTION ${s}.build_ann_index(int, int, text, int, int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${s}.build_ann_index(int, int, text, int, int, int) TO ${r};
`;
    },
  },
  {
    version: 18,
    name: "vectors written ahead of their HNSW index",
    sql: ({ schema, runtimeRole, vectorSchema }) => {
      const s = q(schema);
      const r = q(runtimeRole);
      const lit = `'${schema.replace(/'/g, "''")}'`;
      const definerPath = `${s}, pg_catalog, ${q(vectorSchema)}, pg_temp`;
      return `
-- A row's vector is in exactly one of two columns. \`embedding\` is what the namespace's HNSW index
-- covers; \`pending\` holds a vector written after the namespace got its index and not yet added to
-- it: pgvector skips NULLs, so such a write costs no graph insertion. Searches read both (the
-- graph for \`embedding\`, an exact scan of the few pending rows through the partial index), and
-- the pending indexer moves rows from \`pending\` to \`embedding\` in the background, a batch at a time.
DO $fn$
DECLARE t text; d int;
BEGIN
  FOR t IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = ${lit}::regnamespace AND c.relkind IN ('r', 'p') AND c.relname ~ '^vec_[0-9]+$' LOOP
    -- pgvector keeps a column's dimension as its type modifier.
    SELECT a.atttypmod INTO d FROM pg_attribute a WHERE a.attrelid = format('%I.%I', ${lit}, t)::regclass AND a.attname = 'embedding';
    EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN embedding DROP NOT NULL, ADD COLUMN pending vector(%s), '
      'ADD CONSTRAINT %I CHECK ((embedding IS NULL) <> (pending IS NULL))', ${lit}, t, d, t || '_one_value');
    EXECUTE format('CREATE INDEX %I ON %I.%I (tenant_id) WHERE pending IS NOT NULL', t || '_pending', ${lit}, t);
  END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION ${s}.create_vector_table(p_index_id int, p_dimension int, p_partitioned boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${definerPath} AS $fn$
DECLARE
  t text := 'vec_' || p_index_id;
  d name;
BEGIN
  EXECUTE format('CREATE TABLE %I (tenant_id text NOT NULL, id text NOT NULL, embedding vector(%s), pending vector(%s), '
    'metadata jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, id), '
    'CONSTRAINT %I CHECK ((embedding IS NULL) <> (pending IS NULL)))%s',
    t, p_dimension, p_dimension, t || '_one_value', CASE WHEN p_partitioned THEN ' PARTITION BY LIST (tenant_id)' ELSE '' END);
  EXECUTE format('CREATE INDEX %I ON %I (tenant_id) WHERE pending IS NOT NULL', t || '_pending', t);
  PERFORM protect_table(t);
  -- Privileges on the parent only: partitions are unreachable directly (and RLS-forced anyway).
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO ${r}', t);
  FOR d IN SELECT role FROM data_plane_roles LOOP
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO %I', t, d);
  END LOOP;
END
$fn$;
`;
    },
  },
  {
    version: 19,
    name: "a pool for small tenants; allocations written in the server",
    sql: ({ schema, runtimeRole, vectorSchema }) => {
      const s = q(schema);
      const r = q(runtimeRole);
      const definerPath = `${s}, pg_catalog, ${q(vectorSchema)}, pg_temp`;
      return `
-- A pool is one plain table holding many small tenants' vectors, keyed by tenant and searched
-- exactly (BULKHEAD_SMALL_TENANTS=pool): registering a tenant there creates no relation, so a
-- database holds 100,000 tenants without 100,000 partitions. Row-level security is the same as a
-- shared index's; a tenant that outgrows exact search moves online to a namespace of its own.
ALTER TABLE ${s}.indexes DROP CONSTRAINT indexes_kind_check;
ALTER TABLE ${s}.indexes ADD CONSTRAINT indexes_kind_check CHECK (kind IN ('shared', 'dedicated', 'pool'));
-- What an index is never changes (no code updates an index row): the guards below trust \`kind\`,
-- so the control-plane role must not be able to turn the pool into a "dedicated" index first.
REVOKE UPDATE ON ${s}.indexes FROM ${r};

-- A pool's table is never dropped whole (it holds every pooled tenant), and never gets a graph (it
-- would be built over every tenant's vectors): a tenant leaves a pool by deleting its rows.
CREATE OR REPLACE FUNCTION ${s}.drop_vector_storage(p_index_id int, p_slot int) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${definerPath} AS $fn$
BEGIN
  IF p_slot IS NULL THEN
    IF EXISTS (SELECT 1 FROM indexes WHERE id = p_index_id AND kind = 'pool') THEN
      RAISE EXCEPTION 'vec_% is a pool of tenants: it is not dropped whole', p_index_id;
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS %I', 'vec_' || p_index_id);
  ELSE
    EXECUTE format('DROP TABLE IF EXISTS %I', 'vec_' || p_index_id || '_' || p_slot);
  END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION ${s}.build_ann_index(p_index_id int, p_slot int, p_opclass text, p_m int, p_ef_construction int, p_memory_mb int) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${definerPath} SET maintenance_work_mem = '256MB' AS $fn$
DECLARE t text := 'vec_' || p_index_id || COALESCE('_' || p_slot, '');
BEGIN
  IF p_opclass NOT IN ('vector_cosine_ops', 'vector_l2_ops', 'vector_ip_ops') THEN
    RAISE EXCEPTION 'unknown operator class %', p_opclass;
  END IF;
  IF p_memory_mb NOT BETWEEN 64 AND 65536 THEN
    RAISE EXCEPTION 'build memory % MB is outside 64 to 65536', p_memory_mb;
  END IF;
  IF p_slot IS NULL AND EXISTS (SELECT 1 FROM indexes WHERE id = p_index_id AND kind = 'pool') THEN
    RAISE EXCEPTION 'vec_% is a pool of tenants: it gets no HNSW index', p_index_id;
  END IF;
  IF NOT pg_try_advisory_xact_lock(hashtext('bulkhead.ann-build.' || current_schema() || '.' || t)) THEN
    RAISE EXCEPTION 'the HNSW index of % is being built by another transaction', t USING ERRCODE = 'BHA01';
  END IF;
  IF to_regclass(format('%I.%I', current_schema(), t || '_hnsw')) IS NOT NULL THEN RETURN; END IF;
  PERFORM set_config('maintenance_work_mem', p_memory_mb || 'MB', true);
  EXECUTE format('CREATE INDEX %I ON %I.%I USING hnsw (embedding %s) WITH (m = %s, ef_construction = %s)',
    t || '_hnsw', current_schema(), t, p_opclass, p_m, p_ef_construction);
  EXECUTE format('ANALYZE %I.%I', current_schema(), t);
END
$fn$;
REVOKE ALL ON FUNCTION ${s}.drop_vector_storage(int, int), ${s}.build_ann_index(int, int, text, int, int, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${s}.drop_vector_storage(int, int), ${s}.build_ann_index(int, int, text, int, int, int) TO ${r};

-- A month's allocation writes one row per tenant, each only in that tenant's proved context (RLS).
-- Entering each context from the application took three round trips per tenant (72 s for 100,000
-- tenants); here each row's context is entered in the server, with the proof the control plane
-- would have sent (it reads the same secret), and left again at the end. The control-plane role
-- only: the data-plane role cannot read the secret and gets no EXECUTE.
CREATE FUNCTION ${s}.insert_allocations(p_run_id int, p_rows jsonb) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${definerPath} AS $fn$
DECLARE
  k bytea;
  r record;
  n int := 0;
BEGIN
  SELECT secret INTO k FROM context_secret;
  FOR r IN SELECT * FROM jsonb_to_recordset(p_rows) AS x(tenant_id text, cents bigint, dedicated_cents bigint) LOOP
    PERFORM set_config('${TENANT_SETTING}', r.tenant_id, true),
            set_config('${TENANT_PROOF_SETTING}', encode(sha256(k || sha256(k || convert_to(r.tenant_id, 'UTF8'))), 'hex'), true);
    INSERT INTO cost_allocations (run_id, tenant_id, cents, dedicated_cents) VALUES (p_run_id, r.tenant_id, r.cents, r.dedicated_cents);
    n := n + 1;
  END LOOP;
  PERFORM set_config('${TENANT_SETTING}', '', true), set_config('${TENANT_PROOF_SETTING}', '', true);
  RETURN n;
END
$fn$;
REVOKE ALL ON FUNCTION ${s}.insert_allocations(int, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${s}.insert_allocations(int, jsonb) TO ${r};
`;
    },
  },
  {
    version: 20,
    name: "text documents and their chunks",
    sql: ({ schema, runtimeRole, vectorSchema }) => {
      const s = q(schema);
      const r = q(runtimeRole);
      return `
-- Text documents (POST /v1/documents/text) and the chunks they are cut into, with each chunk's
-- full-text vector. Tenant data like vectors: forced RLS, every key led by the tenant. A full-text
-- search reads the tenant's chunks through the primary key and filters them with @@, which is not
-- leakproof: under RLS PostgreSQL never evaluates it before the tenant's own policy, so no plan
-- looks at another tenant's chunks.
CREATE TABLE ${s}.text_documents (
  tenant_id   text NOT NULL REFERENCES ${s}.tenants(id) ON DELETE CASCADE,
  id          text NOT NULL,
  format      text NOT NULL CHECK (format IN ('text', 'markdown', 'html')),
  metadata    jsonb NOT NULL,
  chunks      int NOT NULL CHECK (chunks >= 0),
  characters  int NOT NULL CHECK (characters >= 0),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE TABLE ${s}.text_chunks (
  tenant_id   text NOT NULL,
  document_id text NOT NULL,
  position    int NOT NULL CHECK (position >= 0),
  section     text,
  body        text NOT NULL,
  metadata    jsonb NOT NULL,
  tsv         tsvector NOT NULL,
  PRIMARY KEY (tenant_id, document_id, position),
  FOREIGN KEY (tenant_id, document_id) REFERENCES ${s}.text_documents (tenant_id, id) ON DELETE CASCADE
);
SELECT ${s}.protect_table('text_documents');
SELECT ${s}.protect_table('text_chunks');
GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.text_documents, ${s}.text_chunks TO ${r};

-- The data plane's grants (migration 14) with the text tables.
${grantDataPlane(schema, vectorSchema, "count_daily_query(text, date, int), lease_daily_queries(text, date, int, int), ", true)}`;
    },
  },
  {
    version: 21,
    name: "chunk embeddings; estimated usage",
    sql: ({ schema }) => `
-- A chunk's vector from the configured embedder (NULL when none was configured as it was written):
-- searched exactly among the tenant's own chunks, like a small namespace, and fused with full text.
ALTER TABLE ${q(schema)}.text_chunks ADD COLUMN embedding vector;
-- Usage counted here because the provider reported none (its tokenizer's count may differ).
ALTER TABLE ${q(schema)}.usage_events ADD COLUMN estimated boolean NOT NULL DEFAULT false;`,
  },
  {
    version: 22,
    name: "text ingest jobs; no statistics on document ids",
    sql: ({ schema, runtimeRole }) => {
      const s = q(schema);
      return `
-- A large text ingest runs in the background; its status is tenant data like the rest (forced RLS):
-- another tenant's job id is not found, whatever it guesses. Written by the control plane.
CREATE TABLE ${s}.text_jobs (
  tenant_id   text NOT NULL REFERENCES ${s}.tenants(id) ON DELETE CASCADE,
  id          text NOT NULL,
  status      text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
  documents   int NOT NULL CHECK (documents >= 0),
  done        int NOT NULL DEFAULT 0 CHECK (done >= 0),
  chunks      int NOT NULL DEFAULT 0 CHECK (chunks >= 0),
  error       text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
SELECT ${s}.protect_table('text_jobs');
GRANT SELECT, INSERT, UPDATE, DELETE ON ${s}.text_jobs TO ${q(runtimeRole)};

-- Equality on text is leakproof, so the planner estimates document_id = '…' from the column's
-- statistics even under RLS: a stolen data-plane login could tell, from EXPLAIN's row estimates,
-- which document ids exist in any tenant (found by an outside attack). Without statistics on the
-- ids, every id is estimated alike; lookups by id go through the primary key either way.
ALTER TABLE ${s}.text_documents ALTER COLUMN id SET STATISTICS 0;
ALTER TABLE ${s}.text_chunks ALTER COLUMN document_id SET STATISTICS 0;`;
    },
  },
  {
    version: 23,
    name: "per-tenant minute rollups; dashboard sessions",
    sql: ({ schema, runtimeRole, vectorSchema }) => {
      const s = q(schema);
      const r = q(runtimeRole);
      const definerPath = `${s}, pg_catalog, ${q(vectorSchema)}, pg_temp`;
      // Enters a tenant's context in the server, with the proof the control plane would send (see insert_allocations).
      const enter = (id: string) =>
        `PERFORM set_config('${TENANT_SETTING}', ${id}, true), set_config('${TENANT_PROOF_SETTING}', encode(sha256(k || sha256(k || convert_to(${id}, 'UTF8'))), 'hex'), true);`;
      const leave = `PERFORM set_config('${TENANT_SETTING}', '', true), set_config('${TENANT_PROOF_SETTING}', '', true);`;
      // The latency histogram's buckets, 1-based (src/monitoring/minute-rollups.ts: 13 bounds and the overflow).
      const buckets = Array.from({ length: 14 }, (_, i) => i + 1);
      return `
-- What each tenant's operations did, minute by minute (the dashboard's charts and
-- GET /admin/tenants/{id}/series): counts by outcome and a latency histogram, so that rows written
-- by several instances for the same minute add up (percentiles are read off the summed histogram).
-- Tenant data like the rest (forced RLS): read in the tenant's context, erased with the tenant.
CREATE TABLE ${s}.tenant_minutes (
  tenant_id   text NOT NULL REFERENCES ${s}.tenants(id) ON DELETE CASCADE,
  minute      timestamptz NOT NULL,
  ok          int NOT NULL CHECK (ok >= 0),
  errors      int NOT NULL CHECK (errors >= 0),
  invalid     int NOT NULL CHECK (invalid >= 0),
  refused     int NOT NULL CHECK (refused >= 0),
  -- Refusals by kind; the rest of refused were a store or provider throttling.
  rate_limited        int NOT NULL DEFAULT 0 CHECK (rate_limited >= 0),
  quota_exceeded      int NOT NULL DEFAULT 0 CHECK (quota_exceeded >= 0),
  concurrency_limited int NOT NULL DEFAULT 0 CHECK (concurrency_limited >= 0),
  latency     int[] NOT NULL,
  PRIMARY KEY (tenant_id, minute)
);
SELECT ${s}.protect_table('tenant_minutes');
GRANT SELECT ON ${s}.tenant_minutes TO ${r};

-- One flush of every tenant's minutes in one round trip: each row is written in its own tenant's
-- context, entered here with the proof the control plane would have sent (it reads the same secret).
CREATE FUNCTION ${s}.write_tenant_minutes(p_rows jsonb) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${definerPath} AS $fn$
DECLARE
  k bytea;
  x record;
  n int := 0;
BEGIN
  SELECT secret INTO k FROM context_secret;
  FOR x IN SELECT * FROM jsonb_to_recordset(p_rows) AS j(tenant_id text, minute timestamptz, ok int, errors int, invalid int, refused int,
                                                          rate_limited int, quota_exceeded int, concurrency_limited int, latency int[]) LOOP
    ${enter("x.tenant_id")}
    INSERT INTO tenant_minutes AS t (tenant_id, minute, ok, errors, invalid, refused, rate_limited, quota_exceeded, concurrency_limited, latency)
      SELECT x.tenant_id, x.minute, x.ok, x.errors, x.invalid, x.refused, coalesce(x.rate_limited, 0), coalesce(x.quota_exceeded, 0), coalesce(x.concurrency_limited, 0), x.latency
       WHERE EXISTS (SELECT 1 FROM tenants WHERE id = x.tenant_id)  -- erased meanwhile: nothing to keep
    ON CONFLICT (tenant_id, minute) DO UPDATE SET
      ok = t.ok + excluded.ok, errors = t.errors + excluded.errors, invalid = t.invalid + excluded.invalid, refused = t.refused + excluded.refused,
      rate_limited = t.rate_limited + excluded.rate_limited, quota_exceeded = t.quota_exceeded + excluded.quota_exceeded,
      concurrency_limited = t.concurrency_limited + excluded.concurrency_limited,
      latency = ARRAY(SELECT coalesce(a, 0) + coalesce(b, 0) FROM unnest(t.latency, excluded.latency) WITH ORDINALITY AS u(a, b, i) ORDER BY i);
    n := n + 1;
  END LOOP;
  ${leave}
  RETURN n;
END
$fn$;

-- Minutes older than the retention window, every tenant's, in each tenant's context.
CREATE FUNCTION ${s}.prune_tenant_minutes(p_before timestamptz) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${definerPath} AS $fn$
DECLARE
  k bytea;
  x record;
  c int;
  n int := 0;
BEGIN
  SELECT secret INTO k FROM context_secret;
  FOR x IN SELECT id FROM tenants LOOP
    ${enter("x.id")}
    DELETE FROM tenant_minutes WHERE tenant_id = x.id AND minute < p_before;
    GET DIAGNOSTICS c = ROW_COUNT;
    n := n + c;
  END LOOP;
  ${leave}
  RETURN n;
END
$fn$;

-- The dashboard's tenant table in one round trip: per tenant, what its quotas count and its
-- minutes since p_since (summed), each read in the tenant's own context.
CREATE FUNCTION ${s}.tenant_overview(p_since timestamptz, p_recent timestamptz, p_day date)
RETURNS TABLE (tenant_id text, documents bigint, text_chunks bigint, queries_today int,
               ok bigint, errors bigint, invalid bigint, refused bigint, rate_limited bigint, quota_exceeded bigint, concurrency_limited bigint, latency bigint[],
               recent_ok bigint, recent_errors bigint, recent_invalid bigint, recent_refused bigint, recent_latency bigint[])
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${definerPath} AS $fn$
DECLARE
  k bytea;
  x record;
BEGIN
  SELECT secret INTO k FROM context_secret;
  FOR x IN SELECT id FROM tenants ORDER BY id LOOP
    ${enter("x.id")}
    tenant_id := x.id;
    -- One statement per tenant (six took 1.4 s for 10,000 tenants; this, 0.96 s): its counters, and
    -- its minutes summed, the latency histogram bucket by bucket (LATENCY_BOUNDS_MS and the overflow).
    SELECT coalesce((SELECT d.documents FROM document_counts d WHERE d.tenant_id = x.id), 0),
           (SELECT count(*) FROM text_chunks c WHERE c.tenant_id = x.id),
           coalesce((SELECT q.queries FROM daily_query_counts q WHERE q.tenant_id = x.id AND q.day = p_day), 0),
           coalesce(sum(m.ok), 0), coalesce(sum(m.errors), 0), coalesce(sum(m.invalid), 0), coalesce(sum(m.refused), 0),
           coalesce(sum(m.rate_limited), 0), coalesce(sum(m.quota_exceeded), 0), coalesce(sum(m.concurrency_limited), 0),
           coalesce(sum(m.ok) FILTER (WHERE m.minute >= p_recent), 0), coalesce(sum(m.errors) FILTER (WHERE m.minute >= p_recent), 0),
           coalesce(sum(m.invalid) FILTER (WHERE m.minute >= p_recent), 0), coalesce(sum(m.refused) FILTER (WHERE m.minute >= p_recent), 0),
           ARRAY[${buckets.map((i) => `coalesce(sum(m.latency[${i}]), 0)`).join(", ")}],
           ARRAY[${buckets.map((i) => `coalesce(sum(m.latency[${i}]) FILTER (WHERE m.minute >= p_recent), 0)`).join(", ")}]
      INTO documents, text_chunks, queries_today, ok, errors, invalid, refused, rate_limited, quota_exceeded, concurrency_limited,
           recent_ok, recent_errors, recent_invalid, recent_refused, latency, recent_latency
      FROM tenant_minutes m WHERE m.tenant_id = x.id AND m.minute >= p_since;
    RETURN NEXT;
  END LOOP;
  ${leave}
END
$fn$;
REVOKE ALL ON FUNCTION ${s}.write_tenant_minutes(jsonb), ${s}.prune_tenant_minutes(timestamptz), ${s}.tenant_overview(timestamptz, timestamptz, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${s}.write_tenant_minutes(jsonb), ${s}.prune_tenant_minutes(timestamptz), ${s}.tenant_overview(timestamptz, timestamptz, date) TO ${r};

-- Dashboard sign-ins: an admin key exchanged for a session cookie. Only hashes are kept (a stolen
-- copy of the table signs nobody in); a session ends at its expiry, at sign-out, or when its key
-- is revoked (checked on every request, see src/server/dashboard/sessions.ts). Its CSRF token is
-- derived from the session's secret, so it is not stored either.
CREATE TABLE ${s}.dashboard_sessions (
  id_hash     bytea PRIMARY KEY,
  key_id      text NOT NULL REFERENCES ${s}.api_keys(id) ON DELETE CASCADE,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL
);
GRANT SELECT, INSERT, DELETE ON ${s}.dashboard_sessions TO ${r};`;
    },
  },
  {
    version: 24,
    name: "the model of each chunk's embedding",
    sql: ({ schema }) => {
      const s = q(schema);
      return `
-- Tiers embed with their own models (BULKHEAD_TIER_TEXT), and vectors of two models are not
-- comparable (nor, often, of one dimension): a search compares the query only with chunks of the
-- model that embedded it. Chunks embedded before this migration name no model — which one made
-- them is not known here — so they are found by full text until their documents are stored again.
ALTER TABLE ${s}.text_chunks ADD COLUMN embedding_model text;
-- Every chunk written from now on names the model of its vector (NOT VALID: the older ones cannot).
ALTER TABLE ${s}.text_chunks ADD CONSTRAINT text_chunks_embedding_model CHECK ((embedding IS NULL) = (embedding_model IS NULL)) NOT VALID;
-- As for document ids (migration 22): no statistics that would tell which models other tenants use.
ALTER TABLE ${s}.text_chunks ALTER COLUMN embedding_model SET STATISTICS 0;`;
    },
  },
];

/**
 * `grant_data_plane` as migrations 14 and on define it: the data-plane role's grants — tenant data
 * under forced RLS, the data path's counters, change log and remote-id record, and the functions
 * it calls (`counters`: the daily-count functions of that version, each followed by ", ").
 */
function grantDataPlane(schema: string, vectorSchema: string, counters: string, textTables = false): string {
  const s = q(schema);
  const lit = `'${schema.replace(/'/g, "''")}'`;
  const definerPath = `${s}, pg_catalog, ${q(vectorSchema)}, pg_temp`;
  return `CREATE OR REPLACE FUNCTION ${s}.grant_data_plane(p_role name) RETURNS void
LANGUAGE plpgsql SET search_path = ${definerPath} AS $fn$
DECLARE t text;
BEGIN
  INSERT INTO data_plane_roles (role) VALUES (p_role) ON CONFLICT DO NOTHING;
  EXECUTE format('GRANT USAGE ON SCHEMA ${s} TO %I', p_role);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON document_counts, daily_query_counts, move_changes TO %I', p_role);
  EXECUTE format('GRANT SELECT, INSERT, DELETE ON remote_ids TO %I', p_role);${textTables ? "\n  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON text_documents, text_chunks TO %I', p_role);" : ""}
  EXECUTE format('GRANT EXECUTE ON FUNCTION current_tenant(), check_placement(text, int), lock_tenant_writes(text), '
    '${counters}enforce_document_quota(bigint, bigint, bigint) TO %I', p_role);
  FOR t IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = ${lit}::regnamespace AND c.relkind IN ('r', 'p') AND c.relname ~ '^vec_[0-9]+$' LOOP
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO %I', t, p_role);
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION ${s}.grant_data_plane(name) FROM PUBLIC;
`;
}

/** The complete SQL a DBA would run, for review (`bulkhead migrate --print`). */
export function migrationScript(ctx: MigrationContext): string {
  const script = MIGRATIONS.map((m) => `-- migration ${m.version}: ${m.name}\n${m.sql(ctx).trim()}\n`).join("\n");
  return ctx.dataRole ? `${script}\n-- the data-plane role\nSELECT ${q(ctx.schema)}.grant_data_plane('${ctx.dataRole.replace(/'/g, "''")}');\n` : script;
}

/** Latest version this code expects. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** A connection able to run a script inside a transaction, as the owner role. */
export interface OwnerConnection extends Queryable {
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
}

/**
 * Brings the schema to `SCHEMA_VERSION`. Safe to run from several processes at once (advisory lock)
 * and idempotent. Needs the pgvector extension, which only a superuser can create on a server.
 */
export async function migrate(owner: OwnerConnection, ctx: MigrationContext): Promise<number[]> {
  return owner.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`bulkhead.migrate.${ctx.schema}`]);
    await tx.query(`CREATE SCHEMA IF NOT EXISTS ${q(ctx.schema)}`);
    await tx.query(`CREATE TABLE IF NOT EXISTS ${q(ctx.schema)}.schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set((await tx.query<{ version: number }>(`SELECT version FROM ${q(ctx.schema)}.schema_migrations`)).map((r) => r.version));
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      for (const statement of splitStatements(m.sql(ctx))) await tx.query(statement);
      await tx.query(`INSERT INTO ${q(ctx.schema)}.schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      applied.push(m.version);
    }
    await tx.query(`GRANT SELECT ON ${q(ctx.schema)}.schema_migrations TO ${q(ctx.runtimeRole)}`);
    if (ctx.dataRole) await tx.query(`SELECT ${q(ctx.schema)}.grant_data_plane($1)`, [ctx.dataRole]);
    return applied;
  });
}

/** Splits a migration on statement-ending semicolons outside dollar-quoted bodies (PGlite runs one statement per query). */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let current = "";
  let inBody = false;
  for (const line of sql.split("\n")) {
    if (/^\s*--/.test(line) && !inBody) continue;
    current += line + "\n";
    const marks = line.match(/\$fn\$/g)?.length ?? 0;
    if (marks % 2 === 1) inBody = !inBody;
    if (!inBody && /;\s*$/.test(line)) {
      out.push(current.trim());
      current = "";
    }
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

/** Finds pgvector, creating it when the connection may; otherwise says what to run. */
export async function ensurePgvector(owner: Queryable): Promise<string> {
  let rows = await owner.query<{ schema: string; version: string }>(
    "SELECT extnamespace::regnamespace::text AS schema, extversion AS version FROM pg_extension WHERE extname = 'vector'",
  );
  if (rows.length === 0) {
    try {
      await owner.query("CREATE EXTENSION IF NOT EXISTS vector");
    } catch (err) {
      throw new DatabaseError(
        `the pgvector extension is not installed in this database and this role may not create it (${(err as Error).message}). ` +
          "As a superuser run: CREATE EXTENSION vector;  (pgvector >= 0.8; scripts/install-pgvector.sh builds it on Debian)",
        { cause: err },
      );
    }
    rows = await owner.query("SELECT extnamespace::regnamespace::text AS schema, extversion AS version FROM pg_extension WHERE extname = 'vector'");
  }
  const { schema, version } = rows[0]!;
  const [major, minor] = version.split(".").map(Number);
  if (major! === 0 && minor! < 8) {
    throw new DatabaseError(`pgvector ${version} is too old: Bulkhead needs >= 0.8 (iterative index scans). Run ALTER EXTENSION vector UPDATE as a superuser after installing 0.8.`);
  }
  return schema.replace(/^"|"$/g, "");
}
