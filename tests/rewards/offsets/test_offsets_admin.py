"""The offsets in the admin: staff without `rewards.void_offset` cannot void an offset (the
action is hidden, and posting it changes nothing); with it, the hold is voided and the
points come back. Programmes are edited with the model permissions only. And seed_demo adds
the demo bank's programme once."""

from __future__ import annotations

import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from carbon.services.ledger import account_for_user
from carbon.services.ledger_check import ledger_check
from rewards.offsets.demo import DEMO_BANK, DEMO_PROGRAMME
from rewards.offsets.models import BankProgramme, Offset
from tests.carbon.factories import UserFactory
from tests.rewards.offsets.flows import linked, request_offset

pytestmark = pytest.mark.django_db

REASON = {"apply": "1", "note": "The bank closed this loan."}


def staff(*codenames: str) -> Client:
    user = UserFactory(is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="rewards", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


def void(client: Client, offset: Offset):
    return client.post(
        reverse("admin:rewards_offset_changelist"),
        {"action": "void", ACTION_CHECKBOX_NAME: [offset.pk], **REASON},
    )


@pytest.fixture
def offset(saver, saver_api, programme, bank) -> Offset:
    linked(saver_api, programme, bank)
    request_offset(saver_api, programme, 1_000)
    return Offset.objects.get()


def test_staff_without_the_void_permission_cannot_void(offset, saver):
    client = staff("view_offset")
    listing = client.get(reverse("admin:rewards_offset_changelist"))
    assert listing.status_code == 200 and b'value="void"' not in listing.content
    void(client, offset)
    offset.refresh_from_db()
    assert offset.status == "requested"
    assert account_for_user(user=saver).available_g == 4_000


def test_staff_with_the_void_permission_void_with_a_reason(offset, saver):
    client = staff("view_offset", "void_offset")
    assert b'value="void"' in client.get(reverse("admin:rewards_offset_changelist")).content
    assert void(client, offset).status_code == 302
    offset.refresh_from_db()
    assert offset.status == "failed" and "The bank closed this loan." in offset.bank_reason
    assert account_for_user(user=saver).available_g == 5_000
    assert ledger_check() == []


def test_programmes_are_edited_with_the_model_permissions_only(programme):
    url = reverse("admin:rewards_bankprogramme_change", args=[programme.pk])
    assert staff("view_bankprogramme").post(url, {"name": "x"}).status_code == 403
    assert staff().get(reverse("admin:rewards_offsetbatch_changelist")).status_code == 403
    assert (
        staff("view_offsetbatch").get(reverse("admin:rewards_offsetbatch_changelist")).status_code
        == 200
    )


def test_seed_demo_adds_the_demo_banks_programme_once():
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    programme = BankProgramme.objects.get(name=DEMO_PROGRAMME)
    assert programme.bank.name == DEMO_BANK and str(programme.cny_per_kg) == "2.0000"
    assert programme.categories == ["green_travel"]
    assert BankProgramme.objects.count() == 1
