"""A resident's loan links and offsets in the export, and their erasure: the rows stay for
the bank's records and the ledger, but no longer name the person or the loan."""

from __future__ import annotations

import pytest

from carbon.services.ledger import account_for_user, enterprise_account
from carbon.services.ledger_check import ledger_check
from carbon.services.people import user_erase, user_export
from rewards.offsets.models import LoanLink, Offset
from tests.rewards.offsets.flows import (
    bank_answers,
    bank_decides,
    confirmation,
    linked,
    request_offset,
    send_days_batch,
)

pytestmark = pytest.mark.django_db


def test_the_export_shows_links_and_offsets(saver, saver_api, programme, bank):
    linked(saver_api, programme, bank)
    request_offset(saver_api, programme, 1_000)
    exported = user_export(user=saver)
    [link] = exported["loan_links"]
    assert link["loan_reference"] == "****7765" and link["status"] == "confirmed"
    assert link["bank"] == "Hankou Partner Bank" and link["consent_given_at"]
    [offset] = exported["offsets"]
    assert offset == {**offset, "grams": 1_000, "value_cny": "2.00", "status": "requested"}


def test_erasure_forgets_the_person_and_the_loan_and_keeps_the_ledger_whole(
    saver, saver_api, programme, bank, bank_server
):
    link = linked(saver_api, programme, bank)
    confirmed = request_offset(saver_api, programme, 1_000).json()
    still_open = request_offset(saver_api, programme, 500).json()
    send_days_batch(programme)
    bank_answers(bank, [confirmation(confirmed)])
    account = account_for_user(user=saver)

    user_erase(user=saver)

    stored = LoanLink.objects.get(pk=link["id"])
    assert stored.user is None and stored.status == "revoked"
    assert (stored.loan_ref_hash, stored.loan_ref_last4, stored.bank_link_id) == ("", "", "")
    assert Offset.objects.filter(user__isnull=False).count() == 0
    assert Offset.objects.count() == 2
    assert user_export(user=saver)["offsets"] == [] and user_export(user=saver)["loan_links"] == []
    # The bank's confirmation of the offset it already has still lands; the grams held for
    # it stay the account's until then.
    answered = bank_answers(bank, [confirmation(still_open)])
    assert answered.json()["rows"][0]["offset_status"] == "confirmed"
    assert enterprise_account(partner=bank.partner).balance_g == 1_500
    account.refresh_from_db()
    assert account.balance_g == 5_000 - 1_500
    # The erased link cannot be confirmed again by anyone holding its token.
    assert bank_decides(bank, link_token=stored.link_token).status_code == 409
    assert ledger_check() == []
