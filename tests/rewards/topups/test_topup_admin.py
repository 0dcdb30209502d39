"""The top-ups in the admin: read-only rows showing status, attempts and the last error, never
the card number; refunding a top-up the operator has not answered needs
`rewards.refund_topup`, and staff without it are refused with nothing changed."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from carbon.models import Transfer, TransferFlag
from carbon.services.ledger import balance_for_user
from rewards.topups.models import TopUp, TopUpStatus
from rewards.topups.services import _claim
from tests.carbon.factories import UserFactory
from tests.rewards.topups.factories import send, topup_for

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:rewards_topup_changelist")
REASON = {"apply": "1", "note": "The operator's desk confirmed it never received it."}


@pytest.fixture
def unanswered(card_holder, operator, operator_server):
    """A top-up the operator keeps failing to answer."""
    operator_server.handler = lambda request: (503, {})
    topup = topup_for(card_holder, operator.partner)
    return send(topup.pk)


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


def refund(client: Client, *topups, data=REASON, **kwargs):
    return client.post(
        CHANGELIST,
        {"action": "refund", ACTION_CHECKBOX_NAME: [t.pk for t in topups], **data},
        **kwargs,
    )


def test_the_list_shows_status_attempts_and_the_last_error_but_never_the_card_number(
    unanswered,
):
    page = staff("view_topup").get(CHANGELIST)

    assert page.status_code == 200
    body = page.content.decode()
    assert "HTTP 503" in body and unanswered.reference in body and "7890" in body
    assert "6227001234567890" not in body and "6227 0012" not in body
    assert 'value="refund"' not in body
    change = staff("view_topup").get(reverse("admin:rewards_topup_change", args=[unanswered.pk]))
    assert change.status_code == 200 and "card_number_encrypted" not in change.content.decode()


def test_staff_without_the_refund_permission_are_refused_and_nothing_changes(
    unanswered, card_holder
):
    client = staff("view_topup", "change_topup")
    user = client.user
    before = balance_for_user(user=card_holder).available_g

    # As the changelist posts it (the action is not offered: nothing runs), and as the reason
    # page posts it back (refused).
    for data in ({"index": "0"}, REASON):
        answer = refund(client, unanswered, data=data)
        assert answer.status_code in (200, 302)  # the list again: no such action for them
        assert "reason" not in answer.content.decode().lower()
    # And the action itself refuses a request that reaches it another way.
    request = RequestFactory().post("/", {"action": "refund", **REASON})
    request.user = user
    request._messages = CookieStorage(request)
    with pytest.raises(PermissionDenied):
        admin.site._registry[TopUp].refund(request, TopUp.objects.all())

    unanswered.refresh_from_db()
    assert unanswered.status == TopUpStatus.QUEUED
    assert not Transfer.objects.filter(pending_id=unanswered.hold_id).exists()
    assert balance_for_user(user=card_holder).available_g == before


def test_staff_with_the_refund_permission_give_the_points_back(
    unanswered, card_holder, settled, django_capture_on_commit_callbacks, ledger_is_consistent
):
    client = staff("view_topup", "refund_topup")

    asked = refund(client, unanswered, data={"index": "0"})
    assert asked.status_code == 200 and "reason" in asked.content.decode().lower()
    with django_capture_on_commit_callbacks(execute=True):
        done = refund(client, unanswered)

    assert done.status_code == 302
    unanswered.refresh_from_db()
    assert unanswered.status == TopUpStatus.FAILED
    assert unanswered.last_error.startswith("refunded by staff")
    assert "never received it" in unanswered.last_error
    assert unanswered.card_number_encrypted is None
    assert list(
        Transfer.objects.filter(pending_id=unanswered.hold_id).values_list("flag", flat=True)
    ) == [TransferFlag.VOID_PENDING]
    assert balance_for_user(user=card_holder).available_g == 5000
    assert settled == [(unanswered.pk, "failed")]
    ledger_is_consistent()


def test_a_top_up_in_flight_or_settled_is_not_refunded(
    card_holder, operator, operator_server, unanswered
):
    client = staff("view_topup", "refund_topup")
    in_flight = topup_for(card_holder, operator.partner)
    assert _claim(topup_id=in_flight.pk, now=timezone.now()) is not None
    operator_server.handler = lambda request: (200, {"status": "confirmed", "operator_ref": "x"})
    confirmed = send(topup_for(card_holder, operator.partner).pk)
    assert confirmed.status == TopUpStatus.CONFIRMED

    page = refund(client, in_flight, confirmed, follow=True)

    assert TopUp.objects.get(pk=in_flight.pk).status == TopUpStatus.SENDING
    assert TopUp.objects.get(pk=confirmed.pk).status == TopUpStatus.CONFIRMED
    assert "being sent or is already settled" in page.content.decode()
    assert not Transfer.objects.filter(pending_id=in_flight.hold_id).exists()
