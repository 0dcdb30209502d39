# Two commands on a fresh machine:
#   make run   set up, migrate, load demo data, serve HTTP + WebSockets on the embedded
#              default at http://127.0.0.1:$(PORT), with Celery worker + beat alongside
#   make test  set up and run the whole suite (PostGIS + Redis when DATABASE_URL/REDIS_URL say so)
PORT ?= 8000
HOST ?= 127.0.0.1
PY := .venv/bin/python

.PHONY: setup run test lint services bench

setup:
	bash scripts/bootstrap.sh

run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput -v 0
	$(PY) manage.py seed_demo
	bash scripts/serve.sh $(HOST) $(PORT)

test: setup
	bash scripts/test.sh

# ruff, and the import contracts of pyproject.toml (the dependency rule of ARCHITECTURE.md).
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports

# The benchmarks, run by hand (PostgreSQL; `make services` first). Each prints its baseline.
# CARBON_LOCAL: a developer's PostgreSQL, so secrets may come from var/secrets.json.
bench: export CARBON_LOCAL = 1
bench: setup
	DATABASE_URL=$${DATABASE_URL:-postgis://carbon:carbon@127.0.0.1:5432/carbon} $(PY) bench/ledger.py
	DATABASE_URL=$${DATABASE_URL:-postgis://carbon:carbon@127.0.0.1:5432/carbon} $(PY) bench/photo_verify.py
	DATABASE_URL=$${DATABASE_URL:-postgis://carbon:carbon@127.0.0.1:5432/carbon} $(PY) bench/transit_ingest.py --taps 30000 --cards 3000

# PostgreSQL + PostGIS and Redis on 127.0.0.1, for the full suite and the benchmarks.
services:
	bash scripts/services.sh
