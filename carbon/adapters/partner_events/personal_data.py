"""The partner-events slice's personal data: a resident's links to their accounts at
partners, and the partner events those accounts (or the resident's claims) are tied to."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from carbon.adapters.partner_events.models import PartnerEvent, PartnerEventStatus, PartnerLink
from carbon.models import User
from carbon.personal_data import PersonalData

# --- events ---------------------------------------------------------------------------------


def _events_of(user: User) -> QuerySet[PartnerEvent]:
    """Events credited to the resident, and events of their partner accounts not credited to
    anyone, up to when they unlinked that account (later ones may be a new holder's)."""
    tied = Q(claim__user=user)
    for ref_hash, partner_id, unlinked_at in PartnerLink.objects.filter(user=user).values_list(
        "external_ref_hash", "partner_id", "unlinked_at"
    ):
        if not ref_hash:
            continue  # already forgotten
        account = Q(claim__isnull=True, partner_id=partner_id, external_ref_hash=ref_hash)
        if unlinked_at is not None:
            account &= Q(occurred_at__lt=unlinked_at)
        tied |= account
    return PartnerEvent.objects.filter(tied)


def partner_events_export(*, user: User) -> list[dict[str, Any]]:
    return [
        {
            "partner": e.partner.name,
            "event_id": e.event_id,
            "behaviour": e.behaviour.code,
            "occurred_at": e.occurred_at.isoformat(),
            "quantity": str(e.quantity),
            "details": e.details,
            "status": e.status,
            "claim": str(e.claim_id) if e.claim_id else None,
        }
        for e in _events_of(user)
        .select_related("partner", "behaviour")
        .order_by("occurred_at", "id")
    ]


def partner_events_erase(*, user: User) -> None:
    """The partner's id for the resident and the event's details go. The row stays: its
    (partner, event_id) and payload hash make a resent event a duplicate instead of new data,
    and a credited event's claim is the ledger's. An event still waiting for its resident
    will never be credited now, so it is marked expired."""
    events = _events_of(user)
    events.filter(status=PartnerEventStatus.UNMATCHED).update(status=PartnerEventStatus.EXPIRED)
    events.update(external_ref_hash="", details={})


# --- links ----------------------------------------------------------------------------------


def partner_links_export(*, user: User) -> list[dict[str, Any]]:
    return [
        {
            "partner": link.partner.name,
            "linked_at": link.linked_at.isoformat(),
            "unlinked_at": link.unlinked_at.isoformat() if link.unlinked_at else None,
        }
        for link in user.partner_links.select_related("partner").order_by("linked_at")
    ]


def partner_links_erase(*, user: User) -> None:
    """Links are closed and forget the partner's id: the partner's next event for it matches
    nobody."""
    PartnerLink.objects.filter(user=user, unlinked_at__isnull=True).update(
        unlinked_at=timezone.now()
    )
    PartnerLink.objects.filter(user=user).update(external_ref_hash="")


# Events first: their eraser finds the resident's events through the links' hashes.
PROVIDERS = (
    PersonalData("partner_events", (PartnerEvent,), partner_events_export, partner_events_erase),
    PersonalData("partner_links", (PartnerLink,), partner_links_export, partner_links_erase),
)
