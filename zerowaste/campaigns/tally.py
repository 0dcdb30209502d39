"""Live tallies of a campaign, from the votes (the source of truth): counted votes per
candidate, and the number the anomaly review removed (shown publicly). A leaderboard source
for campaigns rebuilds from `campaign_tally_rows`."""

from __future__ import annotations

from django.db.models import Count

from zerowaste.campaigns.models import Candidate, Vote


def campaign_tally(*, campaign_id: int) -> dict[int, int]:
    """candidate id -> counted votes (every candidate, 0 included)."""
    tally = dict.fromkeys(
        Candidate.objects.filter(campaign_id=campaign_id).values_list("pk", flat=True), 0
    )
    counted = (
        Vote.objects.counted()
        .filter(campaign_id=campaign_id)
        .values("candidate_id")
        .annotate(n=Count("id"))
        .values_list("candidate_id", "n")
    )
    tally.update(dict(counted))
    return tally


def campaign_removed_votes(*, campaign_id: int) -> int:
    return Vote.objects.filter(campaign_id=campaign_id, reversal__isnull=False).count()


def campaign_tally_rows(*, campaign_id: int) -> list[tuple[str, int]]:
    """(member key, score) rows for a leaderboard of this campaign, highest first: the member
    is "candidate:<id>"."""
    tally = campaign_tally(campaign_id=campaign_id)
    return sorted(
        ((f"candidate:{pk}", n) for pk, n in tally.items()), key=lambda row: (-row[1], row[0])
    )
