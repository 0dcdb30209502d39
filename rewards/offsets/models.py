"""The offsets slice's rows: a bank's programme, a resident's link to a mortgage at that bank,
each offset (a ledger hold and what the bank made of it) and the daily batches sent to the
bank (the outbox). Money is integer fen; carbon is integer grams."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from carbon.models import Category, Partner, Transfer


def value_fen(*, grams: int, cny_per_kg: Decimal) -> int:
    """What `grams` are worth at the programme's rate, in fen: grams x CNY/kg / 1000, exact
    in Decimal, rounded down to the fen (a resident is never promised a fraction of a fen the
    bank cannot credit; the bank is never asked for more than its rate)."""
    fen = Decimal(grams) * cny_per_kg * 100 / 1000
    return int(fen.to_integral_value(rounding=ROUND_DOWN))


def fen_as_cny(fen: int | None) -> str | None:
    """12345 -> "123.45": how the API shows an amount of money."""
    if fen is None:
        return None
    return str((Decimal(fen) / 100).quantize(Decimal("0.01")))


def _default_categories() -> list[str]:
    # As in Wuhan: only green-travel reductions offset mortgage interest.
    return [Category.GREEN_TRAVEL]


class BankProgrammeQuerySet(models.QuerySet):
    def open_at(self, when) -> BankProgrammeQuerySet:
        return self.filter(
            Q(ends_at__isnull=True) | Q(ends_at__gt=when),
            is_active=True,
            bank__is_active=True,
            starts_at__lte=when,
        )


class BankProgramme(models.Model):
    """A partner bank's offer: its rate, the caps per resident, its budget, the behaviour
    categories that count, and when it is open."""

    bank = models.ForeignKey(
        Partner,
        on_delete=models.PROTECT,
        related_name="offset_programmes",
        limit_choices_to={"kind": Partner.Kind.BANK},
        verbose_name=_("bank"),
    )
    name = models.CharField(_("name"), max_length=200)
    cny_per_kg = models.DecimalField(
        _("rate (CNY per kg)"),
        max_digits=10,
        decimal_places=4,
        help_text=_("CNY of mortgage interest per kg of CO2e."),
    )
    min_grams = models.PositiveIntegerField(
        _("minimum (g)"), default=100, help_text=_("Smallest offset, in grams.")
    )
    monthly_cap_g = models.PositiveBigIntegerField(
        _("monthly cap (g)"),
        null=True,
        blank=True,
        help_text=_("Grams a resident may offset per calendar month."),
    )
    monthly_cap_fen = models.PositiveBigIntegerField(
        _("monthly cap (fen)"),
        null=True,
        blank=True,
        help_text=_("Fen a resident may offset per calendar month."),
    )
    budget_fen = models.PositiveBigIntegerField(
        _("budget (fen)"),
        help_text=_(
            "What the bank set aside for the programme, in fen; requested, sent and "
            "confirmed offsets count against it."
        ),
    )
    categories = models.JSONField(
        _("categories"),
        default=_default_categories,
        help_text=_("Behaviour categories whose grams count."),
    )
    starts_at = models.DateTimeField(_("starts at"), default=timezone.now)
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = BankProgrammeQuerySet.as_manager()

    class Meta:
        app_label = "rewards"
        verbose_name = _("bank programme")
        verbose_name_plural = _("bank programmes")
        ordering = ["bank__name", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(cny_per_kg__gt=0), name="programme_rate_positive"),
            models.CheckConstraint(condition=Q(budget_fen__gt=0), name="programme_budget_positive"),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")),
                name="programme_window_ordered",
            ),
            models.UniqueConstraint(fields=["bank", "name"], name="unique_programme_per_bank"),
        ]

    def __str__(self) -> str:
        return f"{self.bank.name}: {self.name}"

    def clean(self) -> None:
        known = set(Category.values)
        if (
            not isinstance(self.categories, list)
            or not self.categories
            or not all(isinstance(c, str) and c in known for c in self.categories)
        ):
            raise ValidationError(
                {"categories": _("A non-empty list of: %(known)s.") % {"known": sorted(known)}}
            )
        if self.bank_id and self.bank.kind != Partner.Kind.BANK:
            raise ValidationError({"bank": _("The partner must be a bank.")})


class LoanLinkStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for the bank")
    CONFIRMED = "confirmed", _("Confirmed by the bank")
    REFUSED = "refused", _("Refused by the bank")
    REVOKED = "revoked", _("Revoked")


OPEN_LINK_STATUSES = [LoanLinkStatus.PENDING, LoanLinkStatus.CONFIRMED]


class LoanLink(models.Model):
    """A resident's mortgage at the programme's bank. The loan reference is kept only as a
    keyed hash (to check the bank's confirmation) and its last four characters (to show)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,  # erasure keeps the row (offsets refer to it), not the person
        on_delete=models.PROTECT,
        related_name="loan_links",
        verbose_name=_("resident"),
    )
    programme = models.ForeignKey(
        BankProgramme,
        on_delete=models.PROTECT,
        related_name="links",
        verbose_name=_("bank programme"),
    )
    loan_ref_hash = models.CharField(_("loan number hash"), max_length=64, blank=True)
    loan_ref_last4 = models.CharField(_("loan number's last 4"), max_length=4, blank=True)
    link_token = models.CharField(
        _("link token"),
        max_length=32,
        unique=True,
        help_text=_("The resident gives it to the bank to confirm."),
    )
    consent_given_at = models.DateTimeField(
        _("consent given at"),
        help_text=_("When the resident agreed to share their offsets with the bank."),
    )
    consent_text = models.CharField(_("consent text"), max_length=500)
    status = models.CharField(
        _("status"), max_length=16, choices=LoanLinkStatus.choices, default=LoanLinkStatus.PENDING
    )
    bank_link_id = models.CharField(_("bank's link id"), max_length=100, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    refusal_reason = models.CharField(_("refusal reason"), max_length=300, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        app_label = "rewards"
        verbose_name = _("loan link")
        verbose_name_plural = _("loan links")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "programme"],
                condition=Q(status__in=OPEN_LINK_STATUSES),
                name="one_open_loan_link_per_programme",
            ),
            models.CheckConstraint(
                condition=~Q(status=LoanLinkStatus.CONFIRMED) | ~Q(bank_link_id=""),
                name="confirmed_loan_link_has_bank_id",
            ),
        ]

    def __str__(self) -> str:
        return _("loan %(loan)s at %(programme)s (%(status)s)") % {
            "loan": self.masked_reference,
            "programme": self.programme_id,
            "status": self.get_status_display(),
        }

    @property
    def masked_reference(self) -> str:
        return f"****{self.loan_ref_last4}" if self.loan_ref_last4 else ""


class OffsetBatchStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    SENT = "sent", _("Accepted by the bank")
    REJECTED = "rejected", _("Refused whole by the bank")
    CANCELLED = "cancelled", _("Not sent: its offsets closed first")


class OffsetBatch(models.Model):
    """One day's offset requests of a programme, as sent to its bank (an outbox row: written
    with its membership in one transaction, sent later by a worker, the answer recorded)."""

    programme = models.ForeignKey(
        BankProgramme,
        on_delete=models.PROTECT,
        related_name="batches",
        verbose_name=_("bank programme"),
    )
    business_date = models.DateField(_("business date"))
    request_id = models.CharField(_("request id"), max_length=64, unique=True)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=OffsetBatchStatus.choices,
        default=OffsetBatchStatus.PENDING,
    )
    payload = models.JSONField(_("payload"), help_text=_("Exactly what is sent, on every attempt."))
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(
        _("next attempt at"), default=timezone.now, db_index=True
    )
    last_error = models.TextField(_("last error"), blank=True)
    reply_status = models.PositiveSmallIntegerField(_("reply status"), null=True, blank=True)
    reply_body = models.JSONField(_("reply body"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        app_label = "rewards"
        ordering = ["-business_date", "-id"]
        verbose_name = _("offset batch")
        verbose_name_plural = _("offset batches")
        constraints = [
            models.UniqueConstraint(
                fields=["programme", "business_date"], name="one_offset_batch_a_day"
            ),
        ]

    def __str__(self) -> str:
        return _("batch %(date)s of %(programme)s (%(status)s)") % {
            "date": self.business_date,
            "programme": self.programme_id,
            "status": self.get_status_display(),
        }


class OffsetStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested (grams held)")
    SENT = "sent", _("Sent to the bank")
    CONFIRMED = "confirmed", _("Confirmed by the bank")
    REFUSED = "refused", _("Refused by the bank")
    FAILED = "failed", _("Failed (grams given back)")


# Offsets that count against the caps and the budget.
COMMITTED_STATUSES = [OffsetStatus.REQUESTED, OffsetStatus.SENT, OffsetStatus.CONFIRMED]


class OffsetQuerySet(models.QuerySet):
    def committed(self) -> OffsetQuerySet:
        return self.filter(status__in=COMMITTED_STATUSES)


class Offset(models.Model):
    """Grams a resident gives the bank against mortgage interest: a ledger hold to the
    bank's enterprise account, posted when the bank confirms, voided when it refuses or
    never answers."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.PROTECT,
        related_name="offsets",
        verbose_name=_("resident"),
    )
    programme = models.ForeignKey(
        BankProgramme,
        on_delete=models.PROTECT,
        related_name="offsets",
        verbose_name=_("bank programme"),
    )
    link = models.ForeignKey(
        LoanLink, on_delete=models.PROTECT, related_name="offsets", verbose_name=_("loan link")
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=100)
    grams = models.PositiveBigIntegerField(_("amount (g)"))
    cny_per_kg = models.DecimalField(
        _("rate (CNY per kg)"), max_digits=10, decimal_places=4, help_text=_("Rate applied.")
    )
    value_fen = models.PositiveBigIntegerField(_("value (fen)"))
    hold = models.OneToOneField(
        Transfer, on_delete=models.PROTECT, related_name="offset", verbose_name=_("ledger hold")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=OffsetStatus.choices, default=OffsetStatus.REQUESTED
    )
    batch = models.ForeignKey(
        OffsetBatch,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="offsets",
        verbose_name=_("offset batch"),
    )
    interest_credited_fen = models.PositiveBigIntegerField(
        _("interest credited (fen)"), null=True, blank=True
    )
    bank_reason = models.CharField(_("bank's reason"), max_length=300, blank=True)
    # The bank's answer as it came, so a resent answer is told from a different one.
    answer_hash = models.CharField(_("answer hash"), max_length=64, blank=True)
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    objects = OffsetQuerySet.as_manager()

    class Meta:
        app_label = "rewards"
        verbose_name = _("offset")
        verbose_name_plural = _("offsets")
        ordering = ["-requested_at", "-id"]
        permissions = [("void_offset", "Can void an offset the bank has not confirmed")]
        constraints = [
            models.CheckConstraint(condition=Q(grams__gt=0), name="offset_grams_positive"),
            models.CheckConstraint(condition=Q(value_fen__gt=0), name="offset_value_positive"),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"], name="unique_offset_key_per_resident"
            ),
            models.CheckConstraint(
                condition=~Q(status=OffsetStatus.CONFIRMED)
                | Q(interest_credited_fen__isnull=False),
                name="confirmed_offset_has_interest",
            ),
        ]

    def __str__(self) -> str:
        return _("offset %(id)s: %(grams)d g (%(status)s)") % {
            "id": self.pk,
            "grams": self.grams,
            "status": self.get_status_display(),
        }
