"""Residents' links to their accounts at partners (known by a keyed hash of the partner's id
for them), with proof that the resident holds the account (carbon.services.linking: pending
until the partner confirms it or the resident enters the partner's one-time code); the
partner's earlier events still inside their window are credited on confirmation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from carbon.adapters.partner_events.matching import event_claim, external_ref_hash
from carbon.adapters.partner_events.models import PartnerEvent, PartnerEventStatus, PartnerLink
from carbon.errors import DomainError, ErrorCode
from carbon.models import Claim, Consent, Partner, User
from carbon.services import linking, rules
from carbon.services.people import consent_grant, resident_lock


class UnknownPartner(DomainError):
    code = ErrorCode.UNKNOWN_PARTNER


class PartnerLinkError(DomainError):
    code = ErrorCode.PARTNER_LINK_INVALID


class ConsentRequired(DomainError):
    code = ErrorCode.CONSENT_REQUIRED


class PartnerLinkNotFound(DomainError):
    code = ErrorCode.NOT_FOUND
    default_message = gettext_lazy("No such link among your partner accounts.")


def _partner_scopes(partner: Partner) -> set[str]:
    return {b.consent_scope for b in partner.behaviours.all() if b.consent_scope}


def _ref(external_ref: Any) -> str:
    ref = str(external_ref or "").strip() if isinstance(external_ref, str) else ""
    if not ref or len(ref) > 200:
        raise PartnerLinkError(_("`external_ref` is your id at the partner, up to 200 characters."))
    return ref


@dataclass(frozen=True)
class PartnerLinked:
    link: PartnerLink
    created: bool
    claims: list[Claim]

    @property
    def credited_g(self) -> int:
        return sum(c.credited_g for c in self.claims)


def partner_link_create(
    *,
    user: User,
    partner: Partner,
    external_ref: str,
    consent: bool = False,
    now: datetime | None = None,
) -> PartnerLinked:
    """Ask to link the resident's account at a partner. The link is pending and earns
    nothing until the partner confirms it or the resident enters the partner's code (see
    partner_link_confirm_*). Asking again returns the resident's link as it is; whether
    someone else asked for the same account is never said."""
    external_ref = _ref(external_ref)
    if not partner.is_active or not partner.behaviours.exists():
        raise PartnerLinkError(_("This partner does not report green behaviours."))
    scopes = _partner_scopes(partner)
    with transaction.atomic():
        resident_lock(user=user)  # never beside an erasure of this resident
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
        link, created = linking.link_request(
            model=PartnerLink,
            user=user,
            account={
                "partner_id": partner.pk,
                "external_ref_hash": external_ref_hash(partner=partner, external_ref=external_ref),
            },
            now=now,
        )
    return PartnerLinked(link=link, created=created, claims=[])


def _credit_earlier(link: PartnerLink) -> PartnerLinked:
    """The partner's unmatched events for the account, still inside their claim window, each
    in its own transaction: one refused claim doesn't undo the others. Idempotent by event."""
    now = timezone.now()
    claims: list[Claim] = []
    for event in PartnerEvent.objects.filter(
        partner_id=link.partner_id,
        external_ref_hash=link.external_ref_hash,
        status=PartnerEventStatus.UNMATCHED,
    ).select_related("behaviour", "partner"):
        if rules.window_problem(
            behaviour=event.behaviour, occurred_at=event.occurred_at, reference=now
        ):
            continue
        try:
            with transaction.atomic():
                claim = event_claim(event=event, user=link.user)
        except DomainError:
            continue
        if claim is not None:
            claims.append(claim)
    return PartnerLinked(link=link, created=False, claims=claims)


def partner_link_confirm_by_partner(
    *, partner: Partner, link_token: str, user_ref: str, now: datetime | None = None
) -> PartnerLinked:
    """The partner confirms that its customer `user_ref` (its own id for them, as in its
    events) asked to link their account with this token. Earlier events are credited now;
    confirming again changes nothing."""
    ref = _ref(user_ref)
    token = str(link_token or "").strip().upper()
    link = (
        PartnerLink.objects.filter(partner=partner, link_token=token).select_related("user").first()
        if token
        else None
    )
    if link is None:
        raise linking.UnknownLinkToken()
    if link.external_ref_hash != external_ref_hash(partner=partner, external_ref=ref):
        raise linking.LinkRefMismatch()
    link = linking.link_confirm_by_partner(link=link, now=now)
    return _credit_earlier(link)


def partner_link_code_issue(
    *, partner: Partner, user_ref: str, now: datetime | None = None
) -> linking.IssuedLinkCode:
    """A one-time code for the pending links of the partner's customer `user_ref`, which the
    partner shows only to that customer (in its own app)."""
    ref_hash = external_ref_hash(partner=partner, external_ref=_ref(user_ref))
    return linking.link_code_issue(
        pending=PartnerLink.objects.filter(partner=partner, external_ref_hash=ref_hash), now=now
    )


def partner_link_confirm_with_code(
    *, user: User, link_id: Any, code: str, now: datetime | None = None
) -> PartnerLinked:
    """The resident enters the code the partner showed them in its own app."""
    link = _own(user=user, link_id=link_id)
    link = linking.link_confirm_with_code(link=link, code=code, now=now)
    return _credit_earlier(link)


def _own(*, user: User, link_id: Any) -> PartnerLink:
    link = (
        PartnerLink.objects.filter(pk=link_id, user=user, unlinked_at__isnull=True)
        .select_related("user", "partner")
        .first()
    )
    if link is None:
        raise PartnerLinkNotFound()
    return link


def partner_link_remove(*, user: User, link_id: int) -> None:
    """Unlink a partner account (or cancel a pending link)."""
    try:
        linking.link_end(link=_own(user=user, link_id=link_id))
    except linking.LinkNotFound:
        raise PartnerLinkNotFound() from None


def partner_links_of(*, user: User, now: datetime | None = None):
    """The resident's partner accounts: linked ones, and those still waiting for proof."""
    now = now or timezone.now()
    return (
        PartnerLink.objects.filter(user=user)
        .visible(now=now)
        .select_related("partner")
        .order_by("-linked_at")
    )
