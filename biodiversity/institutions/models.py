"""Research institutions, their members, and the survey projects they run (a bioblitz: an
area, a time window, members and volunteers, and whether members see true coordinates)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models as gis
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class Institution(models.Model):
    """A research institution (a university lab, a museum, a nature reserve's office).

    Our own model rather than a carbon.Partner: a partner is a system that signs requests
    to the API (credentials, behaviours it reports); an institution is a group of people who
    verify sightings and run surveys, and signs nothing."""

    name = models.CharField(max_length=200, unique=True)
    chinese_name = models.CharField(max_length=200, blank=True)
    website = models.URLField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("institution")
        verbose_name_plural = _("institutions")

    def __str__(self) -> str:
        return self.chinese_name or self.name


class InstitutionMember(models.Model):
    institution = models.ForeignKey(Institution, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="institution_memberships"
    )
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("institution member")
        verbose_name_plural = _("institution members")
        constraints = [
            models.UniqueConstraint(fields=["institution", "user"], name="institution_member_once")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.institution}"


class SurveyProject(models.Model):
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="projects")
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    area = gis.MultiPolygonField(srid=4326, spatial_index=True)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    #: Only sightings by the project's members and volunteers count (a closed survey); else
    #: anyone's sightings in the area and window count (an open bioblitz).
    members_only = models.BooleanField(default=True)
    #: The institution's members in this project see the true point of obscured sightings
    #: that count for it (each such access is logged).
    grants_true_coordinates = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "slug"]
        verbose_name = _("survey project")
        verbose_name_plural = _("survey projects")
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="project_window")
        ]

    def __str__(self) -> str:
        return self.name


class ProjectMember(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", _("institution member")
        VOLUNTEER = "volunteer", _("volunteer")

    project = models.ForeignKey(SurveyProject, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="survey_memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VOLUNTEER)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("project member")
        verbose_name_plural = _("project members")
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="project_member_once")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"
