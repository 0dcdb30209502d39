"""Partners (transit operator, merchants, the bank, ...) and their signing credentials."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Partner(models.Model):
    class Kind(models.TextChoices):
        TRANSIT_OPERATOR = "transit_operator", _("Transit operator")
        MERCHANT = "merchant", _("Merchant")
        BANK = "bank", _("Bank")
        PLATFORM = "platform", _("Platform")
        RECYCLING_STATION = "recycling_station", _("Recycling station")

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(_("kind"), max_length=32, choices=Kind.choices)
    is_active = models.BooleanField(_("active"), default=True)
    # Where we send signed requests to the partner (top-up orders to the transit operator,
    # offset batches to the bank); blank for partners we only receive from.
    endpoint_url = models.URLField(
        _("endpoint URL"),
        blank=True,
        help_text=_("Base URL of the partner's API for requests we send, signed like theirs."),
    )
    # Behaviours this partner may report events for (partner events are refused otherwise).
    behaviours = models.ManyToManyField(
        "carbon.Behaviour", blank=True, related_name="partners", verbose_name=_("behaviours")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("partner")
        verbose_name_plural = _("partners")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PartnerCredentialQuerySet(models.QuerySet):
    def usable(self) -> PartnerCredentialQuerySet:
        # A rotated key stays usable until its grace period ends.
        return self.filter(
            models.Q(revoked_at__isnull=True) | models.Q(revoked_at__gt=timezone.now()),
            partner__is_active=True,
        )


class PartnerCredential(models.Model):
    """A key id and its secret. The secret is stored encrypted, shown once at creation."""

    partner = models.ForeignKey(
        Partner, on_delete=models.CASCADE, related_name="credentials", verbose_name=_("partner")
    )
    key_id = models.CharField(_("key id"), max_length=40, unique=True)
    secret_encrypted = models.BinaryField(_("secret (encrypted)"), editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    objects = PartnerCredentialQuerySet.as_manager()

    class Meta:
        verbose_name = _("partner key")
        verbose_name_plural = _("partner keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.key_id


class PartnerRequestNonce(models.Model):
    """A signature already accepted; a second request with it is a replay."""

    credential = models.ForeignKey(
        PartnerCredential, on_delete=models.CASCADE, verbose_name=_("partner key")
    )
    signature = models.CharField(_("signature"), max_length=64)
    seen_at = models.DateTimeField(_("seen at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("partner request nonce")
        verbose_name_plural = _("partner request nonces")
        constraints = [
            models.UniqueConstraint(fields=["credential", "signature"], name="unique_partner_nonce")
        ]

    def __str__(self) -> str:
        return f"nonce {self.signature[:8]}… of {self.credential_id}"
