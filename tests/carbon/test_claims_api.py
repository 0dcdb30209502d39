"""Claims, the behaviour catalogue and the ledger, as a resident uses them over HTTP."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from carbon.models import Claim, ClaimStatus, Transfer
from carbon.services.ledger import ledger_hold, ledger_post, ledger_spend, ledger_void
from tests.carbon.api_helpers import (
    assert_error,
    claim_payload,
    client_for,
    new_key,
    steps_of,
    written,
)
from tests.carbon.factories import BehaviourFactory, EmissionFactorFactory, UserFactory

pytestmark = pytest.mark.django_db

CLAIMS = "/api/v1/claims"
LEDGER = "/api/v1/ledger"
RULE_STEPS = [
    "verification",
    "eligibility",
    "quantity",
    "factor",
    "tier_weight",
    "per_action_cap",
    "daily_cap",
    "monthly_cap",
    "self_budget",  # a self declaration: its own daily budget, and the random review sample
    "throttle",
    "review_sample",
    "credit",
]


# --- the catalogue ----------------------------------------------------------------------


def test_behaviours_are_public_and_show_only_factors_in_force(api, metro):
    now = timezone.now()
    EmissionFactorFactory(
        behaviour=metro,
        grams_per_unit=Decimal("90"),
        valid_from=now - timedelta(days=900),
        valid_to=now - timedelta(days=365),
    )
    EmissionFactorFactory(
        behaviour=metro, grams_per_unit=Decimal("70"), valid_from=now + timedelta(days=30)
    )
    BehaviourFactory(code="retired", is_active=False)

    response = api.get("/api/v1/behaviours")

    assert response.status_code == 200, response.content
    by_code = {b["code"]: b for b in response.json()}
    assert set(by_code) == {"metro"}
    metro_out = by_code["metro"]
    assert metro_out["unit"] == "km"
    assert metro_out["evidence_types"] == ["transit", "self"]
    assert [Decimal(f["grams_per_unit"]) for f in metro_out["current_factors"]] == [Decimal("78.4")]


# --- submitting -----------------------------------------------------------------------


def test_claim_is_credited_with_a_receipt_of_every_rule_step(
    auth_api, resident, metro, ledger_is_consistent
):
    payload = claim_payload("metro", 10, evidence={"type": "self", "note": "to work"})

    response = auth_api.post(CLAIMS, payload, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "credited"
    assert body["behaviour"] == "metro"
    assert Decimal(str(body["quantity"])) == Decimal("10")
    # 10 km x 78.4 g = 784 g; a self declaration weighs 50%.
    assert body["credited_g"] == 392
    receipt = body["receipt"]
    assert [s["step"] for s in receipt["steps"]] == RULE_STEPS
    assert receipt["status"] == "credited" and receipt["credited_g"] == 392
    steps = steps_of(body)
    assert steps["factor"]["gross_g"] == 784
    assert steps["tier_weight"]["amount_g"] == 392
    assert steps["credit"]["amount_g"] == 392
    claim = Claim.objects.get(pk=body["id"])
    assert claim.user == resident
    assert claim.evidence == {"note": "to work"}
    award = Transfer.objects.get(pk=steps["credit"]["transfer_id"])
    assert (award.amount_g, award.credit_account.user_id, award.code) == (392, resident.pk, "award")
    ledger_is_consistent()


def test_retry_with_the_same_key_and_payload_returns_the_original(
    auth_api, metro, ledger_is_consistent
):
    payload = claim_payload(
        "metro", "12.5", occurred_at=(timezone.now() - timedelta(hours=2)).isoformat()
    )
    first = auth_api.post(CLAIMS, payload, format="json")
    assert first.status_code == 201, first.content
    before = written()

    again = auth_api.post(CLAIMS, payload, format="json")

    assert again.status_code == 200, again.content
    assert again.json() == first.json()
    assert written() == before
    ledger_is_consistent()


def test_retry_with_the_same_number_written_differently_is_the_same_request(auth_api, metro):
    payload = claim_payload("metro", 12.5)
    assert auth_api.post(CLAIMS, payload, format="json").status_code == 201

    again = auth_api.post(CLAIMS, {**payload, "quantity": "12.500"}, format="json")

    assert again.status_code == 200, again.content
    assert Claim.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": 11},
        {"behaviour": "own-bag"},
        {"evidence": {"type": "self", "note": "different"}},
        {"occurred_at": "2020-01-01T08:00:00+08:00"},
    ],
)
def test_same_key_with_a_different_payload_conflicts_and_writes_nothing(
    auth_api, metro, own_bag, change
):
    payload = claim_payload("metro", 10)
    assert auth_api.post(CLAIMS, payload, format="json").status_code == 201
    before = written()

    response = auth_api.post(CLAIMS, {**payload, **change}, format="json")

    error = assert_error(response, 409, "idempotency_conflict")
    assert error["details"]["idempotency_key"] == payload["idempotency_key"]
    assert written() == before


def test_an_idempotency_key_belongs_to_one_resident(auth_api, other_resident, metro):
    payload = claim_payload("metro", 10)
    assert auth_api.post(CLAIMS, payload, format="json").status_code == 201

    response = client_for(other_resident).post(CLAIMS, payload, format="json")

    assert response.status_code == 201, response.content
    assert Claim.objects.filter(idempotency_key=payload["idempotency_key"]).count() == 2


def _iso(delta: timedelta) -> str:
    return (timezone.now() + delta).isoformat()


BAD_CLAIMS = {
    "unknown-behaviour": (claim_payload("teleportation", 1), "unknown_behaviour"),
    "negative": (claim_payload("metro", -3), "invalid_quantity"),
    "zero": (claim_payload("metro", 0), "invalid_quantity"),
    "zero-with-decimals": (claim_payload("metro", "0.000"), "invalid_quantity"),
    "above-max-quantity": (claim_payload("metro", 121), "invalid_quantity"),  # max is 120 km
    "absurd": (claim_payload("metro", 1e12), "invalid_quantity"),
    "four-decimals": (claim_payload("metro", "1.0005"), "invalid_quantity"),
    "not-a-number": (claim_payload("metro", "many"), "invalid"),
    "nan": (claim_payload("metro", "NaN"), "invalid"),
    "infinity": (claim_payload("metro", "Infinity"), "invalid"),
    "too-many-digits": (claim_payload("metro", "1e40"), "invalid"),
    "null-quantity": (claim_payload("metro", None), "invalid"),
    "older-than-window": (
        claim_payload("metro", 5, occurred_at=_iso(-timedelta(days=8))),
        "outside_claim_window",
    ),
    "in-the-future": (
        claim_payload("metro", 5, occurred_at=_iso(timedelta(days=1))),
        "outside_claim_window",
    ),
    "unparsable-date": (claim_payload("metro", 5, occurred_at="yesterday"), "invalid"),
    "evidence-type-not-accepted": (
        claim_payload("own-bag", 1, evidence={"type": "transit"}),
        "evidence_not_accepted",
    ),
    "unknown-evidence-type": (
        claim_payload("metro", 5, evidence={"type": "crystal-ball"}),
        "evidence_not_accepted",
    ),
    "note-too-long": (
        claim_payload("metro", 5, evidence={"type": "self", "note": "x" * 501}),
        "evidence_not_accepted",
    ),
    "unknown-evidence-field": (
        claim_payload("metro", 5, evidence={"type": "self", "gps": [30.5, 114.3]}),
        "evidence_not_accepted",
    ),
    "evidence-not-an-object": (claim_payload("metro", 5, evidence="self"), "invalid"),
    "no-idempotency-key": ({"behaviour": "metro", "quantity": 5}, "invalid"),
    "key-not-a-uuid": (claim_payload("metro", 5, idempotency_key="not-a-uuid"), "invalid"),
    "empty-body": ({}, "invalid"),
}


@pytest.mark.parametrize(("payload", "code"), list(BAD_CLAIMS.values()), ids=list(BAD_CLAIMS))
def test_bad_claims_are_refused_and_nothing_is_written(auth_api, metro, own_bag, payload, code):
    before = written()

    response = auth_api.post(CLAIMS, payload, format="json")

    assert_error(response, 400, code)
    assert written() == before


def test_invalid_field_errors_name_the_field(auth_api, metro):
    error = assert_error(
        auth_api.post(CLAIMS, {"behaviour": "metro", "quantity": 5}, format="json"), 400, "invalid"
    )

    assert "idempotency_key" in error["details"]


def test_malformed_json_is_refused_and_nothing_is_written(auth_api, metro):
    before = written()

    response = auth_api.generic(
        "POST", CLAIMS, b'{"behaviour": "metro", "quantity": 1', content_type="application/json"
    )

    assert_error(response, 400, "malformed_request")
    assert written() == before


def test_claims_need_authentication(api, metro):
    assert_error(
        api.post(CLAIMS, claim_payload("metro", 1), format="json"), 401, "not_authenticated"
    )
    assert_error(api.get(CLAIMS), 401, "not_authenticated")
    assert written() == (0, 0)


# --- reading claims -----------------------------------------------------------------------


def test_claim_list_is_mine_newest_first_and_cursor_paginated(
    auth_api, resident, other_resident, metro
):
    mine = [
        auth_api.post(CLAIMS, claim_payload("metro", q), format="json").json()["id"]
        for q in (1, 2, 3)
    ]
    client_for(other_resident).post(CLAIMS, claim_payload("metro", 4), format="json")

    first = auth_api.get(CLAIMS, {"page_size": 2})

    assert first.status_code == 200, first.content
    page = first.json()
    assert len(page["results"]) == 2
    assert page["next"] and "cursor=" in page["next"]
    assert page["previous"] is None
    second = auth_api.get(page["next"]).json()
    seen = [c["id"] for c in page["results"] + second["results"]]
    assert seen == list(reversed(mine))
    assert second["next"] is None


def test_claim_detail_is_mine_only(auth_api, other_resident, metro):
    others = (
        client_for(other_resident).post(CLAIMS, claim_payload("metro", 4), format="json").json()
    )
    mine = auth_api.post(CLAIMS, claim_payload("metro", 2), format="json").json()

    assert auth_api.get(f"{CLAIMS}/{mine['id']}").json() == mine
    assert_error(auth_api.get(f"{CLAIMS}/{others['id']}"), 404, "not_found")
    assert_error(auth_api.get(f"{CLAIMS}/00000000-0000-4000-8000-000000000000"), 404, "not_found")


def test_a_malformed_claim_id_is_a_json_404(auth_api):
    response = auth_api.get(f"{CLAIMS}/12345")

    assert_error(response, 404, "not_found")


# --- the ledger -----------------------------------------------------------------------------


def test_ledger_lists_my_entries_signed_with_descriptions(
    auth_api, resident, other_resident, metro, ledger_is_consistent
):
    auth_api.post(CLAIMS, claim_payload("metro", 10), format="json")  # +392
    client_for(other_resident).post(CLAIMS, claim_payload("metro", 5), format="json")
    ledger_spend(
        user=resident, amount_g=92, idempotency_key=new_key(), description="Bus pass discount"
    )

    response = auth_api.get(LEDGER)

    assert response.status_code == 200, response.content
    entries = response.json()["results"]
    assert [(e["amount_g"], e["description"], e["status"]) for e in entries] == [
        (-92, "Bus pass discount", "posted"),
        (392, "Metro ride: 10 km", "posted"),
    ]
    ledger_is_consistent()


def test_ledger_sums_to_the_balance_after_holds_are_posted_and_voided(
    auth_api, resident, metro, ledger_is_consistent
):
    """A hold and its resolution are one movement: summing posted entries gives the balance."""
    auth_api.post(CLAIMS, claim_payload("metro", 10), format="json")  # +392
    posted = ledger_hold(
        user=resident, amount_g=100, idempotency_key=new_key(), description="Voucher"
    )
    ledger_post(pending_id=posted.pk)
    voided = ledger_hold(
        user=resident, amount_g=50, idempotency_key=new_key(), description="Offset"
    )
    ledger_void(pending_id=voided.pk)
    open_hold = ledger_hold(
        user=resident, amount_g=40, idempotency_key=new_key(), description="Pending"
    )

    entries = auth_api.get(LEDGER).json()["results"]
    me = auth_api.get("/api/v1/me").json()

    by_status: dict[str, int] = {}
    for e in entries:
        by_status[e["status"]] = by_status.get(e["status"], 0) + e["amount_g"]
    assert by_status["posted"] == 392 - 100
    assert by_status["pending"] == -40 == -me["pending_g"]
    assert by_status["posted"] + by_status["pending"] == me["available_g"]
    assert {e["id"]: e["status"] for e in entries}[open_hold.pk] == "pending"
    assert {e["id"]: e["status"] for e in entries}[voided.pk] == "voided"
    ledger_is_consistent()


def test_ledger_is_cursor_paginated(auth_api, metro):
    for q in (1, 2, 3):
        auth_api.post(CLAIMS, claim_payload("metro", q), format="json")

    page = auth_api.get(LEDGER, {"page_size": 2}).json()

    assert len(page["results"]) == 2 and page["next"]
    rest = auth_api.get(page["next"]).json()
    amounts = [e["amount_g"] for e in page["results"] + rest["results"]]
    assert amounts == [117, 78, 39]  # 3, 2, 1 km at 78.4 g, halved, newest first


def test_ledger_of_a_resident_without_entries_is_empty(auth_api):
    response = auth_api.get(LEDGER)

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_ledger_needs_authentication(api):
    assert_error(api.get(LEDGER), 401, "not_authenticated")


def test_a_claim_for_a_behaviour_without_a_factor_waits_for_review(auth_api, unfactored):
    response = auth_api.post(CLAIMS, claim_payload("tree-planting", 1), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == ClaimStatus.NEEDS_REVIEW
    assert body["credited_g"] == 0
    assert body["factor_version"] is None
    assert body["receipt"]["steps"][-1]["step"] == "factor"
    assert body["receipt"]["code"] == "no_factor"
    assert Transfer.objects.count() == 0


def test_an_inactive_behaviour_cannot_be_claimed(auth_api):
    behaviour = BehaviourFactory(code="old-scheme", is_active=False)
    EmissionFactorFactory(behaviour=behaviour)

    assert_error(
        auth_api.post(CLAIMS, claim_payload("old-scheme", 1), format="json"),
        400,
        "unknown_behaviour",
    )
    assert written() == (0, 0)


def test_another_residents_claims_do_not_count_against_my_caps(own_bag):
    ana, bo = UserFactory(), UserFactory()
    assert (
        client_for(ana)
        .post(CLAIMS, claim_payload("own-bag", 5), format="json")
        .json()["credited_g"]
        == 10
    )

    response = client_for(bo).post(CLAIMS, claim_payload("own-bag", 5), format="json")

    assert response.json()["credited_g"] == 10


def test_wrong_method_and_unknown_path_keep_the_error_shape(auth_api):
    assert_error(auth_api.put(CLAIMS, {}, format="json"), 405, "method_not_allowed")
    assert_error(auth_api.delete(LEDGER), 405, "method_not_allowed")
    assert_error(auth_api.get("/api/v1/no-such-thing"), 404, "not_found")


def _ledger_walk(api, size: int) -> tuple[list[list[int]], list[list[int]]]:
    """Pages of ids walking the next links from the first page, then the previous links
    back from the last."""
    forward, backward = [], []
    page = api.get(LEDGER, {"page_size": size}).json()
    while True:
        forward.append([e["id"] for e in page["results"]])
        if not page["next"]:
            break
        page = api.get(page["next"]).json()
    while page["previous"]:
        page = api.get(page["previous"]).json()
        backward.append([e["id"] for e in page["results"]])
    return forward, backward


def test_ledger_pages_merge_both_sides_as_one_query_would(
    auth_api, resident, monkeypatch, ledger_is_consistent
):
    """The page is read from the credit side and the debit side separately and merged
    (LedgerNewestFirst). Walking the cursors forwards and back at any page size gives the
    same pages as paging the single `credit = me OR debit = me` query, including entries
    that share a timestamp (the cursor's offset breaks those ties)."""
    from carbon.api import pagination
    from carbon.services.ledger import ledger_award, ledger_entries_for_user

    expires = timezone.now() + timedelta(days=365)
    for i in range(5):
        ledger_award(
            user=resident,
            amount_g=100 + i,
            category="mobility",
            idempotency_key=new_key(),
            description=f"award {i}",
            expires_at=expires,
        )
        ledger_spend(user=resident, amount_g=10 + i, idempotency_key=new_key(), description="s")
    hold = ledger_hold(user=resident, amount_g=7, idempotency_key=new_key(), description="h")
    ledger_void(pending_id=hold.pk)  # a release: left out of the list on both paths
    qs, _ = ledger_entries_for_user(user=resident)
    # Entries of both sides at one instant, so ties cross page boundaries.
    tied = timezone.now() - timedelta(hours=1)
    Transfer.objects.filter(pk__in=[t.pk for t in qs[2:8]]).update(created_at=tied)
    expected = list(qs.values_list("id", flat=True))
    assert len(expected) == 11

    sizes = (1, 4, 50)
    merged = {size: _ledger_walk(auth_api, size) for size in sizes}
    monkeypatch.setattr(
        pagination.LedgerNewestFirst, "paginate_queryset", pagination.NewestFirst.paginate_queryset
    )
    for size in sizes:
        assert merged[size] == _ledger_walk(auth_api, size), size
        assert sum(merged[size][0], []) == expected, size
    ledger_is_consistent()
