"""The offsets slice in the admin: bank programmes (edited with the model permissions), and,
read-only, loan links, offsets and the batches sent to banks with their status. Voiding an
offset the bank has not answered (points back, with a reason) needs `rewards.void_offset`."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carbon.admin.base import ReadOnlyAdmin, act_with_reason
from rewards.offsets.models import BankProgramme, LoanLink, Offset, OffsetBatch, OffsetStatus
from rewards.offsets.services.batches import offset_void


@admin.register(BankProgramme)
class BankProgrammeAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "bank",
        "cny_per_kg",
        "monthly_cap_g",
        "monthly_cap_fen",
        "budget_fen",
        "is_active",
        "starts_at",
        "ends_at",
    ]
    list_filter = ["is_active", "bank"]


@admin.register(LoanLink)
class LoanLinkAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "programme", "loan_number", "status", "created_at"]
    list_filter = ["status", "programme"]
    # The hash of the loan number and the resident's token stay out of sight.
    exclude = ["loan_ref_hash", "link_token"]

    @admin.display(description=gettext_lazy("loan number"), ordering="loan_ref_last4")
    def loan_number(self, obj):
        return obj.masked_reference


@admin.register(OffsetBatch)
class OffsetBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "business_date",
        "programme",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "reply_status",
        "request_id",
    ]
    list_filter = ["status", "programme"]
    search_fields = ["request_id"]


@admin.register(Offset)
class OffsetAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "requested_at",
        "user",
        "programme",
        "grams",
        "value_fen",
        "status",
        "interest_credited_fen",
        "batch",
    ]
    list_filter = ["status", "programme"]
    search_fields = ["=id"]
    actions = ["void"]

    def has_void_offset_permission(self, request) -> bool:
        return request.user.has_perm("rewards.void_offset")

    @admin.action(
        description=gettext_lazy("Void selected unanswered offsets (points back, with a reason)"),
        permissions=["void_offset"],
    )
    def void(self, request, queryset):
        def void_one(offset: Offset, note: str) -> str:
            offset_void(offset_id=offset.pk, reason=note, actor=request.user)
            return _("Offset %(id)s voided; %(grams)d g went back.") % {
                "id": offset.pk,
                "grams": offset.grams,
            }

        return act_with_reason(
            self,
            request,
            queryset.filter(status__in=[OffsetStatus.REQUESTED, OffsetStatus.SENT]),
            permission="void_offset",
            title=_("Void offsets"),
            max_length=200,
            label=lambda offset: f"#{offset.pk}",
            act=void_one,
        )
