"""A sponsor (a partner that funds rewards) with its budget in fen, and each card payment
that funds it. The budget is credited only when Stripe confirms the payment, and a refund
takes back what it refunds (reserved when asked, so the budget never goes below zero)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Sponsor(models.Model):
    partner = models.OneToOneField(
        "carbon.Partner", on_delete=models.PROTECT, related_name="sponsor"
    )
    budget_fen = models.BigIntegerField(_("budget (fen)"), default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["partner__name"]
        verbose_name = _("sponsor")
        verbose_name_plural = _("sponsors")
        constraints = [
            models.CheckConstraint(
                condition=Q(budget_fen__gte=0), name="sponsor_budget_not_negative"
            )
        ]

    def __str__(self) -> str:
        return str(self.partner)


class SponsorshipStatus(models.TextChoices):
    PENDING = "pending", _("awaiting payment")
    CREDITED = "credited", _("credited")
    FAILED = "failed", _("failed")


class Sponsorship(models.Model):
    sponsor = models.ForeignKey(Sponsor, on_delete=models.PROTECT, related_name="sponsorships")
    amount_fen = models.BigIntegerField()
    payment = models.OneToOneField(
        "rewards.Payment", null=True, on_delete=models.PROTECT, related_name="sponsorship"
    )
    status = models.CharField(
        max_length=10, choices=SponsorshipStatus.choices, default=SponsorshipStatus.PENDING
    )
    refunded_fen = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    credited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("sponsorship")
        verbose_name_plural = _("sponsorships")
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="sponsorship_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.sponsor}: {self.amount_fen} fen ({self.status})"
