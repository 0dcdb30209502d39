"""Claims: one instance of a behaviour, its evidence, and the receipt of the rules."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from .catalogue import Behaviour, EmissionFactor
from .ledger import Transfer
from .partners import Partner


class ClaimStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    VERIFIED = "verified", "Verified"
    NEEDS_REVIEW = "needs_review", "Needs review"
    HELD = "held", "Held (penalty box)"
    REJECTED = "rejected", "Rejected"
    CREDITED = "credited", "Credited"


class ClaimQuerySet(models.QuerySet):
    def owned_by(self, user) -> ClaimQuerySet:
        return self.filter(user=user)

    def review_queue(self) -> ClaimQuerySet:
        return self.filter(status=ClaimStatus.NEEDS_REVIEW).order_by("submitted_at")


class Claim(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="claims"
    )
    behaviour = models.ForeignKey(Behaviour, on_delete=models.PROTECT, related_name="claims")
    quantity = models.DecimalField(max_digits=12, decimal_places=3)
    occurred_at = models.DateTimeField()
    evidence_type = models.CharField(max_length=32)
    evidence = models.JSONField(default=dict, blank=True)
    partner = models.ForeignKey(
        Partner, null=True, blank=True, on_delete=models.PROTECT, related_name="claims"
    )
    idempotency_key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=ClaimStatus.choices, default=ClaimStatus.RECEIVED
    )
    # Step-by-step outcome of the rules, shown to the resident as is.
    receipt = models.JSONField(default=dict, blank=True)
    credited_g = models.PositiveIntegerField(default=0)
    factor = models.ForeignKey(
        EmissionFactor, null=True, blank=True, on_delete=models.PROTECT, related_name="claims"
    )
    award = models.OneToOneField(
        Transfer, null=True, blank=True, on_delete=models.PROTECT, related_name="claim"
    )
    submitted_at = models.DateTimeField(auto_now_add=True, db_index=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    review_note = models.CharField(max_length=500, blank=True)
    held_until = models.DateTimeField(null=True, blank=True)

    objects = ClaimQuerySet.as_manager()

    class Meta:
        ordering = ["-submitted_at"]
        # Deciding a claim credits a resident: its own permission, apart from view and change.
        permissions = [("review_claim", "Can review claims (approve or reject)")]
        constraints = [
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="unique_claim_key"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="claim_quantity_positive"),
            models.CheckConstraint(
                condition=~Q(status="credited") | Q(award__isnull=False),
                name="credited_claim_has_award",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "behaviour", "occurred_at"], name="claim_user_beh_idx")
        ]

    def __str__(self) -> str:
        return f"{self.behaviour.code} x{self.quantity} ({self.status})"


class PenaltyBox(models.Model):
    """A resident who claims in bursts waits a growing time before further claims are decided."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="penalty_box"
    )
    level = models.PositiveSmallIntegerField(default=0)
    until = models.DateTimeField()
    last_triggered_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.user_id} level {self.level} until {self.until:%Y-%m-%d %H:%M}"


class AppealStatus(models.TextChoices):
    OPEN = "open", "Open"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class Appeal(models.Model):
    """A resident contests a refused claim or reports a missed credit, with evidence."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="appeals"
    )
    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="appeals")
    kind = models.CharField(
        max_length=16, choices=[("refused", "Refused credit"), ("missed", "Missed credit")]
    )
    reason = models.TextField(max_length=2000)
    idempotency_key = models.CharField(max_length=200)
    status = models.CharField(
        max_length=16, choices=AppealStatus.choices, default=AppealStatus.OPEN
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_note = models.CharField(max_length=500, blank=True)
    # What deciding it did to the claim, copied from the claim's receipt at that moment (a
    # later appeal of the same claim changes the receipt, not this): the grams credited and
    # the receipt's code and reason. "Approved" with 0 g then says why: a cap, say.
    credited_g = models.PositiveIntegerField(default=0)
    outcome_code = models.CharField(max_length=64, blank=True)
    outcome_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="unique_appeal_key"),
            models.UniqueConstraint(
                fields=["claim"], condition=Q(status="open"), name="one_open_appeal_per_claim"
            ),
        ]

    def __str__(self) -> str:
        return f"appeal {self.pk} on claim {self.claim_id} ({self.status})"
