"""The payments slice's records: the outbox of Stripe calls (our long-term record of what we
asked, with the idempotency key derived from it), card payments and their refunds, and the
webhook events already applied (de-duplicated by Stripe's event id)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class RequestStatus(models.TextChoices):
    QUEUED = "queued", _("queued")
    SENDING = "sending", _("sending")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


class StripeRequestQuerySet(models.QuerySet):
    def due(self, *, now) -> StripeRequestQuerySet:
        """Queued and due, or left `sending` by a worker whose lease ran out (sent again with
        the same idempotency key: Stripe answers it with the first outcome)."""
        return self.filter(
            Q(status=RequestStatus.QUEUED, next_attempt_at__lte=now)
            | Q(status=RequestStatus.SENDING, lease_until__lte=now)
        )


class StripeRequest(models.Model):
    """One call we owe Stripe (create a PaymentIntent, a refund, a connected account, a
    transfer), written in the same transaction as the record it is for and sent by a worker.

    `owner` names that record ("payment:12", "refund:3", "settlement:7"): the idempotency key
    is derived from it, and the handler registered for its kind records the result.
    """

    operation = models.CharField(max_length=40)
    owner = models.CharField(max_length=60, unique=True)
    idempotency_key = models.CharField(max_length=100, unique=True)
    params = models.JSONField()
    status = models.CharField(
        max_length=10, choices=RequestStatus.choices, default=RequestStatus.QUEUED
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True)
    stripe_id = models.CharField(max_length=100, blank=True, db_index=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    done_at = models.DateTimeField(null=True, blank=True)

    objects = StripeRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("Stripe request")
        verbose_name_plural = _("Stripe requests")
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=RequestStatus.SENDING)
                | Q(lease_until__isnull=False, lease_token__isnull=False),
                name="striperequest_sending_has_lease",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="striperequest_due_idx")]

    def __str__(self) -> str:
        return f"{self.operation} for {self.owner} ({self.status})"


class PaymentStatus(models.TextChoices):
    CREATING = "creating", _("creating")  # the PaymentIntent is being created at Stripe
    AWAITING = "awaiting", _("awaiting payment")  # created: the payer confirms it by card
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")  # could not be created, or canceled at Stripe


class Payment(models.Model):
    """A card payment from a partner (a sponsor, an enterprise buyer) for one of our records
    (`purpose` + `reference`), through one PaymentIntent. Amounts are integer fen."""

    purpose = models.CharField(max_length=30)
    reference = models.CharField(max_length=60, unique=True)
    payer = models.ForeignKey("carbon.Partner", on_delete=models.PROTECT, related_name="+")
    # Null once that person is erased: the payment stays, for the books.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    amount_fen = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="cny")
    status = models.CharField(
        max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.CREATING
    )
    stripe_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    # Returned to the payer's staff, who confirm the payment with it (Stripe.js).
    client_secret = models.CharField(max_length=200, blank=True)
    refunded_fen = models.BigIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        permissions = [("refund_payment", "Can refund a card payment")]
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_fen__gte=0) & Q(refunded_fen__lte=models.F("amount_fen")),
                name="payment_refunded_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference}: {self.amount_fen} fen ({self.status})"

    @property
    def refundable_fen(self) -> int:
        if self.status != PaymentStatus.SUCCEEDED:
            return 0
        asked = sum(r.amount_fen for r in self.refunds.all() if r.status != RefundStatus.FAILED)
        return self.amount_fen - asked


class RefundStatus(models.TextChoices):
    REQUESTED = "requested", _("requested")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")


class PaymentRefund(models.Model):
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount_fen = models.BigIntegerField()
    reason = models.CharField(max_length=300)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=RefundStatus.choices, default=RefundStatus.REQUESTED
    )
    stripe_id = models.CharField(max_length=100, null=True, blank=True, unique=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.CheckConstraint(condition=Q(amount_fen__gt=0), name="refund_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"refund {self.pk} of {self.payment.reference} ({self.status})"


class WebhookEvent(models.Model):
    """A Stripe event we applied: its id is recorded in the transaction of its effect, so a
    redelivery finds it and does nothing."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=100, blank=True)
    outcome = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("Stripe webhook event")
        verbose_name_plural = _("Stripe webhook events")

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
