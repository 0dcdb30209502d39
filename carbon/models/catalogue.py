"""The behaviour catalogue and its versioned emission factors."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from .people import ConsentScope, District


class Category(models.TextChoices):
    GREEN_TRAVEL = "green_travel", "Green travel"
    WASTE = "waste", "Waste"
    CONSUMPTION = "consumption", "Consumption"
    ENERGY = "energy", "Energy"


class EvidenceTier(models.TextChoices):
    """How strong the evidence behind a claim is, strongest first."""

    PARTNER = "partner", "Partner data"
    TRANSIT = "transit", "Transit records"
    PHOTO = "photo", "Photo"
    SELF = "self", "Self declaration"


class Behaviour(models.Model):
    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=32, choices=Category.choices)
    unit = models.CharField(max_length=32, help_text="km, trip, kg, kWh, item, order, use, ...")
    # Evidence types (verification adapters) this behaviour accepts, e.g. ["transit", "self"].
    evidence_types = models.JSONField(default=list)
    consent_scope = models.CharField(
        max_length=32,
        choices=ConsentScope.choices,
        blank=True,
        help_text="Data source whose consent partner- and feed-based credits require.",
    )
    max_quantity = models.DecimalField(
        max_digits=12, decimal_places=3, help_text="Larger quantities in one claim are refused."
    )
    per_action_cap_g = models.PositiveIntegerField(null=True, blank=True)
    daily_cap_g = models.PositiveIntegerField(null=True, blank=True)
    monthly_cap_g = models.PositiveIntegerField(null=True, blank=True)
    claim_window_days = models.PositiveSmallIntegerField(default=7)
    credit_lifetime_days = models.PositiveSmallIntegerField(
        default=365, help_text="Credits from this behaviour expire after this many days."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
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
            raise ValidationError({"evidence_types": "List at least one evidence type."})
        unknown = [t for t in self.evidence_types if t not in valid]
        if unknown:
            raise ValidationError({"evidence_types": f"Unknown evidence types: {unknown}"})


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

    behaviour = models.ForeignKey(Behaviour, on_delete=models.PROTECT, related_name="factors")
    district = models.ForeignKey(
        District, null=True, blank=True, on_delete=models.PROTECT, help_text="Empty: city-wide."
    )
    version = models.PositiveIntegerField()
    grams_per_unit = models.DecimalField(max_digits=12, decimal_places=4)
    unit = models.CharField(max_length=32)
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)
    methodology = models.CharField(max_length=300)
    source = models.CharField(max_length=500)
    published_at = models.DateTimeField(auto_now_add=True)

    objects = EmissionFactorQuerySet.as_manager()

    class Meta:
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
