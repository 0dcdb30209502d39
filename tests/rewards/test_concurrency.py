"""Redemptions under real concurrency, on PostgreSQL: threads with their own connections,
released together on a barrier (tests/carbon/test_ledger_concurrency.py's pattern)."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from carbon.errors import DomainError
from carbon.models import Account, AccountKind, Transfer, TransferFlag
from carbon.services.ledger_check import ledger_check
from rewards.merchants.models import MerchantRedemption
from rewards.merchants.redemptions import merchant_redeem
from rewards.offers.models import Offer
from rewards.vouchers.models import Voucher
from rewards.vouchers.services import voucher_cancel, voucher_issue
from tests.carbon.factories import UserFactory
from tests.carbon.test_ledger_concurrency import run_together
from tests.rewards.factories import MerchantFactory, OfferFactory, StaffFactory, fund

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_three_hundred_residents_for_a_hundred_units_exactly_a_hundred_succeed(
    transactional_db, settings
):
    settings.LEDGER_SYSTEM_SHARDS = 4
    offer = OfferFactory(stock_total=100, price_g=50)
    residents = UserFactory.create_batch(300)
    for resident in residents:
        fund(resident, 200)

    results = run_together(
        300,
        lambda i: voucher_issue(user=residents[i], offer_id=offer.pk, idempotency_key=f"k-{i}"),
    )

    errors = [r for r in results if isinstance(r, Exception)]
    assert {type(e).__name__ for e in errors} <= {"OutOfStock"}, errors[:3]
    assert {e.code.value for e in errors} <= {"out_of_stock"}
    assert (len(results) - len(errors), len(errors)) == (100, 200)
    assert Offer.objects.get(pk=offer.pk).stock_left == 0
    assert Voucher.objects.count() == 100
    # No hold left behind by the refused: exactly the winners' grams are pending.
    assert Transfer.objects.filter(flag=TransferFlag.PENDING).count() == 100
    pending = Account.objects.residents().aggregate(s=Sum("debits_pending"))["s"]
    assert pending == 100 * 50
    assert ledger_check() == []


def test_concurrent_retries_of_one_key_issue_one_voucher(transactional_db):
    offer = OfferFactory(stock_total=10)
    resident = UserFactory()
    fund(resident, 1000)

    results = run_together(
        20, lambda i: voucher_issue(user=resident, offer_id=offer.pk, idempotency_key="same")
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    assert len({voucher.pk for voucher, _ in results}) == 1
    assert sorted(created for _, created in results) == [False] * 19 + [True]
    assert Offer.objects.get(pk=offer.pk).stock_left == 9
    assert Account.objects.get(user=resident).debits_pending == offer.price_g
    assert ledger_check() == []


def test_two_tills_scanning_one_voucher_exactly_one_succeeds(transactional_db):
    merchant = MerchantFactory()
    offer = OfferFactory(partner=merchant)
    tills = [StaffFactory(merchant=merchant) for _ in range(2)]
    resident = UserFactory()
    fund(resident, 500)
    vouchers = [
        voucher_issue(user=resident, offer_id=offer.pk, idempotency_key=f"v-{n}")[0]
        for n in range(5)
    ]

    for voucher in vouchers:
        results = run_together(
            2,
            lambda i, code=voucher.code: merchant_redeem(
                staff=tills[i].user, merchant=merchant, code=code
            ),
        )
        refused = [r for r in results if isinstance(r, DomainError)]
        assert [r.code.value for r in refused] == ["voucher_used"], results
        assert len([r for r in results if isinstance(r, MerchantRedemption)]) == 1

    assert MerchantRedemption.objects.count() == 5
    assert Account.objects.get(user=resident).debits_posted == 5 * offer.price_g
    assert ledger_check() == []


def test_a_cancel_racing_a_till_resolves_the_hold_once(transactional_db):
    merchant = MerchantFactory()
    offer = OfferFactory(partner=merchant, stock_total=20)
    till = StaffFactory(merchant=merchant)
    resident = UserFactory()
    fund(resident, 2000)

    for n in range(10):
        voucher, _ = voucher_issue(user=resident, offer_id=offer.pk, idempotency_key=f"c-{n}")
        work = [
            lambda v=voucher: voucher_cancel(user=resident, voucher_id=v.pk),
            lambda v=voucher: merchant_redeem(staff=till.user, merchant=merchant, code=v.code),
        ]
        results = run_together(2, lambda i, work=work: work[i]())
        outcomes = sorted(type(r).__name__ for r in results)
        assert outcomes in (
            ["MerchantRedemption", "NotCancellable"],
            ["Voucher", "VoucherCancelled"],
        ), results

    redeemed = MerchantRedemption.objects.count()
    cancelled = Voucher.objects.filter(status="cancelled").count()
    assert redeemed + cancelled == 10
    assert Offer.objects.get(pk=offer.pk).stock_left == 20 - redeemed
    redemption = Account.objects.filter(kind=AccountKind.REDEMPTION).aggregate(
        s=Sum("credits_posted")
    )
    assert redemption["s"] == redeemed * offer.price_g
    assert ledger_check() == []
