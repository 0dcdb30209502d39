"""Awards per second through the ledger service on PostgreSQL, beside a raw-SQL baseline.

Run (PostgreSQL + PostGIS only; `make services` starts one locally):

    DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon .venv/bin/python bench/ledger.py
    ... bench/ledger.py --awards 2000 --processes 1,2,4 --residents 50
    ... bench/ledger.py --quick          # 1000 awards per process, 1 and 2 processes (< 2 min)

The script writes nothing to the database DATABASE_URL names: it connects to that server as
the same role, creates a scratch database
`<DATABASE_URL's database>_bench_ledger` (--db-name), migrates it, creates its
own residents (bench-<process>-<n>@bench.invalid), runs, and drops the database at the end
(--keep leaves it for inspection; --reuse keeps it and starts from it next time, which
saves the migrations: on a loaded 2-core machine they alone can take over a minute). The
role needs CREATEDB (and the right to create the
postgis extension, which `migrate` does).

Modes, each with 1 and 2 processes (--processes); each process has its own connection and
awards --awards times to its own residents, each award committed on its own:

* service:  carbon.services.ledger.ledger_award(user=...), as a caller that has only the
  user calls it (it looks the resident's account up first);
* service+account: ledger_award(user=..., account=...), as the claim path calls it with the
  account it already has;
* baseline: the best raw SQL for the same rows through django.db.connection.cursor()
  (psycopg): one statement per award in autocommit (a data-modifying CTE that inserts the
  transfer, updates the resident's counters and then an issuance shard's, inserts the lot).
  No idempotency look-up, no ORM, no on-commit push.

The service modes include the after-commit announcement (balance push and leaderboard
credits) unless --no-push; with REDIS_URL set it goes to Redis, as in production.

Between runs the ledger tables are truncated and the counters zeroed, so every run starts
from the same state. After each run the script checks the counts and that `ledger_check()`
finds nothing (the baseline writes the same rows as the service, so it must pass too).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench.harness import (  # noqa: E402
    fail,
    in_processes,
    machine_facts,
    migrate,
    scratch_database,
)

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
            " credits_pending = 0, credits_posted = 0, lifetime_g = 0"
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
    mode: str, proc: int, awards: int, residents: int, push: bool, *, barrier
) -> tuple[float, float]:
    """One process's loop; (start, end) of its timed part."""
    setup_django()
    from datetime import timedelta

    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from carbon.models import Account, AccountKind, User
    from carbon.services.ledger import ledger_award

    users = list(User.objects.filter(email__startswith=f"bench-{proc}-").order_by("pk"))
    assert len(users) == residents, (proc, len(users))
    expires_at = timezone.now() + timedelta(days=365)
    run = uuid.uuid4().hex[:8]
    rng = random.Random(proc)

    if mode.startswith("service"):
        if not push:
            from carbon.services import ledger

            ledger.changes_on_commit = lambda **kwargs: None
        accounts_by_user = {a.user_id: a for a in Account.objects.filter(user__in=users)}
        with_account = mode == "service+account"

        def one(i: int) -> None:
            user = users[i % len(users)]
            ledger_award(
                user=user,
                amount_g=1 + rng.randrange(500),
                category="green_travel",
                idempotency_key=f"bench:{run}:{proc}:{i}",
                description="Bench award",
                expires_at=expires_at,
                reference=f"bench:{proc}:{i}",
                **({"account": accounts_by_user[user.pk]} if with_account else {}),
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
            # Autocommit: the statement is the transaction, one round trip per award.
            cursor.execute(BASELINE_SQL, {
                "key": f"bench:{run}:{proc}:{i}", "hash": "0" * 64, "issuance": issuance,
                "resident": resident, "amount": amount, "reference": f"bench:{proc}:{i}",
                "expires_at": expires_at,
            })  # fmt: skip

    connection.ensure_connection()
    barrier.wait(timeout=600)
    started = time.perf_counter()
    for i in range(awards):
        one(i)
    ended = time.perf_counter()
    connection.close()
    return started, ended


# The same rows as an award: the transfer; the resident's counters (credits and lifetime
# earned), then the shard's (it reads the resident update, so the locks come in the
# service's order); the lot.
BASELINE_SQL = """
WITH t AS (
    INSERT INTO carbon_transfer (idempotency_key, payload_hash, debit_account_id,
        credit_account_id, amount_g, flag, code, category, description, reference, created_at)
    VALUES (%(key)s, %(hash)s, %(issuance)s, %(resident)s, %(amount)s, 'posted', 'award',
        'green_travel', 'Bench award', %(reference)s, now())
    RETURNING id
), r AS (
    UPDATE carbon_account SET credits_posted = credits_posted + %(amount)s,
        lifetime_g = lifetime_g + %(amount)s
    FROM t WHERE carbon_account.id = %(resident)s RETURNING t.id
), s AS (
    UPDATE carbon_account SET debits_posted = debits_posted + %(amount)s
    FROM r WHERE carbon_account.id = %(issuance)s RETURNING r.id
)
INSERT INTO carbon_lot (account_id, award_id, category, amount_g, remaining_g, expires_at)
SELECT %(resident)s, s.id, 'green_travel', %(amount)s, %(amount)s, %(expires_at)s FROM s
"""


def run(mode: str, processes: int, awards: int, residents: int, push: bool) -> float:
    from carbon.models import Transfer

    reset_ledger()
    spans = in_processes(worker, [(mode, p, awards, residents, push) for p in range(processes)])
    # Each process timed its own loop; perf_counter is one system-wide clock on Linux.
    seconds = max(end for _, end in spans) - min(start for start, _ in spans)

    total = Transfer.objects.count()
    if total != processes * awards:
        fail(f"{mode}: expected {processes * awards} transfers, found {total}")
    # Every mode, the baseline too, must leave a ledger that passes the check: the same rows.
    from carbon.services.ledger_check import ledger_check

    violations = ledger_check()
    if violations:
        fail(f"ledger_check after the {mode} run: {[str(v) for v in violations[:5]]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--awards", type=int, default=5000, help="awards per process (5000)")
    parser.add_argument(
        "--quick", action="store_true", help="1000 awards per process (finishes in < 2 minutes)"
    )
    parser.add_argument(
        "--modes",
        default="service,service+account,baseline",
        help="modes to run (service,service+account,baseline)",
    )
    parser.add_argument("--residents", type=int, default=50, help="residents per process (50)")
    parser.add_argument("--processes", default="1,2", help="process counts to run (1,2)")
    parser.add_argument(
        "--db-name", default="", help="scratch database (<DATABASE_URL db>_bench_ledger)"
    )
    parser.add_argument("--keep", action="store_true", help="do not drop the scratch database")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="use the scratch database if it exists (migrated by an earlier --reuse run) and keep it",
    )
    parser.add_argument(
        "--no-push",
        action="store_true",
        help="service mode without the on-commit WebSocket push (the bare ledger write)",
    )
    args = parser.parse_args()
    if args.quick:
        args.awards = min(args.awards, 1000)
    counts = sorted({int(x) for x in args.processes.split(",") if x.strip()})
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not set(modes) <= {"service", "service+account", "baseline"} or "baseline" not in modes:
        fail("--modes: service, service+account and baseline (baseline is required)")
    if not counts or min(counts) < 1 or args.awards < 1 or args.residents < 1:
        fail("--awards, --residents and --processes must be positive")

    with scratch_database(
        suffix="bench_ledger", db_name=args.db_name, keep=args.keep, reuse=args.reuse
    ) as scratch:
        setup_django()
        from django.conf import settings
        from django.db import connection

        began = time.perf_counter()
        migrate()
        create_residents(max(counts), args.residents)
        print(f"set up in {time.perf_counter() - began:.0f} s", flush=True)

        layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
        print(
            f"{machine_facts()}; database {scratch.name}, "
            f"{settings.LEDGER_SYSTEM_SHARDS} issuance shards, {args.residents} residents "
            f"per process, balance push {'off' if args.no_push else layer}"
        )
        rows = []
        for processes in counts:
            for mode in modes:
                seconds = run(mode, processes, args.awards, args.residents, not args.no_push)
                print(f"  {mode}, {processes} process(es): {seconds:.1f} s", flush=True)
                rows.append((mode, processes, processes * args.awards, seconds))

        print()
        print(f"{'mode':<15} {'processes':>9} {'awards':>7} {'seconds':>8} {'awards/s':>9}")
        for mode, processes, total, seconds in rows:
            print(f"{mode:<15} {processes:>9} {total:>7} {seconds:>8.2f} {total / seconds:>9.0f}")
        print()
        rate = {(m, p): t / s for m, p, t, s in rows}
        for processes in counts:
            for mode in modes:
                if mode == "baseline":
                    continue
                ratio = rate[(mode, processes)] / rate[("baseline", processes)]
                print(f"{mode}/baseline, {processes} process{'es' if processes > 1 else ''}: "
                      f"{ratio:.2f}")  # fmt: skip
        connection.close()


if __name__ == "__main__":
    main()
