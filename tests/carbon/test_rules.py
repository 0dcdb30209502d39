"""The crediting rules: tier weight, caps, throttle, factor versions and the review queue.

Residents act through the API; the rules and the review are also driven through their
services (claim_submit, claim_review, claims_release_held, emission_factor_publish).
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from carbon.errors import InvalidReview
from carbon.models import Claim, ClaimStatus, EmissionFactor, Lot, Transfer
from carbon.services.catalogue import InvalidFactor, emission_factor_publish
from carbon.services.claims import claim_review, claim_submit, claims_release_held
from carbon.services.ledger import balance_for_user
from tests.carbon.api_helpers import claim_payload, client_for, new_key, steps_of
from tests.carbon.factories import BehaviourFactory, EmissionFactorFactory, UserFactory

CLAIMS = "/api/v1/claims"


def claim(client: APIClient, code: str, quantity, **extra) -> dict:
    response = client.post(CLAIMS, claim_payload(code, quantity, **extra), format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def reviewer(db):
    return UserFactory(role="administrator", is_staff=True)


@pytest.fixture
def established(resident):
    """The resident registered a month ago: past the lower self-declaration budget of new
    accounts (the tests using it are about factors, not that budget)."""
    resident.date_joined = timezone.now() - timedelta(days=30)
    resident.save(update_fields=["date_joined"])
    return resident


@pytest.fixture
def capped(db):
    """100 g per use, at most 30 g per action, 200 g a month."""
    behaviour = BehaviourFactory(
        code="repair-cafe",
        name="Repair café",
        category="consumption",
        unit="item",
        evidence_types=["self"],
        max_quantity=Decimal("20"),
        per_action_cap_g=30,
        daily_cap_g=None,
        monthly_cap_g=70,
        claim_window_days=30,
    )
    EmissionFactorFactory(
        behaviour=behaviour,
        grams_per_unit=Decimal("100"),
        valid_from=timezone.now() - timedelta(days=400),
    )
    return behaviour


# --- tier weight ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_self_declaration_earns_half_the_factor_rounded_down(
    auth_api, own_bag, ledger_is_consistent
):
    body = claim(auth_api, "own-bag", 1)  # 5 g gross, 2.5 g weighted

    assert body["credited_g"] == 2
    s = steps_of(body)
    assert s["factor"]["gross_g"] == 5
    assert s["tier_weight"]["weight_percent"] == 50
    assert s["tier_weight"]["amount_g"] == 2
    ledger_is_consistent()


@pytest.mark.django_db
def test_the_tier_weight_comes_from_settings(auth_api, metro, settings):
    settings.CARBON_TIER_WEIGHTS_BP = {**settings.CARBON_TIER_WEIGHTS_BP, "self": 2500}

    assert claim(auth_api, "metro", 10)["credited_g"] == 196  # 784 g at 25%


# --- daily cap ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_daily_cap_cuts_an_amount(auth_api, resident, own_bag, ledger_is_consistent):
    body = claim(auth_api, "own-bag", 5)  # 25 g gross, 12 g weighted, daily cap 10 g

    assert body["status"] == "credited"
    assert body["credited_g"] == 10
    daily = steps_of(body)["daily_cap"]
    assert (daily["outcome"], daily["cap_g"], daily["already_credited_g"], daily["cut_g"]) == (
        "cut",
        10,
        0,
        2,
    )
    assert balance_for_user(user=resident).available_g == 10
    ledger_is_consistent()


@pytest.mark.django_db
def test_the_daily_cap_counts_what_was_already_credited_that_day(
    auth_api, resident, own_bag, ledger_is_consistent
):
    first = claim(auth_api, "own-bag", 3)  # 15 g gross -> 7 g
    second = claim(auth_api, "own-bag", 3)  # 7 g, 3 g left under the cap
    third = claim(auth_api, "own-bag", 1)  # nothing left

    assert (first["credited_g"], second["credited_g"]) == (7, 3)
    assert steps_of(second)["daily_cap"]["already_credited_g"] == 7
    assert third["status"] == "rejected"
    assert third["credited_g"] == 0
    assert third["receipt"]["code"] == "cap_reached"
    assert "credit" not in steps_of(third)
    assert Transfer.objects.count() == 2
    assert balance_for_user(user=resident).available_g == 10
    ledger_is_consistent()


@pytest.mark.django_db
def test_a_refusal_at_the_daily_cap_is_shown_on_the_daily_cap_step(auth_api, own_bag):
    claim(auth_api, "own-bag", 5)

    refused = claim(auth_api, "own-bag", 1)

    s = steps_of(refused)
    assert s["daily_cap"].get("code") == "cap_reached"
    assert s["monthly_cap"].get("code") != "cap_reached"


@pytest.mark.django_db
def test_a_claim_too_small_to_earn_a_gram_is_not_blamed_on_a_cap(auth_api, metro):
    body = claim(auth_api, "metro", "0.01")  # 0.784 g gross: nothing to credit; metro has no caps

    assert body["status"] == "rejected"
    assert Transfer.objects.count() == 0
    assert body["receipt"]["code"] != "cap_reached"


@pytest.mark.django_db
def test_the_daily_cap_is_per_local_day_of_the_act(auth_api, own_bag):
    yesterday_noon = timezone.localtime().replace(
        hour=12, minute=0, second=0, microsecond=0
    ) - timedelta(days=1)

    yesterday = claim(auth_api, "own-bag", 5, occurred_at=yesterday_noon.isoformat())
    today = claim(auth_api, "own-bag", 5)

    assert (yesterday["credited_g"], today["credited_g"]) == (10, 10)
    assert steps_of(today)["daily_cap"]["already_credited_g"] == 0


@pytest.mark.django_db
def test_refused_and_pending_claims_do_not_use_up_the_cap(auth_api, own_bag):
    """Only credited grams count against the cap."""
    assert claim(auth_api, "own-bag", 2)["credited_g"] == 5
    assert claim(auth_api, "own-bag", 2)["credited_g"] == 5
    assert claim(auth_api, "own-bag", 2)["status"] == "rejected"

    assert Claim.objects.filter(status="credited").count() == 2


# --- per-action and monthly caps ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_per_action_cap_cuts_a_single_claim(auth_api, capped, ledger_is_consistent):
    body = claim(auth_api, "repair-cafe", 2)  # 200 g gross, 100 g weighted, 30 g per action

    assert body["credited_g"] == 30
    per_action = steps_of(body)["per_action_cap"]
    assert (per_action["outcome"], per_action["cap_g"], per_action["cut_g"]) == ("cut", 30, 70)
    ledger_is_consistent()


@pytest.mark.django_db
def test_the_monthly_cap_applies_after_the_per_action_cap(
    auth_api, resident, capped, ledger_is_consistent
):
    amounts = [claim(auth_api, "repair-cafe", 1)["credited_g"] for _ in range(4)]

    assert amounts[:3] == [30, 30, 10]
    assert sum(amounts) == 70
    assert balance_for_user(user=resident).available_g == 70
    ledger_is_consistent()


# --- throttle / penalty box -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_burst_of_claims_is_held_and_credited_after_the_penalty(
    auth_api, resident, metro, settings, ledger_is_consistent
):
    settings.CARBON_THROTTLE_ACTIONS = 2
    settings.CARBON_THROTTLE_WINDOW_MINUTES = 15
    first, second = claim(auth_api, "metro", 1), claim(auth_api, "metro", 1)

    third = claim(auth_api, "metro", 1)
    fourth = claim(auth_api, "metro", 1)

    assert (first["status"], second["status"]) == ("credited", "credited")
    assert steps_of(first)["throttle"]["outcome"] == "passed"
    for held in (third, fourth):
        assert held["status"] == "held", held
        assert held["credited_g"] == 0
        assert held["receipt"]["code"] == "penalty_box"
        assert steps_of(held)["throttle"]["outcome"] == "held"
        assert "credit" not in steps_of(held)
    assert Transfer.objects.count() == 2
    assert balance_for_user(user=resident).available_g == 2 * 39

    held_until = Claim.objects.get(pk=third["id"]).held_until
    assert held_until > timezone.now()
    assert claims_release_held(now=held_until - timedelta(seconds=1)) == 0
    assert claims_release_held(now=held_until + timedelta(seconds=1)) == 2

    released = auth_api.get(f"{CLAIMS}/{third['id']}").json()
    assert released["status"] == "credited"
    assert released["credited_g"] == 39
    assert balance_for_user(user=resident).available_g == 4 * 39
    ledger_is_consistent()


@pytest.mark.django_db
def test_claims_spread_beyond_the_window_are_not_throttled(auth_api, metro, settings):
    settings.CARBON_THROTTLE_ACTIONS = 2
    for _ in range(2):
        claim(auth_api, "metro", 1)
    Claim.objects.update(submitted_at=timezone.now() - timedelta(minutes=16))

    assert claim(auth_api, "metro", 1)["status"] == "credited"


@pytest.mark.django_db
def test_the_throttle_is_per_resident(metro, settings):
    settings.CARBON_THROTTLE_ACTIONS = 2
    busy, calm = client_for(UserFactory()), client_for(UserFactory())
    for _ in range(3):
        claim(busy, "metro", 1)

    assert claim(calm, "metro", 1)["status"] == "credited"


@pytest.mark.django_db
def test_the_api_rate_limit_on_claim_posts(auth_api, metro, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(
        ScopedRateThrottle,
        "THROTTLE_RATES",
        {**ScopedRateThrottle.THROTTLE_RATES, "claims": "2/min"},
    )
    claim(auth_api, "metro", 1)
    claim(auth_api, "metro", 1)

    response = auth_api.post(CLAIMS, claim_payload("metro", 1), format="json")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert Claim.objects.count() == 2
    assert auth_api.get(CLAIMS).status_code == 200  # reading is not limited


# --- emission-factor versions ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_new_factor_version_applies_to_new_claims_only(
    auth_api, established, metro, ledger_is_consistent
):
    old_factor = EmissionFactor.objects.get(behaviour=metro)
    before = claim(auth_api, "metro", 10)

    new_factor = emission_factor_publish(
        behaviour=metro,
        grams_per_unit=Decimal("60"),
        methodology="2026 grid mix",
        source="City EB 2026",
    )
    after = claim(auth_api, "metro", 10)

    assert new_factor.version > old_factor.version
    assert before["factor_version"] == old_factor.version
    assert after["factor_version"] == new_factor.version
    assert (before["credited_g"], after["credited_g"]) == (392, 300)
    assert steps_of(after)["factor"]["version"] == new_factor.version
    assert steps_of(after)["factor"]["source"] == "City EB 2026"
    # The old claim and its factor row are untouched.
    reread = auth_api.get(f"{CLAIMS}/{before['id']}").json()
    assert reread["factor_version"] == old_factor.version
    assert reread["credited_g"] == 392
    old_factor.refresh_from_db()
    assert old_factor.grams_per_unit == Decimal("78.4")
    assert old_factor.valid_to == new_factor.valid_from
    # The catalogue shows only the version in force.
    listed = {b["code"]: b for b in APIClient().get("/api/v1/behaviours").json()}
    assert [f["version"] for f in listed["metro"]["current_factors"]] == [new_factor.version]
    ledger_is_consistent()


@pytest.mark.django_db
def test_a_claim_for_an_act_before_the_new_version_uses_the_old_one(auth_api, metro):
    old_factor = EmissionFactor.objects.get(behaviour=metro)
    emission_factor_publish(
        behaviour=metro, grams_per_unit=Decimal("60"), methodology="m", source="s"
    )

    body = claim(
        auth_api, "metro", 10, occurred_at=(timezone.now() - timedelta(hours=3)).isoformat()
    )

    assert body["factor_version"] == old_factor.version
    assert body["credited_g"] == 392


@pytest.mark.django_db
def test_a_factor_version_cannot_be_slipped_in_before_the_current_one(metro):
    emission_factor_publish(
        behaviour=metro, grams_per_unit=Decimal("60"), methodology="m", source="s"
    )

    with pytest.raises(InvalidFactor):
        emission_factor_publish(
            behaviour=metro,
            grams_per_unit=Decimal("1"),
            methodology="m",
            source="s",
            valid_from=timezone.now() - timedelta(days=1),
        )
    with pytest.raises(InvalidFactor):
        emission_factor_publish(
            behaviour=metro, grams_per_unit=Decimal("-1"), methodology="m", source="s"
        )
    with pytest.raises(InvalidFactor):
        emission_factor_publish(
            behaviour=metro, grams_per_unit=Decimal("1"), methodology=" ", source="s"
        )
    assert EmissionFactor.objects.filter(behaviour=metro).count() == 2


# --- no factor: the review queue ------------------------------------------------------------------


@pytest.mark.django_db
def test_approving_a_claim_without_a_factor_credits_it_once_a_factor_covers_the_act(
    auth_api, resident, established, reviewer, unfactored, ledger_is_consistent
):
    occurred = timezone.now() - timedelta(hours=1)
    body = claim(auth_api, "tree-planting", 2, occurred_at=occurred.isoformat())
    assert body["status"] == "needs_review"
    assert Claim.objects.review_queue().get().pk == uuid.UUID(body["id"])
    factor = emission_factor_publish(
        behaviour=unfactored,
        grams_per_unit=Decimal("1000"),
        methodology="m",
        source="s",
        valid_from=occurred - timedelta(days=1),
    )

    decided = claim_review(
        claim_id=body["id"], reviewer=reviewer, approve=True, note="Photo checked"
    )

    assert decided.status == ClaimStatus.CREDITED
    assert decided.credited_g == 1000  # 2000 g, self declaration at 50%
    assert decided.factor == factor
    assert decided.reviewed_by == reviewer
    assert steps_of(decided)["verification"]["code"] == "approved_by_reviewer"
    assert decided.receipt["history"][0]["decision"] == "approved"
    assert balance_for_user(user=resident).available_g == 1000
    seen = auth_api.get(f"{CLAIMS}/{body['id']}").json()
    assert (seen["status"], seen["credited_g"]) == ("credited", 1000)
    assert not Claim.objects.review_queue().exists()
    with pytest.raises(InvalidReview):
        claim_review(claim_id=body["id"], reviewer=reviewer, approve=True)
    assert Transfer.objects.count() == 1
    ledger_is_consistent()


@pytest.mark.django_db
def test_approving_after_publishing_a_factor_now_credits_the_claim(auth_api, reviewer, unfactored):
    body = claim(auth_api, "tree-planting", 2)
    emission_factor_publish(
        behaviour=unfactored, grams_per_unit=Decimal("1000"), methodology="m", source="s"
    )

    decided = claim_review(claim_id=body["id"], reviewer=reviewer, approve=True)

    assert decided.status == ClaimStatus.CREDITED


@pytest.mark.django_db
def test_approving_a_claim_that_still_has_no_factor_is_refused(auth_api, reviewer, unfactored):
    body = claim(auth_api, "tree-planting", 2)

    with pytest.raises(InvalidReview):
        claim_review(claim_id=body["id"], reviewer=reviewer, approve=True)


@pytest.mark.django_db
def test_rejecting_a_claim_on_review_credits_nothing(
    auth_api, reviewer, unfactored, ledger_is_consistent
):
    body = claim(auth_api, "tree-planting", 2)

    decided = claim_review(
        claim_id=body["id"], reviewer=reviewer, approve=False, note="No evidence"
    )

    assert decided.status == ClaimStatus.REJECTED
    assert decided.credited_g == 0
    assert decided.receipt["code"] == "rejected_by_reviewer"
    assert Transfer.objects.count() == 0
    ledger_is_consistent()


@pytest.mark.django_db
def test_a_credited_claim_cannot_be_reviewed(auth_api, reviewer, metro):
    body = claim(auth_api, "metro", 1)

    with pytest.raises(InvalidReview):
        claim_review(claim_id=body["id"], reviewer=reviewer, approve=True)
    assert Transfer.objects.count() == 1


@pytest.mark.django_db
def test_the_review_queue_approves_through_the_rules_and_ledger(
    admin_client, resident, metro, ledger_is_consistent
):
    claim, _ = claim_submit(
        user=resident,
        behaviour_code="metro",
        quantity=5,
        idempotency_key="6f1c7a52-30a4-4c1e-9f3e-3f6f3b0a9c01",
        force_review="Missed-credit appeal: my card trip",
    )
    assert claim.status == ClaimStatus.NEEDS_REVIEW
    url = reverse("admin:carbon_claim_changelist")
    data = {"action": "approve", "_selected_action": [str(claim.pk)]}
    asks = admin_client.post(url, data)
    assert asks.status_code == 200 and b"reason" in asks.content  # a reason is required
    assert admin_client.post(url, {**data, "apply": "1", "note": ""}).status_code == 200
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.NEEDS_REVIEW
    done = admin_client.post(url, {**data, "apply": "1", "note": "Operator log confirms it."})
    assert done.status_code == 302
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.CREDITED and claim.credited_g == 196
    ledger_is_consistent()


# --- consent (feed-based evidence) ----------------------------------------------------------------


@pytest.mark.django_db
def test_feed_evidence_needs_the_residents_consent(
    resident, metro, transit_feed, ledger_is_consistent
):
    refused, _ = claim_submit(
        user=resident,
        behaviour_code="metro",
        quantity=10,
        idempotency_key=new_key(),
        evidence_type="transit",
        evidence={"type": "transit", "trip": "T1"},
    )
    assert refused.status == ClaimStatus.REJECTED
    assert refused.receipt["code"] == "no_consent"

    from carbon.services.people import consent_grant

    consent_grant(user=resident, scope="transit_card")
    credited, _ = claim_submit(
        user=resident,
        behaviour_code="metro",
        quantity=10,
        idempotency_key=new_key(),
        evidence_type="transit",
        evidence={"type": "transit", "trip": "T2"},
    )

    assert credited.status == ClaimStatus.CREDITED
    assert credited.credited_g == 784  # transit evidence earns the full factor
    assert Transfer.objects.count() == 1
    ledger_is_consistent()


# --- properties -----------------------------------------------------------------------------------


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    quantities=st.lists(
        st.integers(min_value=1, max_value=5000).map(lambda n: Decimal(n) / 1000),
        min_size=1,
        max_size=8,
    )
)
def test_a_day_of_claims_never_credits_more_than_the_daily_cap(own_bag, quantities):
    user = UserFactory()  # a fresh resident per example: examples share the test's transaction
    expected_left = 10
    for q in quantities:
        c, created = claim_submit(
            user=user, behaviour_code="own-bag", quantity=q, idempotency_key=new_key()
        )
        weighted = int(q * 5) * 5000 // 10000
        want = min(weighted, expected_left)
        assert created
        assert c.credited_g == want
        assert c.status == (ClaimStatus.CREDITED if want else ClaimStatus.REJECTED)
        expected_left -= want
    balance = balance_for_user(user=user)
    assert balance.available_g == 10 - expected_left
    assert (
        sum(Lot.objects.filter(account__user=user).values_list("amount_g", flat=True))
        == 10 - expected_left
    )


# --- concurrency (PostgreSQL) ---------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_cannot_race_past_the_daily_cap(own_bag, ledger_is_consistent):
    user = UserFactory()
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def submit():
        try:
            barrier.wait()
            claim_submit(
                user=user, behaviour_code="own-bag", quantity=4, idempotency_key=new_key()
            )  # 10 g each
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()  # this thread's connection; CONN_MAX_AGE would keep it

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert Claim.objects.filter(user=user).count() == 6
    assert list(
        Claim.objects.filter(user=user, status="credited").values_list("credited_g", flat=True)
    ) == [10]
    assert balance_for_user(user=user).available_g == 10
    ledger_is_consistent()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_key_create_one_claim(metro, ledger_is_consistent):
    user = UserFactory()
    key = new_key()
    barrier = threading.Barrier(5)
    results: list = []

    def submit():
        try:
            barrier.wait()
            results.append(
                claim_submit(user=user, behaviour_code="metro", quantity=3, idempotency_key=key)
            )
        except BaseException as exc:  # pragma: no cover - reported below
            results.append(exc)
        finally:
            connections.close_all()  # this thread's connection; CONN_MAX_AGE would keep it

    threads = [threading.Thread(target=submit) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert all(isinstance(r, tuple) for r in results), results
    assert sorted(created for _, created in results) == [False, False, False, False, True]
    assert len({c.pk for c, _ in results}) == 1
    assert Transfer.objects.count() == 1
    ledger_is_consistent()
