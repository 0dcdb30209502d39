"""A pool of donated reductions (the grams sit in the carbon account of the partner that runs
the pool), the enterprises allowed to buy from it, and each sale: whole tonnes at the pool's
published price, paid by card; on success the grams move to the buyer's carbon account and a
retirement certificate is issued; a refund moves them back."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

GRAMS_PER_TONNE = 1_000_000


class Pool(models.Model):
    name = models.CharField(max_length=200, unique=True)
    # The partner whose enterprise account holds the pooled grams (the programme).
    keeper = models.ForeignKey("carbon.Partner", on_delete=models.PROTECT, related_name="+")
    price_fen_per_tonne = models.BigIntegerField()
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("reduction pool")
        verbose_name_plural = _("reduction pools")
        constraints = [
            models.CheckConstraint(
                condition=Q(price_fen_per_tonne__gt=0), name="pool_price_positive"
            )
        ]

    def __str__(self) -> str:
        return self.name


class EnterpriseBuyer(models.Model):
    partner = models.OneToOneField(
        "carbon.Partner", on_delete=models.PROTECT, related_name="pool_buyer"
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("enterprise buyer")
        verbose_name_plural = _("enterprise buyers")

    def __str__(self) -> str:
        return str(self.partner)


class SaleStatus(models.TextChoices):
    PENDING = "pending", _("awaiting payment")
    COMPLETED = "completed", _("completed")  # paid, grams moved, certificate issued
    UNFULFILLED = "unfulfilled", _("unfulfilled")  # paid, but the pool was short: refunded
    FAILED = "failed", _("failed")
    REFUNDED = "refunded", pgettext_lazy("payment", "refunded")


class PoolSale(models.Model):
    pool = models.ForeignKey(Pool, on_delete=models.PROTECT, related_name="sales")
    buyer = models.ForeignKey(EnterpriseBuyer, on_delete=models.PROTECT, related_name="sales")
    tonnes = models.PositiveIntegerField()
    price_fen_per_tonne = models.BigIntegerField()
    amount_fen = models.BigIntegerField()
    payment = models.OneToOneField(
        "rewards.Payment", null=True, on_delete=models.PROTECT, related_name="pool_sale"
    )
    status = models.CharField(max_length=12, choices=SaleStatus.choices, default=SaleStatus.PENDING)
    transfer = models.OneToOneField(
        "carbon.Transfer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    return_transfer = models.OneToOneField(
        "carbon.Transfer", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    certificate_number = models.CharField(max_length=40, blank=True)
    certificate_png = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("pool sale")
        verbose_name_plural = _("pool sales")
        constraints = [
            models.CheckConstraint(condition=Q(tonnes__gt=0), name="poolsale_tonnes_positive"),
            models.CheckConstraint(
                condition=Q(amount_fen=models.F("tonnes") * models.F("price_fen_per_tonne")),
                name="poolsale_amount_is_price_times_tonnes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tonnes} t to {self.buyer} ({self.status})"

    @property
    def grams(self) -> int:
        return self.tonnes * GRAMS_PER_TONNE
