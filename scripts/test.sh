#!/usr/bin/env bash
# Run the whole suite on whatever DATABASE_URL / REDIS_URL point at (embedded by default),
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${DATABASE_URL:-}" ]; then echo "test: database ${DATABASE_URL%%://*}"; else echo "test: embedded SpatiaLite"; fi
.venv/bin/pytest "$@"
