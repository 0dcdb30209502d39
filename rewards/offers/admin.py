"""Offers in the admin: written by administrators with the model permissions (the picture
goes through the core's image pipeline); the stock is set once at creation and changed after
only by the "adjust stock" action, which needs `rewards.adjust_stock` and a reason, and is
recorded (shown under the offer)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carbon.errors import DomainError
from rewards.offers.images import offer_image_prepare
from rewards.offers.models import Offer, StockAdjustment
from rewards.offers.stock import offer_stock_adjust


class OfferForm(forms.ModelForm):
    class Meta:
        model = Offer
        fields = [
            "kind",
            "title_zh",
            "title_en",
            "terms_zh",
            "terms_en",
            "price_g",
            "stock_total",
            "limit_per_day",
            "limit_per_month",
            "limit_lifetime",
            "valid_from",
            "valid_until",
            "voucher_lifetime",
            "refund_on_expiry",
            "image",
            "partner",
            "partner_value_cny",
            "donation_project",
            "is_active",
        ]

    def clean_image(self):
        image = self.cleaned_data.get("image")
        if isinstance(image, UploadedFile):
            # Re-encoded without metadata, whatever was uploaded; refused like a claim photo.
            try:
                return offer_image_prepare(data=image.read())
            except DomainError as exc:
                raise ValidationError(str(exc.message)) from None
        return image


class StockAdjustmentForm(forms.Form):
    delta = forms.IntegerField(
        label=gettext_lazy("change (units; negative withdraws unsold units)"),
        min_value=-1_000_000,
        max_value=1_000_000,
    )
    note = forms.CharField(
        label=gettext_lazy("reason"), max_length=300, widget=forms.Textarea(attrs={"rows": 3})
    )

    def clean_delta(self):
        delta = self.cleaned_data["delta"]
        if delta == 0:
            raise ValidationError(_("A change of zero changes nothing."))
        return delta


class StockAdjustmentInline(admin.TabularInline):
    model = StockAdjustment
    extra = 0
    can_delete = False
    fields = ["created_at", "delta", "reason", "actor"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# The offer's page in sections; the stock is shown (read-only) once the offer exists.
_DESCRIPTION = ["kind", "partner", "title_zh", "title_en", "terms_zh", "terms_en", "image"]
_LIMITS = ["limit_per_day", "limit_per_month", "limit_lifetime"]
_VALIDITY = ["valid_from", "valid_until", "voucher_lifetime", "refund_on_expiry", "is_active"]


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    form = OfferForm
    list_display = [
        "id",
        "offer_title",
        "kind",
        "partner",
        "price_g",
        "stock_left",
        "stock_total",
        "is_active",
        "valid_from",
        "valid_until",
    ]
    list_filter = ["kind", "is_active", "partner"]
    search_fields = ["title_zh", "title_en", "=id"]
    inlines = [StockAdjustmentInline]
    actions = ["adjust_stock"]

    @admin.display(description=gettext_lazy("title"), ordering="title_zh")
    def offer_title(self, obj):
        # In the administrator's language, as the resident sees it in theirs.
        return obj.title

    def get_fieldsets(self, request, obj=None):
        stock = ["stock_total", "stock_left"] if obj is not None else ["stock_total"]
        return [
            (None, {"fields": _DESCRIPTION}),
            (
                gettext_lazy("Price and stock"),
                {"fields": ["price_g", "partner_value_cny", *stock]},
            ),
            (
                gettext_lazy("Limits per resident"),
                {
                    "fields": _LIMITS,
                    "description": gettext_lazy(
                        "Empty: no limit. Days and months are counted in the city's time zone."
                    ),
                },
            ),
            (gettext_lazy("Validity"), {"fields": _VALIDITY}),
            (gettext_lazy("Donation"), {"fields": ["donation_project"]}),
            *([(None, {"fields": ["created_at"]})] if obj is not None else []),
        ]

    def get_readonly_fields(self, request, obj=None):
        return ["stock_total", "stock_left", "created_at"] if obj is not None else ["created_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.stock_left = obj.stock_total
        super().save_model(request, obj, form, change)

    def has_adjust_stock_permission(self, request) -> bool:
        return request.user.has_perm("rewards.adjust_stock")

    @admin.action(
        description=gettext_lazy("Adjust stock of selected offers (with a reason)"),
        permissions=["adjust_stock"],
    )
    def adjust_stock(self, request, queryset):
        # Checked here too: the apply POST is a request like any other.
        if not self.has_adjust_stock_permission(request):
            raise PermissionDenied
        if "apply" in request.POST:
            form = StockAdjustmentForm(request.POST)
            if form.is_valid():
                for offer in queryset:
                    try:
                        changed = offer_stock_adjust(
                            offer_id=offer.pk,
                            delta=form.cleaned_data["delta"],
                            reason=form.cleaned_data["note"],
                            actor=request.user,
                        )
                    except DomainError as exc:
                        self.message_user(
                            request,
                            _("%(row)s: %(message)s") % {"row": offer, "message": exc.message},
                            messages.WARNING,
                        )
                        continue
                    self.message_user(
                        request,
                        _("%(offer)s: %(left)d left of %(total)d.")
                        % {
                            "offer": offer,
                            "left": changed.stock_left,
                            "total": changed.stock_total,
                        },
                    )
                return None
        else:
            form = StockAdjustmentForm()
        return render(
            request,
            "admin/carbon/decide.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Adjust stock"),
                "objects": queryset,
                "form": form,
                "action": request.POST["action"],
                "checkbox_name": ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )
