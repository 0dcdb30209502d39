"""The anomaly review of a campaign's votes (a periodic job, and once more before the
results): it finds three patterns of rigging and reverses the votes in them, each finding
with an audit record (VoteReversal: the rule, why, the figures). Reversed votes stay in the
table, no longer counted; the public sees how many were removed.

* burst: a candidate gets, in one window of minutes, many times its usual rate, and the
  votes in that window from new accounts are reversed (old accounts voting in a burst are
  a school assembly, not a farm);
* cluster: new accounts registered on the same day that voted for exactly the same set of
  candidates, in numbers no chance explains;
* serial: a run of votes for one candidate by different accounts, one after another at a
  machine's steady rhythm (a script cycling through accounts).

The IP address is not used at all (households and campuses share one). Thresholds are
settings (ZEROWASTE_ANOMALY_*), tuned to keep false positives rare; every reversal can be
read and, by an administrator, argued with from its audit record."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from zerowaste.campaigns.models import Campaign, Vote, VoteReversal
from zerowaste.campaigns.signals import votes_reversed


@dataclass(frozen=True)
class Row:
    id: int
    candidate_id: int
    voter_key: str
    created_at: datetime
    account_age_days: int
    voter_joined_on: Any


@dataclass
class Finding:
    rule: str
    reason: str
    details: dict[str, Any]
    vote_ids: set[int] = field(default_factory=set)


def _settings() -> dict[str, Any]:
    return settings.ZEROWASTE_ANOMALY


def _bursts(rows: list[Row]) -> Iterator[Finding]:
    conf = _settings()
    window = conf["BURST_WINDOW_SECONDS"]
    by_candidate: dict[int, list[Row]] = defaultdict(list)
    for row in rows:  # in time order
        by_candidate[row.candidate_id].append(row)
    if not rows:
        return
    first = int(rows[0].created_at.timestamp()) // window
    last = int(rows[-1].created_at.timestamp()) // window
    for candidate_id, votes in by_candidate.items():
        # The usual rate: the median of votes per window over the campaign so far, quiet
        # windows (zeros) included.
        per_window: dict[int, int] = defaultdict(int)
        for r in votes:
            per_window[int(r.created_at.timestamp()) // window] += 1
        usual = statistics.median(per_window.get(b, 0) for b in range(first, last + 1))
        threshold = max(conf["BURST_MIN_VOTES"], conf["BURST_FACTOR"] * usual)
        # A sliding window (not fixed buckets, which a burst across a boundary would halve).
        in_burst: set[int] = set()
        j = 0
        for i, row in enumerate(votes):
            while (row.created_at - votes[j].created_at).total_seconds() > window:
                j += 1
            if i - j + 1 >= threshold:
                in_burst.update(range(j, i + 1))
        if not in_burst:
            continue
        burst = [votes[k] for k in sorted(in_burst)]
        young = {r.id for r in burst if r.account_age_days < conf["NEW_ACCOUNT_DAYS"]}
        if not young:
            continue
        yield Finding(
            rule=VoteReversal.Rule.BURST,
            reason=(
                f"{len(burst)} votes for candidate {candidate_id} at more than {threshold:g} "
                f"in {window // 60} minutes from {burst[0].created_at:%Y-%m-%d %H:%M} (usually "
                f"{usual:g}); those of accounts younger than {conf['NEW_ACCOUNT_DAYS']} days "
                "are reversed."
            ),
            details={
                "candidate": candidate_id,
                "from": burst[0].created_at.isoformat(),
                "to": burst[-1].created_at.isoformat(),
                "votes_in_burst": len(burst),
                "usual": usual,
                "threshold": threshold,
            },
            vote_ids=young,
        )


def _clusters(rows: list[Row]) -> Iterator[Finding]:
    conf = _settings()
    ballots: dict[str, set[int]] = defaultdict(set)
    votes_of: dict[str, set[int]] = defaultdict(set)
    joined: dict[str, Any] = {}
    for row in rows:
        if row.account_age_days >= conf["NEW_ACCOUNT_DAYS"] or row.voter_joined_on is None:
            continue
        ballots[row.voter_key].add(row.candidate_id)
        votes_of[row.voter_key].add(row.id)
        joined[row.voter_key] = row.voter_joined_on
    groups: dict[tuple, list[str]] = defaultdict(list)
    for voter, chosen in ballots.items():
        groups[(joined[voter], frozenset(chosen))].append(voter)
    for (joined_on, chosen), voters in groups.items():
        if len(voters) < conf["CLUSTER_MIN_ACCOUNTS"]:
            continue
        yield Finding(
            rule=VoteReversal.Rule.CLUSTER,
            reason=(
                f"{len(voters)} accounts registered on {joined_on} voted for exactly the same "
                f"candidates ({sorted(chosen)})."
            ),
            details={
                "joined_on": str(joined_on),
                "candidates": sorted(chosen),
                "accounts": len(voters),
            },
            vote_ids=set().union(*(votes_of[v] for v in voters)),
        )


def _serial(rows: list[Row]) -> Iterator[Finding]:
    conf = _settings()

    def finding(run: list[Row]) -> Finding | None:
        if len(run) < conf["SERIAL_MIN_RUN"]:
            return None
        gaps = [(b.created_at - a.created_at).total_seconds() for a, b in itertools.pairwise(run)]
        if max(gaps) - min(gaps) > conf["SERIAL_JITTER_SECONDS"]:
            return None
        return Finding(
            rule=VoteReversal.Rule.SERIAL,
            reason=(
                f"{len(run)} votes in a row for candidate {run[0].candidate_id}, each by "
                f"another account, {min(gaps):.1f}-{max(gaps):.1f} s apart."
            ),
            details={
                "candidate": run[0].candidate_id,
                "from": run[0].created_at.isoformat(),
                "to": run[-1].created_at.isoformat(),
                "votes": len(run),
            },
            vote_ids={r.id for r in run},
        )

    run: list[Row] = []
    for row in rows:  # in time order
        if (
            run
            and row.candidate_id == run[-1].candidate_id
            and row.voter_key not in {r.voter_key for r in run}
            and (row.created_at - run[-1].created_at).total_seconds() <= conf["SERIAL_GAP_SECONDS"]
        ):
            run.append(row)
            continue
        if found := finding(run):
            yield found
        run = [row]
    if found := finding(run):
        yield found


DETECTORS = (_bursts, _clusters, _serial)


def votes_review(*, campaign_id: int) -> list[VoteReversal]:
    """Review the campaign's counted votes and reverse what the rules find; returns the
    new audit records (none when nothing was found). Idempotent: reversed votes are not
    looked at again."""
    rows = [
        Row(
            id=v["id"],
            candidate_id=v["candidate_id"],
            # Erased voters' votes are still reviewed, each as an account of its own.
            voter_key=str(v["voter_id"] or f"erased-{v['id']}"),
            created_at=v["created_at"],
            account_age_days=v["account_age_days"],
            voter_joined_on=v["voter_joined_on"],
        )
        for v in Vote.objects.counted()
        .filter(campaign_id=campaign_id)
        .order_by("created_at", "id")
        .values(
            "id", "candidate_id", "voter_id", "created_at", "account_age_days", "voter_joined_on"
        )
    ]
    findings = [f for detector in DETECTORS for f in detector(rows)]
    if not findings:
        return []
    made = []
    removed: dict[int, int] = defaultdict(int)
    with transaction.atomic():
        Campaign.objects.select_for_update().get(pk=campaign_id)  # one review at a time
        for found in findings:
            reversal = VoteReversal.objects.create(
                campaign_id=campaign_id,
                rule=found.rule,
                reason=found.reason[:500],
                details=found.details,
            )
            ids = Vote.objects.counted().filter(campaign_id=campaign_id, pk__in=found.vote_ids)
            for row in ids.values("candidate_id").annotate(n=Count("id")):
                removed[row["candidate_id"]] += row["n"]
            reversal.votes_reversed = ids.update(reversal=reversal)
            reversal.save(update_fields=["votes_reversed"])
            made.append(reversal)
        counts = dict(removed)
        transaction.on_commit(
            lambda: votes_reversed.send(sender=Vote, campaign_id=campaign_id, counts=counts)
        )
    return made


def campaigns_review(*, now: datetime | None = None) -> int:
    """The periodic job: every campaign whose voting is open or closed in the last day and
    not yet published. Returns the number of findings."""
    now = now or timezone.now()
    found = 0
    for campaign_id in Campaign.objects.filter(
        voting_opens_at__lte=now, results_published_at__isnull=True
    ).values_list("pk", flat=True):
        found += len(votes_review(campaign_id=campaign_id))
    return found
