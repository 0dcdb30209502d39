"""Casting a vote: a verified resident, inside the voting window, for one of the campaign's
candidates, at most once per candidate a day and at most the campaign's N votes a day.

The limits are the database's (zerowaste.campaigns.models): the vote takes the lowest free
slot of the voter's day, and the unique constraints refuse a second vote for a candidate or
a slot taken twice, so two requests racing on other connections cannot exceed either. The
resident's row lock (the one every write of a resident takes, so an erasure never crosses a
vote) makes such a race rare; when one happens anyway, the refused insert is retried on the
next free slot, or answered as the limit it hit.

On PostgreSQL the common case (a verified voter, an open window, a free slot, a new key)
is one statement: the voter's row locked, every check and the lowest free slot read, and
the vote inserted, with ON CONFLICT DO NOTHING leaving anything unusual (a replay, a second
vote for a candidate, a slot another request took, any refusal) to the full path below,
which decides it again and says why. The limits stay the constraints' either way."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from carbon.adapters.partner_events.models import PartnerLink
from carbon.adapters.transit.models import TransitCard
from carbon.errors import IdempotencyConflict
from carbon.models import User
from carbon.services.people import resident_lock
from zerowaste.campaigns.eligibility import account_age_days, voter_check
from zerowaste.campaigns.errors import (
    AlreadyVotedForCandidate,
    CampaignNotFound,
    DailyVotesUsed,
    NotACandidate,
    VotingNotOpen,
)
from zerowaste.campaigns.models import Campaign, Candidate, Vote
from zerowaste.campaigns.signals import vote_recorded

# Each retry follows a constraint another request won; more than the day's slots is a bug.
MAX_ATTEMPTS = 25


@dataclass(frozen=True)
class CastVote:
    vote: Vote
    created: bool
    #: Votes the voter may still cast today in this campaign.
    remaining_today: int


def _candidate(campaign_id: Any, candidate_id: Any) -> Candidate:
    # The campaign by its primary key first: an id out of the integer range finds nothing
    # there (a lookup through the foreign key would overflow instead).
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise CampaignNotFound()
    candidate = Candidate.objects.filter(pk=candidate_id, campaign=campaign).first()
    if candidate is None:
        raise NotACandidate(details={"candidate": candidate_id})
    candidate.campaign = campaign
    return candidate


def _replay(vote: Vote, candidate: Candidate, slots: int, used: int) -> CastVote:
    if vote.candidate_id != candidate.pk:
        raise IdempotencyConflict()
    return CastVote(vote=vote, created=False, remaining_today=max(0, slots - used))


_PG_INT_MAX = 2**31 - 1

# The fast path's statement; the voter sub-select ({voter_sql}) comes from the ORM, so
# "verified" (a resident, active, not erased, with a confirmed link) has one definition.
_CAST_SQL = """
WITH voter AS ({voter_sql}),
cand AS (
    SELECT c.id AS candidate_id, k.id AS campaign_id, k.votes_per_day, k.min_account_days
    FROM zerowaste_candidate c JOIN zerowaste_campaign k ON k.id = c.campaign_id
    WHERE c.id = %s AND k.id = %s AND k.voting_opens_at <= %s AND %s < k.voting_closes_at
),
today AS (
    SELECT v.slot FROM zerowaste_vote v, cand
    WHERE v.voter_id = %s AND v.campaign_id = cand.campaign_id AND v.day = %s
),
free AS (
    SELECT min(s.n) AS slot, (SELECT count(*) FROM today) AS taken
    FROM cand CROSS JOIN generate_series(1, cand.votes_per_day) AS s(n)
    WHERE s.n NOT IN (SELECT slot FROM today)
)
INSERT INTO zerowaste_vote (campaign_id, candidate_id, voter_id, day, slot, slots,
    idempotency_key, account_age_days, voter_joined_on, created_at)
SELECT cand.campaign_id, cand.candidate_id, voter.id, %s, free.slot, cand.votes_per_day, %s,
    GREATEST(0, floor(extract(epoch FROM (%s - voter.date_joined)) / 86400))::int,
    (voter.date_joined AT TIME ZONE %s)::date, %s
FROM voter, cand, free
WHERE free.slot IS NOT NULL
    AND voter.date_joined <= %s - make_interval(days => cand.min_account_days)
ON CONFLICT DO NOTHING
RETURNING id, slot, slots, account_age_days, voter_joined_on, (SELECT taken FROM free)
"""


_VOTER = object()


@functools.cache
def _voter_statement() -> tuple[str, tuple]:
    """The verified voter's row, locked: SQL compiled once per process (compiling the ORM
    query costs more than running the whole vote), its parameters with _VOTER where the
    user's id goes."""
    sentinel = -(2**31)  # never an id
    sql, params = (
        User.objects.filter(
            pk=sentinel, role=User.Role.RESIDENT, is_active=True, erased_at__isnull=True
        )
        .filter(
            Exists(TransitCard.objects.linked().filter(user=OuterRef("pk")))
            | Exists(PartnerLink.objects.linked().filter(user=OuterRef("pk")))
        )
        .values("id", "date_joined")
        .query.sql_with_params()
    )
    if list(params).count(sentinel) != 1:  # not an assert: -O must not skip it
        raise RuntimeError("the voter's id must be exactly one parameter of the voter query")
    # Locked here rather than by select_for_update(), which Django refuses to compile in
    # autocommit; the statement is its own transaction then, and the lock lasts as long.
    return sql + " FOR NO KEY UPDATE", tuple(_VOTER if p == sentinel else p for p in params)


def _cast_in_one_statement(
    *, user: User, campaign_id: Any, candidate_id: Any, idempotency_key: str, now: datetime
) -> CastVote | None:
    """The plain case on PostgreSQL in one round trip, or None for the full path to decide.

    `remaining_today` counts the day's votes as the statement saw them: a request of the
    same voter that committed while this one waited for the row lock is counted by the
    next answer, not this one (the limits themselves are the constraints')."""
    if connection.vendor != "postgresql" or not idempotency_key:
        return None
    if not all(isinstance(v, int) and 0 < v <= _PG_INT_MAX for v in (campaign_id, candidate_id)):
        return None
    voter_sql, voter_params = _voter_statement()
    voter_params = [user.pk if p is _VOTER else p for p in voter_params]
    day = timezone.localdate(now)
    params = [
        *voter_params,
        candidate_id, campaign_id, now, now,  # cand
        user.pk, day,  # today
        day, idempotency_key, now, settings.TIME_ZONE, now,  # the row
        now,  # account age
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(_CAST_SQL.format(voter_sql=voter_sql), params)
        row = cursor.fetchone()
    if row is None:
        return None
    pk, slot, slots, age, joined_on, taken = row
    vote = Vote(
        pk=pk,
        campaign_id=campaign_id,
        candidate_id=candidate_id,
        voter_id=user.pk,
        day=day,
        slot=slot,
        slots=slots,
        idempotency_key=idempotency_key,
        account_age_days=age,
        voter_joined_on=joined_on,
        created_at=now,
    )
    vote._state.adding = False
    transaction.on_commit(
        lambda: vote_recorded.send(sender=Vote, campaign_id=campaign_id, candidate_id=candidate_id)
    )
    return CastVote(vote=vote, created=True, remaining_today=max(0, slots - taken - 1))


def vote_cast(
    *,
    user: User,
    campaign_id: Any,
    candidate_id: Any,
    idempotency_key: str,
    now: datetime | None = None,
) -> CastVote:
    now = now or timezone.now()
    fast = _cast_in_one_statement(
        user=user,
        campaign_id=campaign_id,
        candidate_id=candidate_id,
        idempotency_key=idempotency_key,
        now=now,
    )
    if fast is not None:
        return fast
    candidate = _candidate(campaign_id, candidate_id)
    campaign = candidate.campaign
    day = timezone.localdate(now)
    slots = campaign.votes_per_day
    for _attempt in range(MAX_ATTEMPTS):
        try:
            with transaction.atomic():
                voter = resident_lock(user=user)
                # Today's votes and, whatever its day, the one this key cast: one query.
                mine = list(
                    Vote.objects.filter(voter=voter, campaign=campaign)
                    .filter(Q(day=day) | Q(idempotency_key=idempotency_key))
                    .only("pk", "candidate_id", "slot", "day", "idempotency_key")
                )
                today = [v for v in mine if v.day == day]
                for vote in mine:
                    if vote.idempotency_key == idempotency_key:
                        return _replay(vote, candidate, slots, len(today))
                # A retry answers what it cast even after the window closed; a new vote
                # needs the window and a verified voter.
                if not campaign.is_voting_open(now):
                    raise VotingNotOpen(
                        details={
                            "voting_opens_at": campaign.voting_opens_at.isoformat(),
                            "voting_closes_at": campaign.voting_closes_at.isoformat(),
                        }
                    )
                voter_check(user=voter, campaign=campaign, now=now)
                if any(v.candidate_id == candidate.pk for v in today):
                    raise AlreadyVotedForCandidate()
                taken = {v.slot for v in today}
                free = [s for s in range(1, slots + 1) if s not in taken]
                if not free:
                    raise DailyVotesUsed(details={"votes_per_day": slots})
                vote = Vote.objects.create(
                    campaign=campaign,
                    candidate=candidate,
                    voter=voter,
                    day=day,
                    slot=free[0],
                    slots=slots,
                    idempotency_key=idempotency_key,
                    account_age_days=account_age_days(user=voter, now=now),
                    voter_joined_on=timezone.localdate(voter.date_joined),
                    created_at=now,
                )
                transaction.on_commit(
                    lambda: vote_recorded.send(
                        sender=Vote, campaign_id=campaign.pk, candidate_id=candidate.pk
                    )
                )
                return CastVote(vote=vote, created=True, remaining_today=len(free) - 1)
        except IntegrityError as exc:
            # Another request of this voter committed first: read again and decide anew
            # (a replay, the candidate already voted for, or the next free slot).
            if "zerowaste_vote_slot_in_range" in str(exc):  # pragma: no cover - a bug
                raise
            continue
    raise DailyVotesUsed(details={"votes_per_day": slots})  # pragma: no cover


def votes_remaining_today(*, user: User, campaign: Campaign, now: datetime | None = None) -> int:
    now = now or timezone.now()
    used = Vote.objects.filter(voter=user, campaign=campaign, day=timezone.localdate(now)).count()
    return max(0, campaign.votes_per_day - used)
