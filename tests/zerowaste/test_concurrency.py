"""Votes under real concurrency, on PostgreSQL: threads with their own connections, released
together on a barrier (tests/carbon/test_ledger_concurrency.py's pattern). However the
requests interleave, a voter gets at most N votes a day and one per candidate."""

from __future__ import annotations

import time

import pytest

from carbon.errors import DomainError
from carbon.services.people import AccountClosed
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


def _writes_of(call) -> tuple[bool, str | None]:
    """Whether `call` made its transaction write anything, a row lock included (PostgreSQL
    gives a transaction an id at its first write), and the code it was refused with."""
    from django.db import connection, transaction

    refused = None
    with transaction.atomic():
        try:
            call()
        except DomainError as exc:
            refused = exc.code.value
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id_if_assigned()")
            return cursor.fetchone()[0] is not None, refused


def test_a_refusal_writes_nothing_not_even_the_voters_row_lock(transactional_db):
    # A refused vote takes no lock (so it neither waits for nor delays the voter's other
    # writes, and its commit has nothing to flush); a vote takes the resident's row lock.
    campaign, candidates = campaign_with_candidates(2, votes_per_day=1)
    voter = verified(UserFactory())

    def cast(candidate, key):
        return lambda: vote_cast(
            user=voter, campaign_id=campaign.pk, candidate_id=candidate.pk, idempotency_key=key
        )

    assert _writes_of(cast(candidates[0], "a")) == (True, None)
    assert _writes_of(cast(candidates[1], "b")) == (False, "daily_votes_used")
    assert _writes_of(cast(candidates[0], "c")) == (False, "already_voted_for_candidate")
    assert Vote.objects.count() == 1


def _vote_while_the_row_is_locked(voter, candidate, change) -> list:
    """A vote by `voter` sent while another transaction holds the voter's row lock; once
    the vote is seen waiting for that lock (pg_locks), the other transaction applies
    `change` to the row and commits. The vote's outcome: its vote, or its refusal."""
    import threading

    from django.db import connection, transaction

    from carbon.models import User

    locked, backend, outcome = threading.Event(), [], []

    def vote():
        locked.wait(10)
        try:
            connection.ensure_connection()
            backend.append(connection.connection.info.backend_pid)
            outcome.append(
                vote_cast(
                    user=voter,
                    campaign_id=candidate.campaign_id,
                    candidate_id=candidate.pk,
                    idempotency_key="k",
                )
            )
        except DomainError as exc:
            outcome.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=vote)
    thread.start()
    with transaction.atomic():
        User.objects.select_for_update(no_key=True).filter(pk=voter.pk).first()
        locked.set()
        deadline = time.monotonic() + 10
        waiting = False
        while not waiting:  # the race is real: the vote is blocked on the lock held here
            assert time.monotonic() < deadline, "the vote never waited for the row lock"
            time.sleep(0.01)
            if backend:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted)",
                        [backend[0]],
                    )
                    waiting = cursor.fetchone()[0]
        change(User.objects.filter(pk=voter.pk))
    thread.join(10)
    return outcome


def test_a_vote_racing_an_erasure_is_refused_once_the_erasure_committed(transactional_db):
    # The vote's statement waits for the row lock the erasure holds, finds the row erased
    # once it gets it, and inserts nothing; the full path then says why.
    from django.utils import timezone

    campaign, candidates = campaign_with_candidates(1)
    voter = verified(UserFactory())

    outcome = _vote_while_the_row_is_locked(
        voter,
        candidates[0],
        lambda row: row.update(erased_at=timezone.now(), is_active=False),
    )

    assert [getattr(o, "code", o) for o in outcome] == [AccountClosed.code]
    assert Vote.objects.count() == 0


def test_a_vote_racing_a_change_of_role_is_refused_once_the_change_committed(transactional_db):
    # As with an erasure: the statement checks the role again on the row it locks, so a voter
    # made staff while the vote waited gets the full path's refusal and no vote.
    from carbon.models import User

    campaign, candidates = campaign_with_candidates(1)
    voter = verified(UserFactory())

    outcome = _vote_while_the_row_is_locked(
        voter, candidates[0], lambda row: row.update(role=User.Role.ADMINISTRATOR)
    )

    assert Vote.objects.count() == 0
    assert len(outcome) == 1 and isinstance(outcome[0], DomainError), outcome
    staff = User.objects.get(pk=voter.pk)
    with pytest.raises(DomainError) as full_path:
        vote_cast(
            user=staff, campaign_id=campaign.pk, candidate_id=candidates[0].pk, idempotency_key="j"
        )
    assert outcome[0].code == full_path.value.code
