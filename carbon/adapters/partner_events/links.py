"""Residents' links to their accounts at partners (known by a keyed hash of the partner's id
for them); linking credits the partner's earlier events still inside their window."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from carbon.adapters.partner_events.matching import event_claim, external_ref_hash
from carbon.adapters.partner_events.models import PartnerEvent, PartnerEventStatus, PartnerLink
from carbon.errors import DomainError, ErrorCode
from carbon.models import Consent, Partner, User
from carbon.services import rules
from carbon.services.people import consent_grant


class UnknownPartner(DomainError):
    code = ErrorCode.UNKNOWN_PARTNER


class PartnerLinkError(DomainError):
    code = ErrorCode.PARTNER_LINK_INVALID


class PartnerRefTaken(DomainError):
    code = ErrorCode.PARTNER_REF_TAKEN


class ConsentRequired(DomainError):
    code = ErrorCode.CONSENT_REQUIRED


# --- residents' links ---------------------------------------------------------------------


def _partner_scopes(partner: Partner) -> set[str]:
    return {b.consent_scope for b in partner.behaviours.all() if b.consent_scope}


def partner_link_create(
    *, user: User, partner: Partner, external_ref: str, consent: bool = False
) -> PartnerLink:
    """Link the resident's account at a partner; credits the partner's earlier events for it
    that are still inside their claim window."""
    external_ref = (external_ref or "").strip()
    if not external_ref or len(external_ref) > 200:
        raise PartnerLinkError(_("`external_ref` is your id at the partner, up to 200 characters."))
    if not partner.is_active or not partner.behaviours.exists():
        raise PartnerLinkError(_("This partner does not report green behaviours."))
    scopes = _partner_scopes(partner)
    if consent:
        for scope in scopes:
            consent_grant(user=user, scope=scope)
    elif scopes and not any(Consent.objects.in_force(user=user, scope=s) for s in scopes):
        raise ConsentRequired(
            _(
                "Consent to at least one of this partner's data sources first, or send "
                "`consent`: true."
            ),
            details={"scopes": sorted(scopes)},
        )
    ref_hash = external_ref_hash(partner=partner, external_ref=external_ref)
    with transaction.atomic():
        current = (
            PartnerLink.objects.select_for_update()
            .filter(partner=partner, external_ref_hash=ref_hash, unlinked_at__isnull=True)
            .first()
        )
        if current is not None:
            if current.user_id != user.pk:
                raise PartnerRefTaken()
            link = current
        else:
            try:
                with transaction.atomic():
                    link = PartnerLink.objects.create(
                        user=user, partner=partner, external_ref_hash=ref_hash
                    )
            except IntegrityError:
                raise PartnerRefTaken() from None
    # Earlier events, each in its own transaction: one refused claim doesn't undo the link.
    now = timezone.now()
    for event in PartnerEvent.objects.filter(
        partner=partner, external_ref_hash=ref_hash, status=PartnerEventStatus.UNMATCHED
    ).select_related("behaviour", "partner"):
        if rules.window_problem(
            behaviour=event.behaviour, occurred_at=event.occurred_at, reference=now
        ):
            continue
        try:
            with transaction.atomic():
                event_claim(event=event, user=user)
        except DomainError:
            continue
    return link


def partner_link_remove(*, user: User, link_id: int) -> None:
    link = PartnerLink.objects.get(pk=link_id, user=user, unlinked_at__isnull=True)
    link.unlinked_at = timezone.now()
    link.save(update_fields=["unlinked_at"])
