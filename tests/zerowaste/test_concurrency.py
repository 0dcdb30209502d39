"""Votes under real concurrency, on PostgreSQL: threads with their own connections, released
together on a barrier (tests/carbon/test_ledger_concurrency.py's pattern). However the
requests interleave, a voter gets at most N votes a day and one per candidate."""

from __future__ import annotations

import pytest

from carbon.errors import DomainError
from tests.carbon.factories import UserFactory
from tests.carbon.test_ledger_concurrency import run_together
from tests.zerowaste.factories import campaign_with_candidates, verified
from zerowaste.campaigns.models import Vote
from zerowaste.campaigns.votes import vote_cast

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_one_voter_racing_on_every_candidate_gets_exactly_n_votes(transactional_db):
    campaign, candidates = campaign_with_candidates(8)
    voter = verified(UserFactory())

    results = run_together(
        16,
        lambda i: vote_cast(
            user=voter,
            campaign_id=campaign.pk,
            candidate_id=candidates[i % 8].pk,
            idempotency_key=f"k-{i}",
        ),
    )

    refused = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(r, DomainError) for r in refused), refused[:3]
    assert {r.code.value for r in refused} <= {"daily_votes_used", "already_voted_for_candidate"}
    votes = Vote.objects.filter(voter=voter)
    assert votes.count() == 3 == len(results) - len(refused)
    assert sorted(votes.values_list("slot", flat=True)) == [1, 2, 3]
    assert len(set(votes.values_list("candidate_id", flat=True))) == 3


def test_concurrent_retries_of_one_key_record_one_vote(transactional_db):
    campaign, candidates = campaign_with_candidates(2)
    voter = verified(UserFactory())

    results = run_together(
        10,
        lambda i: vote_cast(
            user=voter,
            campaign_id=campaign.pk,
            candidate_id=candidates[0].pk,
            idempotency_key="same",
        ),
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    assert len({r.vote.pk for r in results}) == 1
    assert sorted(r.created for r in results) == [False] * 9 + [True]
    assert Vote.objects.count() == 1


def test_many_voters_at_once_each_within_their_limits(transactional_db):
    campaign, candidates = campaign_with_candidates(3)
    voters = [verified(UserFactory()) for _ in range(10)]

    results = run_together(
        40,
        lambda i: vote_cast(
            user=voters[i % 10],
            campaign_id=campaign.pk,
            candidate_id=candidates[(i // 10) % 3].pk,
            idempotency_key=f"v-{i}",
        ),
    )

    refused = [r for r in results if isinstance(r, Exception)]
    assert {r.code.value for r in refused} <= {"already_voted_for_candidate", "daily_votes_used"}
    assert Vote.objects.count() == 30  # each voter: 3 candidates, 3 votes
    for voter in voters:
        assert Vote.objects.filter(voter=voter).count() == 3
