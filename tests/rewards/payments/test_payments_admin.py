"""The money pages of the admin: a refund needs `rewards.refund_payment` and a manual
settlement `rewards.run_settlement`; staff without them are refused and nothing changes;
with them, the same services run."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from rewards.payments.models import Payment, PaymentRefund
from rewards.settlements.models import Settlement
from rewards.sponsorships.models import Sponsorship
from tests.carbon.api_helpers import client_for
from tests.carbon.factories import UserFactory
from tests.rewards.payments.factories import redeemed_line, sponsor_with_manager
from tests.rewards.payments.flows import assert_books_balance, deliver, pay, work

pytestmark = pytest.mark.django_db
PAYMENTS = reverse("admin:rewards_payment_changelist")
REASON = {"apply": "1", "note": "The sponsor asked for its money back."}


def staff(*perms: str) -> Client:
    user = UserFactory(is_staff=True)
    user.user_permissions.set(
        Permission.objects.get(content_type__app_label="rewards", codename=codename)
        for codename in perms
    )
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def paid(stripe_server) -> Payment:
    sponsor, manager = sponsor_with_manager()
    body = (
        client_for(manager)
        .post("/api/v1/rewards/sponsorships", {"amount_fen": 200_00}, format="json")
        .json()
    )
    sponsorship = Sponsorship.objects.get(pk=body["id"])
    pay(sponsorship.payment)
    deliver(APIClient(), stripe_server.wait_for("payment_intent.succeeded")[0])
    return Payment.objects.get(pk=sponsorship.payment_id)


def _refund(client, payment, data):
    return client.post(PAYMENTS, {"action": "refund", ACTION_CHECKBOX_NAME: [payment.pk], **data})


def test_staff_without_the_refund_permission_are_refused(paid):
    client = staff("view_payment")
    assert 'value="refund"' not in client.get(PAYMENTS).content.decode()
    for data in ({"index": "0"}, REASON):
        _refund(client, paid, data)
    request = RequestFactory().post("/", {"action": "refund", **REASON})
    request.user = client.user
    request._messages = CookieStorage(request)
    with pytest.raises(PermissionDenied):
        admin.site._registry[Payment].refund(request, Payment.objects.all())
    assert not PaymentRefund.objects.exists()


def test_staff_with_the_refund_permission_refund_through_the_service(paid):
    client = staff("view_payment", "refund_payment")
    answer = _refund(client, paid, REASON)
    assert answer.status_code in (200, 302)
    work()
    refund = PaymentRefund.objects.get()
    assert refund.status == "succeeded" and refund.amount_fen == 200_00
    assert Sponsorship.objects.get().sponsor.budget_fen == 0
    assert_books_balance()


def test_manual_settlement_needs_its_permission(stripe_server):
    from rewards.settlements.services import payout_account_connect, settlements_run

    line = redeemed_line(value=Decimal("3.00"))
    payout_account_connect(merchant=line.merchant)
    work()
    today = timezone.localdate()
    settlements_run(period_start=today - timedelta(days=40), period_end=today - timedelta(days=35))
    # A settlement row to select is needed by the admin's action form: make one elsewhere.
    other = redeemed_line(value=Decimal("1.00"))
    payout_account_connect(merchant=other.merchant)
    work()
    settlements_run(period_start=today - timedelta(days=5), period_end=today + timedelta(days=1))
    work()
    before = Settlement.objects.count()
    changelist = reverse("admin:rewards_settlement_changelist")
    request = RequestFactory().post("/")
    request.user = staff("view_settlement").user
    request._messages = CookieStorage(request)
    with pytest.raises(PermissionDenied):
        admin.site._registry[Settlement].settle_last_month(request, Settlement.objects.all())
    client = staff("view_settlement")
    assert 'value="settle_last_month"' not in client.get(changelist).content.decode()
    assert Settlement.objects.count() == before
    allowed = staff("view_settlement", "run_settlement")
    assert 'value="settle_last_month"' in allowed.get(changelist).content.decode()
    answer = allowed.post(
        changelist,
        {"action": "settle_last_month", ACTION_CHECKBOX_NAME: [Settlement.objects.first().pk]},
    )
    assert answer.status_code == 302
