"""Vouchers: what a redemption issues. Each holds the resident's grams by one ledger hold
until a merchant redeems it (the hold is posted), it is cancelled or expires (voided, or
posted when the offer keeps the grams), or a top-up succeeds or fails."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class VoucherStatus(models.TextChoices):
    ISSUED = "issued", _("Issued (usable)")
    PROCESSING = "processing", _("Being fulfilled (top-up)")
    REDEEMED = "redeemed", _("Redeemed")
    CANCELLED = "cancelled", _("Cancelled")
    EXPIRED = "expired", _("Expired")
    FAILED = "failed", _("Fulfilment failed")


#: Vouchers that gave their grams and stock back count towards no limit.
NOT_COUNTED = (VoucherStatus.CANCELLED, VoucherStatus.FAILED)


class VoucherQuerySet(models.QuerySet):
    def owned_by(self, user) -> VoucherQuerySet:
        return self.filter(user=user)

    def counted_for_limits(self) -> VoucherQuerySet:
        return self.exclude(status__in=NOT_COUNTED)


class Voucher(models.Model):
    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    # Null once the resident's data is erased: the voucher, its hold and the merchant's
    # settlement line stay, tied to nobody.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="vouchers",
        verbose_name=_("resident"),
    )
    offer = models.ForeignKey(
        "rewards.Offer",
        on_delete=models.PROTECT,
        related_name="vouchers",
        verbose_name=_("offer"),
    )
    status = models.CharField(_("status"), max_length=16, choices=VoucherStatus.choices)
    #: Shown to the till; from an alphabet without look-alikes (no 0/O, 1/I/L).
    code = models.CharField(_("voucher code"), max_length=16, unique=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=100)
    hold = models.OneToOneField(
        "carbon.Transfer",
        on_delete=models.PROTECT,
        related_name="voucher",
        verbose_name=_("ledger hold"),
    )
    # Snapshots at issue: the offer may be edited later, the voucher keeps what was bought.
    price_g = models.PositiveIntegerField(_("price (g)"))
    partner = models.ForeignKey(
        "carbon.Partner", on_delete=models.PROTECT, related_name="+", verbose_name=_("partner")
    )
    partner_value_cny = models.DecimalField(
        _("partner value (CNY)"), max_digits=10, decimal_places=2
    )
    expires_at = models.DateTimeField(_("expires at"), db_index=True)
    created_at = models.DateTimeField(_("issued at"), auto_now_add=True, db_index=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    # Why it ended as it did (a cancellation, a failed top-up, an expiry with or without refund).
    outcome_note = models.CharField(_("outcome note"), max_length=300, blank=True)
    refunded = models.BooleanField(_("refunded"), default=False)
    certificate = models.ImageField(_("certificate"), upload_to="certificates/", blank=True)

    objects = VoucherQuerySet.as_manager()

    class Meta:
        verbose_name = _("voucher")
        verbose_name_plural = _("vouchers")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"], name="unique_voucher_idempotency_key"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["issued", "processing"], resolved_at__isnull=True)
                | (~Q(status__in=["issued", "processing"]) & Q(resolved_at__isnull=False)),
                name="voucher_resolved_iff_final",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "offer", "created_at"], name="voucher_limit_idx"),
            models.Index(fields=["status", "expires_at"], name="voucher_expiry_idx"),
        ]

    def __str__(self) -> str:
        # The admin's title and links for a voucher: its code and status label.
        return f"{self.code} ({self.get_status_display()})"

    @property
    def is_usable(self) -> bool:
        """Issued and not past its date (the expiry job may not have run yet)."""
        return self.status == VoucherStatus.ISSUED and self.expires_at > timezone.now()
