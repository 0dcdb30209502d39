"""The certification lifecycle in the admin: each move needs its named permission (a staff
user without it is refused and nothing moves), each is recorded with who and why, moves that
are not allowed are refused with a clear message; expiry and reminders are periodic jobs;
a cell's page shows its achievements charted."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from carbon.errors import DomainError
from tests.carbon.factories import UserFactory
from tests.zerowaste.factories import CellFactory, IndicatorFactory, campaign_with_candidates
from zerowaste.campaigns.models import Campaign
from zerowaste.cells.admin import ACTIONS
from zerowaste.cells.lifecycle import cell_transition, cells_expire, cells_remind
from zerowaste.cells.models import Achievement, Cell, CellOperator, CellStatus, CellTransition

pytestmark = pytest.mark.django_db

REASON = "Site visit on Tuesday: bins, ledger and sorting checked."


def staff_with(*codenames: str):
    user = UserFactory(is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="zerowaste",
            codename__in=["view_cell", "change_cell", "view_campaign", *codenames],
        )
    )
    client = Client()
    client.force_login(user)
    return user, client


def move(client, cells, action, model="cell"):
    return client.post(
        reverse(f"admin:zerowaste_{model}_changelist"),
        {
            "action": action,
            ACTION_CHECKBOX_NAME: [c.pk for c in cells],
            "apply": "1",
            "note": REASON,
        },
    )


@pytest.mark.parametrize(
    ("action", "permission", "status"),
    [
        ("start_review", "review_cell", CellStatus.APPLIED),
        ("certify", "certify_cell", CellStatus.IN_NOTICE),
        ("suspend", "sanction_cell", CellStatus.CERTIFIED),
    ],
)
def test_each_decision_needs_its_named_permission(action, permission, status):
    cell = CellFactory(applied=status == CellStatus.APPLIED, in_notice=status == "in_notice")
    if status == CellStatus.IN_NOTICE:
        Cell.objects.filter(pk=cell.pk).update(notice_ends_at=timezone.now() - timedelta(hours=1))
    others = {"review_cell", "certify_cell", "sanction_cell"} - {permission}
    _, without = staff_with(*others)

    user_without, without = staff_with(*others)
    listing = without.get(reverse("admin:zerowaste_cell_changelist"))
    assert f'value="{action}"'.encode() not in listing.content  # not offered
    move(without, [cell], action)  # posted anyway: the changelist runs nothing
    request = RequestFactory().post("/", {"apply": "1", "note": REASON})
    request.user = user_without
    with pytest.raises(PermissionDenied):  # and the action refuses a request that reaches it
        run = {a.__name__: a for a in ACTIONS}[action]
        run(admin.site._registry[Cell], request, Cell.objects.all())
    assert Cell.objects.get(pk=cell.pk).status == status
    assert not CellTransition.objects.filter(cell=cell).exists()
    user, allowed = staff_with(permission)
    assert move(allowed, [cell], action).status_code == 302
    moved = CellTransition.objects.get(cell=cell)
    assert (moved.action, moved.actor, moved.reason) == (action, user, REASON)
    assert moved.from_status == status


def test_the_whole_path_with_who_and_why_and_refused_moves():
    reviewer = UserFactory(is_staff=True)
    reviewer.user_permissions.set(
        Permission.objects.filter(codename__in=["review_cell", "certify_cell", "sanction_cell"])
    )
    cell = CellFactory(applied=True)
    now = timezone.now()

    def go(action, at=now):
        return cell_transition(
            cell_id=cell.pk, action=action, actor=reviewer, reason=REASON, now=at
        )

    go("start_review")
    opened = go("open_notice")
    assert opened.notice_ends_at == now + timedelta(days=7)
    with pytest.raises(DomainError) as early:
        go("certify")
    assert early.value.code.value == "cell_transition_not_allowed"
    assert "notice period has not ended" in str(early.value.message)
    certified = go("certify", now + timedelta(days=8))
    assert certified.expires_at == now + timedelta(days=8) + timedelta(days=3 * 365)
    with pytest.raises(DomainError) as wrong:
        go("open_notice", now + timedelta(days=9))
    assert wrong.value.details["allowed_from"] == ["under_review"]
    go("suspend", now + timedelta(days=10))
    go("reinstate", now + timedelta(days=11))
    with pytest.raises(DomainError) as no_reason:
        cell_transition(cell_id=cell.pk, action="revoke", actor=reviewer, reason="  ")
    assert no_reason.value.code.value == "invalid"
    go("revoke", now + timedelta(days=12))
    assert list(
        CellTransition.objects.filter(cell=cell)
        .order_by("at", "id")
        .values_list("to_status", flat=True)
    ) == ["under_review", "in_notice", "certified", "suspended", "certified", "revoked"]
    assert set(CellTransition.objects.values_list("actor", flat=True)) == {reviewer.pk}


def test_expiry_and_reminders_are_periodic_jobs(resident):
    soon = CellFactory()
    CellOperator.objects.create(cell=soon, user=resident)
    Cell.objects.filter(pk=soon.pk).update(expires_at=timezone.now() + timedelta(days=20))
    past = CellFactory()
    Cell.objects.filter(pk=past.pk).update(expires_at=timezone.now() - timedelta(hours=1))

    assert cells_remind() == 1
    assert cells_remind() == 0  # once per certificate and threshold
    assert mail.outbox[0].to == [resident.email]
    assert cells_expire() == 1
    assert Cell.objects.get(pk=past.pk).status == CellStatus.EXPIRED
    expired = CellTransition.objects.get(cell=past)
    assert expired.actor is None and expired.action == "expire"


def test_a_cells_admin_page_charts_its_achievements(admin_client):
    cell = CellFactory()
    indicator = IndicatorFactory(kind=cell.kind)
    month = timezone.localdate().replace(day=1)
    for i in range(3):
        Achievement.objects.create(
            cell=cell,
            indicator=indicator,
            month=(month - timedelta(days=32 * i)).replace(day=1),
            value=Decimal(100 + i),
        )

    page = admin_client.get(reverse("admin:zerowaste_cell_change", args=[cell.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("<circle") == 3 and "<polyline" in html
    assert indicator.name_zh in html


def test_publishing_results_and_running_the_review_need_their_permissions():
    campaign, _ = campaign_with_candidates(1, voting_closes_at=timezone.now() - timedelta(hours=1))
    _, without = staff_with("review_votes")
    move(without, [campaign], "publish", model="campaign")
    assert Campaign.objects.get(pk=campaign.pk).results_published_at is None
    _, without_review = staff_with("publish_results")
    answer = move(without_review, [campaign], "review_now", model="campaign")
    assert b"finding" not in answer.content
