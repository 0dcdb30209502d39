"""Partner events: signed batches, per-behaviour validation, matching by linked identifier."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from carbon.adapters.partner_events.feed import partner_events_expire
from carbon.adapters.partner_events.matching import external_ref_hash
from carbon.adapters.partner_events.models import PartnerEvent, PartnerEventStatus, PartnerLink
from carbon.models import Claim, ClaimStatus, Transfer
from carbon.services.partners import partner_create
from tests.carbon.api_helpers import assert_error, client_for, partner_post
from tests.carbon.event_samples import EVENTS as URL
from tests.carbon.event_samples import ask_link, link, ride
from tests.carbon.event_samples import push_events as push


def test_linked_resident_is_credited_from_a_signed_event(
    auth_api, resident, bike_partner, ledger_is_consistent
):
    assert link(auth_api, bike_partner).status_code == 200
    response = push(bike_partner, [ride()])
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 1 and body["results"][0]["claim_status"] == "credited"
    claim = Claim.objects.get(user=resident)
    # 3.2 km x 93.3 g/km at the partner tier (100%)
    assert claim.credited_g == 298
    assert claim.evidence_type == "partner"
    assert claim.receipt["steps"][0]["facts"]["partner"] == "QingJu"
    # the resident's id at the partner is never stored in the clear
    assert not PartnerLink.objects.filter(external_ref_hash="u-42").exists()
    ledger_is_consistent()


def test_replayed_event_ids_credit_once_and_changed_payload_is_a_row_error(
    auth_api, resident, bike_partner
):
    link(auth_api, bike_partner)
    when = timezone.now() - timedelta(hours=1)
    first_sent = int(timezone.now().timestamp()) - 10
    assert push(bike_partner, [ride(when=when)], timestamp=first_sent).json()["accepted"] == 1
    # A retry is signed anew (a byte-identical replay of the request itself is refused).
    replay = push(bike_partner, [ride(when=when)], timestamp=first_sent + 5)
    again = replay.json()
    assert again["duplicate"] == 1 and again["accepted"] == 0
    changed = push(bike_partner, [ride(when=when, km=9.9)]).json()
    # One conflict code for every partner feed (it was event_conflict here before).
    assert changed["rows"][0] == {
        "index": 0,
        "event_id": "e1",
        "status": "error",
        "code": "record_conflict",
        "message": "This event_id was already received with different content.",
    }
    assert changed["results"] == changed["rows"]  # the deprecated name, kept for old clients
    assert Claim.objects.filter(user=resident).count() == 1
    assert Transfer.objects.filter(code="award").count() == 1


def test_bad_rows_are_reported_and_good_rows_still_apply(
    auth_api, resident, bike_partner, recycling
):
    link(auth_api, bike_partner)
    events = [
        ride("ok-1"),
        ride("fast", km=30, seconds=600),  # 180 km/h on a bicycle
        {"event_id": "no-behaviour", "user_ref": "u-42"},
        ride("future", when=timezone.now() + timedelta(hours=2)),
        ride("old", when=timezone.now() - timedelta(days=30)),
        {**ride("recycle"), "behaviour": "recycling"},  # not allowed for this partner
        ride("neg", km=-1),
        "not an object",
        ride("ok-2", km=1.0, seconds=300),
    ]
    body = push(bike_partner, events).json()
    status = {r["event_id"]: (r["status"], r.get("code")) for r in body["results"]}
    assert [r["index"] for r in body["rows"]] == list(range(len(events)))
    assert body["received"] == len(events) and body["results"] == body["rows"]
    assert status["ok-1"] == ("accepted", None) and status["ok-2"] == ("accepted", None)
    assert status["fast"] == ("error", "impossible_speed")
    assert status["no-behaviour"] == ("error", "behaviour_not_allowed")
    assert status["future"] == ("error", "invalid_time")
    assert status["old"] == ("error", "outside_claim_window")
    assert status["recycle"] == ("error", "behaviour_not_allowed")
    assert status["neg"] == ("error", "invalid_field")
    assert status[""] == ("error", "malformed_row")
    assert body["accepted"] == 2 and body["error"] == 7
    assert PartnerEvent.objects.count() == 2
    assert Claim.objects.filter(user=resident, status=ClaimStatus.CREDITED).count() == 2


def test_nul_in_an_event_is_a_bad_row_not_a_failed_batch(
    auth_api, resident, bike_partner, ledger_is_consistent
):
    # PostgreSQL stores NUL neither in text nor in jsonb: each such row is refused with a
    # clear code, and the other rows of the batch still apply.
    link(auth_api, bike_partner)
    events = [
        ride("nul\x00id"),
        ride("nul-ref", user_ref="u-\x00"),
        {**ride("nul-detail"), "note": "a\x00b"},
        ride("fine"),
    ]
    response = push(bike_partner, events)

    assert response.status_code == 200, response.content
    body = response.json()
    codes = [(r["status"], r.get("code")) for r in body["rows"]]
    assert codes == [("error", "malformed_row")] * 3 + [("accepted", None)]
    assert list(PartnerEvent.objects.values_list("event_id", flat=True)) == ["fine"]
    ledger_is_consistent()


def test_events_before_linking_are_credited_on_linking_within_the_window(
    auth_api, resident, bike_partner, ledger_is_consistent
):
    body = push(bike_partner, [ride("early", when=timezone.now() - timedelta(days=2))]).json()
    assert body["results"][0]["claim_status"] == "awaiting_link"
    assert not Claim.objects.exists()
    assert link(auth_api, bike_partner).status_code == 200
    event = PartnerEvent.objects.get(event_id="early")
    assert event.status == PartnerEventStatus.CLAIMED
    assert event.claim.user == resident and event.claim.status == ClaimStatus.CREDITED
    ledger_is_consistent()


def test_unlinked_events_expire_after_the_window(bike_partner, auth_api):
    push(bike_partner, [ride("early", when=timezone.now() - timedelta(days=6))])
    assert partner_events_expire(now=timezone.now() + timedelta(days=2)) == 1
    assert link(auth_api, bike_partner).status_code == 200
    assert PartnerEvent.objects.get().status == PartnerEventStatus.EXPIRED
    assert not Claim.objects.exists()


def test_forged_and_stale_signatures_write_nothing(bike_partner, auth_api):
    link(auth_api, bike_partner)
    forged = partner_post(
        URL, key_id=bike_partner.key_id, secret="not-the-secret", payload={"events": [ride()]}
    )
    assert_error(forged, 401, "invalid_signature")
    stale = push(bike_partner, [ride()], timestamp=int(timezone.now().timestamp()) - 3600)
    assert_error(stale, 401, "invalid_signature")
    assert not PartnerEvent.objects.exists() and not Claim.objects.exists()


def test_linking_needs_consent_and_one_resident_per_partner_account(
    auth_api, resident, other_resident, bike_partner
):
    response = ask_link(auth_api, bike_partner.partner, consent=False)
    assert_error(response, 409, "consent_required")
    assert link(auth_api, bike_partner).status_code == 200
    other = client_for(other_resident)
    # Behaviour change (issue 12): a second resident's request is not refused with 409
    # partner_ref_taken (that told anyone whether an account was linked); it stays pending,
    # earns nothing, and only the partner's proof could move the account.
    asked = other.post(
        "/api/v1/me/partner-links",
        {"partner": bike_partner.partner.pk, "external_ref": "u-42", "consent": True},
        format="json",
    )
    assert asked.status_code == 202 and asked.json()["status"] == "pending"
    push(bike_partner, [ride()])
    assert Claim.objects.get().user == resident
    assert list(PartnerLink.objects.linked().values_list("user", flat=True)) == [resident.pk]


def test_someone_elses_link_cannot_be_removed(auth_api, other_resident, bike_partner):
    from carbon.adapters.partner_events.links import partner_link_create

    theirs = partner_link_create(
        user=other_resident, partner=bike_partner.partner, external_ref="x", consent=True
    ).link
    response = auth_api.delete(f"/api/v1/me/partner-links/{theirs.pk}")
    assert_error(response, 404, "not_found")
    theirs.refresh_from_db()
    assert theirs.unlinked_at is None


def test_revoked_consent_stops_credits(auth_api, resident, bike_partner):
    assert link(auth_api, bike_partner).status_code == 200
    assert auth_api.delete("/api/v1/me/consents/bike_share").status_code == 204
    body = push(bike_partner, [ride()]).json()
    assert body["results"][0]["claim_status"] == "rejected"
    claim = Claim.objects.get(user=resident)
    assert claim.receipt["code"] == "no_consent" and claim.credited_g == 0


def test_residents_cannot_submit_partner_evidence_themselves(auth_api, bike):
    response = auth_api.post(
        "/api/v1/claims",
        {
            "behaviour": "bike-share",
            "quantity": 3,
            "idempotency_key": "6f1c7a52-30a4-4c1e-9f3e-3f6f3b0a9c99",
            "evidence": {"type": "partner", "event": 1},
        },
        format="json",
    )
    assert_error(response, 400, "evidence_not_accepted")
    assert not Claim.objects.exists()


def test_hash_is_keyed_per_partner(bike_partner):
    other = partner_create(name="Other", kind="platform").partner
    assert external_ref_hash(
        partner=bike_partner.partner, external_ref="u-42"
    ) != external_ref_hash(partner=other, external_ref="u-42")


def test_erasing_the_account_forgets_partner_links_but_keeps_the_ledger(
    auth_api, resident, bike_partner
):
    from carbon.services.people import user_erase

    link(auth_api, bike_partner)
    push(bike_partner, [ride()])
    assert auth_api.get("/api/v1/me/export").json()["partner_links"][0]["partner"] == "QingJu"
    user_erase(user=resident)
    stored = PartnerLink.objects.get()
    assert stored.unlinked_at is not None and stored.external_ref_hash == ""
    assert Transfer.objects.filter(code="award").count() == 1
    # The partner's next event for that id matches nobody.
    body = push(bike_partner, [ride("e2")]).json()
    assert body["results"][0]["claim_status"] == "awaiting_link"


def test_impossible_dates_and_vanishing_quantities_are_row_errors(
    auth_api, bike_partner, recycling
):
    bike_partner.partner.behaviours.add(recycling)
    link(auth_api, bike_partner)
    body = push(
        bike_partner,
        [
            ride("month-13", when=None) | {"occurred_at": "2026-13-45T00:00:00+00:00"},
            {**ride("tiny"), "behaviour": "recycling", "weight_kg": "0.0001", "material": "glass"},
            ride("ok"),
        ],
    ).json()
    codes = {r["event_id"]: r.get("code") for r in body["results"]}
    assert codes == {"month-13": "invalid_time", "tiny": "invalid_quantity", "ok": None}
    assert list(PartnerEvent.objects.values_list("event_id", flat=True)) == ["ok"]
