"""Offers: what residents spend their grams on, the partner that honours each, its stock and
per-resident limits, and the record of every stock change an administrator made."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _


class OfferKind(models.TextChoices):
    VOUCHER = "voucher", _("Merchant voucher")
    TRANSIT_TOPUP = "transit_topup", _("Transit-card top-up")
    TICKET = "ticket", _("Scenic-spot ticket")
    DONATION = "donation", _("Donation")


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
    kind = models.CharField(_("kind"), max_length=16, choices=OfferKind.choices)
    # Entered by an administrator in both languages; served in the request's language.
    title_zh = models.CharField(_("title (Chinese)"), max_length=120)
    title_en = models.CharField(_("title (English)"), max_length=120)
    terms_zh = models.TextField(_("terms (Chinese)"), blank=True)
    terms_en = models.TextField(_("terms (English)"), blank=True)
    price_g = models.PositiveIntegerField(
        _("price (g)"), help_text=_("Price in grams of CO2e (points).")
    )
    stock_total = models.PositiveIntegerField(
        _("total stock"),
        help_text=_("Units ever put on sale; change it with the 'adjust stock' action."),
    )
    stock_left = models.PositiveIntegerField(
        _("stock left"),
        help_text=_("Units left; taken by a conditional UPDATE, so never below zero."),
    )
    # Per resident; empty = no limit. Days and months are the city's (settings.TIME_ZONE).
    limit_per_day = models.PositiveIntegerField(
        _("limit per day"), null=True, blank=True, help_text=_("Per resident; empty: no limit.")
    )
    limit_per_month = models.PositiveIntegerField(
        _("limit per month"), null=True, blank=True, help_text=_("Per resident; empty: no limit.")
    )
    limit_lifetime = models.PositiveIntegerField(
        _("lifetime limit"), null=True, blank=True, help_text=_("Per resident; empty: no limit.")
    )
    valid_from = models.DateTimeField(_("valid from"), default=timezone.now)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    voucher_lifetime = models.DurationField(
        _("voucher lifetime"),
        default=timedelta(days=30),
        help_text=_("How long an issued voucher may be used."),
    )
    refund_on_expiry = models.BooleanField(
        _("refund on expiry"),
        default=True,
        help_text=_("Give the grams back when an unused voucher expires."),
    )
    image = models.ImageField(_("image"), upload_to="offers/", blank=True)
    partner = models.ForeignKey(
        "carbon.Partner",
        on_delete=models.PROTECT,
        related_name="offers",
        verbose_name=_("partner"),
    )
    partner_value_cny = models.DecimalField(
        _("partner value (CNY)"),
        max_digits=10,
        decimal_places=2,
        help_text=_("What the platform owes the partner for each redemption, in CNY."),
    )
    donation_project = models.CharField(_("donation project"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = OfferQuerySet.as_manager()

    class Meta:
        verbose_name = _("offer")
        verbose_name_plural = _("offers")
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
        # The admin's title and links for an offer: its title in the administrator's language.
        return _("%(title)s (%(price)d g)") % {"title": self.title, "price": self.price_g}

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

    offer = models.ForeignKey(
        Offer,
        on_delete=models.PROTECT,
        related_name="stock_adjustments",
        verbose_name=_("offer"),
    )
    delta = models.IntegerField(_("change (units)"))
    reason = models.CharField(_("reason"), max_length=300)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("administrator"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("stock adjustment")
        verbose_name_plural = _("stock adjustments")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(delta=0), name="stock_adjustment_nonzero")
        ]

    def __str__(self) -> str:
        return _("%(delta)s on offer %(offer)s") % {
            "delta": f"{self.delta:+d}",
            "offer": self.offer_id,
        }
