"""Signed partner events (bike share, recycling, delivery, utilities, second-hand) and the
identifiers residents link so those events can be matched to them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from carbon.models.catalogue import Behaviour
from carbon.models.claims import Claim
from carbon.models.linking import LinkStatus, ProvenLink
from carbon.models.partners import Partner


class PartnerLink(ProvenLink):
    """A resident's account at a partner, known by a keyed hash of the partner's identifier.
    It earns only once confirmed (by the partner, or with the partner's one-time code)."""

    account_fields = ("partner_id", "external_ref_hash")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="partner_links",
        verbose_name=_("resident"),
    )
    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="links", verbose_name=_("partner")
    )
    external_ref_hash = models.CharField(_("external id hash"), max_length=64)
    linked_at = models.DateTimeField(_("linked at"), auto_now_add=True)
    unlinked_at = models.DateTimeField(_("unlinked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("partner link")
        verbose_name_plural = _("partner links")
        ordering = ["-linked_at"]
        constraints = [
            # Only confirmed links are unique: an impostor's pending link never blocks the
            # account's holder, and confirming one supersedes the rest.
            models.UniqueConstraint(
                fields=["partner", "external_ref_hash"],
                condition=Q(unlinked_at__isnull=True, status=LinkStatus.CONFIRMED),
                name="one_active_partner_link",
            ),
            models.UniqueConstraint(
                fields=["user", "partner", "external_ref_hash"],
                condition=Q(unlinked_at__isnull=True, status=LinkStatus.PENDING),
                name="one_pending_partner_link_per_resident",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} at {self.partner_id}"


class PartnerEventStatus(models.TextChoices):
    UNMATCHED = "unmatched", _("No resident linked yet")
    CLAIMED = "claimed", _("Turned into a claim")
    EXPIRED = "expired", _("Not linked within the claim window")


class PartnerEvent(models.Model):
    partner = models.ForeignKey(
        Partner, on_delete=models.PROTECT, related_name="events", verbose_name=_("partner")
    )
    event_id = models.CharField(_("event id"), max_length=100)
    payload_hash = models.CharField(_("payload hash"), max_length=64)
    behaviour = models.ForeignKey(
        Behaviour,
        on_delete=models.PROTECT,
        related_name="partner_events",
        verbose_name=_("behaviour"),
    )
    external_ref_hash = models.CharField(_("external id hash"), max_length=64, db_index=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    quantity = models.DecimalField(_("quantity"), max_digits=12, decimal_places=3)
    details = models.JSONField(_("details"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=PartnerEventStatus.choices)
    claim = models.OneToOneField(
        Claim,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="partner_event",
        verbose_name=_("claim"),
    )
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)

    class Meta:
        verbose_name = _("partner event")
        verbose_name_plural = _("partner events")
        constraints = [
            models.UniqueConstraint(fields=["partner", "event_id"], name="unique_partner_event")
        ]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.status})"
