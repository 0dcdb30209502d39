"""Rewards in the personal-data registry: the export shows a resident's vouchers and where
they were redeemed; erasure unlinks them while the ledger and the merchant's settlement
lines stay whole; a staff member's erasure leaves the lines they recorded."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.storage import default_storage

from carbon.models import TransferFlag
from carbon.services.people import user_erase, user_export
from rewards.merchants.models import MerchantRedemption, MerchantStaff
from rewards.offers.models import Offer
from rewards.vouchers.models import Voucher
from tests.rewards.factories import OfferFactory
from tests.rewards.helpers import TILL, redeem

pytestmark = pytest.mark.django_db


def test_the_export_shows_my_vouchers_and_where_they_were_redeemed(
    funded, funded_api, offer, staff_api
):
    used = redeem(funded_api, offer).json()
    waiting = redeem(funded_api, offer).json()
    staff_api.post(TILL, {"code": used["code"]}, format="json")

    exported = {row["id"]: row for row in user_export(user=funded)["rewards_vouchers"]}

    assert set(exported) == {used["id"], waiting["id"]}
    assert exported[used["id"]]["status"] == "redeemed" and exported[used["id"]]["redeemed_at"]
    assert exported[waiting["id"]]["code"] == waiting["code"]
    assert exported[waiting["id"]]["partner"] == "Green Grocer"


def test_erasure_unlinks_vouchers_and_keeps_the_ledger_and_the_settlement_whole(
    funded, funded_api, offer, staff, staff_api, ledger_is_consistent
):
    used = redeem(funded_api, offer).json()
    waiting = redeem(funded_api, offer).json()
    donation = redeem(funded_api, OfferFactory(donation=True, price_g=30)).json()
    staff_api.post(TILL, {"code": used["code"]}, format="json")
    assert funded_api.get(donation["certificate_url"]).status_code == 200
    certificate = Voucher.objects.get(pk=donation["id"]).certificate.name
    assert default_storage.exists(certificate)

    user_erase(user=funded)

    assert not Voucher.objects.filter(user=funded).exists()
    assert Voucher.objects.count() == 3
    # Nobody can use the waiting voucher now: cancelled, its hold voided, its unit back.
    unused = Voucher.objects.get(pk=waiting["id"])
    assert (unused.status, unused.refunded) == ("cancelled", True)
    assert unused.hold.resolution.flag == TransferFlag.VOID_PENDING
    assert Offer.objects.get(pk=offer.pk).stock_left == offer.stock_total - 1
    assert not default_storage.exists(certificate)
    line = MerchantRedemption.objects.get()
    assert (str(line.voucher_id), line.value_cny, line.redeemed_by) == (
        used["id"],
        Decimal("5.00"),
        staff.user,
    )
    assert staff_api.post(TILL, {"code": waiting["code"]}, format="json").status_code == 409
    ledger_is_consistent()


def test_a_staff_members_erasure_keeps_the_lines_they_recorded(funded_api, offer, staff, staff_api):
    staff_api.post(TILL, {"code": redeem(funded_api, offer).json()["code"]}, format="json")
    assert user_export(user=staff.user)["merchant_staff"]["redemptions_recorded"] == 1

    user_erase(user=staff.user)

    assert not MerchantStaff.objects.exists()
    line = MerchantRedemption.objects.get()
    assert line.redeemed_by_id == staff.user_id and line.value_cny == Decimal("5.00")
    staff.user.refresh_from_db()
    assert staff.user.is_erased and not staff.user.is_active
