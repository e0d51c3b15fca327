#!/usr/bin/env bash
# Prepares a PostgreSQL server for Bulkhead (idempotent):
#   - pgvector built and installed (scripts/install-pgvector.sh), the server started if it is down;
#   - an owner role that runs migrations and owns every table (bulkhead_owner);
#   - a control-plane login role that owns nothing, is not superuser and has no BYPASSRLS (bulkhead_app):
#     registry, keys, costs, moves;
#   - a data-plane login role like it (bulkhead_data): tenant data requests, granted tenant data only
#     (migrations grant it when DATABASE_DATA_URL is set);
#   - a database owned by the owner role, with the vector extension created by a superuser
#     (and the same for each database named as an argument: cells, e.g. `setup-postgres.sh bulkhead_cell`);
#   - in each, advisory locks and per-table statistics taken from PUBLIC (scripts/harden-catalogue.sql).
# Prints the three URLs to export. Superuser access: SUPERUSER_URL (default: postgres over 127.0.0.1, trust auth).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DB=${BULKHEAD_DB:-bulkhead}
HOST=${PGHOST_ADDR:-127.0.0.1}
PORT=${PGPORT_NUM:-5432}
SUPERUSER_URL=${SUPERUSER_URL:-postgres://postgres@$HOST:$PORT/postgres}

bash "$here/install-pgvector.sh" >&2

if ! pg_isready -h "$HOST" -p "$PORT" -q; then
  echo "PostgreSQL is not answering on $HOST:$PORT; starting the local cluster" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >&2
  for _ in $(seq 1 30); do pg_isready -h "$HOST" -p "$PORT" -q && break; sleep 1; done
fi

psql_super() { psql "$SUPERUSER_URL" -v ON_ERROR_STOP=1 -qAt "$@"; }
psql_super <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bulkhead_owner') THEN
    CREATE ROLE bulkhead_owner LOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bulkhead_app') THEN
    CREATE ROLE bulkhead_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bulkhead_data') THEN
    CREATE ROLE bulkhead_data LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END \$\$;
SQL
# The database itself, and any named on the command line: more stores (cells) for BULKHEAD_CELLS,
# prepared the same way (the test suites use "<database>_cell" when it exists).
for db in "$DB" "$@"; do
  if [ "$(psql_super -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]; then
    psql_super -c "CREATE DATABASE \"$db\" OWNER bulkhead_owner"
  fi
  psql "postgres://postgres@$HOST:$PORT/$db" -v ON_ERROR_STOP=1 -qAt <<SQL
CREATE EXTENSION IF NOT EXISTS vector;
ALTER EXTENSION vector UPDATE;
-- The runtime roles may connect and use the vector type, nothing more; migrations grant the rest.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CONNECT ON DATABASE "$db" TO bulkhead_app, bulkhead_data;
SQL
  psql "postgres://postgres@$HOST:$PORT/$db" -qAt -v control_roles=bulkhead_owner,bulkhead_app -f "$here/harden-catalogue.sql" >/dev/null
done
echo "export DATABASE_URL=postgres://bulkhead_app@$HOST:$PORT/$DB"
echo "export DATABASE_DATA_URL=postgres://bulkhead_data@$HOST:$PORT/$DB"
echo "export DATABASE_OWNER_URL=postgres://bulkhead_owner@$HOST:$PORT/$DB"
