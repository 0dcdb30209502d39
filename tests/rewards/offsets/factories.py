"""Factories of the offsets tests: a bank programme (Wuhan's terms: 2 CNY per kg, green
travel only) and a resident's green-travel and waste points."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from carbon.services.ledger import ledger_award
from rewards.offsets.models import BankProgramme
from tests.carbon.api_helpers import new_key


class BankProgrammeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BankProgramme

    name = factory.Sequence(lambda n: f"Green travel offset {n}")
    cny_per_kg = Decimal("2")
    min_grams = 100
    monthly_cap_g = 5_000
    budget_fen = 1_000_000
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))


def award(user, grams: int, category: str = "green_travel", days: int = 60):
    return ledger_award(
        user=user,
        amount_g=grams,
        category=category,
        idempotency_key=new_key(),
        description="test award",
        expires_at=timezone.now() + timedelta(days=days),
    )
