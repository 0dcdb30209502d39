"""Two operators' uploads at once, crediting the same residents set-based: the rows shared by
both batches (the residents, their accounts, the issuance shard) are locked in one order, so
neither waits on the other in a cycle, and every trip is credited once. PostgreSQL only
(SQLite ignores row locks and serialises writers)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from carbon.adapters.transit import trips as transit_trips
from carbon.adapters.transit.models import Trip, TripStatus
from carbon.models import Claim, ClaimStatus, Transfer, TransferCode
from carbon.services.ledger_check import ledger_check
from tests.carbon.api_helpers import credited_in_bulk
from tests.carbon.factories import UserFactory
from tests.carbon.test_ledger_concurrency import run_together
from tests.carbon.transit_samples import linked, push, tap

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _ride(number: str, at, route) -> list[dict]:
    return [
        tap(route[0], "in", at, number=number),
        tap(route[1], "out", at + timedelta(minutes=18), number=number),
    ]


def test_two_overlapping_batches_credit_every_trip_once_without_deadlock(
    transactional_db, transit, operator, settings, monkeypatch
):
    in_bulk = credited_in_bulk(monkeypatch, transit_trips)
    # Two shards: both batches are likely to debit the same one.
    settings.LEDGER_SYSTEM_SHARDS = 2
    numbers = [f"6227 3{i:03d} 0000 0000" for i in range(16)]
    for number in numbers:
        linked(UserFactory(), number)
    local = timezone.localtime().replace(minute=0, second=0, microsecond=0)
    rounds = 3
    batches = []
    for r in range(rounds):
        for worker in range(2):
            day = local - timedelta(days=1 + r, hours=-2 * worker)
            route = (
                ("m-jiedaokou", "m-wuchang-railway-station")
                if worker == 0
                else ("m-wuchang-railway-station", "m-jiedaokou")
            )
            # Every card in both batches, in opposite orders: the same residents, the same
            # shards, reached from both ends.
            order = numbers if worker == 0 else list(reversed(numbers))
            taps = []
            for number in order:
                taps += _ride(number, day.replace(hour=8 + 4 * worker), route)
            batches.append(taps)

    for r in range(rounds):
        pair = batches[2 * r : 2 * r + 2]
        results = run_together(2, lambda i, pair=pair: push(operator, pair[i]))
        failures = [x for x in results if isinstance(x, BaseException)]
        assert not failures, failures
        assert all(x.status_code == 200 for x in results), [x.content for x in results]

    trips = rounds * 2 * len(numbers)
    assert Trip.objects.count() == trips
    assert Trip.objects.filter(status=TripStatus.CLAIMED).count() == trips
    credited = Claim.objects.filter(status=ClaimStatus.CREDITED)
    assert credited.count() == trips
    # Each claim one award, each award one claim: nothing credited twice.
    awards = Transfer.objects.filter(code=TransferCode.AWARD)
    assert awards.count() == trips
    assert awards.aggregate(s=Sum("amount_g"))["s"] == credited.aggregate(s=Sum("credited_g"))["s"]
    # Most of them set-based (a trip the other batch had claimed first went one at a time).
    assert len(in_bulk) > trips // 2, len(in_bulk)
    assert ledger_check() == []
