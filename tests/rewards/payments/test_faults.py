"""Faults: a timeout after Stripe acted, duplicate and out-of-order webhooks, a worker killed
mid-flow. After each, nothing is paid twice, and payments_reconcile and ledger_check pass."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from rewards.merchants.models import MerchantRedemption
from rewards.payments.gateway import stripe_call, stripe_client, stripe_list
from rewards.payments.models import RequestStatus, StripeRequest
from rewards.payments.outbox import _claim, stripe_requests_sweep
from rewards.settlements.models import Settlement, SettlementStatus
from rewards.settlements.services import payout_account_connect, settlements_run
from rewards.sponsorships.models import Sponsorship, SponsorshipStatus
from tests.carbon.api_helpers import client_for
from tests.rewards.payments.factories import redeemed_line, sponsor_with_manager
from tests.rewards.payments.flows import assert_books_balance, deliver, pay, work
from tests.stripe_server import signed_delivery

URL = "/api/v1/rewards/sponsorships"
pytestmark = pytest.mark.django_db


def later(seconds: int = 3600):
    return timezone.now() + timedelta(seconds=seconds)


def test_a_timeout_after_stripe_created_the_payment_intent_creates_no_second_one(stripe_server):
    sponsor, manager = sponsor_with_manager()
    stripe_server.slow_next(r"^/v1/payment_intents$")
    response = client_for(manager).post(URL, {"amount_fen": 500_00}, format="json")
    assert response.status_code == 202 and response.json()["client_secret"] is None
    assert len(stripe_list(kind="payment_intents")) == 1  # Stripe did act
    row = StripeRequest.objects.get()
    assert row.status == RequestStatus.QUEUED and "timeout" in row.last_error.lower()
    stripe_requests_sweep(now=later())  # the retry, with the same key
    assert len(stripe_list(kind="payment_intents")) == 1
    sponsorship = Sponsorship.objects.get()
    detail = client_for(manager).get(f"{URL}/{sponsorship.pk}").json()
    assert detail["client_secret"].startswith("pi_")
    pay(sponsorship.payment)
    deliver(APIClient(), stripe_server.wait_for("payment_intent.succeeded")[0])
    sponsor.refresh_from_db()
    assert sponsor.budget_fen == 500_00
    assert_books_balance()


def test_webhooks_duplicated_and_out_of_order_credit_once(stripe_server):
    sponsor, manager = sponsor_with_manager()
    sponsorship = Sponsorship.objects.get(
        pk=client_for(manager).post(URL, {"amount_fen": 500_00}, format="json").json()["id"]
    )
    pay(sponsorship.payment)
    succeeded = stripe_server.wait_for("payment_intent.succeeded")[0]
    # An earlier declined attempt and a cancel, as Stripe would send them, arriving late.
    stale = []
    for type_ in ("payment_intent.payment_failed", "payment_intent.canceled"):
        event = {**succeeded.event, "id": f"evt_late_{type_[15:]}", "type": type_}
        stale.append(signed_delivery(event))
    failed = stale[0]
    api = APIClient()
    # Success first, then the earlier failure, then both again.
    for delivery in (succeeded, failed, succeeded, *stale, failed):
        assert deliver(api, delivery).status_code == 200
    sponsorship.refresh_from_db()
    sponsor.refresh_from_db()
    assert sponsorship.status == SponsorshipStatus.CREDITED
    assert sponsor.budget_fen == 500_00
    assert_books_balance()


def _settle_one(stripe_server):
    line = redeemed_line(value=Decimal("8.00"))
    payout_account_connect(merchant=line.merchant)
    work()
    today = timezone.localdate()
    return today, line


def test_a_transfer_webhook_before_the_workers_answer_pays_once(stripe_server):
    today, line = _settle_one(stripe_server)
    stripe_server.slow_next(r"^/v1/transfers$")
    settlements_run(period_start=today - timedelta(days=30), period_end=today + timedelta(days=1))
    work()  # times out after Stripe made the transfer
    settlement = Settlement.objects.get()
    assert settlement.status == SettlementStatus.SENDING
    deliver(APIClient(), stripe_server.wait_for("transfer.created")[0])
    settlement.refresh_from_db()
    assert settlement.status == SettlementStatus.PAID
    stripe_requests_sweep(now=later())  # the retry finds it already paid
    assert len(stripe_list(kind="transfers")) == 1
    line.refresh_from_db()
    assert line.settled_at == Settlement.objects.get().paid_at
    assert_books_balance()


def test_a_worker_killed_mid_flow_is_taken_over_and_nothing_is_paid_twice(stripe_server):
    today, _ = _settle_one(stripe_server)
    settlements_run(period_start=today - timedelta(days=30), period_end=today + timedelta(days=1))
    row = StripeRequest.objects.get(operation="transfer.create")
    # The first worker claims the row, makes the transfer at Stripe, and dies before
    # recording anything.
    claimed, _token = _claim(request_id=row.pk, now=timezone.now())
    stripe_call(
        operation=claimed.operation, params=claimed.params, idempotency_key=claimed.idempotency_key
    )
    assert stripe_requests_sweep() == 0  # its lease still holds
    assert stripe_requests_sweep(now=later()) == 1  # then another worker takes over
    assert len(stripe_list(kind="transfers")) == 1
    assert Settlement.objects.get().status == SettlementStatus.PAID
    assert MerchantRedemption.objects.filter(settled_at__isnull=True).count() == 0
    assert_books_balance()


def test_reconcile_reports_an_object_no_record_of_ours_explains(stripe_server):
    assert_books_balance()
    stripe_client().v1.payment_intents.create(
        params={"amount": 100, "currency": "cny", "metadata": {"carbon_owner": "payment:999"}}
    )
    with pytest.raises(CommandError):
        call_command("payments_reconcile", verbosity=0)


def test_reconcile_passes_without_stripe(db, settings):
    settings.STRIPE_SECRET_KEY = ""
    call_command("payments_reconcile", verbosity=0)
