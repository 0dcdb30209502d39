"""The operator's signed tap feed: each row checked on its own, stored once by record id,
then the cards' taps are paired and credited."""

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from carbon.adapters.transit.models import (
    Tap,
    TapDirection,
    TransitMode,
)
from carbon.adapters.transit.network import Network, network
from carbon.adapters.transit.trips import TripOutcome, transit_cards_settle
from carbon.clock import CLOCK_SKEW
from carbon.errors import DomainError, RowError
from carbon.models import Partner

log = logging.getLogger(__name__)


# Older taps can never be credited (claim windows are days, not months): refuse them.
MAX_TAP_AGE = timedelta(days=31)
MAX_BATCH_TAPS = 5000
CARD_HASH = re.compile(r"^[0-9a-f]{64}$")


class NotTransitOperator(DomainError):
    code = "not_transit_operator"
    status = 403
    default_message = "Only transit operators may push taps."


class BatchTooLarge(DomainError):
    code = "batch_too_large"
    status = 413
    default_message = f"A batch holds at most {MAX_BATCH_TAPS} taps."


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
    # Named line or not, the station must be one this operator serves (taps at another
    # operator's stations are not its to report).
    if not net.operates_station(station.id, partner.pk):
        raise RowError("not_your_station", f"Station {station.code} is not on a line you run.")
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
