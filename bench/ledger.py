"""Awards per second through the ledger service on PostgreSQL, beside a raw-SQL baseline.

Run (PostgreSQL + PostGIS only; `make services` starts one locally):

    DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon .venv/bin/python bench/ledger.py
    ... bench/ledger.py --awards 2000 --processes 1,2,4 --residents 50

The script writes nothing to the database DATABASE_URL names: it connects to that server as
the same role, creates a scratch database `carbon_bench` (--db-name), migrates it, creates its
own residents (bench-<process>-<n>@bench.invalid), runs, and drops the database at the end
(--keep leaves it for inspection). The role needs CREATEDB (and the right to create the
postgis extension, which `migrate` does).

Modes, each with 1 and 2 processes (--processes); each process has its own connection and
awards --awards times to its own residents, one transaction per award:

* service:  carbon.services.ledger.ledger_award, exactly as the claims flow calls it;
* baseline: the same transaction shape in raw SQL through django.db.connection.cursor()
  (psycopg): insert the transfer, update the resident's and an issuance shard's counters,
  insert the lot. No idempotency look-up, no ORM, no savepoints, no on-commit push.

Between runs the ledger tables are truncated and the counters zeroed, so every run starts
from the same state. After each run the script checks the counts and, for the service, that
`ledger_check()` finds nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sys
import time
import traceback
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql", "postgis"}


def fail(message: str) -> None:
    print(f"bench/ledger.py: {message}", file=sys.stderr)
    raise SystemExit(2)


# --- the scratch database ----------------------------------------------------------------


def server_url(url: str) -> dict:
    """Connection parameters of DATABASE_URL, refusing anything but PostgreSQL."""
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES:
        fail(
            f"DATABASE_URL must point at PostgreSQL (postgis://user:password@host:port/db); "
            f"got scheme {parts.scheme or '(none)'!r}. The benchmark measures row locks and "
            "concurrent writers, which SQLite does not have."
        )
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "",
        "password": parts.password or "",
        "dbname": parts.path.lstrip("/") or "postgres",
    }


def bench_url(url: str, db_name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db_name, parts.query, parts.fragment))


def admin_connection(params: dict):
    import psycopg

    try:
        return psycopg.connect(
            host=params["host"], port=params["port"], user=params["user"],
            password=params["password"], dbname=params["dbname"], autocommit=True,
        )  # fmt: skip
    except psycopg.OperationalError as exc:
        fail(f"cannot connect to PostgreSQL at {params['host']}:{params['port']}: {exc}")


def create_database(params: dict, db_name: str) -> None:
    from psycopg import sql

    with admin_connection(params) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(db_name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db_name)))


def drop_database(params: dict, db_name: str) -> None:
    from psycopg import sql

    with admin_connection(params) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(db_name)))


# --- inside each process ---------------------------------------------------------------------


def setup_django() -> None:
    import django

    django.setup()


def reset_ledger() -> None:
    """Every run starts from the same state: no transfers or lots, counters at zero."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("TRUNCATE carbon_lotallocation, carbon_lot, carbon_transfer CASCADE")
        cur.execute(
            "UPDATE carbon_account SET debits_pending = 0, debits_posted = 0,"
            " credits_pending = 0, credits_posted = 0"
        )
        cur.execute("VACUUM ANALYZE carbon_account")


def create_residents(processes: int, per_process: int) -> None:
    """bench-<p>-<n>@bench.invalid, each with a ledger account; all issuance shards exist."""
    from django.conf import settings

    from carbon.models import AccountKind, User
    from carbon.services.ledger import account_for_user, system_account

    for p in range(processes):
        for n in range(per_process):
            user, _ = User.objects.get_or_create(
                email=f"bench-{p}-{n}@bench.invalid",
                defaults={"display_name": f"Bench {p}-{n}"},
            )
            account_for_user(user=user)
    for shard in range(max(1, settings.LEDGER_SYSTEM_SHARDS)):
        system_account(kind=AccountKind.ISSUANCE, shard=shard)


def worker(
    mode: str, proc: int, awards: int, residents: int, push: bool, barrier
) -> tuple[float, float]:
    setup_django()
    from datetime import timedelta

    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from carbon.models import Account, AccountKind, User
    from carbon.services.ledger import ledger_award

    users = list(User.objects.filter(email__startswith=f"bench-{proc}-").order_by("pk"))
    assert len(users) == residents, (proc, len(users))
    expires_at = timezone.now() + timedelta(days=365)
    run = uuid.uuid4().hex[:8]
    rng = random.Random(proc)

    if mode == "service":
        if not push:
            from carbon.services import ledger

            ledger._on_commit_notify = lambda account_ids: None

        def one(i: int) -> None:
            ledger_award(
                user=users[i % len(users)],
                amount_g=1 + rng.randrange(500),
                category="green_travel",
                idempotency_key=f"bench:{run}:{proc}:{i}",
                description="Bench award",
                expires_at=expires_at,
                reference=f"bench:{proc}:{i}",
            )

    else:
        resident_ids = dict(Account.objects.filter(user__in=users).values_list("user_id", "pk"))
        accounts = [resident_ids[u.pk] for u in users]
        shards = dict(Account.objects.filter(kind=AccountKind.ISSUANCE).values_list("shard", "pk"))
        n_shards = max(1, settings.LEDGER_SYSTEM_SHARDS)
        cursor = connection.cursor()

        def one(i: int) -> None:
            amount = 1 + rng.randrange(500)
            resident = accounts[i % len(accounts)]
            issuance = shards[rng.randrange(n_shards)]
            key = f"bench:{run}:{proc}:{i}"
            with transaction.atomic():
                cursor.execute(
                    "INSERT INTO carbon_transfer (idempotency_key, payload_hash, debit_account_id,"
                    " credit_account_id, amount_g, flag, code, category, description, reference,"
                    " created_at) VALUES (%s, %s, %s, %s, %s, 'posted', 'award', 'green_travel',"
                    " 'Bench award', %s, now()) RETURNING id",
                    [key, "0" * 64, issuance, resident, amount, f"bench:{proc}:{i}"],
                )
                transfer_id = cursor.fetchone()[0]
                # Resident first, then the shard: the service's lock order.
                cursor.execute(
                    "UPDATE carbon_account SET credits_posted = credits_posted + %s WHERE id = %s",
                    [amount, resident],
                )
                cursor.execute(
                    "UPDATE carbon_account SET debits_posted = debits_posted + %s WHERE id = %s",
                    [amount, issuance],
                )
                cursor.execute(
                    "INSERT INTO carbon_lot (account_id, award_id, category, amount_g,"
                    " remaining_g, expires_at) VALUES (%s, %s, 'green_travel', %s, %s, %s)",
                    [resident, transfer_id, amount, amount, expires_at],
                )

    connection.ensure_connection()
    barrier.wait(timeout=600)
    started = time.perf_counter()
    for i in range(awards):
        one(i)
    ended = time.perf_counter()
    connection.close()
    return started, ended


def worker_main(mode, proc, awards, residents, push, barrier, results) -> None:
    try:
        started, ended = worker(mode, proc, awards, residents, push, barrier)
        results.put(("ok", proc, started, ended))
    except BaseException:
        barrier.abort()  # the others stop waiting
        results.put(("error", proc, traceback.format_exc(), None))


def run(mode: str, processes: int, awards: int, residents: int, push: bool) -> float:
    from django.db import connection

    from carbon.models import Transfer

    reset_ledger()
    connection.close()  # the children open their own
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=worker_main, args=(mode, p, awards, residents, push, barrier, results))
        for p in range(processes)
    ]
    for p in procs:
        p.start()
    reports = [results.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
    errors = [r for r in reports if r[0] == "error"]
    if errors:
        fail(f"{mode} worker {errors[0][1]} failed:\n{errors[0][2]}")
    # Each process timed its own loop; perf_counter is one system-wide clock on Linux.
    seconds = max(r[3] for r in reports) - min(r[2] for r in reports)

    total = Transfer.objects.count()
    if total != processes * awards:
        fail(f"{mode}: expected {processes * awards} transfers, found {total}")
    if mode == "service":
        from carbon.services.ledger_check import ledger_check

        violations = ledger_check()
        if violations:
            fail(f"ledger_check after the service run: {[str(v) for v in violations[:5]]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--awards", type=int, default=5000, help="awards per process (5000)")
    parser.add_argument("--residents", type=int, default=50, help="residents per process (50)")
    parser.add_argument("--processes", default="1,2", help="process counts to run (1,2)")
    parser.add_argument("--db-name", default="carbon_bench", help="scratch database (carbon_bench)")
    parser.add_argument("--keep", action="store_true", help="do not drop the scratch database")
    parser.add_argument(
        "--no-push",
        action="store_true",
        help="service mode without the on-commit WebSocket push (the bare ledger write)",
    )
    args = parser.parse_args()
    counts = sorted({int(x) for x in args.processes.split(",") if x.strip()})
    if not counts or min(counts) < 1 or args.awards < 1 or args.residents < 1:
        fail("--awards, --residents and --processes must be positive")

    url = os.environ.get("DATABASE_URL", "")
    if not url:
        fail(
            "DATABASE_URL is not set. Point it at PostgreSQL, e.g.\n"
            "  DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon "
            ".venv/bin/python bench/ledger.py"
        )
    params = server_url(url)
    if params["dbname"] == args.db_name:
        fail(f"DATABASE_URL already names {args.db_name!r}; the benchmark drops that database")

    create_database(params, args.db_name)
    os.environ["DATABASE_URL"] = bench_url(url, args.db_name)  # the children inherit it
    try:
        setup_django()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0, interactive=False)
        create_residents(max(counts), args.residents)

        pg_version = connection.cursor().connection.info.server_version
        layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
        print(
            f"PostgreSQL {pg_version // 10000}.{pg_version % 10000}, database {args.db_name}, "
            f"{settings.LEDGER_SYSTEM_SHARDS} issuance shards, {args.residents} residents "
            f"per process, balance push {'off' if args.no_push else layer}, "
            f"{os.cpu_count()} CPUs"
        )
        rows = []
        for processes in counts:
            for mode in ("service", "baseline"):
                seconds = run(mode, processes, args.awards, args.residents, not args.no_push)
                rows.append((mode, processes, processes * args.awards, seconds))

        print()
        print(f"{'mode':<9} {'processes':>9} {'awards':>7} {'seconds':>8} {'awards/s':>9}")
        for mode, processes, total, seconds in rows:
            print(f"{mode:<9} {processes:>9} {total:>7} {seconds:>8.2f} {total / seconds:>9.0f}")
        print()
        rate = {(m, p): t / s for m, p, t, s in rows}
        for processes in counts:
            ratio = rate[("service", processes)] / rate[("baseline", processes)]
            print(f"service/baseline, {processes} process{'es' if processes > 1 else ''}: "
                  f"{ratio:.2f}")  # fmt: skip
        connection.close()
    finally:
        if args.keep:
            print(f"kept database {args.db_name}")
        else:
            from django.db import connections

            connections.close_all()
            drop_database(params, args.db_name)


if __name__ == "__main__":
    main()
