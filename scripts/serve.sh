#!/usr/bin/env bash
# Serve the ASGI app (HTTP + WebSockets) with uvicorn worker processes behind one port, and
# run a Celery worker with the beat scheduler beside it so the periodic jobs (hold timeouts,
# lot expiry, board roll-over) run in the embedded default too. Stopping the server stops
# the worker.
#
# Workers: WEB_CONCURRENCY if set, else one per core when REDIS_URL is set, else one. The
# embedded default keeps one: its channel layer and cache are in-memory, per process, so a
# socket on a second worker would never get the pushes the first one sends, and throttles
# would count per worker. (Its SQLite writes would be safe across processes: WAL, BEGIN
# IMMEDIATE and a busy timeout, config/settings.py.) With Redis the workers share the
# channel layer (pub/sub), the boards and the cache, so any number can serve one port.
set -euo pipefail
cd "$(dirname "$0")/.."
HOST=${1:-127.0.0.1}
PORT=${2:-8000}
if [[ -n "${WEB_CONCURRENCY:-}" ]]; then
    WORKERS=$WEB_CONCURRENCY
elif [[ -n "${REDIS_URL:-}" ]]; then
    WORKERS=$(nproc)
else
    WORKERS=1
fi
mkdir -p var/celery-broker/processed var/celery-broker/control
.venv/bin/celery -A config worker --beat --pool=solo --loglevel=INFO \
    --schedule var/celerybeat-schedule >var/celery.log 2>&1 &
CELERY_PID=$!
trap 'kill $CELERY_PID 2>/dev/null || true' EXIT INT TERM
echo "Celery worker + beat running (pid $CELERY_PID, log var/celery.log)"
echo "Serving on http://$HOST:$PORT with $WORKERS worker(s)  (API docs: http://$HOST:$PORT/api/docs/, admin: /admin/)"
# A listen backlog for bursts (a short accept queue overflows and the kernel resets
# clients); WebSocket pings drop a client that stopped reading, bounding what is queued for
# it; no proxy-header rewriting: the app reads X-Forwarded-For itself (NUM_PROXIES).
.venv/bin/uvicorn config.asgi:application --host "$HOST" --port "$PORT" \
    --workers "$WORKERS" --backlog 1024 --lifespan off --no-proxy-headers \
    --ws-ping-interval 10 --ws-ping-timeout 20 --timeout-graceful-shutdown 10
