"""Offers: what residents spend their grams on, the partner that honours each, its stock and
per-resident limits, and the record of every stock change an administrator made."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _


class OfferKind(models.TextChoices):
    VOUCHER = "voucher", "Merchant voucher"
    TRANSIT_TOPUP = "transit_topup", "Transit-card top-up"
    TICKET = "ticket", "Scenic-spot ticket"
    DONATION = "donation", "Donation"


#: Which kind of partner honours which kind of offer (a donation's partner is whoever runs the
#: project, so any kind).
PARTNER_KINDS = {
    OfferKind.VOUCHER: ("merchant",),
    OfferKind.TICKET: ("merchant",),
    OfferKind.TRANSIT_TOPUP: ("transit_operator",),
}


class OfferQuerySet(models.QuerySet):
    def available(self, *, at=None) -> OfferQuerySet:
        """Active and inside its validity window (stock aside: a sold-out offer still shows)."""
        at = at or timezone.now()
        return self.filter(is_active=True, valid_from__lte=at).filter(
            Q(valid_until__isnull=True) | Q(valid_until__gt=at)
        )


class Offer(models.Model):
    kind = models.CharField(max_length=16, choices=OfferKind.choices)
    # Entered by an administrator in both languages; served in the request's language.
    title_zh = models.CharField(max_length=120)
    title_en = models.CharField(max_length=120)
    terms_zh = models.TextField(blank=True)
    terms_en = models.TextField(blank=True)
    price_g = models.PositiveIntegerField(help_text="Price in grams of CO2e (points).")
    stock_total = models.PositiveIntegerField(
        help_text="Units ever put on sale; change it with the 'adjust stock' action."
    )
    stock_left = models.PositiveIntegerField(
        help_text="Units left; taken by a conditional UPDATE, so never below zero."
    )
    # Per resident; empty = no limit. Days and months are the city's (settings.TIME_ZONE).
    limit_per_day = models.PositiveIntegerField(null=True, blank=True)
    limit_per_month = models.PositiveIntegerField(null=True, blank=True)
    limit_lifetime = models.PositiveIntegerField(null=True, blank=True)
    valid_from = models.DateTimeField(default=timezone.now)
    valid_until = models.DateTimeField(null=True, blank=True)
    voucher_lifetime = models.DurationField(
        default=timedelta(days=30), help_text="How long an issued voucher may be used."
    )
    refund_on_expiry = models.BooleanField(
        default=True, help_text="Give the grams back when an unused voucher expires."
    )
    image = models.ImageField(upload_to="offers/", blank=True)
    partner = models.ForeignKey("carbon.Partner", on_delete=models.PROTECT, related_name="offers")
    partner_value_cny = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        help_text="What the platform owes the partner for each redemption, in CNY.",
    )
    donation_project = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OfferQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("adjust_stock", "Can add or withdraw an offer's stock")]
        constraints = [
            models.CheckConstraint(condition=Q(price_g__gt=0), name="offer_price_positive"),
            # The database refuses to sell what is not there, whatever the code above it does.
            models.CheckConstraint(
                condition=Q(stock_left__gte=0) & Q(stock_left__lte=F("stock_total")),
                name="offer_stock_in_range",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="offer_window_ordered",
            ),
            models.CheckConstraint(
                condition=Q(voucher_lifetime__gt=timedelta(0)),
                name="offer_voucher_lifetime_positive",
            ),
            models.CheckConstraint(
                condition=Q(partner_value_cny__gte=0), name="offer_partner_value_not_negative"
            ),
            models.CheckConstraint(
                condition=~Q(kind="donation") | ~Q(donation_project=""),
                name="offer_donation_has_project",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title_en} ({self.price_g} g)"

    def clean(self) -> None:
        expected = PARTNER_KINDS.get(self.kind)
        if expected and self.partner_id and self.partner.kind not in expected:
            raise ValidationError(
                {
                    "partner": _("This kind of offer is honoured by a partner of kind %(kind)s.")
                    % {"kind": expected[0]}
                }
            )
        if self.kind == OfferKind.DONATION and not self.donation_project.strip():
            raise ValidationError({"donation_project": _("A donation names its project.")})

    @property
    def title(self) -> str:
        """In the active language (the request's): Chinese unless English is asked for."""
        return self.title_en if _english() else self.title_zh

    @property
    def terms(self) -> str:
        return self.terms_en if _english() else self.terms_zh

    def is_available(self, *, at=None) -> bool:
        at = at or timezone.now()
        return (
            self.is_active
            and self.valid_from <= at
            and (self.valid_until is None or at < self.valid_until)
        )


def _english() -> bool:
    return (translation.get_language() or settings.LANGUAGE_CODE).startswith("en")


class StockAdjustment(models.Model):
    """One administrator's change of an offer's stock, with the reason given."""

    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="stock_adjustments")
    delta = models.IntegerField()
    reason = models.CharField(max_length=300)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(delta=0), name="stock_adjustment_nonzero")
        ]

    def __str__(self) -> str:
        return f"{self.delta:+d} on offer {self.offer_id}"
