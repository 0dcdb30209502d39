"""Claims: one instance of a behaviour, its evidence, and the receipt of the rules."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .catalogue import Behaviour, EmissionFactor
from .ledger import Transfer
from .partners import Partner


class ClaimStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    VERIFIED = "verified", _("Verified")
    NEEDS_REVIEW = "needs_review", _("Needs review")
    HELD = "held", _("Held (penalty box)")
    REJECTED = "rejected", _("Rejected")
    CREDITED = "credited", _("Credited")


class ClaimQuerySet(models.QuerySet):
    def owned_by(self, user) -> ClaimQuerySet:
        return self.filter(user=user)

    def review_queue(self) -> ClaimQuerySet:
        return self.filter(status=ClaimStatus.NEEDS_REVIEW).order_by("submitted_at")


class Claim(models.Model):
    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed by the (user, ...) pairs in Meta.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="claims",
        verbose_name=_("resident"),
    )
    behaviour = models.ForeignKey(
        Behaviour, on_delete=models.PROTECT, related_name="claims", verbose_name=_("behaviour")
    )
    quantity = models.DecimalField(_("quantity"), max_digits=12, decimal_places=3)
    occurred_at = models.DateTimeField(_("occurred at"))
    evidence_type = models.CharField(_("evidence type"), max_length=32)
    evidence = models.JSONField(_("evidence"), default=dict, blank=True)
    partner = models.ForeignKey(
        Partner,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="claims",
        verbose_name=_("partner"),
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=200)
    request_hash = models.CharField(_("request hash"), max_length=64)
    status = models.CharField(
        _("status"), max_length=16, choices=ClaimStatus.choices, default=ClaimStatus.RECEIVED
    )
    # Step-by-step outcome of the rules, shown to the resident as is.
    receipt = models.JSONField(_("receipt"), default=dict, blank=True)
    credited_g = models.PositiveIntegerField(_("credited (g)"), default=0)
    factor = models.ForeignKey(
        EmissionFactor,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="claims",
        verbose_name=_("emission factor"),
    )
    award = models.OneToOneField(
        Transfer,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="claim",
        verbose_name=_("award"),
    )
    submitted_at = models.DateTimeField(_("submitted at"), auto_now_add=True, db_index=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    review_note = models.CharField(_("review note"), max_length=500, blank=True)
    held_until = models.DateTimeField(_("held until"), null=True, blank=True)

    objects = ClaimQuerySet.as_manager()

    class Meta:
        verbose_name = _("claim")
        verbose_name_plural = _("claims")
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
            models.Index(fields=["user", "behaviour", "occurred_at"], name="claim_user_beh_idx"),
            # A resident's claims page (newest first, id as tie-break) and the throttle's
            # count of their recent claims: a short range scan, not all their claims.
            models.Index(fields=["user", "-submitted_at", "-id"], name="claim_user_submitted_idx"),
        ]

    def __str__(self) -> str:
        # The admin's title and links for a claim: its behaviour, quantity and status label.
        return f"{self.behaviour.name} × {self.quantity} ({self.get_status_display()})"


class PenaltyBox(models.Model):
    """A resident who claims in bursts waits a growing time before further claims are decided."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="penalty_box",
        verbose_name=_("resident"),
    )
    level = models.PositiveSmallIntegerField(_("level"), default=0)
    until = models.DateTimeField(_("until"))
    last_triggered_at = models.DateTimeField(_("last triggered at"))

    class Meta:
        verbose_name = _("penalty box")
        verbose_name_plural = _("penalty boxes")

    def __str__(self) -> str:
        return f"{self.user_id} level {self.level} until {self.until:%Y-%m-%d %H:%M}"


class AppealStatus(models.TextChoices):
    OPEN = "open", _("Open")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")


class Appeal(models.Model):
    """A resident contests a refused claim or reports a missed credit, with evidence."""

    id = models.UUIDField(_("ID"), primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="appeals",
        verbose_name=_("resident"),
    )
    claim = models.ForeignKey(
        Claim, on_delete=models.PROTECT, related_name="appeals", verbose_name=_("claim")
    )
    kind = models.CharField(
        _("kind"),
        max_length=16,
        choices=[("refused", _("Refused credit")), ("missed", _("Missed credit"))],
    )
    reason = models.TextField(_("reason"), max_length=2000)
    idempotency_key = models.CharField(_("idempotency key"), max_length=200)
    status = models.CharField(
        _("status"), max_length=16, choices=AppealStatus.choices, default=AppealStatus.OPEN
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decision_note = models.CharField(_("decision note"), max_length=500, blank=True)
    # What deciding it did to the claim, copied from the claim's receipt at that moment (a
    # later appeal of the same claim changes the receipt, not this): the grams credited and
    # the receipt's code and reason. "Approved" with 0 g then says why: a cap, say.
    credited_g = models.PositiveIntegerField(_("credited (g)"), default=0)
    outcome_code = models.CharField(_("outcome code"), max_length=64, blank=True)
    outcome_reason = models.CharField(_("outcome reason"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("appeal")
        verbose_name_plural = _("appeals")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "idempotency_key"], name="unique_appeal_key"),
            models.UniqueConstraint(
                fields=["claim"], condition=Q(status="open"), name="one_open_appeal_per_claim"
            ),
        ]

    def __str__(self) -> str:
        return f"appeal {self.pk} on claim {self.claim_id} ({self.status})"
