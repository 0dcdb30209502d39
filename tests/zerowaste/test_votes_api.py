"""Votes through the API: a verified resident's N votes a day, one per candidate a day,
retries answered with the same vote, and every bad vote refused with a clear error and
nothing recorded; the limits hold at the database even for rows written around the service."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from carbon.errors import DomainError
from carbon.models import User
from tests.carbon.api_helpers import assert_error, client_for, new_key
from tests.carbon.factories import UserFactory
from tests.zerowaste.factories import campaign_with_candidates, verified
from zerowaste.campaigns.models import Vote
from zerowaste.campaigns.votes import vote_cast

pytestmark = pytest.mark.django_db


def vote(client, campaign, candidate, key=None):
    return client.post(
        f"/api/v1/zerowaste/campaigns/{campaign.pk}/votes",
        {"candidate": candidate.pk, "idempotency_key": key or new_key()},
        format="json",
    )


def test_a_verified_resident_votes_and_a_retry_answers_the_same_vote(voter_api, campaign):
    campaign, candidates = campaign
    key = new_key()

    first = vote(voter_api, campaign, candidates[0], key)
    again = vote(voter_api, campaign, candidates[0], key)

    assert first.status_code == 201, first.content
    assert again.status_code == 200
    assert again.json() == first.json()
    assert first.json()["remaining_today"] == 2
    assert Vote.objects.count() == 1
    # The same key for another candidate is not a retry.
    assert_error(vote(voter_api, campaign, candidates[1], key), 409, "idempotency_conflict")
    assert Vote.objects.count() == 1


def test_one_vote_per_candidate_a_day_and_n_votes_a_day(voter_api, campaign):
    campaign, candidates = campaign
    assert vote(voter_api, campaign, candidates[0]).status_code == 201
    assert_error(vote(voter_api, campaign, candidates[0]), 409, "already_voted_for_candidate")
    assert vote(voter_api, campaign, candidates[1]).status_code == 201
    assert vote(voter_api, campaign, candidates[2]).json()["remaining_today"] == 0

    error = assert_error(vote(voter_api, campaign, candidates[3]), 409, "daily_votes_used")

    assert error["details"] == {"votes_per_day": 3}
    assert Vote.objects.count() == 3
    detail = voter_api.get(f"/api/v1/zerowaste/campaigns/{campaign.pk}").json()
    assert [c["votes"] for c in detail["candidates"]] == [1, 1, 1, 0]


def test_the_next_day_brings_new_votes(voter, campaign):
    campaign, candidates = campaign
    today = timezone.now()
    for c in candidates[:3]:
        vote_cast(user=voter, campaign_id=campaign.pk, candidate_id=c.pk, idempotency_key=new_key())

    tomorrow = vote_cast(
        user=voter,
        campaign_id=campaign.pk,
        candidate_id=candidates[0].pk,
        idempotency_key=new_key(),
        now=today + timedelta(days=1),
    )

    assert tomorrow.created and tomorrow.vote.slot == 1
    assert tomorrow.vote.day == timezone.localdate(today + timedelta(days=1))


def test_votes_outside_the_window_are_refused_but_a_retry_still_answers(voter, voter_api):
    campaign, candidates = campaign_with_candidates(2)
    key = new_key()
    assert vote(voter_api, campaign, candidates[0], key).status_code == 201
    campaign.voting_closes_at = timezone.now() - timedelta(minutes=1)
    campaign.save()

    error = assert_error(vote(voter_api, campaign, candidates[1]), 409, "voting_not_open")

    assert "voting_closes_at" in error["details"]
    assert vote(voter_api, campaign, candidates[0], key).status_code == 200
    assert Vote.objects.count() == 1


def test_not_yet_open_is_refused():
    campaign, candidates = campaign_with_candidates(
        1,
        voting_opens_at=timezone.now() + timedelta(days=1),
        voting_closes_at=timezone.now() + timedelta(days=5),
        nomination_closes_at=timezone.now(),
    )
    client = client_for(verified(UserFactory()))
    assert_error(vote(client, campaign, candidates[0]), 409, "voting_not_open")


def test_a_candidate_of_another_campaign_or_no_campaign_is_refused(voter_api, campaign):
    campaign, _ = campaign
    _, others = campaign_with_candidates(1)

    assert_error(vote(voter_api, campaign, others[0]), 400, "not_a_candidate")
    missing = voter_api.post(
        "/api/v1/zerowaste/campaigns/999999/votes",
        {"candidate": others[0].pk, "idempotency_key": new_key()},
        format="json",
    )
    assert_error(missing, 404, "campaign_not_found")
    bad = voter_api.post(
        f"/api/v1/zerowaste/campaigns/{campaign.pk}/votes",
        {"candidate": "x", "idempotency_key": "not-a-uuid"},
        format="json",
    )
    assert set(assert_error(bad, 400, "invalid")["details"]) == {"candidate", "idempotency_key"}
    assert Vote.objects.count() == 0


def test_unverified_accounts_cannot_vote(campaign):
    campaign, candidates = campaign
    no_link = client_for(UserFactory())
    error = assert_error(vote(no_link, campaign, candidates[0]), 403, "voter_not_verified")
    assert error["details"]["missing"] == ["confirmed_link"]

    campaign.min_account_days = 7
    campaign.save()
    young = client_for(verified(UserFactory()))
    error = assert_error(vote(young, campaign, candidates[0]), 403, "voter_not_verified")
    assert error["details"]["missing"] == ["account_age"]

    old = verified(UserFactory())
    User.objects.filter(pk=old.pk).update(date_joined=timezone.now() - timedelta(days=8))
    old.refresh_from_db()
    assert vote(client_for(old), campaign, candidates[0]).status_code == 201

    staff = UserFactory(role=User.Role.ADMINISTRATOR)
    assert_error(vote(client_for(staff), campaign, candidates[1]), 403, "residents_only")
    from rest_framework.test import APIClient

    assert vote(APIClient(), campaign, candidates[1]).status_code == 401
    assert Vote.objects.count() == 1


def test_the_database_refuses_rows_beyond_the_limits_whatever_writes_them(voter, campaign):
    campaign, candidates = campaign
    cast = vote_cast(
        user=voter, campaign_id=campaign.pk, candidate_id=candidates[0].pk, idempotency_key="k1"
    )
    base = {
        "campaign": campaign,
        "voter": voter,
        "day": cast.vote.day,
        "slots": 3,
        "idempotency_key": "",
    }

    for row in (
        {"candidate": candidates[0], "slot": 2},  # the same candidate the same day
        {"candidate": candidates[1], "slot": 1},  # a slot taken twice
        {"candidate": candidates[1], "slot": 4},  # beyond the day's slots
        {"candidate": candidates[1], "slot": 0},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            Vote.objects.create(**base, **row)
    assert Vote.objects.count() == 1


def test_the_tally_and_removed_votes_are_public(api, voter, campaign):
    campaign, candidates = campaign
    vote_cast(
        user=voter, campaign_id=campaign.pk, candidate_id=candidates[2].pk, idempotency_key="a"
    )

    body = api.get(f"/api/v1/zerowaste/campaigns/{campaign.pk}").json()

    assert body["phase"] == "voting"
    assert body["removed_votes"] == 0
    assert {c["id"]: c["votes"] for c in body["candidates"]}[candidates[2].pk] == 1
    assert all(c["jury_score"] is None for c in body["candidates"])
    listed = api.get("/api/v1/zerowaste/campaigns").json()
    assert [c["id"] for c in listed] == [campaign.pk]
    assert_error(api.get("/api/v1/zerowaste/campaigns/999999"), 404, "campaign_not_found")


@pytest.mark.postgres
def test_a_plain_vote_is_one_statement_on_postgresql_and_writes_what_the_full_path_writes(
    monkeypatch,
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from zerowaste.campaigns import votes

    campaign, candidates = campaign_with_candidates(3)
    voter = verified(UserFactory(date_joined=timezone.now() - timedelta(days=40, hours=5)))

    with CaptureQueriesContext(connection) as statements:
        fast = vote_cast(
            user=voter, campaign_id=campaign.pk, candidate_id=candidates[0].pk, idempotency_key="a"
        )
    monkeypatch.setattr(votes, "_cast_in_one_statement", lambda **kwargs: None)
    full = vote_cast(
        user=voter, campaign_id=campaign.pk, candidate_id=candidates[1].pk, idempotency_key="b"
    )

    assert len(statements) == 1, [q["sql"][:80] for q in statements]
    assert (fast.created, fast.remaining_today) == (True, 2)
    assert (full.created, full.remaining_today) == (True, 1)
    fields = ("day", "slots", "account_age_days", "voter_joined_on", "voter_id", "campaign_id")
    rows = list(Vote.objects.filter(voter=voter).order_by("slot").values("slot", *fields))
    assert [r.pop("slot") for r in rows] == [1, 2]
    assert rows[0] == rows[1]
    assert rows[0]["account_age_days"] == 40
    stored = Vote.objects.get(pk=fast.vote.pk)
    assert (stored.candidate_id, stored.idempotency_key) == (candidates[0].pk, "a")
    assert {f: getattr(fast.vote, f) for f in fields} == rows[0]


@pytest.mark.postgres
def test_votes_a_replay_and_refusals_on_postgresql_after_one_another():
    campaign, candidates = campaign_with_candidates(4)
    voter = verified(UserFactory(date_joined=timezone.now() - timedelta(days=40)))
    unlinked = UserFactory(date_joined=timezone.now() - timedelta(days=40))

    cast = [
        vote_cast(user=voter, campaign_id=campaign.pk, candidate_id=c.pk, idempotency_key=k)
        for c, k in zip(candidates[:3], "abc", strict=True)
    ]
    replay = vote_cast(
        user=voter, campaign_id=campaign.pk, candidate_id=candidates[0].pk, idempotency_key="a"
    )

    assert [c.remaining_today for c in cast] == [2, 1, 0]
    assert (replay.created, replay.vote.pk) == (False, cast[0].vote.pk)
    for user, candidate, code in [
        (voter, candidates[3], "daily_votes_used"),
        (unlinked, candidates[0], "voter_not_verified"),
    ]:
        with pytest.raises(Exception) as refused:
            vote_cast(
                user=user, campaign_id=campaign.pk, candidate_id=candidate.pk, idempotency_key="z"
            )
        assert refused.value.code.value == code
    assert Vote.objects.filter(campaign=campaign).count() == 3


# Each refusal the one statement decides, set up by a function that returns who votes for
# what: (user, campaign id, candidate id, key). The statement must answer exactly what the
# full path answers: the same status, code, message and details, and no row written.
def _no_campaign():
    _, candidates = campaign_with_candidates(1)
    return verified(UserFactory()), 2_000_000_000, candidates[0].pk, new_key()


def _candidate_elsewhere():
    campaign, _ = campaign_with_candidates(1)
    _, others = campaign_with_candidates(1)
    return verified(UserFactory()), campaign.pk, others[0].pk, new_key()


def _key_used_for_another_candidate():
    campaign, candidates = campaign_with_candidates(2)
    voter, key = verified(UserFactory()), new_key()
    vote_cast(
        user=voter, campaign_id=campaign.pk, candidate_id=candidates[0].pk, idempotency_key=key
    )
    return voter, campaign.pk, candidates[1].pk, key


def _closed():
    campaign, candidates = campaign_with_candidates(1)
    campaign.voting_closes_at = timezone.now() - timedelta(minutes=1)
    campaign.save()
    return verified(UserFactory()), campaign.pk, candidates[0].pk, new_key()


def _not_yet_open():
    campaign, candidates = campaign_with_candidates(
        1,
        voting_opens_at=timezone.now() + timedelta(days=1),
        voting_closes_at=timezone.now() + timedelta(days=5),
        nomination_closes_at=timezone.now(),
    )
    return verified(UserFactory()), campaign.pk, candidates[0].pk, new_key()


def _no_link():
    campaign, candidates = campaign_with_candidates(1)
    return UserFactory(), campaign.pk, candidates[0].pk, new_key()


def _too_young_and_no_link():
    campaign, candidates = campaign_with_candidates(1, min_account_days=7)
    return UserFactory(), campaign.pk, candidates[0].pk, new_key()


def _too_young():
    campaign, candidates = campaign_with_candidates(1, min_account_days=7)
    voter = verified(UserFactory(date_joined=timezone.now() - timedelta(days=6, hours=23)))
    return voter, campaign.pk, candidates[0].pk, new_key()


def _candidate_already_voted_for():
    campaign, candidates = campaign_with_candidates(2)
    voter = verified(UserFactory())
    vote_cast(
        user=voter, campaign_id=campaign.pk, candidate_id=candidates[0].pk, idempotency_key="a"
    )
    return voter, campaign.pk, candidates[0].pk, new_key()


def _votes_used(again: bool):
    def world():
        campaign, candidates = campaign_with_candidates(4, votes_per_day=2)
        voter = verified(UserFactory())
        for c, key in zip(candidates[:2], "ab", strict=True):
            vote_cast(user=voter, campaign_id=campaign.pk, candidate_id=c.pk, idempotency_key=key)
        # again: the day's votes are used AND the candidate was voted for: the full path
        # names the candidate first.
        return voter, campaign.pk, candidates[0 if again else 3].pk, new_key()

    world.__name__ = "_votes_used_and_candidate_voted_for" if again else "_votes_used"
    return world


def _closed_account():
    campaign, candidates = campaign_with_candidates(1)
    voter = verified(UserFactory())
    User.objects.filter(pk=voter.pk).update(is_active=False)
    voter.refresh_from_db()
    return voter, campaign.pk, candidates[0].pk, new_key()


def _not_a_resident():
    campaign, candidates = campaign_with_candidates(1)
    return UserFactory(role=User.Role.ADMINISTRATOR), campaign.pk, candidates[0].pk, new_key()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("world", "status", "code"),
    [
        (_no_campaign, 404, "campaign_not_found"),
        (_candidate_elsewhere, 400, "not_a_candidate"),
        (_key_used_for_another_candidate, 409, "idempotency_conflict"),
        (_closed, 409, "voting_not_open"),
        (_not_yet_open, 409, "voting_not_open"),
        (_no_link, 403, "voter_not_verified"),
        (_too_young_and_no_link, 403, "voter_not_verified"),
        (_too_young, 403, "voter_not_verified"),
        (_candidate_already_voted_for, 409, "already_voted_for_candidate"),
        (_votes_used(again=False), 409, "daily_votes_used"),
        (_votes_used(again=True), 409, "already_voted_for_candidate"),
        (_closed_account, 409, "account_closed"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_the_one_statement_refuses_exactly_as_the_full_path(monkeypatch, world, status, code):
    from zerowaste.campaigns import votes

    user, campaign_id, candidate_id, key = world()
    client = client_for(user)
    before = Vote.objects.count()

    def post():
        return client.post(
            f"/api/v1/zerowaste/campaigns/{campaign_id}/votes",
            {"candidate": candidate_id, "idempotency_key": key},
            format="json",
        )

    with monkeypatch.context() as full_only:
        full_only.setattr(votes, "_cast_in_one_statement", lambda **kwargs: None)
        full = post()
    with monkeypatch.context() as fast_only:

        def entered(*args, **kwargs):
            raise AssertionError("the full path was entered")

        fast_only.setattr(votes, "_candidate", entered)
        fast = post()

    assert_error(full, status, code)
    assert (fast.status_code, fast.json()) == (full.status_code, full.json())
    assert Vote.objects.count() == before


@pytest.mark.postgres
def test_a_refusal_of_a_non_resident_from_the_one_statement_is_the_full_paths(monkeypatch):
    # The API refuses a non-resident before the service (residents_only); the service's own
    # answer, for a caller without that gate, is the same on both paths too.
    from zerowaste.campaigns import votes

    user, campaign_id, candidate_id, key = _not_a_resident()

    def refusal():
        with pytest.raises(DomainError) as refused:
            vote_cast(
                user=user, campaign_id=campaign_id, candidate_id=candidate_id, idempotency_key=key
            )
        e = refused.value
        return e.code, e.status, str(e.message), e.details

    with monkeypatch.context() as full_only:
        full_only.setattr(votes, "_cast_in_one_statement", lambda **kwargs: None)
        full = refusal()
    monkeypatch.setattr(votes, "_candidate", lambda *args: pytest.fail("full path entered"))
    fast = refusal()

    assert full[0].value == "voter_not_verified"
    assert full[3]["missing"] == ["resident"]
    assert fast == full
    assert Vote.objects.count() == 0


@pytest.mark.postgres
def test_a_replay_still_goes_to_the_full_path_and_answers_the_vote():
    campaign, candidates = campaign_with_candidates(1)
    voter = verified(UserFactory())
    first = vote_cast(
        user=voter, campaign_id=campaign.pk, candidate_id=candidates[0].pk, idempotency_key="k"
    )
    campaign.voting_closes_at = timezone.now() - timedelta(minutes=1)
    campaign.save()

    again = vote_cast(
        user=voter, campaign_id=campaign.pk, candidate_id=candidates[0].pk, idempotency_key="k"
    )

    assert (again.created, again.vote.pk) == (False, first.vote.pk)
