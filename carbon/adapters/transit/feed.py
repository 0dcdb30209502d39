"""The operator's signed tap feed: each row checked on its own, stored once by record id,
then the cards' taps are paired and credited."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from pydantic import BeforeValidator, ConfigDict, Field, Strict, ValidationInfo, field_validator

from carbon.adapters.batch import (
    BatchReport,
    RowCode,
    RowError,
    RowField,
    RowModel,
    RowResult,
    RowStatus,
    batch_size_check,
    int_as_text,
    iso_time,
    payload_hash,
    row_duplicate_or_conflict,
    row_refusal,
)
from carbon.adapters.transit.models import (
    Tap,
    TapDirection,
    TransitMode,
)
from carbon.adapters.transit.network import Network, network
from carbon.adapters.transit.trips import TripOutcome, transit_cards_settle
from carbon.clock import CLOCK_SKEW
from carbon.errors import DomainError, ErrorCode
from carbon.models import Partner
from carbon.services.rows_bulk import rows_insert

log = logging.getLogger(__name__)


# Older taps can never be credited (claim windows are days, not months): refuse them.
MAX_TAP_AGE = timedelta(days=31)
MAX_BATCH_TAPS = 5000


class NotTransitOperator(DomainError):
    code = ErrorCode.NOT_TRANSIT_OPERATOR


@dataclass
class TapBatchReport(BatchReport):
    trips: TripOutcome

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "trips": self.trips.as_dict()}


class TapRecord(RowModel):
    """One tap, as the operator sends it. A field not listed here refuses the row."""

    model_config = ConfigDict(extra="forbid")
    not_an_object: ClassVar[str] = gettext_lazy("Each tap is a JSON object.")

    record_id: Annotated[
        str,
        Strict(),
        Field(
            min_length=1,
            max_length=100,
            pattern=r"^[^\s\x00-\x1f](?:[^\x00-\x1f]*[^\s\x00-\x1f])?$",
            description="The operator's id of this tap record: printable, without surrounding "
            "spaces (a number is read as its decimal text). Sending it again is harmless.",
        ),
        BeforeValidator(int_as_text),
        RowField(
            RowCode.INVALID_RECORD_ID,
            gettext_lazy(
                "record_id is a string of 1 to 100 printable characters, without surrounding "
                "spaces."
            ),
        ),
    ]
    card_hash: Annotated[
        str,
        Strict(),
        # The length bound keeps a trailing newline out, whatever the regex dialect.
        Field(
            min_length=64,
            max_length=64,
            pattern=r"^[0-9a-fA-F]+$",
            description="hex HMAC-SHA256 of the card number (digits only, spaces and dashes "
            "removed), keyed with the shared TRANSIT_CARD_HASH_KEY. Card numbers never travel.",
        ),
        RowField(
            RowCode.INVALID_CARD_HASH,
            gettext_lazy("card_hash is the 64-hex-digit HMAC-SHA256 of the card number."),
        ),
    ]
    mode: Annotated[
        TransitMode,
        RowField(
            RowCode.INVALID_MODE,
            gettext_lazy("mode is one of %(choices)s."),
            choices=", ".join(TransitMode.values),
        ),
    ]
    direction: Annotated[
        TapDirection,
        RowField(
            RowCode.INVALID_DIRECTION,
            gettext_lazy("direction is one of %(choices)s."),
            choices=", ".join(TapDirection.values),
        ),
    ]
    at: Annotated[
        datetime,
        Field(
            description="ISO-8601 with a UTC offset, e.g. 2025-05-01T08:12:30+08:00; not in the "
            "future, at most 31 days old."
        ),
        BeforeValidator(iso_time),
        RowField(
            RowCode.INVALID_TIME, gettext_lazy("at is an ISO-8601 date and time with a UTC offset.")
        ),
    ]
    station: Annotated[
        str,
        Strict(),
        Field(max_length=64, description="Station code."),
        RowField(RowCode.UNKNOWN_STATION, gettext_lazy("station is the code of a station.")),
    ]
    line: Annotated[
        str | None,
        Strict(),
        Field(max_length=64, description="Line code; required for bus taps."),
        RowField(RowCode.UNKNOWN_LINE, gettext_lazy("line is the code of a line.")),
    ] = None

    @field_validator("at")
    @classmethod
    def _creditable(cls, when: datetime, info: ValidationInfo) -> datetime:
        if timezone.is_naive(when):
            raise row_refusal(
                RowCode.TIME_WITHOUT_OFFSET, _("at needs a UTC offset (e.g. +08:00).")
            )
        now = info.context["now"]
        try:
            too_old = when < now - MAX_TAP_AGE
            in_future = when > now + CLOCK_SKEW
        except OverflowError:  # e.g. year 1 at +14:00
            raise row_refusal(RowCode.INVALID_TIME, _("at is not a plausible time.")) from None
        if in_future:
            raise row_refusal(RowCode.TIME_IN_FUTURE, _("This tap is in the future."))
        if too_old:
            raise row_refusal(
                RowCode.TIME_TOO_OLD,
                _("Taps older than %(days)d days can no longer be credited.")
                % {"days": MAX_TAP_AGE.days},
            )
        return when


@dataclass(frozen=True)
class TapRow:
    """A tap checked against the network, ready to store."""

    record_id: str
    card_hash: str
    station_id: int
    line_id: int | None
    mode: str
    direction: str
    tapped_at: datetime
    payload_hash: str


def _row(raw: Any, net: Network, partner: Partner, context: dict[str, Any]) -> TapRow:
    tap = TapRecord.row_parse(raw, context=context)
    mode = tap.mode.value
    station = net.stations.get(tap.station)
    if station is None:
        raise RowError(
            RowCode.UNKNOWN_STATION,
            _("No station has the code %(station)s.") % {"station": repr(tap.station)},
        )
    if station.mode != mode:
        raise RowError(
            RowCode.MODE_MISMATCH,
            _("Station %(station)s is a %(mode)s station.")
            % {"station": station.code, "mode": station.mode},
        )
    line = None
    if tap.line:
        line = net.lines.get(tap.line)
        if line is None:
            raise RowError(
                RowCode.UNKNOWN_LINE, _("No line has the code %(line)s.") % {"line": repr(tap.line)}
            )
        if line.mode != mode:
            raise RowError(
                RowCode.MODE_MISMATCH,
                _("Line %(line)s is a %(mode)s line.") % {"line": line.code, "mode": line.mode},
            )
        if station.id not in line.chainage:
            raise RowError(
                RowCode.STATION_NOT_ON_LINE,
                _("Station %(station)s is not on line %(line)s.")
                % {"station": station.code, "line": line.code},
            )
        if line.operator_id is not None and line.operator_id != partner.pk:
            raise RowError(
                RowCode.NOT_YOUR_LINE,
                _("Line %(line)s is run by another operator.") % {"line": line.code},
            )
    elif mode == TransitMode.BUS:
        raise RowError(RowCode.LINE_REQUIRED, _("A bus tap names its line."))
    # Named line or not, the station must be one this operator serves (taps at another
    # operator's stations are not its to report).
    if not net.operates_station(station.id, partner.pk):
        raise RowError(
            RowCode.NOT_YOUR_STATION,
            _("Station %(station)s is not on a line you run.") % {"station": station.code},
        )
    card = tap.card_hash.lower()
    # What makes two sends of one record the same: the same instant in any offset, say.
    canonical = {
        "card_hash": card,
        "station": station.code,
        "line": line.code if line else None,
        "mode": mode,
        "direction": tap.direction.value,
        "at": tap.at.astimezone(UTC).isoformat(),
    }
    return TapRow(
        record_id=tap.record_id,
        card_hash=card,
        station_id=station.id,
        line_id=line.id if line else None,
        mode=mode,
        direction=tap.direction.value,
        tapped_at=tap.at,
        payload_hash=payload_hash(canonical),
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
    batch_size_check(rows=rows, limit=MAX_BATCH_TAPS, noun=pgettext("batch rows", "taps"))
    now = now or timezone.now()
    net = network()
    context = {"now": now}
    results: list[RowResult] = []
    fresh: dict[str, tuple[int, TapRow]] = {}  # record id -> its first good row in this batch
    repeats: list[tuple[int, TapRow]] = []  # the same record id again in this batch
    for i, raw in enumerate(rows):
        try:
            row = _row(raw, net, partner, context)
        except RowError as exc:
            results.append(RowResult.refused(i, _label(raw), exc))
            continue
        results.append(RowResult(i, row.record_id, RowStatus.ACCEPTED))
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
        row.card_hash
        for i, row in fresh.values()
        if results[i].status in (RowStatus.ACCEPTED, RowStatus.DUPLICATE)
    }
    # The network was checked at the start of this batch: not again.
    outcome = transit_cards_settle(card_hashes=sorted(cards), now=now, net=net)
    return TapBatchReport(id_field="record_id", rows=results, trips=outcome)


def _label(raw: Any) -> str | None:
    """The record id of a refused row, as far as it can be read, so the operator finds it."""
    rid = raw.get("record_id") if isinstance(raw, dict) else None
    return str(rid) if isinstance(rid, str | int) and not isinstance(rid, bool) else None


def _duplicate_or_conflict(i: int, row: TapRow, other_hash: str) -> RowResult:
    return row_duplicate_or_conflict(
        index=i,
        row_id=row.record_id,
        id_field="record_id",
        row_hash=row.payload_hash,
        stored_hash=other_hash,
    )


def _insert_taps(
    partner: Partner, rows: list[tuple[int, TapRow]], results: list[RowResult]
) -> None:
    """All new rows in one statement (COPY on PostgreSQL; nothing reads their ids back: pairing
    reads the card's taps from the table); if that fails (a concurrent batch with the same record
    ids), row by row, each in its own savepoint."""
    if not rows:
        return
    try:
        with transaction.atomic():
            rows_insert(objs=[_tap(partner, row) for _, row in rows], with_ids=False)
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
                    i,
                    row.record_id,
                    RowStatus.ERROR,
                    RowCode.NOT_STORED,
                    _("This tap could not be stored."),
                )
            else:
                results[i] = _duplicate_or_conflict(i, row, other)
