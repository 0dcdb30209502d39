"""The rewards admin: each decision needs its named permission (adjusting stock, redeeming for
a merchant, marking redemptions settled) and a staff user without it is refused with nothing
changed; offers' pictures go through the image pipeline; staff are invited from the admin."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from carbon.models import TransferFlag, User
from rewards.merchants.models import MerchantRedemption, MerchantStaff
from rewards.offers.models import Offer, StockAdjustment
from rewards.vouchers.models import Voucher
from tests.carbon.factories import UserFactory
from tests.carbon.photo_samples import encode, picture
from tests.rewards.helpers import TILL, available, redeem

pytestmark = pytest.mark.django_db

REASON = "The till's network is down; redeemed by phone."


def staff_with(*codenames: str) -> Client:
    user = UserFactory(is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="rewards", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


def act(client: Client, model: str, action: str, rows, **extra):
    return client.post(
        reverse(f"admin:rewards_{model}_changelist"),
        {"action": action, ACTION_CHECKBOX_NAME: [row.pk for row in rows], **extra},
    )


# --- adjusting stock ------------------------------------------------------------------------


def test_adjusting_stock_needs_its_permission(offer):
    without = staff_with("view_offer", "change_offer")

    for extra in ({"index": "0"}, {"apply": "1", "delta": "10", "note": "More came in"}):
        act(without, "offer", "adjust_stock", [offer], **extra)

    assert Offer.objects.get(pk=offer.pk).stock_total == 50
    assert not StockAdjustment.objects.exists()


def test_adjusting_stock_with_a_reason_is_recorded_and_never_below_what_was_issued(
    funded_api, offer
):
    admin = staff_with("view_offer", "change_offer", "adjust_stock")
    redeem(funded_api, offer)

    asks = act(admin, "offer", "adjust_stock", [offer], index="0")
    added = act(admin, "offer", "adjust_stock", [offer], apply="1", delta="10", note="Restock")
    too_many = act(admin, "offer", "adjust_stock", [offer], apply="1", delta="-60", note="Oops")
    withdrawn = act(admin, "offer", "adjust_stock", [offer], apply="1", delta="-59", note="End")

    assert asks.status_code == 200 and b"Restock" not in asks.content
    assert added.status_code == too_many.status_code == withdrawn.status_code == 302
    offer.refresh_from_db()
    assert (offer.stock_total, offer.stock_left) == (1, 0)  # the one issued stays counted
    assert list(StockAdjustment.objects.order_by("id").values_list("delta", "reason")) == [
        (10, "Restock"),
        (-59, "End"),
    ]


def test_a_new_offers_stock_is_all_left_and_its_picture_is_re_encoded(merchant):
    admin = staff_with("add_offer", "view_offer", "change_offer")
    form = {
        "kind": "voucher",
        "title_zh": "竹牙刷",
        "title_en": "Bamboo toothbrush",
        "price_g": "80",
        "stock_total": "30",
        "valid_from_0": "2026-01-01",
        "valid_from_1": "00:00:00",
        "voucher_lifetime": "30 00:00:00",
        "refund_on_expiry": "on",
        "partner": merchant.pk,
        "partner_value_cny": "3.50",
        "is_active": "on",
        "stock_adjustments-TOTAL_FORMS": "0",
        "stock_adjustments-INITIAL_FORMS": "0",
    }
    add = reverse("admin:rewards_offer_add")

    refused = admin.post(
        add, {**form, "image": SimpleUploadedFile("x.png", b"GIF89a not a png", "image/png")}
    )
    assert refused.status_code == 200 and not Offer.objects.filter(title_en="Bamboo toothbrush")
    # A top-up is honoured by a transit operator, not a shop.
    wrong_partner = admin.post(add, {**form, "kind": "transit_topup"})
    assert wrong_partner.status_code == 200 and b"transit_operator" in wrong_partner.content
    assert not Offer.objects.filter(title_en="Bamboo toothbrush")
    accepted = admin.post(
        add, {**form, "image": SimpleUploadedFile("x.png", encode(picture(5), "PNG"), "image/png")}
    )

    assert accepted.status_code == 302, accepted.content[:2000]
    offer = Offer.objects.get(title_en="Bamboo toothbrush")
    assert (offer.stock_total, offer.stock_left) == (30, 30)
    assert offer.image.name.endswith(".jpg") and offer.image.read()[:2] == b"\xff\xd8"


# --- redeeming for a merchant ---------------------------------------------------------------


def test_redeeming_for_a_merchant_needs_its_permission(funded_api, offer):
    voucher = Voucher.objects.get(pk=redeem(funded_api, offer).json()["id"])
    without = staff_with("view_voucher")

    for extra in ({"index": "0"}, {"apply": "1", "note": REASON}):
        act(without, "voucher", "redeem_for_merchant", [voucher], **extra)

    assert Voucher.objects.get(pk=voucher.pk).status == "issued"
    assert not MerchantRedemption.objects.exists()


def test_an_administrator_redeems_for_the_merchant_with_a_reason(
    funded, funded_api, offer, staff_api, ledger_is_consistent
):
    usable, used = (Voucher.objects.get(pk=redeem(funded_api, offer).json()["id"]) for _ in "ab")
    staff_api.post(TILL, {"code": used.code}, format="json")
    admin = staff_with("view_voucher", "redeem_for_merchant")

    done = act(admin, "voucher", "redeem_for_merchant", [usable, used], apply="1", note=REASON)

    assert done.status_code == 302
    line = MerchantRedemption.objects.get(voucher=usable)
    assert (line.merchant, line.on_behalf_reason) == (offer.partner, REASON)
    assert Voucher.objects.get(pk=usable.pk).hold.resolution.flag == TransferFlag.POST_PENDING
    assert MerchantRedemption.objects.count() == 2  # the used one was refused, not redeemed twice
    assert available(funded) == 800
    ledger_is_consistent()


def test_vouchers_are_found_by_code(funded_api, offer):
    voucher = Voucher.objects.get(pk=redeem(funded_api, offer).json()["id"])
    admin = staff_with("view_voucher")

    found = admin.get(reverse("admin:rewards_voucher_changelist"), {"q": voucher.code})

    assert found.status_code == 200 and voucher.code.encode() in found.content


# --- settling -----------------------------------------------------------------------------


def test_marking_redemptions_settled_needs_its_permission(funded_api, offer, staff_api):
    staff_api.post(TILL, {"code": redeem(funded_api, offer).json()["code"]}, format="json")
    line = MerchantRedemption.objects.get()

    act(staff_with("view_merchantredemption"), "merchantredemption", "settle", [line], index="0")
    assert MerchantRedemption.objects.get().settled_at is None

    act(
        staff_with("view_merchantredemption", "settle_redemptions"),
        "merchantredemption",
        "settle",
        [line],
        index="0",
    )
    assert MerchantRedemption.objects.get().settled_at is not None
    assert staff_api.get("/api/v1/merchant/summary").json()["unsettled_cny"] == "0.00"


# --- inviting staff --------------------------------------------------------------------------


def test_staff_are_invited_from_the_admin_and_the_token_is_shown_once(merchant):
    admin = staff_with("add_merchantstaff", "view_merchantstaff")

    answer = admin.post(
        reverse("admin:rewards_merchantstaff_add"),
        {"email": "New@Example.org", "merchant": merchant.pk, "is_manager": "on"},
        follow=True,
    )

    assert answer.status_code == 200
    profile = MerchantStaff.objects.get(user__email="new@example.org")
    assert profile.is_manager and profile.merchant == merchant
    assert b"one-time token" in answer.content
    assert not User.objects.get(email="new@example.org").is_active
    taken = admin.post(
        reverse("admin:rewards_merchantstaff_add"),
        {"email": UserFactory().email, "merchant": merchant.pk},
    )
    assert taken.status_code == 200 and MerchantStaff.objects.count() == 1
    refused = staff_with("view_merchantstaff").post(
        reverse("admin:rewards_merchantstaff_add"),
        {"email": "x@example.org", "merchant": merchant.pk},
    )
    assert refused.status_code == 403 and MerchantStaff.objects.count() == 1
