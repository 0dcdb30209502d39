"""Sightings: the private true point and the public one, photos (re-encoded, EXIF kept
privately), identifications, institution verdicts, moderation flags, and the log of who saw
a true point."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.gis.db import models as gis
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from biodiversity.institutions.models import Institution, SurveyProject
from biodiversity.taxa.models import Taxon


class QualityGrade(models.TextChoices):
    CASUAL = "casual", _("casual")
    NEEDS_ID = "needs_id", _("needs ID")
    RESEARCH = "research", _("research grade")


class SightingQuerySet(models.QuerySet):
    def public(self) -> SightingQuerySet:
        """What anyone may see: not hidden by moderation."""
        return self.filter(hidden=False)

    def on_map(self) -> SightingQuerySet:
        return self.public().filter(public_location__isnull=False)

    def research_grade(self) -> SightingQuerySet:
        return self.filter(quality_grade=QualityGrade.RESEARCH)

    def counted_for(self, project: SurveyProject) -> SightingQuerySet:
        """The sightings a survey project counts: inside its area (by the true point: the
        survey's own rule, never shown), inside its window, and, for a closed survey, by
        its members and volunteers."""
        qs = self.public().filter(
            location__within=project.area,
            observed_at__gte=project.starts_at,
            observed_at__lt=project.ends_at,
        )
        if project.members_only:
            qs = qs.filter(observer__survey_memberships__project=project)
        return qs


class Sighting(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # NULL once the observer erased their account: the record stays, anonymous.
    observer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sightings",
    )
    client_uuid = models.UUIDField(null=True, blank=True)
    # What the observer's request was, hashed: the same client_uuid with another request is
    # a conflict, not a replay.
    request_hash = models.CharField(max_length=64, blank=True)
    taxon_guess = models.ForeignKey(
        Taxon, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    community_taxon = models.ForeignKey(
        Taxon, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Private: the true point and what the observer wrote of the place.
    location = gis.PointField(srid=4326, null=True, blank=True, spatial_index=True)
    accuracy_m = models.PositiveIntegerField(null=True, blank=True)
    place_name = models.CharField(max_length=200, blank=True)
    # Public: the true point, or a random point in its 0.2-degree cell when obscured.
    public_location = gis.PointField(srid=4326, null=True, blank=True, spatial_index=True)
    public_accuracy_m = models.PositiveIntegerField(null=True, blank=True)
    obscured = models.BooleanField(default=False)
    observer_obscured = models.BooleanField(default=False)
    # The district of the true point (for "new record for this district"); not public when
    # obscured.
    district = models.ForeignKey(
        "carbon.District", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    observed_at = models.DateTimeField(null=True, blank=True)
    count = models.PositiveIntegerField(default=1)
    notes = models.TextField(blank=True)
    quality_grade = models.CharField(
        max_length=16, choices=QualityGrade.choices, default=QualityGrade.NEEDS_ID, db_index=True
    )
    # Set by an upheld flag (spam, inappropriate, copyright): then only the observer sees it.
    hidden = models.BooleanField(default=False)
    new_district_record = models.BooleanField(default=False)
    candidate_new_species = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SightingQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("sighting")
        verbose_name_plural = _("sightings")
        permissions = [
            ("record_verdict", _("Can record an institution verdict on a sighting")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["observer", "client_uuid"],
                condition=Q(client_uuid__isnull=False),
                name="sighting_client_uuid_once",
            ),
            models.CheckConstraint(condition=Q(count__gte=1), name="sighting_count_positive"),
            # Never a true point without a public one, nor an obscured one without a point.
            models.CheckConstraint(
                condition=Q(location__isnull=True, public_location__isnull=True)
                | Q(location__isnull=False, public_location__isnull=False),
                name="sighting_public_point_with_true_point",
            ),
        ]
        indexes = [models.Index(fields=["quality_grade", "observed_at"], name="sighting_grade_idx")]

    def __str__(self) -> str:
        return f"sighting {self.pk}"


def _photo_path(instance, filename: str) -> str:
    return f"sightings/{instance.sighting_id}/{instance.position}-{filename}"


class SightingPhoto(models.Model):
    sighting = models.ForeignKey(Sighting, on_delete=models.CASCADE, related_name="photos")
    position = models.PositiveSmallIntegerField()
    image = models.ImageField(upload_to=_photo_path, width_field="width", height_field="height")
    thumbnail = models.ImageField(upload_to=_photo_path)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    original_format = models.CharField(max_length=16)
    sha256 = models.CharField(max_length=64, db_index=True)
    phash = models.CharField(max_length=16)
    # Private: for the observer and reviewers only.
    taken_at = models.DateTimeField(null=True, blank=True)
    gps = gis.PointField(srid=4326, null=True, blank=True)
    exif = models.JSONField(default=dict, blank=True)
    # An earlier photo of another sighting this one matched (perceptual hash).
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sighting", "position"]
        verbose_name = _("sighting photo")
        verbose_name_plural = _("sighting photos")
        constraints = [
            models.UniqueConstraint(fields=["sighting", "position"], name="sighting_photo_position")
        ]

    def __str__(self) -> str:
        return f"photo {self.position} of {self.sighting_id}"


class SightingPhotoBand(models.Model):
    """One band of a photo's perceptual hash (the core's layout, carbon.adapters.photo
    .duplicates.hash_bands): near-duplicates share a band, found by an index lookup."""

    photo = models.ForeignKey(SightingPhoto, on_delete=models.CASCADE, related_name="bands")
    band = models.PositiveSmallIntegerField()
    value = models.PositiveIntegerField()

    class Meta:
        indexes = [models.Index(fields=["band", "value"], name="sighting_photo_band_idx")]

    def __str__(self) -> str:
        return f"band {self.band}={self.value}"


class Identification(models.Model):
    sighting = models.ForeignKey(Sighting, on_delete=models.CASCADE, related_name="identifications")
    # NULL once the identifier erased their account: the identification still counts.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="identifications",
    )
    taxon = models.ForeignKey(Taxon, on_delete=models.PROTECT, related_name="+")
    # A person's newer identification of the same sighting replaces theirs.
    current = models.BooleanField(default=True)
    comment = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("identification")
        verbose_name_plural = _("identifications")
        constraints = [
            models.UniqueConstraint(
                fields=["sighting", "user"],
                condition=Q(current=True, user__isnull=False),
                name="identification_current_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.taxon} for {self.sighting_id}"


class Verdict(models.Model):
    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", _("accepted")
        PLAUSIBLE = "plausible", _("plausible")
        NOT_ACCEPTED = "not_accepted", _("not accepted")

    sighting = models.ForeignKey(Sighting, on_delete=models.CASCADE, related_name="verdicts")
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="verdicts",
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    new_district_record = models.BooleanField(default=False)
    candidate_new_species = models.BooleanField(default=False)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("verdict")
        verbose_name_plural = _("verdicts")

    def __str__(self) -> str:
        return f"{self.outcome} by {self.institution}"


class Flag(models.Model):
    class Reason(models.TextChoices):
        SPAM = "spam", _("spam")
        INAPPROPRIATE = "inappropriate", _("inappropriate")
        COPYRIGHT = "copyright", _("copyright infringement")
        DUPLICATE_PHOTO = "duplicate_photo", _("photo used in another sighting")

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        UPHELD = "upheld", _("upheld")
        DISMISSED = "dismissed", _("dismissed")

    sighting = models.ForeignKey(Sighting, on_delete=models.CASCADE, related_name="flags")
    # NULL for flags the system raises (a duplicate photo) or after the flagger's erasure.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sighting_flags",
    )
    reason = models.CharField(max_length=32, choices=Reason.choices)
    note = models.CharField(max_length=500, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name = _("flag")
        verbose_name_plural = _("flags")
        permissions = [("moderate_flag", _("Can uphold or dismiss a sighting flag"))]
        constraints = [
            models.UniqueConstraint(
                fields=["sighting", "user", "reason"],
                condition=Q(status="open", user__isnull=False),
                name="flag_open_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.reason} on {self.sighting_id}"


class TrueLocationAccess(models.Model):
    """Someone other than the observer saw a sighting's true point."""

    sighting = models.ForeignKey(Sighting, on_delete=models.CASCADE, related_name="accesses")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="true_location_accesses",
    )
    project = models.ForeignKey(
        SurveyProject, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accessed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-accessed_at"]
        verbose_name = _("true location access")
        verbose_name_plural = _("true location accesses")

    def __str__(self) -> str:
        return f"{self.user_id} saw {self.sighting_id}"
