"""The ledger, read-only: transfers (awards can be reversed, with a reason), accounts and lots."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.shortcuts import render

from carbon.admin.base import ReadOnlyAdmin
from carbon.errors import DomainError
from carbon.models import (
    Account,
    Lot,
    Transfer,
    TransferCode,
)
from carbon.services.ledger import ledger_reverse


class ReverseForm(forms.Form):
    note = forms.CharField(label="reason", max_length=250, required=True)


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

    def has_change_permission(self, request, obj=None):
        return request.user.is_staff

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Transfer._meta.fields]

    @admin.action(description="Reverse selected awards (a reversing transfer, with a reason)")
    def reverse(self, request, queryset):
        awards = queryset.filter(code=TransferCode.AWARD)
        if "apply" in request.POST:
            form = ReverseForm(request.POST)
            if form.is_valid():
                for transfer in awards:
                    try:
                        r = ledger_reverse(
                            transfer_id=transfer.pk,
                            reason=form.cleaned_data["note"],
                            actor=request.user,
                        )
                        self.message_user(
                            request, f"#{transfer.pk}: reversed {r.amount_g} g ({r.description})."
                        )
                    except DomainError as exc:
                        self.message_user(
                            request, f"#{transfer.pk}: {exc.message}", messages.WARNING
                        )
                return None
        else:
            form = ReverseForm()
        return render(
            request,
            "admin/carbon/decide.html",
            {
                **self.admin_site.each_context(request),
                "title": "Reverse awards",
                "objects": awards,
                "form": form,
                "action": "reverse",
                "checkbox_name": ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
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
