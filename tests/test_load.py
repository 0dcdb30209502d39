"""Bursts against a real Daphne process: the embedded default (a SpatiaLite file) must make
a burst wait instead of answering "database is locked", and PostgreSQL must serve more
concurrent clients than its pool has connections, with zero server errors either way."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from carbon.services.people import resident_register
from tests.serving import Call, burst, daphne, login, manage, server_env

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith(("postgis", "postgresql"))

# The schema, residents, a self-declared behaviour without caps, and an access token each,
# printed as JSON. Run in the server's own environment so the tokens are signed with its key.
SEED = """
import json
from decimal import Decimal
from django.core.management import call_command
from rest_framework_simplejwt.tokens import RefreshToken
from carbon.models import Behaviour
from carbon.services.catalogue import emission_factor_publish
from carbon.services.people import resident_register

call_command("migrate", verbosity=0)
behaviour = Behaviour.objects.create(
    code="burst-walk", name="Walk", category="green_travel", unit="km",
    evidence_types=["self"], max_quantity=Decimal("40"), claim_window_days=7,
)
emission_factor_publish(
    behaviour=behaviour, grams_per_unit=Decimal("20"), methodology="test", source="test"
)
tokens = []
for i in range({residents}):
    user = resident_register(
        email=f"burst{{i}}@example.org", password="a long test passphrase", display_name="B"
    )
    tokens.append(str(RefreshToken.for_user(user).access_token))
print(json.dumps(tokens))
"""

# What the server stored: every claim's key, and the ledger's invariant violations.
STORED = """
import json
from carbon.models import Claim
from carbon.services.ledger_check import ledger_check
keys = list(Claim.objects.values_list("idempotency_key", flat=True))
print(json.dumps({"claim_keys": keys, "violations": [str(v) for v in ledger_check()]}))
"""


def _json_shell(code: str, env: dict[str, str]):
    """Run code in `manage.py shell`; its last printed line, as JSON."""
    return json.loads(manage("shell", "--no-imports", "-c", code, env=env).strip().splitlines()[-1])


def _seed(env: dict[str, str], residents: int) -> list[str]:
    return _json_shell(SEED.format(residents=residents), env)


def _claim(token: str) -> Call:
    body = {
        "behaviour": "burst-walk",
        "quantity": 2,
        "idempotency_key": str(uuid.uuid4()),
        "evidence": {"type": "self"},
    }
    return Call("POST", "/api/v1/claims", token, body)


@pytest.mark.skipif(ON_POSTGRES, reason="the embedded default's burst; runs in the embedded pass")
def test_embedded_default_waits_out_a_burst_of_mixed_reads_and_writes(tmp_path):
    env = server_env(
        tmp_path,
        # The per-resident limits would answer part of the burst with 429: let every
        # claim through so the writes really contend for the database.
        THROTTLE_CLAIMS="100000/min",
        CARBON_THROTTLE_ACTIONS="100000",
    )
    tokens = _seed(env, residents=4)
    # Half reads, half writes, all 200 sent at once: the writers queue for SQLite's one
    # write lock for seconds (before the fix, 16-29 of the 100 writes got a 500 "database
    # is locked" once they had waited 5 s).
    calls = [
        [
            Call("GET", "/api/v1/me", token),
            Call("GET", "/api/v1/behaviours", token),
            _claim(token),
            _claim(token),
        ][i % 4]
        for i, token in enumerate(tokens[i % len(tokens)] for i in range(200))
    ]

    with daphne(env=env, log=tmp_path / "daphne.log") as server:
        base = server.url
        answers = burst(base, calls, clients=200)

        # Another process holds the write lock, EXCLUSIVE (in rollback-journal mode that
        # would shut readers out too). Reads are answered meanwhile: they open no write
        # transaction and, in WAL mode, don't wait for the writer. A write waits its turn.
        holder = sqlite3.connect(tmp_path / "carbon.sqlite3", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with ThreadPoolExecutor(max_workers=1) as writer:
                waiting = writer.submit(burst, base, [_claim(tokens[0])], clients=1)
                reads = burst(
                    base,
                    [
                        Call("GET", path, tokens[0])
                        for path in ("/api/v1/me", "/api/v1/behaviours", "/api/v1/claims")
                    ],
                    clients=3,
                    timeout=10,
                )
                time.sleep(1)  # the write has reached the lock and waits there
                write_done_under_lock = waiting.done()
                holder.execute("ROLLBACK")
                late_write = waiting.result(timeout=30)
        finally:
            holder.close()

    statuses = Counter(a.status for a in answers)
    errors = [(a.call.method, a.call.path, a.status) for a in answers if a.status >= 500]
    assert not errors, f"{len(errors)} server errors in the burst ({dict(statuses)})"
    assert statuses == {200: 100, 201: 100}, dict(statuses)
    assert [(a.call.path, a.status) for a in reads] == [
        ("/api/v1/me", 200),
        ("/api/v1/behaviours", 200),
        ("/api/v1/claims", 200),
    ]
    assert not write_done_under_lock, f"the write did not wait for the lock: {late_write}"
    assert [a.status for a in late_write] == [201]

    # Every claim answered 201 was stored, once; none was stored without its answer.
    posted = [a for a in answers + late_write if a.call.method == "POST"]
    stored = _json_shell(STORED, env)
    assert Counter(stored["claim_keys"]) == Counter(a.call.body["idempotency_key"] for a in posted)
    assert stored["violations"] == []


POOL_MAX = 4
SERVER_APP_NAME = "carbon-load-test"


class ServerConnections:
    """Counts the server's connections to PostgreSQL (by application_name) while a burst
    runs, from a connection of its own. Past `stop_above` it stops the server: a leak
    must not take the whole PostgreSQL server's connections from everyone else."""

    def __init__(self, *, dsn: str, stop_above: int, server):
        self.peak = 0
        self.stopped_server = False
        self._dsn, self._stop_above, self._server = dsn, stop_above, server
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            while not self._done.is_set():
                (count,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    [SERVER_APP_NAME],
                ).fetchone()
                self.peak = max(self.peak, count)
                if count > self._stop_above:
                    self.stopped_server = True
                    self._server.process.kill()
                    return
                time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join(10)


@pytest.mark.postgres
def test_postgres_serves_more_concurrent_clients_than_pool_connections(transactional_db, tmp_path):
    # The server reads the test database, so what it reads must be committed.
    resident_register(
        email="load@example.org", password="a long test passphrase", display_name="Load"
    )
    db = connection.settings_dict
    credentials = f"{quote(db['USER'])}:{quote(db['PASSWORD'])}@{db['HOST']}:{db['PORT']}"
    env = server_env(
        tmp_path,
        DATABASE_URL=f"postgis://{credentials}/{db['NAME']}?application_name={SERVER_APP_NAME}",
        DB_POOL_MIN_SIZE="1",
        DB_POOL_MAX_SIZE=str(POOL_MAX),
        DB_POOL_TIMEOUT="30",
    )
    dsn = f"postgresql://{credentials}/{db['NAME']}"

    with daphne(env=env, log=tmp_path / "daphne.log") as server:
        token = login(server.url, email="load@example.org", password="a long test passphrase")
        calls = [Call("GET", "/api/v1/me", token) for _ in range(300)]
        with ServerConnections(dsn=dsn, stop_above=POOL_MAX + 4, server=server) as watch:
            try:
                answers = burst(server.url, calls, clients=24)
            except OSError:
                if not watch.stopped_server:
                    raise
                answers = []

    assert not watch.stopped_server, (
        f"stopped the server at {watch.peak} connections: its pool allows {POOL_MAX}"
    )
    statuses = Counter(a.status for a in answers)
    assert statuses == {200: len(calls)}, dict(statuses)
    assert 1 <= watch.peak <= POOL_MAX
