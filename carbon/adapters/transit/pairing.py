"""Pairing taps into trips: per card, in tap time order, only from taps not yet in a trip, so
pairing can run again at any time and never pairs a tap twice."""

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from carbon.adapters.transit.models import (
    Tap,
    TapDirection,
    TransitMode,
    Trip,
    TripStatus,
)
from carbon.adapters.transit.network import Network, network
from carbon.models import Behaviour, EmissionFactor
from carbon.services.rows_bulk import rows_insert, rows_set_by_id

log = logging.getLogger(__name__)


# The behaviour each mode's trips are credited as.
BEHAVIOUR_FOR_MODE = {TransitMode.METRO: "metro", TransitMode.BUS: "bus"}
# An entry tap with no exit for this long is an unfinished trip; an exit this long after
# its entry is not the same trip.
MAX_TRIP_DURATION = timedelta(hours=4)
# A tap still waiting for its other half may see it arrive in a later batch: a lonely tap is
# only decided (missing exit, exit without entry) once it has waited this long since it was
# received, and is older than the longest trip.
PAIRING_GRACE = timedelta(minutes=15)


class ModeUnits:
    """The unit each mode is priced in at a given time, from the city-wide factor in force."""

    def __init__(self) -> None:
        self._factors: dict[str, list[EmissionFactor]] = defaultdict(list)
        self._default: dict[str, str] = {}
        codes = list(BEHAVIOUR_FOR_MODE.values())
        for b in Behaviour.objects.filter(code__in=codes):
            self._default[b.code] = b.unit
        for f in (
            EmissionFactor.objects.filter(behaviour__code__in=codes, district__isnull=True)
            .select_related("behaviour")
            .order_by("-version")
        ):
            self._factors[f.behaviour.code].append(f)

    def unit(self, mode: str, when: datetime) -> str:
        code = BEHAVIOUR_FOR_MODE[mode]
        for f in self._factors.get(code, []):
            if f.valid_from <= when and (f.valid_to is None or f.valid_to > when):
                return f.unit
        return self._default.get(code, "km")


def _lock_cards(card_hashes: Sequence[str]) -> None:
    """One pairing at a time per card (PostgreSQL; SQLite serialises writers anyway)."""
    if connection.vendor != "postgresql" or not card_hashes:
        return
    keys = sorted({int(h[:15], 16) for h in card_hashes})
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k", [keys])


@dataclass
class _NewTrip:
    trip: Trip
    taps: list[Tap]


def _interval(trip: Trip) -> tuple[datetime, datetime]:
    return trip.started_at, trip.ended_at or trip.started_at


def _overlaps(a: Trip, b: Trip) -> bool:
    """Two trips of one card at once. A trip known by one tap is an instant: it overlaps a
    trip only strictly inside it (tapping out and straight back in is not an overlap)."""
    a0, a1 = _interval(a)
    b0, b1 = _interval(b)
    if a0 == a1 and b0 == b1:
        return False
    if a0 == a1:
        return b0 < a0 < b1
    if b0 == b1:
        return a0 < b0 < a1
    return a0 < b1 and b0 < a1


def _lonely_is_due(tap: Tap, now: datetime) -> bool:
    received = tap.received_at or now
    return now - tap.tapped_at >= MAX_TRIP_DURATION and now - received >= PAIRING_GRACE


def _pair_card(
    taps: list[Tap], existing: list[Trip], net: Network, units: ModeUnits, now: datetime
) -> tuple[list[_NewTrip], list[tuple[Trip, Tap]]]:
    """Decide one card's unassigned taps, in time order. Returns the new trips, and exits to
    attach to trips that already exist (a bus exit after a boarding priced per trip).

    Metro: an entry and the next exit within MAX_TRIP_DURATION are a trip, priced along the
    network. Bus priced by distance: the same, on one line. Bus priced per trip: the
    boarding is the trip. Taps left over wait for their other half (it may come in a later
    batch) until _lonely_is_due, then become review trips.
    """
    new: list[_NewTrip] = []
    attach: list[tuple[Trip, Tap]] = []
    open_in: dict[tuple, Tap] = {}
    lonely: list[Tap] = []
    boardings = [t for t in existing if t.mode == TransitMode.BUS]

    for tap in taps:
        per_trip = tap.mode == TransitMode.BUS and units.unit(tap.mode, tap.tapped_at) != "km"
        if per_trip and tap.direction == TapDirection.IN:
            trip = _trip_for(entry=tap, exit_=None, net=net, boarding=True)
            new.append(_NewTrip(trip, [tap]))
            boardings.append(trip)
            continue
        if per_trip:
            boarding = next(
                (
                    t
                    for t in reversed(boardings)
                    if t.exit_station_id is None
                    and t.boarded_line_id == tap.line_id
                    and timedelta(0) <= tap.tapped_at - t.started_at <= MAX_TRIP_DURATION
                ),
                None,
            )
            if boarding is None:
                lonely.append(tap)
                continue
            boarding.exit_station_id, boarding.ended_at = tap.station_id, tap.tapped_at
            boarding.distance_m = _round_m(
                net.along_line(tap.line_id, boarding.entry_station_id, tap.station_id)
            )
            if boarding.pk is None:
                next(n for n in new if n.trip is boarding).taps.append(tap)
            else:
                attach.append((boarding, tap))
            continue
        key: tuple = (
            (TransitMode.METRO,)
            if tap.mode == TransitMode.METRO
            else (TransitMode.BUS, tap.line_id)
        )
        if tap.direction == TapDirection.IN:
            if key in open_in:
                lonely.append(open_in[key])
            open_in[key] = tap
            continue
        entry = open_in.pop(key, None)
        if entry is not None and tap.tapped_at - entry.tapped_at <= MAX_TRIP_DURATION:
            new.append(_NewTrip(_trip_for(entry=entry, exit_=tap, net=net), [entry, tap]))
        else:
            if entry is not None:
                lonely.append(entry)
            lonely.append(tap)
    lonely += open_in.values()

    for tap in lonely:
        if _lonely_is_due(tap, now):
            if tap.direction == TapDirection.IN:
                trip = _trip_for(entry=tap, exit_=None, net=net)
            else:
                trip = _trip_for(entry=None, exit_=tap, net=net)
            new.append(_NewTrip(trip, [tap]))

    # Overlaps with the card's other trips, oldest first: the later one goes to review.
    seen = list(existing)
    for item in sorted(new, key=lambda n: (n.trip.started_at, n.taps[0].pk)):
        trip = item.trip
        if not trip.anomaly:
            other = next((o for o in seen if _overlaps(trip, o)), None)
            if other is not None:
                trip.anomaly = "overlapping_trip"
                trip.anomaly_detail = (
                    f"Overlaps the card's {other.mode} trip that started "
                    f"{timezone.localtime(other.started_at):%Y-%m-%d %H:%M:%S}"
                    + (f" (trip {other.pk})." if other.pk else ".")
                )
        seen.append(trip)
    return new, attach


def _round_m(metres: float | None) -> int | None:
    return None if metres is None else int(round(metres))


def _trip_for(
    *, entry: Tap | None, exit_: Tap | None, net: Network, boarding: bool = False
) -> Trip:
    """A trip from its taps, with the anomaly that sends it to review, if any."""
    first = entry or exit_
    assert first is not None
    trip = Trip(
        card_hash=first.card_hash,
        partner_id=first.partner_id,
        mode=first.mode,
        entry_station_id=entry.station_id if entry else None,
        exit_station_id=exit_.station_id if exit_ else None,
        started_at=first.tapped_at,
        ended_at=exit_.tapped_at if (exit_ and entry) else None,
        status=TripStatus.AWAITING_LINK,
    )
    trip.boarded_line_id = first.line_id
    if entry is None:
        trip.anomaly, trip.anomaly_detail = (
            "exit_without_entry",
            "An exit tap with no entry tap before it.",
        )
        return trip
    if exit_ is None:
        if not boarding:
            trip.anomaly = "missing_exit"
            trip.anomaly_detail = (
                f"No exit tap within {MAX_TRIP_DURATION.total_seconds() / 3600:.0f} h of the entry."
            )
        return trip
    if entry.station_id == exit_.station_id:
        # No movement, nothing to credit: kept for the record and for a look by a reviewer.
        trip.distance_m = 0
        trip.status = TripStatus.REVIEW
        trip.anomaly, trip.anomaly_detail = "same_station", "Entered and left at the same station."
        return trip
    if entry.mode == TransitMode.METRO:
        found = net.route(entry.station_id, exit_.station_id)
        metres = found[0] if found else None
    else:
        metres = net.along_line(entry.line_id, entry.station_id, exit_.station_id)
    if metres is None:
        trip.anomaly, trip.anomaly_detail = (
            "no_route",
            "No route joins the entry and exit stations.",
        )
        return trip
    trip.distance_m = int(round(metres))
    seconds = (exit_.tapped_at - entry.tapped_at).total_seconds()
    limit = settings.TRANSIT_MAX_SPEED_KMH
    if seconds <= 0 or metres / seconds * 3.6 > limit:
        speed = "in no time" if seconds <= 0 else f"at {metres / seconds * 3.6:.0f} km/h"
        trip.anomaly = "impossible_speed"
        trip.anomaly_detail = (
            f"{metres / 1000:.1f} km along the network {speed} (limit {limit} km/h)."
        )
    return trip


def trips_with_boarded_line(trips: QuerySet[Trip]) -> QuerySet[Trip]:
    """Trips annotated with the line their first tap was on (bus trips: the route ridden):
    pairing reads it for a card's recent trips, crediting for the trips it prices."""
    first_tap = Tap.objects.filter(trip=OuterRef("pk")).order_by("tapped_at", "id")
    return trips.annotate(boarded_line_id=Subquery(first_tap.values("line_id")[:1]))


def transit_pair(
    *,
    card_hashes: Iterable[str],
    now: datetime | None = None,
    net: Network | None = None,
    units: ModeUnits | None = None,
) -> int:
    """Pair the unassigned taps of these cards into trips. Safe to run again: a tap already
    in a trip is never looked at, and a tap waiting for its other half stays unassigned.
    `net` and `units`: the batch's own, when the caller has them (each costs reads)."""
    now = now or timezone.now()
    hashes = sorted(set(card_hashes))
    if not hashes:
        return 0
    net = net or network()
    units = units or ModeUnits()
    created = 0
    for start in range(0, len(hashes), 500):
        chunk = hashes[start : start + 500]
        with transaction.atomic():
            _lock_cards(chunk)
            taps = list(
                Tap.objects.filter(card_hash__in=chunk, trip__isnull=True).order_by(
                    "card_hash", "tapped_at", "id"
                )
            )
            if not taps:
                continue
            by_card: dict[str, list[Tap]] = defaultdict(list)
            for tap in taps:
                by_card[tap.card_hash].append(tap)
            since = min(t.tapped_at for t in taps) - MAX_TRIP_DURATION
            until = max(t.tapped_at for t in taps) + MAX_TRIP_DURATION
            existing: dict[str, list[Trip]] = defaultdict(list)
            nearby = Trip.objects.filter(
                card_hash__in=list(by_card),
                started_at__gte=since - MAX_TRIP_DURATION,
                started_at__lte=until,
            )
            for trip in trips_with_boarded_line(nearby).order_by("started_at", "id"):
                existing[trip.card_hash].append(trip)
            new: list[_NewTrip] = []
            attach: list[tuple[Trip, Tap]] = []
            for card, card_taps in by_card.items():
                n, a = _pair_card(card_taps, existing.get(card, []), net, units, now)
                new += n
                attach += a
            if new:
                rows_insert(objs=[n.trip for n in new])
                for n in new:
                    for tap in n.taps:
                        tap.trip_id = n.trip.pk
            for trip, tap in attach:
                tap.trip_id = trip.pk
                Trip.objects.filter(pk=trip.pk).update(
                    exit_station_id=trip.exit_station_id,
                    ended_at=trip.ended_at,
                    distance_m=trip.distance_m,
                )
            assigned = [tap for n in new for tap in n.taps] + [tap for _, tap in attach]
            for start in range(0, len(assigned), 1000):
                rows_set_by_id(
                    model=Tap,
                    field="trip",
                    values={t.pk: t.trip_id for t in assigned[start : start + 1000]},
                )
            created += len(new)
    return created
