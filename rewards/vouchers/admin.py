"""Vouchers in the admin, read-only (written only by services): searched by code, filtered by
status and kind. Registered by the merchants slice, which adds the action of redeeming one
on its merchant's behalf (the vouchers slice sits below the merchants one)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from carbon.admin.base import ReadOnlyAdmin
from rewards.offers.models import OfferKind
from rewards.vouchers.models import Voucher


class OfferKindFilter(admin.SimpleListFilter):
    """The offer's kind, named as an offer kind (the bare field would be titled "kind")."""

    title = _("offer kind")
    parameter_name = "offer_kind"

    def lookups(self, request, model_admin):
        return OfferKind.choices

    def queryset(self, request, queryset):
        return queryset.filter(offer__kind=self.value()) if self.value() else queryset


class VoucherAdmin(ReadOnlyAdmin):
    list_display = [
        "code",
        "status",
        "offer",
        "partner",
        "price_g",
        "created_at",
        "expires_at",
        "resolved_at",
        "refunded",
    ]
    list_filter = ["status", OfferKindFilter, "partner"]
    search_fields = ["=code", "=id"]
    date_hierarchy = "created_at"
    list_select_related = ["offer", "partner"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Voucher._meta.fields]
