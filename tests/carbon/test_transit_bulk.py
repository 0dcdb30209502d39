"""Tap batches credited set-based (claims_bulk, ledger_bulk) against the per-trip path: the
same batch replayed through both gives the same claims, receipts, trips, totals and ledger.
And the bulk path's statements do not grow with the batch."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from carbon.adapters.transit import trips as transit_trips
from carbon.adapters.transit.cards import transit_card_link
from carbon.adapters.transit.models import Trip, TripStatus
from carbon.adapters.transit.pairing import trips_with_boarded_line
from carbon.models import Behaviour, Claim, ClaimStatus
from carbon.services.catalogue import emission_factor_publish
from carbon.services.claims import claim_submit, claim_submit_from_feed
from carbon.services.claims_bulk import FeedClaim, claims_credit_feed_many
from carbon.services.linking import link_confirm_by_partner
from carbon.services.people import consent_revoke
from tests.carbon.api_helpers import assert_award_links, credited_in_bulk, issued_g, ledger_of
from tests.carbon.factories import DistrictFactory, UserFactory
from tests.carbon.transit_samples import linked, pushed, tap

pytestmark = pytest.mark.django_db

ROUTE = ("m-jiedaokou", "m-wuchang-railway-station")  # 4.86 km along the network: 381 g


def _day(days_ago: int, hour: int, minute: int = 0):
    local = timezone.localtime() - timedelta(days=days_ago)
    return local.replace(hour=hour, minute=minute, second=0, microsecond=0)


def _metro(number: str, at, *, minutes: int = 18, route=ROUTE) -> list[dict]:
    return [
        tap(route[0], "in", at, number=number),
        tap(route[1], "out", at + timedelta(minutes=minutes), number=number),
    ]


def _bus(number: str, at) -> list[dict]:
    return [tap("b-zhongnan-road", "in", at, number=number, mode="bus", line="bus-401")]


def _world(prefix: str, district) -> tuple[list[dict], dict[str, Any]]:
    """Six residents and an unlinked card, each with its own case; the same times for every
    prefix, so two worlds differ only in their people, cards and ids."""
    numbers = {role: f"6227 {prefix}{i:03d} 0000 0000" for i, role in enumerate(ROLES)}
    people = {}
    for role in ROLES:
        if role == "unlinked":
            continue
        user = UserFactory(district=district if role == "district" else None)
        linked(user, numbers[role])
        people[role] = user
    consent_revoke(user=people["no_consent"], scope="transit_card")
    # A self declaration credited for the first ride: the same act seen twice (weaker
    # evidence, so the card trip earns the difference).
    claim_submit(
        user=people["same_act"],
        behaviour_code="metro",
        quantity="2",
        idempotency_key=f"{prefix}-self",
        occurred_at=_day(1, 8, 5),
    )
    taps: list[dict] = []
    n = numbers
    # Capped at 1000 g a day: 381 + 381 + 238 (cut) + a refusal; the bus later that day is
    # decided after the refusal, one at a time.
    for hour in (8, 10, 12, 14):
        taps += _metro(n["capped"], _day(1, hour))
    taps += _bus(n["capped"], _day(1, 16))
    # An impossible ride between two usual ones: the anomaly goes to review, the others are
    # credited.
    taps += _metro(n["anomaly"], _day(1, 8))
    taps += _metro(n["anomaly"], _day(1, 10), minutes=1)
    taps += _metro(n["anomaly"], _day(1, 12))
    taps += _metro(n["no_consent"], _day(1, 9)) + _metro(n["no_consent"], _day(2, 9))
    taps += _metro(n["same_act"], _day(1, 8)) + _metro(n["same_act"], _day(2, 9))
    taps += _metro(n["district"], _day(1, 9)) + _bus(n["district"], _day(1, 11))
    for days in (1, 2, 3, 4, 5):
        taps += _metro(n["plain"], _day(days, 7)) + _bus(n["plain"], _day(days, 18))
    taps += _metro(n["unlinked"], _day(1, 9))
    taps.sort(key=lambda row: row["at"])
    return taps, people


ROLES = ("capped", "anomaly", "no_consent", "same_act", "district", "plain", "unlinked")


def _receipt(receipt: dict) -> dict:
    """A receipt without what differs between two runs: ids and times."""
    volatile = {"transfer_id", "expires_at", "trip", "other_claims", "other_claim"}
    return {
        **receipt,
        "steps": [
            {
                k: ({fk: fv for fk, fv in v.items() if fk != "trip"} if k == "facts" else v)
                for k, v in step.items()
                if k not in volatile
            }
            for step in receipt["steps"]
        ],
    }


def _snapshot(people: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for role, user in sorted(people.items()):
        claims = Claim.objects.filter(user=user, evidence_type="transit").order_by("occurred_at")
        trips = Trip.objects.filter(claim__user=user).order_by("started_at")
        out[role] = {
            "claims": [
                {
                    "status": c.status,
                    "quantity": c.quantity,
                    "credited_g": c.credited_g,
                    "factor": c.factor_id,
                    "partner": c.partner_id,
                    "behaviour": c.behaviour_id,
                    "occurred_at": c.occurred_at,
                    "evidence_keys": sorted(c.evidence),
                    "has_award": c.award_id is not None,
                    "decided": c.decided_at is not None,
                    "held_until": c.held_until,
                    "receipt": _receipt(c.receipt),
                }
                for c in claims
            ],
            "trips": [(t.status, t.anomaly, t.distance_m) for t in trips],
            "ledger": ledger_of(user),
        }
        # The links each credited claim keeps: its award, and its trip.
        for c in claims.filter(status=ClaimStatus.CREDITED).select_related("award"):
            assert_award_links(c)
            assert c.trip.claim_id == c.pk and c.evidence == {"trip": c.trip.pk}
    return out


def test_a_batch_credited_in_bulk_equals_the_per_trip_path(
    transit, operator, settings, monkeypatch, ledger_is_consistent
):
    settings.CARBON_SELF_REVIEW_SAMPLE_BP = 0
    Behaviour.objects.filter(code="metro").update(daily_cap_g=1000)
    district = DistrictFactory()
    emission_factor_publish(
        behaviour=Behaviour.objects.get(code="metro"),
        grams_per_unit=Decimal("100"),
        methodology="district methodology",
        source="district source",
        valid_from=timezone.now() - timedelta(days=30),
        district=district,
    )

    settings.CARBON_FEED_BULK_CREDIT = False
    taps, people = _world("1", district)
    issued_before = issued_g()
    one_by_one = pushed(operator, taps)
    issued_one_by_one = issued_g() - issued_before

    settings.CARBON_FEED_BULK_CREDIT = True
    taps, people_bulk = _world("2", district)
    issued_before = issued_g()
    bulk_credited = credited_in_bulk(monkeypatch, transit_trips)
    bulk = pushed(operator, taps)
    issued_bulk = issued_g() - issued_before

    for body in (one_by_one, bulk):
        for row in body["rows"]:
            del row["record_id"]
    assert bulk == one_by_one
    # The bulk path took the usual trips (3 capped, 2 around the anomaly, district's 2, the
    # plain 10, and same_act's day-2 ride, before its day-1 one); the rest one at a time.
    assert len(bulk_credited) == 18
    assert issued_bulk == issued_one_by_one > 0
    assert _snapshot(people_bulk) == _snapshot(people)
    # The cases happened as meant, in both runs.
    capped = Claim.objects.filter(user=people_bulk["capped"], behaviour__code="metro").order_by(
        "occurred_at"
    )
    assert [c.credited_g for c in capped] == [381, 381, 238, 0]
    assert capped.last().receipt["code"] == "cap_reached"
    assert (
        Claim.objects.get(user=people_bulk["district"], behaviour__code="metro").credited_g == 486
    )
    assert {c.status for c in Claim.objects.filter(user=people_bulk["no_consent"])} == {
        ClaimStatus.REJECTED
    }
    assert Trip.objects.filter(status=TripStatus.REVIEW, anomaly="impossible_speed").count() == 2
    assert Trip.objects.filter(status=TripStatus.AWAITING_LINK).count() == 2
    ledger_is_consistent()


def test_a_trip_left_to_the_per_trip_path_leaves_the_card_s_earlier_trips_in_bulk(
    transit, operator, settings, monkeypatch, ledger_is_consistent
):
    """A card's bus trip, later than two usual metro rides, is left to the per-trip path
    before any rule (the bus has a monthly cap: no month's sum is read for the batch). The
    rides before it are still credited in bulk, as the per-trip path credits them; the
    ride after it goes one at a time, after the bus."""
    settings.CARBON_SELF_REVIEW_SAMPLE_BP = 0
    bus = Behaviour.objects.get(code="bus")
    bus.monthly_cap_g = 100_000
    bus.save(update_fields=["monthly_cap_g"])  # through the ORM: the catalogue cache hears it
    bulk_credited = credited_in_bulk(monkeypatch, transit_trips)

    def run(prefix: str, *, in_bulk: bool) -> tuple[dict, dict, int]:
        settings.CARBON_FEED_BULK_CREDIT = in_bulk
        number, other = f"6227 {prefix}000 3333 3333", f"6227 {prefix}001 3333 3333"
        people = {"resident": UserFactory(), "other": UserFactory()}
        linked(people["resident"], number)
        linked(people["other"], other)
        taps = (
            _metro(number, _day(2, 9))
            + _metro(other, _day(2, 10))
            + _metro(number, _day(1, 9))
            + _bus(number, _day(1, 12))
            + _metro(number, _day(1, 15))
        )
        taps.sort(key=lambda row: row["at"])
        issued_before = issued_g()
        body = pushed(operator, taps)
        for row in body["rows"]:
            del row["record_id"]
        people_of_run[:] = people.values()
        return body, _snapshot(people), issued_g() - issued_before

    people_of_run: list = []
    one_by_one = run("8", in_bulk=False)
    assert bulk_credited == []
    bulk = run("9", in_bulk=True)

    assert bulk == one_by_one
    assert bulk[2] == 4 * 381 + 150 > 0
    resident = bulk[1]["resident"]["claims"]
    assert [(c["status"], c["credited_g"]) for c in resident] == [
        (ClaimStatus.CREDITED, 381),
        (ClaimStatus.CREDITED, 381),
        (ClaimStatus.CREDITED, 150),
        (ClaimStatus.CREDITED, 381),
    ]
    # In bulk: the resident's two rides before the bus, and the other card's ride.
    assert sorted((c.user_id, c.occurred_at) for c in bulk_credited) == sorted(
        (c.user_id, c.occurred_at)
        for c in Claim.objects.filter(
            user__in=people_of_run, behaviour__code="metro", occurred_at__lt=_day(1, 12)
        )
    )
    assert len(bulk_credited) == 3
    ledger_is_consistent()


def test_the_bulk_path_credits_a_batch_in_statements_that_do_not_grow_with_it(
    transit, operator, settings, ledger_is_consistent
):
    def credit(n_cards: int, prefix: str) -> int:
        numbers = [f"6227 {prefix}{i:03d} 1111 1111" for i in range(n_cards)]
        for number in numbers:
            linked(UserFactory(), number)
        taps = []
        for number in numbers:
            taps += _metro(number, _day(1, 9)) + _metro(number, _day(2, 9))
        with CaptureQueriesContext(connection) as queries:
            body = pushed(operator, taps)
        assert body["trips"]["claims"] == 2 * n_cards
        return len(queries)

    settings.CARBON_FEED_BULK_CREDIT = False
    one_by_one = credit(12, "7")
    settings.CARBON_FEED_BULK_CREDIT = True
    small, large = credit(3, "5"), credit(12, "6")
    print(f"statements for 24 trips: per trip {one_by_one}, bulk {large}; 6 trips bulk {small}")
    # Per batch, not per trip (the per-trip path takes ~21 a trip): the same count for 6
    # trips and for 24, give or take the splitting of bulk writes (SQLite's parameter limit).
    assert large <= small + 5, (small, large)
    assert large * 4 < one_by_one, (large, one_by_one)
    assert Claim.objects.filter(status=ClaimStatus.CREDITED).count() == 54
    ledger_is_consistent()


def test_a_claim_already_made_leaves_only_itself_to_the_per_claim_path(
    transit, operator, ledger_is_consistent
):
    """Two batches of the same cards at once: the later one finds some of its trips claimed
    by the other once it has the residents' locks. Those go to the per-claim path (which
    only finds them made); the resident's other trips are still credited in bulk."""
    number = "6227 4444 0000 0001"
    pushed(operator, _metro(number, _day(2, 9)) + _metro(number, _day(1, 9)))  # not linked
    user = UserFactory()
    card = link_confirm_by_partner(
        link=transit_card_link(user=user, card_number=number, consent=True).card
    )
    trips = list(
        trips_with_boarded_line(Trip.objects.filter(card_hash=card.card_hash))
        .select_related("partner")
        .order_by("started_at")
    )
    items = [
        FeedClaim(
            user=user,
            behaviour_code="metro",
            quantity=transit_trips.trip_quantity(trip=trip, unit="km"),
            occurred_at=trip.started_at,
            evidence={"trip": trip.pk},
            payload=trip,
            partner=trip.partner,
            idempotency_key=f"trip:{trip.pk}",
        )
        for trip in trips
    ]
    first = items[0]
    with translation.override(None), transaction.atomic():
        made, created = claim_submit_from_feed(
            user=user,
            behaviour_code=first.behaviour_code,
            quantity=first.quantity,
            idempotency_key=first.idempotency_key,
            occurred_at=first.occurred_at,
            evidence_type="transit",
            evidence=first.evidence,
            partner=first.partner,
        )
    assert created and made.status == ClaimStatus.CREDITED

    with translation.override(None), transaction.atomic():
        results = claims_credit_feed_many(items=items, evidence_type="transit", now=timezone.now())

    assert results[0] is None
    assert results[1] is not None and results[1].status == ClaimStatus.CREDITED
    assert results[1].credited_g == made.credited_g == 381
    assert Claim.objects.filter(user=user, status=ClaimStatus.CREDITED).count() == 2
    ledger_is_consistent()
