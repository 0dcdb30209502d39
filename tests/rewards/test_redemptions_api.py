"""Redeeming offers over the API: a hold and a voucher with a code and a signed QR payload;
retries, limits, stock, balance and bad offers refused with nothing left behind; donations
final at once with a certificate; top-ups processing until the top-up slice reports;
cancelling; and the expiry job. Every flow ends with the ledger check."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image

from carbon.models import AccountKind, Transfer, TransferFlag
from carbon.services.ledger import ledger_expire_pending
from rewards.offers.models import Offer
from rewards.vouchers import services
from rewards.vouchers.codes import ALPHABET, voucher_qr_verify
from rewards.vouchers.models import Voucher, VoucherStatus
from rewards.vouchers.services import (
    voucher_fulfilled,
    voucher_fulfilment_failed,
    vouchers_expire,
)
from tests.carbon.api_helpers import assert_error, client_for, new_key
from tests.carbon.factories import UserFactory
from tests.rewards.factories import OfferFactory, fund
from tests.rewards.helpers import REDEEM, VOUCHERS, available, pending, redeem

pytestmark = pytest.mark.django_db


def written():
    return Voucher.objects.count(), Transfer.objects.count()


# --- redeeming ---------------------------------------------------------------------------


def test_redeeming_holds_the_price_and_issues_a_usable_voucher(
    funded, funded_api, offer, ledger_is_consistent
):
    answer = redeem(funded_api, offer)

    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["status"] == "issued"
    assert body["offer"] == {"id": offer.pk, "kind": "voucher", "title": offer.title_en}
    assert body["partner"] == {"id": offer.partner_id, "name": "Green Grocer"}
    assert len(body["code"]) == 12 and set(body["code"]) <= set(ALPHABET)
    assert voucher_qr_verify(payload=body["qr"]) == body["code"]
    assert (available(funded), pending(funded)) == (900, 100)
    voucher = Voucher.objects.get(pk=body["id"])
    assert voucher.hold.flag == TransferFlag.PENDING
    assert voucher.hold.credit_account.kind == AccountKind.REDEMPTION
    # The hold outlives the voucher: the ledger's own expiry never voids it first.
    assert voucher.hold.timeout_at > voucher.expires_at
    assert Offer.objects.get(pk=offer.pk).stock_left == 49
    ledger_is_consistent()


def test_a_retry_with_the_same_key_answers_the_same_voucher_and_holds_once(
    funded, funded_api, offer, ledger_is_consistent
):
    key = new_key()
    first = redeem(funded_api, offer, key)
    again = redeem(funded_api, offer, key)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Voucher.objects.count() == 1
    assert Transfer.objects.filter(code="hold").count() == 1
    assert pending(funded) == 100
    assert Offer.objects.get(pk=offer.pk).stock_left == 49
    ledger_is_consistent()


def test_the_same_key_for_another_offer_is_a_conflict(funded, funded_api, offer, merchant):
    key = new_key()
    assert redeem(funded_api, offer, key).status_code == 201
    before = written()

    answer = redeem(funded_api, OfferFactory(partner=merchant), key)

    assert_error(answer, 409, "idempotency_conflict")
    assert written() == before


def test_an_unknown_inactive_or_out_of_window_offer_is_refused_and_nothing_is_written(
    funded_api, merchant
):
    inactive = OfferFactory(partner=merchant, is_active=False)
    later = OfferFactory(partner=merchant, valid_from=timezone.now() + timedelta(days=1))
    ended = OfferFactory(
        partner=merchant,
        valid_from=timezone.now() - timedelta(days=10),
        valid_until=timezone.now() - timedelta(days=1),
    )
    before = written()

    assert_error(redeem(funded_api, 999_999), 404, "offer_not_found")
    for offer in (inactive, later, ended):
        assert_error(redeem(funded_api, offer), 409, "offer_inactive")
    assert written() == before


def test_bad_bodies_are_invalid(funded_api, offer):
    for body in ({}, {"offer": offer.pk}, {"offer": "x", "idempotency_key": new_key()},
                 {"offer": offer.pk, "idempotency_key": "not-a-uuid"}):  # fmt: skip
        assert_error(funded_api.post(REDEEM, body, format="json"), 400, "invalid")


def test_insufficient_balance_is_refused_with_no_hold_and_no_stock_taken(
    merchant, ledger_is_consistent
):
    poor = UserFactory()
    fund(poor, 99)
    offer = OfferFactory(partner=merchant, price_g=100)

    answer = redeem(client_for(poor), offer)

    assert_error(answer, 409, "insufficient_balance")
    assert (Voucher.objects.count(), pending(poor), available(poor)) == (0, 0, 99)
    assert Offer.objects.get(pk=offer.pk).stock_left == offer.stock_total
    ledger_is_consistent()


def test_out_of_stock_is_refused_and_no_hold_is_left(funded, funded_api, merchant):
    offer = OfferFactory(partner=merchant, stock_total=1)
    assert redeem(funded_api, offer).status_code == 201
    other = UserFactory()
    fund(other, 500)

    answer = redeem(client_for(other), offer)

    assert_error(answer, 409, "out_of_stock")
    assert (pending(other), available(other)) == (0, 500)
    assert Offer.objects.get(pk=offer.pk).stock_left == 0


def test_per_day_and_lifetime_limits_are_counted_from_the_residents_vouchers(
    funded, funded_api, merchant, ledger_is_consistent
):
    daily = OfferFactory(partner=merchant, limit_per_day=2)
    once = OfferFactory(partner=merchant, limit_lifetime=1)

    assert redeem(funded_api, daily).status_code == 201
    second = redeem(funded_api, daily)
    assert second.status_code == 201
    refused = assert_error(redeem(funded_api, daily), 409, "limit_reached")
    assert refused["details"]["period"] == "day"
    # A cancelled voucher gave everything back: it frees its place under the limit.
    assert funded_api.post(f"{VOUCHERS}/{second.json()['id']}/cancel").status_code == 200
    assert redeem(funded_api, daily).status_code == 201

    assert redeem(funded_api, once).status_code == 201
    assert_error(redeem(funded_api, once), 409, "limit_reached")
    # Yesterday's vouchers do not count towards today's limit (days in the city's zone).
    Voucher.objects.filter(offer=daily).update(created_at=timezone.now() - timedelta(days=1))
    assert redeem(funded_api, daily).status_code == 201
    ledger_is_consistent()


def test_monthly_limit_counts_the_citys_calendar_month(funded, funded_api, merchant):
    offer = OfferFactory(partner=merchant, limit_per_month=1)
    assert redeem(funded_api, offer).status_code == 201
    assert_error(redeem(funded_api, offer), 409, "limit_reached")

    Voucher.objects.filter(offer=offer).update(created_at=timezone.now() - timedelta(days=32))

    assert redeem(funded_api, offer).status_code == 201


def test_merchant_staff_and_anonymous_callers_cannot_redeem(staff_api, api, offer):
    assert_error(redeem(staff_api, offer), 403, "residents_only")
    assert_error(redeem(api, offer), 401, "not_authenticated")
    assert Voucher.objects.count() == 0


# --- donations and top-ups ------------------------------------------------------------------


def test_a_donation_is_final_at_once_and_its_certificate_is_the_owners(
    funded, funded_api, api, ledger_is_consistent
):
    funded.display_name = "林美珍"
    funded.save()
    donation = OfferFactory(donation=True, price_g=50)

    answer = redeem(funded_api, donation)

    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert (body["status"], body["code"], body["qr"]) == ("redeemed", None, None)
    voucher = Voucher.objects.get(pk=body["id"])
    assert voucher.hold.resolution.flag == TransferFlag.POST_PENDING
    assert voucher.hold.credit_account.kind == AccountKind.DONATION
    assert (available(funded), pending(funded)) == (950, 0)
    assert_error(funded_api.post(f"{VOUCHERS}/{voucher.pk}/cancel"), 409, "not_cancellable")

    certificate = funded_api.get(body["certificate_url"])
    assert certificate.status_code == 200
    assert certificate["Content-Type"] == "image/png"
    png = Image.open(__import__("io").BytesIO(b"".join(certificate.streaming_content)))
    assert png.format == "PNG" and png.size == (1200, 800)
    # Nobody else's, and not for a voucher that is no donation.
    assert_error(client_for(UserFactory()).get(body["certificate_url"]), 404, "voucher_not_found")
    assert api.get(body["certificate_url"]).status_code == 401
    ledger_is_consistent()


def test_a_top_up_is_processing_until_the_top_up_slice_reports(
    funded, funded_api, ledger_is_consistent, monkeypatch
):
    # The top-up slice itself is exercised end to end in
    # tests/rewards/topups/test_topup_vouchers.py; here its start is a no-op so that the two
    # outcomes can be reported by hand.
    monkeypatch.setattr(services, "topup_fulfilment_start", lambda voucher, card_number: None)
    topup = OfferFactory(topup=True, price_g=120, stock_total=10)

    first = redeem(funded_api, topup, card_number="62270012345678").json()
    second = redeem(funded_api, topup, card_number="62270012345678").json()

    assert first["status"] == second["status"] == "processing"
    assert first["code"] is None and first["qr"] is None
    assert pending(funded) == 240
    assert_error(funded_api.post(f"{VOUCHERS}/{first['id']}/cancel"), 409, "not_cancellable")

    done = voucher_fulfilled(Voucher.objects.get(pk=first["id"]))
    failed = voucher_fulfilment_failed(Voucher.objects.get(pk=second["id"]), "card blocked")
    # Repeating an outcome changes nothing.
    assert voucher_fulfilled(done).status == VoucherStatus.REDEEMED
    assert voucher_fulfilment_failed(done, "late").status == VoucherStatus.REDEEMED

    assert (done.status, failed.status, failed.refunded) == ("redeemed", "failed", True)
    assert failed.outcome_note == "card blocked"
    assert (available(funded), pending(funded)) == (880, 0)
    assert Offer.objects.get(pk=topup.pk).stock_left == 9  # the failed one's unit is back
    ledger_is_consistent()


# --- my vouchers and cancelling -----------------------------------------------------------


def test_my_vouchers_are_listed_with_status_and_codes_only_while_usable(funded, funded_api, offer):
    usable = redeem(funded_api, offer).json()
    cancelled = redeem(funded_api, offer).json()
    funded_api.post(f"{VOUCHERS}/{cancelled['id']}/cancel")
    redeem(client_for(UserFactory()), offer)  # someone else's: not listed (and unfunded)

    listing = funded_api.get(VOUCHERS)
    only_cancelled = funded_api.get(VOUCHERS, {"status": "cancelled"})

    assert listing.status_code == 200
    rows = {row["id"]: row for row in listing.json()["results"]}
    assert set(rows) == {usable["id"], cancelled["id"]}
    assert rows[usable["id"]]["code"] == usable["code"] and rows[usable["id"]]["qr"]
    assert rows[cancelled["id"]]["status"] == "cancelled"
    assert rows[cancelled["id"]]["code"] is None and rows[cancelled["id"]]["qr"] is None
    assert [r["id"] for r in only_cancelled.json()["results"]] == [cancelled["id"]]
    assert_error(funded_api.get(VOUCHERS, {"status": "lost"}), 400, "invalid")


def test_cancelling_gives_the_grams_and_the_unit_back_once(
    funded, funded_api, offer, ledger_is_consistent
):
    voucher = redeem(funded_api, offer).json()

    first = funded_api.post(f"{VOUCHERS}/{voucher['id']}/cancel")
    again = funded_api.post(f"{VOUCHERS}/{voucher['id']}/cancel")

    assert first.status_code == again.status_code == 200
    assert first.json()["status"] == "cancelled" and first.json()["refunded"] is True
    assert (available(funded), pending(funded)) == (1000, 0)
    assert Offer.objects.get(pk=offer.pk).stock_left == offer.stock_total
    assert Transfer.objects.filter(flag=TransferFlag.VOID_PENDING).count() == 1
    ledger_is_consistent()


def test_someone_elses_voucher_is_not_found_and_stays_as_it_was(funded_api, offer):
    other = UserFactory()
    fund(other, 500)
    theirs = redeem(client_for(other), offer).json()

    assert_error(funded_api.post(f"{VOUCHERS}/{theirs['id']}/cancel"), 404, "voucher_not_found")
    assert_error(
        funded_api.post("/api/v1/rewards/vouchers/00000000-0000-0000-0000-000000000000/cancel"),
        404,
        "voucher_not_found",
    )
    assert Voucher.objects.get(pk=theirs["id"]).status == "issued"
    assert pending(other) == 100


# --- expiry --------------------------------------------------------------------------------


def test_the_expiry_job_refunds_or_keeps_the_grams_as_the_offer_says(
    funded, funded_api, merchant, ledger_is_consistent
):
    refunding = OfferFactory(partner=merchant, refund_on_expiry=True)
    keeping = OfferFactory(partner=merchant, refund_on_expiry=False)
    a = redeem(funded_api, refunding).json()
    b = redeem(funded_api, keeping).json()
    fresh = redeem(funded_api, refunding).json()
    Voucher.objects.filter(pk__in=[a["id"], b["id"]]).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    assert vouchers_expire() == 2
    assert vouchers_expire() == 0  # once

    a_row, b_row = Voucher.objects.get(pk=a["id"]), Voucher.objects.get(pk=b["id"])
    assert (a_row.status, a_row.refunded) == ("expired", True)
    assert (b_row.status, b_row.refunded) == ("expired", False)
    assert a_row.hold.resolution.flag == TransferFlag.VOID_PENDING
    assert b_row.hold.resolution.flag == TransferFlag.POST_PENDING
    assert Voucher.objects.get(pk=fresh["id"]).status == "issued"
    assert (available(funded), pending(funded)) == (800, 100)
    assert_error(funded_api.post(f"{VOUCHERS}/{a['id']}/cancel"), 409, "not_cancellable")
    ledger_is_consistent()


def test_a_voucher_whose_hold_the_ledger_already_released_expires_refunded(
    funded, funded_api, merchant, ledger_is_consistent
):
    """The vouchers' job was down past the grace period: the ledger's job voided the hold.
    The voucher then records what happened instead of posting a released hold."""
    keeping = OfferFactory(partner=merchant, refund_on_expiry=False)
    voucher = redeem(funded_api, keeping).json()
    row = Voucher.objects.get(pk=voucher["id"])
    long_ago = timezone.now() - timedelta(days=2)
    Voucher.objects.filter(pk=row.pk).update(expires_at=long_ago)
    Transfer.objects.filter(pk=row.hold_id).update(timeout_at=long_ago)
    assert ledger_expire_pending() == 1

    assert vouchers_expire() == 1

    row.refresh_from_db()
    assert (row.status, row.refunded) == ("expired", True)
    assert available(funded) == 1000
    ledger_is_consistent()


def test_an_expired_voucher_cannot_be_cancelled_before_the_job_runs(funded_api, offer):
    voucher = redeem(funded_api, offer).json()
    Voucher.objects.filter(pk=voucher["id"]).update(expires_at=timezone.now())

    assert_error(funded_api.post(f"{VOUCHERS}/{voucher['id']}/cancel"), 409, "voucher_expired")
