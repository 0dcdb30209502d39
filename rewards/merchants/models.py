"""Merchant staff (a profile on a user with the merchant-staff role, tied to one merchant
partner), their one-time invitations, and the redemptions they record at the till: the
merchant's settlement lines, kept whole whatever happens to the resident."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class MerchantStaff(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="merchant_staff"
    )
    merchant = models.ForeignKey("carbon.Partner", on_delete=models.PROTECT, related_name="+")
    is_manager = models.BooleanField(default=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["merchant", "user__email"]
        verbose_name_plural = "merchant staff"

    def __str__(self) -> str:
        return f"{self.user} at {self.merchant}"


class StaffInvitation(models.Model):
    """A one-time token that lets an invited staff member set a password. Only its hash is
    stored; the token is shown once, to whoever invited."""

    staff = models.ForeignKey(MerchantStaff, on_delete=models.CASCADE, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"invitation of {self.staff_id}"


class MerchantRedemption(models.Model):
    """A voucher redeemed at a merchant: who, when, and what the platform owes for it. A
    settlement line: never deleted, and not tied to the resident (only to the voucher)."""

    voucher = models.OneToOneField(
        "rewards.Voucher", on_delete=models.PROTECT, related_name="redemption"
    )
    merchant = models.ForeignKey(
        "carbon.Partner", on_delete=models.PROTECT, related_name="redemptions"
    )
    redeemed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # Redeemed by an administrator on the merchant's behalf: the reason given.
    on_behalf_reason = models.CharField(max_length=300, blank=True)
    value_cny = models.DecimalField(max_digits=10, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
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
        return f"{self.voucher_id} at {self.merchant_id}"
