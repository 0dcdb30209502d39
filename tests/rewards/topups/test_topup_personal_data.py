"""A resident's top-ups in the personal-data export (never the card number), and erasure:
the rows stay for the ledger and the operator's books, untied from the person, with no card
number left; one still queued then fails and its points come back."""

from __future__ import annotations

import pytest

from carbon.models import Transfer, TransferFlag
from carbon.services.people import user_erase, user_export
from rewards.topups.models import TopUp, TopUpStatus
from tests.carbon.factories import UserFactory
from tests.rewards.topups.factories import OTHER_CARD, linked_card, points, send, sweep, topup_for

pytestmark = pytest.mark.django_db


def test_the_export_holds_the_residents_own_top_ups_without_the_card_number(
    card_holder, operator, operator_server
):
    done = send(topup_for(card_holder, operator.partner, amount="20.00").pk)
    waiting = topup_for(card_holder, operator.partner, amount="5.5")
    someone = UserFactory()
    linked_card(someone, OTHER_CARD)
    points(someone)
    topup_for(someone, operator.partner, number=OTHER_CARD, reference="V-SOMEONE")

    exported = user_export(user=card_holder)["transit_topups"]

    assert [(t["reference"], t["amount_cny"], t["status"]) for t in exported] == [
        (done.reference, "20.00", "confirmed"),
        (waiting.reference, "5.50", "queued"),
    ]
    assert exported[0]["card_last_digits"] == "7890" and exported[0]["operator"] == "Wuhan Metro"
    assert exported[0]["operator_ref"] == done.operator_ref and exported[0]["settled_at"]
    assert "6227001234567890" not in str(exported) and "V-SOMEONE" not in str(exported)


def test_erasure_unties_the_top_ups_and_a_queued_one_then_fails_with_its_points_back(
    card_holder, operator, operator_server, ledger_is_consistent
):
    done = send(topup_for(card_holder, operator.partner).pk)
    waiting = topup_for(card_holder, operator.partner)

    user_erase(user=card_holder)

    rows = TopUp.objects.filter(pk__in=[done.pk, waiting.pk])
    assert set(rows.values_list("user", "card", "card_last_digits", "card_number_encrypted")) == {
        (None, None, "", None)
    }
    sweep()
    waiting.refresh_from_db()
    assert waiting.status == TopUpStatus.FAILED and "erased" in waiting.last_error
    assert len(operator_server.received) == 1  # the erased card number was never sent
    assert list(
        Transfer.objects.filter(pending_id=waiting.hold_id).values_list("flag", flat=True)
    ) == [TransferFlag.VOID_PENDING]
    ledger_is_consistent()
