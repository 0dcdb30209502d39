"""Votes per second through the vote service on PostgreSQL, many concurrent voters on a few
candidates, beside bare inserts of the same vote rows as the baseline.

Run (PostgreSQL + PostGIS only):

    DATABASE_URL=postgis://carbon:carbon@127.0.0.1:5432/carbon_zerowaste \
        .venv/bin/python bench/votes.py --voters 600 --concurrency 50

It migrates the database DATABASE_URL names, creates its own campaign (4 candidates, 3
votes a day), voters (bench-votes-<n>@bench.invalid, each with a confirmed transit card:
verified) and removes all of them at the end (--keep leaves them).

* service: every voter tries all 4 candidates and one of them again (5 attempts, 3 may
  succeed: the 4th candidate is over the daily limit, the repeat is refused), spread over
  --concurrency threads with their own connections, through
  zerowaste.campaigns.votes.vote_cast exactly as the API calls it;
* baseline: the rows the service wrote, inserted again (after deleting them) by the same
  threads with a bare INSERT each (autocommit; no lock, no look-up, no checks).

Prints attempts/s, votes/s, p50/p99 latency of each, and checks that no voter has more than
3 votes or two votes for one candidate that day.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("CARBON_LOCAL", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--voters", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgis", "postgres")):
        raise SystemExit("bench/votes.py: set DATABASE_URL to a PostgreSQL (PostGIS) database")
    os.environ.setdefault("DB_POOL_MAX_SIZE", str(args.concurrency + 5))

    import django

    django.setup()
    from django.contrib.gis.geos import Point
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from carbon.adapters.transit.models import TransitCard
    from carbon.models import District, User
    from carbon.models.linking import LinkStatus
    from zerowaste.campaigns.models import Campaign, Candidate, Vote
    from zerowaste.campaigns.votes import vote_cast
    from zerowaste.cells.models import Cell, CellKind, CellStatus

    call_command("migrate", verbosity=0)
    now = timezone.now()
    tag = uuid.uuid4().hex[:8]
    district, _ = District.objects.get_or_create(code="bench-votes", defaults={"name": "Bench"})
    cells = Cell.objects.bulk_create(
        Cell(
            kind=CellKind.FAMILY,
            name=f"bench-{tag}-{i}",
            district=district,
            location=Point(114.3, 30.6, srid=4326),
            status=CellStatus.CERTIFIED,
            certified_at=now,
            expires_at=now + timezone.timedelta(days=700),
        )
        for i in range(4)
    )
    campaign = Campaign.objects.create(
        title_zh="bench",
        title_en="bench",
        rules_zh="-",
        rules_en="-",
        nomination_opens_at=now - timezone.timedelta(days=3),
        nomination_closes_at=now - timezone.timedelta(days=2),
        voting_opens_at=now - timezone.timedelta(days=1),
        voting_closes_at=now + timezone.timedelta(days=1),
        votes_per_day=3,
        min_account_days=0,
    )
    candidates = Candidate.objects.bulk_create(Candidate(campaign=campaign, cell=c) for c in cells)
    voters = User.objects.bulk_create(
        User(email=f"bench-votes-{tag}-{n}@bench.invalid", password="!") for n in range(args.voters)
    )
    TransitCard.objects.bulk_create(
        TransitCard(
            user=u,
            card_hash=uuid.uuid4().hex + uuid.uuid4().hex,
            status=LinkStatus.CONFIRMED,
            confirmed_at=now,
        )
        for u in voters
    )

    def run(work: list, fn) -> tuple[float, list[float], list]:
        jobs: queue.Queue = queue.Queue()
        for item in work:
            jobs.put(item)
        latencies: list[float] = []
        outcomes: list = []
        lock = threading.Lock()
        barrier = threading.Barrier(args.concurrency + 1)

        def worker() -> None:
            barrier.wait()
            mine, results = [], []
            while True:
                try:
                    item = jobs.get_nowait()
                except queue.Empty:
                    break
                start = time.perf_counter()
                try:
                    results.append(fn(item))
                except Exception as exc:  # noqa: BLE001 - counted as a refusal
                    results.append(exc)
                mine.append(time.perf_counter() - start)
            connection.close()
            with lock:
                latencies.extend(mine)
                outcomes.extend(results)

        threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
        for t in threads:
            t.start()
        barrier.wait()
        began = time.perf_counter()
        for t in threads:
            t.join()
        return time.perf_counter() - began, latencies, outcomes

    def pct(values: list[float], p: float) -> float:
        values = sorted(values)
        return values[min(len(values) - 1, int(p * len(values)))] * 1000

    try:
        # Interleaved so that concurrent requests of one voter do happen.
        work = [(voter, candidates[k % 4]) for k in range(5) for voter in voters]
        elapsed, lat, outcomes = run(
            work,
            lambda item: vote_cast(
                user=item[0],
                campaign_id=campaign.pk,
                candidate_id=item[1].pk,
                idempotency_key=str(uuid.uuid4()),
            ),
        )
        ok = [o for o in outcomes if not isinstance(o, Exception)]
        refused = {}
        for o in outcomes:
            if isinstance(o, Exception):
                name = getattr(getattr(o, "code", None), "value", type(o).__name__)
                refused[name] = refused.get(name, 0) + 1
        service_rate = len(ok) / elapsed
        print(
            f"service : {len(work)} attempts, {len(ok)} votes in {elapsed:.2f}s = "
            f"{len(work) / elapsed:.0f} attempts/s, {service_rate:.0f} votes/s; "
            f"p50 {pct(lat, 0.5):.1f} ms, p99 {pct(lat, 0.99):.1f} ms; refused {refused}"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM (SELECT voter_id, day FROM zerowaste_vote WHERE campaign_id=%s "
                "GROUP BY voter_id, day HAVING count(*) > 3) t",
                [campaign.pk],
            )
            over = cursor.fetchone()[0]
            cursor.execute(
                "SELECT count(*) FROM (SELECT 1 FROM zerowaste_vote WHERE campaign_id=%s "
                "GROUP BY voter_id, day, candidate_id HAVING count(*) > 1) t",
                [campaign.pk],
            )
            twice = cursor.fetchone()[0]
        print(f"limits  : voters over 3 a day: {over}; candidate twice a day: {twice}")
        expected = 3 * args.voters
        print(
            f"          votes recorded {Vote.objects.filter(campaign=campaign).count()} (expected {expected})"
        )

        rows = list(
            Vote.objects.filter(campaign=campaign).values_list(
                "candidate_id", "voter_id", "day", "slot", "slots", "idempotency_key", "created_at"
            )
        )
        Vote.objects.filter(campaign=campaign).delete()
        sql = (
            "INSERT INTO zerowaste_vote (campaign_id, candidate_id, voter_id, day, slot, slots, "
            "idempotency_key, account_age_days, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, 0, %s)"
        )

        def insert(row):
            with connection.cursor() as cursor:
                cursor.execute(sql, [campaign.pk, *row])

        elapsed_b, lat_b, outcomes_b = run(rows, insert)
        errors_b = [o for o in outcomes_b if isinstance(o, Exception)]
        base_rate = len(rows) / elapsed_b
        print(
            f"baseline: {len(rows)} bare inserts in {elapsed_b:.2f}s = {base_rate:.0f} rows/s; "
            f"p50 {pct(lat_b, 0.5):.1f} ms, p99 {pct(lat_b, 0.99):.1f} ms; errors {len(errors_b)}"
        )
        print(f"ratio   : service votes/s / baseline rows/s = {service_rate / base_rate:.2f}")
    finally:
        if not args.keep:
            Vote.objects.filter(campaign=campaign).delete()
            campaign.delete()
            Cell.objects.filter(pk__in=[c.pk for c in cells]).delete()
            TransitCard.objects.filter(user__in=voters).delete()
            User.objects.filter(pk__in=[u.pk for u in voters]).delete()


if __name__ == "__main__":
    main()
