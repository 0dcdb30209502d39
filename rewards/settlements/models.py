"""A merchant's Stripe connected account, and its settlements: one per merchant per period,
paid by one Transfer, listing the redemption lines it pays (each line in at most one
settlement: the line's redemption is unique)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class PayoutAccount(models.Model):
    merchant = models.OneToOneField(
        "carbon.Partner", on_delete=models.PROTECT, related_name="payout_account"
    )
    stripe_account_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("merchant payout account")
        verbose_name_plural = _("merchant payout accounts")

    def __str__(self) -> str:
        return f"{self.merchant}: {self.stripe_account_id or 'not connected'}"


class SettlementStatus(models.TextChoices):
    SENDING = "sending", _("transfer being sent")
    PAID = "paid", _("paid")
    FAILED = "failed", _("failed")


class Settlement(models.Model):
    merchant = models.ForeignKey(
        "carbon.Partner", on_delete=models.PROTECT, related_name="settlements"
    )
    period_start = models.DateField()
    period_end = models.DateField()  # exclusive
    amount_fen = models.BigIntegerField()
    status = models.CharField(
        max_length=10, choices=SettlementStatus.choices, default=SettlementStatus.SENDING
    )
    transfer_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "merchant_id"]
        verbose_name = _("merchant settlement")
        verbose_name_plural = _("merchant settlements")
        permissions = [("run_settlement", "Can settle merchants now (a manual settlement)")]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "period_start"], name="one_settlement_per_merchant_period"
            ),
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="settlement_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.merchant} {self.period_start}..{self.period_end} ({self.status})"


class SettlementLine(models.Model):
    settlement = models.ForeignKey(Settlement, on_delete=models.PROTECT, related_name="lines")
    redemption = models.OneToOneField(
        "rewards.MerchantRedemption", on_delete=models.PROTECT, related_name="settlement_line"
    )
    value_fen = models.BigIntegerField()

    class Meta:
        verbose_name = _("settlement line")
        verbose_name_plural = _("settlement lines")

    def __str__(self) -> str:
        return f"redemption {self.redemption_id} in settlement {self.settlement_id}"
