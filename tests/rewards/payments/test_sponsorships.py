"""Sponsor funding over HTTP against the local Stripe server: the budget is credited only by
Stripe's confirmation (webhook), once, and a refund takes it back."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from rewards.payments.models import Payment, PaymentStatus, StripeRequest
from rewards.payments.services import payment_refund_request
from rewards.sponsorships.models import Sponsorship, SponsorshipStatus
from tests.carbon.api_helpers import assert_error, client_for
from tests.carbon.factories import UserFactory
from tests.rewards.factories import StaffFactory
from tests.rewards.payments.factories import sponsor_with_manager
from tests.rewards.payments.flows import assert_books_balance, deliver, pay, work

URL = "/api/v1/rewards/sponsorships"
pytestmark = pytest.mark.django_db


def test_a_sponsor_funds_its_budget_only_when_stripe_confirms(stripe_server):
    sponsor, manager = sponsor_with_manager()
    response = client_for(manager).post(URL, {"amount_fen": 500_00}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["client_secret"].startswith("pi_")
    assert body["status"] == "pending" and body["budget_fen"] == 0
    sponsorship = Sponsorship.objects.get(pk=body["id"])
    assert pay(sponsorship.payment) == "succeeded"
    sponsor.refresh_from_db()
    assert sponsor.budget_fen == 0  # not before the webhook
    (delivery,) = stripe_server.wait_for("payment_intent.succeeded")
    anonymous = APIClient()
    assert deliver(anonymous, delivery).json() == {"received": True, "duplicate": False}
    # Redelivered: nothing more.
    assert deliver(anonymous, delivery).json() == {"received": True, "duplicate": True}
    sponsor.refresh_from_db()
    assert sponsor.budget_fen == 500_00
    detail = client_for(manager).get(f"{URL}/{sponsorship.pk}").json()
    assert detail["status"] == "credited"
    # The idempotency key sent is derived from our record.
    request = StripeRequest.objects.get(owner=f"payment:{sponsorship.payment_id}")
    assert ("POST", "/v1/payment_intents", request.idempotency_key) in stripe_server.requests
    assert_books_balance()


def test_a_refund_takes_the_budget_back_and_cannot_exceed_it(stripe_server):
    sponsor, manager = sponsor_with_manager()
    sponsorship = Sponsorship.objects.get(
        pk=client_for(manager).post(URL, {"amount_fen": 300_00}, format="json").json()["id"]
    )
    pay(sponsorship.payment)
    deliver(APIClient(), stripe_server.wait_for("payment_intent.succeeded")[0])
    refund = payment_refund_request(
        payment_id=sponsorship.payment_id, amount_fen=100_00, reason="asked", actor=None
    )
    work()
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.stripe_id.startswith("re_")
    sponsor.refresh_from_db()
    assert sponsor.budget_fen == 200_00
    with pytest.raises(Exception) as refused:
        payment_refund_request(
            payment_id=sponsorship.payment_id, amount_fen=300_00, reason="too much", actor=None
        )
    assert refused.value.code == "payment_not_refundable"
    assert Payment.objects.get(pk=sponsorship.payment_id).refunded_fen == 100_00
    assert_books_balance()


def test_who_may_fund_and_bad_amounts(stripe_server):
    sponsor, manager = sponsor_with_manager()
    not_manager = StaffFactory(merchant=sponsor.partner, is_manager=False).user
    assert (
        client_for(not_manager).post(URL, {"amount_fen": 500_00}, format="json").status_code == 403
    )
    assert (
        client_for(UserFactory()).post(URL, {"amount_fen": 500_00}, format="json").status_code
        == 403
    )
    assert_error(
        client_for(manager).post(URL, {"amount_fen": 1}, format="json"),
        400,
        "sponsorship_invalid_amount",
    )
    assert not Sponsorship.objects.exists() and not StripeRequest.objects.exists()
    # Another sponsor's funding is not found.
    other_sponsor, other_manager = sponsor_with_manager()
    mine = client_for(manager).post(URL, {"amount_fen": 500_00}, format="json").json()["id"]
    assert client_for(other_manager).get(f"{URL}/{mine}").status_code == 404


def test_without_stripe_the_endpoint_says_payments_are_not_configured(db, settings):
    settings.STRIPE_SECRET_KEY = ""
    sponsor, manager = sponsor_with_manager()
    assert_error(
        client_for(manager).post(URL, {"amount_fen": 500_00}, format="json"),
        503,
        "payments_not_configured",
    )
    assert not Sponsorship.objects.exists()
    assert_books_balance()


def test_a_forged_or_stale_webhook_is_refused(stripe_server):
    sponsor, manager = sponsor_with_manager()
    sponsorship = Sponsorship.objects.get(
        pk=client_for(manager).post(URL, {"amount_fen": 500_00}, format="json").json()["id"]
    )
    pay(sponsorship.payment)
    delivery = stripe_server.wait_for("payment_intent.succeeded")[0]
    forged = delivery.body.replace(b'"amount": 50000', b'"amount": 50001')
    response = APIClient().post(
        "/api/v1/payments/stripe/webhook",
        data=forged,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=delivery.signature,
    )
    assert_error(response, 400, "webhook_signature_invalid")
    assert_error(
        APIClient().post(
            "/api/v1/payments/stripe/webhook", data=delivery.body, content_type="application/json"
        ),
        400,
        "webhook_signature_invalid",
    )
    sponsorship.refresh_from_db()
    assert sponsorship.status == SponsorshipStatus.PENDING
    assert sponsorship.payment.status == PaymentStatus.AWAITING


def test_without_a_webhook_secret_no_delivery_is_accepted(db, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert_error(
        APIClient().post(
            "/api/v1/payments/stripe/webhook", data=b"[null, null]", content_type="application/json"
        ),
        400,
        "webhook_signature_invalid",
    )
