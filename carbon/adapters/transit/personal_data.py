"""The transit slice's personal data: a resident's linked cards, and the trips and taps of
those cards or of their claims, which are a location history."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from carbon.adapters.transit.feed import MAX_TAP_AGE
from carbon.adapters.transit.models import Tap, TransitCard, Trip, TripStatus
from carbon.models import User
from carbon.personal_data import PersonalData

# --- trips and taps -------------------------------------------------------------------------


def _of_cards(user: User, when: str) -> Q:
    """Rows of the resident's cards up to when they unlinked each card (a card unlinked and
    linked again by someone else is that person's from then on). `when` names the row's time."""
    found = Q(pk__in=[])
    for card_hash, unlinked_at in (
        TransitCard.objects.filter(user=user)
        .exclude(card_hash="")  # already forgotten
        .values_list("card_hash", "unlinked_at")
    ):
        card = Q(card_hash=card_hash)
        if unlinked_at is not None:
            card &= Q(**{f"{when}__lt": unlinked_at})
        found |= card
    return found


def _trips_of(user: User) -> QuerySet[Trip]:
    """Trips credited to the resident, and their cards' trips credited to nobody."""
    return Trip.objects.filter(
        Q(claim__user=user) | (Q(claim__isnull=True) & _of_cards(user, "started_at"))
    )


def _unpaired_taps_of(user: User) -> QuerySet[Tap]:
    """Their cards' taps still waiting for the other half of their trip."""
    return Tap.objects.filter(Q(trip__isnull=True) & _of_cards(user, "tapped_at"))


def _tap_export(tap: Tap) -> dict[str, Any]:
    return {
        "record_id": tap.record_id,
        "station": tap.station.code,
        "line": tap.line.code if tap.line_id else None,
        "mode": tap.mode,
        "direction": tap.direction,
        "at": tap.tapped_at.isoformat(),
    }


def transit_trips_export(*, user: User) -> dict[str, Any]:
    taps = Tap.objects.select_related("station", "line").order_by("tapped_at", "id")
    trips = (
        _trips_of(user)
        .select_related("entry_station", "exit_station")
        .prefetch_related(Prefetch("taps", queryset=taps))
        .order_by("started_at", "id")
    )
    return {
        "trips": [
            {
                "id": t.pk,
                "mode": t.mode,
                "entry_station": t.entry_station.code if t.entry_station_id else None,
                "exit_station": t.exit_station.code if t.exit_station_id else None,
                "started_at": t.started_at.isoformat(),
                "ended_at": t.ended_at.isoformat() if t.ended_at else None,
                "distance_m": t.distance_m,
                "status": t.status,
                "anomaly": t.anomaly,
                "claim": str(t.claim_id) if t.claim_id else None,
                "taps": [_tap_export(tap) for tap in t.taps.all()],
            }
            for t in trips
        ],
        "unpaired_taps": [
            _tap_export(tap)
            for tap in _unpaired_taps_of(user)
            .select_related("station", "line")
            .order_by("tapped_at", "id")
        ],
    }


def transit_trips_erase(*, user: User) -> None:
    """The resident's trips and taps stop telling where they went.

    A tap the operator could still resend (younger than the feed's MAX_TAP_AGE) stays as a
    tombstone: its (partner, record_id) and payload hash make the resent tap a duplicate
    instead of new data that pairing would turn into trips (credited again should the card
    be linked anew). It loses its card hash and keeps only the bare operator record (station
    and time, tied to no card, trip route, claim or person). Older taps are deleted: the feed
    refuses them before looking them up. Trips are emptied of stations, route, card and
    claim and marked expired, so no job pairs, credits or expires them again; a trip left
    without taps is deleted. A tombstone tap always belongs to such a trip, because the
    periodic pairing job picks up every tap without one.
    """
    now = timezone.now()
    trip_ids = list(_trips_of(user).values_list("pk", flat=True))
    unpaired = list(_unpaired_taps_of(user).filter(tapped_at__gte=now - MAX_TAP_AGE))
    for tap in unpaired:
        tap.trip = Trip.objects.create(
            card_hash="",
            partner_id=tap.partner_id,
            mode=tap.mode,
            started_at=tap.tapped_at,
            status=TripStatus.EXPIRED,
        )
        trip_ids.append(tap.trip.pk)
    Tap.objects.bulk_update(unpaired, ["trip"], batch_size=500)
    _unpaired_taps_of(user).delete()  # the rest are past the feed's horizon
    taps = Tap.objects.filter(trip_id__in=trip_ids)
    taps.filter(tapped_at__lt=now - MAX_TAP_AGE).delete()
    taps.update(card_hash="")
    Trip.objects.filter(pk__in=trip_ids, taps__isnull=True).delete()
    Trip.objects.filter(pk__in=trip_ids).update(
        card_hash="",
        entry_station=None,
        exit_station=None,
        ended_at=None,
        distance_m=None,
        anomaly="",
        anomaly_detail="",
        claim=None,
        status=TripStatus.EXPIRED,
    )


# --- cards ----------------------------------------------------------------------------------


def transit_cards_export(*, user: User) -> list[dict[str, Any]]:
    return [
        {
            "label": c.label,
            "last_digits": c.last_digits,
            "linked_at": c.linked_at.isoformat(),
            "unlinked_at": c.unlinked_at.isoformat() if c.unlinked_at else None,
        }
        for c in user.transit_cards.order_by("linked_at")
    ]


def transit_cards_erase(*, user: User) -> None:
    """Cards are unlinked and forget their number's hash, label and last digits: the
    operator's next taps of the card match nobody."""
    TransitCard.objects.filter(user=user, unlinked_at__isnull=True).update(
        unlinked_at=timezone.now()
    )
    TransitCard.objects.filter(user=user).update(label="", last_digits="", card_hash="")


# Trips first: their eraser finds the resident's trips and taps through the cards' hashes.
PROVIDERS = (
    PersonalData("transit_trips", (Trip, Tap), transit_trips_export, transit_trips_erase),
    PersonalData("transit_cards", (TransitCard,), transit_cards_export, transit_cards_erase),
)
