"""Proof of control when linking a transit card or a partner account (issue 12), over HTTP:
a link is pending and earns nothing until the operator/partner confirms it with a signed
request, or the resident enters the one-time code the partner showed its own customer."""

# The transit and partner-event fixtures live in their API test modules.
# ruff: noqa: F811

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from carbon.adapters.partner_events.models import PartnerEvent, PartnerEventStatus, PartnerLink
from carbon.adapters.transit.cards import card_hash
from carbon.adapters.transit.models import TransitCard, Trip, TripStatus
from carbon.models import Claim, ClaimStatus, Transfer
from carbon.services.partners import partner_create
from tests.carbon.api_helpers import assert_error, client_for, partner_post
from tests.carbon.event_samples import push_events, ride
from tests.carbon.transit_samples import (
    CARD,
    CARDS,
    OTHER_CARD,
    ago,
    linked,
    operator_confirms,
    pushed,
    tap,
)

pytestmark = pytest.mark.django_db

CARD_CODE = "/api/v1/partners/transit/links/code"
LINKS = "/api/v1/me/partner-links"
LINK_CONFIRM = "/api/v1/partners/links/confirm"
LINK_CODE = "/api/v1/partners/links/code"


def a_trip(issued, start=None, number=CARD):
    start = start or ago(hours=3)
    return pushed(
        issued,
        [
            tap("m-jiedaokou", "in", start, number=number),
            tap("m-huquan", "out", start + timedelta(minutes=8), number=number),
        ],
    )


def ask_card(user, number=CARD):
    response = client_for(user).post(CARDS, {"card_number": number, "consent": True}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def card_code(issued, number=CARD, **kw):
    return partner_post(
        CARD_CODE,
        key_id=issued.key_id,
        secret=issued.secret,
        payload={"user_ref": card_hash(number)},
        **kw,
    )


def enter_card_code(user, card_id, code):
    return client_for(user).post(f"{CARDS}/{card_id}/confirm", {"code": code}, format="json")


def ask_account(user, partner, ref="u-42"):
    response = client_for(user).post(
        LINKS, {"partner": partner.pk, "external_ref": ref, "consent": True}, format="json"
    )
    assert response.status_code == 202, response.content
    return response.json()


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# --- nothing without proof ----------------------------------------------------------------


def test_someone_elses_card_asked_for_without_proof_earns_nothing_and_claims_no_trip(
    transit, operator, resident
):
    a_trip(operator, ago(days=1))  # the holder's earlier trip, waiting for a link

    asked = ask_card(resident)

    assert asked["status"] == "pending" and asked["link_token"]
    assert Claim.objects.count() == 0 and Transfer.objects.count() == 0
    assert Trip.objects.get().status == TripStatus.AWAITING_LINK
    # Later trips of the card are not credited to the pending link either.
    body = a_trip(operator, ago(hours=1))
    assert body["trips"]["claims"] == 0 and body["trips"]["awaiting_link"] == 2
    assert not Claim.objects.exists()
    mine = client_for(resident).get(CARDS).json()
    assert [(c["id"], c["status"]) for c in mine] == [(asked["id"], "pending")]


def test_someone_elses_partner_account_asked_for_without_proof_earns_nothing(
    resident, bike_partner
):
    push_events(bike_partner, [ride("early", when=timezone.now() - timedelta(days=1))])

    asked = ask_account(resident, bike_partner.partner)

    assert asked["status"] == "pending" and asked["link_token"]
    assert PartnerEvent.objects.get().status == PartnerEventStatus.UNMATCHED
    later = push_events(bike_partner, [ride("later")]).json()
    assert later["results"][0]["claim_status"] == "awaiting_link"
    assert not Claim.objects.exists()


# --- the partner confirms -----------------------------------------------------------------


def test_the_operators_confirmation_credits_the_earlier_trips_once(
    transit, operator, resident, ledger_is_consistent
):
    a_trip(operator, ago(days=2))
    asked = ask_card(resident)

    signed_at = int(timezone.now().timestamp())
    first = operator_confirms(operator, asked["link_token"], timestamp=signed_at)
    # A retry is signed anew (the same signed request twice is a replay).
    again = operator_confirms(operator, asked["link_token"], timestamp=signed_at - 1)

    assert first.status_code == 200, first.content
    assert first.json()["status"] == "confirmed" and first.json()["link_token"]
    assert again.status_code == 200 and again.json() == first.json()
    claim = Claim.objects.get()
    assert claim.user == resident and claim.status == ClaimStatus.CREDITED
    assert Trip.objects.get().claim == claim
    assert Transfer.objects.filter(code="award").count() == 1
    card = client_for(resident).get(CARDS).json()[0]
    assert card["status"] == "confirmed" and card["link_token"] is None
    # From now on the card earns as its taps arrive.
    assert a_trip(operator, ago(hours=1))["trips"]["claims"] == 1
    ledger_is_consistent()


def test_the_partners_confirmation_credits_the_earlier_events_once(
    resident, bike_partner, ledger_is_consistent
):
    push_events(bike_partner, [ride("early", when=timezone.now() - timedelta(days=2))])
    asked = ask_account(resident, bike_partner.partner)
    body = {"link_token": asked["link_token"], "user_ref": "u-42"}

    signed_at = int(timezone.now().timestamp())
    first = partner_post(
        LINK_CONFIRM,
        key_id=bike_partner.key_id,
        secret=bike_partner.secret,
        payload=body,
        timestamp=signed_at,
    )
    again = partner_post(
        LINK_CONFIRM,
        key_id=bike_partner.key_id,
        secret=bike_partner.secret,
        payload=body,
        timestamp=signed_at - 1,
    )

    assert first.status_code == 200 and again.status_code == 200, again.content
    event = PartnerEvent.objects.get()
    assert event.status == PartnerEventStatus.CLAIMED and event.claim.user == resident
    assert Claim.objects.count() == 1 and Transfer.objects.filter(code="award").count() == 1
    later = push_events(bike_partner, [ride("later")]).json()
    assert later["results"][0]["claim_status"] == "credited"
    ledger_is_consistent()


def test_an_operator_confirmation_naming_another_card_is_refused(
    transit, operator, resident, other_resident
):
    # The impostor asked for the victim's card, then took the token to the operator's app
    # where he is signed in with his own card: the operator names his card, not the victim's.
    asked = ask_card(resident, CARD)

    response = operator_confirms(operator, asked["link_token"], number=OTHER_CARD)

    assert_error(response, 409, "link_ref_mismatch")
    assert TransitCard.objects.get().status == "pending"
    unknown = operator_confirms(operator, "NOSUCHTOKEN23")
    assert_error(unknown, 404, "unknown_link_token")


def test_a_partner_cannot_confirm_a_link_to_another_partners_account(resident, bike_partner, bike):
    asked = ask_account(resident, bike_partner.partner)
    other = partner_create(name="Other Bikes", kind="platform")
    other.partner.behaviours.add(bike)

    response = partner_post(
        LINK_CONFIRM,
        key_id=other.key_id,
        secret=other.secret,
        payload={"link_token": asked["link_token"], "user_ref": "u-42"},
    )

    assert_error(response, 404, "unknown_link_token")
    assert PartnerLink.objects.get().status == "pending"


def test_only_transit_operators_confirm_cards(transit, resident, bike_partner):
    asked = ask_card(resident)

    response = partner_post(
        "/api/v1/partners/transit/links/confirm",
        key_id=bike_partner.key_id,
        secret=bike_partner.secret,
        payload={"link_token": asked["link_token"], "user_ref": card_hash(CARD)},
    )

    assert_error(response, 403, "permission_denied")
    assert TransitCard.objects.get().status == "pending"


def test_a_forged_confirmation_confirms_nothing(transit, operator, resident):
    asked = ask_card(resident)

    response = partner_post(
        "/api/v1/partners/transit/links/confirm",
        key_id=operator.key_id,
        secret="not-the-secret",
        payload={"link_token": asked["link_token"], "user_ref": card_hash(CARD)},
    )

    assert_error(response, 401, "invalid_signature")
    assert TransitCard.objects.get().status == "pending"


# --- the one-time code --------------------------------------------------------------------


def test_the_operators_code_confirms_the_card_and_credits_the_earlier_trips_once(
    transit, operator, resident, ledger_is_consistent
):
    a_trip(operator, ago(days=1))
    asked = ask_card(resident)

    issued = card_code(operator)

    assert issued.status_code == 200, issued.content
    code = issued.json()["code"]
    assert len(code) == 6 and code.isdigit() and issued.json()["pending_links"] == 1
    # Only a keyed hash of the code is kept.
    assert code not in str(list(TransitCard.objects.values()))
    confirmed = enter_card_code(resident, asked["id"], code)
    assert confirmed.status_code == 200, confirmed.content
    body = confirmed.json()
    assert body["status"] == "confirmed"
    assert body["earlier_trips"]["claims"] == 1 and body["earlier_trips"]["credited_g"] > 0
    again = enter_card_code(resident, asked["id"], code)
    assert again.status_code == 200 and again.json()["earlier_trips"]["claims"] == 0
    assert Claim.objects.get().user == resident
    assert Transfer.objects.filter(code="award").count() == 1
    ledger_is_consistent()


def test_the_partners_code_confirms_the_account_and_credits_the_earlier_events(
    resident, bike_partner, ledger_is_consistent
):
    push_events(bike_partner, [ride("early", when=timezone.now() - timedelta(days=1))])
    asked = ask_account(resident, bike_partner.partner)

    issued = partner_post(
        LINK_CODE,
        key_id=bike_partner.key_id,
        secret=bike_partner.secret,
        payload={"user_ref": "u-42"},
    )
    assert issued.status_code == 200, issued.content
    confirmed = client_for(resident).post(
        f"{LINKS}/{asked['id']}/confirm", {"code": issued.json()["code"]}, format="json"
    )

    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["status"] == "confirmed"
    assert confirmed.json()["earlier_events"]["claims"] == 1
    assert PartnerEvent.objects.get().claim.user == resident
    ledger_is_consistent()


def test_wrong_codes_run_out_and_void_the_pending_link(transit, operator, resident, settings):
    settings.CARBON_LINK_CODE_MAX_ATTEMPTS = 5
    a_trip(operator, ago(days=1))
    asked = ask_card(resident)
    signed_at = int(timezone.now().timestamp())
    code = card_code(operator, timestamp=signed_at).json()["code"]

    lefts = []
    for _ in range(4):
        error = assert_error(
            enter_card_code(resident, asked["id"], wrong(code)), 400, "invalid_link_code"
        )
        lefts.append(error["details"]["attempts_left"])
    last = enter_card_code(resident, asked["id"], wrong(code))

    assert lefts == [4, 3, 2, 1]
    assert assert_error(last, 410, "link_void")["details"] == {"reason": "attempts_exhausted"}
    # Void for good: the right code no longer works, and nothing was credited.
    assert_error(enter_card_code(resident, asked["id"], code), 410, "link_void")
    assert TransitCard.objects.get().status == "void"
    assert not Claim.objects.exists()
    assert client_for(resident).get(CARDS).json() == []
    # The operator has nobody waiting on the card any more (a new request, signed anew).
    # (Its own timestamp: "now - 3" could equal the first one's on a slow run, a replay.)
    retry = card_code(operator, timestamp=signed_at - 1)
    assert_error(retry, 404, "no_pending_link")
    # Asking again brings no fresh guesses: the card stays locked for this resident.
    again = client_for(resident).post(CARDS, {"card_number": CARD, "consent": True}, format="json")
    assert_error(again, 409, "link_locked")
    assert ask_card(resident, OTHER_CARD)["status"] == "pending"


def test_a_code_is_needed_and_expires(transit, operator, resident, settings):
    asked = ask_card(resident)
    assert_error(enter_card_code(resident, asked["id"], "123456"), 409, "no_link_code")

    settings.CARBON_LINK_CODE_TTL_SECONDS = 0  # expired as soon as issued
    code = card_code(operator).json()["code"]

    assert_error(enter_card_code(resident, asked["id"], code), 409, "no_link_code")
    # Neither counted as a wrong guess.
    assert TransitCard.objects.get().code_attempts == 0


def test_a_pending_link_expires(transit, operator, resident, settings):
    settings.CARBON_LINK_PENDING_HOURS = 0
    asked = ask_card(resident)

    response = operator_confirms(operator, asked["link_token"])

    assert assert_error(response, 410, "link_void")["details"] == {"reason": "expired"}
    assert client_for(resident).get(CARDS).json() == []


def test_the_code_for_another_card_does_not_confirm_this_one(transit, operator, resident):
    asked = ask_card(resident, CARD)
    # A code for another card (the impostor's own) does not fit the link to this card.
    ask_card(resident, OTHER_CARD)
    other_code = card_code(operator, number=OTHER_CARD).json()["code"]

    response = enter_card_code(resident, asked["id"], other_code)

    assert_error(response, 409, "no_link_code")
    assert TransitCard.objects.get(pk=asked["id"]).status == "pending"


# --- an impostor does not block the holder ----------------------------------------------


def test_an_impostors_pending_link_does_not_block_the_holder_and_is_void_after(
    transit, operator, resident, other_resident, ledger_is_consistent
):
    a_trip(operator, ago(days=1))
    impostor = ask_card(other_resident)  # first, for a card that is not his

    holder = ask_card(resident)
    code = card_code(operator).json()  # shown on the card's statement: the holder sees it
    confirmed = enter_card_code(resident, holder["id"], code["code"])

    assert code["pending_links"] == 2
    assert confirmed.status_code == 200, confirmed.content
    assert Claim.objects.get().user == resident
    assert TransitCard.objects.get(pk=impostor["id"]).status == "void"
    void = assert_error(
        enter_card_code(other_resident, impostor["id"], code["code"]), 410, "link_void"
    )
    assert void["details"] == {"reason": "superseded"}
    assert client_for(other_resident).get(CARDS).json() == []
    assert a_trip(operator, ago(hours=1))["trips"]["claims"] == 1
    assert set(Claim.objects.values_list("user", flat=True)) == {resident.pk}
    ledger_is_consistent()


def test_the_holders_proof_takes_the_card_from_an_unproven_earlier_link(
    transit, operator, resident, other_resident
):
    squatter = linked(other_resident)  # e.g. linked before proof was required
    asked = ask_card(resident)

    assert operator_confirms(operator, asked["link_token"]).status_code == 200

    squatter.refresh_from_db()
    assert squatter.unlinked_at is not None and squatter.end_reason == "superseded"
    a_trip(operator, ago(hours=1))
    assert Claim.objects.get().user == resident
    assert client_for(other_resident).get(CARDS).json() == []


def test_an_impostors_pending_partner_link_does_not_block_the_holder(
    resident, other_resident, bike_partner
):
    impostor = ask_account(other_resident, bike_partner.partner)
    holder = ask_account(resident, bike_partner.partner)

    response = partner_post(
        LINK_CONFIRM,
        key_id=bike_partner.key_id,
        secret=bike_partner.secret,
        payload={"link_token": holder["link_token"], "user_ref": "u-42"},
    )

    assert response.status_code == 200, response.content
    assert PartnerLink.objects.get(pk=impostor["id"]).status == "void"
    assert push_events(bike_partner, [ride()]).json()["results"][0]["claim_status"] == "credited"
    assert Claim.objects.get().user == resident


# --- limits -------------------------------------------------------------------------------


def test_link_attempts_are_rate_limited_per_resident(
    transit, operator, resident, other_resident, bike_partner, settings
):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "link_attempts": "3/hour",
        },
    }
    card = ask_card(resident, CARD)
    ask_account(resident, bike_partner.partner)
    assert_error(enter_card_code(resident, card["id"], "000000"), 409, "no_link_code")

    # The fourth attempt, whatever kind, waits: asking for a card, an account, a code.
    limited = client_for(resident).post(
        CARDS, {"card_number": OTHER_CARD, "consent": True}, format="json"
    )
    assert_error(limited, 429, "throttled")
    assert_error(enter_card_code(resident, card["id"], "000000"), 429, "throttled")
    assert TransitCard.objects.filter(user=resident).count() == 1
    # Per resident: someone else is not slowed down.
    assert ask_card(other_resident, OTHER_CARD)["status"] == "pending"


def test_a_resident_has_a_few_open_pending_links_at_most(transit, resident, settings):
    settings.CARBON_LINK_MAX_PENDING = 2
    first = ask_card(resident, "6227000000000001")
    ask_card(resident, "6227000000000002")

    response = client_for(resident).post(
        CARDS, {"card_number": "6227000000000003", "consent": True}, format="json"
    )

    assert_error(response, 409, "too_many_pending_links")
    # Cancelling one frees a place.
    assert client_for(resident).delete(f"{CARDS}/{first['id']}").status_code == 204
    assert ask_card(resident, "6227000000000003")["status"] == "pending"
    assert TransitCard.objects.get(pk=first["id"]).end_reason == "cancelled"
