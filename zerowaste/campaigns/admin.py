"""Campaigns in the admin: windows, rules, weights and candidates (with the jury's scores)
are edited here; the anomaly review can be run at once (review_votes) and the results
published after the close (publish_results). Each finding of the review shows with the
votes it reversed; votes themselves are not listed (who voted for whom stays private)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carbon.admin.base import act_with_reason
from zerowaste.campaigns.anomalies import votes_review
from zerowaste.campaigns.models import Campaign, Candidate, VoteReversal
from zerowaste.campaigns.results import campaign_results_publish
from zerowaste.campaigns.tally import campaign_removed_votes, campaign_tally


class CandidateInline(admin.TabularInline):
    model = Candidate
    extra = 0
    raw_id_fields = ("cell",)
    fields = ("cell", "statement", "jury_score", "votes_now", "final_votes", "final_score", "rank")
    readonly_fields = ("votes_now", "final_votes", "final_score", "rank")

    @admin.display(description=gettext_lazy("votes now"))
    def votes_now(self, obj):
        if obj.pk is None:
            return "-"
        return campaign_tally(campaign_id=obj.campaign_id).get(obj.pk, 0)


class ReversalInline(admin.TabularInline):
    model = VoteReversal
    extra = 0
    can_delete = False
    fields = readonly_fields = ("created_at", "rule", "votes_reversed", "reason", "details")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = (
        "title_zh",
        "voting_opens_at",
        "voting_closes_at",
        "votes_per_day",
        "removed_votes",
        "results_published_at",
    )
    readonly_fields = ("results_published_at", "removed_votes")
    inlines = [CandidateInline, ReversalInline]
    actions = ["review_now", "publish"]

    def has_review_votes_permission(self, request) -> bool:
        return request.user.has_perm("zerowaste.review_votes")

    def has_publish_results_permission(self, request) -> bool:
        return request.user.has_perm("zerowaste.publish_results")

    @admin.display(description=gettext_lazy("removed votes"))
    def removed_votes(self, obj):
        return campaign_removed_votes(campaign_id=obj.pk) if obj and obj.pk else 0

    @admin.action(
        description=gettext_lazy("Run the vote anomaly review now"),
        permissions=["review_votes"],
    )
    def review_now(self, request, queryset):
        def act(campaign, reason: str) -> str:
            found = votes_review(campaign_id=campaign.pk)
            return _("%(campaign)s: %(findings)d finding(s), %(votes)d vote(s) reversed.") % {
                "campaign": campaign,
                "findings": len(found),
                "votes": sum(r.votes_reversed for r in found),
            }

        return act_with_reason(
            self,
            request,
            queryset,
            permission="review_votes",
            title=_("Run the vote anomaly review"),
            max_length=300,
            label=str,
            act=act,
        )

    @admin.action(
        description=gettext_lazy("Publish the results (after voting closed)"),
        permissions=["publish_results"],
    )
    def publish(self, request, queryset):
        def act(campaign, reason: str) -> None:
            campaign_results_publish(campaign_id=campaign.pk)

        return act_with_reason(
            self,
            request,
            queryset,
            permission="publish_results",
            title=_("Publish the results"),
            max_length=300,
            label=str,
            act=act,
            summary=lambda done: _("%(count)d campaign(s) published.") % {"count": done},
        )
