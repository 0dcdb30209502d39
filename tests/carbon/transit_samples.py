"""Transit cards and tap rows as an operator sends them, for the transit tests: the card
numbers, a tap row, a signed tap batch, and a resident's linked card."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count

from django.utils import timezone

from carbon.adapters.transit.cards import card_hash, transit_card_link
from carbon.adapters.transit.models import TransitCard
from tests.carbon.api_helpers import partner_post

TAPS = "/api/v1/partners/transit/taps"
CARD = "6227 0012 3456 7890"
OTHER_CARD = "6227-0098-7654-3210"

# Record ids stay unique across a run, as an operator's would.
_record_ids = count(1)


def linked(user, number: str = CARD) -> TransitCard:
    return transit_card_link(user=user, card_number=number, consent=True).card


def tap(
    station: str,
    direction: str,
    at: datetime,
    *,
    number: str = CARD,
    mode: str = "metro",
    line: str | None = None,
    record_id: str | None = None,
) -> dict:
    row = {
        "record_id": record_id or f"rec-{next(_record_ids)}",
        "card_hash": card_hash(number),
        "station": station,
        "mode": mode,
        "direction": direction,
        "at": at.isoformat(),
    }
    if line:
        row["line"] = line
    return row


def push(issued, taps: list[dict], **kw):
    return partner_post(
        TAPS, key_id=issued.key_id, secret=issued.secret, payload={"taps": taps}, **kw
    )


def pushed(issued, taps: list[dict], **kw) -> dict:
    response = push(issued, taps, **kw)
    assert response.status_code == 200, response.content
    return response.json()


def ago(**kw) -> datetime:
    return timezone.now() - timedelta(**kw)
