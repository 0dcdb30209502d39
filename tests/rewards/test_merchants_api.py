"""Merchant staff over the API: invited (command, API) with a one-time token, logging in with
the residents' tokens, redeeming their own merchant's vouchers by code or QR (and nobody
else's), refusals with a reason, the day's redemptions and what the platform owes them."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import signing
from django.core.management import CommandError, call_command
from django.utils import timezone

from carbon.models import TransferFlag, User
from carbon.services.people import user_erase
from rewards.merchants.models import MerchantRedemption, MerchantStaff, StaffInvitation
from rewards.vouchers.codes import voucher_qr_payload
from rewards.vouchers.models import Voucher
from tests.carbon.api_helpers import assert_error, bearer, client_for, obtain_tokens
from tests.carbon.factories import UserFactory
from tests.rewards.factories import OfferFactory, StaffFactory
from tests.rewards.helpers import OFFERS, TILL, VOUCHERS, available, pending, redeem

pytestmark = pytest.mark.django_db

ACCEPT = "/api/v1/merchant/invitations/accept"
NEW_PASSWORD = "a long till password"


@pytest.fixture
def voucher(funded_api, offer) -> dict:
    return redeem(funded_api, offer).json()


# --- redeeming at the till -------------------------------------------------------------------


def test_staff_redeem_their_merchants_voucher_by_code_and_the_hold_is_posted(
    funded, staff, staff_api, voucher, ledger_is_consistent
):
    typed = f"{voucher['code'][:4].lower()}-{voucher['code'][4:8]} {voucher['code'][8:]}"

    answer = staff_api.post(TILL, {"code": typed}, format="json")

    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["voucher"] == voucher["id"] and body["code"] == voucher["code"]
    assert (body["value_cny"], body["settled"]) == ("5.00", False)
    assert body["redeemed_by"] == staff.user.email
    row = Voucher.objects.get(pk=voucher["id"])
    assert row.status == "redeemed" and row.hold.resolution.flag == TransferFlag.POST_PENDING
    assert (available(funded), pending(funded)) == (900, 0)
    line = MerchantRedemption.objects.get()
    assert (line.merchant_id, line.redeemed_by_id, line.value_cny) == (
        staff.merchant_id,
        staff.user_id,
        Decimal("5.00"),
    )
    ledger_is_consistent()


def test_staff_redeem_by_the_qr_payload(staff_api, voucher, ledger_is_consistent):
    answer = staff_api.post(TILL, {"qr": voucher["qr"]}, format="json")

    assert answer.status_code == 201, answer.content
    assert Voucher.objects.get(pk=voucher["id"]).status == "redeemed"
    ledger_is_consistent()


def test_a_forged_altered_or_expired_qr_is_refused_before_any_lookup(staff_api, voucher):
    code = voucher["code"]
    head, signature = voucher["qr"].rsplit(":", 1)
    forged = f"{head}:{'A' * len(signature)}"
    # Another code's payload under this one's signature; a payload signed with another key.
    other_head = voucher_qr_payload(code="3" * 12, expires_at=timezone.now() + timedelta(days=1))
    swapped = f"{other_head.rsplit(':', 1)[0]}:{signature}"
    wrong_key = signing.dumps({"c": code, "e": 2**40}, salt="another purpose")
    expired = voucher_qr_payload(code=code, expires_at=timezone.now() - timedelta(seconds=1))

    for qr in (forged, swapped, wrong_key, expired, "garbage"):
        error = assert_error(staff_api.post(TILL, {"qr": qr}, format="json"), 400, "qr_invalid")
        assert error["details"]["reason"] in ("signature", "expired")
    assert Voucher.objects.get(pk=voucher["id"]).status == "issued"


def test_another_merchants_code_is_not_found_as_if_it_did_not_exist(
    other_staff_api, staff_api, voucher
):
    theirs = assert_error(
        other_staff_api.post(TILL, {"code": voucher["code"]}, format="json"),
        404,
        "voucher_not_found",
    )
    nowhere = assert_error(
        other_staff_api.post(TILL, {"code": "3" * 12}, format="json"), 404, "voucher_not_found"
    )
    assert theirs["message"] == nowhere["message"]
    assert_error(
        other_staff_api.post(TILL, {"qr": voucher["qr"]}, format="json"), 404, "voucher_not_found"
    )
    assert_error(
        staff_api.post(TILL, {"code": "not a code!"}, format="json"), 404, "voucher_not_found"
    )
    assert Voucher.objects.get(pk=voucher["id"]).status == "issued"


def test_used_cancelled_and_expired_vouchers_are_refused_with_their_reason(
    funded_api, staff_api, offer, ledger_is_consistent
):
    used, cancelled, expired = (redeem(funded_api, offer).json() for _ in range(3))
    assert staff_api.post(TILL, {"code": used["code"]}, format="json").status_code == 201
    funded_api.post(f"{VOUCHERS}/{cancelled['id']}/cancel")
    Voucher.objects.filter(pk=expired["id"]).update(expires_at=timezone.now())

    again = assert_error(
        staff_api.post(TILL, {"code": used["code"]}, format="json"), 409, "voucher_used"
    )
    assert "redeemed_at" in again["details"]
    assert_error(
        staff_api.post(TILL, {"code": cancelled["code"]}, format="json"), 409, "voucher_cancelled"
    )
    assert_error(
        staff_api.post(TILL, {"code": expired["code"]}, format="json"), 409, "voucher_expired"
    )
    assert MerchantRedemption.objects.count() == 1
    ledger_is_consistent()


def test_a_code_or_a_qr_but_not_both_nor_neither(staff_api, voucher):
    assert_error(staff_api.post(TILL, {}, format="json"), 400, "invalid")
    both = {"code": voucher["code"], "qr": voucher["qr"]}
    assert_error(staff_api.post(TILL, both, format="json"), 400, "invalid")


# --- who may use which API --------------------------------------------------------------------


def test_residents_are_refused_on_the_merchant_api_and_staff_on_the_residents(
    funded_api, staff_api, voucher
):
    for path in (TILL, "/api/v1/merchant/summary"):
        assert_error(funded_api.get(path), 403, "permission_denied")
    assert_error(funded_api.post(TILL, {"code": voucher["code"]}, format="json"), 403,
                 "permission_denied")  # fmt: skip
    for path in (OFFERS, VOUCHERS):
        assert_error(staff_api.get(path), 403, "residents_only")
    assert Voucher.objects.get(pk=voucher["id"]).status == "issued"


def test_staff_of_an_inactive_merchant_are_refused(staff, staff_api, voucher):
    staff.merchant.is_active = False
    staff.merchant.save()

    assert_error(staff_api.post(TILL, {"code": voucher["code"]}, format="json"), 403,
                 "permission_denied")  # fmt: skip


# --- the day's redemptions and the summary ---------------------------------------------------


def test_the_days_redemptions_and_what_the_platform_owes(funded_api, staff, staff_api, offer):
    other_staff = client_for(StaffFactory(merchant=staff.merchant).user)
    codes = [redeem(funded_api, offer).json()["code"] for _ in range(3)]
    for code, till in zip(codes, (staff_api, other_staff, staff_api), strict=True):
        assert till.post(TILL, {"code": code}, format="json").status_code == 201
    yesterday = MerchantRedemption.objects.order_by("created_at").first()
    MerchantRedemption.objects.filter(pk=yesterday.pk).update(
        created_at=timezone.now() - timedelta(days=1), settled_at=timezone.now()
    )

    today = staff_api.get(TILL)
    before = staff_api.get(TILL, {"date": (timezone.localdate() - timedelta(days=1)).isoformat()})
    summary = staff_api.get("/api/v1/merchant/summary").json()

    assert len(today.json()["results"]) == 2  # both tills', newest first
    assert [r["id"] for r in before.json()["results"]] == [yesterday.pk]
    assert summary == {
        "merchant": "Green Grocer",
        "redemptions": 3,
        "owed_cny": "15.00",
        "unsettled_redemptions": 2,
        "unsettled_cny": "10.00",
        "today_redemptions": 2,
    }
    assert_error(staff_api.get(TILL, {"date": "0001-01-01"}), 400, "invalid")
    assert_error(staff_api.get(TILL, {"date": "yesterday"}), 400, "invalid")


def test_the_settlement_line_survives_the_residents_erasure(
    funded, staff, staff_api, voucher, ledger_is_consistent
):
    assert staff_api.post(TILL, {"code": voucher["code"]}, format="json").status_code == 201

    user_erase(user=funded)

    line = MerchantRedemption.objects.get()
    assert line.voucher.user is None and line.value_cny == Decimal("5.00")
    assert staff_api.get("/api/v1/merchant/summary").json()["owed_cny"] == "5.00"
    assert len(staff_api.get(TILL).json()["results"]) == 1
    ledger_is_consistent()


# --- invitations --------------------------------------------------------------------------------


def test_an_invited_member_sets_a_password_once_and_logs_in_like_a_resident(merchant, voucher):
    out = io.StringIO()
    call_command(
        "merchant_staff_invite", merchant="Green Grocer", email="Till@Example.org", stdout=out
    )
    token = out.getvalue().split("): ", 1)[1].split()[0]
    user = User.objects.get(email="till@example.org")
    assert (user.role, user.partner, user.is_active, user.has_usable_password()) == (
        "merchant_staff",
        merchant,
        False,
        False,
    )

    accepted = client_for(None).post(
        ACCEPT, {"token": token, "password": NEW_PASSWORD}, format="json"
    )
    replayed = client_for(None).post(ACCEPT, {"token": token, "password": "another one 123"},
                                     format="json")  # fmt: skip

    assert accepted.status_code == 200 and accepted.json() == {"email": "till@example.org"}
    assert_error(replayed, 400, "invitation_invalid")
    tokens = obtain_tokens("till@example.org", NEW_PASSWORD)
    till = bearer(tokens["access"])
    assert till.post(TILL, {"code": voucher["code"]}, format="json").status_code == 201
    assert_error(till.get(OFFERS), 403, "residents_only")


def test_an_expired_or_replaced_token_and_a_weak_password_are_refused(merchant):
    out = io.StringIO()
    call_command(
        "merchant_staff_invite", merchant="Green Grocer", email="a@example.org", stdout=out
    )
    first = out.getvalue().split("): ", 1)[1].split()[0]
    out = io.StringIO()
    call_command(
        "merchant_staff_invite", merchant="Green Grocer", email="a@example.org", stdout=out
    )
    second = out.getvalue().split("): ", 1)[1].split()[0]
    anon = client_for(None)

    assert_error(anon.post(ACCEPT, {"token": first, "password": NEW_PASSWORD}, format="json"), 400,
                 "invitation_invalid")  # fmt: skip
    weak = anon.post(ACCEPT, {"token": second, "password": "123"}, format="json")
    assert_error(weak, 400, "invalid")
    StaffInvitation.objects.filter(used_at__isnull=True, revoked_at__isnull=True).update(
        expires_at=timezone.now()
    )
    assert_error(anon.post(ACCEPT, {"token": second, "password": NEW_PASSWORD}, format="json"), 400,
                 "invitation_invalid")  # fmt: skip
    assert not User.objects.get(email="a@example.org").is_active


def test_the_command_refuses_unknown_merchants_non_merchants_and_taken_addresses(merchant, funded):
    with pytest.raises(CommandError, match="No partner"):
        call_command("merchant_staff_invite", merchant="Nobody", email="x@example.org")
    with pytest.raises(CommandError, match="unknown_partner"):
        call_command(
            "merchant_staff_invite",
            merchant=OfferFactory(topup=True).partner.name,
            email="x@example.org",
        )
    with pytest.raises(CommandError, match="email_taken"):
        call_command("merchant_staff_invite", merchant="Green Grocer", email=funded.email)
    assert not User.objects.filter(email="x@example.org").exists()


def test_a_manager_invites_staff_through_the_api_and_a_member_cannot(merchant, staff_api):
    manager = StaffFactory(merchant=merchant, is_manager=True)
    manager_api = client_for(manager.user)

    answer = manager_api.post(
        "/api/v1/merchant/staff", {"email": "new@example.org", "manager": False}, format="json"
    )

    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["email"] == "new@example.org" and body["manager"] is False and body["token"]
    profile = MerchantStaff.objects.get(user__email="new@example.org")
    assert (profile.merchant, profile.invited_by) == (merchant, manager.user)
    assert_error(
        staff_api.post("/api/v1/merchant/staff", {"email": "b@example.org"}, format="json"),
        403,
        "permission_denied",
    )
    resident = UserFactory()
    assert_error(
        manager_api.post("/api/v1/merchant/staff", {"email": resident.email}, format="json"),
        409,
        "email_taken",
    )
