"""Mortgage-interest offsets end to end over HTTP: a resident links a loan with consent, the
bank confirms it, offsets hold green-travel grams, the day's batch goes to the bank's server
(signed, one request id whatever the retries), and the bank's signed answers post the grams
to its enterprise account or give them back. Every flow ends with the ledger check."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from carbon.models import AccountKind, Transfer, TransferFlag
from carbon.services.ledger import account_for_user, enterprise_account, ledger_expire_pending
from carbon.services.ledger_check import ledger_check
from rewards.offsets.models import LoanLink, Offset, OffsetBatch, OffsetBatchStatus
from rewards.offsets.services.batches import (
    offset_batch_prepare,
    offset_batch_send,
    offset_batches_prepare,
    offset_batches_send_due,
    offsets_expire,
)
from rewards.offsets.services.requests import offset_hold_timeout
from tests.carbon.api_helpers import assert_error, new_key
from tests.partner_server import DROP
from tests.rewards.offsets.flows import (
    OFFSETS,
    bank_answers,
    bank_decides,
    confirmation,
    link_ask,
    linked,
    request_offset,
    send_days_batch,
)

pytestmark = pytest.mark.django_db


def test_link_request_batch_confirm_statement(saver, saver_api, programme, bank, bank_server):
    asked = link_ask(saver_api, programme)
    assert asked.status_code == 201, asked.content
    link = asked.json()
    assert link["status"] == "pending" and link["loan_reference"] == "****7765"
    assert link["link_token"] and link["consent_given_at"]
    stored = LoanLink.objects.get(pk=link["id"])
    assert "4402118800317765" not in (stored.loan_ref_hash + stored.loan_ref_last4)
    # No offset before the bank confirms the loan is the resident's.
    assert_error(request_offset(saver_api, programme, 1_000), 409, "loan_link_required")

    linked_again = link_ask(saver_api, programme)
    assert linked_again.status_code == 200 and linked_again.json()["id"] == link["id"]
    assert bank_decides(bank, link_token=link["link_token"]).json()["status"] == "confirmed"

    answer = request_offset(saver_api, programme, 1_234)
    assert answer.status_code == 201, answer.content
    offset = answer.json()
    # 1234 g at 2 CNY/kg = 2.468 CNY, rounded down to the fen.
    assert offset["value_cny"] == "2.46" and offset["status"] == "requested"
    assert account_for_user(user=saver).available_g == 5_000 - 1_234

    overview = saver_api.get(OFFSETS).json()
    [shown] = overview["programmes"]
    assert shown["my_month_g"] == 1_234 and shown["my_month_cny"] == "2.46"
    assert shown["budget_left_cny"] == "9997.54"
    assert [o["id"] for o in overview["offsets"]] == [offset["id"]]
    assert (
        overview["links"][0]["status"] == "confirmed" and overview["links"][0]["link_token"] is None
    )

    batch = send_days_batch(programme)
    assert batch.status == OffsetBatchStatus.SENT
    [request] = bank_server.acted_on()
    assert request.path == "/api/offsets/batches" and request.request_id == batch.request_id
    assert request.json["offsets"] == [
        {
            "offset_id": offset["id"],
            "bank_link_id": "HK-LINK-1",
            "grams": 1_234,
            "cny_per_kg": "2.0000",
            "value_fen": 246,
            "value_cny": "2.46",
            "requested_at": Offset.objects.get().requested_at.isoformat(),
        }
    ]
    assert saver_api.get(OFFSETS).json()["offsets"][0]["status"] == "sent"

    confirmed = bank_answers(bank, [confirmation(offset, interest_fen=246)])
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["rows"] == [
        {
            "index": 0,
            "offset_id": str(offset["id"]),
            "status": "accepted",
            "offset_status": "confirmed",
        }
    ]
    vault = enterprise_account(partner=bank.partner)
    vault.refresh_from_db()
    assert vault.kind == AccountKind.ENTERPRISE and vault.balance_g == 1_234
    mine = account_for_user(user=saver)
    assert (mine.balance_g, mine.available_g) == (5_000 - 1_234, 5_000 - 1_234)

    year = timezone.localdate().year
    statement = saver_api.get(f"{OFFSETS}/statement", {"year": year}).json()
    assert statement["count"] == 1 and statement["grams"] == 1_234
    assert statement["value_cny"] == "2.46" and statement["interest_credited_cny"] == "2.46"
    assert saver_api.get(f"{OFFSETS}/statement", {"year": year - 1}).json()["count"] == 0
    assert ledger_check() == []


def test_a_refusal_gives_the_grams_back_and_frees_the_budget(
    saver, saver_api, programme, bank, bank_server
):
    linked(saver_api, programme, bank)
    offset = request_offset(saver_api, programme, 2_000).json()
    send_days_batch(programme)
    refused = bank_answers(
        bank,
        [{"offset_id": offset["id"], "status": "refused", "grams": 2_000, "reason": "loan closed"}],
    )
    assert refused.json()["rows"][0]["offset_status"] == "refused"
    assert account_for_user(user=saver).available_g == 5_000
    shown = saver_api.get(OFFSETS).json()
    assert shown["offsets"][0]["reason"] == "loan closed"
    assert shown["programmes"][0]["my_month_g"] == 0
    assert shown["programmes"][0]["budget_left_cny"] == "10000.00"
    assert ledger_check() == []


def test_the_same_key_returns_the_same_offset_and_another_amount_is_refused(
    saver, saver_api, programme, bank
):
    linked(saver_api, programme, bank)
    key = new_key()
    first = request_offset(saver_api, programme, 500, key)
    again = request_offset(saver_api, programme, 500, key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert_error(request_offset(saver_api, programme, 600, key), 409, "idempotency_conflict")
    assert Offset.objects.count() == 1 and account_for_user(user=saver).available_g == 4_500
    assert ledger_check() == []


def test_an_unreachable_bank_is_retried_with_backoff_and_the_same_request_id(
    saver, saver_api, programme, bank, bank_server
):
    linked(saver_api, programme, bank)
    request_offset(saver_api, programme, 700)
    answers = iter([(503, {"busy": True}), DROP, (202, {"ok": True})])
    bank_server.handler = lambda request: next(answers)
    assert offset_batches_prepare() == 1
    batch = OffsetBatch.objects.get()
    now = timezone.now()
    assert offset_batch_send(batch_id=batch.pk, now=now) == "retry"
    batch.refresh_from_db()
    assert batch.attempts == 1 and batch.next_attempt_at == now + timedelta(minutes=1)
    assert "503" in batch.last_error
    # Not due yet: nothing sent.
    assert offset_batches_send_due(now=now) == 0 and len(bank_server.received) == 1
    later = now + timedelta(minutes=1)
    assert offset_batch_send(batch_id=batch.pk, now=later) == "retry"
    batch.refresh_from_db()
    assert batch.next_attempt_at == later + timedelta(minutes=2)
    assert offset_batches_send_due(now=later + timedelta(minutes=2)) == 1
    batch.refresh_from_db()
    assert batch.status == OffsetBatchStatus.SENT and batch.attempts == 3
    assert {r.request_id for r in bank_server.received} == {batch.request_id}
    assert len(bank_server.received) == 3
    # Sent once: a second run sends nothing; the day's batch is not made twice.
    assert offset_batches_send_due(now=later + timedelta(hours=1)) == 0
    assert offset_batch_prepare(programme=programme).pk == batch.pk
    assert ledger_check() == []


def test_a_batch_the_bank_refuses_whole_voids_its_offsets(
    saver, saver_api, programme, bank, bank_server
):
    linked(saver_api, programme, bank)
    request_offset(saver_api, programme, 700)
    bank_server.handler = lambda request: (422, {"code": "unknown_programme"})
    batch = send_days_batch(programme)
    assert batch.status == OffsetBatchStatus.REJECTED and batch.reply_status == 422
    assert Offset.objects.get().status == "failed"
    assert account_for_user(user=saver).available_g == 5_000
    assert ledger_check() == []


def test_requests_after_the_days_batch_wait_for_the_next_one(
    saver, saver_api, programme, bank, bank_server
):
    linked(saver_api, programme, bank)
    request_offset(saver_api, programme, 300)
    first = send_days_batch(programme)
    request_offset(saver_api, programme, 400)
    assert offset_batch_prepare(programme=programme).pk == first.pk  # today's, as it was
    tomorrow = offset_batch_prepare(
        programme=programme, business_date=timezone.localdate() + timedelta(days=1)
    )
    assert [o["grams"] for o in tomorrow.payload["offsets"]] == [400]
    assert len(first.payload["offsets"]) == 1


def test_offsets_the_bank_never_answers_are_voided_before_the_hold_times_out(
    saver, saver_api, programme, bank, bank_server, settings
):
    linked(saver_api, programme, bank)
    offset = request_offset(saver_api, programme, 800).json()
    send_days_batch(programme)
    hold = Offset.objects.get().hold
    window = timedelta(days=settings.OFFSETS_CONFIRM_DAYS)
    # The hold outlives the window, so the offsets' job (not the ledger's) closes it.
    lives = hold.timeout_at - Offset.objects.get().requested_at
    assert offset_hold_timeout() <= lives < offset_hold_timeout() + timedelta(minutes=1)
    assert offset_hold_timeout() > window
    assert offsets_expire(now=timezone.now() + window - timedelta(hours=1)) == 0
    assert offsets_expire(now=timezone.now() + window + timedelta(minutes=1)) == 1
    assert Offset.objects.get().status == "failed"
    assert account_for_user(user=saver).available_g == 5_000
    late = bank_answers(bank, [confirmation(offset)])
    assert late.json()["rows"][0]["code"] == "offset_expired"
    assert enterprise_account(partner=bank.partner).balance_g == 0
    assert ledger_check() == []


def test_a_confirmation_after_the_ledger_voided_the_hold_is_refused_and_recorded(
    saver, saver_api, programme, bank, bank_server
):
    linked(saver_api, programme, bank)
    offset = request_offset(saver_api, programme, 800).json()
    send_days_batch(programme)
    # The offsets' job never ran; the ledger's backstop voided the hold at its timeout.
    assert ledger_expire_pending(now=timezone.now() + offset_hold_timeout() + timedelta(1)) == 1
    late = bank_answers(bank, [confirmation(offset)])
    assert late.json()["rows"][0]["code"] == "offset_expired"
    assert Offset.objects.get().status == "failed"
    hold = Transfer.objects.get(pk=Offset.objects.get().hold_id)
    assert hold.resolution.flag == TransferFlag.VOID_PENDING
    assert ledger_check() == []


def test_a_batch_whose_offsets_all_expired_while_the_bank_was_down_is_not_sent(
    saver, saver_api, programme, bank, bank_server, settings
):
    linked(saver_api, programme, bank)
    request_offset(saver_api, programme, 700)
    bank_server.handler = lambda request: (503, {})
    batch = offset_batch_prepare(programme=programme)
    assert offset_batch_send(batch_id=batch.pk) == "retry"
    later = timezone.now() + timedelta(days=settings.OFFSETS_CONFIRM_DAYS, hours=1)
    assert offsets_expire(now=later) == 1
    bank_server.handler = lambda request: (202, {})
    assert offset_batches_send_due(now=later) == 0
    batch.refresh_from_db()
    assert batch.status == OffsetBatchStatus.CANCELLED
    assert len(bank_server.received) == 1  # only the first, failed attempt
    assert account_for_user(user=saver).available_g == 5_000
    assert ledger_check() == []
