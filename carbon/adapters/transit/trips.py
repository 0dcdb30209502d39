"""Trips to claims: each trip is its own claim (credited now, or when the card is linked), the
periodic settling and expiry, and the trip's facts for the receipt."""

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation

from carbon.adapters.transit.models import (
    Tap,
    TransitCard,
    TransitMode,
    Trip,
    TripStatus,
)
from carbon.adapters.transit.network import Network, haversine_m, network
from carbon.adapters.transit.pairing import (
    BEHAVIOUR_FOR_MODE,
    MAX_TRIP_DURATION,
    PAIRING_GRACE,
    ModeUnits,
    transit_pair,
    trips_with_boarded_line,
)
from carbon.errors import DomainError
from carbon.models import Behaviour, Claim, User
from carbon.services.claims import claim_submit_from_feed
from carbon.services.claims_bulk import FeedClaim, claims_credit_feed_many
from carbon.services.rows_bulk import rows_set_by_id

log = logging.getLogger(__name__)


@dataclass
class TripOutcome:
    created: int = 0
    claims: list[Claim] = field(default_factory=list)
    review: int = 0
    awaiting_link: int = 0
    expired: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "claims": len(self.claims),
            "review": self.review,
            "awaiting_link": self.awaiting_link,
            "expired": self.expired,
        }


def trip_quantity(*, trip: Trip, unit: str, net: Network | None = None) -> Decimal | None:
    """What a trip is worth in the behaviour's unit. A trip with one end unknown is counted
    at its lower bound (the shortest ride from the known station); None when nothing can be
    credited (no movement, or not even a lower bound)."""
    if unit != "km":
        return Decimal("1")
    metres: float | None
    if trip.distance_m is not None:
        metres = float(trip.distance_m)
    else:
        net = net or network(fresh=False)
        if trip.entry_station_id and trip.exit_station_id:
            a = net.stations_by_id.get(trip.entry_station_id)
            b = net.stations_by_id.get(trip.exit_station_id)
            metres = haversine_m(a.location, b.location) if a and b else None
        else:
            known = trip.entry_station_id or trip.exit_station_id
            line_id = (
                getattr(trip, "boarded_line_id", None) if trip.mode == TransitMode.BUS else None
            )
            metres = net.shortest_hop_m(known, line_id) if known else None
    if not metres:
        return None
    km = (Decimal(int(round(metres))) / 1000).quantize(Decimal("0.001"), rounding=ROUND_FLOOR)
    return km if km > 0 else None


# Fewer trips than this are credited one at a time: the bulk path's fixed statements only
# pay off from two trips on.
BULK_MIN_TRIPS = 2


def _credit_in_bulk(
    *,
    trips: list[Trip],
    owners: dict[str, User],
    quantities: dict[int, Decimal | None],
    now: datetime,
) -> dict[int, Claim]:
    """Credit the common case of these trips set-based (claims_bulk): the rows and receipts
    the per-trip path writes. Returns trip id -> claim for the trips credited here; every
    other trip (an anomaly, nothing to price, a refusal, a cap, ...) is left to the per-trip
    path. A trip with an anomaly is never credited (a reviewer decides it), so leaving it
    changes nothing for the card's later trips."""
    if not settings.CARBON_FEED_BULK_CREDIT:
        return {}
    usual = [t for t in trips if not t.anomaly and quantities[t.pk] is not None]
    if len(usual) < BULK_MIN_TRIPS:
        return {}
    items = [
        FeedClaim(
            user=owners[trip.card_hash],
            behaviour_code=BEHAVIOUR_FOR_MODE[trip.mode],
            quantity=quantities[trip.pk],
            occurred_at=trip.started_at,
            evidence={"trip": trip.pk},
            payload=trip,
            partner=trip.partner,
            idempotency_key=f"trip:{trip.pk}",
        )
        for trip in usual
    ]
    try:
        # Receipts are stored records, in the source language (as on the per-trip path).
        with translation.override(None), transaction.atomic():
            claims = claims_credit_feed_many(
                items=items, evidence_type="transit", now=timezone.now()
            )
            done = {
                trip.pk: claim
                for trip, claim in zip(usual, claims, strict=True)
                if claim is not None
            }
            rows_set_by_id(
                model=Trip,
                field="claim",
                values={trip_id: claim.pk for trip_id, claim in done.items()},
                fixed={"status": TripStatus.CLAIMED},
            )
    except IntegrityError:
        # A concurrent run claimed one of these trips first: nothing was written here, and
        # the per-trip path finds each claim already made.
        log.info("bulk crediting of %d trips gave way to the per-trip path", len(usual))
        return {}
    return done


def transit_trips_credit(
    *, card_hashes: Iterable[str], now: datetime | None = None, units: ModeUnits | None = None
) -> TripOutcome:
    """Turn the unclaimed trips of these cards into claims when the card is linked.

    Each trip is its own claim (idempotency key trip:<id>), so running this again never
    credits twice. A trip already outside the claim window is marked expired. `units`: the
    batch's own, when the caller has them.
    """

    now = now or timezone.now()
    outcome = TripOutcome()
    hashes = sorted(set(card_hashes))
    if not hashes:
        return outcome
    owners = {
        c.card_hash: c.user
        # Confirmed links only: a pending link (no proof yet) claims nothing. And residents'
        # only: a card whose holder became staff waits, as an unlinked one, for a resident.
        for c in TransitCard.objects.linked()
        .filter(card_hash__in=hashes, user__role=User.Role.RESIDENT)
        .select_related("user")
    }
    pending = Trip.objects.filter(
        card_hash__in=hashes, status=TripStatus.AWAITING_LINK, claim__isnull=True
    )
    if not owners:
        outcome.awaiting_link = pending.count()
        return outcome
    outcome.awaiting_link = pending.exclude(card_hash__in=list(owners)).count()
    units = units or ModeUnits()
    net = network(fresh=False)
    trips = list(
        trips_with_boarded_line(pending.filter(card_hash__in=list(owners)))
        .select_related("partner")
        .order_by("started_at", "id")
    )
    quantities = {
        trip.pk: trip_quantity(trip=trip, unit=units.unit(trip.mode, trip.started_at), net=net)
        for trip in trips
    }
    in_bulk = _credit_in_bulk(trips=trips, owners=owners, quantities=quantities, now=now)
    claimed_meanwhile: set[int] = set()
    rest = [t.pk for t in trips if t.pk not in in_bulk and quantities[t.pk] is not None]
    if rest and settings.CARBON_FEED_BULK_CREDIT and len(trips) >= BULK_MIN_TRIPS:
        # A concurrent batch of the same cards may have claimed some of these trips (all of
        # them, even) while this one waited for the residents' locks: the per-trip path
        # would only find each claim made and write nothing. One read instead of a
        # claim_submit per trip.
        claimed_meanwhile = set(
            Trip.objects.filter(pk__in=rest, claim__isnull=False).values_list("pk", flat=True)
        )
    for trip in trips:
        if trip.pk in in_bulk:
            outcome.claims.append(in_bulk[trip.pk])
            continue
        if trip.pk in claimed_meanwhile:
            continue  # claimed by a concurrent run
        # Anything unusual, one trip at a time.
        user = owners[trip.card_hash]
        quantity = quantities[trip.pk]
        if quantity is None:
            Trip.objects.filter(pk=trip.pk, claim__isnull=True).update(status=TripStatus.REVIEW)
            outcome.review += 1
            continue
        try:
            # A refusal here is recorded on the trip and logged, not answered to anyone: in
            # the source language, like the receipts.
            with translation.override(None), transaction.atomic():
                claim, created = claim_submit_from_feed(
                    user=user,
                    behaviour_code=BEHAVIOUR_FOR_MODE[trip.mode],
                    quantity=quantity,
                    idempotency_key=f"trip:{trip.pk}",
                    occurred_at=trip.started_at,
                    evidence_type="transit",
                    evidence={"trip": trip.pk},
                    partner=trip.partner,
                )
                status = TripStatus.REVIEW if trip.anomaly else TripStatus.CLAIMED
                Trip.objects.filter(pk=trip.pk).update(claim=claim, status=status)
        except DomainError as exc:
            if exc.code == "outside_claim_window":
                Trip.objects.filter(pk=trip.pk, claim__isnull=True).update(
                    status=TripStatus.EXPIRED
                )
                outcome.expired += 1
            else:
                # A claim refused before it exists (no behaviour, bad configuration): the
                # trip waits in review; a concurrent run that claimed it first is left alone.
                if Trip.objects.filter(pk=trip.pk, claim__isnull=True).update(
                    status=TripStatus.REVIEW,
                    anomaly=trip.anomaly or exc.code,
                    anomaly_detail=(trip.anomaly_detail or exc.message)[:300],
                ):
                    log.warning("trip %s not claimed: %s (%s)", trip.pk, exc.message, exc.code)
                    outcome.review += 1
            continue
        if not created:
            continue  # claimed by a concurrent run
        outcome.claims.append(claim)
        if trip.anomaly:
            outcome.review += 1
    return outcome


def transit_cards_settle(
    *, card_hashes: Iterable[str], now: datetime | None = None, net: Network | None = None
) -> TripOutcome:
    """Pair the cards' taps, then claim their trips: what follows every batch of taps. `net`:
    the batch's network, when the caller has just checked it."""
    hashes = sorted(set(card_hashes))
    if not hashes:
        return TripOutcome()
    # The factors in force read once for both steps (the units each mode is priced in).
    units = ModeUnits()
    created = transit_pair(card_hashes=hashes, now=now, net=net, units=units)
    outcome = transit_trips_credit(card_hashes=hashes, now=now, units=units)
    outcome.created = created
    return outcome


def transit_taps_settle(*, now: datetime | None = None) -> TripOutcome:
    """The periodic job: decide taps that waited long enough for their other half (missing
    exit, exit without entry) and claim the resulting trips."""
    now = now or timezone.now()
    cards = (
        Tap.objects.filter(
            trip__isnull=True,
            tapped_at__lte=now - MAX_TRIP_DURATION,
            received_at__lte=now - PAIRING_GRACE,
        )
        .values_list("card_hash", flat=True)
        .distinct()
    )
    return transit_cards_settle(card_hashes=list(cards), now=now)


def transit_trips_expire(*, now: datetime | None = None) -> int:
    """The periodic job: trips of cards nobody linked within the claim window expire."""
    now = now or timezone.now()
    expired = 0
    for mode, code in BEHAVIOUR_FOR_MODE.items():
        behaviour = Behaviour.objects.filter(code=code).first()
        if behaviour is None:
            continue
        expired += Trip.objects.filter(
            mode=mode,
            status=TripStatus.AWAITING_LINK,
            claim__isnull=True,
            started_at__lt=now - timedelta(days=behaviour.claim_window_days),
        ).update(status=TripStatus.EXPIRED)
    return expired


# --- what the receipt shows ---------------------------------------------------------------


def trip_facts(*, trip: Trip) -> dict[str, Any]:
    """The facts of a trip worth keeping on the claim's receipt."""
    net = network(fresh=False)
    entry = net.stations_by_id.get(trip.entry_station_id) if trip.entry_station_id else None
    exit_ = net.stations_by_id.get(trip.exit_station_id) if trip.exit_station_id else None
    facts: dict[str, Any] = {
        "trip": trip.pk,
        "mode": trip.mode,
        "entry_station": entry.code if entry else None,
        "exit_station": exit_.code if exit_ else None,
        "started_at": trip.started_at.isoformat(),
        "ended_at": trip.ended_at.isoformat() if trip.ended_at else None,
        "distance_m": trip.distance_m,
    }
    if trip.ended_at:
        facts["duration_s"] = int((trip.ended_at - trip.started_at).total_seconds())
    if entry and exit_:
        facts["straight_line_m"] = int(round(haversine_m(entry.location, exit_.location)))
        if trip.mode == TransitMode.METRO:
            found = net.route(entry.id, exit_.id)
            if found:
                facts["distance_basis"] = "network"
                facts["route"] = [net.stations_by_id[s].code for s in found[1]]
        else:
            facts["distance_basis"] = "line"
    if trip.anomaly:
        facts["anomaly"] = trip.anomaly
    return facts
