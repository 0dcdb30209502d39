"""A partner's enterprise account: one per partner, and the target of a hold that moves a
resident's grams to the partner (a bank's mortgage-interest offsets) once posted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from carbon.errors import IdempotencyConflict, InsufficientFunds
from carbon.models import Account, AccountKind, Partner
from carbon.services.ledger import (
    account_for_user,
    enterprise_account,
    ledger_award,
    ledger_hold,
    ledger_post,
    ledger_void,
)
from carbon.services.ledger_check import ledger_check
from tests.carbon.api_helpers import new_key
from tests.carbon.factories import PartnerFactory, UserFactory

pytestmark = pytest.mark.django_db


def _award(user, grams, category):
    return ledger_award(
        user=user,
        amount_g=grams,
        category=category,
        idempotency_key=new_key(),
        description="test award",
        expires_at=timezone.now() + timedelta(days=30),
    )


def test_one_enterprise_account_per_partner_and_it_names_the_partner():
    bank = PartnerFactory(kind=Partner.Kind.BANK)
    first = enterprise_account(partner=bank)
    assert enterprise_account(partner=bank).pk == first.pk
    assert first.kind == AccountKind.ENTERPRISE and first.debits_must_not_exceed_credits
    assert enterprise_account(partner=PartnerFactory()).pk != first.pk
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(kind=AccountKind.ENTERPRISE, partner=bank, shard=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(kind=AccountKind.ENTERPRISE)
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(kind=AccountKind.REDEMPTION, shard=99, partner=bank)


def test_a_hold_to_the_enterprise_account_takes_only_the_allowed_categories_and_posts_there():
    resident = UserFactory()
    bank = PartnerFactory(kind=Partner.Kind.BANK)
    target = enterprise_account(partner=bank)
    _award(resident, 300, "waste")
    _award(resident, 500, "green_travel")
    with pytest.raises(InsufficientFunds):
        ledger_hold(
            user=resident,
            amount_g=600,
            to_account=target,
            categories=["green_travel"],
            idempotency_key=new_key(),
            description="offset",
        )
    key = new_key()
    hold = ledger_hold(
        user=resident,
        amount_g=400,
        to_account=target,
        categories=["green_travel"],
        idempotency_key=key,
        description="offset",
    )
    assert hold.credit_account_id == target.pk
    # The same key with another target is another request.
    with pytest.raises(IdempotencyConflict):
        ledger_hold(
            user=resident,
            amount_g=400,
            categories=["green_travel"],
            idempotency_key=key,
            description="offset",
        )
    ledger_post(pending_id=hold.pk)
    target.refresh_from_db()
    assert target.balance_g == 400
    assert account_for_user(user=resident).balance_g == 400  # 300 waste + 100 green travel
    assert ledger_check() == []


def test_a_voided_hold_gives_the_grams_back_and_the_enterprise_account_stays_empty():
    resident = UserFactory()
    target = enterprise_account(partner=PartnerFactory(kind=Partner.Kind.BANK))
    _award(resident, 500, "green_travel")
    hold = ledger_hold(
        user=resident, amount_g=500, to_account=target, idempotency_key=new_key(), description="o"
    )
    ledger_void(pending_id=hold.pk)
    target.refresh_from_db()
    assert (target.balance_g, target.credits_pending) == (0, 0)
    assert account_for_user(user=resident).available_g == 500
    assert ledger_check() == []
