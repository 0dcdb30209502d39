"""The offsets slice's personal data: a resident's loan links and offsets. Erasure cuts the
rows' tie to the person (the user, the loan reference's hash and digits, the bank's link
id); the rows stay, with the ledger's holds and transfers they refer to."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from carbon.models import User
from carbon.personal_data import PersonalData
from rewards.offsets.models import (
    OPEN_LINK_STATUSES,
    LoanLink,
    LoanLinkStatus,
    Offset,
    fen_as_cny,
)


def _iso(when) -> str | None:
    return when.isoformat() if when else None


def loan_links_export(*, user: User) -> list[dict[str, Any]]:
    return [
        {
            "bank": link.programme.bank.name,
            "programme": link.programme.name,
            "loan_reference": link.masked_reference,
            "status": link.status,
            "consent_given_at": _iso(link.consent_given_at),
            "consent_text": link.consent_text,
            "created_at": _iso(link.created_at),
            "decided_at": _iso(link.decided_at),
            "revoked_at": _iso(link.revoked_at),
        }
        for link in LoanLink.objects.filter(user=user)
        .select_related("programme__bank")
        .order_by("created_at", "id")
    ]


def loan_links_erase(*, user: User) -> None:
    """Open links end (no new offsets), and forget the loan and the bank's id for it."""
    links = LoanLink.objects.filter(user=user)
    links.filter(status__in=OPEN_LINK_STATUSES).update(
        status=LoanLinkStatus.REVOKED, revoked_at=timezone.now()
    )
    links.update(user=None, loan_ref_hash="", loan_ref_last4="", bank_link_id="")


def offsets_export(*, user: User) -> list[dict[str, Any]]:
    return [
        {
            "bank": o.programme.bank.name,
            "programme": o.programme.name,
            "grams": o.grams,
            "value_cny": fen_as_cny(o.value_fen),
            "status": o.status,
            "interest_credited_cny": fen_as_cny(o.interest_credited_fen),
            "requested_at": _iso(o.requested_at),
            "resolved_at": _iso(o.resolved_at),
        }
        for o in Offset.objects.filter(user=user)
        .select_related("programme__bank")
        .order_by("requested_at", "id")
    ]


def offsets_erase(*, user: User) -> None:
    """The offsets stay (the bank's records and the ledger's holds refer to them; an open
    one is still answered by the bank) but no longer name the resident."""
    Offset.objects.filter(user=user).update(user=None)


# Offsets first: they are found through the user before the links forget it.
PROVIDERS = (
    PersonalData("offsets", (Offset,), offsets_export, offsets_erase),
    PersonalData("loan_links", (LoanLink,), loan_links_export, loan_links_erase),
)
