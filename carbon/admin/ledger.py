"""The ledger, read-only: transfers, accounts and lots. Viewing needs the view permission;
reversing an award (a new transfer, with a reason) needs `carbon.reverse_transfer`."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carbon.admin.base import ReadOnlyAdmin, act_with_reason
from carbon.models import (
    Account,
    Lot,
    Transfer,
    TransferCode,
)
from carbon.services.ledger import ledger_reverse


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "code",
        "flag",
        "amount_g",
        "debit_account",
        "credit_account",
        "description",
    ]
    list_filter = ["code", "flag"]
    search_fields = ["reference", "idempotency_key", "=id"]
    actions = ["reverse"]

    def get_readonly_fields(self, request, obj=None):
        # Every column, including those only services set (the form would leave them out).
        return [f.name for f in Transfer._meta.fields]

    def has_reverse_permission(self, request) -> bool:
        return request.user.has_perm("carbon.reverse_transfer")

    @admin.action(
        description=gettext_lazy("Reverse selected awards (a reversing transfer, with a reason)"),
        permissions=["reverse"],
    )
    def reverse(self, request, queryset):
        def reverse_one(transfer: Transfer, note: str) -> str:
            r = ledger_reverse(transfer_id=transfer.pk, reason=note, actor=request.user)
            return _("#%(id)s: reversed %(grams)d g (%(description)s).") % {
                "id": transfer.pk,
                "grams": r.amount_g,
                "description": r.description,
            }

        return act_with_reason(
            self,
            request,
            queryset.filter(code=TransferCode.AWARD),
            permission="reverse",
            title=_("Reverse awards"),
            # ledger_reverse keeps "Reversal: <reason> (<n> g already spent)" within 300.
            max_length=250,
            label=lambda transfer: f"#{transfer.pk}",
            act=reverse_one,
        )


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "kind",
        "shard",
        "credits_posted",
        "debits_posted",
        "debits_pending",
        "credits_pending",
    ]
    list_filter = ["kind"]
    search_fields = ["user__email"]


@admin.register(Lot)
class LotAdmin(ReadOnlyAdmin):
    list_display = ["id", "account", "category", "amount_g", "remaining_g", "expires_at"]
    list_filter = ["category"]
