"""What the bench scripts share: a scratch PostgreSQL database of their own beside the one
DATABASE_URL names, client processes released together, the percentiles they report, and
the header line of machine facts that goes beside every figure (the machine is shared: a
figure without the load says little).

Named harness, not after anything in the standard library: a script run as
`python bench/<x>.py` has bench/ first on its import path (tests/test_bench_scripts.py).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql", "postgis"}


def fail(message: str) -> NoReturn:
    """Stop the script with a message on stderr (exit status 2), named after the script."""
    print(f"bench/{Path(sys.argv[0]).name}: {message}", file=sys.stderr)
    raise SystemExit(2)


# --- the scratch database ----------------------------------------------------------------


def server_params(url: str) -> dict:
    """Connection parameters of a database URL, refusing anything but PostgreSQL."""
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES:
        fail(
            "DATABASE_URL must point at PostgreSQL (postgis://user:password@host:port/db); "
            f"got scheme {parts.scheme or '(none)'!r}. This benchmark measures PostgreSQL."
        )
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "",
        "password": parts.password or "",
        "dbname": parts.path.lstrip("/") or "postgres",
    }


def with_database(url: str, db_name: str) -> str:
    """The same URL naming another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db_name, parts.query, parts.fragment))


def _admin(params: dict, statement, args=None) -> list:
    """One statement on the server's maintenance connection (DATABASE_URL's database)."""
    import psycopg

    try:
        with psycopg.connect(
            host=params["host"], port=params["port"], user=params["user"],
            password=params["password"], dbname=params["dbname"], autocommit=True,
        ) as conn:  # fmt: skip
            cursor = conn.execute(statement, args)
            return cursor.fetchall() if cursor.description else []
    except psycopg.OperationalError as exc:
        fail(f"cannot connect to PostgreSQL at {params['host']}:{params['port']}: {exc}")


def _exists(params: dict, db_name: str) -> bool:
    return bool(_admin(params, "SELECT 1 FROM pg_database WHERE datname = %s", [db_name]))


def _drop(params: dict, db_name: str) -> None:
    from psycopg import sql

    # WITH (FORCE): a worker's or a pool's connection that is still closing must not keep
    # the scratch database alive.
    _admin(
        params, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name))
    )


def _create(params: dict, db_name: str) -> None:
    from psycopg import sql

    _drop(params, db_name)
    _admin(params, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))


@dataclass(frozen=True)
class Scratch:
    name: str
    #: False when --reuse found it from an earlier run (migrated, maybe loaded).
    fresh: bool


@contextlib.contextmanager
def scratch_database(
    *, suffix: str, db_name: str = "", keep: bool = False, reuse: bool = False
) -> Iterator[Scratch]:
    """A database of the bench's own on DATABASE_URL's server, created as the same role
    (it needs CREATEDB, and the right to create the postgis extension, which `migrate`
    does): `<DATABASE_URL's database>_<suffix>` unless `db_name`, so that helpers with
    databases of their own do not collide. DATABASE_URL is pointed at it for the run (child
    processes inherit it); at the end Django's connections are closed and it is dropped,
    unless `keep`, or `reuse`: then it stays, and the next `reuse` run starts from it
    (fresh False), which saves the migrations, a minute on a loaded 2-core machine."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        fail(
            "DATABASE_URL is not set. Point it at PostgreSQL, e.g.\n"
            "  DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon "
            f".venv/bin/python bench/{Path(sys.argv[0]).name} --quick"
        )
    params = server_params(url)
    name = db_name or f"{params['dbname']}_{suffix}"
    if name == params["dbname"]:
        fail(f"DATABASE_URL already names {name!r}; the benchmark drops that database")
    fresh = not (reuse and _exists(params, name))
    if fresh:
        _create(params, name)
    os.environ["DATABASE_URL"] = with_database(url, name)
    try:
        yield Scratch(name=name, fresh=fresh)
    finally:
        close_connections()
        if keep or reuse:
            print(f"kept database {name}")
        else:
            _drop(params, name)


def close_connections() -> None:
    """Close Django's connections and pools, if Django was set up."""
    from django.apps import apps

    if not apps.ready:
        return
    from django.db import connections

    connections.close_all()
    for conn in connections.all():
        getattr(conn, "close_pool", lambda: None)()


def residents_seed(count: int, *, email: str, consent_scope: str) -> list:
    """`count` residents written set-based (no password that works), each with their ledger
    account and the consent `consent_scope`; `email` is a format with {i}."""
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from carbon.models import Account, AccountKind, Consent, User

    password = make_password(None)
    with transaction.atomic():
        users = User.objects.bulk_create(
            [
                User(email=email.format(i=i), display_name=f"Rider {i}", password=password)
                for i in range(count)
            ],
            batch_size=2000,
        )
        Account.objects.bulk_create(
            [Account(kind=AccountKind.RESIDENT, user=u) for u in users], batch_size=2000
        )
        Consent.objects.bulk_create(
            [Consent(user=u, scope=consent_scope) for u in users], batch_size=2000
        )
    return users


def migrate() -> float:
    """Migrate the database Django is set up on; the seconds it took."""
    from django.core.management import call_command

    began = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    return time.perf_counter() - began


# --- client processes ---------------------------------------------------------------------


def in_processes(target, args_per_process: list[tuple], *, parties: int = 0) -> list:
    """target(*args, barrier=...) in a spawned process per tuple of args (each process has
    its own interpreter and connections, so the client is not one interpreter's lock); the
    results in the order of the tuples. The processes (or, with `parties`, that many
    threads across them) wait on one barrier, so that they start together; if one fails,
    the others stop waiting and the script fails with its traceback. target must be a
    module-level function of the script (the children import it)."""
    from django.db import connections

    connections.close_all()  # the children open their own
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(parties or len(args_per_process))
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_child, args=(target, i, args, barrier, results))
        for i, args in enumerate(args_per_process)
    ]
    for p in procs:
        p.start()
    reports = sorted((results.get(timeout=3600) for _ in procs), key=lambda r: r[0])
    for p in procs:
        p.join()
    for index, ok, value in reports:
        if not ok:
            fail(f"{getattr(target, '__name__', target)} process {index} failed:\n{value}")
    return [value for _, _, value in reports]


def in_threads(target, args_per_thread: list[tuple], *, barrier=None) -> list:
    """target(*args) in a thread per tuple (the clients of one process), each closing its
    Django connection when done; their results in order. If one fails, `barrier` is aborted
    (the other clients, here and in the other processes, stop waiting) and its traceback is
    raised once all are done."""
    from django.db import connection

    results: list = [None] * len(args_per_thread)
    errors: list[str] = []

    def run(i: int, args: tuple) -> None:
        try:
            results[i] = target(*args)
        except BaseException:
            errors.append(traceback.format_exc())
            if barrier is not None:
                barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args_per_thread)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    return results


def signed_pushes(
    path: str, key_id: str, secret: str, bodies: list[bytes], overrides: dict, *, barrier
) -> tuple[float, float, list[dict]]:
    """A partner's uploads from one client process (an in_processes target): each body
    POSTed to `path` in order, signed with the partner's key, through Django's whole stack
    in-process (the test client). `overrides`: settings for this process. Starts when every
    process is ready; (start, end, each answer's JSON). A non-200 answer fails the run."""
    import logging

    import django

    django.setup()
    from django.conf import settings
    from django.test import Client
    from django.urls import resolve

    from carbon.services.partners import sign

    logging.disable(logging.WARNING)  # a refused row's log line is not what is measured
    for name, value in overrides.items():
        setattr(settings, name, value)
    # The URLconf and the views imported before the clock starts, as a server does at start.
    resolve(path)
    client = Client()
    answers = []
    barrier.wait(timeout=600)
    started = time.perf_counter()
    for body in bodies:
        ts = str(int(time.time()))
        response = client.generic(
            "POST",
            path,
            body,
            content_type="application/json",
            headers={
                "X-Partner-Key": key_id,
                "X-Timestamp": ts,
                "X-Signature": sign(secret=secret, timestamp=ts, body=body),
            },
        )
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.content[:500]!r}")
        answers.append(response.json())
    ended = time.perf_counter()
    close_connections()
    return started, ended, answers


def _child(target, index: int, args: tuple, barrier, results) -> None:
    try:
        results.put((index, True, target(*args, barrier=barrier)))
    except BaseException:
        barrier.abort()  # the others stop waiting
        results.put((index, False, traceback.format_exc()))


# --- the figures -------------------------------------------------------------------------


def percentile(values, p: float) -> float:
    """The p-th percentile (0 < p < 100) of the values, interpolated between the nearest
    ranks (statistics.quantiles' inclusive method: p50 of an odd count is the median); the
    value itself for one sample, nan for none."""
    values = list(values)
    if len(values) < 2:
        return values[0] if values else math.nan
    cuts = statistics.quantiles(values, n=1000, method="inclusive")
    return cuts[round(p * 10) - 1]


def machine_facts() -> str:
    """PostgreSQL's version (when Django is on PostgreSQL), the CPUs and the load average:
    the header line every bench prints before its figures."""
    facts = []
    from django.apps import apps

    if apps.ready:
        from django.db import connection

        if connection.vendor == "postgresql":
            version = connection.cursor().connection.info.server_version
            facts.append(f"PostgreSQL {version // 10000}.{version % 10000}")
    facts.append(f"{os.cpu_count()} CPUs")
    one, five, fifteen = os.getloadavg()
    facts.append(f"load average {one:.2f} {five:.2f} {fifteen:.2f}")
    return ", ".join(facts)
