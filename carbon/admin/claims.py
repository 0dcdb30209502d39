"""The claim review queue, appeals and the penalty box. Rows are read-only (the view
permission opens them); decisions need `carbon.review_claim` and go through
claims.claim_review."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from carbon.admin.base import ClaimDecisionActions, ReadOnlyAdmin, receipt_html
from carbon.models import (
    Appeal,
    Claim,
    ClaimStatus,
    EvidenceTier,
    PenaltyBox,
)


class NeedsReviewFilter(admin.SimpleListFilter):
    title = _("review queue")
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("open", _("Needs review"))]

    def queryset(self, request, queryset):
        return (
            queryset.filter(status=ClaimStatus.NEEDS_REVIEW) if self.value() == "open" else queryset
        )


class EvidenceTypeFilter(admin.SimpleListFilter):
    """The evidence type is a plain column (adapters are pluggable): the filter names the
    built-in tiers in the administrator's language, and any other type by its code."""

    title = _("evidence type")
    parameter_name = "evidence_type"

    def lookups(self, request, model_admin):
        return [(tier.value, tier.label) for tier in EvidenceTier]

    def queryset(self, request, queryset):
        return queryset.filter(evidence_type=self.value()) if self.value() else queryset


def evidence_label(code: str) -> str:
    return EvidenceTier(code).label if code in EvidenceTier.values else code


@admin.register(Claim)
class ClaimAdmin(ClaimDecisionActions, ReadOnlyAdmin):
    list_display = [
        "submitted_at",
        "user",
        "behaviour",
        "quantity",
        "evidence_kind",
        "status",
        "credited_g",
    ]
    list_filter = [NeedsReviewFilter, "status", "behaviour", EvidenceTypeFilter]
    search_fields = ["user__email", "idempotency_key"]
    date_hierarchy = "submitted_at"
    readonly_fields = ["receipt_steps"]
    actions = ["approve", "reject"]

    @admin.display(description=_("receipt"))
    def receipt_steps(self, obj):
        return receipt_html(obj.receipt)

    @admin.display(description=_("evidence type"), ordering="evidence_type")
    def evidence_kind(self, obj):
        return evidence_label(obj.evidence_type)

    # Shown as evidence_kind and receipt_steps instead: the form must not add them raw.
    exclude = ["evidence_type", "receipt"]

    def get_readonly_fields(self, request, obj=None):
        # Every column, including those only services set (the form would leave them out);
        # the evidence type by its label, the receipt step by step rather than as JSON.
        shown = {"evidence_type": "evidence_kind", "receipt": "receipt_steps"}
        return [shown.get(f.name, f.name) for f in Claim._meta.fields]


@admin.register(Appeal)
class AppealAdmin(ReadOnlyAdmin):
    """Appeals are decided by deciding their claim in the review queue."""

    list_display = ["created_at", "user", "kind", "status", "claim", "reason"]
    list_filter = ["status", "kind"]


@admin.register(PenaltyBox)
class PenaltyBoxAdmin(ReadOnlyAdmin):
    list_display = ["user", "level", "until", "last_triggered_at"]
