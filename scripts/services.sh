#!/usr/bin/env bash
# Install and start PostgreSQL + PostGIS and Redis on 127.0.0.1 for the full suite and the
# benchmarks. Prints the DATABASE_URL and REDIS_URL to use. Idempotent.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || ! command -v redis-server >/dev/null; then
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q postgresql redis-server
fi
PGVER=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! ls /usr/share/postgresql/"$PGVER"/extension/postgis.control >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "postgresql-$PGVER-postgis-3"
fi

if ! pg_lsclusters -h | grep -q "^$PGVER main"; then
    $SUDO pg_createcluster "$PGVER" main
fi
if ! pg_lsclusters -h | grep "^$PGVER main" | grep -q online; then
    $SUDO pg_ctlcluster "$PGVER" main start
fi
for _ in $(seq 1 30); do
    su postgres -c "pg_isready -q -h 127.0.0.1" && break
    sleep 1
done

PGPASS=carbon
su postgres -c "psql -qtA -c \"SELECT 1 FROM pg_roles WHERE rolname='carbon'\"" | grep -q 1 ||
    su postgres -c "psql -q -c \"CREATE ROLE carbon LOGIN SUPERUSER PASSWORD '$PGPASS'\""
su postgres -c "psql -qtA -c \"SELECT 1 FROM pg_database WHERE datname='carbon'\"" | grep -q 1 ||
    su postgres -c "createdb -O carbon carbon"
su postgres -c "psql -q -d carbon -c 'CREATE EXTENSION IF NOT EXISTS postgis'"

if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no
    for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi

echo "DATABASE_URL=postgis://carbon:$PGPASS@127.0.0.1:5432/carbon"
echo "REDIS_URL=redis://127.0.0.1:6379/0"
