"""Transit network (stations, lines), linked cards, and the operator's taps paired into trips."""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models as gis
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from carbon.models.claims import Claim
from carbon.models.linking import LinkStatus, ProvenLink
from carbon.models.partners import Partner


class TransitMode(models.TextChoices):
    METRO = "metro", _("Metro")
    BUS = "bus", _("Bus")


class Station(models.Model):
    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    mode = models.CharField(_("mode"), max_length=8, choices=TransitMode.choices)
    location = gis.PointField(_("location"), srid=4326)

    class Meta:
        verbose_name = _("station")
        verbose_name_plural = _("stations")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class TransitLine(models.Model):
    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    mode = models.CharField(_("mode"), max_length=8, choices=TransitMode.choices)
    operator = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="lines",
        verbose_name=_("operator"),
    )

    class Meta:
        verbose_name = _("transit line")
        verbose_name_plural = _("transit lines")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class LineStop(models.Model):
    """A line's stations in order; the distance to the previous stop is along the track."""

    line = models.ForeignKey(
        TransitLine, on_delete=models.CASCADE, related_name="stops", verbose_name=_("line")
    )
    station = models.ForeignKey(
        Station, on_delete=models.PROTECT, related_name="stops", verbose_name=_("station")
    )
    sequence = models.PositiveIntegerField(_("sequence"))
    # Metres along the line from the previous stop; null means "use the straight line".
    metres_from_previous = models.PositiveIntegerField(
        _("metres from previous stop"),
        null=True,
        blank=True,
        help_text=_("Along the track; empty: the straight line between the stations."),
    )

    class Meta:
        verbose_name = _("line stop")
        verbose_name_plural = _("line stops")
        ordering = ["line", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["line", "sequence"], name="unique_line_sequence"),
            models.UniqueConstraint(fields=["line", "station"], name="unique_line_station"),
        ]

    def __str__(self) -> str:
        return f"{self.line_id}#{self.sequence}: {self.station_id}"


class TransitCard(ProvenLink):
    """A resident's card, known only by a keyed hash of its number. It earns only once
    confirmed (the operator confirmed it, or the resident entered the operator's code)."""

    account_fields = ("card_hash",)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="transit_cards",
        verbose_name=_("resident"),
    )
    card_hash = models.CharField(_("card hash"), max_length=64, db_index=True)
    label = models.CharField(_("label"), max_length=80, blank=True)
    last_digits = models.CharField(_("last digits"), max_length=4, blank=True)
    linked_at = models.DateTimeField(_("linked at"), auto_now_add=True)
    unlinked_at = models.DateTimeField(_("unlinked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("transit card")
        verbose_name_plural = _("transit cards")
        ordering = ["-linked_at"]
        constraints = [
            # Pending links of other residents never block the holder: only confirmed ones
            # are unique, and confirming one supersedes the rest.
            models.UniqueConstraint(
                fields=["card_hash"],
                condition=Q(unlinked_at__isnull=True, status=LinkStatus.CONFIRMED),
                name="one_active_link_per_card",
            ),
            models.UniqueConstraint(
                fields=["user", "card_hash"],
                condition=Q(unlinked_at__isnull=True, status=LinkStatus.PENDING),
                name="one_pending_link_per_resident_card",
            ),
        ]

    def __str__(self) -> str:
        return f"card …{self.last_digits}" if self.last_digits else "card"


class TapDirection(models.TextChoices):
    IN = "in", _("Tap in")
    OUT = "out", _("Tap out")


class Tap(models.Model):
    partner = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="taps", verbose_name=_("operator")
    )
    record_id = models.CharField(_("record id"), max_length=100)
    payload_hash = models.CharField(_("payload hash"), max_length=64)
    card_hash = models.CharField(_("card hash"), max_length=64)
    station = models.ForeignKey(
        Station, on_delete=models.PROTECT, related_name="taps", verbose_name=_("station")
    )
    line = models.ForeignKey(
        TransitLine,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="taps",
        verbose_name=_("line"),
    )
    mode = models.CharField(_("mode"), max_length=8, choices=TransitMode.choices)
    direction = models.CharField(_("direction"), max_length=4, choices=TapDirection.choices)
    tapped_at = models.DateTimeField(_("tapped at"))
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    trip = models.ForeignKey(
        "Trip",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="taps",
        verbose_name=_("trip"),
    )

    class Meta:
        verbose_name = _("tap")
        verbose_name_plural = _("taps")
        constraints = [
            models.UniqueConstraint(fields=["partner", "record_id"], name="unique_tap_record"),
        ]
        indexes = [models.Index(fields=["card_hash", "tapped_at"], name="tap_card_time_idx")]

    def __str__(self) -> str:
        return f"tap {self.record_id} {self.direction} at {self.station_id}"


class TripStatus(models.TextChoices):
    AWAITING_LINK = "awaiting_link", _("Card not linked yet")
    CLAIMED = "claimed", _("Turned into a claim")
    REVIEW = "review", _("Impossible or inconsistent: needs review")
    EXPIRED = "expired", _("Card not linked within the claim window")


class Trip(models.Model):
    card_hash = models.CharField(_("card hash"), max_length=64, db_index=True)
    partner = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="trips", verbose_name=_("operator")
    )
    mode = models.CharField(_("mode"), max_length=8, choices=TransitMode.choices)
    entry_station = models.ForeignKey(
        Station,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("entry station"),
    )
    exit_station = models.ForeignKey(
        Station,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("exit station"),
    )
    started_at = models.DateTimeField(_("started at"), db_index=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    distance_m = models.PositiveIntegerField(_("distance (m)"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=TripStatus.choices)
    # Why a trip went to review: impossible_speed, overlapping_trip, exit_without_entry, ...
    anomaly = models.CharField(_("anomaly"), max_length=64, blank=True)
    anomaly_detail = models.CharField(_("anomaly detail"), max_length=300, blank=True)
    claim = models.OneToOneField(
        Claim,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="trip",
        verbose_name=_("claim"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("trip")
        verbose_name_plural = _("trips")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["card_hash", "started_at"], name="trip_card_time_idx")]

    def __str__(self) -> str:
        return f"{self.mode} trip {self.pk} ({self.status})"
