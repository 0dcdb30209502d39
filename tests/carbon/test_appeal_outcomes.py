"""Appeals: the outcome says what was credited and why (an approval the caps leave at 0 g
says so), concurrent retries of one appeal key return the original, and appeals are
limited per resident (a request throttle and a daily number of appeals)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from carbon.errors import ErrorCode
from carbon.models import Appeal, Claim
from carbon.services.claims import claim_review
from tests.carbon.api_helpers import assert_error, new_key
from tests.carbon.factories import RefusedClaimFactory, UserFactory

APPEALS = "/api/v1/appeals"


def refused_claim(user, behaviour, *, when=None) -> Claim:
    """A refusal we control, decided just now (inside the appeal window)."""
    extra = {"occurred_at": when} if when else {}
    return RefusedClaimFactory(user=user, behaviour=behaviour, **extra)


def contest(client, claim, key=None, reason="It was my own bag, at the market today."):
    return client.post(
        f"/api/v1/claims/{claim.pk}/appeal",
        {"reason": reason, "idempotency_key": key or new_key()},
        format="json",
    )


# One time for every report in a test, so a retry is the same request.
WHEN = (timezone.now() - timedelta(hours=30)).replace(microsecond=0)


def report_missed(client, key=None, *, when=WHEN):
    return client.post(
        APPEALS,
        {
            "behaviour": "metro",
            "quantity": "8.5",
            "occurred_at": when.isoformat(),
            "reason": "My card trip from Jiedaokou to Guanggu was never credited.",
            "idempotency_key": key or new_key(),
        },
        format="json",
    )


@pytest.fixture
def reviewer(db):
    return UserFactory(is_staff=True, role="administrator")


# --- what an appeal's outcome says ------------------------------------------------------


def test_an_approval_the_cap_leaves_at_nothing_says_so(auth_api, resident, own_bag, reviewer):
    when = timezone.now() - timedelta(hours=1)
    # 5 uses x 5 g x 50% (self-declared) is more than the 10 g daily cap: the day is full.
    # Both acts at the same moment, so in the same local day even just after midnight.
    full = auth_api.post(
        "/api/v1/claims",
        {
            "behaviour": "own-bag",
            "quantity": 5,
            "idempotency_key": new_key(),
            "occurred_at": when.isoformat(),
        },
        format="json",
    ).json()
    assert full["credited_g"] == own_bag.daily_cap_g
    claim = refused_claim(resident, own_bag, when=when)
    appeal = contest(auth_api, claim).json()
    assert appeal["status"] == "open" and appeal["outcome"] is None

    claim_review(claim_id=claim.pk, reviewer=reviewer, approve=True, note="Fine.")

    shown = auth_api.get(APPEALS).json()["results"][0]
    assert shown["id"] == appeal["id"] and shown["status"] == "approved"
    assert shown["outcome"] == {
        "credited_g": 0,
        "code": "cap_reached",
        "reason": "The cap for this behaviour is already reached; nothing more can be credited.",
    }
    assert shown["claim"]["credited_g"] == 0


def test_an_approval_that_credits_and_a_rejection_say_what_they_did(
    auth_api, resident, own_bag, reviewer
):
    credited, refused = refused_claim(resident, own_bag), refused_claim(resident, own_bag)
    contest(auth_api, credited)
    contest(auth_api, refused)

    claim_review(claim_id=credited.pk, reviewer=reviewer, approve=True)
    claim_review(claim_id=refused.pk, reviewer=reviewer, approve=False, note="Not a bag.")

    outcomes = {
        a["claim"]["id"]: (a["status"], a["outcome"])
        for a in auth_api.get(APPEALS).json()["results"]
    }
    assert outcomes[str(credited.pk)] == (
        "approved",
        {"credited_g": 2, "code": "credited", "reason": "2 g credited."},
    )
    assert outcomes[str(refused.pk)] == (
        "rejected",
        {"credited_g": 0, "code": "rejected_by_reviewer", "reason": "Not a bag."},
    )


def test_a_later_appeal_of_the_same_claim_leaves_the_first_ones_outcome(
    auth_api, resident, own_bag, reviewer
):
    claim = refused_claim(resident, own_bag)
    first = contest(auth_api, claim).json()
    claim_review(claim_id=claim.pk, reviewer=reviewer, approve=False, note="No.")
    contest(auth_api, claim, reason="Here is why, again.")
    claim_review(claim_id=claim.pk, reviewer=reviewer, approve=True)

    appeal = Appeal.objects.get(pk=first["id"])
    assert (appeal.outcome_code, appeal.credited_g) == ("rejected_by_reviewer", 0)


# --- limits -------------------------------------------------------------------------------


def test_appeals_of_both_kinds_count_against_a_daily_number(
    auth_api, resident, metro, own_bag, settings
):
    settings.CARBON_APPEALS_PER_DAY = 2
    first_key = new_key()
    assert report_missed(auth_api, first_key).status_code == 201
    assert contest(auth_api, refused_claim(resident, own_bag)).status_code == 201
    claims_before = Claim.objects.count()

    refused = assert_error(report_missed(auth_api), 429, ErrorCode.APPEAL_LIMIT_REACHED)
    assert refused["details"] == {"per_day": 2}
    assert_error(
        contest(auth_api, refused_claim(resident, own_bag)), 429, ErrorCode.APPEAL_LIMIT_REACHED
    )
    # Nothing was made for the refused ones; a retry of an appeal already made still answers.
    assert Appeal.objects.count() == 2 and Claim.objects.count() == claims_before + 1
    assert report_missed(auth_api, first_key).status_code == 200
    # Another resident is not affected, and a day later this one may appeal again.
    other = APIClient()
    other.force_authenticate(UserFactory())
    assert report_missed(other).status_code == 201
    Appeal.objects.filter(user=resident).update(
        created_at=timezone.now() - timedelta(days=1, minutes=1)
    )
    assert report_missed(auth_api).status_code == 201


def test_appeal_requests_are_throttled_per_resident(
    auth_api, resident, metro, own_bag, monkeypatch
):
    monkeypatch.setattr(
        ScopedRateThrottle,
        "THROTTLE_RATES",
        {**ScopedRateThrottle.THROTTLE_RATES, "appeals": "2/hour"},
    )
    key = new_key()
    assert report_missed(auth_api, key).status_code == 201
    assert report_missed(auth_api, key).status_code == 200
    assert_error(report_missed(auth_api, key), 429, ErrorCode.THROTTLED)
    assert_error(contest(auth_api, refused_claim(resident, own_bag)), 429, ErrorCode.THROTTLED)
    # Reading my appeals is not an appeal.
    assert auth_api.get(APPEALS).status_code == 200


# --- concurrent retries (PostgreSQL) ---------------------------------------------------------


def _retries_at_once(user, send, n: int = 4) -> list:
    barrier = threading.Barrier(n, timeout=30)
    results: list = [None] * n

    def run(i: int) -> None:
        client = APIClient()
        client.force_authenticate(user)
        try:
            barrier.wait()
            results[i] = send(client)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_contest_return_the_original(own_bag):
    resident = UserFactory()
    claim = refused_claim(resident, own_bag)
    key = new_key()

    results = _retries_at_once(resident, lambda client: contest(client, claim, key))

    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 200, 200, 201], [r.content for r in results]
    assert len({r.json()["id"] for r in results}) == 1
    assert Appeal.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_missed_credit_report_return_the_original(metro):
    resident = UserFactory()
    key = new_key()
    when = timezone.now() - timedelta(hours=30)

    def send(client):
        return client.post(
            APPEALS,
            {
                "behaviour": "metro",
                "quantity": "8.5",
                "occurred_at": when.replace(microsecond=0).isoformat(),
                "reason": "Never credited.",
                "idempotency_key": key,
            },
            format="json",
        )

    results = _retries_at_once(resident, send)

    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 200, 200, 201], [r.content for r in results]
    assert len({r.json()["id"] for r in results}) == 1
    assert Appeal.objects.count() == 1 and Claim.objects.count() == 1
