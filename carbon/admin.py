"""The administrators' console: catalogue and factors, the claim review queue, partners and
their keys, residents, and a read-only ledger. Every write goes through a service."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.gis.admin import GISModelAdmin
from django.shortcuts import render

from carbon.admin_review import ClaimDecisionActions, ReadOnlyAdmin, receipt_html
from carbon.errors import DomainError
from carbon.models import (
    Account,
    Appeal,
    Behaviour,
    Claim,
    ClaimStatus,
    Community,
    Consent,
    District,
    EmissionFactor,
    Lot,
    Partner,
    PartnerCredential,
    PartnerEvent,
    PartnerLink,
    PenaltyBox,
    Transfer,
    TransferCode,
    User,
)
from carbon.services.catalogue import emission_factor_publish
from carbon.services.ledger import ledger_reverse
from carbon.services.partners import partner_credential_rotate


@admin.register(District)
class DistrictAdmin(GISModelAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(Community)
class CommunityAdmin(GISModelAdmin):
    list_display = ["code", "name", "district"]
    list_filter = ["district"]
    search_fields = ["code", "name"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "display_name", "role", "community", "is_active", "date_joined"]
    list_filter = ["role", "is_active", "district"]
    search_fields = ["email", "display_name"]
    readonly_fields = ["public_id", "erased_at", "last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["email", "password", "public_id"]}),
        ("Profile", {"fields": ["display_name", "role", "community", "district", "partner"]}),
        (
            "Permissions",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        ("Dates", {"fields": ["last_login", "date_joined", "erased_at"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "display_name", "role", "password1", "password2"],
            },
        )
    ]


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    list_display = ["user", "scope", "granted_at", "revoked_at"]
    list_filter = ["scope"]


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


class NeedsReviewFilter(admin.SimpleListFilter):
    title = "review queue"
    parameter_name = "queue"

    def lookups(self, request, model_admin):
        return [("open", "Needs review")]

    def queryset(self, request, queryset):
        return (
            queryset.filter(status=ClaimStatus.NEEDS_REVIEW) if self.value() == "open" else queryset
        )


@admin.register(Claim)
class ClaimAdmin(ClaimDecisionActions, ReadOnlyAdmin):
    list_display = [
        "submitted_at",
        "user",
        "behaviour",
        "quantity",
        "evidence_type",
        "status",
        "credited_g",
    ]
    list_filter = [NeedsReviewFilter, "status", "behaviour", "evidence_type"]
    search_fields = ["user__email", "idempotency_key"]
    date_hierarchy = "submitted_at"
    readonly_fields = ["receipt_steps"]
    actions = ["approve", "reject"]

    @admin.display(description="receipt")
    def receipt_steps(self, obj):
        return receipt_html(obj.receipt)

    def has_change_permission(self, request, obj=None):
        return (
            request.user.is_staff
        )  # to see the detail page and run actions; fields stay read-only

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Claim._meta.fields] + ["receipt_steps"]


class CredentialInline(admin.TabularInline):
    model = PartnerCredential
    extra = 0
    can_delete = False
    fields = ["key_id", "created_at", "revoked_at", "last_used_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    inlines = [CredentialInline]
    actions = ["rotate_key"]

    def has_add_permission(self, request):
        return False  # `manage.py partner_create` prints the first secret once

    @admin.action(
        description="Rotate key (old keys stop working now; the new secret is shown once)"
    )
    def rotate_key(self, request, queryset):
        for partner in queryset:
            issued = partner_credential_rotate(partner=partner)
            self.message_user(
                request,
                f"{partner.name}: new key id {issued.key_id}, secret {issued.secret} (copy it now, it is not stored readable)",
                messages.WARNING,
            )


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


@admin.register(Appeal)
class AppealAdmin(ReadOnlyAdmin):
    """Appeals are decided by deciding their claim in the review queue."""

    list_display = ["created_at", "user", "kind", "status", "claim", "reason"]
    list_filter = ["status", "kind"]


@admin.register(PenaltyBox)
class PenaltyBoxAdmin(ReadOnlyAdmin):
    list_display = ["user", "level", "until", "last_triggered_at"]


# Admin pages of the adapters live beside their services; importing registers them.
from carbon import admin_photos, admin_transit  # noqa: E402, F401
