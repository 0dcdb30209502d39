"""Partners and their keys (rotated here; the first secret comes from `manage.py partner_create`).
Rotating a key needs the change permission on Partner: it cuts the partner's old keys off."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carbon.models import (
    Partner,
    PartnerCredential,
)
from carbon.services.partners import partner_credential_rotate


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
    # An endpoint typed without a scheme is taken as https (Django 6's default already).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["rotate_key"]

    def has_add_permission(self, request):
        return False  # `manage.py partner_create` prints the first secret once

    @admin.action(
        description=gettext_lazy(
            "Rotate key (old keys stop working now; the new secret is shown once)"
        ),
        permissions=["change"],
    )
    def rotate_key(self, request, queryset):
        # Checked again here: the admin only hides the action from those who lack it.
        if not self.has_change_permission(request):
            raise PermissionDenied
        for partner in queryset:
            issued = partner_credential_rotate(partner=partner)
            self.message_user(
                request,
                _(
                    "%(partner)s: new key id %(key_id)s, secret %(secret)s (copy it now, it is "
                    "not stored readable)"
                )
                % {"partner": partner.name, "key_id": issued.key_id, "secret": issued.secret},
                messages.WARNING,
            )
