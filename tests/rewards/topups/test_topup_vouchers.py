"""A transit top-up offer redeemed over the API, end to end: the voucher is `processing`
while the operator (a real local HTTP server) is asked; its confirmation makes the voucher
redeemed and the points spent, its refusal makes it failed with the points and the unit of
stock back. A redemption that names no card, or a card that is not the resident's, is
refused with nothing held and nothing sent."""

from __future__ import annotations

import pytest

from rewards.offers.models import Offer
from rewards.topups.models import TopUp
from rewards.vouchers.models import Voucher
from tests.carbon.api_helpers import assert_error, client_for, new_key
from tests.rewards.factories import OfferFactory
from tests.rewards.helpers import REDEEM, VOUCHERS, available, pending
from tests.rewards.topups.factories import CARD, OTHER_CARD

pytestmark = pytest.mark.django_db

START = 5000


@pytest.fixture
def offer(operator):
    return OfferFactory(
        topup=True, partner=operator.partner, price_g=120, stock_total=10, partner_value_cny="20.00"
    )


def redeem_topup(api, offer, **extra):
    return api.post(
        REDEEM, {"offer": offer.pk, "idempotency_key": new_key(), **extra}, format="json"
    )


def test_a_confirmed_top_up_redeems_the_voucher(
    card_holder, offer, operator_server, ledger_is_consistent, django_capture_on_commit_callbacks
):
    api = client_for(card_holder)
    with django_capture_on_commit_callbacks(execute=True):
        response = redeem_topup(api, offer, card_number=CARD)
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "processing"

    [request] = operator_server.acted_on()
    assert request.json["card_number"] == CARD.replace(" ", "")
    assert request.json["amount_fen"] == 2000
    voucher = Voucher.objects.get(pk=response.json()["id"])
    assert voucher.status == "redeemed"
    assert (available(card_holder), pending(card_holder)) == (START - 120, 0)
    [listed] = api.get(VOUCHERS).json()["results"]
    assert listed["status"] == "redeemed"
    ledger_is_consistent()


def test_a_refused_top_up_fails_the_voucher_and_gives_everything_back(
    card_holder, offer, operator_server, ledger_is_consistent, django_capture_on_commit_callbacks
):
    operator_server.handler = lambda request: (422, {"code": "card_blocked"})
    with django_capture_on_commit_callbacks(execute=True):
        response = redeem_topup(client_for(card_holder), offer, card_number=CARD)
    assert response.status_code == 201, response.content

    voucher = Voucher.objects.get(pk=response.json()["id"])
    assert (voucher.status, voucher.refunded) == ("failed", True)
    assert (available(card_holder), pending(card_holder)) == (START, 0)
    assert Offer.objects.get(pk=offer.pk).stock_left == 10
    ledger_is_consistent()


@pytest.mark.parametrize(
    "extra, status, code",
    [
        ({}, 400, "topup_card_required"),
        ({"card_number": OTHER_CARD}, 409, "topup_card_not_linked"),
        ({"card_number": "12ab"}, 400, "invalid_card_number"),
    ],
)
def test_a_top_up_needs_one_of_my_linked_cards(
    card_holder, offer, operator_server, extra, status, code, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = redeem_topup(client_for(card_holder), offer, **extra)
    assert_error(response, status, code)
    assert not Voucher.objects.exists() and not TopUp.objects.exists()
    assert (available(card_holder), pending(card_holder)) == (START, 0)
    assert Offer.objects.get(pk=offer.pk).stock_left == 10
    assert operator_server.received == []


def test_an_operator_that_cannot_take_top_ups_is_refused_before_anything_is_held(
    card_holder, offer, operator
):
    # No endpoint configured: nothing could ever be sent.
    assert operator.partner.endpoint_url == ""
    response = redeem_topup(client_for(card_holder), offer, card_number=CARD)
    assert_error(response, 503, "topup_operator_unavailable")
    assert not Voucher.objects.exists()
    assert (available(card_holder), pending(card_holder)) == (START, 0)
