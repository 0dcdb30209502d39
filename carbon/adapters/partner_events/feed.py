"""The partner event feed: signed batches from bike-share, recycling, delivery, utility and
second-hand platforms, each event checked against its behaviour's schema, stored once by
event id, and claimed for the resident who linked the partner account."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from carbon.adapters.partner_events.matching import event_claim, external_ref_hash
from carbon.adapters.partner_events.models import PartnerEvent, PartnerEventStatus, PartnerLink
from carbon.errors import DomainError, RowError
from carbon.models import Behaviour, Partner
from carbon.services import rules

MAX_BATCH = 1000


class BatchTooLarge(DomainError):
    code = "batch_too_large"
    status = 413


# --- per-behaviour event schemas ------------------------------------------------------------


def _decimal(row: dict, name: str, *, maximum: Decimal | None = None) -> Decimal:
    value = row.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RowError("invalid_field", f"`{name}` must be a number.")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise RowError("invalid_field", f"`{name}` must be a number.") from None
    if not d.is_finite() or d <= 0:
        raise RowError("invalid_field", f"`{name}` must be positive.")
    if maximum is not None and d > maximum:
        raise RowError("invalid_field", f"`{name}` must be at most {maximum}.")
    return d


def _int(row: dict, name: str, *, minimum: int = 1, maximum: int = 10**9) -> int:
    value = row.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise RowError(
            "invalid_field", f"`{name}` must be a whole number from {minimum} to {maximum}."
        )
    return value


def _choice(row: dict, name: str, choices: set[str]) -> str:
    value = row.get(name)
    if value not in choices:
        raise RowError("invalid_field", f"`{name}` must be one of {sorted(choices)}.")
    return value


def _bike(row: dict) -> tuple[Decimal, dict]:
    km = _decimal(row, "distance_km", maximum=Decimal("100"))
    seconds = _int(row, "duration_s", maximum=24 * 3600)
    kmh = km / Decimal(seconds) * 3600
    if kmh > 40:
        raise RowError("impossible_speed", f"{kmh:.0f} km/h is not a bicycle ride.")
    return km, {"distance_km": str(km), "duration_s": seconds}


def _nev(row: dict) -> tuple[Decimal, dict]:
    km = _decimal(row, "distance_km", maximum=Decimal("500"))
    return km, {"distance_km": str(km), "shared": bool(row.get("shared", False))}


def _walking(row: dict) -> tuple[Decimal, dict]:
    steps = _int(row, "steps", maximum=100_000)
    # About 0.7 m a step; the behaviour's unit is km.
    km = (Decimal(steps) * Decimal("0.0007")).quantize(Decimal("0.001"), rounding=ROUND_FLOOR)
    if km <= 0:
        raise RowError("invalid_field", "Too few steps to count.")
    return km, {"steps": steps}


MATERIALS = {"paper", "glass", "plastic", "metal", "textile", "e-waste", "mixed-recyclables"}


def _recycling(row: dict) -> tuple[Decimal, dict]:
    kg = _decimal(row, "weight_kg", maximum=Decimal("200"))
    return kg, {"weight_kg": str(kg), "material": _choice(row, "material", MATERIALS)}


def _electricity(row: dict) -> tuple[Decimal, dict]:
    kwh = _decimal(row, "saved_kwh", maximum=Decimal("5000"))
    period = row.get("period")
    if not isinstance(period, str) or len(period) != 7 or period[4] != "-":
        raise RowError("invalid_field", "`period` must be the billing month, YYYY-MM.")
    return kwh, {"saved_kwh": str(kwh), "period": period}


def _no_cutlery(row: dict) -> tuple[Decimal, dict]:
    if row.get("cutlery") is not False:
        raise RowError(
            "invalid_field",
            "Only orders placed without disposable cutlery (`cutlery`: false) count.",
        )
    order_id = row.get("order_id")
    if not isinstance(order_id, str) or not order_id.strip():
        raise RowError("invalid_field", "`order_id` is required.")
    return Decimal(1), {"order_id_hash": hashlib.sha256(order_id.encode()).hexdigest()[:16]}


ITEM_CATEGORIES = {
    "phone",
    "laptop",
    "tablet",
    "clothing",
    "furniture",
    "book",
    "appliance",
    "other",
}


def _second_hand(row: dict) -> tuple[Decimal, dict]:
    items = _int(row, "items", maximum=100)
    return Decimal(items), {
        "items": items,
        "item_category": _choice(row, "item_category", ITEM_CATEGORIES),
    }


def _count(field: str, maximum: int):
    def parse(row: dict) -> tuple[Decimal, dict]:
        n = _int(row, field, maximum=maximum)
        return Decimal(n), {field: n}

    return parse


# Behaviour code -> parser of the event's behaviour-specific fields into (quantity, details).
# A behaviour missing here takes a plain `quantity` in its own unit.
SCHEMAS = {
    "bike-share": _bike,
    "nev-ride": _nev,
    "walking": _walking,
    "recycling": _recycling,
    "saved-electricity": _electricity,
    "no-cutlery": _no_cutlery,
    "second-hand": _second_hand,
    "e-receipt": _count("receipts", 50),
    "own-bag": _count("uses", 20),
}


def _generic(row: dict) -> tuple[Decimal, dict]:
    q = _decimal(row, "quantity")
    return q, {"quantity": str(q)}


@dataclass
class RowResult:
    event_id: str
    status: str  # accepted | duplicate | error
    code: str = ""
    message: str = ""
    claim_status: str = ""

    def as_dict(self) -> dict:
        out: dict[str, Any] = {"event_id": self.event_id, "status": self.status}
        if self.code:
            out["code"] = self.code
        if self.message:
            out["message"] = self.message
        if self.claim_status:
            out["claim_status"] = self.claim_status
        return out


def _parse_row(*, partner: Partner, row: Any, allowed: dict[str, Behaviour], now: datetime):
    if not isinstance(row, dict):
        raise RowError("malformed_row", "Each event is a JSON object.")
    event_id = row.get("event_id")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 100:
        raise RowError(
            "malformed_row", "`event_id` is a non-empty string of at most 100 characters."
        )
    code = row.get("behaviour")
    behaviour = allowed.get(code) if isinstance(code, str) else None
    if behaviour is None:
        raise RowError("behaviour_not_allowed", f"This partner may not report `{code}` events.")
    user_ref = row.get("user_ref")
    if not isinstance(user_ref, str) or not user_ref.strip() or len(user_ref) > 200:
        raise RowError("malformed_row", "`user_ref` is the partner's id of the resident, a string.")
    try:
        raw_time = row.get("occurred_at")
        occurred = parse_datetime(raw_time) if isinstance(raw_time, str) else None
    except ValueError:  # well-formed but impossible, e.g. month 13
        occurred = None
    if occurred is None or timezone.is_naive(occurred):
        raise RowError("invalid_time", "`occurred_at` is an ISO-8601 time with an offset.")
    if occurred > now + rules.CLOCK_SKEW:
        raise RowError("invalid_time", "`occurred_at` is in the future.")
    problem = rules.window_problem(behaviour=behaviour, occurred_at=occurred, reference=now)
    if problem:
        raise RowError("outside_claim_window", problem)
    quantity, details = SCHEMAS.get(behaviour.code, _generic)(row)
    if quantity > behaviour.max_quantity:
        raise RowError(
            "invalid_quantity", f"At most {behaviour.max_quantity} {behaviour.unit} per event."
        )
    quantity = quantity.quantize(Decimal("0.001"), rounding=ROUND_FLOOR)
    if quantity <= 0:
        raise RowError("invalid_quantity", "Below the smallest quantity we count (0.001).")
    return event_id, behaviour, user_ref, occurred, quantity, details


def partner_events_ingest(*, partner: Partner, events: Any) -> dict:
    """Apply a batch: each event in its own savepoint, so a bad row never half-applies and
    never blocks the good ones. Idempotent by (partner, event_id)."""
    if not isinstance(events, list):
        raise DomainError("`events` must be a list.")
    if len(events) > MAX_BATCH:
        raise BatchTooLarge(f"At most {MAX_BATCH} events per batch.", details={"max": MAX_BATCH})
    now = timezone.now()
    allowed = {b.code: b for b in partner.behaviours.filter(is_active=True)}
    results: list[RowResult] = []
    for row in events:
        raw_id = row.get("event_id") if isinstance(row, dict) else None
        label = raw_id if isinstance(raw_id, str) else ""
        try:
            event_id, behaviour, user_ref, occurred, quantity, details = _parse_row(
                partner=partner, row=row, allowed=allowed, now=now
            )
        except RowError as exc:
            results.append(RowResult(label, "error", exc.code, exc.message))
            continue
        ref_hash = external_ref_hash(partner=partner, external_ref=user_ref)
        payload_hash = hashlib.sha256(
            json.dumps(row, sort_keys=True, default=str).encode()
        ).hexdigest()
        existing = PartnerEvent.objects.filter(partner=partner, event_id=event_id).first()
        if existing is not None:
            if existing.payload_hash == payload_hash:
                results.append(
                    RowResult(
                        event_id,
                        "duplicate",
                        claim_status=existing.claim.status if existing.claim_id else "",
                    )
                )
            else:
                results.append(
                    RowResult(
                        event_id,
                        "error",
                        "event_conflict",
                        "This event_id was already received with different content.",
                    )
                )
            continue
        try:
            with transaction.atomic():
                event = PartnerEvent.objects.create(
                    partner=partner,
                    event_id=event_id,
                    payload_hash=payload_hash,
                    behaviour=behaviour,
                    external_ref_hash=ref_hash,
                    occurred_at=occurred,
                    quantity=quantity,
                    details=details,
                    status=PartnerEventStatus.UNMATCHED,
                )
                link = (
                    PartnerLink.objects.linked()  # confirmed: a pending link earns nothing
                    .filter(partner=partner, external_ref_hash=ref_hash)
                    .select_related("user")
                    .first()
                )
                claim = (
                    event_claim(event=event, user=link.user)
                    if link and link.user.is_active
                    else None
                )
        except IntegrityError:
            results.append(RowResult(event_id, "duplicate"))
            continue
        except DomainError as exc:
            results.append(RowResult(event_id, "error", exc.code, exc.message))
            continue
        results.append(
            RowResult(
                event_id,
                "accepted",
                claim_status=claim.status if claim else "awaiting_link",
            )
        )
    counts = {
        s: sum(1 for r in results if r.status == s) for s in ("accepted", "duplicate", "error")
    }
    return {"received": len(events), **counts, "results": [r.as_dict() for r in results]}


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
