"""Latency of a resident's read endpoints (/me, /ledger, /claims, /behaviours) on a
PostgreSQL data set of about a million ledger entries, lots and claims, for a light resident
(9 entries) and a heavy one (5,000). Target: p95 under 20 ms for each, one client.

    DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon CARBON_LOCAL=1 \\
        .venv/bin/python bench/reads.py            # 100k residents, ~1M rows (a few minutes)
        .venv/bin/python bench/reads.py --quick    # 10k residents, ~110k rows (under 2 min)

Requests go through Django's test client in this process, with a real JWT in the
Authorization header (authentication, views, serializers and SQL; no HTTP server, no
socket). The data set is made by set-based SQL, in time order as a live table would be
(entries of one resident scattered across the heap; the heavy residents' entries end a month
ago, so their newest page is not among the table's newest rows), on its own database
`<DATABASE_URL's name>_bench_reads`, dropped afterwards unless --keep; --reuse measures an
existing one again (after a migration, say: the same rows before and after an index), or
makes it when there is none (bench/harness.py).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.harness import machine_facts, migrate, percentile, scratch_database  # noqa: E402

TARGET_P95_MS = 20.0
ENDPOINTS = ("/api/v1/me", "/api/v1/ledger", "/api/v1/claims", "/api/v1/behaviours")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--residents", type=int, default=100_000, help="residents (default 100,000)")
    p.add_argument("--heavy", type=int, default=20, help="heavy residents (default 20)")
    p.add_argument("--heavy-entries", type=int, default=5000, help="entries each (default 5,000)")
    p.add_argument("--light-entries", type=int, default=9, help="entries each (default 9)")
    p.add_argument("--requests", type=int, default=200, help="requests per row (default 200)")
    p.add_argument("--quick", action="store_true", help="10k residents, 2 heavy, 100 requests")
    p.add_argument("--keep", action="store_true", help="keep the bench database")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="measure the bench database of an earlier run (made if missing), keep it",
    )
    p.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the list queries")
    args = p.parse_args()
    if args.quick:
        args.residents, args.heavy, args.requests = 10_000, 2, 100
    return args


# A credited self-declaration's receipt, the size of a real one (~1.7 KB): the list
# serializes it, so its size is part of what /claims costs.
def receipt_template() -> str:
    import json

    steps = [
        ("verification", "passed", "Self-declared: no evidence to check."),
        ("eligibility", "passed", "The behaviour is open to residents and within its window."),
        ("quantity", "passed", "1 use, within the per-claim maximum of 5."),
        ("factor", "passed", "Emission factor 2024-01 in force: 39.2 g CO2e per use."),
        ("tier_weight", "passed", "Self-declared evidence counts at 50 % (tier weight 5000 bp)."),
        ("per_action_cap", "passed", "Under the per-action cap of 500 g."),
        ("daily_cap", "passed", "312 g of the daily cap of 2000 g used today."),
        ("monthly_cap", "passed", "No monthly cap for this behaviour."),
        ("self_budget", "passed", "Within the daily self-declaration budget; not sampled."),
        ("throttle", "passed", "2 claims in the last 15 minutes, under the limit of 10."),
        ("review_sample", "passed", "Not drawn for random review."),
        ("credit", "passed", "Credited 19 g CO2e, expiring in 365 days."),
    ]
    return json.dumps(
        {
            "code": "credited",
            "reason": "Credited: every rule passed.",
            "steps": [
                {"rule": r, "outcome": o, "reason": why, "facts": {"checked_at": "2026-11-30"}}
                for r, o, why in steps
            ],
            "amount_g": 19,
            "factor": {"code": "bench", "version": "2024-01", "g_per_unit": "39.2"},
        }
    )


def seed(args) -> None:
    """Residents, their accounts, transfers in time order (8 awards to 1 spend), a lot and a
    credited claim per award, and counters that agree with the transfers."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from carbon.models import AccountKind, Behaviour, EmissionFactor
    from carbon.services.ledger import system_account

    t = time.perf_counter()
    # The catalogue /behaviours serves (its partners' keys go nowhere: not printed).
    call_command("seed_demo", size=0, verbosity=0, stdout=io.StringIO())
    shards = settings.LEDGER_SYSTEM_SHARDS
    issuance = [system_account(kind=AccountKind.ISSUANCE, shard=s).pk for s in range(shards)]
    redemption = system_account(kind=AccountKind.REDEMPTION, shard=0).pk
    behaviour = Behaviour.objects.filter(evidence_types__contains=["self"]).first()
    behaviour = behaviour or Behaviour.objects.first()
    factor = EmissionFactor.objects.filter(behaviour=behaviour).first()
    print(f"  catalogue and system accounts in {time.perf_counter() - t:.1f} s")

    steps = [
        (
            "residents",
            """INSERT INTO carbon_user (password, is_superuser, is_staff, is_active, date_joined,
                   public_id, email, display_name, role)
               SELECT '!', false, false, true, now() - interval '200 days', gen_random_uuid(),
                   'reads-' || g || '@bench.invalid', 'Reader ' || g, 'resident'
               FROM generate_series(1, %(residents)s) g""",
        ),
        (
            "accounts",
            """INSERT INTO carbon_account (kind, shard, debits_must_not_exceed_credits,
                   debits_pending, debits_posted, credits_pending, credits_posted, lifetime_g,
                   created_at, user_id)
               SELECT 'resident', 0, true, 0, 0, 0, 0, 0, u.date_joined, u.id FROM carbon_user u
               WHERE u.email LIKE 'reads-%%' ORDER BY u.id""",
        ),
        (
            "transfers",
            """WITH residents AS (
                   SELECT a.id, row_number() OVER (ORDER BY a.id) AS n
                   FROM carbon_account a JOIN carbon_user u ON u.id = a.user_id
                   WHERE u.email LIKE 'reads-%%'),
               entries AS (
                   SELECT r.id AS account, k,
                       CASE WHEN r.n <= %(heavy)s
                            -- a heavy resident who stopped a month ago: their newest entry
                            -- is behind a month of everyone else's in time order
                            THEN now() - interval '30 days' - interval '150 days' * random()
                            ELSE now() - interval '180 days' * random() - interval '1 minute'
                       END AS at
                   FROM residents r CROSS JOIN LATERAL generate_series(
                       1, CASE WHEN r.n <= %(heavy)s THEN %(heavy_entries)s
                               ELSE %(light_entries)s END) k)
               INSERT INTO carbon_transfer (idempotency_key, payload_hash, amount_g, flag, code,
                   category, description, reference, created_at, credit_account_id,
                   debit_account_id)
               SELECT 'reads:' || e.account || ':' || e.k, md5(e.account || ':' || e.k),
                   CASE WHEN e.k %% 9 = 0 THEN 10 ELSE 50 + (e.k * 37) %% 400 END, 'posted',
                   CASE WHEN e.k %% 9 = 0 THEN 'spend' ELSE 'award' END, 'mobility',
                   CASE WHEN e.k %% 9 = 0 THEN 'Bus pass discount' ELSE 'Metro ride' END,
                   '', e.at,
                   CASE WHEN e.k %% 9 = 0 THEN %(redemption)s ELSE e.account END,
                   CASE WHEN e.k %% 9 = 0 THEN e.account
                        ELSE (%(issuance)s::bigint[])[1 + e.account %% %(shards)s] END
               FROM entries e ORDER BY e.at""",
        ),
        (
            "lots",
            """INSERT INTO carbon_lot (category, amount_g, remaining_g, expires_at, account_id,
                   award_id)
               SELECT t.category, t.amount_g, t.amount_g, t.created_at + interval '365 days',
                   t.credit_account_id, t.id
               FROM carbon_transfer t WHERE t.code = 'award' AND t.idempotency_key LIKE 'reads:%%'
               ORDER BY t.id""",
        ),
        (
            "claims",
            """INSERT INTO carbon_claim (id, quantity, occurred_at, evidence_type, evidence,
                   idempotency_key, request_hash, status, receipt, credited_g, submitted_at,
                   decided_at, review_note, behaviour_id, user_id, factor_id, award_id)
               SELECT gen_random_uuid(), 1, t.created_at - interval '1 hour', 'self',
                   '{"type": "self"}', t.idempotency_key, md5(t.idempotency_key), 'credited',
                   %(receipt)s::jsonb, t.amount_g, t.created_at, t.created_at, '',
                   %(behaviour)s, a.user_id, %(factor)s, t.id
               FROM carbon_transfer t JOIN carbon_account a ON a.id = t.credit_account_id
               WHERE t.code = 'award' AND t.idempotency_key LIKE 'reads:%%' ORDER BY t.id""",
        ),
        (
            "counters",
            """UPDATE carbon_account a
               SET credits_posted = a.credits_posted + s.credits,
                   debits_posted = a.debits_posted + s.debits,
                   -- GET /me's lifetime: a resident's awards (the seed makes no reversals)
                   lifetime_g = a.lifetime_g + CASE WHEN a.kind = 'resident'
                                                    THEN s.awarded ELSE 0 END
               FROM (SELECT account, sum(credits) AS credits, sum(debits) AS debits,
                            sum(awarded) AS awarded FROM (
                       SELECT credit_account_id AS account, amount_g AS credits, 0 AS debits,
                              CASE WHEN code = 'award' THEN amount_g ELSE 0 END AS awarded
                       FROM carbon_transfer WHERE idempotency_key LIKE 'reads:%%'
                       UNION ALL
                       SELECT debit_account_id, 0, amount_g, 0
                       FROM carbon_transfer WHERE idempotency_key LIKE 'reads:%%') x
                     GROUP BY account) s
               WHERE a.id = s.account""",
        ),
    ]
    params = {
        "residents": args.residents,
        "heavy": args.heavy,
        "heavy_entries": args.heavy_entries,
        "light_entries": args.light_entries,
        "issuance": issuance,
        "shards": shards,
        "redemption": redemption,
        "receipt": receipt_template(),
        "behaviour": behaviour.pk,
        "factor": factor.pk if factor else None,
    }
    for label, sql in steps:
        t = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            count = cursor.rowcount
        print(f"  {label:<10} {count:>10,} rows in {time.perf_counter() - t:6.1f} s")
    t = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"  VACUUM ANALYZE in {time.perf_counter() - t:.1f} s")


def explain(light, heavy) -> None:
    """The plans of the list queries for a heavy resident, as the views run them."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from carbon.models import Claim
    from carbon.services.ledger import ledger_entries_for_user

    qs, account = ledger_entries_for_user(user=heavy)
    plans = {"ledger page, one OR query (before)": qs[:51]}
    if hasattr(qs, "account_sides"):
        credit, debit = qs.account_sides()
        plans["ledger page, credit side (after)"] = credit[:51]
        plans["ledger page, debit side (after)"] = debit[:51]
    plans |= {
        "claims page": Claim.objects.owned_by(heavy).order_by("-submitted_at", "-id")[:51],
    }
    for title, query in plans.items():
        sql, params = query.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            print(f"\n-- {title}\n" + "\n".join(r[0] for r in cursor.fetchall()))
    throttle = Claim.objects.filter(
        user_id=heavy.pk,
        partner__isnull=True,
        submitted_at__gte=timezone.now() - timedelta(minutes=15),
    )
    sql, params = throttle.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM ({sql}) c", params)
        print("\n-- throttle count\n" + "\n".join(r[0] for r in cursor.fetchall()))


def measure(args) -> list[tuple]:
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from rest_framework_simplejwt.tokens import AccessToken

    from carbon.models import User

    settings.ALLOWED_HOSTS = ["*"]
    residents = User.objects.filter(email__startswith="reads-").order_by("pk")
    heavy = residents.first()
    light = residents.last()
    who = {"light": light, "heavy": heavy}
    if args.explain:
        explain(light, heavy)
    rows = []
    for path in ENDPOINTS:
        for label, user in who.items():
            client = Client(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
            for _ in range(5):  # warm: connection, caches, first-query plans
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code, response.content)
            statements: list[str] = []

            def count(run, sql, *rest, seen=statements):
                seen.append(sql)
                return run(sql, *rest)

            with connection.execute_wrapper(count):
                client.get(path)
            times, sql_times = [], []
            in_sql = [0.0]

            def timed(run, sql, *rest, spent=in_sql):
                t0 = time.perf_counter()
                try:
                    return run(sql, *rest)
                finally:
                    spent[0] += time.perf_counter() - t0

            with connection.execute_wrapper(timed):
                for _ in range(args.requests):
                    in_sql[0] = 0.0
                    t0 = time.perf_counter()
                    response = client.get(path)
                    times.append((time.perf_counter() - t0) * 1e3)
                    sql_times.append(in_sql[0] * 1e3)
                    assert response.status_code == 200
            rows.append(
                (
                    path,
                    label,
                    percentile(times, 50),
                    percentile(times, 95),
                    len(statements),
                    sql_times,
                )
            )
    return rows


def main() -> None:
    args = parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    with scratch_database(suffix="bench_reads", keep=args.keep, reuse=args.reuse) as scratch:
        import django

        django.setup()
        from django.db import connection

        started = time.perf_counter()
        print(f"database: {scratch.name} ({'new' if scratch.fresh else 'reused'})")
        migrate()
        if scratch.fresh:
            print(
                f"seeding {args.residents:,} residents ({args.heavy} with "
                f"{args.heavy_entries:,} entries, the rest {args.light_entries}):"
            )
            seed(args)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT count(*) FROM carbon_transfer), (SELECT count(*) FROM carbon_lot),"
                " (SELECT count(*) FROM carbon_claim),"
                " (SELECT count(*) FROM pg_indexes WHERE tablename = 'carbon_transfer')"
            )
            transfers, lots, claims, indexes = cursor.fetchone()
        print(
            f"rows: {transfers:,} transfers ({indexes} indexes), {lots:,} lots, {claims:,} claims"
        )
        rows = measure(args)
        print(
            f"\n{machine_facts()}; {args.requests} requests per row, one client, Django test "
            f"client in-process (JWT auth, no HTTP server); target p95 < {TARGET_P95_MS:.0f} ms"
        )
        print(
            f"  {'endpoint':<22}{'who':<7}{'p50 ms':>8}{'p95 ms':>8}{'SQL':>5}"
            f"{'SQL p50 ms':>12}{'SQL p95':>9}  target"
        )
        for path, label, p50, p95, queries, sql_times in rows:
            verdict = "ok" if p95 < TARGET_P95_MS else "MISSED"
            print(
                f"  {path:<22}{label:<7}{p50:8.1f}{p95:8.1f}{queries:5d}"
                f"{percentile(sql_times, 50):12.2f}{percentile(sql_times, 95):9.2f}  {verdict}"
            )
        print("  (SQL: statements per request, and the time spent in them)")
        print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
