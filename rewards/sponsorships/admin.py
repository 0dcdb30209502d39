"""Sponsors and their budgets (a sponsor is added here), and each funding."""

from django.contrib import admin

from carbon.admin.base import ReadOnlyAdmin
from rewards.sponsorships.models import Sponsor, Sponsorship


@admin.register(Sponsor)
class SponsorAdmin(admin.ModelAdmin):
    list_display = ["partner", "budget_fen", "is_active", "created_at"]
    readonly_fields = ["budget_fen"]


@admin.register(Sponsorship)
class SponsorshipAdmin(ReadOnlyAdmin):
    list_display = ["sponsor", "amount_fen", "status", "refunded_fen", "payment", "created_at"]
    list_filter = ["status"]
