"""Admin for transit: the network is edited here or loaded
with `manage.py load_transit`; cards, taps and trips are read-only. Card numbers are never
stored, so they appear nowhere: a card is its last four digits and a keyed hash."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.gis.admin import GISModelAdmin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from carbon.adapters.transit.models import LineStop, Station, Tap, TransitCard, TransitLine, Trip
from carbon.adapters.transit.network import network_changed
from carbon.admin.base import ReadOnlyAdmin


class _NetworkEdit:
    """Any change to stations or lines tells every process to rebuild its network graph."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        network_changed()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        network_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        network_changed()


@admin.register(Station)
class StationAdmin(_NetworkEdit, GISModelAdmin):
    list_display = ["code", "name", "mode"]
    list_filter = ["mode"]
    search_fields = ["code", "name"]


class LineStopInline(admin.TabularInline):
    model = LineStop
    extra = 0
    fields = ["sequence", "station", "metres_from_previous"]
    autocomplete_fields = ["station"]
    ordering = ["sequence"]


@admin.register(TransitLine)
class TransitLineAdmin(_NetworkEdit, admin.ModelAdmin):
    list_display = ["code", "name", "mode", "operator", "stop_count"]
    list_filter = ["mode", "operator"]
    search_fields = ["code", "name"]
    inlines = [LineStopInline]

    @admin.display(description=_("stops"))
    def stop_count(self, obj):
        return obj.stops.count()


def _short_hash(value: str) -> str:
    return f"{value[:12]}…" if value else ""


@admin.register(TransitCard)
class TransitCardAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "user", "label", "linked_at", "unlinked_at", "hash_prefix"]
    list_filter = [("unlinked_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__email", "last_digits", "=card_hash"]
    list_select_related = ["user"]

    @admin.display(description=_("card hash"))
    def hash_prefix(self, obj):
        return _short_hash(obj.card_hash)


@admin.register(Tap)
class TapAdmin(ReadOnlyAdmin):
    list_display = [
        "tapped_at",
        "record_id",
        "partner",
        "mode",
        "direction",
        "station",
        "line",
        "hash_prefix",
        "trip",
    ]
    list_filter = ["mode", "direction", "partner", ("trip", admin.EmptyFieldListFilter)]
    search_fields = ["=record_id", "=card_hash"]
    date_hierarchy = "tapped_at"
    list_select_related = ["partner", "station", "line"]

    @admin.display(description=_("card hash"))
    def hash_prefix(self, obj):
        return _short_hash(obj.card_hash)


@admin.register(Trip)
class TripAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "started_at",
        "mode",
        "entry_station",
        "exit_station",
        "km",
        "status",
        "anomaly",
        "claim_link",
    ]
    list_filter = ["status", "anomaly", "mode"]
    search_fields = ["=card_hash", "=id"]
    date_hierarchy = "started_at"
    list_select_related = ["entry_station", "exit_station"]

    @admin.display(description=_("km"), ordering="distance_m")
    def km(self, obj):
        return "" if obj.distance_m is None else f"{obj.distance_m / 1000:.3f}"

    @admin.display(description=_("claim"))
    def claim_link(self, obj):
        if not obj.claim_id:
            return ""
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:carbon_claim_change", args=[obj.claim_id]),
            _("claim"),
        )
