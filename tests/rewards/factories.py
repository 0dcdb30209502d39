"""factory-boy factories for rewards: merchants, offers, merchant staff; and `fund`, which
awards a resident grams through the ledger."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from carbon.models import Partner, User
from carbon.services.ledger import ledger_award
from rewards.merchants.models import MerchantStaff
from rewards.offers.models import Offer, OfferKind
from tests.carbon.factories import PartnerFactory


class MerchantFactory(PartnerFactory):
    name = factory.Sequence(lambda n: f"Merchant {n}")
    kind = Partner.Kind.MERCHANT


class OperatorFactory(PartnerFactory):
    name = factory.Sequence(lambda n: f"Operator {n}")
    kind = Partner.Kind.TRANSIT_OPERATOR


class OfferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Offer

    kind = OfferKind.VOUCHER
    title_zh = factory.Sequence(lambda n: f"代金券 {n}")
    title_en = factory.Sequence(lambda n: f"Voucher {n}")
    terms_zh = "满 30 元可用"
    terms_en = "On a basket of 30 CNY or more"
    price_g = 100
    stock_total = 50
    stock_left = factory.SelfAttribute("stock_total")
    partner = factory.SubFactory(MerchantFactory)
    partner_value_cny = Decimal("5.00")
    valid_from = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    voucher_lifetime = timedelta(days=30)

    class Params:
        topup = factory.Trait(
            kind=OfferKind.TRANSIT_TOPUP, partner=factory.SubFactory(OperatorFactory)
        )
        donation = factory.Trait(
            kind=OfferKind.DONATION,
            donation_project="长江江豚保护 Yangtze porpoise",
            partner=factory.SubFactory(PartnerFactory),
        )
        ticket = factory.Trait(kind=OfferKind.TICKET)


STAFF_PASSWORD = "till password 2026"


class StaffFactory(factory.django.DjangoModelFactory):
    """An active member of a merchant's staff (as after accepting an invitation)."""

    class Meta:
        model = MerchantStaff

    merchant = factory.SubFactory(MerchantFactory)
    is_manager = False
    user = factory.LazyAttribute(lambda o: _staff_user(o.merchant))


def _staff_user(merchant: Partner) -> User:
    user = User(
        email=f"staff-{uuid.uuid4().hex[:8]}@example.org",
        role=User.Role.MERCHANT_STAFF,
        partner=merchant,
    )
    user.set_password(STAFF_PASSWORD)
    user.save()
    return user


def fund(user: User, grams: int, *, days: int = 60) -> None:
    ledger_award(
        user=user,
        amount_g=grams,
        category="green_travel",
        idempotency_key=str(uuid.uuid4()),
        description="test award",
        expires_at=timezone.now() + timedelta(days=days),
    )
