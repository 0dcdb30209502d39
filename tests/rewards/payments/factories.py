"""Factories of the payment tests: sponsors, enterprise buyers and a pool with grams, each
with a manager login (partner staff are MerchantStaff profiles)."""

from __future__ import annotations

from carbon.models import AccountKind, Partner
from carbon.services.ledger import enterprise_account, ledger_move, system_account
from rewards.pool.models import GRAMS_PER_TONNE, EnterpriseBuyer, Pool
from rewards.sponsorships.models import Sponsor
from tests.carbon.factories import PartnerFactory
from tests.rewards.factories import MerchantFactory, StaffFactory


def sponsor_with_manager() -> tuple[Sponsor, object]:
    sponsor = Sponsor.objects.create(partner=MerchantFactory())
    return sponsor, StaffFactory(merchant=sponsor.partner, is_manager=True).user


def buyer_with_manager() -> tuple[EnterpriseBuyer, object]:
    buyer = EnterpriseBuyer.objects.create(partner=PartnerFactory(kind=Partner.Kind.PLATFORM))
    return buyer, StaffFactory(merchant=buyer.partner, is_manager=True).user


def pool_with(tonnes: int, *, price_fen: int = 60_00) -> Pool:
    keeper = PartnerFactory(kind=Partner.Kind.PLATFORM)
    ledger_move(
        from_account=system_account(kind=AccountKind.ISSUANCE, shard=0),
        to_account=enterprise_account(partner=keeper),
        amount_g=tonnes * GRAMS_PER_TONNE,
        idempotency_key=f"test-pool-{keeper.pk}",
        description="pooled for a test",
    )
    return Pool.objects.create(
        name=f"pool {keeper.pk}", keeper=keeper, price_fen_per_tonne=price_fen
    )


def redeemed_line(*, merchant=None, value=None):
    """A voucher of `merchant` issued to a funded resident and redeemed at its till: the
    settlement line the platform owes the merchant `value` CNY for."""
    import uuid
    from decimal import Decimal

    from rewards.merchants.redemptions import merchant_redeem
    from rewards.vouchers.services import voucher_issue
    from tests.carbon.factories import UserFactory
    from tests.rewards.factories import OfferFactory, fund

    offer = OfferFactory(
        **({"partner": merchant} if merchant is not None else {}),
        partner_value_cny=value or Decimal("5.00"),
    )
    resident = UserFactory()
    fund(resident, offer.price_g * 2)
    voucher, _ = voucher_issue(user=resident, offer_id=offer.pk, idempotency_key=str(uuid.uuid4()))
    staff = StaffFactory(merchant=offer.partner).user
    return merchant_redeem(staff=staff, merchant=offer.partner, code=voucher.code)
