"""What a resident's link to an outside account (a transit card, an account at a partner)
keeps to prove the resident controls that account: a link starts pending and earns nothing
until the partner confirms it or the resident enters the one-time code the partner showed
its own customer (carbon.services.linking holds the protocol)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class LinkStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for proof of control")
    CONFIRMED = "confirmed", _("Confirmed by the partner")
    VOID = "void", _("Never confirmed (expired, too many wrong codes, cancelled or superseded)")


class LinkVia(models.TextChoices):
    PARTNER = "partner", _("Confirmed by the partner's signed request")
    CODE = "code", _("The resident entered the partner's one-time code")
    # Links made before proof of control was required (migration 0004) keep this.
    LEGACY = "legacy", _("Linked before proof of control was required")


class LinkQuerySet(models.QuerySet):
    def linked(self) -> LinkQuerySet:
        """Confirmed and not unlinked: the only links that earn."""
        return self.filter(status=LinkStatus.CONFIRMED, unlinked_at__isnull=True)

    def open_pending(self, *, now) -> LinkQuerySet:
        """Pending links still waiting for proof (not expired, not cancelled)."""
        return self.filter(status=LinkStatus.PENDING, unlinked_at__isnull=True, expires_at__gt=now)

    def visible(self, *, now) -> LinkQuerySet:
        """What a resident sees in their list: linked, or still waiting for proof."""
        return self.filter(
            Q(status=LinkStatus.CONFIRMED) | Q(status=LinkStatus.PENDING, expires_at__gt=now),
            unlinked_at__isnull=True,
        )


class ProvenLink(models.Model):
    """The proof-of-control state shared by TransitCard and PartnerLink.

    `account_fields` names the fields that identify the outside account: at most one
    confirmed, not unlinked link per account (a database constraint on each model).
    """

    account_fields: tuple[str, ...] = ()

    status = models.CharField(
        _("status"), max_length=10, choices=LinkStatus.choices, default=LinkStatus.PENDING
    )
    # The reference the resident takes to the partner; the partner names it when it confirms.
    link_token = models.CharField(
        _("link token"), max_length=32, unique=True, null=True, blank=True
    )
    # A pending link not confirmed by then is void.
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    # The one-time code, keyed-hashed (never stored in the clear), its expiry and the wrong
    # guesses so far (the link is void after CARBON_LINK_CODE_MAX_ATTEMPTS).
    code_hash = models.CharField(_("code hash"), max_length=64, blank=True)
    code_expires_at = models.DateTimeField(_("code expires at"), null=True, blank=True)
    code_attempts = models.PositiveSmallIntegerField(_("wrong code attempts"), default=0)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    confirmed_via = models.CharField(
        _("confirmed via"), max_length=8, choices=LinkVia.choices, blank=True
    )
    # Why a link ended: cancelled, expired, attempts_exhausted, superseded, unlinked.
    end_reason = models.CharField(_("end reason"), max_length=20, blank=True)

    objects = LinkQuerySet.as_manager()

    class Meta:
        abstract = True

    def account(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.account_fields}
