"""Fixtures of the payment tests: the local Stripe server (started once per session, emptied
for each test), settings pointing the gateway at it, Celery running tasks in the caller, and
helpers that act as the payer's browser (confirm a PaymentIntent with a test card) and as
Stripe's webhook delivery (post a captured signed body to our endpoint)."""

from __future__ import annotations

import pytest
from celery import current_app
from django.core.management import call_command

from carbon.services.ledger_check import ledger_check
from rewards.payments.gateway import stripe_client
from rewards.payments.models import Payment
from rewards.payments.outbox import stripe_requests_sweep
from rewards.payments.reconcile import payments_reconcile
from tests.stripe_server import SECRET_KEY, WEBHOOK_SECRET, Delivery, LocalStripe, local_stripe

WEBHOOK = "/api/v1/payments/stripe/webhook"


@pytest.fixture(scope="session")
def stripe_session_server():
    with local_stripe() as server:
        yield server


@pytest.fixture
def stripe_server(stripe_session_server: LocalStripe, settings) -> LocalStripe:
    stripe_session_server.reset()
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_API_BASE = stripe_session_server.url
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    settings.STRIPE_LEASE_SECONDS = 1
    stripe_session_server.slow_seconds = 1.5
    return stripe_session_server


@pytest.fixture(autouse=True)
def _tasks_run_in_process():
    conf = current_app.conf
    before = conf.task_always_eager
    conf.task_always_eager = True
    yield
    conf.task_always_eager = before


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
