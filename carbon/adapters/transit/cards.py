"""Transit cards: card numbers, their keyed hash, and linking a card to a resident (its
earlier trips inside the claim window are credited on linking)."""

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from carbon.adapters.transit.models import (
    TransitCard,
)
from carbon.adapters.transit.trips import transit_trips_credit
from carbon.errors import DomainError, ErrorCode
from carbon.models import Claim, Consent, ConsentScope, User
from carbon.services.partners import hmac_hex
from carbon.services.people import consent_grant

log = logging.getLogger(__name__)


# ASCII digits only: a full-width "６２２７…" would hash differently from what the operator sends.
CARD_DIGITS = re.compile(r"^[0-9]{8,20}$")


class InvalidCardNumber(DomainError):
    code = ErrorCode.INVALID_CARD_NUMBER


class CardLinkedElsewhere(DomainError):
    code = ErrorCode.CARD_LINKED_TO_ANOTHER_RESIDENT


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
    """Link a card to a resident (by its keyed hash and last four digits only), and credit
    the card's earlier trips that are still inside the claim window.

    Linking the same card again is a no-op that returns the existing link. A card actively
    linked to someone else is refused (409).
    """

    number = card_number_normalise(card_number)
    digest = card_hash(number)
    label = (label or "").strip()[:80]
    with transaction.atomic():
        if consent:
            consent_grant(user=user, scope=ConsentScope.TRANSIT_CARD)
        elif not Consent.objects.in_force(user=user, scope=ConsentScope.TRANSIT_CARD):
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
