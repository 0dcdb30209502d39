"""Acting as the payer's browser (confirm a PaymentIntent with a test card), as Stripe's
webhook delivery (post a captured signed body to our endpoint) and as the outbox worker in the
payment tests, and a row of each payments model made by the real flows over the local Stripe
server (for the admin's permission tests)."""

from __future__ import annotations

from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from carbon.services.ledger_check import ledger_check
from rewards.payments.gateway import stripe_client
from rewards.payments.models import Payment
from rewards.payments.outbox import stripe_requests_sweep
from rewards.payments.reconcile import payments_reconcile
from rewards.payments.services import payment_refund_request
from rewards.pool.models import PoolSale, SaleStatus
from rewards.settlements.models import Settlement, SettlementStatus
from rewards.settlements.services import payout_account_connect, settlements_run
from rewards.sponsorships.models import Sponsorship, SponsorshipStatus
from tests.carbon.api_helpers import client_for
from tests.rewards.payments.factories import (
    buyer_with_manager,
    pool_with,
    redeemed_line,
    sponsor_with_manager,
)
from tests.stripe_server import Delivery, LocalStripe

WEBHOOK = "/api/v1/payments/stripe/webhook"


def pay(payment: Payment, card: str = "4242424242424242") -> str:
    """What the payer's browser does with the client secret: confirm with a card."""
    payment.refresh_from_db()
    client = stripe_client()
    method = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    client.v1.payment_intents.update(payment.stripe_id, params={"payment_method": method.id})
    return client.v1.payment_intents.confirm(payment.stripe_id).status


def deliver(api_client, delivery: Delivery):
    return api_client.post(
        WEBHOOK,
        data=delivery.body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=delivery.signature,
    )


def work() -> int:
    """What the outbox worker does (its tasks are queued at commit, which a test transaction
    never reaches): send every due Stripe call."""
    return stripe_requests_sweep()


def assert_books_balance() -> None:
    assert ledger_check() == []
    result = payments_reconcile()
    assert result.mismatches == []
    call_command("payments_reconcile", verbosity=0)


def payments_admin_rows(stripe: LocalStripe) -> None:
    """A row of each payments model, made through the API and the services over the local
    Stripe server (the `stripe_server` fixture): a sponsorship and a pool sale, both paid by
    card and confirmed by webhook, a refund of part of the sponsorship, and a merchant's
    connected account and its settlement, paid by transfer."""
    _, sponsor_manager = sponsor_with_manager()
    funded = client_for(sponsor_manager).post(
        "/api/v1/rewards/sponsorships", {"amount_fen": 200_00}, format="json"
    )
    assert funded.status_code == 201, funded.content
    sponsorship = Sponsorship.objects.get(pk=funded.json()["id"])
    pool = pool_with(2)
    _, buyer_manager = buyer_with_manager()
    bought = client_for(buyer_manager).post(
        "/api/v1/rewards/pool-purchases", {"pool": pool.pk, "tonnes": 1}, format="json"
    )
    assert bought.status_code == 201, bought.content
    sale = PoolSale.objects.get(pk=bought.json()["id"])
    for payment in (sponsorship.payment, sale.payment):
        assert pay(payment) == "succeeded"
    for delivery in stripe.wait_for("payment_intent.succeeded", count=2):
        assert deliver(APIClient(), delivery).status_code == 200
    sponsorship.refresh_from_db()
    sale.refresh_from_db()
    assert sponsorship.status == SponsorshipStatus.CREDITED
    assert sale.status == SaleStatus.COMPLETED

    payment_refund_request(
        payment_id=sponsorship.payment_id, amount_fen=50_00, reason="asked", actor=None
    )
    line = redeemed_line()
    payout_account_connect(merchant=line.merchant)
    work()
    today = timezone.localdate()
    settlements_run(period_start=today - timedelta(days=30), period_end=today + timedelta(days=1))
    work()
    assert Settlement.objects.get(merchant=line.merchant).status == SettlementStatus.PAID
