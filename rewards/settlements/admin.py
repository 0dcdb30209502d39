"""Merchant payout accounts (connect one from here), settlements with their transfer and
status, and a manual settlement of last month, which needs `rewards.run_settlement` and goes
through the same service as the periodic job."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carbon.admin.base import ReadOnlyAdmin
from rewards.settlements.models import PayoutAccount, Settlement, SettlementLine
from rewards.settlements.services import settlements_last_month


@admin.register(PayoutAccount)
class PayoutAccountAdmin(ReadOnlyAdmin):
    list_display = ["merchant", "stripe_account_id", "last_error", "created_at"]


class LineInline(admin.TabularInline):
    model = SettlementLine
    extra = 0
    can_delete = False
    readonly_fields = ["redemption", "value_fen"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Settlement)
class SettlementAdmin(ReadOnlyAdmin):
    list_display = [
        "merchant",
        "period_start",
        "period_end",
        "amount_fen",
        "status",
        "transfer_id",
        "paid_at",
    ]
    list_filter = ["status", "merchant"]
    inlines = [LineInline]
    actions = ["settle_last_month"]

    def has_run_settlement_permission(self, request) -> bool:
        return request.user.has_perm("rewards.run_settlement")

    @admin.action(
        description=gettext_lazy("Settle every merchant for last month now"),
        permissions=["run_settlement"],
    )
    def settle_last_month(self, request, queryset):
        if not self.has_run_settlement_permission(request):
            raise PermissionDenied
        run = settlements_last_month()
        self.message_user(
            request,
            _("%(n)d settlement(s) made; %(s)d merchant(s) without a connected account.")
            % {"n": len(run.created), "s": len(run.skipped)},
            messages.SUCCESS,
        )
