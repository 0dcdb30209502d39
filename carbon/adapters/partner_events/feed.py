"""The partner event feed: signed batches from bike-share, recycling, delivery, utility and
second-hand platforms, each event checked against its behaviour's schema, stored once by
event id, and claimed for the resident who linked the partner account."""

from __future__ import annotations

import hashlib
import logging
import operator
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from functools import reduce
from typing import Annotated, Any, ClassVar, Literal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from pydantic import (
    BeforeValidator,
    Field,
    Strict,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from carbon.adapters.batch import (
    BatchReport,
    RowCode,
    RowError,
    RowField,
    RowModel,
    RowResult,
    RowStatus,
    batch_size_check,
    iso_time,
    one_of,
    payload_hash,
    positive_number,
    row_duplicate_or_conflict,
    row_refusal,
    whole_number,
)
from carbon.adapters.partner_events.matching import (
    event_claim,
    events_claim_many,
    external_ref_hash,
)
from carbon.adapters.partner_events.models import PartnerEvent, PartnerEventStatus, PartnerLink
from carbon.api.parsing import NUL, json_strings_match
from carbon.errors import DomainError
from carbon.models import Behaviour, Partner, User
from carbon.services import rules

log = logging.getLogger(__name__)

MAX_BATCH = 1000
# Fewer valid events than this are stored one at a time: the set-based path's fixed
# statements only pay off from two events on.
BULK_MIN_EVENTS = 2


# --- the event envelope ---------------------------------------------------------------------


class EventEnvelope(RowModel):
    """What every event carries, whatever its behaviour. Other fields are ignored."""

    not_an_object: ClassVar[str] = gettext_lazy("Each event is a JSON object.")

    event_id: Annotated[
        str,
        Strict(),
        Field(
            max_length=100,
            pattern=r"\S",
            description="The partner's unique id of the event; sending it again is harmless.",
        ),
        RowField(
            RowCode.MALFORMED_ROW,
            gettext_lazy("`event_id` is a non-empty string of at most 100 characters."),
        ),
    ]
    behaviour: Annotated[
        str,
        Strict(),
        Field(max_length=64, description="A behaviour code this partner may report."),
        RowField(
            RowCode.BEHAVIOUR_NOT_ALLOWED,
            gettext_lazy("`behaviour` is the code of a behaviour this partner may report."),
        ),
    ]
    user_ref: Annotated[
        str,
        Strict(),
        Field(
            max_length=200,
            pattern=r"\S",
            description="The partner's own id of the resident, the one the resident linked.",
        ),
        RowField(
            RowCode.MALFORMED_ROW,
            gettext_lazy("`user_ref` is the partner's id of the resident, a string."),
        ),
    ]
    occurred_at: Annotated[
        datetime,
        Field(description="ISO-8601 with a UTC offset; inside the behaviour's claim window."),
        BeforeValidator(iso_time),
        RowField(
            RowCode.INVALID_TIME, gettext_lazy("`occurred_at` is an ISO-8601 time with an offset.")
        ),
    ]

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, occurred: datetime) -> datetime:
        if timezone.is_naive(occurred):
            raise ValueError("no offset")  # the field's own code and message
        return occurred


# --- each behaviour's own fields ------------------------------------------------------------


class BehaviourFields(RowModel):
    """The fields one behaviour's events carry, and what they are worth in its unit."""

    def measure(self) -> tuple[Decimal, dict[str, Any]]:
        """The quantity in the behaviour's unit, and the details kept on the event."""
        raise NotImplementedError


class BikeShareFields(BehaviourFields):
    distance_km: positive_number(100, "Kilometres ridden.")
    duration_s: whole_number(24 * 3600, "Seconds the ride took.")

    @model_validator(mode="after")
    def _a_bicycle_ride(self) -> BikeShareFields:
        kmh = self.distance_km / Decimal(self.duration_s) * 3600
        if kmh > 40:
            raise row_refusal(
                RowCode.IMPOSSIBLE_SPEED,
                _("%(kmh).0f km/h is not a bicycle ride.") % {"kmh": kmh},
            )
        return self

    def measure(self) -> tuple[Decimal, dict[str, Any]]:
        return self.distance_km, {
            "distance_km": str(self.distance_km),
            "duration_s": self.duration_s,
        }


class NevRideFields(BehaviourFields):
    distance_km: positive_number(500, "Kilometres driven.")
    shared: Annotated[
        bool,
        BeforeValidator(bool),  # any JSON value, read as true or false
        RowField(RowCode.INVALID_FIELD, gettext_lazy("`shared` is true or false.")),
    ] = False

    def measure(self) -> tuple[Decimal, dict[str, Any]]:
        return self.distance_km, {"distance_km": str(self.distance_km), "shared": self.shared}


# About 0.7 m a step; the behaviour's unit is km.
_STEP_KM = Decimal("0.0007")


class WalkingFields(BehaviourFields):
    steps: whole_number(100_000, "Steps walked (about 0.7 m each).")

    @model_validator(mode="after")
    def _enough_steps(self) -> WalkingFields:
        if self._km() <= 0:
            raise row_refusal(RowCode.INVALID_FIELD, _("Too few steps to count."))
        return self

    def _km(self) -> Decimal:
        return (Decimal(self.steps) * _STEP_KM).quantize(Decimal("0.001"), rounding=ROUND_FLOOR)

    def measure(self) -> tuple[Decimal, dict[str, Any]]:
        return self._km(), {"steps": self.steps}


MATERIALS = ("paper", "glass", "plastic", "metal", "textile", "e-waste", "mixed-recyclables")


class RecyclingFields(BehaviourFields):
    weight_kg: positive_number(200, "Kilograms handed in.")
    material: one_of(*MATERIALS)

    def measure(self) -> tuple[Decimal, dict[str, Any]]:
        return self.weight_kg, {"weight_kg": str(self.weight_kg), "material": self.material}


class SavedElectricityFields(BehaviourFields):
    saved_kwh: positive_number(5000, "Kilowatt-hours saved in the billing month.")
    period: Annotated[
        str,
        Strict(),
        Field(pattern=r"^.{4}-.{2}$", description="The billing month, YYYY-MM."),
        RowField(
            RowCode.INVALID_FIELD, gettext_lazy("`period` must be the billing month, YYYY-MM.")
        ),
    ]

    def measure(self) -> tuple[Decimal, dict[str, Any]]:
        return self.saved_kwh, {"saved_kwh": str(self.saved_kwh), "period": self.period}


def _exactly_false(value: Any) -> Any:
    if value is not False:  # not 0, not "false": the partner says it in so many words
        raise PydanticCustomError("cutlery", "Not false.")
    return value


class NoCutleryFields(BehaviourFields):
    cutlery: Annotated[
        Literal[False],
        Field(description="Only orders placed without disposable cutlery count."),
        BeforeValidator(_exactly_false),
        RowField(
            RowCode.INVALID_FIELD,
            gettext_lazy("Only orders placed without disposable cutlery (`cutlery`: false) count."),
        ),
    ]
    order_id: Annotated[
        str,
        Strict(),
        Field(pattern=r"\S", description="Kept only as a short hash."),
        RowField(RowCode.INVALID_FIELD, gettext_lazy("`order_id` is required.")),
    ]

    def measure(self) -> tuple[Decimal, dict[str, Any]]:
        return Decimal(1), {
            "order_id_hash": hashlib.sha256(self.order_id.encode()).hexdigest()[:16]
        }


ITEM_CATEGORIES = (
    "phone",
    "laptop",
    "tablet",
    "clothing",
    "furniture",
    "book",
    "appliance",
    "other",
)


class SecondHandFields(BehaviourFields):
    items: whole_number(100, "Items sold or bought second-hand.")
    item_category: one_of(*ITEM_CATEGORIES)

    def measure(self) -> tuple[Decimal, dict[str, Any]]:
        return Decimal(self.items), {"items": self.items, "item_category": self.item_category}


class EReceiptFields(BehaviourFields):
    receipts: whole_number(50, "Paper receipts replaced by e-receipts.")

    def measure(self) -> tuple[Decimal, dict[str, Any]]:
        return Decimal(self.receipts), {"receipts": self.receipts}


class OwnBagFields(BehaviourFields):
    uses: whole_number(20, "Times a shopper brought their own bag.")

    def measure(self) -> tuple[Decimal, dict[str, Any]]:
        return Decimal(self.uses), {"uses": self.uses}


class QuantityFields(BehaviourFields):
    """Any other behaviour: a plain quantity in the behaviour's own unit."""

    quantity: positive_number(None, "The quantity in the behaviour's own unit.")

    def measure(self) -> tuple[Decimal, dict[str, Any]]:
        return self.quantity, {"quantity": str(self.quantity)}


# Behaviour code -> the model of its events' own fields; any other takes a plain `quantity`.
BEHAVIOUR_FIELDS: dict[str, type[BehaviourFields]] = {
    "bike-share": BikeShareFields,
    "nev-ride": NevRideFields,
    "walking": WalkingFields,
    "recycling": RecyclingFields,
    "saved-electricity": SavedElectricityFields,
    "no-cutlery": NoCutleryFields,
    "second-hand": SecondHandFields,
    "e-receipt": EReceiptFields,
    "own-bag": OwnBagFields,
}


def _documented_event(code: str | None, fields: type[BehaviourFields]) -> type[RowModel]:
    """An event of one behaviour as OpenAPI shows it: the envelope and that behaviour's fields,
    composed from the very models the feed validates with (built once, at import)."""
    if code is None:
        return create_model(
            "OtherBehaviourEvent",
            __base__=(fields, EventEnvelope),
            __doc__="An event of any other behaviour: a plain quantity in its own unit.",
        )
    return create_model(
        fields.__name__.removesuffix("Fields") + "Event",
        __base__=(fields, EventEnvelope),
        __doc__=f"An event of behaviour `{code}`.",
        behaviour=(
            Annotated[
                Literal[code],
                RowField(
                    RowCode.BEHAVIOUR_NOT_ALLOWED, gettext_lazy("This partner may not report it.")
                ),
            ],
            ...,
        ),
    )


DOCUMENTED_EVENTS: tuple[type[RowModel], ...] = (
    *(_documented_event(code, fields) for code, fields in BEHAVIOUR_FIELDS.items()),
    _documented_event(None, QuantityFields),
)
# Any of them: the type of an event in the documented request.
DocumentedEvent: Any = reduce(operator.or_, DOCUMENTED_EVENTS)


# --- the feed -------------------------------------------------------------------------------


def _parse_row(
    *, row: Any, allowed: dict[str, Behaviour], now: datetime
) -> tuple[EventEnvelope, Behaviour, Decimal, dict[str, Any]]:
    envelope = EventEnvelope.row_parse(row)
    if json_strings_match(row, NUL):
        # PostgreSQL stores NUL neither in text nor in jsonb: refused here, as a row, rather
        # than failing the batch's first statement that carries it.
        raise RowError(RowCode.MALFORMED_ROW, _("Text in an event may not contain NUL characters."))
    behaviour = allowed.get(envelope.behaviour)
    if behaviour is None:
        raise RowError(
            RowCode.BEHAVIOUR_NOT_ALLOWED,
            _("This partner may not report `%(behaviour)s` events.")
            % {"behaviour": envelope.behaviour},
        )
    try:
        in_future = envelope.occurred_at > now + rules.CLOCK_SKEW
        problem = rules.window_problem(
            behaviour=behaviour, occurred_at=envelope.occurred_at, reference=now
        )
    except OverflowError:  # e.g. year 1 at +14:00
        raise RowError(RowCode.INVALID_TIME, _("`occurred_at` is not a plausible time.")) from None
    if in_future:
        raise RowError(RowCode.INVALID_TIME, _("`occurred_at` is in the future."))
    if problem:
        raise RowError(RowCode.OUTSIDE_CLAIM_WINDOW, problem)
    fields = BEHAVIOUR_FIELDS.get(behaviour.code, QuantityFields).row_parse(row)
    quantity, details = fields.measure()
    if quantity > behaviour.max_quantity:
        raise RowError(
            RowCode.INVALID_QUANTITY,
            _("At most %(max_quantity)s %(unit)s per event.")
            % {"max_quantity": behaviour.max_quantity, "unit": behaviour.unit},
        )
    quantity = quantity.quantize(Decimal("0.001"), rounding=ROUND_FLOOR)
    if quantity <= 0:
        raise RowError(RowCode.INVALID_QUANTITY, _("Below the smallest quantity we count (0.001)."))
    return envelope, behaviour, quantity, details


def _label(row: Any) -> str:
    """The event id of a refused row, as far as it can be read."""
    raw_id = row.get("event_id") if isinstance(row, dict) else None
    return raw_id if isinstance(raw_id, str) else ""


@dataclass
class _Event:
    """A valid row of the batch, ready to store."""

    index: int
    envelope: EventEnvelope
    behaviour: Behaviour
    quantity: Decimal
    details: dict[str, Any]
    row_hash: str


def partner_events_ingest(*, partner: Partner, events: list[Any]) -> BatchReport:
    """Apply a batch: a bad row never half-applies and never blocks the good ones.
    Idempotent by (partner, event_id). The usual events are stored and credited set-based
    (_store_in_bulk); every other one in its own savepoint (_event_store, the reference the
    set-based path gives the same rows and answers as)."""
    batch_size_check(rows=events, limit=MAX_BATCH, noun=pgettext("batch rows", "events"))
    now = timezone.now()
    allowed = {b.code: b for b in partner.behaviours.filter(is_active=True)}
    results: dict[int, RowResult] = {}
    valid: list[_Event] = []
    for index, row in enumerate(events):
        try:
            envelope, behaviour, quantity, details = _parse_row(row=row, allowed=allowed, now=now)
        except RowError as exc:
            results[index] = RowResult.refused(index, _label(row), exc)
            continue
        # The event as sent: what retries of events stored before this kit hashed too.
        valid.append(_Event(index, envelope, behaviour, quantity, details, payload_hash(row)))
    if settings.CARBON_FEED_BULK_CREDIT and len(valid) >= BULK_MIN_EVENTS:
        results.update(_store_in_bulk(partner=partner, valid=valid))
    # Anything unusual, one event at a time, in the order sent. For each resident these
    # come after what the set-based path credited, as they would have one at a time.
    for event in valid:
        if event.index not in results:
            results[event.index] = _event_store(
                index=event.index,
                partner=partner,
                envelope=event.envelope,
                behaviour=event.behaviour,
                quantity=event.quantity,
                details=event.details,
                row_hash=event.row_hash,
            )
    return BatchReport(id_field="event_id", rows=[results[i] for i in range(len(events))])


def _store_in_bulk(*, partner: Partner, valid: list[_Event]) -> dict[int, RowResult]:
    """The answers of the rows this path decides, by index; the others are left to
    _event_store. Decided here: a resend of a stored event (one read for the batch), a new
    event nobody who earns has linked (stored waiting, as _event_store stores it), and a
    linked resident's event credited by events_claim_many. Left: a repeat of an id earlier
    in the batch, whatever events_claim_many leaves (a refusal, hold, cap, ...), and then
    that resident's later events; all of them when a concurrent batch stored one of these
    ids first (IntegrityError: nothing of this path is kept)."""
    results: dict[int, RowResult] = {}
    ids = sorted({event.envelope.event_id for event in valid})
    stored = {
        event_id: (stored_hash, claim_status)
        for event_id, stored_hash, claim_status in PartnerEvent.objects.filter(
            partner=partner, event_id__in=ids
        ).values_list("event_id", "payload_hash", "claim__status")
    }
    ref_hashes = {
        event.index: external_ref_hash(partner=partner, external_ref=event.envelope.user_ref)
        for event in valid
        if event.envelope.event_id not in stored
    }
    holders: dict[str, User] = {}
    for link in (
        PartnerLink.objects.linked()  # confirmed: a pending link earns nothing
        .filter(partner=partner, external_ref_hash__in=sorted(set(ref_hashes.values())))
        .select_related("user")
    ):
        holders.setdefault(link.external_ref_hash, link.user)  # the newest, as .first()

    seen: set[str] = set()
    left: set[int] = set()  # residents whose later events go one at a time
    waiting: list[_Event] = []  # stored unmatched: nobody who earns linked them
    to_claim: list[tuple[_Event, User]] = []
    for event in valid:
        event_id = event.envelope.event_id
        if event_id in stored:
            stored_hash, claim_status = stored[event_id]
            results[event.index] = row_duplicate_or_conflict(
                index=event.index,
                row_id=event_id,
                id_field="event_id",
                row_hash=event.row_hash,
                stored_hash=stored_hash,
                extra={"claim_status": claim_status} if claim_status else None,
            )
            continue
        holder = holders.get(ref_hashes[event.index])
        # A holder whose account closed, or who is no longer a resident (staff earn
        # nothing), leaves the event waiting, as an unlinked one.
        earns = holder is not None and holder.is_active and holder.is_resident
        if event_id in seen:
            # After its first in this batch: a duplicate, or (the first refused) an event
            # of its own, claimed in its turn among the resident's.
            if earns:
                left.add(holder.pk)
            continue
        seen.add(event_id)
        if not earns:
            waiting.append(event)
        elif holder.pk not in left:
            to_claim.append((event, holder))
    if not waiting and not to_claim:
        return results

    rows = {
        event.index: _event_row(
            partner=partner,
            envelope=event.envelope,
            row_hash=event.row_hash,
            behaviour=event.behaviour,
            quantity=event.quantity,
            details=event.details,
            ref_hash=ref_hashes[event.index],
        )
        for event in (*waiting, *(e for e, _ in to_claim))
    }
    decided: dict[int, RowResult] = {}
    try:
        with transaction.atomic():
            # In event id order: two batches sharing ids wait on each other's unique index
            # entries in one order, never in a cycle.
            PartnerEvent.objects.bulk_create(sorted(rows.values(), key=lambda row: row.event_id))
            for event in waiting:
                decided[event.index] = _accepted(event, "awaiting_link")
            claims = (
                events_claim_many(
                    pairs=[(rows[event.index], holder) for event, holder in to_claim],
                    now=timezone.now(),
                )
                if to_claim
                else []
            )
            refer_back = []
            for (event, _holder), claim in zip(to_claim, claims, strict=True):
                if claim is None:
                    # Stored again, claimed or refused, by _event_store in its turn.
                    refer_back.append(rows[event.index].pk)
                else:
                    decided[event.index] = _accepted(event, claim.status)
            if refer_back:
                PartnerEvent.objects.filter(pk__in=refer_back).delete()
    except IntegrityError:
        # A concurrent batch stored one of these ids first: nothing was written here, and
        # _event_store finds each event already stored.
        log.info("bulk storing of %d partner events gave way to the per-event path", len(rows))
        return results
    except DomainError as exc:
        # Not expected (the set-based path leaves what could be refused): nothing was
        # written here, and _event_store answers each row as it would have.
        log.warning("bulk storing of partner events refused (%s): one at a time", exc.code)
        return results
    results.update(decided)
    return results


def _event_row(
    *,
    partner: Partner,
    envelope: EventEnvelope,
    row_hash: str,
    behaviour: Behaviour,
    quantity: Decimal,
    details: dict[str, Any],
    ref_hash: str,
) -> PartnerEvent:
    """An event as it is stored on arrival, by either path: unmatched until a claim takes
    it (or it waits for its resident's link)."""
    return PartnerEvent(
        partner=partner,
        event_id=envelope.event_id,
        payload_hash=row_hash,
        behaviour=behaviour,
        external_ref_hash=ref_hash,
        occurred_at=envelope.occurred_at,
        quantity=quantity,
        details=details,
        status=PartnerEventStatus.UNMATCHED,
    )


def _accepted(event: _Event, claim_status: str) -> RowResult:
    return RowResult(
        event.index,
        event.envelope.event_id,
        RowStatus.ACCEPTED,
        extra={"claim_status": claim_status},
    )


def _event_store(
    *,
    index: int,
    partner: Partner,
    envelope: EventEnvelope,
    behaviour: Behaviour,
    quantity: Decimal,
    details: dict[str, Any],
    row_hash: str,
) -> RowResult:
    event_id = envelope.event_id
    existing = PartnerEvent.objects.filter(partner=partner, event_id=event_id).first()
    if existing is not None:
        return row_duplicate_or_conflict(
            index=index,
            row_id=event_id,
            id_field="event_id",
            row_hash=row_hash,
            stored_hash=existing.payload_hash,
            extra={"claim_status": existing.claim.status} if existing.claim_id else None,
        )
    try:
        with transaction.atomic():
            event = _event_row(
                partner=partner,
                envelope=envelope,
                row_hash=row_hash,
                behaviour=behaviour,
                quantity=quantity,
                details=details,
                ref_hash=external_ref_hash(partner=partner, external_ref=envelope.user_ref),
            )
            event.save(force_insert=True)
            link = (
                PartnerLink.objects.linked()  # confirmed: a pending link earns nothing
                .filter(partner=partner, external_ref_hash=event.external_ref_hash)
                .select_related("user")
                .first()
            )
            # A holder whose account closed, or who is no longer a resident (staff earn
            # nothing), leaves the event waiting, as an unlinked one.
            claim = (
                event_claim(event=event, user=link.user)
                if link and link.user.is_active and link.user.is_resident
                else None
            )
    except IntegrityError:
        return RowResult(index, event_id, RowStatus.DUPLICATE)
    except DomainError as exc:
        # The claim rules refused the event's claim; nothing of the event is kept.
        return RowResult.refused_by(index, event_id, exc)
    return RowResult(
        index,
        event_id,
        RowStatus.ACCEPTED,
        extra={"claim_status": claim.status if claim else "awaiting_link"},
    )


def partner_events_expire(*, now: datetime | None = None) -> int:
    """Events nobody linked within their claim window will never be credited."""
    now = now or timezone.now()
    expired = 0
    for event in PartnerEvent.objects.filter(status=PartnerEventStatus.UNMATCHED).select_related(
        "behaviour"
    ):
        if rules.window_problem(
            behaviour=event.behaviour, occurred_at=event.occurred_at, reference=now
        ):
            event.status = PartnerEventStatus.EXPIRED
            event.save(update_fields=["status"])
            expired += 1
    return expired
