#!/bin/sh
# First start of the compose stack's TimescaleDB (docker-entrypoint-initdb.d): the
# read-only login Grafana uses, with the password from GRAFANA_DB_PASSWORD. Migration
# 0009 (shiptrack/db/migrations/0009_readonly_role.sql) grants it SELECT on the
# documented tables only; it makes the role without a login where this script did not
# run (a database created before it: ALTER ROLE shiptrack_readonly LOGIN PASSWORD '...').
set -eu
: "${GRAFANA_DB_PASSWORD:?set GRAFANA_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v pw="$GRAFANA_DB_PASSWORD" <<'SQL'
CREATE ROLE shiptrack_readonly LOGIN PASSWORD :'pw';
SQL
