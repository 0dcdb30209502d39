"""The behaviour catalogue and its emission factors: factors are published, never edited."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from carbon.models import (
    Behaviour,
    EmissionFactor,
)
from carbon.services.catalogue import emission_factor_publish


class FactorPublishForm(forms.ModelForm):
    class Meta:
        model = EmissionFactor
        fields = [
            "behaviour",
            "district",
            "grams_per_unit",
            "unit",
            "valid_from",
            "methodology",
            "source",
        ]


@admin.register(EmissionFactor)
class EmissionFactorAdmin(admin.ModelAdmin):
    """Factors are published, never edited: adding a row publishes the next version and
    closes the one in force."""

    form = FactorPublishForm
    list_display = [
        "behaviour",
        "version",
        "district",
        "grams_per_unit",
        "unit",
        "valid_from",
        "valid_to",
        "methodology",
    ]
    list_filter = ["behaviour", "district"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        published = emission_factor_publish(
            behaviour=obj.behaviour,
            grams_per_unit=obj.grams_per_unit,
            methodology=obj.methodology,
            source=obj.source,
            valid_from=obj.valid_from,
            district=obj.district,
            unit=obj.unit or None,
        )
        obj.pk, obj.version = published.pk, published.version


class FactorInline(admin.TabularInline):
    model = EmissionFactor
    extra = 0
    can_delete = False
    fields = [
        "version",
        "district",
        "grams_per_unit",
        "unit",
        "valid_from",
        "valid_to",
        "methodology",
        "source",
    ]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Behaviour)
class BehaviourAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "category",
        "unit",
        "daily_cap_g",
        "monthly_cap_g",
        "claim_window_days",
        "is_active",
    ]
    list_filter = ["category", "is_active"]
    search_fields = ["code", "name"]
    inlines = [FactorInline]
