"""Residents: registration, consent, data export and erasure."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from carbon.adapters.partner_events.models import PartnerLink
from carbon.adapters.photo.storage import photos_erase_for_user
from carbon.adapters.transit.models import TransitCard
from carbon.errors import DomainError, ErrorCode
from carbon.models import Appeal, Claim, Community, Consent, ConsentScope, User
from carbon.services.ledger import (
    account_for_user,
    balance_for_user,
    hold_status,
    ledger_entries_for_user,
    signed_amount,
)


class EmailTaken(DomainError):
    code = ErrorCode.EMAIL_TAKEN


class UnknownCommunity(DomainError):
    code = ErrorCode.UNKNOWN_COMMUNITY


class WeakPassword(DomainError):
    """Django's password validators refused it; `details.password` lists their messages."""

    code = ErrorCode.INVALID


class UnknownConsentScope(DomainError):
    code = ErrorCode.UNKNOWN_CONSENT_SCOPE


def community_by_code(code: str) -> Community:
    community = Community.objects.select_related("district").filter(code=code).first()
    if community is None:
        raise UnknownCommunity(details={"community": code})
    return community


def resident_register(
    *,
    email: str,
    password: str,
    display_name: str,
    community: Community | None = None,
    community_code: str | None = None,
) -> User:
    """Create a resident and their ledger account. The password must pass Django's
    validators (WeakPassword lists what they said); an address taken in any letter case is
    refused (EmailTaken), also when two registrations race."""
    email = User.objects.normalize_email(email).lower()
    if community is None and community_code:
        community = community_by_code(community_code)
    if User.objects.filter(email__iexact=email).exists():
        raise EmailTaken()
    user = User(email=email, display_name=display_name.strip(), role=User.Role.RESIDENT)
    if community is not None:
        user.community = community
        user.district = community.district
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise WeakPassword(details={"password": list(exc.messages)}) from None
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            account_for_user(user=user)
    except IntegrityError:
        # A double-submitted registration: the other request created the account.
        raise EmailTaken() from None
    return user


def resident_update(
    *, user: User, display_name: str | None = None, community: str | None = None
) -> User:
    """Change a resident's display name or community (the district follows the community)."""
    fields = []
    if display_name is not None:
        user.display_name = display_name.strip()
        fields.append("display_name")
    if community is not None:
        found = community_by_code(community)
        user.community, user.district = found, found.district
        fields += ["community", "district"]
    if fields:
        user.save(update_fields=fields)
    return user


def _scope(scope: str) -> str:
    if scope not in ConsentScope.values:
        raise UnknownConsentScope(details={"scope": scope, "known": ConsentScope.values})
    return scope


def consent_grant(*, user: User, scope: str) -> Consent:
    """Grant a data source; granting an already current one returns it unchanged."""
    scope = _scope(scope)
    current = Consent.objects.current().filter(user=user, scope=scope).first()
    if current is not None:
        return current
    try:
        with transaction.atomic():
            return Consent.objects.create(user=user, scope=scope)
    except IntegrityError:
        # A simultaneous grant (a client retry) won: one current consent per scope.
        return Consent.objects.current().get(user=user, scope=scope)


@transaction.atomic
def consent_revoke(*, user: User, scope: str) -> Consent | None:
    scope = _scope(scope)
    current = Consent.objects.select_for_update().current().filter(user=user, scope=scope).first()
    if current is None:
        return None
    current.revoked_at = timezone.now()
    current.save(update_fields=["revoked_at"])
    return current


def _photo_export(claim: Claim) -> dict[str, Any] | None:
    photo = getattr(claim, "photo", None)
    if photo is None:
        return None
    return {
        "taken_at": photo.taken_at.isoformat() if photo.taken_at else None,
        "gps": [photo.gps.x, photo.gps.y] if photo.gps else None,
        "url": f"/api/v1/claims/{claim.pk}/photo",
    }


def user_export(*, user: User) -> dict[str, Any]:
    """Everything we hold about a resident, as JSON-ready data."""
    balance = balance_for_user(user=user)
    account = account_for_user(user=user)
    return {
        "exported_at": timezone.now().isoformat(),
        "profile": {
            "id": str(user.public_id),
            "email": user.email,
            "display_name": user.display_name,
            "role": user.role,
            "community": user.community.code if user.community_id else None,
            "district": user.district.code if user.district_id else None,
            "date_joined": user.date_joined.isoformat(),
        },
        "balance": {
            "available_g": balance.available_g,
            "pending_g": balance.pending_g,
            "lifetime_g": balance.lifetime_g,
        },
        "consents": [
            {
                "scope": c.scope,
                "granted_at": c.granted_at.isoformat(),
                "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
            }
            for c in user.consents.order_by("granted_at")
        ],
        "claims": [
            {
                "id": str(c.id),
                "photo": _photo_export(c),
                "behaviour": c.behaviour.code,
                "quantity": str(c.quantity),
                "occurred_at": c.occurred_at.isoformat(),
                "status": c.status,
                "credited_g": c.credited_g,
                "evidence_type": c.evidence_type,
                "evidence": c.evidence,
                "receipt": c.receipt,
            }
            for c in Claim.objects.owned_by(user)
            .select_related("behaviour", "photo")
            .order_by("submitted_at")
        ],
        "transit_cards": [
            {
                "label": c.label,
                "last_digits": c.last_digits,
                "linked_at": c.linked_at.isoformat(),
                "unlinked_at": c.unlinked_at.isoformat() if c.unlinked_at else None,
            }
            for c in user.transit_cards.order_by("linked_at")
        ],
        "partner_links": [
            {
                "partner": link.partner.name,
                "linked_at": link.linked_at.isoformat(),
                "unlinked_at": link.unlinked_at.isoformat() if link.unlinked_at else None,
            }
            for link in user.partner_links.select_related("partner").order_by("linked_at")
        ],
        "appeals": [
            {
                "claim": str(a.claim_id),
                "kind": a.kind,
                "reason": a.reason,
                "status": a.status,
                "created_at": a.created_at.isoformat(),
            }
            for a in user.appeals.order_by("created_at")
        ],
        "ledger": [
            {
                "id": t.pk,
                "at": t.created_at.isoformat(),
                "code": t.code,
                "status": hold_status(t),
                "amount_g": signed_amount(t, account_id=account.pk),
                "description": t.description,
            }
            for t in ledger_entries_for_user(user=user)[0].order_by("created_at", "id")
        ],
    }


@transaction.atomic
def user_erase(*, user: User) -> None:
    """Erase personal data; the ledger keeps its entries, now tied to an anonymous account.

    Claims keep behaviour, quantity and amounts (the ledger refers to them) but lose their
    evidence; consents are closed; tokens stop working because the account is deactivated.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.erased_at is not None:
        return
    now = timezone.now()
    anon = uuid.uuid4().hex
    Consent.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=now)
    Claim.objects.filter(user=user).update(evidence={}, review_note="")
    Appeal.objects.filter(user=user).update(reason="", decision_note="")
    # Cards and partner accounts are unlinked and forgotten; photos, their EXIF and GPS go.
    TransitCard.objects.filter(user=user).update(
        unlinked_at=now, label="", last_digits="", card_hash=""
    )
    PartnerLink.objects.filter(user=user).update(unlinked_at=now, external_ref_hash="")
    photos_erase_for_user(user=user)
    user.email = f"erased-{anon}@erased.invalid"
    user.display_name = ""
    user.community = None
    user.district = None
    user.is_active = False
    user.erased_at = now
    user.set_unusable_password()
    user.save()
    for token in OutstandingToken.objects.filter(user=user):
        BlacklistedToken.objects.get_or_create(token=token)
