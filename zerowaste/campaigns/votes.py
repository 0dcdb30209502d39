"""Casting a vote: a verified resident, inside the voting window, for one of the campaign's
candidates, at most once per candidate a day and at most the campaign's N votes a day.

The limits are the database's (zerowaste.campaigns.models): the vote takes the lowest free
slot of the voter's day, and the unique constraints refuse a second vote for a candidate or
a slot taken twice, so two requests racing on other connections cannot exceed either. The
resident's row lock (the one every write of a resident takes, so an erasure never crosses a
vote) makes such a race rare; when one happens anyway, the refused insert is retried on the
next free slot, or answered as the limit it hit.

On PostgreSQL a vote is one statement: every check and the lowest free slot read, and when
they all pass the voter's row locked and the vote inserted (ON CONFLICT DO NOTHING); the
statement also returns what it read, so that a refusal it can decide (no such campaign or
candidate, a closed account, a key used for another candidate, the window, an unverified
voter, the candidate already voted for, the day's votes used) is answered from it with the
full path's own error. What it cannot decide (a replay, a slot another request of the voter
took meanwhile) goes to the full path below, which decides it again and says why.
The limits stay the constraints' either way."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from carbon.errors import IdempotencyConflict
from carbon.models import User
from carbon.services.people import AccountClosed, resident_lock
from zerowaste.campaigns.eligibility import account_age_days, voter_check, voter_links
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

# The fast path's statement. It inserts the vote when every check passes and, whether it did
# or not, returns the facts the full path decides a refusal from (read in the same snapshot),
# so that a refusal costs one round trip too. The voter sub-select ({voter_sql}) comes from
# the ORM (the link annotations are eligibility's); %(name)s are the statement's own values.
# The resident's row lock (resident_lock's: an erasure and a vote of the same resident run
# one after the other) is taken only when the checks allow the vote (`allowed`, an InitPlan:
# without it no row is read, so none is locked), and the row is checked again once locked,
# so an erasure that committed meanwhile leaves nothing to insert. A refusal thus writes
# nothing, not even a row lock: a read-only transaction, with no commit to flush to disk.
# (Locked in SQL rather than by select_for_update(), which Django refuses to compile in
# autocommit; the statement is its own transaction then, and the lock lasts as long.)
_CAST_SQL = """
WITH voter (id, date_joined, role, is_active, erased_at, card, partner) AS ({voter_sql}),
camp AS (
    SELECT id, votes_per_day, min_account_days, voting_opens_at, voting_closes_at
    FROM zerowaste_campaign WHERE id = %(campaign)s
),
cand AS (
    SELECT id FROM zerowaste_candidate WHERE id = %(candidate)s AND campaign_id = %(campaign)s
),
mine AS (
    SELECT slot, candidate_id, day, idempotency_key FROM zerowaste_vote
    WHERE voter_id = %(voter)s AND campaign_id = %(campaign)s
        AND (day = %(day)s OR idempotency_key = %(key)s)
),
today AS (SELECT slot, candidate_id FROM mine WHERE day = %(day)s),
free AS (
    SELECT min(s.n) AS slot
    FROM camp CROSS JOIN generate_series(1, camp.votes_per_day) AS s(n)
    WHERE s.n NOT IN (SELECT slot FROM today)
),
allowed AS (
    SELECT 1 FROM voter, camp, cand, free
    WHERE free.slot IS NOT NULL
        AND camp.voting_opens_at <= %(now)s AND %(now)s < camp.voting_closes_at
        AND voter.role = %(resident)s AND voter.is_active AND voter.erased_at IS NULL
        AND (voter.card OR voter.partner)
        AND voter.date_joined <= %(now)s - make_interval(days => camp.min_account_days)
        AND NOT EXISTS (SELECT 1 FROM mine WHERE idempotency_key = %(key)s)
        AND NOT EXISTS (SELECT 1 FROM today WHERE candidate_id = cand.id)
),
locked AS (
    SELECT id, date_joined FROM carbon_user
    -- Checked again on the newest row once the lock is granted: a voter made staff,
    -- closed or erased while this waited is refused, as the full path refuses them.
    WHERE id = %(voter)s AND role = %(resident)s AND is_active AND erased_at IS NULL
        AND EXISTS (SELECT 1 FROM allowed)
    FOR NO KEY UPDATE
),
ins AS (
    INSERT INTO zerowaste_vote (campaign_id, candidate_id, voter_id, day, slot, slots,
        idempotency_key, account_age_days, voter_joined_on, created_at)
    SELECT camp.id, cand.id, locked.id, %(day)s, free.slot, camp.votes_per_day, %(key)s,
        GREATEST(0, floor(extract(epoch FROM (%(now)s - locked.date_joined)) / 86400))::int,
        (locked.date_joined AT TIME ZONE %(tz)s)::date, %(now)s
    FROM locked, camp, cand, free
    ON CONFLICT DO NOTHING
    RETURNING id, slot, slots, account_age_days, voter_joined_on
)
SELECT ins.id, ins.slot, ins.slots, ins.account_age_days, ins.voter_joined_on,
    (SELECT count(*) FROM today), (SELECT slot FROM free),
    camp.id, camp.votes_per_day, camp.min_account_days, camp.voting_opens_at,
        camp.voting_closes_at,
    cand.id,
    voter.id, voter.role, voter.is_active, voter.erased_at, voter.date_joined,
        voter.card OR voter.partner,
    (SELECT candidate_id FROM mine WHERE idempotency_key = %(key)s),
    EXISTS (SELECT 1 FROM today WHERE candidate_id = %(candidate)s)
FROM (SELECT 1) AS one
    LEFT JOIN ins ON TRUE LEFT JOIN camp ON TRUE LEFT JOIN cand ON TRUE
    LEFT JOIN voter ON TRUE
"""

_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%s")


@functools.cache
def _cast_statement() -> tuple[str, tuple]:
    """The statement with positional placeholders, compiled once per process (compiling the
    ORM query costs more than running the whole vote), and where each parameter comes from:
    a name of the statement's values, or a constant of the voter query."""
    sentinel = -(2**31)  # never an id
    voter_sql, voter_params = (
        User.objects.filter(pk=sentinel)
        .annotate(**voter_links())
        .values("id", "date_joined", "role", "is_active", "erased_at", "zw_card", "zw_partner")
        .query.sql_with_params()
    )
    if list(voter_params).count(sentinel) != 1:  # not an assert: -O must not skip it
        raise RuntimeError("the voter's id must be exactly one parameter of the voter query")
    sql = _CAST_SQL.format(voter_sql=voter_sql)
    constants = iter(voter_params)
    sources: list[Any] = []

    def positional(match: re.Match) -> str:
        if match.group(1):
            sources.append(match.group(1))
        else:
            value = next(constants)
            sources.append("voter" if value == sentinel else _Constant(value))
        return "%s"

    sql = _PLACEHOLDER.sub(positional, sql)
    if next(constants, None) is not None:
        raise RuntimeError("the voter query has more parameters than placeholders")
    return sql, tuple(sources)


@dataclass(frozen=True)
class _Constant:
    value: Any


def _cast_in_one_statement(
    *, user: User, campaign_id: Any, candidate_id: Any, idempotency_key: str, now: datetime
) -> CastVote | None:
    """The vote on PostgreSQL in one round trip: cast, or refused with exactly the full
    path's error (the same checks in the same order, on the facts the statement read), or
    None for the full path to decide (a replay, or a vote another request of this voter
    raced: ON CONFLICT left it alone).

    The facts come from the statement's snapshot, which may miss a vote of the same voter
    committed while this one waited for the row lock. A refusal stays right all the same:
    votes are only added, so every refusal drawn from fewer votes holds for more. And
    `remaining_today` counts the day's votes as the statement saw them: such a vote is
    counted by the next answer, not this one (the limits themselves are the constraints')."""
    if connection.vendor != "postgresql" or not idempotency_key:
        return None
    if not all(isinstance(v, int) and 0 < v <= _PG_INT_MAX for v in (campaign_id, candidate_id)):
        return None
    day = timezone.localdate(now)
    values = {
        "voter": user.pk, "campaign": campaign_id, "candidate": candidate_id, "day": day,
        "key": idempotency_key, "now": now, "tz": settings.TIME_ZONE,
        "resident": User.Role.RESIDENT.value,
    }  # fmt: skip
    sql, sources = _cast_statement()
    params = [s.value if isinstance(s, _Constant) else values[s] for s in sources]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    (pk, slot, slots, age, joined_on, taken, free_slot,
     found_campaign, votes_per_day, min_account_days, opens_at, closes_at,
     found_candidate,
     found_voter, role, is_active, erased_at, date_joined, linked,
     key_candidate, voted_candidate) = row  # fmt: skip
    if pk is None:
        return _refuse_as_the_full_path(
            campaign=found_campaign
            and Campaign(
                pk=found_campaign,
                votes_per_day=votes_per_day,
                min_account_days=min_account_days,
                voting_opens_at=opens_at,
                voting_closes_at=closes_at,
            ),
            candidate_found=found_candidate is not None,
            candidate_id=candidate_id,
            voter=found_voter
            and User(
                pk=found_voter,
                role=role,
                is_active=is_active,
                erased_at=erased_at,
                date_joined=date_joined,
            ),
            linked=bool(linked),
            key_candidate=key_candidate,
            voted_candidate=voted_candidate,
            free_slot=free_slot,
            now=now,
        )
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


def _refuse_as_the_full_path(
    *,
    campaign: Campaign | None,
    candidate_found: bool,
    candidate_id: int,
    voter: User | None,
    linked: bool,
    key_candidate: int | None,
    voted_candidate: bool,
    free_slot: int | None,
    now: datetime,
) -> None:
    """Raise the full path's refusal of a vote the statement did not insert, checking in
    vote_cast's order with its own errors; None where it would not refuse (a replay to
    answer, or a vote that lost a race: vote_cast decides those again)."""
    if not campaign:
        raise CampaignNotFound()
    if not candidate_found:
        raise NotACandidate(details={"candidate": candidate_id})
    if not voter or voter.erased_at or not voter.is_active:  # resident_lock's refusal
        raise AccountClosed()
    if key_candidate is not None:
        if key_candidate != candidate_id:
            raise IdempotencyConflict()
        return None
    _check_window(campaign, now)
    voter_check(user=voter, campaign=campaign, now=now, linked=linked)
    if voted_candidate:
        raise AlreadyVotedForCandidate()
    if free_slot is None:
        raise DailyVotesUsed(details={"votes_per_day": campaign.votes_per_day})
    return None


def _check_window(campaign: Campaign, now: datetime) -> None:
    if not campaign.is_voting_open(now):
        raise VotingNotOpen(
            details={
                "voting_opens_at": campaign.voting_opens_at.isoformat(),
                "voting_closes_at": campaign.voting_closes_at.isoformat(),
            }
        )


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
                _check_window(campaign, now)
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
