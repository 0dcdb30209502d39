"""Admin pieces shared by the console's pages: read-only registrations, a claim's receipt
as HTML, and the review decision of the claim queue and the photo moderation queue
(approve or reject with a required reason, each through claims.claim_review)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.shortcuts import render
from django.utils.html import format_html, format_html_join

from carbon.errors import DomainError
from carbon.services.claims import claim_review


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services (ledger, feeds): visible, never edited here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def receipt_html(receipt: dict):
    """The receipt of a claim, step by step, as the resident sees it."""
    return format_html(
        "<p><b>{}</b>: {}</p><ol>{}</ol>",
        receipt.get("code", ""),
        receipt.get("reason", ""),
        format_html_join(
            "",
            "<li><b>{}</b>: {} {}</li>",
            (
                (
                    s.get("step"),
                    s.get("outcome"),
                    {k: v for k, v in s.items() if k not in ("step", "outcome")},
                )
                for s in receipt.get("steps", [])
            ),
        ),
    )


class ReasonForm(forms.Form):
    note = forms.CharField(
        label="reason", max_length=500, required=True, widget=forms.Textarea(attrs={"rows": 3})
    )


class ClaimDecisionActions:
    """Mixin for a ModelAdmin whose rows are claims or belong to one (`claim_id_of`)."""

    decision_noun = "claim(s)"

    def claim_id_of(self, obj):
        return obj.pk

    def _decide(self, request, queryset, approve: bool):
        if "apply" in request.POST:
            form = ReasonForm(request.POST)
            if form.is_valid():
                done = 0
                for obj in queryset:
                    claim_id = self.claim_id_of(obj)
                    try:
                        claim_review(
                            claim_id=claim_id,
                            reviewer=request.user,
                            approve=approve,
                            note=form.cleaned_data["note"],
                        )
                        done += 1
                    except DomainError as exc:
                        self.message_user(
                            request, f"claim {claim_id}: {exc.message}", messages.WARNING
                        )
                verb = "approved" if approve else "rejected"
                self.message_user(request, f"{done} {self.decision_noun} {verb}.")
                return None
        else:
            form = ReasonForm()
        return render(
            request,
            "admin/carbon/decide.html",
            {
                **self.admin_site.each_context(request),
                "title": f"{'Approve' if approve else 'Reject'} {self.decision_noun}",
                "objects": queryset,
                "form": form,
                "action": request.POST["action"],
                "checkbox_name": ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )

    @admin.action(
        description="Approve selected (runs the rules and credits)", permissions=["change"]
    )
    def approve(self, request, queryset):
        return self._decide(request, queryset, approve=True)

    @admin.action(description="Reject selected (a reason is required)", permissions=["change"])
    def reject(self, request, queryset):
        return self._decide(request, queryset, approve=False)
