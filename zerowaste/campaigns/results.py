"""A campaign's results, published once voting has closed: a last anomaly review, then each
candidate's counted votes as a public score (out of 100, relative to the most voted), weighed
with the jury's score by the campaign's weights (e.g. 30 % public, 70 % jury), and ranked."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from zerowaste.campaigns.anomalies import votes_review
from zerowaste.campaigns.errors import CampaignNotClosed, CampaignNotFound
from zerowaste.campaigns.models import Campaign
from zerowaste.campaigns.tally import campaign_tally

CENT = Decimal("0.01")


def campaign_results_publish(*, campaign_id: int, now: datetime | None = None) -> Campaign:
    now = now or timezone.now()
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise CampaignNotFound()
    if campaign.results_published_at is not None:
        return campaign
    if now < campaign.voting_closes_at:
        raise CampaignNotClosed(_("Voting has not closed yet."))
    votes_review(campaign_id=campaign_id)
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.results_published_at is not None:
            return campaign
        candidates = list(campaign.candidates.all())
        missing = [c.pk for c in candidates if c.jury_score is None]
        if missing:
            raise CampaignNotClosed(
                _("Enter every candidate's jury score first."), details={"candidates": missing}
            )
        tally = campaign_tally(campaign_id=campaign_id)
        most = max(tally.values(), default=0)
        public_w = Decimal(campaign.public_weight_pct) / 100
        jury_w = Decimal(campaign.jury_weight_pct) / 100
        for c in candidates:
            votes = tally.get(c.pk, 0)
            public = Decimal(votes * 100) / most if most else Decimal(0)
            c.final_votes = votes
            c.final_score = (public * public_w + c.jury_score * jury_w).quantize(
                CENT, rounding=ROUND_HALF_UP
            )
        candidates.sort(key=lambda c: (-c.final_score, -c.final_votes, c.pk))
        for rank, c in enumerate(candidates, start=1):
            c.rank = rank
            c.save(update_fields=["final_votes", "final_score", "rank"])
        campaign.results_published_at = now
        campaign.save(update_fields=["results_published_at"])
    return campaign


def campaigns_publish_closed(*, now: datetime | None = None) -> int:
    """The periodic job: publish every closed campaign whose jury scores are all in."""
    now = now or timezone.now()
    done = 0
    for campaign in Campaign.objects.filter(
        voting_closes_at__lte=now, results_published_at__isnull=True
    ).exclude(candidates__jury_score__isnull=True):
        campaign_results_publish(campaign_id=campaign.pk, now=now)
        done += 1
    return done
