"""Pooled reduction sales and merchant settlements, end to end over HTTP against the local
Stripe server (Connect accounts and transfers are the harness's additions)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from carbon.services.ledger import enterprise_account
from rewards.merchants.models import MerchantRedemption
from rewards.payments.services import payment_refund_request
from rewards.pool.models import GRAMS_PER_TONNE, PoolSale, SaleStatus
from rewards.settlements.models import Settlement, SettlementStatus
from rewards.settlements.services import payout_account_connect, settlements_run
from tests.carbon.api_helpers import assert_error, client_for
from tests.rewards.factories import StaffFactory
from tests.rewards.payments.factories import buyer_with_manager, pool_with, redeemed_line
from tests.rewards.payments.flows import assert_books_balance, deliver, pay, work

URL = "/api/v1/rewards/pool-purchases"
pytestmark = pytest.mark.django_db


def _buy(manager, pool, tonnes):
    return client_for(manager).post(URL, {"pool": pool.pk, "tonnes": tonnes}, format="json")


def test_an_enterprise_buys_tonnes_gets_a_certificate_and_a_refund_moves_them_back(stripe_server):
    pool = pool_with(3)
    buyer, manager = buyer_with_manager()
    response = _buy(manager, pool, 2)
    assert response.status_code == 201, response.content
    assert response.json()["amount_fen"] == 2 * 60_00
    sale = PoolSale.objects.get(pk=response.json()["id"])
    pay(sale.payment)
    deliver(APIClient(), stripe_server.wait_for("payment_intent.succeeded")[0])
    sale.refresh_from_db()
    assert sale.status == SaleStatus.COMPLETED
    assert enterprise_account(partner=buyer.partner).available_g == 2 * GRAMS_PER_TONNE
    assert enterprise_account(partner=pool.keeper).available_g == 1 * GRAMS_PER_TONNE
    certificate = client_for(manager).get(f"{URL}/{sale.pk}/certificate")
    assert certificate.status_code == 200 and certificate.content[:8] == b"\x89PNG\r\n\x1a\n"
    # More than is left is refused before any payment.
    assert_error(_buy(manager, pool, 2), 409, "pool_short")
    assert_books_balance()

    payment_refund_request(payment_id=sale.payment_id, amount_fen=None, reason="x", actor=None)
    work()
    sale.refresh_from_db()
    assert sale.status == SaleStatus.REFUNDED
    assert enterprise_account(partner=buyer.partner).available_g == 0
    assert enterprise_account(partner=pool.keeper).available_g == 3 * GRAMS_PER_TONNE
    assert_books_balance()


def test_two_buyers_paying_for_the_last_tonne_the_second_is_refunded(stripe_server):
    pool = pool_with(1)
    (_, first), (_, second) = buyer_with_manager(), buyer_with_manager()
    sales = [PoolSale.objects.get(pk=_buy(m, pool, 1).json()["id"]) for m in (first, second)]
    for sale in sales:
        pay(sale.payment)
    for delivery in stripe_server.wait_for("payment_intent.succeeded", count=2):
        deliver(APIClient(), delivery)
    work()
    statuses = sorted(PoolSale.objects.values_list("status", flat=True))
    assert statuses == [SaleStatus.COMPLETED, SaleStatus.REFUNDED]
    assert_books_balance()


def test_only_a_buyer_manager_buys_and_only_its_own_purchases_are_seen(stripe_server):
    pool = pool_with(2)
    buyer, manager = buyer_with_manager()
    clerk = StaffFactory(merchant=buyer.partner, is_manager=False).user
    assert _buy(clerk, pool, 1).status_code == 403
    assert_error(_buy(manager, pool, 0), 400, "invalid")
    mine = _buy(manager, pool, 1).json()["id"]
    _, other = buyer_with_manager()
    assert client_for(other).get(f"{URL}/{mine}").status_code == 404
    assert client_for(manager).get(f"{URL}/{mine}/certificate").status_code == 404  # unpaid


def test_merchants_are_settled_once_per_period_by_transfer(stripe_server):
    line = redeemed_line(value=Decimal("5.00"))
    merchant = line.merchant
    redeemed_line(merchant=merchant, value=Decimal("2.50"))
    payout_account_connect(merchant=merchant)
    work()
    today = timezone.localdate()
    run = settlements_run(
        period_start=today - timedelta(days=30), period_end=today + timedelta(days=1)
    )
    assert [s.amount_fen for s in run.created] == [750]
    work()
    settlement = Settlement.objects.get()
    assert settlement.status == SettlementStatus.PAID and settlement.transfer_id.startswith("tr_")
    assert MerchantRedemption.objects.filter(settled_at__isnull=True).count() == 0
    # Again for the same period, or a later one: nothing more is owed, nothing is sent.
    assert (
        settlements_run(
            period_start=today - timedelta(days=30), period_end=today + timedelta(days=1)
        ).created
        == []
    )
    assert (
        settlements_run(
            period_start=today + timedelta(days=1), period_end=today + timedelta(days=2)
        ).created
        == []
    )
    # The transfer.created webhook after the worker's answer changes nothing.
    deliver(APIClient(), stripe_server.wait_for("transfer.created")[0])
    assert len(stripe_server.events("transfer.created")) == 1
    staff = StaffFactory(merchant=merchant).user
    statement = client_for(staff).get("/api/v1/merchant/settlements").json()["results"]
    assert [(s["amount_fen"], s["status"], s["lines"]) for s in statement] == [(750, "paid", 2)]
    assert (
        client_for(StaffFactory().user).get("/api/v1/merchant/settlements").json()["results"] == []
    )
    assert_books_balance()
