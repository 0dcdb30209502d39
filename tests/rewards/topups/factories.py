"""Builders for the top-up tests, each through the service that makes the thing in real life:
a resident's linked card, points to spend, and the hold a redemption would place."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db import transaction
from django.test import TestCase
from django.utils import timezone

from carbon.adapters.transit.cards import transit_card_link
from carbon.adapters.transit.models import TransitCard
from carbon.models import Partner, Transfer, User
from carbon.services.ledger import ledger_award, ledger_hold
from carbon.services.linking import link_confirm_by_partner
from rewards.topups.models import TopUp
from rewards.topups.services import topup_request, topup_send, topups_sweep

CARD = "6227 0012 3456 7890"
OTHER_CARD = "6227 0098 7654 3210"


def linked_card(user: User, number: str = CARD) -> TransitCard:
    """A card the resident linked and the operator confirmed."""
    return link_confirm_by_partner(
        link=transit_card_link(user=user, card_number=number, consent=True).card
    )


def points(user: User, grams: int = 5000) -> Transfer:
    return ledger_award(
        user=user,
        amount_g=grams,
        category="green_travel",
        idempotency_key=str(uuid.uuid4()),
        description="award",
        expires_at=timezone.now() + timedelta(days=90),
    )


def hold_for(user: User, grams: int = 500, timeout: timedelta | None = None) -> Transfer:
    return ledger_hold(
        user=user,
        amount_g=grams,
        idempotency_key=str(uuid.uuid4()),
        description="transit top-up",
        timeout=timeout,
    )


def topup_for(
    user: User,
    operator: Partner,
    *,
    grams: int = 500,
    amount="20.00",
    number: str = CARD,
    reference: str | None = None,
) -> TopUp:
    """What the redemption does: hold the points and request the top-up, in one transaction."""
    with transaction.atomic():
        hold = hold_for(user, grams)
        return topup_request(
            user=user,
            hold=hold,
            operator=operator,
            amount_cny=amount,
            card_number=number,
            reference=reference or f"V-{uuid.uuid4().hex[:10].upper()}",
        )


# What a worker does, with what it schedules at commit (the settled signal) run as it would
# be: the tests' own transaction never commits.
def send(topup_id: int, **kw) -> TopUp | None:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return topup_send(topup_id=topup_id, **kw)


def sweep(**kw) -> int:
    with TestCase.captureOnCommitCallbacks(execute=True):
        return topups_sweep(**kw)
