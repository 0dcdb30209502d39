"""Merchant staff: inviting them (by the merchant's manager, a command or the admin) and the
one-time token with which an invited member sets a password. A member is a user with the
merchant-staff role tied to one merchant; until the invitation is accepted the account is
inactive and has no usable password, so nothing logs in as it."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from carbon.models import Partner, User
from carbon.services.people import EmailTaken, WeakPassword
from rewards.merchants.errors import InvitationInvalid, NotAMerchant
from rewards.merchants.models import MerchantStaff, StaffInvitation


@dataclass(frozen=True)
class IssuedInvitation:
    staff: MerchantStaff
    #: Shown once, to whoever invited; only its hash is kept.
    token: str
    expires_at: datetime


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def staff_profile(*, user: User) -> MerchantStaff | None:
    """The active staff profile of a user, if they work for an active merchant."""
    if user.role != User.Role.MERCHANT_STAFF or not user.is_active:
        return None
    return (
        MerchantStaff.objects.select_related("merchant")
        .filter(user=user, merchant__is_active=True)
        .first()
    )


@transaction.atomic
def staff_invite(
    *, merchant: Partner, email: str, manager: bool = False, invited_by: User | None = None
) -> IssuedInvitation:
    """Invite someone to a merchant's staff; a new invitation for a member who has not
    accepted yet replaces the old one. An address that belongs to anyone else (a resident,
    another merchant's staff, an accepted member) is refused with EmailTaken."""
    if merchant.kind != Partner.Kind.MERCHANT or not merchant.is_active:
        raise NotAMerchant(details={"partner": merchant.pk})
    email = User.objects.normalize_email(email).lower()
    user = User.objects.select_for_update().filter(email__iexact=email).first()
    if user is None:
        user = User(
            email=email,
            role=User.Role.MERCHANT_STAFF,
            partner=merchant,
            is_active=False,
        )
        user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            raise EmailTaken() from None
        profile = MerchantStaff.objects.create(
            user=user, merchant=merchant, is_manager=manager, invited_by=invited_by
        )
    else:
        profile = MerchantStaff.objects.filter(user=user, merchant=merchant).first()
        if profile is None or user.is_active:
            raise EmailTaken()
        if profile.is_manager != manager:
            profile.is_manager = manager
            profile.save(update_fields=["is_manager"])
    now = timezone.now()
    StaffInvitation.objects.filter(
        staff=profile, used_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(hours=settings.REWARDS_INVITATION_HOURS)
    StaffInvitation.objects.create(
        staff=profile, token_hash=_token_hash(token), expires_at=expires_at
    )
    return IssuedInvitation(staff=profile, token=token, expires_at=expires_at)


@transaction.atomic
def staff_invitation_accept(*, token: str, password: str) -> User:
    """Set the invited member's password and open their account. The token works once,
    before it expires, and only while it is the member's latest invitation."""
    invitation = (
        StaffInvitation.objects.select_for_update()
        .select_related("staff__user")
        .filter(token_hash=_token_hash(token or ""))
        .first()
    )
    now = timezone.now()
    if (
        invitation is None
        or invitation.used_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= now
    ):
        raise InvitationInvalid()
    user = invitation.staff.user
    if user.erased_at is not None:
        raise InvitationInvalid()
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise WeakPassword(details={"password": list(exc.messages)}) from None
    user.set_password(password)
    user.is_active = True
    user.save(update_fields=["password", "is_active"])
    invitation.used_at = now
    invitation.save(update_fields=["used_at"])
    return user
