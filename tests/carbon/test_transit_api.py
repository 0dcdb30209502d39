"""Transit cards over HTTP: a resident links a card, the operator pushes signed tap batches,
trips are priced along the network and credited (or sent to review)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from carbon.adapters.transit.cards import card_hash
from carbon.adapters.transit.models import Tap, TransitCard, Trip, TripStatus
from carbon.adapters.transit.trips import transit_trips_expire
from carbon.models import Claim, ClaimStatus, PartnerRequestNonce, Transfer
from carbon.services.partners import partner_create
from carbon.services.people import consent_grant
from tests.carbon.api_helpers import (
    assert_error,
    bearer,
    client_for,
    obtain_tokens,
    signed_headers,
    steps_of,
)
from tests.carbon.transit_samples import (
    CARD,
    CARDS,
    OTHER_CARD,
    TAPS,
    ago,
    linked,
    operator_confirms,
    push,
    pushed,
    tap,
)

pytestmark = pytest.mark.django_db


# --- the happy path ----------------------------------------------------------------------


def test_a_signed_batch_becomes_a_credited_trip_priced_along_the_network(
    transit, operator, resident, ledger_is_consistent
):
    linked(resident)
    start = ago(hours=2)

    body = pushed(
        operator,
        [
            tap("m-jiedaokou", "in", start, record_id="g-1"),
            tap("m-wuchang-railway-station", "out", start + timedelta(minutes=18), record_id="g-2"),
        ],
    )

    assert body["accepted"] == 2 and body["duplicates"] == 0 and body["errors"] == 0
    assert body["received"] == 2 and body["duplicate"] == 0 and body["error"] == 0
    assert [r["status"] for r in body["rows"]] == ["accepted", "accepted"]
    assert body["trips"]["created"] == 1 and body["trips"]["claims"] == 1
    trip = Trip.objects.get()
    assert trip.status == TripStatus.CLAIMED and trip.anomaly == ""
    # Jiedaokou -> Baotong Temple -> Zhongnan Road (change to Line 4) -> Meiyuan -> Wuchang
    # Railway Station: 1310 + 1250 + 1220 + 1080 m along the track.
    assert trip.distance_m == 4860
    claim = trip.claim
    assert (
        claim.user == resident
        and claim.evidence_type == "transit"
        and claim.partner == operator.partner
    )
    assert claim.status == ClaimStatus.CREDITED
    assert claim.quantity == Decimal("4.860")
    assert claim.credited_g == 381  # 4.86 km x 78.4 g/km, rounded down
    steps = steps_of(claim)
    facts = steps["verification"]["facts"]
    assert steps["verification"]["tier"] == "transit"
    assert facts["distance_m"] == 4860 and facts["distance_basis"] == "network"
    assert facts["route"] == [
        "m-jiedaokou",
        "m-baotong-temple",
        "m-zhongnan-road",
        "m-meiyuan",
        "m-wuchang-railway-station",
    ]
    # The straight line is shorter: the network distance is what was priced.
    assert 3400 < facts["straight_line_m"] < 3700
    assert Decimal(steps["factor"]["grams_per_unit"]) == Decimal("78.4")
    assert steps["factor"]["gross_g"] == 381
    assert Transfer.objects.get(pk=steps["credit"]["transfer_id"]).amount_g == 381
    # The resident sees it over the API too.
    mine = client_for(resident).get(f"/api/v1/claims/{claim.pk}").json()
    assert mine["credited_g"] == 381 and mine["receipt"]["steps"][0]["facts"]["distance_m"] == 4860
    ledger_is_consistent()


def test_a_bus_boarding_is_one_trip_when_the_factor_counts_trips(
    transit, operator, resident, ledger_is_consistent
):
    linked(resident)

    body = pushed(
        operator, [tap("b-zhongnan-road", "in", ago(minutes=30), mode="bus", line="bus-401")]
    )

    assert body["trips"] == {
        "created": 1,
        "claims": 1,
        "review": 0,
        "awaiting_link": 0,
        "expired": 0,
    }
    claim = Trip.objects.get().claim
    assert claim.behaviour.code == "bus" and claim.quantity == Decimal("1")
    assert claim.status == ClaimStatus.CREDITED and claim.credited_g == 150
    ledger_is_consistent()


# --- replays and bad input -----------------------------------------------------------------


def test_a_replayed_batch_credits_nothing_twice(transit, operator, resident, ledger_is_consistent):
    linked(resident)
    start = ago(hours=3)
    taps = [
        tap("m-jianghan-road", "in", start),
        tap("m-hongshan-square", "out", start + timedelta(minutes=20)),
    ]
    first = pushed(operator, taps, timestamp=int(time.time()) - 5)
    assert first["accepted"] == 2 and first["trips"]["claims"] == 1
    before = (
        Tap.objects.count(),
        Trip.objects.count(),
        Claim.objects.count(),
        Transfer.objects.count(),
    )

    again = pushed(operator, taps)  # the same records, signed anew

    assert again["accepted"] == 0 and again["duplicates"] == 2 and again["errors"] == 0
    assert again["duplicate"] == 2 and again["error"] == 0
    assert [r["status"] for r in again["rows"]] == ["duplicate", "duplicate"]
    assert again["trips"]["created"] == 0 and again["trips"]["claims"] == 0
    assert (
        Tap.objects.count(),
        Trip.objects.count(),
        Claim.objects.count(),
        Transfer.objects.count(),
    ) == before
    ledger_is_consistent()


def test_the_very_same_signed_request_is_refused_as_a_replay(transit, operator, resident):
    linked(resident)
    body = json.dumps({"taps": [tap("m-jiedaokou", "in", ago(hours=1))]}).encode()
    headers = signed_headers(key_id=operator.key_id, secret=operator.secret, body=body)
    assert (
        APIClient()
        .generic("POST", TAPS, body, content_type="application/json", **headers)
        .status_code
        == 200
    )

    response = APIClient().generic("POST", TAPS, body, content_type="application/json", **headers)

    assert_error(response, 409, "replayed_request")
    assert Tap.objects.count() == 1


def test_bad_rows_are_reported_one_by_one_and_good_rows_still_apply(
    transit, operator, resident, ledger_is_consistent
):
    linked(resident)
    start = ago(hours=2)
    pushed(operator, [tap("m-xunlimen", "in", ago(days=1), record_id="old-1")])
    naive = tap("m-jiedaokou", "out", start)
    naive["at"] = (start + timedelta(minutes=5)).replace(tzinfo=None).isoformat()
    rows = [
        tap("m-jiedaokou", "in", start, record_id="ok-in"),  # 0
        tap("m-atlantis", "in", start, record_id="bad-station"),  # 1
        {**tap("m-jiedaokou", "in", start, record_id="bad-mode"), "mode": "ferry"},  # 2
        {**naive, "record_id": "naive"},  # 3
        tap("m-jiedaokou", "out", timezone.now() + timedelta(hours=1), record_id="future"),  # 4
        "not an object",  # 5
        tap("m-jiedaokou", "in", ago(days=1), record_id="old-1"),  # 6 same id, other content
        {**tap("m-jiedaokou", "in", start, record_id="bad-hash"), "card_hash": "1234"},  # 7
        tap("b-jiedaokou", "in", start, mode="bus", record_id="bus-no-line"),  # 8
        tap("m-jiedaokou", "in", start, line="bus-401", record_id="wrong-line"),  # 9
        tap("m-jiedaokou", "in", start, record_id="ok-in"),  # 10 repeated in batch
        {**tap("m-jiedaokou", "in", start, record_id="extra"), "card_number": "6227"},  # 11
        tap("m-guangbutun", "out", start + timedelta(minutes=6), record_id="ok-out"),  # 12
    ]

    body = pushed(operator, rows)

    report = {r["index"]: r for r in body["rows"]}
    assert [report[i]["status"] for i in range(len(rows))] == [
        "accepted",
        "error",
        "error",
        "error",
        "error",
        "error",
        "error",
        "error",
        "error",
        "error",
        "duplicate",
        "error",
        "accepted",
    ]
    assert {i: report[i]["code"] for i in report if report[i]["status"] == "error"} == {
        1: "unknown_station",
        2: "invalid_mode",
        3: "time_without_offset",
        4: "time_in_future",
        5: "malformed_row",
        6: "record_conflict",
        7: "invalid_card_hash",
        8: "line_required",
        9: "mode_mismatch",
        11: "malformed_row",
    }
    assert all(report[i]["message"] for i in report if report[i]["status"] == "error")
    assert report[6]["record_id"] == "old-1" and report[1]["record_id"] == "bad-station"
    assert body["accepted"] == 2 and body["duplicates"] == 1 and body["errors"] == 10
    assert body["received"] == 13 and body["duplicate"] == 1 and body["error"] == 10
    assert set(Tap.objects.values_list("record_id", flat=True)) == {"old-1", "ok-in", "ok-out"}
    # The stored "old-1" kept its first content.
    assert Tap.objects.get(record_id="old-1").station.code == "m-xunlimen"
    trip = Trip.objects.get(entry_station__code="m-jiedaokou")
    assert trip.exit_station.code == "m-guangbutun" and trip.claim.status == ClaimStatus.CREDITED
    ledger_is_consistent()


@pytest.mark.parametrize("body", [b"{}", b'{"taps": {"a": 1}}', b"[]", b"not json"])
def test_a_batch_that_is_not_a_list_of_taps_is_refused(transit, operator, body):
    headers = signed_headers(key_id=operator.key_id, secret=operator.secret, body=body)

    response = APIClient().generic("POST", TAPS, body, content_type="application/json", **headers)

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in ("invalid", "malformed_request")
    assert Tap.objects.count() == 0


def test_a_batch_over_the_size_limit_is_refused_whole(transit, operator, resident):
    start = ago(hours=1)
    rows = [tap("m-jiedaokou", "in", start, record_id=f"r{i}") for i in range(5001)]

    response = push(operator, rows)

    assert_error(response, 413, "batch_too_large")
    assert Tap.objects.count() == 0


@pytest.mark.parametrize("how", ["wrong_secret", "stale", "unknown_key", "unsigned"])
def test_a_forged_or_stale_signature_is_refused_and_nothing_is_written(
    transit, operator, resident, how
):
    linked(resident)
    body = json.dumps({"taps": [tap("m-jiedaokou", "in", ago(hours=1))]}).encode()
    if how == "wrong_secret":
        headers = signed_headers(key_id=operator.key_id, secret="not-the-secret", body=body)
    elif how == "stale":
        headers = signed_headers(
            key_id=operator.key_id,
            secret=operator.secret,
            body=body,
            timestamp=int(time.time()) - 3600,
        )
    elif how == "unknown_key":
        headers = signed_headers(key_id="pk_nobody", secret=operator.secret, body=body)
    else:
        headers = {}

    response = APIClient().generic("POST", TAPS, body, content_type="application/json", **headers)

    assert_error(response, 401, "invalid_signature")
    assert Tap.objects.count() == 0 and Trip.objects.count() == 0
    assert PartnerRequestNonce.objects.count() == 0


def test_a_partner_that_is_not_a_transit_operator_is_forbidden(transit, resident):
    linked(resident)
    merchant = partner_create(name="Green Grocer", kind="merchant")

    response = push(merchant, [tap("m-jiedaokou", "in", ago(hours=1))])

    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "permission_denied"
    assert Tap.objects.count() == 0


def test_a_resident_token_cannot_push_taps(transit, resident):
    client = bearer(obtain_tokens(resident.email)["access"])

    response = client.post(TAPS, {"taps": [tap("m-jiedaokou", "in", ago(hours=1))]}, format="json")

    assert_error(response, 401, "invalid_signature")
    assert Tap.objects.count() == 0


def test_a_bus_operator_cannot_report_taps_on_the_metro_operators_lines(
    transit, operator, resident
):
    other = partner_create(name="Hubei Bus Group", kind="transit_operator")

    body = pushed(other, [tap("m-jiedaokou", "in", ago(hours=1), line="metro-2", record_id="x")])

    assert body["rows"][0]["code"] == "not_your_line"
    assert Tap.objects.count() == 0


# --- impossible trips go to review -----------------------------------------------------------


def test_an_impossibly_fast_trip_goes_to_review_not_to_credit(
    transit, operator, resident, ledger_is_consistent
):
    linked(resident)
    start = ago(hours=2)

    body = pushed(
        operator,
        [
            tap("m-zhongshan-park", "in", start),
            tap("m-optics-valley-square", "out", start + timedelta(minutes=4)),
        ],
    )

    assert body["trips"]["review"] == 1
    trip = Trip.objects.get()
    assert trip.status == TripStatus.REVIEW and trip.anomaly == "impossible_speed"
    claim = trip.claim
    assert (
        claim.status == ClaimStatus.NEEDS_REVIEW and claim.credited_g == 0 and claim.award is None
    )
    assert claim.receipt["code"] == "impossible_speed"
    assert steps_of(claim)["verification"]["outcome"] == "needs_review"
    assert claim in Claim.objects.review_queue()
    assert Transfer.objects.count() == 0
    ledger_is_consistent()


# --- linking cards ----------------------------------------------------------------------------


def test_taps_before_linking_are_credited_when_the_card_is_linked_within_the_window(
    transit, operator, resident, ledger_is_consistent
):
    recent, old = ago(days=2), ago(days=9)
    body = pushed(
        operator,
        [
            tap("m-jiedaokou", "in", old),
            tap("m-guangbutun", "out", old + timedelta(minutes=5)),
            tap("m-jiedaokou", "in", recent),
            tap("m-huquan", "out", recent + timedelta(minutes=8)),
        ],
    )
    assert body["trips"]["created"] == 2 and body["trips"]["claims"] == 0
    assert body["trips"]["awaiting_link"] == 2
    assert set(Trip.objects.values_list("status", flat=True)) == {TripStatus.AWAITING_LINK}
    assert Claim.objects.count() == 0

    response = client_for(resident).post(
        CARDS, {"card_number": CARD, "label": "Commute", "consent": True}, format="json"
    )
    # Pending until the operator confirms the card is the resident's: nothing credited yet.
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending" and Claim.objects.count() == 0

    confirmed = operator_confirms(operator, response.json()["link_token"])

    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["status"] == "confirmed"
    # Jiedaokou -> Guangbutun -> Huquan: 1310 + 1630 m.
    claim = Claim.objects.get()
    assert claim.credited_g == int(Decimal("2.940") * Decimal("78.4"))
    credited = Trip.objects.get(started_at=recent)
    assert credited.status == TripStatus.CLAIMED and credited.claim.user == resident
    assert credited.claim.status == ClaimStatus.CREDITED
    assert Trip.objects.get(started_at=old).status == TripStatus.EXPIRED
    ledger_is_consistent()


def test_trips_of_a_card_nobody_links_within_the_window_expire_and_are_never_credited(
    transit, operator, resident, ledger_is_consistent
):
    start = ago(days=1)
    pushed(
        operator,
        [tap("m-jiedaokou", "in", start), tap("m-huquan", "out", start + timedelta(minutes=8))],
    )

    assert transit_trips_expire(now=timezone.now() + timedelta(days=7)) == 1

    response = client_for(resident).post(
        CARDS, {"card_number": CARD, "consent": True}, format="json"
    )
    assert response.status_code == 202
    assert operator_confirms(operator, response.json()["link_token"]).status_code == 200
    assert Trip.objects.get().status == TripStatus.EXPIRED
    assert Claim.objects.count() == 0
    ledger_is_consistent()


def test_linking_keeps_only_a_keyed_hash_and_the_last_four_digits(transit, resident):
    response = client_for(resident).post(
        CARDS, {"card_number": CARD, "label": "Blue card", "consent": True}, format="json"
    )

    assert response.status_code == 202, response.content
    body = response.json()
    assert body["last_digits"] == "7890" and body["label"] == "Blue card"
    assert "6227" not in json.dumps(body)
    card = TransitCard.objects.get()
    assert card.card_hash == card_hash("6227001234567890") and len(card.card_hash) == 64
    assert "622700123456" not in json.dumps(list(TransitCard.objects.values()), default=str)
    assert resident.consents.current().filter(scope="transit_card").exists()
    listed = client_for(resident).get(CARDS).json()
    assert [c["id"] for c in listed] == [card.pk] and listed[0]["last_digits"] == "7890"


def test_linking_without_consent_is_refused(transit, resident):
    response = client_for(resident).post(CARDS, {"card_number": CARD}, format="json")

    assert_error(response, 409, "consent_required")
    assert TransitCard.objects.count() == 0


def test_linking_with_consent_already_granted_needs_no_flag(transit, resident):
    consent_grant(user=resident, scope="transit_card")

    response = client_for(resident).post(CARDS, {"card_number": CARD}, format="json")

    assert response.status_code == 202, response.content


@pytest.mark.parametrize(
    "number", ["1234567", "123456789012345678901", "6227 0012 3456 789X", "", "12.345678"]
)
def test_a_malformed_card_number_is_refused(transit, resident, number):
    response = client_for(resident).post(
        CARDS, {"card_number": number, "consent": True}, format="json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in ("invalid_card_number", "invalid")
    assert TransitCard.objects.count() == 0


def test_asking_for_a_card_linked_to_another_resident_reveals_nothing_and_earns_nothing(
    transit, operator, resident, other_resident
):
    # Behaviour change (issue 12): this was 409 card_linked_to_another_resident, which told
    # anyone whether a card number was linked. Now the request is pending like any other,
    # and only the operator's proof could move the card.
    linked(other_resident)

    response = client_for(resident).post(
        CARDS, {"card_number": "6227001234567890", "consent": True}, format="json"
    )

    assert response.status_code == 202 and response.json()["status"] == "pending"
    assert list(TransitCard.objects.linked().values_list("user", flat=True)) == [other_resident.pk]
    start = ago(hours=1)
    pushed(
        operator,
        [tap("m-jiedaokou", "in", start), tap("m-huquan", "out", start + timedelta(minutes=8))],
    )
    assert Claim.objects.get().user == other_resident


def test_linking_the_same_card_again_answers_the_existing_link(transit, resident):
    first = client_for(resident).post(CARDS, {"card_number": CARD, "consent": True}, format="json")

    again = client_for(resident).post(CARDS, {"card_number": "6227001234567890"}, format="json")

    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert TransitCard.objects.count() == 1


def test_someone_elses_card_cannot_be_unlinked(transit, resident, other_resident):
    theirs = linked(other_resident)

    response = client_for(resident).delete(f"{CARDS}/{theirs.pk}")

    assert_error(response, 404, "not_found")
    theirs.refresh_from_db()
    assert theirs.unlinked_at is None


def test_an_unlinked_card_earns_nothing_until_linked_again(
    transit, operator, resident, other_resident, ledger_is_consistent
):
    card = linked(resident)
    assert client_for(resident).delete(f"{CARDS}/{card.pk}").status_code == 204
    assert client_for(resident).get(CARDS).json() == []
    assert client_for(resident).delete(f"{CARDS}/{card.pk}").status_code == 404
    start = ago(hours=2)

    body = pushed(
        operator,
        [tap("m-jiedaokou", "in", start), tap("m-huquan", "out", start + timedelta(minutes=8))],
    )

    assert body["trips"]["awaiting_link"] == 1 and Claim.objects.count() == 0
    # Now someone else may link the card, and gets the trip still inside the window.
    response = client_for(other_resident).post(
        CARDS, {"card_number": CARD, "consent": True}, format="json"
    )
    assert response.status_code == 202, response.content
    assert operator_confirms(operator, response.json()["link_token"]).status_code == 200
    assert Trip.objects.get().claim.user == other_resident
    ledger_is_consistent()


def test_cards_need_a_resident_login(transit, api):
    assert api.get(CARDS).status_code == 401
    assert api.post(CARDS, {"card_number": CARD, "consent": True}, format="json").status_code == 401


def test_a_trip_credited_from_the_card_is_not_paid_again_for_a_self_declared_ride(
    transit, operator, resident, ledger_is_consistent
):
    linked(resident)
    start = ago(hours=2)
    pushed(
        operator,
        [tap("m-jiedaokou", "in", start), tap("m-huquan", "out", start + timedelta(minutes=8))],
    )

    response = client_for(resident).post(
        "/api/v1/claims",
        {
            "behaviour": "metro",
            "quantity": "3",
            "idempotency_key": "7b0c9a52-30a4-4c1e-9f3e-3f6f3b0a9c11",
            "occurred_at": (start + timedelta(minutes=2)).isoformat(),
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "rejected"
    assert response.json()["receipt"]["code"] == "already_credited_by_stronger_evidence"
    ledger_is_consistent()


def test_a_users_card_list_shows_only_their_own_cards(transit, resident, other_resident):
    linked(other_resident, OTHER_CARD)
    mine = linked(resident)

    assert [c["id"] for c in client_for(resident).get(CARDS).json()] == [mine.pk]


# --- the admin and the schema ------------------------------------------------------------------


def test_the_admin_shows_the_network_cards_taps_and_trips_without_card_numbers(
    transit, operator, resident
):
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    linked(resident)
    start = ago(hours=2)
    pushed(
        operator,
        [
            tap("m-zhongshan-park", "in", start),
            tap("m-optics-valley-square", "out", start + timedelta(minutes=4)),
        ],
    )
    admin = Client()
    admin.force_login(
        get_user_model().objects.create_superuser("root@example.org", "a-strong-pass-1")
    )
    pages = []
    for model in ("station", "transitline", "transitcard", "tap", "trip"):
        pages.append(reverse(f"admin:carbon_{model}_changelist"))
    trip = Trip.objects.get()
    pages += [
        reverse("admin:carbon_trip_changelist") + "?anomaly=impossible_speed&status=review",
        reverse("admin:carbon_trip_change", args=[trip.pk]),
        reverse("admin:carbon_transitline_change", args=[trip.entry_station.stops.first().line_id]),
        reverse("admin:carbon_transitcard_change", args=[TransitCard.objects.get().pk]),
        reverse("admin:carbon_tap_change", args=[Tap.objects.first().pk]),
    ]
    for url in pages:
        response = admin.get(url)
        assert response.status_code == 200, url
        # The last digits are shown; the whole number is stored nowhere to be shown.
        assert CARD.replace(" ", "").encode() not in response.content, url
    listed = admin.get(reverse("admin:carbon_trip_changelist") + "?anomaly=impossible_speed")
    assert f"/admin/carbon/claim/{trip.claim_id}/".encode() in listed.content


def test_the_transit_endpoints_are_in_the_api_schema(db):
    schema = APIClient().get("/api/schema/", {"format": "json"})

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {
        "/api/v1/partners/transit/taps",
        "/api/v1/me/transit-cards",
        "/api/v1/me/transit-cards/{id}",
    } <= set(paths)
    body = paths["/api/v1/partners/transit/taps"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    assert body["schema"]["$ref"].endswith("/TapBatchRequest")
    components = schema.json()["components"]["schemas"]
    tap_schema = components[
        components["TapBatchRequest"]["properties"]["taps"]["items"]["$ref"].split("/")[-1]
    ]
    assert {"record_id", "card_hash", "station", "mode", "direction", "at"} <= set(
        tap_schema["required"]
    )


def test_implausible_record_ids_and_times_are_row_errors_and_poison_nothing(
    transit, operator, resident, ledger_is_consistent
):
    linked(resident)
    rows = [
        tap("m-zhongshan-park", "in", ago(hours=2), record_id=" spaced"),
        tap("m-zhongshan-park", "in", ago(hours=2), record_id="nul\x00id"),
        {**tap("m-zhongshan-park", "in", ago(hours=2)), "at": "0001-01-01T00:00:00+14:00"},
        {**tap("m-zhongshan-park", "in", ago(hours=2)), "at": "0001-01-01T05:00:00+00:00"},
        tap("m-zhongshan-park", "in", ago(days=40)),
    ]
    body = pushed(operator, rows)
    codes = [r.get("code") for r in body["rows"]]
    assert codes == [
        "invalid_record_id",
        "invalid_record_id",
        "time_too_old",
        "time_too_old",
        "time_too_old",
    ]
    assert not Tap.objects.exists()
    # The card still works for the next batch.
    ok = pushed(
        operator,
        [
            tap("m-zhongshan-park", "in", ago(hours=2)),
            tap("m-hongshan-square", "out", ago(hours=1, minutes=30)),
        ],
    )
    assert ok["accepted"] == 2 and ok["trips"]["claims"] == 1
    ledger_is_consistent()


def test_non_ascii_digits_are_not_a_card_number(transit, resident, other_resident):
    linked(resident)
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in CARD)
    response = client_for(other_resident).post(
        "/api/v1/me/transit-cards", {"card_number": fullwidth, "consent": True}, format="json"
    )
    assert response.status_code == 400, response.content
    assert TransitCard.objects.count() == 1
