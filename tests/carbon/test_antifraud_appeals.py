"""Penalty box, mutually exclusive evidence, and appeals (refused and missed credits)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from carbon.models import Appeal, AppealStatus, Claim, ClaimStatus, PenaltyBox
from carbon.services.claims import claim_review, claim_submit, claims_release_held
from carbon.services.people import consent_grant
from tests.carbon.api_helpers import assert_error, claim_payload, new_key
from tests.carbon.factories import RefusedClaimFactory, UserFactory


@pytest.fixture
def low_throttle(settings):
    settings.CARBON_THROTTLE_ACTIONS = 3
    settings.CARBON_THROTTLE_WINDOW_MINUTES = 15
    settings.CARBON_PENALTY_BASE_MINUTES = 15


def test_a_burst_puts_the_resident_in_a_growing_penalty_box(
    auth_api, resident, metro, low_throttle, ledger_is_consistent
):
    statuses = [
        auth_api.post("/api/v1/claims", claim_payload("metro", 1), format="json").json()["status"]
        for _ in range(5)
    ]
    assert statuses == ["credited", "credited", "credited", "held", "held"]
    held = Claim.objects.filter(status=ClaimStatus.HELD).order_by("submitted_at")
    box = PenaltyBox.objects.get(user=resident)
    assert box.level == 1
    assert all(c.held_until == box.until for c in held)
    assert held[0].receipt["code"] == "penalty_box" and held[0].credited_g == 0

    # Nothing is released before the period ends...
    assert claims_release_held(now=timezone.now()) == 0
    # ...then the held claims are decided by the same rules.
    assert claims_release_held(now=box.until + timedelta(seconds=1)) == 2
    assert Claim.objects.filter(status=ClaimStatus.CREDITED).count() == 5
    released = Claim.objects.get(pk=held[0].pk)
    assert released.receipt["history"][-1]["event"] == "released"
    ledger_is_consistent()


def test_a_second_burst_within_a_day_doubles_the_stay(resident, metro, low_throttle):
    now = timezone.now()
    for _ in range(4):
        claim_submit(user=resident, behaviour_code="metro", quantity=1, idempotency_key=new_key())
    first = PenaltyBox.objects.get(user=resident)
    assert first.level == 1
    first_len = first.until - first.last_triggered_at
    # The box ends, the old burst leaves the window, a new burst comes.
    PenaltyBox.objects.filter(pk=first.pk).update(until=now - timedelta(minutes=1))
    Claim.objects.filter(user=resident).update(submitted_at=now - timedelta(minutes=20))
    for _ in range(4):
        claim_submit(user=resident, behaviour_code="metro", quantity=1, idempotency_key=new_key())
    second = PenaltyBox.objects.get(user=resident)
    assert second.level == 2
    assert second.until - second.last_triggered_at == first_len * 2


def test_partner_feeds_are_not_bursts(resident, metro, low_throttle, transit_feed, operator):
    consent_grant(user=resident, scope="transit_card")
    start = timezone.now() - timedelta(hours=10)
    for i in range(6):
        claim, _ = claim_submit(
            user=resident,
            behaviour_code="metro",
            quantity=2,
            idempotency_key=new_key(),
            occurred_at=start + timedelta(hours=i),
            evidence_type="transit",
            partner=operator.partner,
            from_resident=False,
        )
        assert claim.status == ClaimStatus.CREDITED
    assert not PenaltyBox.objects.exists()


def test_same_act_card_after_self_declaration_is_credited_once(
    resident, metro, transit_feed, operator, ledger_is_consistent
):
    consent_grant(user=resident, scope="transit_card")
    when = timezone.now() - timedelta(hours=2)
    self_claim, _ = claim_submit(
        user=resident,
        behaviour_code="metro",
        quantity=10,
        idempotency_key=new_key(),
        occurred_at=when,
    )
    assert self_claim.credited_g == 392  # 10 km x 78.4 at 50%
    card_claim, _ = claim_submit(
        user=resident,
        behaviour_code="metro",
        quantity=10,
        idempotency_key=new_key(),
        occurred_at=when + timedelta(minutes=5),
        evidence_type="transit",
        partner=operator.partner,
        from_resident=False,
    )
    # The card trip pays the full 784 g, less what the weaker evidence already earned.
    assert card_claim.credited_g == 784 - 392
    step = next(s for s in card_claim.receipt["steps"] if s["step"] == "exclusive_evidence")
    assert step["cut_g"] == 392 and step["other_claims"] == [str(self_claim.pk)]

    # And a self declaration of the same ride after the card record earns nothing.
    late, _ = claim_submit(
        user=resident,
        behaviour_code="metro",
        quantity=10,
        idempotency_key=new_key(),
        occurred_at=when + timedelta(minutes=10),
    )
    assert late.status == ClaimStatus.REJECTED
    assert late.receipt["code"] == "already_credited_by_stronger_evidence"
    ledger_is_consistent()


def test_refused_claim_appeal_goes_to_review_and_is_credited_on_approval(
    auth_api, resident, own_bag, ledger_is_consistent
):
    admin = UserFactory(is_staff=True, role="administrator")
    when = timezone.now() - timedelta(hours=1)
    # Fill the daily cap (10 g at 5 g/use x 50%: 2.5 -> 2 g per use)... use a refusal we control:
    claim = RefusedClaimFactory(user=resident, behaviour=own_bag, occurred_at=when)
    key = new_key()
    response = auth_api.post(
        f"/api/v1/claims/{claim.pk}/appeal",
        {"reason": "It was my own photo, taken today.", "idempotency_key": key},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["claim"]["status"] == "needs_review"
    # A retry returns the same appeal; a second appeal while one is open is refused.
    again = auth_api.post(
        f"/api/v1/claims/{claim.pk}/appeal",
        {"reason": "It was my own photo, taken today.", "idempotency_key": key},
        format="json",
    )
    assert again.status_code == 200 and again.json()["id"] == response.json()["id"]
    second = auth_api.post(
        f"/api/v1/claims/{claim.pk}/appeal",
        {"reason": "again", "idempotency_key": new_key()},
        format="json",
    )
    assert_error(second, 409, "appeal_not_allowed")

    decided = claim_review(claim_id=claim.pk, reviewer=admin, approve=True, note="Original photo.")
    assert decided.status == ClaimStatus.CREDITED and decided.credited_g == 2
    assert Appeal.objects.get().status == AppealStatus.APPROVED
    events = [h["event"] for h in decided.receipt["history"]]
    assert events == ["appeal", "review"]
    ledger_is_consistent()


def test_missed_credit_appeal_creates_a_claim_in_review(
    auth_api, resident, metro, ledger_is_consistent
):
    admin = UserFactory(is_staff=True, role="administrator")
    when = (timezone.now() - timedelta(days=2)).replace(microsecond=0)
    response = auth_api.post(
        "/api/v1/appeals",
        {
            "behaviour": "metro",
            "quantity": "8.5",
            "occurred_at": when.isoformat(),
            "reason": "My card trip from Jiedaokou to Guanggu was never credited.",
            "idempotency_key": new_key(),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    claim = Claim.objects.get(user=resident)
    assert claim.status == ClaimStatus.NEEDS_REVIEW
    assert claim.receipt["code"] == "missed_credit_appeal"
    decided = claim_review(
        claim_id=claim.pk, reviewer=admin, approve=True, note="Checked the operator's log."
    )
    assert decided.status == ClaimStatus.CREDITED
    assert decided.occurred_at == when  # credited retroactively, for the day it happened
    assert auth_api.get("/api/v1/appeals").json()["results"][0]["status"] == "approved"
    ledger_is_consistent()


def test_appeals_outside_the_window_or_on_others_claims_are_refused(
    auth_api, other_resident, resident, metro
):
    old = timezone.now() - timedelta(days=30)
    response = auth_api.post(
        "/api/v1/appeals",
        {
            "behaviour": "metro",
            "quantity": "3",
            "occurred_at": old.isoformat(),
            "reason": "missed",
            "idempotency_key": new_key(),
        },
        format="json",
    )
    assert_error(response, 400, "outside_claim_window")
    theirs = RefusedClaimFactory(user=other_resident, behaviour=metro)
    response = auth_api.post(
        f"/api/v1/claims/{theirs.pk}/appeal",
        {"reason": "mine!", "idempotency_key": new_key()},
        format="json",
    )
    assert_error(response, 404, "not_found")
    stale = RefusedClaimFactory(user=resident, behaviour=metro, occurred_at=old, decided_at=old)
    response = auth_api.post(
        f"/api/v1/claims/{stale.pk}/appeal",
        {"reason": "late", "idempotency_key": new_key()},
        format="json",
    )
    assert_error(response, 409, "appeal_not_allowed")
    assert not Appeal.objects.exists()


def test_missed_appeal_retries_return_the_original_and_changes_conflict(auth_api, metro):
    when = (timezone.now() - timedelta(days=1)).replace(microsecond=0).isoformat()
    body = {
        "behaviour": "metro",
        "quantity": "8.5",
        "occurred_at": when,
        "reason": "Card trip never credited.",
        "idempotency_key": new_key(),
    }
    first = auth_api.post("/api/v1/appeals", body, format="json")
    assert first.status_code == 201
    again = auth_api.post("/api/v1/appeals", body, format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    changed = auth_api.post("/api/v1/appeals", {**body, "quantity": "30"}, format="json")
    assert_error(changed, 409, "idempotency_conflict")
    assert Appeal.objects.count() == 1 and Claim.objects.count() == 1


def test_malformed_appeal_and_claim_requests_are_400s(auth_api, metro):
    assert_error(auth_api.post("/api/v1/appeals", [1, 2], format="json"), 400, "invalid")
    naive = auth_api.post(
        "/api/v1/claims",
        claim_payload("metro", 2, occurred_at="2026-11-28T08:00:00"),
        format="json",
    )
    error = assert_error(naive, 400, "invalid")
    assert "occurred_at" in error["details"]
    assert_error(auth_api.get("/api/v1/claims?cursor=garbage"), 400, "invalid")
    assert not Claim.objects.exists() and not Appeal.objects.exists()
