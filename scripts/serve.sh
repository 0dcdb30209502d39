#!/usr/bin/env bash
# Serve the ASGI app (HTTP + WebSockets) with Daphne, and run a Celery worker with the beat
# scheduler beside it so the periodic jobs (hold timeouts, lot expiry) run in the embedded
# default too. Stopping the server stops the worker.
set -euo pipefail
cd "$(dirname "$0")/.."
HOST=${1:-127.0.0.1}
PORT=${2:-8000}
mkdir -p var/celery-broker/processed var/celery-broker/control
.venv/bin/celery -A config worker --beat --pool=solo --loglevel=INFO \
    --schedule var/celerybeat-schedule >var/celery.log 2>&1 &
CELERY_PID=$!
trap 'kill $CELERY_PID 2>/dev/null || true' EXIT INT TERM
echo "Celery worker + beat running (pid $CELERY_PID, log var/celery.log)"
echo "Serving on http://$HOST:$PORT  (API docs: http://$HOST:$PORT/api/docs/, admin: /admin/)"
# A listen backlog for bursts: at Daphne's default (50) a burst of clients overflows the
# accept queue and the kernel resets their connections.
.venv/bin/daphne -e "tcp:port=$PORT:interface=$HOST:backlog=1024" \
    config.asgi:application
