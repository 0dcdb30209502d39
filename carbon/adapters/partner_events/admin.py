"""Partner events and residents' links to partner accounts: read-only records of the feed."""

from __future__ import annotations

from django.contrib import admin

from carbon.adapters.partner_events.models import PartnerEvent, PartnerLink
from carbon.admin.base import ReadOnlyAdmin


@admin.register(PartnerEvent)
class PartnerEventAdmin(ReadOnlyAdmin):
    list_display = [
        "received_at",
        "partner",
        "event_id",
        "behaviour",
        "quantity",
        "status",
        "claim",
    ]
    list_filter = ["status", "partner", "behaviour"]
    search_fields = ["event_id"]


@admin.register(PartnerLink)
class PartnerLinkAdmin(ReadOnlyAdmin):
    list_display = ["user", "partner", "linked_at", "unlinked_at"]
    list_filter = ["partner"]
