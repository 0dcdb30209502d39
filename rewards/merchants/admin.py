"""Merchants in the admin: staff (invited from here: the one-time token is shown once),
redemptions by merchant and day (marking them settled needs `rewards.settle_redemptions`),
and vouchers with the action of redeeming one on its merchant's behalf, which needs
`rewards.redeem_for_merchant` and a reason and records the same settlement line as a till."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carbon.admin.base import ReadOnlyAdmin, act_with_reason
from carbon.models import Partner, User
from rewards.merchants.models import MerchantRedemption, MerchantStaff
from rewards.merchants.redemptions import merchant_redeem_on_behalf, merchant_redemptions_settle
from rewards.merchants.staff import staff_invite
from rewards.vouchers.admin import VoucherAdmin
from rewards.vouchers.models import Voucher


@admin.register(Voucher)
class VoucherRedeemableAdmin(VoucherAdmin):
    actions = ["redeem_for_merchant"]

    def has_redeem_for_merchant_permission(self, request) -> bool:
        return request.user.has_perm("rewards.redeem_for_merchant")

    @admin.action(
        description=gettext_lazy("Redeem selected for their merchant (with a reason)"),
        permissions=["redeem_for_merchant"],
    )
    def redeem_for_merchant(self, request, queryset):
        def redeem(voucher: Voucher, note: str) -> str:
            redemption = merchant_redeem_on_behalf(
                voucher_id=voucher.pk, actor=request.user, reason=note
            )
            return _("%(code)s redeemed for %(merchant)s.") % {
                "code": voucher.code,
                "merchant": redemption.merchant.name,
            }

        return act_with_reason(
            self,
            request,
            queryset,
            permission="redeem_for_merchant",
            title=_("Redeem for the merchant"),
            max_length=300,
            label=lambda voucher: voucher.code,
            act=redeem,
        )


class SettledFilter(admin.SimpleListFilter):
    title = gettext_lazy("settlement")
    parameter_name = "settled"

    def lookups(self, request, model_admin):
        return [("no", gettext_lazy("Not yet settled")), ("yes", gettext_lazy("Settled"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(settled_at__isnull=self.value() == "no")
        return queryset


@admin.register(MerchantRedemption)
class MerchantRedemptionAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "merchant",
        "voucher",
        "value_cny",
        "redeemed_by",
        "on_behalf_reason",
        "settled_at",
    ]
    list_filter = ["merchant", SettledFilter]
    date_hierarchy = "created_at"
    search_fields = ["voucher__code"]
    list_select_related = ["merchant", "voucher", "redeemed_by"]
    actions = ["settle"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in MerchantRedemption._meta.fields]

    def has_settle_permission(self, request) -> bool:
        return request.user.has_perm("rewards.settle_redemptions")

    @admin.action(
        description=gettext_lazy("Mark selected as settled (paid to the merchant)"),
        permissions=["settle"],
    )
    def settle(self, request, queryset):
        if not self.has_settle_permission(request):
            raise PermissionDenied
        count = merchant_redemptions_settle(
            redemption_ids=list(queryset.values_list("pk", flat=True))
        )
        self.message_user(request, _("%(count)d redemption(s) marked settled.") % {"count": count})


class StaffInviteForm(forms.ModelForm):
    email = forms.EmailField(label=gettext_lazy("email"))

    class Meta:
        model = MerchantStaff
        fields = ["merchant", "is_manager"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["merchant"].queryset = Partner.objects.filter(
            kind=Partner.Kind.MERCHANT, is_active=True
        )

    def clean_email(self):
        # What staff_invite refuses, said on the form (it would refuse it the same way).
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        user = User.objects.filter(email__iexact=email).first()
        if user is not None and (
            user.is_active or not MerchantStaff.objects.filter(user=user).exists()
        ):
            raise ValidationError(_("An account with this email already exists."))
        return email


@admin.register(MerchantStaff)
class MerchantStaffAdmin(admin.ModelAdmin):
    list_display = ["user", "merchant", "is_manager", "created_at"]
    list_filter = ["merchant", "is_manager"]
    search_fields = ["user__email"]
    list_select_related = ["user", "merchant"]
    actions = ["reinvite"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = StaffInviteForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return ["user", "merchant", "invited_by", "created_at"] if obj is not None else []

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["email", "merchant", "is_manager"]
        return ["user", "merchant", "is_manager", "invited_by", "created_at"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        issued = staff_invite(
            merchant=obj.merchant,
            email=form.cleaned_data["email"],
            manager=obj.is_manager,
            invited_by=request.user,
        )
        obj.pk, obj.user, obj.created_at = (
            issued.staff.pk,
            issued.staff.user,
            issued.staff.created_at,
        )
        self._announce(request, issued)

    def _announce(self, request, issued) -> None:
        self.message_user(
            request,
            _(
                "Invitation for %(email)s: one-time token %(token)s (until %(until)s). Give it "
                "to them to set a password at /api/v1/merchant/invitations/accept; it is not "
                "shown again."
            )
            % {
                "email": issued.staff.user.email,
                "token": issued.token,
                "until": issued.expires_at.isoformat(timespec="minutes"),
            },
            messages.WARNING,
        )

    @admin.action(
        description=gettext_lazy("Issue a new invitation token (members who have not joined)"),
        permissions=["add"],
    )
    def reinvite(self, request, queryset):
        if not self.has_add_permission(request):
            raise PermissionDenied
        for profile in queryset.select_related("user", "merchant"):
            if profile.user.is_active:
                continue
            self._announce(
                request,
                staff_invite(
                    merchant=profile.merchant,
                    email=profile.user.email,
                    manager=profile.is_manager,
                    invited_by=request.user,
                ),
            )
