"""Admin pieces shared by the console's pages: read-only registrations, a claim's receipt
as HTML, the page that asks for a reason before a decision is applied row by row, and the
review decision of the claim queue and the photo moderation queue (approve or reject with
a required reason, each through claims.claim_review, under `carbon.review_claim`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core import validators
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carbon.errors import DomainError
from carbon.models import Claim
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
        label=gettext_lazy("reason"), required=True, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, max_length: int, **kwargs):
        super().__init__(*args, **kwargs)
        # The reason is stored by each decision's service in a column of its own length.
        note = self.fields["note"]
        note.max_length = max_length
        note.validators.append(validators.MaxLengthValidator(max_length))
        note.widget.attrs["maxlength"] = str(max_length)


def act_with_reason(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    rows: Iterable[Any],
    *,
    permission: str,
    title: str,
    max_length: int,
    label: Callable[[Any], str],
    act: Callable[[Any, str], str | None],
    summary: Callable[[int], str] | None = None,
) -> HttpResponse | None:
    """The one intermediate page of a decision taken row by row with a reason: the first
    POST asks for the reason, the second (`apply`) calls `act(row, reason)` for each row, a
    service; a row the service refuses is reported and the others still go through.

    `permission` names the action's `has_<permission>_permission`, checked again here: the
    admin hides an action from those who lack it, but the apply POST is a request like any
    other and must not be the one place the check is missing."""
    if not getattr(model_admin, f"has_{permission}_permission")(request):
        raise PermissionDenied
    if "apply" in request.POST:
        form = ReasonForm(request.POST, max_length=max_length)
        if form.is_valid():
            done = 0
            for row in rows:
                try:
                    message = act(row, form.cleaned_data["note"])
                except DomainError as exc:
                    model_admin.message_user(
                        request,
                        _("%(row)s: %(message)s") % {"row": label(row), "message": exc.message},
                        messages.WARNING,
                    )
                    continue
                done += 1
                if message:
                    model_admin.message_user(request, message)
            if summary is not None:
                model_admin.message_user(request, summary(done))
            return None
    else:
        form = ReasonForm(max_length=max_length)
    return render(
        request,
        "admin/carbon/decide.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": title,
            "objects": rows,
            "form": form,
            "action": request.POST["action"],
            "checkbox_name": ACTION_CHECKBOX_NAME,
            "opts": model_admin.model._meta,
        },
    )


class ClaimDecisionActions:
    """Mixin for a ModelAdmin whose rows are claims or belong to one (`claim_id_of`).
    Deciding needs `carbon.review_claim`, whatever the rows' own model permissions say."""

    # Translators: what the decided rows are, as in "Approve claim(s)", "3 claim(s) approved."
    decision_noun = gettext_lazy("claim(s)")

    def claim_id_of(self, obj):
        return obj.pk

    def has_review_permission(self, request) -> bool:
        return request.user.has_perm("carbon.review_claim")

    def _decide(self, request, queryset, approve: bool):
        def review(obj, note: str) -> None:
            claim_review(
                claim_id=self.claim_id_of(obj), reviewer=request.user, approve=approve, note=note
            )

        noun = self.decision_noun
        if approve:
            title = _("Approve %(rows)s") % {"rows": noun}
            summary = _("%(count)d %(rows)s approved.")
        else:
            title = _("Reject %(rows)s") % {"rows": noun}
            summary = _("%(count)d %(rows)s rejected.")
        return act_with_reason(
            self,
            request,
            queryset,
            permission="review",
            title=title,
            max_length=Claim._meta.get_field("review_note").max_length,
            label=lambda obj: _("claim %(id)s") % {"id": self.claim_id_of(obj)},
            act=review,
            summary=lambda done: summary % {"count": done, "rows": noun},
        )

    @admin.action(
        description=gettext_lazy("Approve selected (runs the rules and credits)"),
        permissions=["review"],
    )
    def approve(self, request, queryset):
        return self._decide(request, queryset, approve=True)

    @admin.action(
        description=gettext_lazy("Reject selected (a reason is required)"), permissions=["review"]
    )
    def reject(self, request, queryset):
        return self._decide(request, queryset, approve=False)
