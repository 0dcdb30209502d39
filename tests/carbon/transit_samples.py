"""Transit cards and tap rows as an operator sends them, for the transit tests: the card
numbers, a tap row, a signed tap batch, and a resident's linked card."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count

from django.utils import timezone

from carbon.adapters.transit.cards import card_hash, transit_card_link
from carbon.adapters.transit.models import TransitCard
from carbon.adapters.transit.trips import transit_trips_credit
from carbon.services.linking import link_confirm_by_partner
from tests.carbon.api_helpers import partner_post

TAPS = "/api/v1/partners/transit/taps"
CARDS = "/api/v1/me/transit-cards"
LINK_CONFIRM = "/api/v1/partners/transit/links/confirm"
CARD = "6227 0012 3456 7890"
OTHER_CARD = "6227-0098-7654-3210"

# Record ids stay unique across a run, as an operator's would.
_record_ids = count(1)


def linked(user, number: str = CARD) -> TransitCard:
    """A card linked and confirmed, as if the operator had confirmed it (the link itself is
    tested over HTTP in test_link_proof); its earlier trips are credited as on confirming."""
    card = transit_card_link(user=user, card_number=number, consent=True).card
    card = link_confirm_by_partner(link=card)
    transit_trips_credit(card_hashes=[card.card_hash])
    return card


def operator_confirms(issued, link_token: str, number: str = CARD, **kw):
    """The operator's signed confirmation that its customer holding `number` brought the
    token (the operator names the card by its hash, as in its taps)."""
    return partner_post(
        LINK_CONFIRM,
        key_id=issued.key_id,
        secret=issued.secret,
        payload={"link_token": link_token, "user_ref": card_hash(number)},
        **kw,
    )


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
