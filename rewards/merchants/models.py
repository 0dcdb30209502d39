"""Merchant staff (a profile on a user with the merchant-staff role, tied to one merchant
partner), their one-time invitations, and the redemptions they record at the till: the
merchant's settlement lines, kept whole whatever happens to the resident."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class MerchantStaff(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="merchant_staff",
        verbose_name=_("user"),
    )
    merchant = models.ForeignKey(
        "carbon.Partner", on_delete=models.PROTECT, related_name="+", verbose_name=_("merchant")
    )
    is_manager = models.BooleanField(
        _("manager"), default=False, help_text=_("A manager may invite the merchant's staff.")
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("invited by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["merchant", "user__email"]
        verbose_name = _("merchant staff member")
        verbose_name_plural = _("merchant staff")

    def __str__(self) -> str:
        return _("%(user)s at %(merchant)s") % {"user": self.user, "merchant": self.merchant}


class StaffInvitation(models.Model):
    """A one-time token that lets an invited staff member set a password. Only its hash is
    stored; the token is shown once, to whoever invited."""

    staff = models.ForeignKey(
        MerchantStaff,
        on_delete=models.CASCADE,
        related_name="invitations",
        verbose_name=_("merchant staff member"),
    )
    token_hash = models.CharField(_("token hash"), max_length=64, unique=True)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("staff invitation")
        verbose_name_plural = _("staff invitations")

    def __str__(self) -> str:
        return _("invitation of %(staff)s") % {"staff": self.staff_id}


class MerchantRedemption(models.Model):
    """A voucher redeemed at a merchant: who, when, and what the platform owes for it. A
    settlement line: never deleted, and not tied to the resident (only to the voucher)."""

    voucher = models.OneToOneField(
        "rewards.Voucher",
        on_delete=models.PROTECT,
        related_name="redemption",
        verbose_name=_("voucher"),
    )
    merchant = models.ForeignKey(
        "carbon.Partner",
        on_delete=models.PROTECT,
        related_name="redemptions",
        verbose_name=_("merchant"),
    )
    redeemed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("redeemed by"),
    )
    # Redeemed by an administrator on the merchant's behalf: the reason given.
    on_behalf_reason = models.CharField(
        _("reason (redeemed on the merchant's behalf)"),
        max_length=300,
        blank=True,
        help_text=_("Given by an administrator who redeemed it for the merchant."),
    )
    value_cny = models.DecimalField(_("value (CNY)"), max_digits=10, decimal_places=2)
    created_at = models.DateTimeField(_("redeemed at"), auto_now_add=True, db_index=True)
    settled_at = models.DateTimeField(_("settled at"), null=True, blank=True)

    class Meta:
        verbose_name = _("merchant redemption")
        verbose_name_plural = _("merchant redemptions")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("redeem_for_merchant", "Can redeem a voucher on a merchant's behalf"),
            ("settle_redemptions", "Can mark merchant redemptions as settled"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(value_cny__gte=0), name="redemption_value_not_negative"
            )
        ]
        indexes = [models.Index(fields=["merchant", "created_at"], name="redemption_merchant_idx")]

    def __str__(self) -> str:
        return _("%(voucher)s at %(merchant)s") % {
            "voucher": self.voucher.code,
            "merchant": self.merchant.name,
        }
