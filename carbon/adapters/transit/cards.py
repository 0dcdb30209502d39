"""Transit cards: card numbers, their keyed hash, and linking a card to a resident with proof
that the resident holds it (carbon.services.linking: pending until the operator confirms it
or the resident enters the operator's one-time code); the card's earlier trips inside the
claim window are credited on confirmation."""

import hmac
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from carbon.adapters.transit.models import TransitCard
from carbon.adapters.transit.trips import transit_trips_credit
from carbon.errors import DomainError, ErrorCode
from carbon.models import Claim, Consent, ConsentScope, Partner, User
from carbon.services import linking
from carbon.services.partners import hmac_hex
from carbon.services.people import consent_grant, resident_lock

log = logging.getLogger(__name__)


# ASCII digits only: a full-width "６２２７…" would hash differently from what the operator sends.
CARD_DIGITS = re.compile(r"^[0-9]{8,20}$")


class InvalidCardNumber(DomainError):
    code = ErrorCode.INVALID_CARD_NUMBER


class TransitConsentRequired(DomainError):
    code = ErrorCode.CONSENT_REQUIRED
    default_message = _(
        'Linking a card needs your consent to use its taps: send "consent": true, or grant '
        "the transit_card data source first."
    )


class CardNotFound(DomainError):
    # The generic not_found on purpose: someone else's card answers like no card at all.
    code = ErrorCode.NOT_FOUND
    default_message = _("No such card among your linked cards.")


class InvalidCardHash(DomainError):
    code = ErrorCode.INVALID_CARD_HASH
    default_message = _("user_ref is the card's 64-hex-digit card_hash, as in the taps.")


CARD_HASH = re.compile(r"^[0-9a-f]{64}$")


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
    """Ask to link a card to a resident (known by its keyed hash and last four digits only).

    The link is pending and earns nothing until the operator confirms it or the resident
    enters the operator's code (transit_card_confirm_*). Asking again for the same card
    returns the resident's link as it is (pending or confirmed). Whether someone else linked
    the card is never said: the proof decides who holds it.
    """

    number = card_number_normalise(card_number)
    digest = card_hash(number)
    label = (label or "").strip()[:80]
    with transaction.atomic():
        resident_lock(user=user)  # never beside an erasure of this resident
        if consent:
            consent_grant(user=user, scope=ConsentScope.TRANSIT_CARD)
        elif not Consent.objects.in_force(user=user, scope=ConsentScope.TRANSIT_CARD):
            raise TransitConsentRequired()
        card, created = linking.link_request(
            model=TransitCard,
            user=user,
            account={"card_hash": digest},
            fields={"label": label, "last_digits": number[-4:]},
            now=now,
        )
    return CardLinked(card=card, created=created, claims=[], expired_trips=0)


def _credit_earlier(card: TransitCard, now: datetime | None) -> CardLinked:
    # Outside the confirming transaction: each trip is its own claim (idempotent by trip).
    outcome = transit_trips_credit(card_hashes=[card.card_hash], now=now)
    return CardLinked(
        card=card, created=False, claims=outcome.claims, expired_trips=outcome.expired
    )


def transit_card_confirm_by_operator(
    *, partner: Partner, link_token: str, user_ref: str, now: datetime | None = None
) -> CardLinked:
    """A transit operator confirms that its customer holding the card `user_ref` (the card
    hash, as in its taps) asked to link it with this token. The card's earlier trips inside
    the claim window are credited now. Confirming again changes nothing."""
    digest = _card_hash_of(user_ref)
    token = str(link_token or "").strip().upper()
    card = TransitCard.objects.filter(link_token=token).first() if token else None
    if card is None or partner.kind != Partner.Kind.TRANSIT_OPERATOR:
        raise linking.UnknownLinkToken()
    if not hmac.compare_digest(card.card_hash, digest):
        raise linking.LinkRefMismatch()
    card = linking.link_confirm_by_partner(link=card, now=now)
    return _credit_earlier(card, now)


def transit_card_code_issue(
    *, partner: Partner, user_ref: str, now: datetime | None = None
) -> linking.IssuedLinkCode:
    """A one-time code for the pending links of the card `user_ref` (its card hash), which
    the operator shows only to the card's holder (its app, the card's statement)."""
    if partner.kind != Partner.Kind.TRANSIT_OPERATOR:
        raise linking.NoPendingLink()
    digest = _card_hash_of(user_ref)
    return linking.link_code_issue(pending=TransitCard.objects.filter(card_hash=digest), now=now)


def transit_card_confirm_with_code(
    *, user: User, card_id: Any, code: str, now: datetime | None = None
) -> CardLinked:
    """The resident enters the code the operator showed the card's holder."""
    card = _own(user=user, card_id=card_id)
    card = linking.link_confirm_with_code(link=card, code=code, now=now)
    return _credit_earlier(card, now)


def _card_hash_of(user_ref: str) -> str:
    digest = str(user_ref or "").strip().lower()
    if not CARD_HASH.match(digest):
        raise InvalidCardHash()
    return digest


def _own(*, user: User, card_id: Any) -> TransitCard:
    card = TransitCard.objects.filter(pk=card_id, user=user, unlinked_at__isnull=True).first()
    if card is None:
        raise CardNotFound()
    return card


def transit_card_unlink(*, user: User, card_id: Any) -> TransitCard:
    """Unlink one of the resident's cards (or cancel a pending link); later trips wait for
    a new link."""
    card = _own(user=user, card_id=card_id)
    try:
        linking.link_end(link=card)
    except linking.LinkNotFound:
        raise CardNotFound() from None
    card.refresh_from_db()
    return card


def transit_cards_of(*, user: User, now: datetime | None = None):
    """The resident's cards: linked ones, and those still waiting for proof."""
    now = now or timezone.now()
    return TransitCard.objects.filter(user=user).visible(now=now).order_by("-linked_at")
