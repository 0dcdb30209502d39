"""Zero-waste cells (无废细胞) and what is known about each: who operates it, its place in the
certification lifecycle (every move recorded with who and why), the indicator set of its
kind, an assessor's scores, monthly achievements, evidence photos, and the public's
objections during its notice period (公示)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.gis.db import models as gis
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class CellKind(models.TextChoices):
    SCHOOL = "school", _("School")
    COMMUNITY = "community", _("Residential community")
    SHOP = "shop", _("Shop or market")
    OFFICE = "office", _("Office")
    HOTEL = "hotel", _("Hotel")
    SCENIC_AREA = "scenic_area", _("Scenic area")
    FAMILY = "family", _("Family")


class CellStatus(models.TextChoices):
    APPLIED = "applied", _("Applied")
    UNDER_REVIEW = "under_review", _("Under review")
    IN_NOTICE = "in_notice", _("In public notice")
    CERTIFIED = "certified", _("Certified")
    SUSPENDED = "suspended", _("Suspended")
    REVOKED = "revoked", _("Revoked")
    EXPIRED = "expired", _("Expired")
    REJECTED = "rejected", _("Rejected")


#: What the public sees: certified cells, and cells in their notice period (marked as such).
PUBLIC_STATUSES = (CellStatus.CERTIFIED, CellStatus.IN_NOTICE)

#: How long a certificate lasts, by kind (years). Households and shops change faster than
#: schools and scenic areas, so they are looked at again sooner (Wuhan's 无废细胞 rules use 2
#: and 3 years).
VALIDITY_YEARS = {
    CellKind.SCHOOL: 3,
    CellKind.COMMUNITY: 3,
    CellKind.SHOP: 2,
    CellKind.OFFICE: 3,
    CellKind.HOTEL: 2,
    CellKind.SCENIC_AREA: 3,
    CellKind.FAMILY: 2,
}


def validity_for(kind: str) -> timedelta:
    return timedelta(days=365 * VALIDITY_YEARS[CellKind(kind)])


class CellQuerySet(models.QuerySet):
    def public(self) -> CellQuerySet:
        return self.filter(status__in=PUBLIC_STATUSES)

    def operated_by(self, user) -> CellQuerySet:
        return self.filter(operators__user=user)


class Cell(models.Model):
    kind = models.CharField(_("kind"), max_length=16, choices=CellKind.choices, db_index=True)
    name = models.CharField(_("name"), max_length=120)
    name_en = models.CharField(_("English name"), max_length=120, blank=True)
    description = models.TextField(_("description"), max_length=2000, blank=True)
    district = models.ForeignKey(
        "carbon.District", on_delete=models.PROTECT, related_name="+", verbose_name=_("district")
    )
    community = models.ForeignKey(
        "carbon.Community",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("community"),
    )
    location = gis.PointField(_("location"), srid=4326)
    outline = gis.PolygonField(_("outline"), srid=4326, null=True, blank=True)
    # The organisation's contact (a school office, a shop's front desk): public on the notice
    # board, so it names a role rather than a person; a family cell shows none.
    contact_name = models.CharField(_("contact"), max_length=80, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=32, blank=True)
    # People (pupils and staff, households, employees): per-capita indicators divide by it.
    population = models.PositiveIntegerField(_("population"), default=1)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=CellStatus.choices,
        default=CellStatus.APPLIED,
        db_index=True,
    )
    status_changed_at = models.DateTimeField(_("status changed at"), auto_now_add=True)
    notice_ends_at = models.DateTimeField(_("notice ends at"), null=True, blank=True)
    certified_at = models.DateTimeField(_("certified at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True, db_index=True)
    renewal_requested_at = models.DateTimeField(_("renewal requested at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = CellQuerySet.as_manager()

    class Meta:
        verbose_name = _("zero-waste cell")
        verbose_name_plural = _("zero-waste cells")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("review_cell", _("Can review cell applications (review, notice, reject)")),
            ("certify_cell", _("Can certify and renew cells")),
            ("sanction_cell", _("Can suspend, reinstate and revoke cells")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="in_notice") | Q(notice_ends_at__isnull=False),
                name="zerowaste_notice_has_end",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["certified", "suspended"])
                | Q(certified_at__isnull=False, expires_at__isnull=False),
                name="zerowaste_certified_has_validity",
            ),
            models.CheckConstraint(
                condition=Q(population__gte=1), name="zerowaste_population_positive"
            ),
        ]
        indexes = [models.Index(fields=["status", "kind", "district"], name="zw_cell_public_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_public(self) -> bool:
        return self.status in PUBLIC_STATUSES


class CellOperator(models.Model):
    """A person who may update a cell through the API. The applicant becomes one; an
    administrator adds or removes others (a school's new office manager) in the admin. A
    link table rather than a field: a cell outlives the people who run it, and erasing a
    person removes the link, never the cell."""

    cell = models.ForeignKey(Cell, on_delete=models.CASCADE, related_name="operators")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="zerowaste_cells",
        verbose_name=_("operator"),
    )
    added_at = models.DateTimeField(_("added at"), auto_now_add=True)
    # The applicant's link keeps the key their app sent: a retried application makes one cell.
    # (Kept here, not on the cell: the cell refers to no person, so erasing the applicant
    # removes this link and nothing else.)
    application_key = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name = _("cell operator")
        verbose_name_plural = _("cell operators")
        constraints = [
            models.UniqueConstraint(fields=["cell", "user"], name="zerowaste_one_operator_link"),
            models.UniqueConstraint(
                fields=["user", "application_key"],
                condition=~Q(application_key=""),
                name="zerowaste_unique_application_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.cell}"


class CellTransition(models.Model):
    """One move of a cell in its lifecycle: never edited, never deleted."""

    cell = models.ForeignKey(Cell, on_delete=models.CASCADE, related_name="transitions")
    action = models.CharField(_("action"), max_length=16)
    from_status = models.CharField(_("from"), max_length=16, choices=CellStatus.choices)
    to_status = models.CharField(_("to"), max_length=16, choices=CellStatus.choices)
    # Null for the periodic job (expiry), or once the person's data was erased.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("by"),
    )
    reason = models.CharField(_("reason"), max_length=500)
    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("cell transition")
        verbose_name_plural = _("cell transitions")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.cell_id}: {self.from_status} -> {self.to_status}"


class Indicator(models.Model):
    """One measure of a kind's indicator set, defined by administrators."""

    kind = models.CharField(_("kind"), max_length=16, choices=CellKind.choices)
    code = models.SlugField(_("code"), max_length=40)
    name_zh = models.CharField(_("Chinese name"), max_length=80)
    name_en = models.CharField(_("English name"), max_length=80)
    unit = models.CharField(_("unit"), max_length=24)
    higher_is_better = models.BooleanField(_("higher is better"), default=True)
    # Monthly values of this indicator are kilograms of waste kept out of landfill and
    # incineration: the stats add them up as "kg avoided".
    counts_as_kg_avoided = models.BooleanField(_("counts as kg avoided"), default=False)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("indicator")
        verbose_name_plural = _("indicators")
        ordering = ["kind", "position", "code"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "code"], name="zerowaste_indicator_code")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.code}"


class IndicatorScore(models.Model):
    """An assessor's score (0 to 100) of a cell on one indicator; the latest one counts."""

    cell = models.ForeignKey(Cell, on_delete=models.CASCADE, related_name="scores")
    indicator = models.ForeignKey(Indicator, on_delete=models.PROTECT, related_name="scores")
    score = models.PositiveSmallIntegerField(_("score"))
    note = models.CharField(_("note"), max_length=300, blank=True)
    assessor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("assessor"),
    )
    assessed_at = models.DateTimeField(_("assessed at"), auto_now_add=True)

    class Meta:
        verbose_name = _("indicator score")
        verbose_name_plural = _("indicator scores")
        ordering = ["-assessed_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(score__lte=100), name="zerowaste_score_at_most_100")
        ]

    def __str__(self) -> str:
        return f"{self.cell_id}:{self.indicator_id}={self.score}"


class Achievement(models.Model):
    """A cell's value of one indicator for one month (the month's first day)."""

    cell = models.ForeignKey(Cell, on_delete=models.CASCADE, related_name="achievements")
    indicator = models.ForeignKey(Indicator, on_delete=models.PROTECT, related_name="achievements")
    month = models.DateField(_("month"))
    value = models.DecimalField(_("value"), max_digits=12, decimal_places=2)
    recorded_at = models.DateTimeField(_("recorded at"), auto_now=True)

    class Meta:
        verbose_name = _("achievement")
        verbose_name_plural = _("achievements")
        ordering = ["cell", "indicator", "month"]
        constraints = [
            models.UniqueConstraint(
                fields=["cell", "indicator", "month"], name="zerowaste_one_value_a_month"
            ),
            models.CheckConstraint(condition=Q(month__day=1), name="zerowaste_month_first_day"),
            models.CheckConstraint(condition=Q(value__gte=0), name="zerowaste_value_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.cell_id}:{self.indicator_id}:{self.month:%Y-%m}"


class Evidence(models.Model):
    """A photo an operator sent for a cell, through the core's image pipeline: re-encoded
    without metadata (the EXIF is not kept: nothing here needs the capture place)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    cell = models.ForeignKey(Cell, on_delete=models.CASCADE, related_name="evidence")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    idempotency_key = models.CharField(max_length=100)
    caption = models.CharField(_("caption"), max_length=200, blank=True)
    image = models.ImageField(_("image"), upload_to="zerowaste/evidence/")
    thumbnail = models.ImageField(_("thumbnail"), upload_to="zerowaste/evidence/")
    sha256 = models.CharField(max_length=64)
    phash = models.CharField(max_length=16)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("evidence photo")
        verbose_name_plural = _("evidence photos")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["cell", "idempotency_key"], name="zerowaste_unique_evidence_key"
            )
        ]

    def __str__(self) -> str:
        return self.caption or str(self.pk)


class Objection(models.Model):
    """A logged-in resident's objection to a cell during its notice period: one per resident
    per cell; the public sees how many, an assessor reads them before certifying."""

    cell = models.ForeignKey(Cell, on_delete=models.CASCADE, related_name="objections")
    # Null once the resident's data was erased: the objection still counts.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="zerowaste_objections",
        verbose_name=_("resident"),
    )
    idempotency_key = models.CharField(max_length=100, blank=True)
    reason = models.TextField(_("reason"), max_length=1000)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("objection")
        verbose_name_plural = _("objections")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["cell", "user"], name="zerowaste_one_objection_each")
        ]

    def __str__(self) -> str:
        return f"objection {self.pk} to {self.cell_id}"


class CellReminder(models.Model):
    """A renewal reminder sent for a certificate (one per certificate per threshold)."""

    cell = models.ForeignKey(Cell, on_delete=models.CASCADE, related_name="reminders")
    expires_at = models.DateTimeField(_("expires at"))
    days_before = models.PositiveSmallIntegerField(_("days before"))
    sent_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        verbose_name = _("renewal reminder")
        verbose_name_plural = _("renewal reminders")
        constraints = [
            models.UniqueConstraint(
                fields=["cell", "expires_at", "days_before"], name="zerowaste_remind_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.cell_id}: {self.days_before} days"
