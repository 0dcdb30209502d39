"""Transit cards: linking a card, the operator's tap feed, pairing taps into trips priced
along the network, and turning trips into claims (credited now, or when the card is linked).

The network (stations, lines, stops) is data; its graph is built once per process and
rebuilt when the data changes. Trips are decided per card, in tap time order, and only from
taps not yet in a trip, so pairing can run again at any time and never pairs a tap twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import networkx as nx
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, OuterRef, Subquery, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from carbon.errors import DomainError, RowError
from carbon.models import (
    Behaviour,
    Claim,
    ConsentScope,
    EmissionFactor,
    LineStop,
    Partner,
    Station,
    Tap,
    TapDirection,
    TransitCard,
    TransitLine,
    TransitMode,
    Trip,
    TripStatus,
    User,
)
from carbon.services.partners import hmac_hex
from carbon.services.rules import CLOCK_SKEW

log = logging.getLogger(__name__)

# The behaviour each mode's trips are credited as.
BEHAVIOUR_FOR_MODE = {TransitMode.METRO: "metro", TransitMode.BUS: "bus"}
# An entry tap with no exit for this long is an unfinished trip; an exit this long after
# its entry is not the same trip.
MAX_TRIP_DURATION = timedelta(hours=4)
# Older taps can never be credited (claim windows are days, not months): refuse them.
MAX_TAP_AGE = timedelta(days=31)
# A tap still waiting for its other half may see it arrive in a later batch: a lonely tap is
# only decided (missing exit, exit without entry) once it has waited this long since it was
# received, and is older than the longest trip.
PAIRING_GRACE = timedelta(minutes=15)
MAX_BATCH_TAPS = 5000
# ASCII digits only: a full-width "６２２７…" would hash differently from what the operator sends.
CARD_DIGITS = re.compile(r"^[0-9]{8,20}$")
CARD_HASH = re.compile(r"^[0-9a-f]{64}$")
NETWORK_VERSION_KEY = "transit:network-version"


# --- errors -------------------------------------------------------------------------------


class InvalidCardNumber(DomainError):
    code = "invalid_card_number"
    status = 400
    default_message = "A card number is 8 to 20 digits (spaces and dashes are ignored)."


class CardLinkedElsewhere(DomainError):
    code = "card_linked_to_another_resident"
    status = 409
    default_message = "This card is already linked to another account."


class TransitConsentRequired(DomainError):
    code = "consent_required"
    status = 409
    default_message = (
        'Linking a card needs your consent to use its taps: send "consent": true, or grant '
        "the transit_card data source first."
    )


class CardNotFound(DomainError):
    code = "not_found"
    status = 404
    default_message = "No such card among your linked cards."


class NotTransitOperator(DomainError):
    code = "not_transit_operator"
    status = 403
    default_message = "Only transit operators may push taps."


class BatchTooLarge(DomainError):
    code = "batch_too_large"
    status = 413
    default_message = f"A batch holds at most {MAX_BATCH_TAPS} taps."


# --- card numbers -------------------------------------------------------------------------


def card_number_normalise(card_number: str) -> str:
    number = re.sub(r"[\s-]", "", str(card_number or ""))
    if not CARD_DIGITS.match(number):
        raise InvalidCardNumber()
    return number


def card_hash(card_number: str) -> str:
    """The keyed hash that stands for a card everywhere: hex HMAC-SHA256 with
    TRANSIT_CARD_HASH_KEY over the digits (spaces and dashes removed). The operator computes
    the same value for its taps."""
    number = card_number_normalise(card_number)
    return hmac_hex(key=settings.TRANSIT_CARD_HASH_KEY, message=number.encode())


# --- the network --------------------------------------------------------------------------


def haversine_m(a: Any, b: Any) -> float:
    """Great-circle metres between two WGS-84 points (x = longitude, y = latitude)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (a.x, a.y, b.x, b.y))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class StationInfo:
    id: int
    code: str
    name: str
    mode: str
    location: Any


@dataclass(frozen=True)
class LineInfo:
    id: int
    code: str
    mode: str
    operator_id: int | None
    # station id -> metres from the line's first stop
    chainage: dict[int, float]


@dataclass
class Network:
    """The network as one process sees it: lookups for ingestion and the metro graph."""

    version: tuple
    stations: dict[str, StationInfo]
    stations_by_id: dict[int, StationInfo]
    lines: dict[str, LineInfo]
    lines_by_id: dict[int, LineInfo]
    graph: nx.Graph
    _paths: dict[tuple[int, int], tuple[float, list[int]] | None] = field(default_factory=dict)

    def route(self, entry_id: int, exit_id: int) -> tuple[float, list[int]] | None:
        """Shortest metres along the metro network and the stations on the way, or None."""
        key = (entry_id, exit_id)
        if key not in self._paths:
            try:
                length, path = nx.single_source_dijkstra(
                    self.graph, entry_id, exit_id, weight="weight"
                )
                self._paths[key] = (float(length), list(path))
            except (nx.NetworkXNoPath, nx.NodeNotFound):
                self._paths[key] = None
        return self._paths[key]

    def along_line(self, line_id: int, a: int, b: int) -> float | None:
        line = self.lines_by_id.get(line_id)
        if line is None or a not in line.chainage or b not in line.chainage:
            return None
        return abs(line.chainage[b] - line.chainage[a])

    def shortest_hop_m(self, station_id: int, line_id: int | None = None) -> float | None:
        """The shortest ride from a station: a lower bound when only one end is known."""
        if line_id is not None:
            line = self.lines_by_id.get(line_id)
            if line is None or station_id not in line.chainage:
                return None
            here = line.chainage[station_id]
            hops = [abs(here - c) for s, c in line.chainage.items() if s != station_id]
            return min(hops) if hops else None
        if station_id not in self.graph:
            return None
        weights = [d["weight"] for _, _, d in self.graph.edges(station_id, data=True)]
        return min(weights) if weights else None


_network: Network | None = None


def network_changed() -> None:
    """Tell every process that the network data changed (the loader and the admin call it)."""
    try:
        cache.incr(NETWORK_VERSION_KEY)
    except ValueError:
        cache.set(NETWORK_VERSION_KEY, 1, None)


def _network_version() -> tuple:
    # Row counts, highest ids and the sum of track lengths catch loads and most edits; the
    # cache counter catches the rest (coordinates edited in the admin).
    stops = LineStop.objects.aggregate(n=Count("id"), m=Max("id"), s=Sum("metres_from_previous"))
    stations = Station.objects.aggregate(n=Count("id"), m=Max("id"))
    lines = TransitLine.objects.aggregate(n=Count("id"), m=Max("id"))
    return (
        connection.settings_dict["NAME"],
        tuple(stops.values()),
        tuple(stations.values()),
        tuple(lines.values()),
        cache.get(NETWORK_VERSION_KEY, 0),
    )


def network(*, fresh: bool = True) -> Network:
    """The cached network; with fresh=True (once per batch) it is checked against the data."""
    global _network
    if _network is not None and not fresh:
        return _network
    version = _network_version()
    if _network is not None and _network.version == version:
        return _network
    stations = {
        s.id: StationInfo(s.id, s.code, s.name, s.mode, s.location) for s in Station.objects.all()
    }
    stops_by_line: dict[int, list[LineStop]] = defaultdict(list)
    for stop in LineStop.objects.order_by("line_id", "sequence"):
        stops_by_line[stop.line_id].append(stop)
    graph = nx.Graph()
    lines: dict[int, LineInfo] = {}
    for line in TransitLine.objects.all():
        chainage: dict[int, float] = {}
        run = 0.0
        previous: LineStop | None = None
        for stop in stops_by_line.get(line.id, []):
            if previous is not None:
                metres = (
                    float(stop.metres_from_previous)
                    if stop.metres_from_previous is not None
                    else haversine_m(
                        stations[previous.station_id].location, stations[stop.station_id].location
                    )
                )
                run += metres
                if line.mode == TransitMode.METRO:
                    a, b = previous.station_id, stop.station_id
                    # Two lines sharing a stretch of track: the shorter figure wins.
                    if not graph.has_edge(a, b) or graph[a][b]["weight"] > metres:
                        graph.add_edge(a, b, weight=metres)
            chainage[stop.station_id] = run
            previous = stop
        lines[line.id] = LineInfo(line.id, line.code, line.mode, line.operator_id, chainage)
    _network = Network(
        version=version,
        stations={s.code: s for s in stations.values()},
        stations_by_id=stations,
        lines={line.code: line for line in lines.values()},
        lines_by_id=lines,
        graph=graph,
    )
    return _network


def forget_network() -> None:
    global _network
    _network = None


# --- linking cards ------------------------------------------------------------------------


@dataclass(frozen=True)
class CardLinked:
    card: TransitCard
    created: bool
    claims: list[Claim]
    expired_trips: int

    @property
    def credited_g(self) -> int:
        return sum(c.credited_g for c in self.claims)


def transit_card_link(
    *,
    user: User,
    card_number: str,
    label: str = "",
    consent: bool = False,
    now: datetime | None = None,
) -> CardLinked:
    """Link a card to a resident (by its keyed hash and last four digits only), and credit
    the card's earlier trips that are still inside the claim window.

    Linking the same card again is a no-op that returns the existing link. A card actively
    linked to someone else is refused (409).
    """
    from carbon.services.people import consent_grant, consent_is_current

    number = card_number_normalise(card_number)
    digest = card_hash(number)
    label = (label or "").strip()[:80]
    with transaction.atomic():
        if consent:
            consent_grant(user=user, scope=ConsentScope.TRANSIT_CARD)
        elif not consent_is_current(user=user, scope=ConsentScope.TRANSIT_CARD):
            raise TransitConsentRequired()
        active = (
            TransitCard.objects.select_for_update()
            .filter(card_hash=digest, unlinked_at__isnull=True)
            .first()
        )
        if active is not None and active.user_id != user.pk:
            raise CardLinkedElsewhere()
        created = active is None
        if created:
            try:
                with transaction.atomic():
                    active = TransitCard.objects.create(
                        user=user, card_hash=digest, label=label, last_digits=number[-4:]
                    )
            except IntegrityError:
                # Someone linked it in the meantime.
                active = TransitCard.objects.filter(
                    card_hash=digest, unlinked_at__isnull=True
                ).first()
                if active is None or active.user_id != user.pk:
                    raise CardLinkedElsewhere() from None
                created = False
    outcome = transit_trips_credit(card_hashes=[digest], now=now)
    return CardLinked(
        card=active, created=created, claims=outcome.claims, expired_trips=outcome.expired
    )


def transit_card_unlink(*, user: User, card_id: Any) -> TransitCard:
    """Unlink one of the resident's own active cards; later trips wait for a new link."""
    with transaction.atomic():
        card = (
            TransitCard.objects.select_for_update()
            .filter(pk=card_id, user=user, unlinked_at__isnull=True)
            .first()
        )
        if card is None:
            raise CardNotFound()
        card.unlinked_at = timezone.now()
        card.save(update_fields=["unlinked_at"])
        return card


def transit_cards_of(*, user: User):
    return TransitCard.objects.filter(user=user, unlinked_at__isnull=True).order_by("-linked_at")


# --- the operator's taps ------------------------------------------------------------------


@dataclass
class RowResult:
    index: int
    record_id: str | None
    status: str  # accepted | duplicate | error
    code: str = ""
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "record_id": self.record_id,
            "status": self.status,
        }
        if self.code:
            out["code"], out["message"] = self.code, self.message
        return out


@dataclass
class TapBatchReport:
    rows: list[RowResult]
    trips: TripOutcome

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)


@dataclass(frozen=True)
class TapRow:
    record_id: str
    card_hash: str
    station_id: int
    line_id: int | None
    mode: str
    direction: str
    tapped_at: datetime
    payload_hash: str


_ROW_FIELDS = {"record_id", "card_hash", "station", "line", "mode", "direction", "at"}


def _row(raw: Any, net: Network, partner: Partner, now: datetime) -> TapRow:
    if not isinstance(raw, dict):
        raise RowError("malformed_row", "Each tap is a JSON object.")
    unknown = sorted(set(raw) - _ROW_FIELDS)
    if unknown:
        raise RowError("malformed_row", f"Unknown fields: {', '.join(unknown)}.")
    record_id = raw.get("record_id")
    if isinstance(record_id, int) and not isinstance(record_id, bool):
        record_id = str(record_id)
    if (
        not isinstance(record_id, str)
        or not record_id.strip()
        or len(record_id) > 100
        or record_id != record_id.strip()
        or any(ord(c) < 32 for c in record_id)
    ):
        raise RowError(
            "invalid_record_id",
            "record_id is a string of 1 to 100 printable characters, without surrounding spaces.",
        )
    digest = raw.get("card_hash")
    if not isinstance(digest, str) or not CARD_HASH.match(digest.lower()):
        raise RowError(
            "invalid_card_hash", "card_hash is the 64-hex-digit HMAC-SHA256 of the card number."
        )
    digest = digest.lower()
    mode = raw.get("mode")
    if mode not in TransitMode.values:
        raise RowError("invalid_mode", f"mode is one of {', '.join(TransitMode.values)}.")
    direction = raw.get("direction")
    if direction not in TapDirection.values:
        raise RowError(
            "invalid_direction", f"direction is one of {', '.join(TapDirection.values)}."
        )
    at = raw.get("at")
    try:
        when = parse_datetime(at) if isinstance(at, str) else None
    except ValueError:
        when = None
    if when is None:
        raise RowError("invalid_time", "at is an ISO-8601 date and time with a UTC offset.")
    if timezone.is_naive(when):
        raise RowError("time_without_offset", "at needs a UTC offset (e.g. +08:00).")
    try:
        too_old = when < now - MAX_TAP_AGE
        in_future = when > now + CLOCK_SKEW
    except OverflowError:  # e.g. year 1 at +14:00
        raise RowError("invalid_time", "at is not a plausible time.") from None
    if in_future:
        raise RowError("time_in_future", "This tap is in the future.")
    if too_old:
        raise RowError("time_too_old", "Taps older than 31 days can no longer be credited.")
    station = net.stations.get(raw.get("station")) if isinstance(raw.get("station"), str) else None
    if station is None:
        raise RowError("unknown_station", f"No station has the code {raw.get('station')!r}.")
    if station.mode != mode:
        raise RowError("mode_mismatch", f"Station {station.code} is a {station.mode} station.")
    line_code = raw.get("line")
    line = None
    if line_code not in (None, ""):
        line = net.lines.get(line_code) if isinstance(line_code, str) else None
        if line is None:
            raise RowError("unknown_line", f"No line has the code {line_code!r}.")
        if line.mode != mode:
            raise RowError("mode_mismatch", f"Line {line.code} is a {line.mode} line.")
        if station.id not in line.chainage:
            raise RowError(
                "station_not_on_line", f"Station {station.code} is not on line {line.code}."
            )
        if line.operator_id is not None and line.operator_id != partner.pk:
            raise RowError("not_your_line", f"Line {line.code} is run by another operator.")
    elif mode == TransitMode.BUS:
        raise RowError("line_required", "A bus tap names its line.")
    canonical = {
        "card_hash": digest,
        "station": station.code,
        "line": line.code if line else None,
        "mode": mode,
        "direction": direction,
        "at": when.astimezone(UTC).isoformat(),
    }
    return TapRow(
        record_id=record_id,
        card_hash=digest,
        station_id=station.id,
        line_id=line.id if line else None,
        mode=mode,
        direction=direction,
        tapped_at=when,
        payload_hash=hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest(),
    )


def _tap(partner: Partner, row: TapRow) -> Tap:
    return Tap(
        partner=partner,
        record_id=row.record_id,
        payload_hash=row.payload_hash,
        card_hash=row.card_hash,
        station_id=row.station_id,
        line_id=row.line_id,
        mode=row.mode,
        direction=row.direction,
        tapped_at=row.tapped_at,
    )


def transit_taps_ingest(
    *, partner: Partner, rows: Sequence[Any], now: datetime | None = None
) -> TapBatchReport:
    """Store a batch of the operator's taps, each row on its own, then pair and credit.

    A row is accepted, a duplicate (same record id and payload: nothing new), or an error
    with a code (bad fields, unknown station, the record id seen with another payload). Good
    rows are kept whatever the others hold; a row is stored whole or not at all.
    """
    if partner.kind != Partner.Kind.TRANSIT_OPERATOR:
        raise NotTransitOperator()
    if len(rows) > MAX_BATCH_TAPS:
        raise BatchTooLarge(details={"max_taps": MAX_BATCH_TAPS, "taps": len(rows)})
    now = now or timezone.now()
    net = network()
    results: list[RowResult] = []
    fresh: dict[str, tuple[int, TapRow]] = {}  # record id -> its first good row in this batch
    repeats: list[tuple[int, TapRow]] = []  # the same record id again in this batch
    for i, raw in enumerate(rows):
        rid = raw.get("record_id") if isinstance(raw, dict) else None
        rid = str(rid) if isinstance(rid, str | int) and not isinstance(rid, bool) else None
        try:
            row = _row(raw, net, partner, now)
        except RowError as exc:
            results.append(RowResult(i, rid, "error", exc.code, exc.message))
            continue
        results.append(RowResult(i, row.record_id, "accepted"))
        if row.record_id in fresh:
            repeats.append((i, row))
        else:
            fresh[row.record_id] = (i, row)

    stored = dict(
        Tap.objects.filter(partner=partner, record_id__in=list(fresh)).values_list(
            "record_id", "payload_hash"
        )
    )
    to_insert: list[tuple[int, TapRow]] = []
    for record_id, (i, row) in fresh.items():
        if record_id in stored:
            results[i] = _duplicate_or_conflict(i, row, stored[record_id])
        else:
            to_insert.append((i, row))
    _insert_taps(partner, to_insert, results)
    for i, row in repeats:
        # Compared with what is stored under that id (or, failing that, its first row here).
        first = fresh[row.record_id][1]
        results[i] = _duplicate_or_conflict(i, row, stored.get(row.record_id, first.payload_hash))

    # Duplicates too: a replay after a failure half-way through pairing finishes the job.
    cards = {
        row.card_hash for i, row in fresh.values() if results[i].status in ("accepted", "duplicate")
    }
    outcome = transit_cards_settle(card_hashes=sorted(cards), now=now)
    return TapBatchReport(rows=results, trips=outcome)


def _duplicate_or_conflict(i: int, row: TapRow, other_hash: str) -> RowResult:
    if other_hash == row.payload_hash:
        return RowResult(i, row.record_id, "duplicate")
    return RowResult(
        i,
        row.record_id,
        "error",
        "record_conflict",
        "This record id was already received with different content.",
    )


def _insert_taps(
    partner: Partner, rows: list[tuple[int, TapRow]], results: list[RowResult]
) -> None:
    """All new rows in one statement; if that fails (a concurrent batch with the same record
    ids), row by row, each in its own savepoint."""
    if not rows:
        return
    try:
        with transaction.atomic():
            Tap.objects.bulk_create([_tap(partner, row) for _, row in rows], batch_size=1000)
        return
    except IntegrityError:
        pass
    for i, row in rows:
        try:
            with transaction.atomic():
                _tap(partner, row).save()
        except IntegrityError:
            other = (
                Tap.objects.filter(partner=partner, record_id=row.record_id)
                .values_list("payload_hash", flat=True)
                .first()
            )
            if other is None:
                results[i] = RowResult(
                    i, row.record_id, "error", "not_stored", "This tap could not be stored."
                )
            else:
                results[i] = _duplicate_or_conflict(i, row, other)


# --- pairing ------------------------------------------------------------------------------


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


class _Units:
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
    taps: list[Tap], existing: list[Trip], net: Network, units: _Units, now: datetime
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


def _with_boarded_line(trips):
    """Trips annotated with the line their first tap was on (bus trips: the route ridden)."""
    first_tap = Tap.objects.filter(trip=OuterRef("pk")).order_by("tapped_at", "id")
    return trips.annotate(boarded_line_id=Subquery(first_tap.values("line_id")[:1]))


def transit_pair(*, card_hashes: Iterable[str], now: datetime | None = None) -> int:
    """Pair the unassigned taps of these cards into trips. Safe to run again: a tap already
    in a trip is never looked at, and a tap waiting for its other half stays unassigned."""
    now = now or timezone.now()
    hashes = sorted(set(card_hashes))
    if not hashes:
        return 0
    net = network()
    units = _Units()
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
            for trip in _with_boarded_line(nearby).order_by("started_at", "id"):
                existing[trip.card_hash].append(trip)
            new: list[_NewTrip] = []
            attach: list[tuple[Trip, Tap]] = []
            for card, card_taps in by_card.items():
                n, a = _pair_card(card_taps, existing.get(card, []), net, units, now)
                new += n
                attach += a
            if new:
                Trip.objects.bulk_create([n.trip for n in new], batch_size=1000)
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
            if assigned:
                Tap.objects.bulk_update(assigned, ["trip"], batch_size=1000)
            created += len(new)
    return created


# --- trips to claims ----------------------------------------------------------------------


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


def transit_trips_credit(*, card_hashes: Iterable[str], now: datetime | None = None) -> TripOutcome:
    """Turn the unclaimed trips of these cards into claims when the card is linked.

    Each trip is its own claim (idempotency key trip:<id>), so running this again never
    credits twice. A trip already outside the claim window is marked expired.
    """
    from carbon.services.claims import claim_submit

    now = now or timezone.now()
    outcome = TripOutcome()
    hashes = sorted(set(card_hashes))
    if not hashes:
        return outcome
    owners = {
        c.card_hash: c.user
        for c in TransitCard.objects.filter(
            card_hash__in=hashes, unlinked_at__isnull=True
        ).select_related("user")
    }
    pending = Trip.objects.filter(
        card_hash__in=hashes, status=TripStatus.AWAITING_LINK, claim__isnull=True
    )
    if not owners:
        outcome.awaiting_link = pending.count()
        return outcome
    outcome.awaiting_link = pending.exclude(card_hash__in=list(owners)).count()
    units = _Units()
    net = network(fresh=False)
    trips = _with_boarded_line(pending.filter(card_hash__in=list(owners))).select_related("partner")
    for trip in trips.order_by("started_at", "id"):
        user = owners[trip.card_hash]
        quantity = trip_quantity(trip=trip, unit=units.unit(trip.mode, trip.started_at), net=net)
        if quantity is None:
            Trip.objects.filter(pk=trip.pk, claim__isnull=True).update(status=TripStatus.REVIEW)
            outcome.review += 1
            continue
        try:
            with transaction.atomic():
                claim, created = claim_submit(
                    user=user,
                    behaviour_code=BEHAVIOUR_FOR_MODE[trip.mode],
                    quantity=quantity,
                    idempotency_key=f"trip:{trip.pk}",
                    occurred_at=trip.started_at,
                    evidence_type="transit",
                    evidence={"trip": trip.pk},
                    partner=trip.partner,
                    from_resident=False,
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


def transit_cards_settle(*, card_hashes: Iterable[str], now: datetime | None = None) -> TripOutcome:
    """Pair the cards' taps, then claim their trips: what follows every batch of taps."""
    hashes = sorted(set(card_hashes))
    created = transit_pair(card_hashes=hashes, now=now)
    outcome = transit_trips_credit(card_hashes=hashes, now=now)
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
