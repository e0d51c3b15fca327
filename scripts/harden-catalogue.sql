-- Takes from PUBLIC (so from Bulkhead's data-plane role) the catalogue functions that reach past
-- row-level security, and gives them back to the roles named in :control_roles (comma-separated:
-- the owner and the control-plane role); and temporary tables, which Bulkhead does not use (a
-- caller's temporary objects are what a careless SECURITY DEFINER function would read first). Run as a superuser in each Bulkhead database; idempotent.
--   psql "$SUPERUSER_URL_OF_THAT_DATABASE" -v control_roles=bulkhead_owner,bulkhead_app -f scripts/harden-catalogue.sql
-- Without it a stolen data-plane credential can still take any advisory lock (stall a migration,
-- a placement decision, another tenant's writes) and read each namespace's row count and size.
-- Bulkhead warns at start and its readiness check fails while either is callable by the data role.
-- What stays visible: the planner's estimates (pg_class.reltuples, and EXPLAIN, which no privilege
-- governs), i.e. approximately how many vectors each namespace holds as of its last ANALYZE.
\set ON_ERROR_STOP on
SELECT set_config('bulkhead.control_roles', :'control_roles', false);
DO $$
DECLARE
  f regprocedure;
  r text;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_proc p
     WHERE p.pronamespace = 'pg_catalog'::regnamespace
       AND (p.proname ~ '^pg_(try_)?advisory_'                                   -- advisory locks
         OR (p.proname ~ '^pg_stat(io)?_get_' AND p.pronargs = 1 AND p.proargtypes[0] = 'oid'::regtype)  -- per-relation statistics
         OR p.proname IN ('pg_relation_size', 'pg_total_relation_size', 'pg_table_size', 'pg_indexes_size'))
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    FOREACH r IN ARRAY string_to_array(current_setting('bulkhead.control_roles'), ',') LOOP
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, trim(r));
    END LOOP;
  END LOOP;
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END
$$;
