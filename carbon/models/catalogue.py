"""The behaviour catalogue and its versioned emission factors."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from .people import ConsentScope, District


class Category(models.TextChoices):
    GREEN_TRAVEL = "green_travel", _("Green travel")
    WASTE = "waste", _("Waste")
    CONSUMPTION = "consumption", _("Consumption")
    ENERGY = "energy", _("Energy")


class EvidenceTier(models.TextChoices):
    """How strong the evidence behind a claim is, strongest first."""

    PARTNER = "partner", _("Partner data")
    TRANSIT = "transit", _("Transit records")
    PHOTO = "photo", _("Photo")
    SELF = "self", _("Self declaration")


class Behaviour(models.Model):
    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    category = models.CharField(_("category"), max_length=32, choices=Category.choices)
    unit = models.CharField(
        _("unit"), max_length=32, help_text=_("km, trip, kg, kWh, item, order, use, ...")
    )
    # Evidence types (verification adapters) this behaviour accepts, e.g. ["transit", "self"].
    evidence_types = models.JSONField(_("evidence types"), default=list)
    consent_scope = models.CharField(
        _("consent scope"),
        max_length=32,
        choices=ConsentScope.choices,
        blank=True,
        help_text=_("Data source whose consent partner- and feed-based credits require."),
    )
    max_quantity = models.DecimalField(
        _("max quantity"),
        max_digits=12,
        decimal_places=3,
        help_text=_("Larger quantities in one claim are refused."),
    )
    per_action_cap_g = models.PositiveIntegerField(_("per-action cap (g)"), null=True, blank=True)
    daily_cap_g = models.PositiveIntegerField(_("daily cap (g)"), null=True, blank=True)
    monthly_cap_g = models.PositiveIntegerField(_("monthly cap (g)"), null=True, blank=True)
    claim_window_days = models.PositiveSmallIntegerField(_("claim window (days)"), default=7)
    credit_lifetime_days = models.PositiveSmallIntegerField(
        _("credit lifetime (days)"),
        default=365,
        help_text=_("Credits from this behaviour expire after this many days."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("behaviour")
        verbose_name_plural = _("behaviours")
        ordering = ["category", "code"]
        constraints = [
            models.CheckConstraint(condition=Q(max_quantity__gt=0), name="behaviour_max_qty_pos"),
            models.CheckConstraint(
                condition=Q(claim_window_days__gte=1), name="behaviour_window_pos"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        valid = set(EvidenceTier.values)
        if not isinstance(self.evidence_types, list) or not self.evidence_types:
            raise ValidationError({"evidence_types": _("List at least one evidence type.")})
        unknown = [t for t in self.evidence_types if t not in valid]
        if unknown:
            raise ValidationError(
                {
                    "evidence_types": _("Unknown evidence types: %(types)s")
                    % {"types": ", ".join(map(str, unknown))}
                }
            )


class EmissionFactorQuerySet(models.QuerySet):
    def in_force_at(self, when: datetime) -> EmissionFactorQuerySet:
        return self.filter(valid_from__lte=when).filter(
            Q(valid_to__isnull=True) | Q(valid_to__gt=when)
        )

    def for_claim(
        self, *, behaviour: Behaviour, when: datetime, district: District | None
    ) -> EmissionFactor | None:
        """The district's own factor when it has one, else the city-wide one."""
        qs = self.in_force_at(when).filter(behaviour=behaviour)
        if district is not None:
            local = qs.filter(district=district).order_by("-version").first()
            if local is not None:
                return local
        return qs.filter(district__isnull=True).order_by("-version").first()


class EmissionFactor(models.Model):
    """Grams of CO2e avoided per unit of a behaviour, for a period. Rows are never edited
    once used: publishing a new version closes the previous one (see services)."""

    behaviour = models.ForeignKey(
        Behaviour,
        on_delete=models.PROTECT,
        related_name="factors",
        verbose_name=_("behaviour"),
    )
    district = models.ForeignKey(
        District,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        verbose_name=_("district"),
        help_text=_("Empty: city-wide."),
    )
    version = models.PositiveIntegerField(_("version"))
    grams_per_unit = models.DecimalField(_("grams per unit"), max_digits=12, decimal_places=4)
    unit = models.CharField(_("unit"), max_length=32)
    valid_from = models.DateTimeField(_("valid from"))
    valid_to = models.DateTimeField(_("valid to"), null=True, blank=True)
    methodology = models.CharField(_("methodology"), max_length=300)
    source = models.CharField(_("source"), max_length=500)
    published_at = models.DateTimeField(_("published at"), auto_now_add=True)

    objects = EmissionFactorQuerySet.as_manager()

    class Meta:
        verbose_name = _("emission factor")
        verbose_name_plural = _("emission factors")
        ordering = ["behaviour", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["behaviour", "district", "version"], name="unique_factor_version"
            ),
            models.UniqueConstraint(
                fields=["behaviour", "version"],
                condition=Q(district__isnull=True),
                name="unique_citywide_factor_version",
            ),
            models.CheckConstraint(condition=Q(grams_per_unit__gte=0), name="factor_non_negative"),
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=F("valid_from")),
                name="factor_period_ordered",
            ),
        ]

    def __str__(self) -> str:
        where = self.district.code if self.district_id else "city"
        return (
            f"{self.behaviour.code} v{self.version} ({where}): {self.grams_per_unit} g/{self.unit}"
        )

    def grams_for(self, quantity: Decimal) -> int:
        """Whole grams, rounded down: a credit never exceeds the methodology."""
        return int((quantity * self.grams_per_unit).to_integral_value(rounding="ROUND_FLOOR"))
