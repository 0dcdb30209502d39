"""topup_request, the call the redemption makes inside its transaction: bad input is refused
with a catalogue error and leaves no row and no change to the points; the card number is kept
only encrypted; asking again for the same hold returns the same top-up."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from carbon.adapters.transit.cards import InvalidCardNumber, transit_card_link, transit_card_unlink
from carbon.errors import ErrorCode
from carbon.models import Transfer
from carbon.services.ledger import balance_for_user, ledger_spend, ledger_void
from carbon.services.partners import partner_create, partner_credential_rotate
from rewards.topups.cards import card_number_open
from rewards.topups.errors import (
    CardNotLinked,
    HoldUnusable,
    InvalidTopUpAmount,
    OperatorUnavailable,
)
from rewards.topups.models import TopUp, TopUpStatus
from rewards.topups.services import topup_min_hold_timeout, topup_request
from tests.carbon.factories import UserFactory
from tests.rewards.topups.factories import CARD, OTHER_CARD, hold_for, linked_card, points

pytestmark = pytest.mark.django_db


@pytest.fixture
def configured(operator):
    operator.partner.endpoint_url = "http://127.0.0.1:9/api"
    operator.partner.save(update_fields=["endpoint_url"])
    return operator.partner


def request(user, operator, *, hold=None, **overrides):
    args = {
        "user": user,
        "hold": hold or hold_for(user),
        "operator": operator,
        "amount_cny": Decimal("20.00"),
        "card_number": CARD,
        "reference": "V-ABC123",
        **overrides,
    }
    return topup_request(**args)


def test_a_request_is_a_queued_row_with_the_card_number_only_encrypted(card_holder, configured):
    topup = request(card_holder, configured, card_number="6227-0012 3456-7890")

    assert topup.status == TopUpStatus.QUEUED and topup.attempts == 0
    assert topup.next_attempt_at <= timezone.now() < topup.deadline_at
    assert topup.card.user == card_holder and topup.card_last_digits == "7890"
    sealed = bytes(TopUp.objects.get(pk=topup.pk).card_number_encrypted)
    assert b"6227001234567890" not in sealed and b"7890" not in sealed
    assert card_number_open(sealed) == "6227001234567890"
    assert isinstance(topup.request_id, uuid.UUID)


def test_asking_again_for_the_same_hold_returns_the_same_top_up(card_holder, configured):
    hold = hold_for(card_holder)
    first = request(card_holder, configured, hold=hold)

    again = request(card_holder, configured, hold=hold, amount_cny="20")

    assert again.pk == first.pk and again.request_id == first.request_id
    with pytest.raises(HoldUnusable):
        request(card_holder, configured, hold=hold, amount_cny="30.00")
    with pytest.raises(HoldUnusable):
        request(card_holder, configured, hold=hold, reference="V-OTHER")
    assert TopUp.objects.count() == 1


def written(user) -> tuple:
    balance = balance_for_user(user=user)
    return TopUp.objects.count(), Transfer.objects.count(), balance.available_g, balance.pending_g


def refused(user, operator, error, **overrides):
    """Refused with `error`; nothing written, the points as they were."""
    hold = overrides.pop("hold", None) or hold_for(user)
    before = written(user)
    with pytest.raises(error) as caught:
        request(user, operator, hold=hold, **overrides)
    assert written(user) == before
    return caught.value


@pytest.mark.parametrize(
    "number", ["6227 0098 7654 3210", "1111 2222 3333 4444"], ids=["not linked", "unknown"]
)
def test_a_card_that_is_not_one_of_the_residents_linked_cards_is_refused(
    card_holder, configured, number
):
    error = refused(card_holder, configured, CardNotLinked, card_number=number)
    assert error.code is ErrorCode.TOPUP_CARD_NOT_LINKED and error.status == 409


def test_someone_elses_card_and_a_pending_or_unlinked_card_are_refused(card_holder, configured):
    someone = UserFactory()
    linked_card(someone, OTHER_CARD)
    refused(card_holder, configured, CardNotLinked, card_number=OTHER_CARD)
    # Waiting for the operator's proof: not linked yet.
    pending = transit_card_link(user=card_holder, card_number="6227 5555 6666 7777", consent=True)
    refused(card_holder, configured, CardNotLinked, card_number="6227 5555 6666 7777")
    assert pending.card.status == "pending"
    # Unlinked.
    transit_card_unlink(
        user=card_holder, card_id=card_holder.transit_cards.get(last_digits="7890").pk
    )
    refused(card_holder, configured, CardNotLinked)


@pytest.mark.parametrize(
    "number", ["", "6227", "６２２７００１２３４５６７８９０", "6227 0012 abcd"]
)
def test_a_malformed_card_number_is_refused(card_holder, configured, number):
    error = refused(card_holder, configured, InvalidCardNumber, card_number=number)
    assert error.code is ErrorCode.INVALID_CARD_NUMBER


@pytest.mark.parametrize(
    "amount", [0, "-5", "abc", "20.005", "NaN", "Infinity", None, "501", Decimal("1e9")]
)
def test_a_bad_amount_is_refused(card_holder, configured, amount):
    error = refused(card_holder, configured, InvalidTopUpAmount, amount_cny=amount)
    assert error.code is ErrorCode.TOPUP_INVALID_AMOUNT and error.status == 400


def test_an_operator_we_cannot_send_to_is_refused(card_holder, configured):
    bank = partner_create(name="Hankou Partner Bank", kind="bank").partner
    bank.endpoint_url = "http://127.0.0.1:9"
    bank.save()
    error = refused(card_holder, bank, OperatorUnavailable)
    assert error.code is ErrorCode.TOPUP_OPERATOR_UNAVAILABLE and error.status == 503

    configured.is_active = False
    configured.save()
    refused(card_holder, configured, OperatorUnavailable)
    configured.is_active = True
    configured.endpoint_url = ""
    configured.save()
    refused(card_holder, configured, OperatorUnavailable)
    configured.endpoint_url = "http://127.0.0.1:9"
    configured.save()
    partner_credential_rotate(partner=configured)
    configured.credentials.update(revoked_at=timezone.now() - timedelta(seconds=1))
    refused(card_holder, configured, OperatorUnavailable)


def test_a_hold_that_cannot_pay_for_the_top_up_is_refused(card_holder, configured):
    someone = UserFactory()
    points(someone)
    linked_card(someone, OTHER_CARD)
    # Someone else's hold.
    error = refused(card_holder, configured, HoldUnusable, hold=hold_for(someone))
    assert error.code is ErrorCode.TOPUP_HOLD_UNUSABLE and error.status == 409
    # Not a hold at all: a spend, an award.
    spend = ledger_spend(
        user=card_holder, amount_g=10, idempotency_key=str(uuid.uuid4()), description="spend"
    )
    refused(card_holder, configured, HoldUnusable, hold=spend)
    award = Transfer.objects.filter(credit_account__user=card_holder).first()
    refused(card_holder, configured, HoldUnusable, hold=award)
    # Already released.
    voided = hold_for(card_holder)
    ledger_void(pending_id=voided.pk)
    refused(card_holder, configured, HoldUnusable, hold=voided)
    # Released by the ledger before a send could be answered.
    short = hold_for(card_holder, timeout=topup_min_hold_timeout() - timedelta(minutes=1))
    error = refused(card_holder, configured, HoldUnusable, hold=short)
    assert error.details["min_timeout_s"] == int(topup_min_hold_timeout().total_seconds())


def test_the_default_ledger_hold_outlives_the_top_up_deadline(settings):
    assert timedelta(minutes=settings.LEDGER_HOLD_TIMEOUT_MINUTES) >= topup_min_hold_timeout()
    assert topup_min_hold_timeout() == timedelta(days=1, minutes=3)
