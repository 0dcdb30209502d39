"""Admin for top-ups, read-only: status, attempts, the last error and the operator's
reference. The card number never appears (only its last digits). Giving the points back for
a top-up the operator has not answered is a decision of its own: `rewards.refund_topup`."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carbon.admin.base import ReadOnlyAdmin, act_with_reason
from rewards.topups.models import TopUp, TopUpStatus
from rewards.topups.services import topup_refund


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "user",
        "operator",
        "card_last_digits",
        "amount_cny",
        "reference",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "operator_ref",
    ]
    list_filter = ["status", "operator"]
    search_fields = ["reference", "=request_id", "operator_ref", "user__email"]
    list_select_related = ["user", "operator"]
    actions = ["refund"]
    exclude = ["card_number_encrypted"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in TopUp._meta.fields if f.name != "card_number_encrypted"]

    def has_refund_permission(self, request) -> bool:
        return request.user.has_perm("rewards.refund_topup")

    @admin.action(
        description=gettext_lazy(
            "Refund selected top-ups the operator has not answered (a reason is required)"
        ),
        permissions=["refund"],
    )
    def refund(self, request, queryset):
        def refund_one(topup: TopUp, note: str) -> str:
            topup_refund(topup_id=topup.pk, actor=request.user, reason=note)
            return _("Top-up %(id)s refunded: its points are available again.") % {"id": topup.pk}

        return act_with_reason(
            self,
            request,
            queryset.exclude(
                status__in=[TopUpStatus.CONFIRMED, TopUpStatus.REFUSED, TopUpStatus.FAILED]
            ),
            permission="refund",
            title=_("Refund top-ups"),
            # "refunded by staff #<id>: <reason>" within last_error's 500.
            max_length=400,
            label=lambda topup: _("top-up %(id)s") % {"id": topup.pk},
            act=refund_one,
        )
