"""Residents: registration, consent, data export and erasure."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from carbon import personal_data
from carbon.errors import DomainError, ErrorCode
from carbon.models import Community, Consent, ConsentScope, User
from carbon.services.ledger import account_for_user
from carbon.services.realtime import resident_moved


class EmailTaken(DomainError):
    code = ErrorCode.EMAIL_TAKEN


class UnknownCommunity(DomainError):
    code = ErrorCode.UNKNOWN_COMMUNITY


class WeakPassword(DomainError):
    """Django's password validators refused it; `details.password` lists their messages."""

    code = ErrorCode.INVALID


class UnknownConsentScope(DomainError):
    code = ErrorCode.UNKNOWN_CONSENT_SCOPE


class AccountClosed(DomainError):
    """The account was erased or deactivated while the request was on its way."""

    code = ErrorCode.ACCOUNT_CLOSED


def resident_lock(*, user: User, allow_closed: bool = False, with_account: bool = False) -> User:
    """Lock the resident's user row until the transaction ends, and return it as it is now.

    Every write of a resident's data takes this lock before writing, and user_erase takes
    the same row first: an erasure and a write of the same resident run one after the other,
    whatever the order they arrive in. A write that comes second finds the account erased
    (or deactivated) here and is refused with AccountClosed, writing nothing; an erasure that
    comes second finds what the write committed and erases it. Call inside
    transaction.atomic(). `allow_closed` is for staff decisions that may still close a
    closed account's business (rejecting its claims). `with_account`: the resident's ledger
    account is read in the same statement (`locked.ledger_account`, when it has one), for a
    caller that awards to it next (ledger_award(account=)); only the user's row is locked.
    """
    # FOR NO KEY UPDATE: rows that merely refer to the user (a login's token) don't wait.
    if with_account:
        users = User.objects.select_for_update(no_key=True, of=("self",))
        users = users.select_related("ledger_account")
    else:
        users = User.objects.select_for_update(no_key=True)
    locked = users.filter(pk=user.pk).first()
    if locked is None or (not allow_closed and (locked.erased_at or not locked.is_active)):
        raise AccountClosed()
    return locked


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


@transaction.atomic
def resident_update(
    *, user: User, display_name: str | None = None, community: str | None = None
) -> User:
    """Change a resident's display name or community (the district follows the community)."""
    resident_lock(user=user)
    fields = []
    if display_name is not None:
        user.display_name = display_name.strip()
        fields.append("display_name")
    if community is not None:
        found = community_by_code(community)
        old = (user.community_id, user.district_id)
        user.community, user.district = found, found.district
        fields += ["community", "district"]
        _on_commit_moved(user.pk, old, (found.pk, found.district_id))
    if fields:
        user.save(update_fields=fields)
    return user


def _on_commit_moved(user_id: int, old: tuple, new: tuple) -> None:
    """The community and district boards count residents where they are now."""
    if old != new:
        transaction.on_commit(lambda: resident_moved(user_id=user_id, old=old, new=new))


def _scope(scope: str) -> str:
    if scope not in ConsentScope.values:
        raise UnknownConsentScope(details={"scope": scope, "known": ConsentScope.values})
    return scope


@transaction.atomic
def consent_grant(*, user: User, scope: str) -> Consent:
    """Grant a data source; granting an already current one returns it unchanged."""
    scope = _scope(scope)
    resident_lock(user=user)
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
    resident_lock(user=user)
    current = Consent.objects.select_for_update().current().filter(user=user, scope=scope).first()
    if current is None:
        return None
    current.revoked_at = timezone.now()
    current.save(update_fields=["revoked_at"])
    return current


def user_export(*, user: User) -> dict[str, Any]:
    """Everything we hold about a resident, as JSON-ready data: one section per registered
    personal-data provider (carbon.personal_data), whichever part of the system it is in."""
    export: dict[str, Any] = {"exported_at": timezone.now().isoformat()}
    for provider in personal_data.providers():
        export[provider.key] = provider.export(user=user)
    return export


@transaction.atomic
def user_erase(*, user: User) -> None:
    """Erase a resident's personal data: every registered provider's eraser, then the
    profile. All or nothing, and once: the user row is locked and marked erased.

    The ledger keeps its entries, tied to the account that stays with the anonymised user
    row; claims keep what the ledger refers to. The account is deactivated with an unusable
    password and its refresh tokens are blacklisted, so nothing logs in as it again.

    The user row is the first lock taken, and the one every write of the resident's data
    takes first too (resident_lock): a claim, photo or link in flight either commits before
    and is erased here, or waits and is refused afterwards. Nothing personal is left behind
    whatever the order.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.erased_at is not None:
        return
    for provider in personal_data.providers():
        provider.erase(user=user)
    # An erased resident leaves their community's and district's boards; on the residents'
    # board they stay as a row without a name (the ledger keeps their grams).
    _on_commit_moved(user.pk, (user.community_id, user.district_id), (None, None))
    user.email = f"erased-{uuid.uuid4().hex}@erased.invalid"
    user.display_name = ""
    user.community = None
    user.district = None
    user.is_active = False
    user.erased_at = timezone.now()
    user.set_unusable_password()
    user.save()
