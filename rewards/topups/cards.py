"""The card a top-up is for: the number the resident typed must be one of their linked cards
(the core keeps only its keyed hash), and is kept encrypted only until the top-up settles."""

from __future__ import annotations

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings

from carbon.adapters.transit.cards import card_hash, card_number_normalise
from carbon.adapters.transit.models import TransitCard
from carbon.models import User
from rewards.topups.errors import CardNotLinked


def _cipher() -> MultiFernet:
    # The partner secrets key, as carbon.services.partners uses it: the first key encrypts,
    # every one decrypts, so a rotation keeps queued top-ups readable.
    keys = [k.strip() for k in settings.PARTNER_SECRETS_KEY.split(",") if k.strip()]
    return MultiFernet([Fernet(k) for k in keys])


def linked_card_of(*, user: User, card_number: str) -> tuple[TransitCard, str]:
    """The resident's linked (confirmed, not unlinked) card with this number, and the number's
    digits. Someone else's card answers like no card at all."""
    digits = card_number_normalise(card_number)  # InvalidCardNumber for anything else
    card = (
        TransitCard.objects.linked()
        .filter(user=user, card_hash=card_hash(digits))
        .order_by("-linked_at")
        .first()
    )
    if card is None:
        raise CardNotLinked()
    return card, digits


def card_number_seal(digits: str) -> bytes:
    return _cipher().encrypt(digits.encode())


def card_number_open(sealed: bytes) -> str:
    """The digits; raises cryptography.fernet.InvalidToken if no configured key opens it."""
    return _cipher().decrypt(bytes(sealed)).decode()
