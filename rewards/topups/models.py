"""The top-up outbox: one row per top-up we owe the transit operator, written in the
redemption's transaction and sent later by a worker, with the state of its delivery."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from carbon.adapters.transit.models import TransitCard
from carbon.models import Partner, Transfer


class TopUpStatus(models.TextChoices):
    QUEUED = "queued", _("queued")
    SENDING = "sending", _("sending")
    CONFIRMED = "confirmed", _("confirmed")
    REFUSED = "refused", _("refused")
    FAILED = "failed", _("failed")


SETTLED = (TopUpStatus.CONFIRMED, TopUpStatus.REFUSED, TopUpStatus.FAILED)


class TopUpQuerySet(models.QuerySet):
    def due(self, *, now) -> TopUpQuerySet:
        """Rows a worker may claim now: queued and due, or left `sending` by a worker whose
        lease ran out (it crashed or hung: the row is sent again, with the same request id)."""
        return self.filter(
            Q(status=TopUpStatus.QUEUED, next_attempt_at__lte=now)
            | Q(status=TopUpStatus.SENDING, lease_until__lte=now)
        )


class TopUp(models.Model):
    """A top-up owed to a resident's transit card, paid for by a pending hold on their points.

    The hold is posted when the operator confirms, voided when it refuses or never answers.
    `request_id` is sent on every attempt: the operator acts once per request id. The card
    number is kept encrypted only while it may still be sent; a settled row has none.
    """

    request_id = models.UUIDField(_("request id"), default=uuid.uuid4, unique=True, editable=False)
    # Null once the resident is erased: the row stays, for the ledger and the operator's books.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="topups",
        verbose_name=_("resident"),
    )
    hold = models.OneToOneField(
        Transfer, on_delete=models.PROTECT, related_name="topup", verbose_name=_("ledger hold")
    )
    operator = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="topups", verbose_name=_("operator")
    )
    card = models.ForeignKey(
        TransitCard,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="topups",
        verbose_name=_("transit card"),
    )
    card_last_digits = models.CharField(_("card's last digits"), max_length=4, blank=True)
    # Fernet (PARTNER_SECRETS_KEY) of the digits; null once settled or erased.
    card_number_encrypted = models.BinaryField(
        _("card number (encrypted)"), null=True, blank=True, editable=False
    )
    amount_cny = models.DecimalField(_("amount (CNY)"), max_digits=10, decimal_places=2)
    # The caller's reference (the voucher code), sent to the operator for its statement.
    reference = models.CharField(
        _("reference"),
        max_length=200,
        db_index=True,
        help_text=_("The voucher code, sent to the operator for its statement."),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=TopUpStatus.choices, default=TopUpStatus.QUEUED
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"))
    # No answer by then: the top-up fails and the points come back.
    deadline_at = models.DateTimeField(
        _("deadline"), help_text=_("No answer by then: the top-up fails and the points come back.")
    )
    # While `sending`: the worker that claimed the row and until when its claim holds.
    lease_token = models.UUIDField(_("lease token"), null=True, blank=True, editable=False)
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    operator_ref = models.CharField(_("operator's reference"), max_length=100, blank=True)
    # False only when the operator confirmed after the ledger had already released the hold.
    points_taken = models.BooleanField(_("points taken"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    settled_at = models.DateTimeField(_("settled at"), null=True, blank=True)

    objects = TopUpQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("transit top-up")
        verbose_name_plural = _("transit top-ups")
        permissions = [
            ("refund_topup", "Can refund a top-up the operator has not answered"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cny__gt=0), name="topup_amount_positive"),
            # The card number never outlives the top-up it was typed for.
            models.CheckConstraint(
                condition=~Q(status__in=[s.value for s in SETTLED])
                | Q(card_number_encrypted__isnull=True),
                name="topup_settled_has_no_card_number",
            ),
            models.CheckConstraint(
                condition=~Q(status=TopUpStatus.SENDING)
                | Q(lease_until__isnull=False, lease_token__isnull=False),
                name="topup_sending_has_lease",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="topup_due_idx")]

    def __str__(self) -> str:
        return _("top-up %(id)s (%(status)s)") % {
            "id": self.request_id,
            "status": self.get_status_display(),
        }

    @property
    def settled(self) -> bool:
        return self.status in SETTLED
