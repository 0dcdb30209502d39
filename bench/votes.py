"""Votes per second through the vote service on PostgreSQL, many concurrent voters on a few
candidates, beside bare inserts of the same vote rows as the baseline.

Run (PostgreSQL + PostGIS only):

    DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon \\
        .venv/bin/python bench/votes.py --voters 600 --concurrency 50
    ... bench/votes.py --quick           # 200 voters

Like the other benches it writes nothing to the database DATABASE_URL names: it creates a
scratch database (`<DATABASE_URL's database>_bench_votes`, --db-name) on that server,
migrates it, creates its campaign (4 candidates, 3 votes a day) and voters (each with a
confirmed transit card: verified), and drops it at the end (--keep leaves it).

--concurrency clients (threads spread over --processes processes, each thread with its own
connection; processes so that one interpreter's lock does not make the client the
bottleneck), released together on a barrier:

* service: every voter tries all 4 candidates and one of them again (5 attempts, 3 may
  succeed: the 4th candidate is over the daily limit, the repeat is refused), through
  zerowaste.campaigns.votes.vote_cast exactly as the API calls it; a voter's attempts are
  interleaved with the others' so that concurrent requests of one voter do happen;
* baseline: the rows the service wrote, inserted again (after deleting them) by the same
  clients with a bare INSERT each (autocommit; no lock, no look-up, no checks).

Prints attempts/s, votes/s, p50/p99 latency of each, and checks that no voter has more than
3 votes or two votes for one candidate that day. Then, one request at a time on fresh
voters (--stack votes each), the milliseconds of a vote through the service alone, through
the whole HTTP stack (Django's test client: middleware, JWT authentication, DRF, the
serializers; no socket), and of a bare insert: what the request stack adds to a vote.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("CARBON_LOCAL", "1")
# One connection per client thread, opened once and kept for the run (no pool to queue on).
os.environ["DB_POOL_MAX_SIZE"] = "0"

from bench import harness  # noqa: E402

TITLE = "bench-votes"
VOTES_PER_DAY = 3
INSERT_SQL = (
    "INSERT INTO zerowaste_vote (campaign_id, candidate_id, voter_id, day, slot, slots, "
    "idempotency_key, account_age_days, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s)"
)


def setup_django() -> None:
    import django

    django.setup()


# --- the world -------------------------------------------------------------------------------


def create_world(voters: int, stack_voters: int) -> None:
    """The campaign (open, 3 votes a day, no minimum age), 4 family candidates, verified
    voters bench-<n>@bench.invalid and, for the one-at-a-time comparison, stack-<n>."""
    from django.contrib.gis.geos import Point
    from django.utils import timezone

    from carbon.adapters.transit.models import TransitCard
    from carbon.models import District, User
    from carbon.models.linking import LinkStatus
    from zerowaste.campaigns.models import Campaign, Candidate
    from zerowaste.cells.models import Cell, CellKind, CellStatus

    now = timezone.now()
    district = District.objects.create(code="bench-votes", name="Bench")
    cells = Cell.objects.bulk_create(
        Cell(
            kind=CellKind.FAMILY,
            name=f"bench-{i}",
            district=district,
            location=Point(114.3, 30.6, srid=4326),
            status=CellStatus.CERTIFIED,
            certified_at=now,
            expires_at=now + timezone.timedelta(days=700),
        )
        for i in range(4)
    )
    campaign = Campaign.objects.create(
        title_zh=TITLE,
        title_en=TITLE,
        rules_zh="-",
        rules_en="-",
        nomination_opens_at=now - timezone.timedelta(days=3),
        nomination_closes_at=now - timezone.timedelta(days=2),
        voting_opens_at=now - timezone.timedelta(days=1),
        voting_closes_at=now + timezone.timedelta(days=1),
        votes_per_day=VOTES_PER_DAY,
        min_account_days=0,
    )
    Candidate.objects.bulk_create(Candidate(campaign=campaign, cell=c) for c in cells)
    users = User.objects.bulk_create(
        [User(email=f"bench-{n}@bench.invalid", password="!") for n in range(voters)]
        + [User(email=f"stack-{n}@bench.invalid", password="!") for n in range(stack_voters)]
    )
    TransitCard.objects.bulk_create(
        TransitCard(
            user=u,
            card_hash=uuid.uuid4().hex + uuid.uuid4().hex,
            status=LinkStatus.CONFIRMED,
            confirmed_at=now,
        )
        for u in users
    )


def world() -> tuple[int, list[int]]:
    """The campaign's id and its candidates' ids, in order."""
    from zerowaste.campaigns.models import Campaign, Candidate

    campaign = Campaign.objects.get(title_en=TITLE)
    candidates = list(
        Candidate.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True)
    )
    return campaign.pk, candidates


# --- one process's clients -------------------------------------------------------------------


def worker(mode: str, work: list, clients: int, *, barrier) -> list[tuple]:
    """`clients` threads of this process take `work` in order; each one's (start, end of its
    timed part, latencies, outcomes)."""
    setup_django()
    from django.db import connection

    from carbon.errors import DomainError
    from carbon.models import User
    from zerowaste.campaigns.votes import vote_cast

    campaign_id, _ = world()
    if mode == "service":
        users = User.objects.in_bulk([voter for voter, _ in work])

        def one(item) -> str:
            voter, candidate = item
            try:
                vote_cast(
                    user=users[voter],
                    campaign_id=campaign_id,
                    candidate_id=candidate,
                    idempotency_key=str(uuid.uuid4()),
                )
            except DomainError as exc:
                return exc.code.value
            return "ok"

    else:

        def one(row) -> str:
            try:
                with connection.cursor() as cursor:
                    cursor.execute(INSERT_SQL, [campaign_id, *row])
            except Exception as exc:  # noqa: BLE001 - counted, as the service's refusals are
                return type(exc).__name__
            return "ok"

    connection.close()
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    for item in work:
        jobs.put(item)

    def client() -> tuple:
        latencies, outcomes = [], {}
        connection.ensure_connection()
        barrier.wait(timeout=600)
        began = time.perf_counter()
        while True:
            try:
                item = jobs.get_nowait()
            except queue.Empty:
                break
            t0 = time.perf_counter()
            outcome = one(item)
            latencies.append(time.perf_counter() - t0)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        return began, time.perf_counter(), latencies, outcomes

    return harness.in_threads(client, [()] * clients, barrier=barrier)


def run_mode(mode: str, work_by_process: list[list], clients_by_process: list[int]) -> dict:
    """All processes' clients released together; the run is from the first client's start
    to the last one's end (perf_counter is one system-wide clock on Linux)."""
    clients = [
        client
        for process in harness.in_processes(
            worker,
            [(mode, w, c) for w, c in zip(work_by_process, clients_by_process, strict=True)],
            parties=sum(clients_by_process),
        )
        for client in process
    ]
    latencies = [x for _, _, mine, _ in clients for x in mine]
    outcomes: dict[str, int] = {}
    for *_, counts in clients:
        for k, n in counts.items():
            outcomes[k] = outcomes.get(k, 0) + n
    seconds = max(end for _, end, *_ in clients) - min(began for began, *_ in clients)
    return {"latencies": latencies, "outcomes": outcomes, "seconds": seconds}


def ms(latencies: list[float], p: float) -> float:
    return harness.percentile(latencies, p) * 1000


# --- one request at a time: what the request stack adds --------------------------------------


def stack(count: int) -> dict[str, float]:
    """Milliseconds a vote, one at a time on voters who have not voted: the service alone,
    the whole request through the test client (with a real bearer token), a bare insert."""
    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from rest_framework_simplejwt.tokens import AccessToken

    from carbon.models import User
    from zerowaste.campaigns.votes import vote_cast

    campaign_id, candidates = world()
    users = list(User.objects.filter(email__startswith="stack-").order_by("pk"))
    half = len(users) // 2
    direct, http = users[:half][:count], users[half:][:count]
    tokens = [f"Bearer {AccessToken.for_user(u)}" for u in http]
    client = Client()
    url = f"/api/v1/zerowaste/campaigns/{campaign_id}/votes"

    def post(i: int, candidate: int):
        body = json.dumps({"candidate": candidate, "idempotency_key": str(uuid.uuid4())})
        return client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=tokens[i])

    # Warm-up (imports, the statement's compilation, the handler's middleware): not timed.
    vote_cast(user=direct[0], campaign_id=campaign_id, candidate_id=candidates[3],
              idempotency_key=str(uuid.uuid4()))  # fmt: skip
    if post(0, candidates[3]).status_code != 201:
        harness.fail("stack: the warm-up vote through the API was refused")
    started = time.perf_counter()
    for user in direct:
        vote_cast(user=user, campaign_id=campaign_id, candidate_id=candidates[0],
                  idempotency_key=str(uuid.uuid4()))  # fmt: skip
    service = (time.perf_counter() - started) / len(direct)
    started = time.perf_counter()
    for i in range(len(http)):
        response = post(i, candidates[0])
        if response.status_code != 201:
            harness.fail(f"stack: a vote through the API answered {response.status_code}")
    api = (time.perf_counter() - started) / len(http)
    now, day = timezone.now(), timezone.localdate()
    with connection.cursor() as cursor:
        started = time.perf_counter()
        for user in direct:  # a slot of their own, after the two above
            cursor.execute(INSERT_SQL, [campaign_id, candidates[1], user.pk, day, 3, 3,
                                        str(uuid.uuid4()), now])  # fmt: skip
        bare = (time.perf_counter() - started) / len(direct)
    return {"service": service * 1000, "api": api * 1000, "bare": bare * 1000, "n": len(direct)}


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voters", type=int, default=600, help="voters (600)")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent clients (50)")
    parser.add_argument(
        "--processes", type=int, default=0,
        help="processes the clients are spread over (default: the CPU count)",
    )  # fmt: skip
    parser.add_argument(
        "--stack", type=int, default=200, help="votes one at a time per way of voting (200)"
    )
    parser.add_argument("--quick", action="store_true", help="200 voters, 100 votes one by one")
    parser.add_argument(
        "--db-name", default="", help="scratch database (<DATABASE_URL db>_bench_votes)"
    )
    parser.add_argument("--keep", action="store_true", help="do not drop the scratch database")
    args = parser.parse_args()
    if args.quick:
        args.voters, args.stack = min(args.voters, 200), min(args.stack, 100)
    processes = min(args.processes or os.cpu_count() or 1, args.concurrency)
    if min(args.voters, args.concurrency, processes, args.stack) < 1:
        harness.fail("--voters, --concurrency, --processes and --stack must be positive")

    with harness.scratch_database(suffix="bench_votes", db_name=args.db_name, keep=args.keep):
        setup_django()
        from django.db import connection

        from carbon.models import User
        from zerowaste.campaigns.models import Vote

        began = time.perf_counter()
        harness.migrate()
        create_world(args.voters, 2 * (args.stack + 1))
        print(f"set up in {time.perf_counter() - began:.0f} s", flush=True)
        print(
            f"{harness.machine_facts()}; {args.voters} voters, {args.concurrency} clients over "
            f"{processes} process(es)"
        )
        campaign_id, candidates = world()
        voters = list(
            User.objects.filter(email__startswith="bench-")
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        proc_of = {v: i % processes for i, v in enumerate(voters)}
        clients = [len(range(p, args.concurrency, processes)) for p in range(processes)]

        # Interleaved so that concurrent requests of one voter do happen.
        work: list[list] = [[] for _ in range(processes)]
        for k in range(5):
            for voter in voters:
                work[proc_of[voter]].append((voter, candidates[k % 4]))
        attempts = 5 * len(voters)
        service = run_mode("service", work, clients)
        outcomes = service["outcomes"]
        ok = outcomes.pop("ok", 0)
        elapsed, lat = service["seconds"], service["latencies"]
        service_rate = ok / elapsed
        print(
            f"service : {attempts} attempts, {ok} votes in {elapsed:.2f}s = "
            f"{attempts / elapsed:.0f} attempts/s, {service_rate:.0f} votes/s; "
            f"p50 {ms(lat, 50):.1f} ms, p99 {ms(lat, 99):.1f} ms; refused {outcomes}"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM (SELECT voter_id, day FROM zerowaste_vote WHERE "
                "campaign_id = %s GROUP BY voter_id, day HAVING count(*) > %s) t",
                [campaign_id, VOTES_PER_DAY],
            )
            over = cursor.fetchone()[0]
            cursor.execute(
                "SELECT count(*) FROM (SELECT 1 FROM zerowaste_vote WHERE campaign_id = %s "
                "GROUP BY voter_id, day, candidate_id HAVING count(*) > 1) t",
                [campaign_id],
            )
            twice = cursor.fetchone()[0]
        print(
            f"limits  : voters over {VOTES_PER_DAY} a day: {over}; candidate twice a day: {twice}"
        )
        recorded = Vote.objects.filter(campaign_id=campaign_id).count()
        print(f"          votes recorded {recorded} (expected {VOTES_PER_DAY * len(voters)})")

        rows = list(
            Vote.objects.filter(campaign_id=campaign_id).values_list(
                "candidate_id", "voter_id", "day", "slot", "slots", "idempotency_key", "created_at"
            )
        )
        Vote.objects.filter(campaign_id=campaign_id).delete()
        base_work: list[list] = [[] for _ in range(processes)]
        for row in rows:
            base_work[proc_of[row[1]]].append(row)
        baseline = run_mode("baseline", base_work, clients)
        elapsed_b, lat_b = baseline["seconds"], baseline["latencies"]
        errors_b = len(rows) - baseline["outcomes"].get("ok", 0)
        base_rate = len(rows) / elapsed_b
        print(
            f"baseline: {len(rows)} bare inserts in {elapsed_b:.2f}s = {base_rate:.0f} rows/s; "
            f"p50 {ms(lat_b, 50):.1f} ms, p99 {ms(lat_b, 99):.1f} ms; errors {errors_b}"
        )
        print(f"ratio   : service votes/s / baseline rows/s = {service_rate / base_rate:.2f}")

        one = stack(args.stack)
        print(
            f"one at a time ({one['n']} votes each): service {one['service']:.2f} ms, "
            f"whole HTTP stack (test client) {one['api']:.2f} ms, bare insert "
            f"{one['bare']:.2f} ms; the request stack is "
            f"{(one['api'] - one['service']) / one['api']:.0%} of a vote through the API"
        )
        connection.close()
        if over or twice or recorded != VOTES_PER_DAY * len(voters):
            raise SystemExit(1)


if __name__ == "__main__":
    main()
