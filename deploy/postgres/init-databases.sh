#!/usr/bin/env bash
# Creates one role and one database per service, each owned by its role, so no service
# can read another's tables. Run once by the postgres image on an empty data volume
# (/docker-entrypoint-initdb.d); also usable by hand against any server:
#   AUTH_DB_PASSWORD=… CONTENT_DB_PASSWORD=… INGEST_DB_PASSWORD=… \
#   PGHOST=db.example PGUSER=postgres deploy/postgres/init-databases.sh
# PEERMESH_DB_PREFIX (default peermesh_) prefixes the role and database names.
set -euo pipefail
prefix="${PEERMESH_DB_PREFIX:-peermesh_}"

for entry in "auth:${AUTH_DB_PASSWORD:?}" "content:${CONTENT_DB_PASSWORD:?}" "ingestion:${INGEST_DB_PASSWORD:?}"; do
    name="${prefix}${entry%%:*}"
    password="${entry#*:}"
    psql -v ON_ERROR_STOP=1 --no-psqlrc --dbname postgres \
        -v name="$name" -v password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
    echo "created role and database $name"
done
