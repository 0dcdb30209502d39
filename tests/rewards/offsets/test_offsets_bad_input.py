"""Bad input to offsets, from residents and from banks: each gets a clear error (or a clear
row code), nothing is half written, and the ledger stays balanced."""

from __future__ import annotations

import json
import time

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from carbon.models import Transfer
from carbon.services.ledger import account_for_user, enterprise_account
from carbon.services.ledger_check import ledger_check
from carbon.services.partners import partner_create
from carbon.services.people import user_erase
from rewards.offsets.models import LoanLink, Offset
from tests.carbon.api_helpers import assert_error, bearer, client_for, signed_headers
from tests.rewards.offsets.factories import BankProgrammeFactory, award
from tests.rewards.offsets.flows import (
    BANK_ANSWERS,
    LINKS,
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


def written():
    return Offset.objects.count(), Transfer.objects.count(), LoanLink.objects.count()


# --- residents -------------------------------------------------------------------------------


def test_a_link_needs_explicit_consent_a_real_reference_and_a_known_programme(saver_api, programme):
    before = written()
    no_consent = saver_api.post(
        LINKS, {"programme": programme.pk, "loan_reference": "44021188"}, format="json"
    )
    assert_error(no_consent, 409, "consent_required")
    assert_error(
        link_ask(saver_api, programme, loan_reference="12 ab"), 400, "loan_reference_invalid"
    )
    unknown = saver_api.post(
        LINKS, {"programme": 999999, "loan_reference": "44021188", "consent": True}, format="json"
    )
    assert_error(unknown, 400, "unknown_programme")
    assert written() == before


def test_a_second_loan_while_one_is_open_is_refused_until_revoked(saver_api, programme):
    first = link_ask(saver_api, programme).json()
    assert_error(link_ask(saver_api, programme, loan_reference="99990000"), 409, "loan_link_exists")
    revoked = saver_api.delete(f"{LINKS}/{first['id']}")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert link_ask(saver_api, programme, loan_reference="99990000").status_code == 201


def test_someone_elses_link_is_not_found(saver_api, programme, other_resident):
    theirs = link_ask(client_for(other_resident), programme).json()
    assert_error(saver_api.delete(f"{LINKS}/{theirs['id']}"), 404, "not_found")
    assert LoanLink.objects.get(pk=theirs["id"]).status == "pending"


def test_no_offset_without_a_confirmed_link_at_that_bank(
    saver, saver_api, programme, bank, other_bank
):
    before = written()
    assert_error(request_offset(saver_api, programme, 500), 409, "loan_link_required")
    link_ask(saver_api, programme)  # pending: the bank has not confirmed it
    before = written()
    assert_error(request_offset(saver_api, programme, 500), 409, "loan_link_required")
    # A confirmed link at another bank's programme does not count here.
    elsewhere = BankProgrammeFactory(bank=other_bank.partner)
    linked(saver_api, elsewhere, other_bank)
    before = written()
    assert_error(request_offset(saver_api, programme, 500), 409, "loan_link_required")
    assert written() == before
    assert account_for_user(user=saver).available_g == 5_000
    assert ledger_check() == []


def test_a_revoked_or_refused_link_takes_no_offsets(saver_api, programme, bank):
    link = linked(saver_api, programme, bank)
    saver_api.delete(f"{LINKS}/{link['id']}")
    assert_error(request_offset(saver_api, programme, 500), 409, "loan_link_required")
    again = link_ask(saver_api, programme, loan_reference="55556666").json()
    refused = bank_decides(
        bank, link_token=again["link_token"], loan_reference="55556666", status="refused"
    )
    assert refused.json()["status"] == "refused"
    assert_error(request_offset(saver_api, programme, 500), 409, "loan_link_required")


def test_only_green_travel_grams_count(resident, programme, bank):
    award(resident, 400, "green_travel")
    award(resident, 5_000, "waste")
    client = client_for(resident)
    linked(client, programme, bank)
    before = written()
    refused = assert_error(request_offset(client, programme, 500), 409, "insufficient_balance")
    assert refused["details"]["categories"] == ["green_travel"]
    assert written() == before
    assert account_for_user(user=resident).available_g == 5_400
    assert request_offset(client, programme, 400).status_code == 201
    assert ledger_check() == []


def test_the_monthly_cap_in_grams_and_in_cny(saver, saver_api, programme, bank):
    linked(saver_api, programme, bank)
    assert request_offset(saver_api, programme, 2_000).status_code == 201
    # 5000 g a month: 3001 more is over by one gram.
    over = assert_error(request_offset(saver_api, programme, 3_001), 409, "offset_monthly_cap")
    assert over["details"] == {"cap_g": 5_000, "used_g": 2_000, "left_g": 3_000}
    programme.monthly_cap_fen = 500  # 5 CNY = 2500 g at 2 CNY/kg
    programme.save()
    over = assert_error(request_offset(saver_api, programme, 600), 409, "offset_monthly_cap")
    assert over["details"]["left_fen"] == 100
    assert request_offset(saver_api, programme, 500).status_code == 201
    assert Offset.objects.count() == 2
    assert ledger_check() == []


def test_the_programme_budget(saver, saver_api, programme, bank, other_resident):
    programme.budget_fen = 500  # 5 CNY: 2500 g
    programme.save()
    award(other_resident, 3_000)
    other = client_for(other_resident)
    linked(other, programme, bank, loan_reference="77778888")
    linked(saver_api, programme, bank)
    assert request_offset(other, programme, 2_000).status_code == 201
    over = assert_error(request_offset(saver_api, programme, 600), 409, "offset_budget_exhausted")
    assert over["details"] == {"left_fen": 100}
    assert request_offset(saver_api, programme, 500).status_code == 201
    assert account_for_user(user=saver).available_g == 4_500
    assert ledger_check() == []


def test_too_small_closed_unknown_and_malformed_requests(saver_api, programme, bank):
    linked(saver_api, programme, bank)
    before = written()
    assert_error(request_offset(saver_api, programme, 99), 400, "offset_too_small")
    assert_error(request_offset(saver_api, programme, 0), 400, "invalid")
    bad_key = saver_api.post(
        OFFSETS, {"programme": programme.pk, "grams": 500, "idempotency_key": "x"}, format="json"
    )
    assert_error(bad_key, 400, "invalid")
    gone = saver_api.post(
        OFFSETS,
        {
            "programme": 424242,
            "grams": 500,
            "idempotency_key": "6f1c7f9e-3a4b-4c5d-8e9f-000000000001",
        },
        format="json",
    )
    assert_error(gone, 400, "unknown_programme")
    programme.is_active = False
    programme.save()
    assert_error(request_offset(saver_api, programme, 500), 409, "programme_closed")
    assert written() == before


def test_the_statement_needs_a_year(saver_api):
    assert_error(saver_api.get(f"{OFFSETS}/statement"), 400, "invalid")
    assert_error(saver_api.get(f"{OFFSETS}/statement", {"year": "soon"}), 400, "invalid")
    assert_error(saver_api.get(f"{OFFSETS}/statement", {"year": 1999}), 400, "invalid")
    assert_error(APIClient().get(OFFSETS), 401, "not_authenticated")


# --- the bank's link decisions ------------------------------------------------------------------


def test_a_link_decision_for_another_loan_or_token_or_bank_is_refused(
    saver_api, programme, bank, other_bank
):
    link = link_ask(saver_api, programme).json()
    token = link["link_token"]
    assert_error(
        bank_decides(bank, link_token=token, loan_reference="00001111"), 409, "link_ref_mismatch"
    )
    assert_error(bank_decides(bank, link_token="NOPE"), 404, "unknown_link_token")
    # Another bank cannot confirm a link at this one, even with the token.
    assert_error(bank_decides(other_bank, link_token=token), 404, "unknown_link_token")
    assert LoanLink.objects.get(pk=link["id"]).status == "pending"
    # The same decision again is harmless; a contrary one is refused.
    assert bank_decides(bank, link_token=token).status_code == 200
    assert bank_decides(bank, link_token=token).json()["status"] == "confirmed"
    assert_error(bank_decides(bank, link_token=token, status="refused"), 409, "loan_link_resolved")
    assert_error(
        bank_decides(bank, link_token=token, bank_link_id="OTHER"), 409, "loan_link_resolved"
    )
    no_id = bank_decides(bank, link_token=token, bank_link_id="")
    assert_error(no_id, 400, "invalid")


def test_only_a_bank_may_decide_or_answer(saver_api, programme):
    platform = partner_create(name="QingJu", kind="platform")
    token = link_ask(saver_api, programme).json()["link_token"]
    assert_error(bank_decides(platform, link_token=token), 403, "not_a_bank")
    assert_error(bank_answers(platform, [{"offset_id": 1}]), 403, "not_a_bank")
    assert LoanLink.objects.get().status == "pending"


# --- the bank's answers -------------------------------------------------------------------------


@pytest.fixture
def sent_offset(saver, saver_api, programme, bank, bank_server):
    linked(saver_api, programme, bank)
    offset = request_offset(saver_api, programme, 1_500).json()
    send_days_batch(programme)
    return offset


def _row(answer) -> dict:
    assert answer.status_code == 200, answer.content
    [row] = answer.json()["rows"]
    return row


def test_a_forged_or_replayed_signature_changes_nothing(bank, sent_offset):
    body = json.dumps({"offsets": [confirmation(sent_offset)]}).encode()
    forged = signed_headers(key_id=bank.key_id, secret="not-the-secret", body=body)
    answer = APIClient().generic(
        "POST", BANK_ANSWERS, body, content_type="application/json", **forged
    )
    assert_error(answer, 401, "invalid_signature")
    stale = signed_headers(
        key_id=bank.key_id, secret=bank.secret, body=body, timestamp=int(time.time()) - 3600
    )
    answer = APIClient().generic(
        "POST", BANK_ANSWERS, body, content_type="application/json", **stale
    )
    assert_error(answer, 401, "invalid_signature")
    assert Offset.objects.get().status == "sent"
    # The very same signed request twice: the second is a replay.
    good = signed_headers(key_id=bank.key_id, secret=bank.secret, body=body)
    first = APIClient().generic("POST", BANK_ANSWERS, body, content_type="application/json", **good)
    assert first.status_code == 200
    again = APIClient().generic("POST", BANK_ANSWERS, body, content_type="application/json", **good)
    assert_error(again, 409, "replayed_request")
    assert ledger_check() == []


def test_a_resent_answer_is_a_duplicate_and_a_contrary_one_is_refused(bank, sent_offset):
    assert _row(bank_answers(bank, [confirmation(sent_offset)]))["status"] == "accepted"
    again = _row(bank_answers(bank, [confirmation(sent_offset)]))
    assert again["status"] == "duplicate" and again["offset_status"] == "confirmed"
    other_interest = _row(bank_answers(bank, [confirmation(sent_offset, interest_fen=1)]))
    assert other_interest["code"] == "record_conflict"
    refusal = {"offset_id": sent_offset["id"], "status": "refused", "grams": 1_500}
    assert _row(bank_answers(bank, [refusal]))["code"] == "offset_resolved"
    offset = Offset.objects.get()
    assert offset.status == "confirmed" and offset.interest_credited_fen == 300
    assert enterprise_account(partner=bank.partner).balance_g == 1_500
    assert ledger_check() == []


def test_a_confirmation_for_another_amount_is_refused_and_changes_nothing(bank, sent_offset, saver):
    for changes in ({"grams": 1_501}, {"value_fen": 301}):
        row = _row(bank_answers(bank, [confirmation(sent_offset, **changes)]))
        assert row["status"] == "error" and row["code"] == "amount_mismatch", row
    assert Offset.objects.get().status == "sent"
    assert account_for_user(user=saver).debits_pending == 1_500
    assert enterprise_account(partner=bank.partner).balance_g == 0
    # The right amount still goes through afterwards.
    assert _row(bank_answers(bank, [confirmation(sent_offset)]))["status"] == "accepted"
    assert ledger_check() == []


def test_another_banks_or_unknown_or_unsent_offsets_are_refused_per_row(
    bank, other_bank, sent_offset, saver_api, programme
):
    answer = bank_answers(other_bank, [confirmation(sent_offset)])
    assert _row(answer)["code"] == "unknown_offset"
    unsent = request_offset(saver_api, programme, 200).json()
    answer = bank_answers(
        bank,
        [
            confirmation(sent_offset, offset_id=10**9),
            confirmation(unsent),
            {"offset_id": "seven"},
            "not an object",
            {**confirmation(sent_offset), "interest_credited_fen": None},
            confirmation(sent_offset),
        ],
    )
    rows = answer.json()["rows"]
    assert [r.get("code") for r in rows] == [
        "unknown_offset",
        "offset_not_sent",
        "invalid_field",
        "malformed_row",
        "invalid_field",
        None,
    ]
    assert answer.json()["accepted"] == 1 and answer.json()["error"] == 5
    assert Offset.objects.get(pk=unsent["id"]).status == "requested"
    assert ledger_check() == []


def test_an_empty_or_oversized_answer_is_refused_whole(bank, sent_offset):
    assert_error(bank_answers(bank, []), 400, "invalid")
    too_many = [confirmation(sent_offset)] * 1001
    assert_error(bank_answers(bank, too_many), 413, "batch_too_large")
    assert Offset.objects.get().status == "sent"


def test_a_resident_cannot_reach_the_bank_endpoints(saver, sent_offset):
    token = str(RefreshToken.for_user(saver).access_token)
    answer = bearer(token).post(
        BANK_ANSWERS, {"offsets": [confirmation(sent_offset)]}, format="json"
    )
    assert answer.status_code == 401
    assert Offset.objects.get().status == "sent"


def test_an_erased_residents_link_cannot_be_confirmed(saver, saver_api, programme, bank):
    token = link_ask(saver_api, programme).json()["link_token"]
    user_erase(user=saver)
    assert_error(bank_decides(bank, link_token=token), 409, "link_ref_mismatch")
