"""Shapes of the campaigns API: campaigns with their rules, windows, weights and candidates
with the live tally (and, once published, the results); a vote."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import get_language
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from zerowaste.campaigns.models import Campaign


def campaign_phase(campaign: Campaign, now=None) -> str:
    now = now or timezone.now()
    if campaign.results_published_at:
        return "published"
    if now < campaign.nomination_opens_at:
        return "upcoming"
    if now < campaign.nomination_closes_at:
        return "nominating"
    if now < campaign.voting_opens_at:
        return "nominated"
    if now < campaign.voting_closes_at:
        return "voting"
    return "closed"


PHASES = ["upcoming", "nominating", "nominated", "voting", "closed", "published"]


class CampaignSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.SerializerMethodField(help_text="In the request's language.")
    title_zh = serializers.CharField()
    title_en = serializers.CharField()
    phase = serializers.SerializerMethodField()
    nomination_opens_at = serializers.DateTimeField()
    nomination_closes_at = serializers.DateTimeField()
    voting_opens_at = serializers.DateTimeField()
    voting_closes_at = serializers.DateTimeField()
    votes_per_day = serializers.IntegerField()
    public_weight_pct = serializers.IntegerField()
    jury_weight_pct = serializers.IntegerField()
    results_published_at = serializers.DateTimeField(default=None)

    def get_title(self, campaign) -> str:
        zh = (get_language() or "").startswith("zh")
        return campaign.title_zh if zh else campaign.title_en

    @extend_schema_field(serializers.ChoiceField(choices=PHASES))
    def get_phase(self, campaign) -> str:
        return campaign_phase(campaign)


class CandidateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    cell = serializers.IntegerField(source="cell_id")
    name = serializers.CharField(source="cell.name")
    name_en = serializers.CharField(source="cell.name_en")
    district = serializers.CharField(source="cell.district.code")
    statement = serializers.CharField()
    votes = serializers.IntegerField(help_text="Counted votes now (the live tally).")
    jury_score = serializers.DecimalField(max_digits=5, decimal_places=2, default=None)
    final_score = serializers.DecimalField(max_digits=6, decimal_places=2, default=None)
    rank = serializers.IntegerField(default=None)


class CampaignDetailSerializer(CampaignSummarySerializer):
    rules = serializers.SerializerMethodField(help_text="In the request's language.")
    rules_zh = serializers.CharField()
    rules_en = serializers.CharField()
    min_account_days = serializers.IntegerField()
    candidates = serializers.SerializerMethodField()
    removed_votes = serializers.SerializerMethodField(
        help_text="Votes the anomaly review reversed (not counted)."
    )

    def get_rules(self, campaign) -> str:
        zh = (get_language() or "").startswith("zh")
        return campaign.rules_zh if zh else campaign.rules_en

    @extend_schema_field(CandidateSerializer(many=True))
    def get_candidates(self, campaign) -> list[dict]:
        tally = self.context["tally"]
        published = campaign.results_published_at is not None
        rows = []
        for c in campaign.candidates.select_related("cell__district").order_by("id"):
            rows.append(
                {
                    "id": c.pk,
                    "cell_id": c.cell_id,
                    "cell": c.cell,
                    "statement": c.statement,
                    "votes": tally.get(c.pk, 0),
                    # The jury's scores stay private until the results are published.
                    "jury_score": c.jury_score if published else None,
                    "final_score": c.final_score if published else None,
                    "rank": c.rank if published else None,
                }
            )
        if published:
            rows.sort(key=lambda c: (c["rank"] or 0, c["id"]))
        return CandidateSerializer(rows, many=True).data

    def get_removed_votes(self, campaign) -> int:
        return self.context["removed"]


class VoteCreateSerializer(serializers.Serializer):
    candidate = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    idempotency_key = serializers.UUIDField(format="hex_verbose")


class VoteSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="vote.pk")
    campaign = serializers.IntegerField(source="vote.campaign_id")
    candidate = serializers.IntegerField(source="vote.candidate_id")
    day = serializers.DateField(source="vote.day")
    created_at = serializers.DateTimeField(source="vote.created_at")
    remaining_today = serializers.IntegerField()
