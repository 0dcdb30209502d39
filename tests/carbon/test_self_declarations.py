"""Self-declared claims, the lowest trust (issue 12): their own daily budget per resident,
lower for new accounts and held under concurrency, and a random sample sent to review."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from rest_framework.test import APIClient

from carbon.models import Claim, ClaimStatus
from carbon.services.claims import claim_review
from carbon.services.ledger import balance_for_user
from tests.carbon.api_helpers import claim_payload, client_for, new_key
from tests.carbon.factories import UserFactory

CLAIMS = "/api/v1/claims"
# 10 km of metro: 784 g at the factor, 392 g at the self-declaration weight (50 %).
RIDE_G = 392


@pytest.fixture
def budgets(settings):
    settings.CARBON_SELF_NEW_ACCOUNT_DAILY_BUDGET_G = 1000
    settings.CARBON_SELF_DAILY_BUDGET_G = 1500
    settings.CARBON_SELF_NEW_ACCOUNT_DAYS = 7


def declare(client: APIClient, km=10, **extra) -> dict:
    response = client.post(
        CLAIMS,
        claim_payload("metro", km, evidence={"type": "self"}, **extra),
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def step(body: dict, name: str) -> dict:
    return next(s for s in body["receipt"]["steps"] if s["step"] == name)


@pytest.mark.django_db
def test_a_new_account_cannot_self_declare_beyond_its_daily_budget(
    auth_api, resident, metro, budgets, ledger_is_consistent
):
    first, second, third = (declare(auth_api) for _ in range(3))
    cut = declare(auth_api)
    refused = declare(auth_api)

    assert [b["credited_g"] for b in (first, second, third)] == [RIDE_G] * 2 + [1000 - 2 * RIDE_G]
    assert step(second, "self_budget") == {
        "step": "self_budget",
        "outcome": "passed",
        "budget_g": 1000,
        "new_account": True,
        "already_credited_g": RIDE_G,
    }
    # The receipt says what the budget cut.
    assert step(third, "self_budget")["outcome"] == "cut"
    assert step(third, "self_budget")["cut_g"] == 3 * RIDE_G - 1000
    assert (cut["status"], cut["credited_g"]) == ("rejected", 0)
    assert cut["receipt"]["code"] == "self_budget_reached"
    assert "budget" in cut["receipt"]["reason"]
    assert refused["receipt"]["code"] == "self_budget_reached"
    assert balance_for_user(user=resident).available_g == 1000
    ledger_is_consistent()


@pytest.mark.django_db
def test_acts_spread_over_the_claim_window_share_todays_budget(auth_api, metro, budgets):
    bodies = [
        declare(auth_api, occurred_at=(timezone.now() - timedelta(days=d)).isoformat())
        for d in range(1, 5)
    ]

    assert sum(b["credited_g"] for b in bodies) == 1000
    assert bodies[-1]["receipt"]["code"] == "self_budget_reached"


@pytest.mark.django_db
def test_an_established_account_has_the_higher_budget(metro, budgets):
    user = UserFactory()
    user.date_joined = timezone.now() - timedelta(days=30)
    user.save(update_fields=["date_joined"])
    client = client_for(user)

    bodies = [declare(client) for _ in range(5)]

    assert sum(b["credited_g"] for b in bodies) == 1500
    assert step(bodies[0], "self_budget")["new_account"] is False
    assert step(bodies[0], "self_budget")["budget_g"] == 1500


@pytest.mark.django_db
def test_other_evidence_is_not_counted_against_the_self_budget(
    auth_api, resident, metro, budgets, settings
):
    # Claims of another tier are neither cut nor counted (stand-in transit adapter).
    settings.CARBON_VERIFIERS = {
        **settings.CARBON_VERIFIERS,
        "transit": "tests.carbon.api_helpers.TransitCardTestVerifier",
    }
    auth_api.put("/api/v1/me/consents/transit_card", format="json")
    card = auth_api.post(
        CLAIMS, claim_payload("metro", 100, evidence={"type": "transit"}), format="json"
    ).json()

    assert card["status"] == "credited" and card["credited_g"] == 7840
    assert "self_budget" not in {s["step"] for s in card["receipt"]["steps"]}
    # Another ride, hours apart (the same act is credited once, by the stronger evidence).
    earlier = (timezone.now() - timedelta(hours=3)).isoformat()
    assert declare(auth_api, occurred_at=earlier)["credited_g"] == RIDE_G


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_self_budget_holds_under_concurrent_claims(metro, budgets, ledger_is_consistent):
    user = UserFactory()
    barrier = threading.Barrier(8)
    statuses: list = []

    def submit():
        try:
            barrier.wait()
            response = client_for(user).post(
                CLAIMS, claim_payload("metro", 10, evidence={"type": "self"}), format="json"
            )
            statuses.append(response.status_code)
        except BaseException as exc:  # pragma: no cover - reported below
            statuses.append(exc)
        finally:
            connections.close_all()  # this thread's connection; CONN_MAX_AGE would keep it

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert statuses == [201] * 8
    credited = Claim.objects.filter(user=user, status=ClaimStatus.CREDITED)
    assert sum(credited.values_list("credited_g", flat=True)) == 1000
    assert balance_for_user(user=user).available_g == 1000
    assert Claim.objects.filter(user=user, status=ClaimStatus.REJECTED).count() == 5
    ledger_is_consistent()


@pytest.mark.django_db
def test_a_sampled_self_declaration_goes_to_review_and_is_credited_on_approval(
    auth_api, resident, metro, settings, ledger_is_consistent
):
    settings.CARBON_SELF_REVIEW_SAMPLE_BP = 10000  # every one: the draw is certain
    reviewer = UserFactory(role="administrator", is_staff=True)

    body = declare(auth_api)

    assert (body["status"], body["credited_g"]) == ("needs_review", 0)
    assert body["receipt"]["code"] == "review_sample"
    assert "random" in body["receipt"]["reason"]
    assert step(body, "review_sample")["rate_percent"] == 100
    assert Claim.objects.review_queue().get().pk == Claim.objects.get().pk
    assert balance_for_user(user=resident).available_g == 0

    decided = claim_review(claim_id=body["id"], reviewer=reviewer, approve=True, note="ok")

    # Approved: credited, not drawn for review a second time.
    assert decided.status == ClaimStatus.CREDITED and decided.credited_g == RIDE_G
    assert "review_sample" not in {s["step"] for s in decided.receipt["steps"]}
    ledger_is_consistent()


@pytest.mark.django_db
def test_with_no_sample_rate_self_declarations_are_credited_at_once(auth_api, metro, settings):
    settings.CARBON_SELF_REVIEW_SAMPLE_BP = 0

    bodies = [declare(auth_api, km=1) for _ in range(5)]

    assert {b["status"] for b in bodies} == {"credited"}
    assert step(bodies[0], "review_sample") == {
        "step": "review_sample",
        "outcome": "passed",
        "rate_percent": 0,
    }


@pytest.mark.django_db
def test_a_declaration_a_reviewer_approves_is_not_cut_by_the_budget(
    auth_api, resident, metro, budgets, ledger_is_consistent
):
    """The budget limits unverified declarations; one a reviewer checked and approved (a
    missed-credit appeal without a photo) is credited in full on a day the budget is spent."""
    for _ in range(3):
        declare(auth_api)  # the day's 1000 g are used up
    appealed = auth_api.post(
        "/api/v1/appeals",
        {
            "behaviour": "metro",
            "quantity": 10,
            "occurred_at": (timezone.now() - timedelta(hours=3)).isoformat(),
            "reason": "The card reader at the gate was broken.",
            "idempotency_key": new_key(),
        },
        format="json",
    )
    assert appealed.status_code == 201, appealed.content

    approved = claim_review(
        claim_id=appealed.json()["claim"]["id"],
        reviewer=UserFactory(is_staff=True, role="administrator"),
        approve=True,
        note="Checked the ride with the operator.",
    )

    assert (approved.status, approved.credited_g) == (ClaimStatus.CREDITED, RIDE_G)
    assert balance_for_user(user=resident).available_g == 1000 + RIDE_G
    ledger_is_consistent()
