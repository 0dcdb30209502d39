"""Casting a vote: a verified resident, inside the voting window, for one of the campaign's
candidates, at most once per candidate a day and at most the campaign's N votes a day.

The limits are the database's (zerowaste.campaigns.models): the vote takes the lowest free
slot of the voter's day, and the unique constraints refuse a second vote for a candidate or
a slot taken twice, so two requests racing on other connections cannot exceed either. The
resident's row lock (the one every write of a resident takes, so an erasure never crosses a
vote) makes such a race rare; when one happens anyway, the refused insert is retried on the
next free slot, or answered as the limit it hit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

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


def vote_cast(
    *,
    user: User,
    campaign_id: Any,
    candidate_id: Any,
    idempotency_key: str,
    now: datetime | None = None,
) -> CastVote:
    now = now or timezone.now()
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
