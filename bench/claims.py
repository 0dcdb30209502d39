"""Self-declared claims per second through the HTTP stack on PostgreSQL, beside the same rows
written by raw SQL.

Run (PostgreSQL + PostGIS only; `make services` starts one locally):

    DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon .venv/bin/python bench/claims.py
    ... bench/claims.py --quick          # under two minutes
    ... bench/claims.py --claims 2000 --rounds 3 --residents 200

The script writes nothing to the database DATABASE_URL names: it creates a scratch database
(`<that name>_claimsbench`, or --db-name) on the same server as the same role, migrates it,
loads the catalogue, creates its residents, runs, and drops it at the end (--keep leaves it).
The role needs CREATEDB (and the right to create the postgis extension, which `migrate` does).

Two modes, interleaved over --rounds rounds, each round starting from the same state (claims,
transfers and lots truncated, counters zeroed); one process, one connection:

* service:  POST /api/v1/claims through Django's test client: the whole request stack
  (middleware, JWT authentication with a real bearer token, DRF throttle, parsing,
  serializers, claim_submit, the rules, ledger_award, the response's serialization), with no
  socket and no HTTP server in front. Each request is a metro ride of 1 km declared by one of
  --residents established residents in turn; every one is credited (checked).
* baseline: the same rows for the same claims in raw SQL: one data-modifying statement per
  claim (the credited claim with its receipt, the award transfer, the resident's and an
  issuance shard's counters, the lot), through django.db.connection.cursor() (psycopg).
  No validation, no rules, no idempotency look-up, no ORM: what PostgreSQL itself needs.

So that the bench measures the crediting path and not a refusal, the settings that would
refuse a stream of claims from the same residents are raised through their environment
variables (THROTTLE_CLAIMS, CARBON_THROTTLE_ACTIONS, CARBON_SELF_DAILY_BUDGET_G,
CARBON_SELF_REVIEW_SAMPLE_BP=0) and metro's caps are set far out of reach (not removed: the
rules still read the sums they compare with). The rules still run in full.

Prints the rate of each mode per round, the medians, and the ratio service/baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# A developer's machine: secrets not in the environment are generated (config/secret_keys.py).
os.environ.setdefault("CARBON_LOCAL", "1")

from bench.harness import fail, machine_facts, migrate, scratch_database  # noqa: E402

CLAIMS = "/api/v1/claims"
# Far out of reach, so every claim of the run is credited; see the module docstring.
BENCH_ENV = {
    "THROTTLE_CLAIMS": "100000000/min",
    "CARBON_THROTTLE_ACTIONS": "100000000",
    "CARBON_SELF_DAILY_BUDGET_G": "1000000000",
    "CARBON_SELF_REVIEW_SAMPLE_BP": "0",
}
FAR_CAP_G = 2_000_000_000
CPU: list[float] = []  # CPU seconds of this process per service run (run_service)


# --- the data set ------------------------------------------------------------------------


def prepare(residents: int) -> dict:
    """The catalogue, metro's caps out of reach, `residents` established residents with their
    accounts and bearer tokens, every issuance shard."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import RefreshToken

    from carbon.models import AccountKind, Behaviour, User
    from carbon.services.catalogue import catalogue_seed
    from carbon.services.ledger import account_for_user, system_account

    catalogue_seed(valid_from=timezone.now() - timedelta(days=365))
    metro = Behaviour.objects.get(code="metro")
    metro.daily_cap_g = metro.monthly_cap_g = FAR_CAP_G
    metro.save(update_fields=["daily_cap_g", "monthly_cap_g"])
    joined = timezone.now() - timedelta(days=60)  # established: the full self budget
    users = []
    for n in range(residents):
        user = User.objects.create_user(
            email=f"bench-{n}@bench.invalid", password=None, display_name=f"Bench {n}"
        )
        User.objects.filter(pk=user.pk).update(date_joined=joined)
        account_for_user(user=user)
        users.append(user)
    for shard in range(max(1, settings.LEDGER_SYSTEM_SHARDS)):
        system_account(kind=AccountKind.ISSUANCE, shard=shard)
    return {
        "users": users,
        "tokens": [str(RefreshToken.for_user(u).access_token) for u in users],
        "metro": metro,
    }


def reset() -> None:
    """Every round starts from the same state: no claims, transfers or lots; counters at 0."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE carbon_claim, carbon_lotallocation, carbon_lot, carbon_transfer CASCADE"
        )
        cur.execute("TRUNCATE carbon_penaltybox")
        cur.execute(
            "UPDATE carbon_account SET debits_pending = 0, debits_posted = 0,"
            " credits_pending = 0, credits_posted = 0, lifetime_g = 0"
        )
        cur.execute("VACUUM ANALYZE carbon_account")
        cur.execute("ANALYZE carbon_claim")
    from django.core.cache import cache

    cache.clear()  # the DRF throttle's history


# --- the two modes -----------------------------------------------------------------------


def run_service(data: dict, claims: int) -> tuple[float, dict]:
    """`claims` POSTs through the test client; returns the seconds and the last receipt.
    Also records the CPU seconds this process spent (`CPU`): the stack's own cost, which a
    loaded machine moves less than the wall clock."""
    from django.test import Client

    # One client (its handler loads the middleware once), each request with its own token.
    client = Client()
    headers = [f"Bearer {t}" for t in data["tokens"]]
    bodies = [
        json.dumps(
            {
                "behaviour": "metro",
                "quantity": "1",
                "idempotency_key": str(uuid.uuid4()),
                "evidence": {"type": "self"},
            }
        )
        for _ in range(claims)
    ]
    last = None
    cpu = time.process_time()
    started = time.perf_counter()
    for i, body in enumerate(bodies):
        response = client.post(
            CLAIMS,
            body,
            content_type="application/json",
            HTTP_AUTHORIZATION=headers[i % len(headers)],
        )
        if response.status_code != 201:
            fail(f"service: claim {i} answered {response.status_code}: {response.content[:500]!r}")
        last = response
    seconds = time.perf_counter() - started
    CPU.append(time.process_time() - cpu)
    body = last.json()
    if body["status"] != "credited":
        fail(f"service: the claims must be credited; the last one is {body['status']}: {body}")
    return seconds, body["receipt"]


BASELINE_SQL = """
WITH t AS (
    INSERT INTO carbon_transfer (idempotency_key, payload_hash, debit_account_id,
        credit_account_id, amount_g, flag, code, category, description, reference, created_at)
    VALUES (%(transfer_key)s, %(payload_hash)s, %(issuance)s, %(account)s, %(amount)s,
        'posted', 'award', 'green_travel', %(description)s, %(reference)s, now())
    RETURNING id
), resident AS (
    UPDATE carbon_account SET credits_posted = credits_posted + %(amount)s,
        lifetime_g = lifetime_g + %(amount)s
    WHERE id = %(account)s RETURNING id
), shard AS (
    -- chained on the resident's update: the service's lock order, resident then shard
    UPDATE carbon_account SET debits_posted = debits_posted + %(amount)s
    WHERE id = %(issuance)s AND EXISTS (SELECT 1 FROM resident) RETURNING id
), lot AS (
    INSERT INTO carbon_lot (account_id, award_id, category, amount_g, remaining_g, expires_at)
    SELECT %(account)s, t.id, 'green_travel', %(amount)s, %(amount)s, now() + interval '365 days'
    FROM t
)
INSERT INTO carbon_claim (id, user_id, behaviour_id, quantity, occurred_at, evidence_type,
    evidence, partner_id, idempotency_key, request_hash, status, receipt, credited_g, factor_id,
    award_id, submitted_at, decided_at, reviewed_by_id, review_note, held_until)
SELECT %(claim_id)s, %(user)s, %(behaviour)s, 1, now(), 'self', '{}', NULL, %(claim_key)s,
    %(request_hash)s, 'credited', %(receipt)s, %(amount)s, %(factor)s, t.id, now(), now(),
    NULL, '', NULL
FROM t, shard
"""


def run_baseline(data: dict, claims: int, receipt: dict) -> float:
    """The same rows as `claims` credited self declarations, one statement each."""
    from django.conf import settings
    from django.db import connection

    from carbon.models import Account, AccountKind, EmissionFactor

    users = data["users"]
    accounts = dict(Account.objects.filter(user__in=users).values_list("user_id", "pk"))
    shards = list(
        Account.objects.filter(kind=AccountKind.ISSUANCE)
        .order_by("shard")
        .values_list("pk", flat=True)
    )
    n_shards = max(1, settings.LEDGER_SYSTEM_SHARDS)
    factor = EmissionFactor.objects.filter(behaviour=data["metro"]).order_by("-version")[0]
    receipt_json = json.dumps(receipt)
    amount = receipt["credited_g"]
    rows = []
    for i in range(claims):
        user = users[i % len(users)]
        claim_id = uuid.uuid4()
        rows.append(
            {
                "claim_id": claim_id,
                "user": user.pk,
                "account": accounts[user.pk],
                "issuance": shards[i % n_shards],
                "behaviour": data["metro"].pk,
                "factor": factor.pk,
                "amount": amount,
                "transfer_key": f"claim:{claim_id}:award",
                "payload_hash": uuid.uuid4().hex * 2,
                "description": "Metro ride: 1 km",
                "reference": f"claim:{claim_id}",
                "claim_key": str(uuid.uuid4()),
                "request_hash": uuid.uuid4().hex * 2,
                "receipt": receipt_json,
            }
        )
    connection.ensure_connection()
    with connection.cursor() as cursor:
        started = time.perf_counter()
        for row in rows:
            cursor.execute(BASELINE_SQL, row)  # autocommit: one statement, one transaction
        return time.perf_counter() - started


def check_round(mode: str, claims: int) -> None:
    from carbon.models import Claim, ClaimStatus
    from carbon.services.ledger_check import ledger_check

    credited = Claim.objects.filter(status=ClaimStatus.CREDITED).count()
    if credited != claims:
        fail(f"{mode}: expected {claims} credited claims, found {credited}")
    violations = ledger_check()
    if violations:
        fail(f"{mode}: ledger_check: {[str(v) for v in violations[:5]]}")


def profile_service(data: dict, claims: int) -> None:
    """`claims` service claims under cProfile: the functions with the most time of their own,
    then the most cumulative time, so the next cut is chosen from a profile, not a guess."""
    import cProfile
    import io
    import pstats

    reset()
    profiler = cProfile.Profile()
    profiler.enable()
    seconds, _ = run_service(data, claims)
    profiler.disable()
    print(f"\nprofile: {claims} claims, {1000 * seconds / claims:.2f} ms/claim under cProfile")
    for sort in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(
            int(os.environ.get("BENCH_PROFILE_LINES", "35"))
        )
        print(out.getvalue())


# --- main --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=1000, help="claims per mode per round (1000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--residents", type=int, default=100, help="residents (100)")
    parser.add_argument("--quick", action="store_true", help="200 claims, 2 rounds: < 2 minutes")
    parser.add_argument(
        "--db-name", default="", help="scratch database (<DATABASE_URL db>_claimsbench)"
    )
    parser.add_argument("--keep", action="store_true", help="do not drop the scratch database")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="after the rounds, profile N service claims (cProfile) and print where the time goes",
    )
    args = parser.parse_args()
    if args.quick:
        args.claims, args.rounds = 200, 2
    if args.claims < 1 or args.rounds < 1 or args.residents < 1:
        fail("--claims, --rounds and --residents must be positive")

    began = time.perf_counter()
    os.environ.update(BENCH_ENV)
    with scratch_database(suffix="claimsbench", db_name=args.db_name, keep=args.keep) as scratch:
        import django

        django.setup()
        from django.conf import settings
        from django.db import connection

        migrate()
        data = prepare(args.residents)
        print(f"scratch database ready in {time.perf_counter() - began:.0f} s")
        # One warm-up claim: imports, the catalogue and the first connection are not timed;
        # its receipt is the one the baseline writes.
        reset()
        _, receipt = run_service(data, 1)
        print(
            f"{machine_facts()}; database {scratch.name}, "
            f"{args.residents} residents, {args.claims} claims per mode per round, "
            f"{args.rounds} rounds; service = Django test client (whole request stack, no "
            f"socket); cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}"
        )
        rates: dict[str, list[float]] = {"service": [], "baseline": []}
        cpu_ms: list[float] = []
        for r in range(args.rounds):
            reset()
            seconds, receipt = run_service(data, args.claims)
            check_round("service", args.claims)
            rates["service"].append(args.claims / seconds)
            cpu_ms.append(1000 * CPU[-1] / args.claims)
            reset()
            seconds = run_baseline(data, args.claims, receipt)
            check_round("baseline", args.claims)
            rates["baseline"].append(args.claims / seconds)
            print(
                f"round {r + 1}: service {rates['service'][-1]:7.1f} claims/s, "
                f"baseline {rates['baseline'][-1]:7.1f} claims/s, "
                f"ratio {rates['service'][-1] / rates['baseline'][-1]:.3f}"
            )
        service = statistics.median(rates["service"])
        baseline = statistics.median(rates["baseline"])
        print()
        print(f"service  (median) {service:8.1f} claims/s  ({1000 / service:.2f} ms/claim)")
        print(f"baseline (median) {baseline:8.1f} claims/s  ({1000 / baseline:.2f} ms/claim)")
        print(f"service/baseline  {service / baseline:.3f}  (target >= 0.25)")
        print(
            f"service CPU in this process (median) {statistics.median(cpu_ms):.2f} ms/claim "
            "(the rest of a claim's time is waiting for PostgreSQL and Redis)"
        )
        if args.profile:
            profile_service(data, args.profile)
        print(f"total {time.perf_counter() - began:.0f} s")
        connection.close()


if __name__ == "__main__":
    main()
