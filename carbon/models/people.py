"""People: the custom user model, districts and communities, and per-scenario consent."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.contrib.gis.db import models as gis
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class District(models.Model):
    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    boundary = gis.MultiPolygonField(_("boundary"), srid=4326, null=True, blank=True)

    class Meta:
        verbose_name = _("district")
        verbose_name_plural = _("districts")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Community(models.Model):
    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    district = models.ForeignKey(
        District, on_delete=models.PROTECT, related_name="communities", verbose_name=_("district")
    )
    boundary = gis.MultiPolygonField(_("boundary"), srid=4326, null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("community")
        verbose_name_plural = _("communities")

    def __str__(self) -> str:
        return self.name


class UserQuerySet(models.QuerySet):
    def residents(self) -> UserQuerySet:
        return self.filter(role=User.Role.RESIDENT, is_active=True)


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):  # type: ignore[misc]
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True, role=User.Role.ADMINISTRATOR)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """Log in by email. Roles decide which API a person may use."""

    class Role(models.TextChoices):
        RESIDENT = "resident", _("Resident")
        MERCHANT_STAFF = "merchant_staff", _("Merchant staff")
        INSTITUTION_MEMBER = "institution_member", _("Institution member")
        ADMINISTRATOR = "administrator", _("Administrator")

    username = None  # type: ignore[assignment]
    first_name = None  # type: ignore[assignment]
    last_name = None  # type: ignore[assignment]
    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(_("email address"), unique=True)
    display_name = models.CharField(_("display name"), max_length=80, blank=True)
    role = models.CharField(_("role"), max_length=32, choices=Role.choices, default=Role.RESIDENT)
    community = models.ForeignKey(
        Community,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="residents",
        verbose_name=_("community"),
    )
    district = models.ForeignKey(
        District,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="residents",
        verbose_name=_("district"),
    )
    partner = models.ForeignKey(
        "carbon.Partner",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="staff",
        verbose_name=_("partner"),
        help_text=_("The partner a merchant-staff member works for."),
    )
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.CheckConstraint(
                condition=~Q(role="merchant_staff") | Q(partner__isnull=False),
                name="merchant_staff_has_partner",
            )
        ]

    def __str__(self) -> str:
        return self.display_name or self.email

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None

    @property
    def is_resident(self) -> bool:
        """Only residents earn, hold and spend points (carbon.services.residents)."""
        return self.role == self.Role.RESIDENT


class ConsentScope(models.TextChoices):
    """A data source a resident may authorise for crediting."""

    TRANSIT_CARD = "transit_card", _("My transit card (metro and bus taps)")
    BIKE_SHARE = "bike_share", _("My shared-bike account")
    RECYCLING = "recycling", _("Recycling-station weigh records")
    UTILITY = "utility", _("My household electricity meter")
    DELIVERY = "delivery", _("Takeaway orders from delivery platforms")
    SECOND_HAND = "second_hand", _("Second-hand trading platforms")
    RETAIL = "retail", _("Receipts and check-ins at partner shops")
    RIDE_HAILING = "ride_hailing", _("NEV ride and carpool platforms")
    PHONE_STEPS = "phone_steps", _("Step count from my phone")


class ConsentQuerySet(models.QuerySet):
    def current(self) -> ConsentQuerySet:
        return self.filter(revoked_at__isnull=True)

    def in_force(self, *, user, scope: str, at=None) -> bool:
        """Was `scope` consented by `user` at `at` (default: now)?"""
        qs = self.filter(user=user, scope=scope)
        if at is None:
            return qs.current().exists()
        return (
            qs.filter(granted_at__lte=at)
            .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=at))
            .exists()
        )


class Consent(models.Model):
    """One grant of a scenario; revoking closes it, granting again opens a new row."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="consents", verbose_name=_("resident")
    )
    scope = models.CharField(_("data source"), max_length=32, choices=ConsentScope.choices)
    granted_at = models.DateTimeField(_("granted at"), default=timezone.now)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    objects = ConsentQuerySet.as_manager()

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["-granted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "scope"],
                condition=Q(revoked_at__isnull=True),
                name="one_current_consent_per_scope",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.scope}"

    @property
    def is_current(self) -> bool:
        return self.revoked_at is None
